"""Audit log benchmark: per-step overhead and sustained append rate with concurrent writers.

    python -m sovra.evals.bench_audit [--pg-url postgresql://postgres@127.0.0.1/test] [--steps 500]

Per-step overhead is a ``RunRecorder.step`` around no work: span start/end + sealing + hashing +
one committed (fsynced) transaction. The append rate is 8 processes appending as fast as they can
into one chain; the chain is verified afterwards. Numbers depend on the disk's fsync latency.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from sovra.audit import AuditLog
from sovra.recorder import RunRecorder
from sovra.telemetry import configure_tracing, get_tracer

PAYLOAD = {"args": {"query": "What is the hotel limit per night in London?", "limit": 6},
           "result": {"hits": [{"chunk_id": f"doc-{i}#p1c{i}", "score": 0.5 + i / 100} for i in range(6)]}}  # fmt: skip


def step_overhead(target: str, steps: int, schema: str | None) -> dict[str, float]:
    configure_tracing()
    log = AuditLog(target, schema=schema)
    times: list[float] = []
    with RunRecorder(log, user_id="bench", interface="bench", question="bench", tracer=get_tracer()) as rec:
        for _ in range(steps):
            t = time.perf_counter()
            with rec.step("tool.search_documents", args=PAYLOAD["args"]) as s:
                s.result = PAYLOAD["result"]
            times.append((time.perf_counter() - t) * 1000)
        rec.finish(answer="done")
    assert log.verify().ok
    log.close()
    times.sort()
    return {
        "mean_ms": statistics.fmean(times),
        "p50_ms": times[len(times) // 2],
        "p95_ms": times[int(len(times) * 0.95)],
    }


def _writer(target: str, schema: str | None, n: int, barrier: Any, q: Any) -> None:
    log = AuditLog(target, schema=schema)
    barrier.wait()
    t = time.perf_counter()
    for _ in range(n):
        log.append("tool.search_documents", PAYLOAD, run_id=f"w{os.getpid()}", user_id="bench")
    q.put(time.perf_counter() - t)
    log.close()


def concurrent_rate(target: str, writers: int, per_writer: int, schema: str | None) -> dict[str, float]:
    AuditLog(target, schema=schema).close()
    ctx = multiprocessing.get_context("fork")
    barrier, q = ctx.Barrier(writers + 1), ctx.Queue()
    procs = [ctx.Process(target=_writer, args=(target, schema, per_writer, barrier, q)) for _ in range(writers)]
    for p in procs:
        p.start()
    barrier.wait()
    start = time.perf_counter()
    for p in procs:
        p.join()
    wall = time.perf_counter() - start
    log = AuditLog(target, schema=schema)
    result = log.verify()
    log.close()
    if not result.ok or result.checked != writers * per_writer:
        raise SystemExit(f"chain check failed after the concurrent run: {result}")
    return {"appends_per_s": writers * per_writer / wall, "wall_s": wall, "records": writers * per_writer}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pg-url", default=os.environ.get("SOVRA_TEST_POSTGRES_URL"))
    ap.add_argument("--steps", type=int, default=500)
    ap.add_argument("--writers", type=int, default=8)
    ap.add_argument("--per-writer", type=int, default=250)
    ap.add_argument("--dir", type=Path, default=None, help="Folder for the SQLite files (default: a temp dir).")
    a = ap.parse_args()
    if a.dir is not None:
        a.dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=a.dir) as d:
        targets: list[tuple[str, str, str | None]] = [("sqlite", str(Path(d) / "bench.sqlite"), None)]
        if a.pg_url:
            targets.append(("postgresql", a.pg_url, f"bench_{uuid.uuid4().hex[:10]}"))
        for name, target, schema in targets:
            try:
                o = step_overhead(target, a.steps, schema)
                print(
                    f"{name:<10} step overhead (append+fsync+span): mean {o['mean_ms']:.2f} ms, "
                    f"p50 {o['p50_ms']:.2f} ms, p95 {o['p95_ms']:.2f} ms over {a.steps} steps"
                )
                target2 = target if schema else str(Path(d) / "bench-mp.sqlite")
                schema2 = f"{schema}_mp" if schema else None
                r = concurrent_rate(target2, a.writers, a.per_writer, schema2)
                print(
                    f"{name:<10} {a.writers} concurrent writers: {r['appends_per_s']:.0f} appends/s "
                    f"({r['records']} records in {r['wall_s']:.2f} s), chain verified"
                )
            finally:
                if schema:
                    _drop_schemas(target, [schema, f"{schema}_mp"])


def _drop_schemas(url: str, schemas: list[str]) -> None:
    import psycopg

    with psycopg.connect(_plain(url), autocommit=True) as c:
        for s in schemas:
            c.execute(f'DROP SCHEMA IF EXISTS "{s}" CASCADE')


def _plain(url: str) -> str:
    import re

    return re.sub(r"^postgres(?:ql)?\+\w+://", "postgresql://", url)


if __name__ == "__main__":
    main()
