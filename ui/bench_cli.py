"""`sovra bench`: performance benchmarks as commands (numbers, never pass/fail gates).

Mounted in ui/cli.py with ``app.add_typer(bench_app, name="bench")``.
"""

from __future__ import annotations

import json
import os
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


@bench_app.command("parse")
def parse(
    corpus: Annotated[
        Path | None, typer.Option(help="A folder of documents; default: a freshly generated demo corpus.")
    ] = None,
    synthetic_pages: Annotated[int, typer.Option(min=0, help="Pages of the synthetic PDF set (0 skips it).")] = 1000,
    rounds: Annotated[int, typer.Option(min=1, help="Timed rounds per set; the median is reported.")] = 3,
    out_file: Annotated[Path | None, typer.Option("--out", help="Write the full JSON result here.")] = None,
) -> None:
    """Parse + chunk throughput in pages/s, on the demo corpus and on a synthetic 1,000-page PDF set."""
    from sovra.evals.bench_parse import run_benchmark, summary_lines

    if corpus is not None and not corpus.is_dir():
        raise InputError(f"{corpus} is not a folder")
    with out.status("parsing and chunking..."):
        result = run_benchmark(corpus, synthetic_pages=synthetic_pages, rounds=rounds)
    if out_file is not None:
        out_file.write_text(json.dumps(result, indent=1), encoding="utf-8")
    for line in summary_lines(result):
        out.print(line, markup=False)


@bench_app.command("gateway")
def gateway(calls: Annotated[int, typer.Option(min=10, help="Timed calls per client.")] = 300) -> None:
    """Gateway overhead per call against a local fake vLLM: raw httpx vs litellm vs the gateway."""
    from sovra.evals.bench_gateway import main

    main(["--calls", str(calls)])


@bench_app.command("api")
def api(
    clients: Annotated[int, typer.Option(min=1, help="Concurrent clients (httpx async, loopback).")] = 50,
    stub_requests: Annotated[int, typer.Option(min=1, help="Requests per client with the stub agent.")] = 10,
    model_requests: Annotated[
        int, typer.Option(min=0, help="Requests per client with the assistant and the local model (0 skips).")
    ] = 1,
    out_file: Annotated[Path | None, typer.Option("--out", help="Write the JSON result here.")] = None,
) -> None:
    """HTTP API requests/s and p50/p95 latency: the demo assistant on the local llama.cpp model, and a stub
    agent (no index, no model) for the API's own overhead. Needs `sovra demo` to have built the data dir."""
    from sovra.config import Settings
    from sovra.evals.bench_api import BenchConfig, run_benchmark

    cfg = BenchConfig(
        data_dir=Settings().data_dir,
        clients=clients,
        stub_requests=stub_requests,
        model_requests=model_requests,
    )
    with out.status("benchmarking the HTTP API..."):
        result = run_benchmark(cfg)
    if out_file is not None:
        out_file.write_text(json.dumps(result, indent=1), encoding="utf-8")
    table = Table(title=f"HTTP API, {clients} concurrent clients on loopback")
    for col in ("agent", "requests", "ok", "req/s", "p50 s", "p95 s", "max s", "errors"):
        table.add_column(col, justify="left" if col == "agent" else "right")
    for r in result["results"]:
        lat = r["latency_s"]
        table.add_row(
            r["agent"],
            str(r["requests"]),
            str(r["ok"]),
            f"{r['requests_per_s']:.2f}",
            f"{lat['p50']:.3f}",
            f"{lat['p95']:.3f}",
            f"{lat['max']:.3f}" if lat["max"] is not None else "-",
            json.dumps(r["errors"]) if r["errors"] else "",
        )
    out.print(table)
    for note in result["notes"]:
        out.print(f"[dim]note: {note}[/dim]")
    m = result["machine"]
    out.print(f"[dim]{m['cpus']} CPUs, load {m['load_avg_start']} -> {m['load_avg_end']}[/dim]")


