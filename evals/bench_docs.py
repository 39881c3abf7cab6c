"""Retrieval on real documents: CUAD contracts (BEIR) and FinanceBench filings (PDFs), per mode.

    python -m sovra.evals.bench_docs [--data ../shared/eval-data] [--work DIR] [--sets cuad-dev,financebench-dev]
                                     [--out results.json]

Each set is ingested into a fresh embedded index under ``--work`` (default
``$TMPDIR/sovra-bench-docs``) through the real pipeline (BEIR passages as one-page documents; the
PDFs through the filesystem connector and parser), then every question is searched as a user who
may read everything, once per mode:

* ``sparse`` (BM25), ``dense``, ``hybrid``: one leg or the fused query, nothing else;
* ``before``: the default pipeline without the entity/period scope (reranker when configured,
  near-duplicate removal): what ``search_documents`` did before the scope existed;
* ``default``: ``search_documents`` exactly as agents call it with today's settings;
* ``rerank``: ``default`` with the bundled cross-encoder (``SOVRA_RERANK_MODEL_DIR=bundled``)
  rescoring the top ``SOVRA_RERANK_CANDIDATES``, whatever the settings say (skipped, with the
  reason, when the package that ships it is not installed).

Scores: nDCG@10 and recall@10 (ir-measures) on CUAD's qrels; on FinanceBench **evidence page
@1/@5/@10** (share of questions with a retrieved chunk from the gold document *and* a gold page in
the top k), the gold document's rank (doc@1/@5), and **company purity@5** (share of the top-5 hits
that come from the asked company's filings). Query latency p50/p95 per mode.

Vectors are cached by text under ``--work`` (``embed-cache.sqlite``): a second run re-ingests
(parsing, chunking, metadata, index) without re-embedding texts it has already seen. The ingest
time reported is the cold one only when the cache was empty (``cache_hits`` says).
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sqlite3
import statistics
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sovra.config import Settings
from sovra.evals import metrics as M
from sovra.evals.dataset import EvalItem, doc_matches, load_beir, load_jsonl
from sovra.evals.runner import evidence_page_rank
from sovra.index import Sparse

log = logging.getLogger(__name__)

# "before": the default pipeline without the entity/period scope (what search_documents did before it).
MODES = ("sparse", "dense", "hybrid", "before", "default", "rerank")
K = 10
_modes = list(MODES)
_max_queries = [0]  # 0 = every question


def _first(items: list[EvalItem]) -> list[EvalItem]:
    return items[: _max_queries[0]] if _max_queries[0] else items


class CachingEmbedder:
    """The real embedder, with document vectors remembered by text in SQLite (bench only)."""

    def __init__(self, real: Any, path: Path) -> None:
        self.real = real
        self.model_id = real.model_id
        self.dim = real.dim
        self.hits = 0
        self.misses = 0
        self._db = sqlite3.connect(path, check_same_thread=False)
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS v (kind TEXT, model TEXT, text TEXT, vec BLOB, PRIMARY KEY (kind, model, text))"
        )
        self._lock = threading.Lock()

    def _cached(self, kind: str, texts: Sequence[str], compute: Any) -> list[bytes]:
        with self._lock:
            found = {
                t: v
                for t in set(texts)
                for (v,) in self._db.execute(
                    "SELECT vec FROM v WHERE kind=? AND model=? AND text=?", (kind, self.model_id, t)
                )
            }
        todo = [t for t in dict.fromkeys(texts) if t not in found]
        self.hits += len(texts) - len(todo)
        self.misses += len(todo)
        if todo:
            fresh = compute(todo)
            with self._lock:
                self._db.executemany(
                    "INSERT OR REPLACE INTO v VALUES (?, ?, ?, ?)",
                    [(kind, self.model_id, t, b) for t, b in zip(todo, fresh, strict=True)],
                )
                self._db.commit()
            found.update(zip(todo, fresh, strict=True))
        return [found[t] for t in texts]

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        blobs = self._cached(
            "dense",
            texts,
            lambda ts: [np.asarray(v, dtype=np.float32).tobytes() for v in self.real.embed_documents(ts)],
        )
        return [np.frombuffer(b, dtype=np.float32).tolist() for b in blobs]

    def sparse_documents(self, texts: list[str]) -> list[Sparse]:
        def compute(ts: list[str]) -> list[bytes]:
            out = []
            for s in self.real.sparse_documents(ts):
                out.append(json.dumps([list(map(int, s.indices)), list(map(float, s.values))]).encode())
            return out

        return [Sparse(*json.loads(b)) for b in self._cached("sparse", texts, compute)]

    def __getattr__(self, name: str) -> Any:  # query embedding and everything else: the real one
        return getattr(self.real, name)


def _settings(base: Settings, data: Path, name: str) -> Settings:
    data.mkdir(parents=True, exist_ok=True)
    models = data / "models"
    if models.is_symlink() and not models.exists():  # left by a run whose data dir is gone
        models.unlink()
    if not models.exists():  # reuse the converted embedding model rather than converting again
        base.paths.models.mkdir(parents=True, exist_ok=True)
        models.symlink_to(base.paths.models.resolve(), target_is_directory=True)
    (data / "users.json").write_text(json.dumps({"eval": {"name": "Eval", "groups": []}}))
    s = base.model_copy(update={"data_dir": data, "users_file": None, "qdrant_url": None, "collection": name})
    s.__dict__.pop("paths", None)  # model_copy keeps the cached paths of the base settings
    return s


def _fresh(data: Path) -> None:
    """Drop the index and ingest state, keep the model symlink and the users."""
    if data.exists():
        for p in data.iterdir():
            if p.name not in ("models", "users.json"):
                shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()


def _ingest(settings: Settings, connectors: list[Any], cache: Path) -> dict[str, Any]:
    from sovra.ingest import Ingestor
    from sovra.runtime import Runtime

    rt = Runtime(settings)
    try:
        svc = rt.services
        emb = CachingEmbedder(svc.embedder, cache)
        t0 = time.perf_counter()
        report = Ingestor(svc.index, emb, settings.paths.state_db, settings.chunk_chars, settings.chunk_overlap).run(
            connectors
        )
        seconds = time.perf_counter() - t0
        log.info("ingest %s: %s", settings.collection, report.summary())
        return {
            "seconds": round(seconds, 1),
            "documents": report.added + report.updated,
            "failed": [list(f) for f in report.failed],
            "chunks_embedded": report.chunks_embedded,
            "cache_hits": emb.hits,
            "cache_misses": emb.misses,
        }
    finally:
        rt.close()


def _search_all(settings: Settings, items: list[EvalItem], mode: str) -> tuple[dict[str, list[Any]], list[float]]:
    """Every question's top K. ``default``: ``search_documents`` as agents call it; a plain mode:
    that retrieval leg (or the fusion) alone, without reranking or the entity/period scope."""
    from dataclasses import replace

    from sovra.index import SearchFilter
    from sovra.retrieval import RetrievalConfig, Retriever
    from sovra.runtime import Runtime
    from sovra.tools.base import ToolContext
    from sovra.tools.search import SearchArgs, search_documents

    if mode == "rerank":
        settings = settings.model_copy(update={"rerank_model_dir": Path("bundled")})
    rt = Runtime(settings)
    try:
        svc = rt.services
        user = svc.directory.get("eval")
        ctx = ToolContext(user, svc)
        unscoped = replace(RetrievalConfig.from_settings(settings), scope=False)
        plain = Retriever(svc.index, svc.embedder, None, unscoped)
        before = Retriever(svc.index, svc.embedder, svc.reranker, unscoped)
        flt = SearchFilter(principals=tuple(user.principals))

        def one(query: str) -> list[Any]:
            if mode in ("default", "rerank"):
                return list(search_documents(SearchArgs(query=query, limit=K), ctx).hits)
            if mode == "before":
                return before.search(query, flt, K)
            return plain.search(query, flt, K, mode=mode)  # type: ignore[arg-type]

        one("warm up")
        hits: dict[str, list[Any]] = {}
        times: list[float] = []
        for item in items:
            t0 = time.perf_counter()
            hits[item.id] = one(item.question)
            times.append(time.perf_counter() - t0)
        return hits, times
    finally:
        rt.close()


def _latency(times: list[float]) -> dict[str, float]:
    ms = sorted(t * 1000 for t in times)
    return {"p50_ms": round(statistics.median(ms), 1), "p95_ms": round(ms[int(0.95 * (len(ms) - 1))], 1)}


def bench_cuad(base: Settings, folder: Path, work: Path, cache: Path, ingest: bool = True) -> dict[str, Any]:
    from sovra.evals.suites import BeirListing

    ds = load_beir(folder)
    data = work / folder.name
    if ingest:
        _fresh(data)
    settings = _settings(base, data, f"bench-{folder.name}")
    out: dict[str, Any] = {"ingest": _ingest(settings, [BeirListing(ds)], cache) if ingest else {}, "modes": {}}
    items = _first(ds.items(user="eval"))
    qrels = {i.id: {e.doc: e.relevance for e in i.evidence if e.doc} for i in items}
    for mode in _modes:
        hits, times = _search_all(settings, items, mode)
        run: dict[str, dict[str, float]] = {}
        for qid, hs in hits.items():
            ranked: list[str] = []
            for h in hs:
                if h.doc_id not in ranked:
                    ranked.append(h.doc_id)
            run[qid] = {d: float(len(ranked) - r) for r, d in enumerate(ranked)}
        per_q = M.retrieval_scores(qrels, run)
        row = {m: round(float(np.mean([s.get(m, 0.0) for s in per_q.values()])), 4) for m in ("nDCG@10", "R@10", "RR")}
        out["modes"][mode] = {**row, **_latency(times)}
        log.info("cuad %s %s", mode, out["modes"][mode])
    return out


def bench_financebench(base: Settings, folder: Path, work: Path, cache: Path, ingest: bool = True) -> dict[str, Any]:
    from sovra.connectors.filesystem import FilesystemConnector

    data = work / folder.name
    if ingest:
        _fresh(data)
    settings = _settings(base, data, f"bench-{folder.name}")
    conn = FilesystemConnector(folder / "docs", name="filings", default_acl=["group:everyone"])
    out: dict[str, Any] = {"ingest": _ingest(settings, [conn], cache) if ingest else {}, "modes": {}}
    items = _first(load_jsonl(folder / "questions.jsonl"))
    raw = {json.loads(line)["id"]: json.loads(line) for line in (folder / "questions.jsonl").read_text().splitlines()}
    company_docs: dict[str, set[str]] = {}
    for q in raw.values():  # a company's filings: the gold documents of its questions (scoring only)
        company_docs.setdefault(q["company"], set()).update(e["doc"] for e in q["evidence"])
    for mode in _modes:
        hits, times = _search_all(settings, items, mode)
        page_ranks = {i.id: evidence_page_rank(i, hits[i.id]) for i in items}
        doc_ranks: dict[str, int | None] = {}
        purity: list[float] = []
        for i in items:
            hs = hits[i.id]
            gold = {e.doc for e in i.evidence if e.doc}
            doc_ranks[i.id] = next(
                (r for r, h in enumerate(hs, 1) if any(doc_matches(g, h.doc_id, h.url) for g in gold)), None
            )
            own = company_docs[raw[i.id]["company"]]
            top = hs[:5]
            purity.append(sum(any(doc_matches(d, h.doc_id, h.url) for d in own) for h in top) / max(1, len(top)))

        def at(ranks: dict[str, int | None], k: int) -> float:
            return round(sum(1 for r in ranks.values() if r is not None and r <= k) / len(ranks), 4)

        row = {
            "page@1": at(page_ranks, 1),
            "page@5": at(page_ranks, 5),
            "page@10": at(page_ranks, 10),
            "doc@1": at(doc_ranks, 1),
            "doc@5": at(doc_ranks, 5),
            "company_purity@5": round(float(np.mean(purity)), 4),
            **_latency(times),
        }
        out["modes"][mode] = row
        out.setdefault("page_ranks", {})[mode] = page_ranks
        log.info("financebench %s %s", mode, row)
    return out


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--data", type=Path, default=Path("../shared/eval-data"))
    p.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "sovra-bench-docs")
    p.add_argument("--sets", default="cuad-dev,financebench-dev")
    p.add_argument("--out", type=Path)
    p.add_argument("--no-ingest", action="store_true", help="search the indexes a previous run left in --work")
    p.add_argument("--modes", default=",".join(MODES), help="modes to score")
    p.add_argument("--max-queries", type=int, default=0, help="score only every set's first N questions (0 = all)")
    a = p.parse_args(argv)
    _modes[:] = a.modes.split(",")
    _max_queries[0] = a.max_queries
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    base = Settings()
    a.work.mkdir(parents=True, exist_ok=True)
    cache = a.work / "embed-cache.sqlite"
    result: dict[str, Any] = {"started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    for name in a.sets.split(","):
        folder = a.data / name
        if name.startswith("cuad"):
            result[name] = bench_cuad(base, folder, a.work, cache, not a.no_ingest)
        else:
            result[name] = bench_financebench(base, folder, a.work, cache, not a.no_ingest)
    for name, r in result.items():
        if isinstance(r, dict):
            print(f"\n{name}: ingest {r['ingest']}")
            for mode, row in r["modes"].items():
                print(f"  {mode:8s} " + "  ".join(f"{k} {v}" for k, v in row.items()))
    if a.out:
        a.out.write_text(json.dumps(result, indent=2, default=str))
    return result


if __name__ == "__main__":
    main()
