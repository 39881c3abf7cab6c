"""Run state under races (issue 23 part 4): approve, cancel and a run's own end change the run table
by compare-and-set, every attempt is audited, and an owner gone from the directory strands nothing."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest
from fakes.vllm_server import FakeVLLM
from sdk_support import kinds, make_runtime, text_reply, tool_reply

from sovra.agents.sdk import define_agent
from sovra.errors import ApprovalError, SovraError
from sovra.tools.cases import open_case

cases_agent = define_agent("cases", "Opens follow-up cases.", tools=[open_case])
chat = define_agent("chat", "Chats.", grounded=False)  # no tools: its answers are the model's own


@pytest.fixture
def fake() -> Iterator[FakeVLLM]:
    f = FakeVLLM()
    yield f
    f.close()


def test_approval_for_an_owner_gone_from_the_directory_fails_cleanly_and_the_run_stays_cancellable(tmp_path, fake):
    fake.script = [tool_reply("open_case", counterparty="Acme", summary="x", amount=1)]
    rt = make_runtime(tmp_path, fake, cases_agent)
    run_id = rt.ask(cases_agent, "Open a case", "bob").run_id
    rt.close()
    rt = make_runtime(tmp_path, fake, cases_agent)  # another process (the CLI)
    users_file = tmp_path / "data" / "users.json"
    users = json.loads(users_file.read_text())
    del users["bob"]  # removed (or an OIDC-only user the directory never knew)
    users_file.write_text(json.dumps(users))
    with pytest.raises(ApprovalError, match="not in the user directory") as err:
        rt.resume(run_id, "erin", approved=True, reason="ok")
    assert "sovra runs cancel" in (err.value.hint or "")
    assert rt.runs.get(run_id).status == "awaiting_approval"  # not stranded "running"
    refused = [r.data for r in rt.services.audit.records(run_id) if r.kind == "approval.refused"]
    assert refused and refused[0]["by"] == "erin" and "not in the user directory" in refused[0]["error"]
    assert "approval.decision" not in kinds(rt, run_id)

    rt.cancel(run_id)
    assert rt.runs.get(run_id).status == "cancelled"
    assert "run.cancelled" in kinds(rt, run_id)
    # A late decision is refused, and that attempt is on the record too.
    with pytest.raises(ApprovalError, match="not waiting"):
        rt.resume(run_id, "erin", approved=True, reason="ok")
    assert kinds(rt, run_id).count("approval.refused") == 2
    assert rt.services.audit.verify().ok
    rt.close()


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
def test_a_cancel_that_read_the_run_before_it_ended_does_not_overwrite_its_end(tmp_path, fake, monkeypatch, store):
    """The aborted-stream race: cancel read "running", the run then ended; the table keeps its end."""
    kw = {}
    if store == "postgres":
        if not os.environ.get("SOVRA_TEST_POSTGRES_URL"):
            pytest.skip("SOVRA_TEST_POSTGRES_URL not set")
        kw["checkpoint_url"] = os.environ["SOVRA_TEST_POSTGRES_URL"]
    fake.script = [text_reply("Hello.")]
    rt = make_runtime(tmp_path, fake, chat, **kw)
    a = rt.ask(chat, "Hi", "alice")
    ended = rt.runs.get(a.run_id)
    assert ended.status == "answered"
    stale = dataclasses.replace(ended, status="running")
    real_get = rt.runs.get
    monkeypatch.setattr(rt.runs, "get", lambda run_id: stale if run_id == a.run_id else real_get(run_id))
    rt.cancel(a.run_id)
    monkeypatch.undo()
    assert rt.runs.get(a.run_id).status == "answered"  # the old code wrote "cancelling" over it
    [req] = [r.data for r in rt.services.audit.records(a.run_id) if r.kind == "run.cancel_requested"]
    assert req == {"was": "running", "outcome": "answered"}
    assert "run.cancelled" not in kinds(rt, a.run_id)
    rt.close()


def test_a_running_run_whose_process_is_gone_is_cancelled_at_once(tmp_path, fake):
    fake.script = [text_reply("Hello.")]
    rt = make_runtime(tmp_path, fake, chat)
    run_id = rt.ask(chat, "Hi", "alice").run_id
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    rt.runs.update(run_id, status="running", pid=int(dead.stdout))  # as a killed process leaves it
    rt.cancel(run_id)
    assert rt.runs.get(run_id).status == "cancelled"  # not "cancelling" with nobody to see it
    assert kinds(rt, run_id)[-2:] == ["run.cancel_requested", "run.cancelled"]
    rt.close()


def test_a_refused_crash_resume_is_audited_and_the_run_stays_cancellable(tmp_path, fake):
    fake.script = [text_reply("Hello.")]
    rt = make_runtime(tmp_path, fake, chat)
    run_id = rt.ask(chat, "Hi", "alice").run_id
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    rt.runs.update(run_id, status="running", pid=int(dead.stdout))
    users_file = tmp_path / "data" / "users.json"
    users = json.loads(users_file.read_text())
    del users["alice"]
    users_file.write_text(json.dumps(users))
    with pytest.raises(SovraError, match="unknown user"):
        rt.resume_crashed(run_id, agent=chat)
    assert rt.runs.get(run_id).status == "running"
    assert "run.resume_refused" in kinds(rt, run_id)
    rt.cancel(run_id)
    assert rt.runs.get(run_id).status == "cancelled"
    rt.close()
