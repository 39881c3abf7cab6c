"""Parse + chunk throughput (pages/s): the demo corpus and a synthetic set of 1,000 PDF pages.

What is timed is what ingest does before embedding: ``parse_file`` (pypdf, python-docx, bs4, ...)
then ``chunk_pages``. Embedding is left out (``sovra bench retrieval`` measures it). Each set is
parsed ``rounds`` times; the median round is reported. Run: ``sovra bench parse`` or
``python -m sovra.evals.bench_parse``.
"""

from __future__ import annotations

import os
import platform
import random
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from sovra.chunking import chunk_pages
from sovra.connectors.parsers import is_supported, parse_file
from sovra.errors import ParseError

_VOCABULARY = (
    "agreement supplier bank shall notice termination period payment invoice clause liability party "
    "services fee annex confidential data processing audit rights governing law frankfurt days written "
    "effective date renewal term obligations breach remedy interest loan facility covenant"
)
_WORDS = _VOCABULARY.split()


def synthetic_pdfs(folder: Path, pages: int = 1000, pages_per_file: int = 20, seed: int = 7) -> list[Path]:
    """``pages`` pages of contract-like text with numbered clauses, ``pages_per_file`` per PDF."""
    from fpdf import FPDF

    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    clause = 0
    for f in range(0, pages, pages_per_file):
        pdf = FPDF()
        pdf.set_auto_page_break(auto=False)
        for _ in range(min(pages_per_file, pages - f)):
            pdf.add_page()
            pdf.set_font("Helvetica", "", 10)
            pdf.set_y(15)
            for _ in range(6):
                clause += 1
                pdf.set_font("Helvetica", "B", 11)
                pdf.multi_cell(0, 6, f"{clause}. Clause {clause}", new_x="LMARGIN", new_y="NEXT")
                pdf.set_font("Helvetica", "", 10)
                text = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(55, 75)))
                pdf.multi_cell(0, 5, text.capitalize() + ".", new_x="LMARGIN", new_y="NEXT")
        path = folder / f"synthetic-{f // pages_per_file:03d}.pdf"
        pdf.output(str(path))
        paths.append(path)
    return paths


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and is_supported(p) and not p.name.endswith(".meta.json"))


def _round(files: list[Path], chunk_chars: int, chunk_overlap: int) -> dict[str, Any]:
    by_format: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])  # seconds, pages, chunks
    failed = 0
    t0 = time.perf_counter()
    for path in files:
        start = time.perf_counter()
        try:
            pages = parse_file(path)
        except ParseError:
            failed += 1
            continue
        chunks = chunk_pages(path.stem, pages, chunk_chars, chunk_overlap)
        acc = by_format[path.suffix.lower()]
        acc[0] += time.perf_counter() - start
        acc[1] += len(pages)
        acc[2] += len(chunks)
    total = time.perf_counter() - t0
    return {"seconds": total, "by_format": dict(by_format), "failed": failed}


def measure(files: list[Path], rounds: int, chunk_chars: int, chunk_overlap: int) -> dict[str, Any]:
    runs = [_round(files, chunk_chars, chunk_overlap) for _ in range(rounds)]
    median = sorted(runs, key=lambda r: r["seconds"])[len(runs) // 2]
    pages = sum(v[1] for v in median["by_format"].values())
    chunks = sum(v[2] for v in median["by_format"].values())
    return {
        "files": len(files),
        "pages": int(pages),
        "chunks": int(chunks),
        "failed": median["failed"],
        "seconds": round(median["seconds"], 3),
        "pages_per_s": round(pages / median["seconds"], 1) if median["seconds"] else None,
        "all_rounds_s": [round(r["seconds"], 3) for r in runs],
        "by_format": {
            fmt: {"pages": int(p), "chunks": int(c), "pages_per_s": round(p / s, 1) if s else None}
            for fmt, (s, p, c) in sorted(median["by_format"].items())
        },
    }


def run_benchmark(
    corpus: Path | None = None,
    synthetic_pages: int = 1000,
    rounds: int = 3,
    chunk_chars: int = 1200,
    chunk_overlap: int = 150,
) -> dict[str, Any]:
    result: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "load_avg_start": os.getloadavg()[0]},
        "rounds": rounds,
    }
    with tempfile.TemporaryDirectory(prefix="sovra-bench-parse-") as tmp:
        if corpus is None:
            from sovra.evals.demo_corpus import generate

            corpus = Path(tmp) / "demo"
            generate(corpus)
        demo_files = _files(corpus)
        result["demo"] = measure(demo_files, rounds, chunk_chars, chunk_overlap)
        if synthetic_pages:
            t0 = time.perf_counter()
            pdfs = synthetic_pdfs(Path(tmp) / "synthetic", synthetic_pages)
            result["synthetic_generation_s"] = round(time.perf_counter() - t0, 2)
            result["synthetic"] = measure(pdfs, rounds, chunk_chars, chunk_overlap)
    result["machine"]["load_avg_end"] = os.getloadavg()[0]
    return result


def summary_lines(result: dict[str, Any]) -> list[str]:
    lines = []
    for key, label in (("demo", "demo corpus"), ("synthetic", "synthetic PDFs")):
        r = result.get(key)
        if not r:
            continue
        formats = ", ".join(f"{fmt} {v['pages_per_s']} pages/s" for fmt, v in r["by_format"].items())
        lines.append(
            f"{label}: {r['files']} files, {r['pages']} pages, {r['chunks']} chunks in {r['seconds']}s "
            f"= {r['pages_per_s']} pages/s (median of {result['rounds']}; {formats})"
        )
    m = result["machine"]
    lines.append(f"{m['cpus']} CPUs, python {m['python']}, load {m['load_avg_start']:.1f} -> {m['load_avg_end']:.1f}")
    return lines


if __name__ == "__main__":
    import json
    import sys

    res = run_benchmark()
    print("\n".join(summary_lines(res)))
    if "--json" in sys.argv:
        print(json.dumps(res, indent=1))
