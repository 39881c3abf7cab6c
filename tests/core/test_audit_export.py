"""Export (HTML/JSON), access checks and replay of a recorded run against the real demo index."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from sovra.audit import AuditLog
from sovra.identity import User
from sovra.recorder import RunRecorder
from sovra.runtime import Services
from sovra.tools.base import ToolContext
from sovra.tools.search import SearchArgs, search_documents
from sovra.ui.audit_report import AuditAccessError, load_run, replay, report_html, report_json

EVIL = '<script>alert("x")</script> & <img src=http://evil.example/x.png>'


def record_run(log: AuditLog, services: Services, user: User, question: str) -> str:
    with RunRecorder(log, user_id=user.id, groups=user.groups, interface="test", question=question) as rec:
        args = SearchArgs(query=question, limit=4)
        with rec.step("tool.search_documents", args=args.model_dump()) as step:
            hits = search_documents(args, ToolContext(user=user, services=services)).hits
            step.result = {"hits": [{"chunk_id": h.chunk_id, "score": h.score} for h in hits]}
        cites = [{"n": 1, "title": hits[0].title, "url": hits[0].url, "page": hits[0].page,
                  "chunk_id": hits[0].chunk_id, "quote": hits[0].text[:200] + EVIL}]  # fmt: skip
        rec.finish(answer={"text": f"Answer {EVIL}", "status": "answered"}, citations=cites)
        return rec.run_id


# Builds its own demo corpus (about 50 s on the shared 2-core machine): run with the slow tests.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def services(module_demo_settings):  # type: ignore[no-untyped-def]
    s = Services(module_demo_settings)
    yield s
    s.close()


def test_export_is_self_contained_and_escaped(tmp_path: Path, services: Services) -> None:
    log = AuditLog(tmp_path / "a.sqlite")
    alice = services.directory.get("alice")
    run = record_run(log, services, alice, "How many days per week may I work from home?")
    report = report_json(log, load_run(log, run, alice))
    assert report["question"].startswith("How many days") and report["chain"]["ok"]
    assert report["sources"][0]["quote"] and report["steps"][0]["kind"] == "run.start"
    json.dumps(report)  # JSON-serialisable as is
    page = report_html(report)
    assert "<script" not in page and "&lt;script&gt;" in page
    assert not re.search(r"<[^>]+\b(src|href)\s*=", page)  # no tag loads anything, from anywhere
    assert "&lt;img src=http://evil.example/x.png&gt;" in page  # the text is shown, inert
    assert "How many days per week" in page and "intact" in page


def test_only_the_owner_and_auditors_may_read_a_run(tmp_path: Path, services: Services) -> None:
    log = AuditLog(tmp_path / "a.sqlite")
    run = record_run(log, services, services.directory.get("alice"), "hotel limit in London?")
    with pytest.raises(AuditAccessError):
        load_run(log, run, services.directory.get("bob"))
    assert load_run(log, run, User("erin", "Erin", ("auditor",)))
    assert load_run(log, run, None)  # the operator holding the store


def test_replay_reports_no_change_then_a_change(tmp_path: Path, services: Services) -> None:
    log = AuditLog(tmp_path / "a.sqlite")
    run = record_run(log, services, services.directory.get("bob"), "Acme supply contract early termination")
    diffs = replay(log.records(run), services)
    assert [d.status for d in diffs] == ["same"], diffs
    # Make the record disagree with the index, the way a re-ingest would: one hit gone, one score moved.
    recs = log.records(run)
    step = next(r for r in recs if r.kind == "tool.search_documents")
    hits = step.data["result"]["hits"]
    forged = [{"chunk_id": "gone-chunk", "score": 0.9}, {"chunk_id": hits[1]["chunk_id"], "score": 0.0}]
    with RunRecorder(log, user_id="bob", groups=["employees", "finance"], interface="t", question="q") as rec:
        with rec.step("tool.search_documents", args=step.data["args"]) as s:
            s.result = {"hits": forged}
        changed_run = rec.run_id
    diff = replay(log.records(changed_run), services)[0]
    assert diff.status == "changed" and diff.removed == ["gone-chunk"]
    assert hits[1]["chunk_id"] in diff.score_changes and hits[0]["chunk_id"] in diff.added
    log.erase(run_id=changed_run)
    assert replay(log.records(changed_run), services)[0].status == "skipped"
