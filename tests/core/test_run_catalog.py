"""The run catalogue the compliance console searches: derived from a real audit log (SQLite), written
by the real run recorder, kept current incrementally, and free of personal content."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sovra.audit import AuditLog
from sovra.recorder import RunRecorder
from sovra.run_catalog import RunCatalog, RunQuery

QUESTION = "Did Zoe Quincy-Marsh ask about her mortgage arrears?"


def record_run(
    log: AuditLog,
    user: str,
    *,
    status: str = "answered",
    docs: tuple[tuple[str, str], ...] = (("pol-travel", "Travel and Expenses Policy"),),
    cite: bool = True,
    tool: str = "search_documents",
    agent: str | None = None,
    denied: bool = False,
    error: bool = False,
) -> str:
    """One run as the runtime writes it: start, plan, a tool call with hits, a model call, the end."""
    with RunRecorder(log, user_id=user, interface="api", question=QUESTION, groups=["employees"]) as rec:
        if agent:
            rec.record("run.thread", {"thread_id": "t-" + rec.run_id, "agent": agent})
        rec.record("plan", {"search_query": "mortgage arrears"})
        with rec.step(f"tool.{tool}", args={"query": QUESTION}) as step:
            step.result = {"hits": [{"chunk_id": f"{d}#0abc", "doc_id": d, "title": t, "score": 0.5} for d, t in docs]}
        if denied:
            rec.record("tool.denied", {"tool": "ledger_lookup", "args": {}, "requires": ["group:finance"]})
        rec.model_call(model="base+lora-x", input_tokens=10, output_tokens=5, route="answer")
        if error:
            raise RuntimeError("the model server went away")
        citations = [
            {"n": i, "kind": "document", "title": t, "url": f"file:///{d}", "chunk_id": f"{d}#0abc", "quote": "q"}
            for i, (d, t) in enumerate(docs, start=1)
        ]
        rec.finish(answer={"text": "It says ...", "status": status}, citations=citations if cite else [])
    return rec.run_id


@pytest.fixture
def log(tmp_path):
    with AuditLog(tmp_path / "audit.sqlite") as log:
        yield log


def test_search_by_every_filter(log, tmp_path):
    a1 = record_run(log, "alice")
    a2 = record_run(log, "alice", status="not_found", cite=False, docs=(("pol-remote", "Remote Work Policy"),))
    b1 = record_run(log, "bob", tool="ledger_lookup", agent="reconcile")
    b2 = record_run(log, "bob", denied=True)
    with pytest.raises(RuntimeError):
        record_run(log, "carol", error=True)
    agents = {a1: "assistant", a2: "assistant", b2: "followup"}
    cat = RunCatalog(log, tmp_path / "catalog.sqlite", agents=lambda ids: {i: agents[i] for i in ids if i in agents})

    def ids(**q) -> list[str]:
        return [e.run_id for e in cat.search(RunQuery(**q)).entries]

    everything = cat.search(RunQuery())
    assert everything.total == 5 and everything.entries[1].run_id == b2  # newest first
    assert ids(user="alice") == [a2, a1]
    assert ids(agent="reconcile") == [b1] and ids(agent="followup") == [b2]  # from the log, from the run table
    assert ids(tool="ledger_lookup") == [b2, b1]  # a call, and an attempt that was denied
    c1 = everything.entries[0].run_id  # carol's, which failed after its search
    assert ids(outcome="not_found") == [a2] and ids(outcome="error") == [c1]
    assert ids(outcome="refused") == [b2]
    assert ids(document="remote work") == [a2]  # words of a title (case-insensitive LIKE)
    assert set(ids(document="pol-travel")) == {a1, b1, b2, c1}  # a document id
    assert ids(document="100%_") == []  # LIKE wildcards in the text are literal
    assert ids(user="alice", document="travel") == [a1]
    today = datetime.now(UTC).date()
    assert len(ids(since=today, until=today)) == 5 and ids(until=today - timedelta(days=1)) == []
    page = cat.search(RunQuery(limit=2, offset=2))
    assert page.total == 5 and [e.run_id for e in page.entries] == [b1, a2]
    entry = next(e for e in everything.entries if e.run_id == b2)
    assert entry.tools == ("ledger_lookup", "search_documents") and entry.refused and entry.steps >= 3
    assert cat.choices()["agents"] == ["assistant", "followup", "reconcile"]


def test_refresh_is_incremental_and_a_new_log_starts_over(log, tmp_path):
    cat = RunCatalog(log, tmp_path / "catalog.sqlite")
    first = record_run(log, "alice")
    assert cat.refresh() == len(log.records(first)) and cat.refresh() == 0
    second = record_run(log, "bob")
    assert cat.refresh() == len(log.records(second))
    assert cat.search(RunQuery(user="bob"), refresh=False).entries[0].run_id == second
    cat.close()
    with AuditLog(tmp_path / "other.sqlite") as other:  # the same catalogue file, another log
        cat = RunCatalog(other, tmp_path / "catalog.sqlite")
        assert cat.search(RunQuery()).total == 0
        record_run(other, "carol")
        assert [e.user_id for e in cat.search(RunQuery()).entries] == ["carol"]
        cat.close()


def test_usage_counts_days_agents_outcomes_refusals_and_cited_sources(log, tmp_path):
    record_run(log, "alice", docs=(("pol-travel", "Travel and Expenses Policy"), ("pol-remote", "Remote Work Policy")))
    record_run(log, "alice", docs=(("pol-travel", "Travel and Expenses Policy"),))
    record_run(log, "bob", status="not_found", cite=False)
    record_run(log, "bob", denied=True, agent="followup")
    usage = RunCatalog(log, tmp_path / "catalog.sqlite").usage()
    assert usage.runs == 4 and usage.per_day == [(datetime.now(UTC).date().isoformat(), 4, 1, 1)]
    assert dict(usage.per_agent) == {"unknown": 3, "followup": 1}
    assert usage.not_found_rate == 0.25 and usage.refusal_rate == 0.25
    assert usage.top_sources == [
        ("pol-travel", "Travel and Expenses Policy", 3),  # cited by three runs; retrieval alone does not count
        ("pol-remote", "Remote Work Policy", 1),
    ]


def test_the_catalogue_holds_no_personal_content(log, tmp_path):
    record_run(log, "alice")
    cat = RunCatalog(log, tmp_path / "catalog.sqlite")
    cat.refresh()
    cat.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("catalog.sqlite*"))
    assert b"alice" in raw  # the user id, which the chain itself keeps
    assert b"Quincy-Marsh" not in raw and b"mortgage" not in raw and b"It says" not in raw


def test_since_reads_records_after_a_seq_with_private_values(log):
    run_id = record_run(log, "alice")
    recs = log.records(run_id)
    later = log.since(recs[1].seq, limit=2)
    assert [r.seq for r in later] == [recs[2].seq, recs[3].seq]
    assert log.since(recs[0].seq - 1, 1)[0].data["question"] == QUESTION
    assert log.since(recs[-1].seq) == []
