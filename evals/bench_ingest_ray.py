"""Ingestion throughput: the local pipeline against the Ray path with 1 and 2 workers.

Each run starts from an empty index and state file, on the same documents, and reports chunks
embedded per second end to end (Ray's start-up included, and separately without it).

    python -m sovra.evals.bench_ingest_ray [--synthetic-docs 300] [--no-demo]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
import time
from pathlib import Path
from typing import Any

from sovra.config import Settings
from sovra.documents import Document, Page

EVERYONE = frozenset({"group:everyone"})


class SyntheticConnector:
    """Seeded banking-ish documents from ``bench_corpus`` (loaders are closures: Ray ships them)."""

    def __init__(self, n: int, seed: int = 20251127) -> None:
        from sovra.evals.bench_corpus import banking_text

        rng = random.Random(seed)
        self.name = "synthetic"
        self.texts = {f"syn-{i:05d}": banking_text(rng, rng.randint(1500, 6000)) for i in range(n)}

    def documents(self) -> Any:
        for doc_id, text in self.texts.items():
            yield Document(doc_id, f"Agreement {doc_id}", self.name, f"mem://{doc_id}", "1", EVERYONE, _loader(text))


def _loader(text: str) -> Any:
    def load() -> list[Page]:
        return [Page(1, text)]

    return load


def _demo_connectors(root: Path) -> list[Any]:
    from sovra.evals.demo_corpus import generate
    from sovra.ui.commands import detect_kind, make_connector

    corpus = root / "demo-corpus"
    if not (corpus / "users.json").is_file():
        generate(corpus)
    # As `sovra demo` ingests it: the policies and the contracts (documents; the ledger is rows).
    return [make_connector(detect_kind(corpus / n), n, corpus / n) for n in ("sharepoint", "contracts")]


def _run(mode: str, connectors: list[Any], work: Path, settings: Settings) -> dict[str, Any]:
    from sovra.index.edge import EdgeIndex
    from sovra.ingest import Ingestor
    from sovra.runtime import Services

    run_dir = Path(tempfile.mkdtemp(prefix=f"{mode}-", dir=work))
    index = EdgeIndex(run_dir / "qdrant", "bench")
    embedder = Services(settings).embedder
    ingestor = Ingestor(index, embedder, run_dir / "state.sqlite", settings.chunk_chars, settings.chunk_overlap)
    t0 = time.perf_counter()
    startup = 0.0
    if mode == "local":
        report = ingestor.run(connectors)
    else:
        from sovra.ingest_ray import run_ray_ingest

        report, stats = run_ray_ingest(ingestor, connectors, settings, workers=int(mode.split("-")[1]))
        startup = stats.startup_s
        assert stats.local_fallbacks == 0, stats
    seconds = time.perf_counter() - t0
    index.close()
    chunks = report.chunks_embedded
    return {
        "mode": mode,
        "documents": report.added,
        "chunks": chunks,
        "seconds": round(seconds, 1),
        "ray_startup_s": round(startup, 1),
        "chunks_per_s": round(chunks / seconds, 1),
        "chunks_per_s_after_startup": round(chunks / max(1e-9, seconds - startup), 1),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--synthetic-docs", type=int, default=300)
    parser.add_argument("--no-demo", action="store_true")
    parser.add_argument("--modes", default="local,ray-1,ray-2")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    work = Path(tempfile.mkdtemp(prefix="sovra-bench-ray-"))
    settings = Settings(data_dir=work / "data")
    sets: list[tuple[str, list[Any]]] = []
    if not args.no_demo:
        sets.append(("demo corpus", _demo_connectors(work)))
    if args.synthetic_docs:
        sets.append((f"synthetic {args.synthetic_docs} docs", [SyntheticConnector(args.synthetic_docs)]))
    results = []
    load0 = os.getloadavg()[0]
    for label, connectors in sets:
        for mode in args.modes.split(","):
            r = {"set": label, **_run(mode, connectors, work, settings)}
            results.append(r)
            print(json.dumps(r), flush=True)
    print(f"{os.cpu_count()} CPUs, load average {load0:.1f} -> {os.getloadavg()[0]:.1f}")
    if args.out:
        args.out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
