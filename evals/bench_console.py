"""Compliance console benchmark: search 100k seeded runs and open a 50-step run (target: 1 s each).

    python -m sovra.evals.bench_console [--runs 100000] [--data DIR] [--out console.json]

Seeds an audit log (and run table) with ``--runs`` runs shaped like the runtime's (start, plan, a
tool call with three hits, a model call, the answer with citations; one run in ten has a refusal, one
in ten is "not found"; 5 agents, 40 users, 60 documents) plus one run of 50 steps, then times:

- the catalogue's first build (reading the whole log once; later refreshes read only new records);
- console searches (newest first, one page of 50, with the total) with each filter and some together,
  each including the incremental refresh a search does first. The log stamps records with the time
  they are written, so every seeded run is from today: the date filter is timed at its worst case,
  matching every run;
- opening the 50-step run as a timeline (read its records, unseal, build the steps, and append the
  ``console.open_run`` record, fsynced).

Seeding writes with ``synchronous = OFF``: it is set-up, not what is measured.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sovra.audit import new_run_id
from sovra.config import Settings
from sovra.identity import User
from sovra.run_catalog import RunQuery

AGENTS = ("assistant", "contracts", "reconcile", "followup", "consistency")
TOOLS = ("search_documents", "ledger_lookup", "extract_terms")
OUTCOMES = ("answered",) * 8 + ("not_found", "uncited")
AUDITOR = User("erin", "Erin Auditor", ("auditor",))


def _doc(i: int) -> tuple[str, str]:
    return f"sharepoint:01DOC{i:04d}", f"Policy {i:02d} " + ("Travel" if i % 3 == 0 else "Credit" if i % 3 else "Risk")


def seed(settings: Settings, runs: int, *, seed: int = 7) -> list[str]:
    """Write ``runs`` runs (audit log + run table); returns their ids, oldest first."""
    from sovra.audit import open_audit
    from sovra.runs import RunStore

    rnd = random.Random(seed)
    log = open_audit(settings)
    log._connect().execute("PRAGMA synchronous = OFF")  # set-up only: see the module docstring
    store = RunStore(settings)
    ids: list[str] = []
    rows: list[tuple[Any, ...]] = []
    for n in range(runs):
        run_id = new_run_id()
        user, agent = f"user{rnd.randrange(40):02d}", rnd.choice(AGENTS)
        when = time.time()
        docs = [_doc(rnd.randrange(60)) for _ in range(3)]
        q = f"question {n} about {docs[0][1]}"
        log.append("run.start", {"user": user, "groups": ["employees"], "interface": "api", "question": q},
                   run_id=run_id, user_id=user)  # fmt: skip
        log.append("plan", {"search_query": q[:60], "ledger_lookup": False}, run_id=run_id, user_id=user)
        tool = rnd.choice(TOOLS)
        hits = [{"chunk_id": f"{d}#{k:02x}", "doc_id": d, "page": 1 + k, "score": 0.9 - k / 10}
                for k, (d, _) in enumerate(docs)]  # fmt: skip
        log.append(f"tool.{tool}", {"args": {"query": q, "limit": 6}, "result": {"hits": hits}, "duration_ms": 12.5},
                   run_id=run_id, user_id=user)  # fmt: skip
        if n % 10 == 3:
            log.append("tool.denied", {"tool": "ledger_lookup", "args": {}, "requires": ["group:finance"]},
                       run_id=run_id, user_id=user)  # fmt: skip
        log.append("model.call", {"model": "qwen2.5-7b+lora-policy", "route": "answer", "input_tokens": 900,
                                  "output_tokens": 80, "duration_ms": 640.0}, run_id=run_id, user_id=user)  # fmt: skip
        status = rnd.choice(OUTCOMES)
        cites = [] if status == "not_found" else [
            {"n": 1, "kind": "document", "title": docs[0][1], "url": "https://x", "chunk_id": hits[0]["chunk_id"],
             "quote": "..."}
        ]  # fmt: skip
        log.append("run.end", {"answer": {"text": "...", "status": status}, "citations": cites},
                   run_id=run_id, user_id=user)  # fmt: skip
        rows.append((run_id, run_id, agent, user, "api", q, status, None, 4, 980, "{}", None, None,
                     when, when))  # fmt: skip
        ids.append(run_id)
    with store._lock:
        store.conn.execute("BEGIN")
        store.conn.executemany(f"INSERT INTO sovra_runs VALUES ({', '.join('?' * 15)})", rows)
        store.conn.execute("COMMIT")
    store.close()
    log.close()
    return ids


def seed_long_run(settings: Settings, steps: int = 50) -> str:
    """One run of ``steps`` records: plan, searches, tool calls, model calls, an approval, the answer."""
    from sovra.audit import open_audit

    log = open_audit(settings)
    run_id = new_run_id()
    log.append("run.start", {"user": "user01", "groups": ["employees"], "interface": "api", "question": "long"},
               run_id=run_id, user_id="user01")  # fmt: skip
    for i in range(steps - 2):
        kind, data = [
            ("plan", {"search_query": f"step {i}"}),
            (
                "tool.search_documents",
                {
                    "args": {"query": f"q{i}"},
                    "result": {
                        "hits": [
                            {
                                "chunk_id": f"sharepoint:01DOC{j:04d}#{i:02x}",
                                "doc_id": f"sharepoint:01DOC{j:04d}",
                                "page": 1,
                                "score": 0.5,
                            }
                            for j in range(6)
                        ]
                    },
                },
            ),
            ("model.call", {"model": "qwen2.5-7b+lora-policy", "route": "answer", "input_tokens": 800}),
            ("approval.decision", {"approved": True, "approver": "erin", "reason": "ok", "at": "now"}),
        ][i % 4]
        log.append(kind, data, run_id=run_id, user_id="user01")
    log.append("run.end", {"answer": {"text": "done", "status": "answered"}, "citations": []},
               run_id=run_id, user_id="user01")  # fmt: skip
    log.close()
    return run_id


def _time(fn: Any, repeat: int) -> dict[str, float]:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return {"median_ms": round(statistics.median(times), 1), "max_ms": round(max(times), 1)}


def run(runs: int, data: Path, repeat: int = 5) -> dict[str, Any]:
    from sovra.audit import open_audit
    from sovra.runs import RunStore
    from sovra.ui.compliance import Console

    settings = Settings(data_dir=data)
    t = time.perf_counter()
    seed(settings, runs)
    long_run = seed_long_run(settings)
    seeded_s = time.perf_counter() - t
    audit, store = open_audit(settings), RunStore(settings)
    console = Console(settings, audit, store)
    t = time.perf_counter()
    console.catalog.refresh()
    build_s = time.perf_counter() - t
    today = datetime.now(UTC).date()
    queries: dict[str, RunQuery] = {
        "all (newest page)": RunQuery(),
        "user": RunQuery(user="user07"),
        "agent": RunQuery(agent="reconcile"),
        "date range (every run)": RunQuery(since=today - timedelta(days=7), until=today),
        "tool": RunQuery(tool="extract_terms"),
        "document (title words)": RunQuery(document="Policy 17 Credit"),
        "document (id)": RunQuery(document="sharepoint:01DOC0042"),
        "outcome not_found": RunQuery(outcome="not_found"),
        "refused": RunQuery(outcome="refused"),
        "user + tool + dates": RunQuery(user="user03", tool="ledger_lookup", since=today - timedelta(days=7)),
        "last page of all": RunQuery(offset=runs - 50),
    }
    results: dict[str, Any] = {}
    for name, q in queries.items():
        total = console.search(AUDITOR, q).total
        results[name] = {"matches": total, **_time(lambda q=q: console.search(AUDITOR, q), repeat)}
    opened = _time(lambda: console.open_run(AUDITOR, long_run), repeat)
    steps = len(console.open_run(AUDITOR, long_run).steps)
    usage = _time(lambda: console.usage(AUDITOR, date(2000, 1, 1), today), 3)
    console.close()
    store.close()
    audit.close()
    return {
        "runs": runs,
        "records": runs * 5 + runs // 10 + 50,
        "seed_s": round(seeded_s, 1),
        "catalog_build_s": round(build_s, 1),
        "search": results,
        "open_run": {"steps": steps, **opened},
        "usage_all_time": usage,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=100_000)
    ap.add_argument("--data", type=Path, default=None, help="Data dir to seed (default: a temporary one).")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        result = run(args.runs, args.data or Path(tmp) / "data", args.repeat)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    worst = max(r["max_ms"] for r in result["search"].values())
    print(f"\nworst search {worst:.0f} ms, open 50-step run {result['open_run']['max_ms']:.0f} ms (target 1000 ms)")


if __name__ == "__main__":
    main()
