"""`sovra bench`: performance benchmarks as commands (numbers, never pass/fail gates).

Mounted in ui/cli.py with ``app.add_typer(bench_app, name="bench")``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from sovra.errors import InputError

bench_app = typer.Typer(no_args_is_help=True)
out = Console(highlight=False)


@bench_app.callback()
def bench() -> None:
    """Benchmarks: retrieval latency at scale and ingestion overhead (numbers, not gates)."""
    # A callback keeps `bench` a command group even while it has a single command.


def _sizes(raw: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(x) for x in raw.split(",") if x.strip())
    except ValueError as exc:
        raise InputError(f"--sizes must be comma-separated integers, got {raw!r}") from exc
    if not sizes or min(sizes) < 1:
        raise InputError(f"--sizes needs at least one positive size, got {raw!r}")
    return sizes


@bench_app.command("retrieval")
def retrieval(
    sizes: Annotated[str, typer.Option(help="Comma-separated index sizes in chunks.")] = "10000,100000",
    queries: Annotated[int, typer.Option(min=1, help="Timed queries per mode and size.")] = 200,
    warmup: Annotated[int, typer.Option(min=0, help="Untimed warm-up queries.")] = 20,
    ingest_chunks: Annotated[
        int, typer.Option(min=0, help="Chunks for the ingestion-overhead run (0 skips it).")
    ] = 500,
    ingest_rounds: Annotated[int, typer.Option(min=1, help="Pipeline/raw pairs, alternated.")] = 3,
    local_client: Annotated[
        bool, typer.Option(help="Also time qdrant-client's local mode (sizes <= 10k; not a Qdrant server).")
    ] = False,
    seed: Annotated[int, typer.Option(help="Seed of the synthetic corpus and queries.")] = 20251127,
    out_file: Annotated[Path | None, typer.Option("--out", help="Write the full JSON result here.")] = None,
) -> None:
    """Search latency per mode and size, shard RAM and disk, ingestion overhead over raw embedding.

    Modes: dense, sparse, hybrid, and hybrid as a user with a restrictive ACL. Dense vectors of the
    search benchmark are synthetic (seeded); the ingestion run uses the real model.
    """
    from sovra.evals.bench_retrieval import MODES, BenchConfig, run_benchmark

    cfg = BenchConfig(
        sizes=_sizes(sizes),
        queries=queries,
        warmup=warmup,
        ingest_chunks=ingest_chunks,
        ingest_rounds=ingest_rounds,
        local_client=local_client,
        seed=seed,
    )
    with out.status("benchmarking (about 10-15 minutes at the default sizes on 2 cores)..."):
        result = run_benchmark(cfg)
    if out_file is not None:
        out_file.write_text(json.dumps(result, indent=1), encoding="utf-8")

    table = Table(title="Index.search latency, ms (p50 / p95)")
    for col in ("backend", "chunks", "state", *MODES, "disk MB", "RSS MB"):
        table.add_column(col, justify="left" if col in ("backend", "state") else "right")
    for r in result["search"]:
        for st in r["states"]:
            lat = st["latency_ms"]
            table.add_row(
                r["backend"],
                f"{r['size']:,}",
                st["state"],
                *(f"{lat[m]['p50']:.1f} / {lat[m]['p95']:.1f}" for m in MODES),
                f"{st['disk_mb']:.0f}" if "disk_mb" in st else "-",
                f"{st['rss_mb']:.0f}" if "rss_mb" in st else "-",
            )
    out.print(table)
    for r in result["search"]:
        out.print(f"{r['backend']} {r['size']:,}: build {r['build']}")
    ing = result["ingestion"]
    if ing:
        out.print(
            f"ingestion of {ing['chunks']} chunks: embedding alone {ing['raw_chunks_per_s']} chunks/s, "
            f"full pipeline {ing['pipeline_chunks_per_s']} chunks/s (medians of {len(ing['raw_embed_s'])} runs each)"
        )
    for line in result["verdict"]["lines"]:
        out.print(line)
    for note in result["notes"]:
        out.print(f"[dim]note: {note}[/dim]")
    m = result["machine"]
    out.print(f"[dim]{m['cpus']} CPUs, load {m['load_avg_start']} -> {m['load_avg_end']}, {result['total_s']} s[/dim]")