@bench_app.command("agents")
def agents(
    repeat: Annotated[int, typer.Option(min=1, help="Runs of each flagship task.")] = 1,
    out_file: Annotated[Path | None, typer.Option("--out", help="Write the full JSON result here.")] = None,
) -> None:
    """Framework overhead per agent step (time not in the model or retrieval) and steps per flagship task."""
    from sovra.config import Settings
    from sovra.evals.bench_agents import run_benchmark

    with out.status("running the flagship agents..."):
        result = run_benchmark(Settings(), repeat=repeat)
    data = result.to_json()
    if out_file is not None:
        out_file.write_text(json.dumps(data, indent=1), encoding="utf-8")
    table = Table(title="Agent runs (ms)")
    for col in ("agent", "status", "steps", "total", "model", "retrieval", "overhead", "overhead/step"):
        table.add_column(col, justify="left" if col in ("agent", "status") else "right")
    for t in result.tasks:
        table.add_row(
            t.agent,
            t.status,
            str(t.steps),
            f"{t.total_ms:.0f}",
            f"{t.model_ms:.0f}",
            f"{t.retrieval_ms:.0f}",
            f"{t.overhead_ms:.0f}",
            f"{t.overhead_ms_per_step:.1f}",
        )
    out.print(table)
    s = data["summary"]
    verdict = "within" if s["within_target"] else "ABOVE"
    out.print(
        f"framework overhead: {s['overhead_ms_per_step']} ms/step over {s['steps']} steps "
        f"({verdict} the {s['target_ms_per_step']:.0f} ms target)"
    )
    if result.skipped:
        out.print(f"skipped (agent not registered): {', '.join(result.skipped)}")


@bench_app.command("contracts")
def contracts(
    data: Annotated[
        Path | None,
        typer.Option(help="Folder with cuad-dev-qa/ and cuad-dev-consistency/ (default: $SOVRA_EVAL_DATA)."),
    ] = None,
    agent: Annotated[bool, typer.Option(help="Also ingest the pairs and ask the contracts agent end to end.")] = False,
    out_file: Annotated[
        Path | None, typer.Option("--out", help="Write the figures and every wrong value here.")
    ] = None,
) -> None:
    """Key-term extraction against CUAD gold terms, and the consistency check on contract / term-sheet
    pairs: correct, wrong, not stated and undetermined per field; changed terms found; false alarms."""
    from sovra.evals.bench_contracts import main

    argv = (["--data", str(data)] if data else []) + (["--agent"] if agent else [])
    argv += ["--json", str(out_file)] if out_file else []
    code = main(argv)
    if code:
        raise InputError("no evaluation data found", hint="give --data FOLDER or set SOVRA_EVAL_DATA")


@bench_app.command("docs")
def docs(
    data: Annotated[
        Path | None,
        typer.Option(help="Folder with cuad-dev/ and financebench-dev/ (default: $SOVRA_EVAL_DATA)."),
    ] = None,
    sets: Annotated[str, typer.Option(help="Comma-separated sets to run.")] = "cuad-dev,financebench-dev",
    work: Annotated[
        Path | None, typer.Option(help="Where the indexes and the vector cache go (default: a temp folder).")
    ] = None,
    out_file: Annotated[Path | None, typer.Option("--out", help="Write the figures here (JSON).")] = None,
) -> None:
    """Retrieval on real documents (issue 22): CUAD contracts (nDCG@10, recall@10) and FinanceBench
    filings (evidence page @1/@5/@10, company purity) for BM25, dense, hybrid and the default pipeline."""
    from sovra.evals.bench_docs import main

    data = data or Path(os.environ.get("SOVRA_EVAL_DATA") or "../shared/eval-data")
    argv = ["--data", str(data), "--sets", sets] + (["--work", str(work)] if work else [])
    main(argv + (["--out", str(out_file)] if out_file else []))
