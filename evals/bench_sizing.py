"""Sizing: disk and RAM of the index per chunk at our dimension (384), with and without int8
scalar quantization, measured on this machine (numbers for docs/sizing.md).

For each size, one stream of synthetic chunks (``bench_corpus``: 384-d dense vectors, real BM25
sparse vectors, ~700-character texts as payload, ACLs) is upserted into two embedded shards (plain,
and scalar-quantized), each then optimized (HNSW built) and closed. RAM is measured in a FRESH
child process that opens the shard and runs 200 hybrid searches: its resident set minus that of
the same child before opening, i.e. what a serving process pays for the shard. qdrant-client's
local mode (pure Python, NOT the Qdrant server) is measured in-process at a small size only.

    python -m sovra.evals.bench_sizing [--sizes 100000] [--local-client-size 10000] [--variants plain,sq,sq-disk]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

_CHILD = r"""
import json, random, sys
from pathlib import Path
from sovra.evals.bench_retrieval import rss_mb
from sovra.index.base import SearchFilter, Sparse
from sovra.index.edge import EdgeIndex
root, name = Path(sys.argv[1]), sys.argv[2]
rng = random.Random(1)
dense = [[rng.gauss(0, 1) for _ in range(384)] for _ in range(200)]
rss0 = rss_mb()
index = EdgeIndex(root, name)
index._open()
rss_open = rss_mb()
flt = SearchFilter(principals=("group:everyone",))
for v in dense:
    index.search(v, Sparse([1, 2, 3], [1.0, 1.0, 1.0]), flt, 10, "hybrid")
print(json.dumps({"rss_before_mb": rss0, "rss_open_mb": rss_open, "rss_after_search_mb": rss_mb()}))
"""


def _measure_child(root: Path, name: str) -> dict[str, float]:
    out = subprocess.run([sys.executable, "-c", _CHILD, str(root), name], capture_output=True, text=True, check=True)
    r = json.loads(out.stdout.strip().splitlines()[-1])
    return {
        "rss_open_delta_mb": round(r["rss_open_mb"] - r["rss_before_mb"], 1),
        "rss_serving_delta_mb": round(r["rss_after_search_mb"] - r["rss_before_mb"], 1),
    }


VARIANTS = {
    "plain": "plain",
    "sq": "int8 scalar quantization",
    "sq-disk": "int8 scalar quantization, float32 vectors on disk",
}
_SETTINGS = {
    "plain": {},
    "sq": {"scalar_quantization": True},
    "sq-disk": {"scalar_quantization": True, "on_disk_vectors": True},
}


def bench_size(
    size: int, root: Path, embedder: Any, variants: tuple[str, ...] = tuple(VARIANTS)
) -> list[dict[str, Any]]:
    from sovra.evals.bench_corpus import DIM, Corpus
    from sovra.evals.bench_retrieval import BATCH, dir_mb
    from sovra.index.base import CollectionSettings, IndexInfo
    from sovra.index.edge import EdgeIndex

    corpus = Corpus(embedder, seed=20251127)
    shards = {VARIANTS[v]: EdgeIndex(root, f"{v}-{size}", CollectionSettings(**_SETTINGS[v])) for v in variants}
    for idx in shards.values():
        idx.ensure(IndexInfo(model_id="synthetic/bench-384", dim=DIM))
    t0 = time.perf_counter()
    payload_bytes = 0
    for start in range(0, size, BATCH):
        points, texts = corpus.batch(start, min(BATCH, size - start))
        payload_bytes += sum(len(t.encode()) for t in texts)
        for idx in shards.values():
            idx.upsert(points)
        done = start + len(points)
        if done % max(BATCH, size // 10 // BATCH * BATCH) == 0 or done == size:
            print(f"{size:,} chunks: upserted {done:,} ({time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)
    build_s = time.perf_counter() - t0
    rows = []
    for label, idx in shards.items():
        t = time.perf_counter()
        idx.optimize()
        optimize_s = time.perf_counter() - t
        idx.close()
        disk, apparent = dir_mb(idx.path)
        row = {
            "engine": "qdrant-edge (embedded)",
            "variant": label,
            "chunks": size,
            "disk_mb": round(disk, 1),
            "disk_apparent_mb": round(apparent, 1),
            "chunk_text_mb": round(payload_bytes / 1e6, 1),
            "raw_dense_mb": round(size * DIM * 4 / 1e6, 1),
            "build_s": round(build_s, 1),
            "optimize_s": round(optimize_s, 1),
            **_measure_child(root, idx.path.name),
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
        shutil.rmtree(idx.path, ignore_errors=True)
    return rows


def bench_local_client(size: int, embedder: Any) -> dict[str, Any]:
    import gc

    from qdrant_client import QdrantClient

    from sovra.evals.bench_corpus import DIM, Corpus
    from sovra.evals.bench_retrieval import BATCH, rss_mb
    from sovra.index.base import IndexInfo
    from sovra.index.server import ServerIndex

    corpus = Corpus(embedder, seed=20251127)
    gc.collect()
    rss0 = rss_mb()
    idx = ServerIndex(QdrantClient(location=":memory:"), "sizing", "local::memory:")
    idx.ensure(IndexInfo(model_id="synthetic/bench-384", dim=DIM))
    for start in range(0, size, BATCH):
        idx.upsert(corpus.batch(start, min(BATCH, size - start))[0])
    gc.collect()
    row = {
        "engine": "qdrant-client local mode (in-memory; NOT the Qdrant server)",
        "variant": "plain",
        "chunks": size,
        "rss_delta_mb_in_process": round(rss_mb() - rss0, 1),
    }
    idx.close()
    print(json.dumps(row), flush=True)
    return row


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100000")
    parser.add_argument("--local-client-size", type=int, default=10000)
    parser.add_argument(
        "--variants",
        default="plain,sq",
        help="shards built side by side: plain, sq (int8 scalar quantization), sq-disk (and vectors on disk)",
    )
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    variants = tuple(v.strip() for v in args.variants.split(",") if v.strip())
    if not variants or set(variants) - set(VARIANTS):
        parser.error(f"--variants takes a comma-separated subset of {', '.join(VARIANTS)}")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from sovra.embeddings import Embedder

    work = Path(tempfile.mkdtemp(prefix="sovra-sizing-"))
    embedder = Embedder(None, work / "models")
    load0 = os.getloadavg()
    rows: list[dict[str, Any]] = []
    for size in (int(s) for s in args.sizes.split(",") if s.strip()):
        rows += bench_size(size, work, embedder, variants)
    if args.local_client_size:
        rows.append(bench_local_client(args.local_client_size, embedder))
    result = {"rows": rows, "cpus": os.cpu_count(), "load_avg_start": load0, "load_avg_end": os.getloadavg()}
    print(json.dumps({k: v for k, v in result.items() if k != "rows"}))
    if args.out:
        args.out.write_text(json.dumps(result, indent=1))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
