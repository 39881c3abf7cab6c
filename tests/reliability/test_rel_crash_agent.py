"""Crash and restart of an agent run: kill -9 in the middle of a run, then resume it elsewhere.

A real child process runs a three-step LangGraph agent through the real runtime (SQLite checkpoints
and audit log). Every step has a side effect outside the graph (a row in its own SQLite table, like
a payment or a case a tool opens). One step blocks on a marker file and prints READY first, so the
kill point is exact: steps before it have finished (and were checkpointed), the blocked one has not
done its side effect. The child is SIGKILLed there; another process (a second child, or the test)
resumes the run with ``Runtime.resume_crashed``. Then: the run finished exactly once, every side
effect happened exactly once, the audit shows the crash (``run.resume``, why "crash", the dead pid)
and the whole chain verifies.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any, TypedDict

import pytest
from langchain_core.runnables import RunnableConfig

from sovra.config import Settings
from sovra.runtime import Answer, RunContext, Runtime

pytestmark = pytest.mark.reliability

STEPS = ("reserve", "post", "notify")
BLOCK_ENV = "SOVRA_REL_BLOCK_FILE"  # the file's text names the step that blocks
EFFECTS = "effects.sqlite"
USERS = {"alice": {"name": "Alice", "groups": ["employees"]}, "erin": {"name": "Erin", "groups": ["auditor"]}}


class State(TypedDict, total=False):
    question: str
    done: list[str]


def _effect(data_dir: Path, run_id: str, step: str) -> None:
    """The outside world: one row per executed step, committed at once (not idempotent on purpose)."""
    with sqlite3.connect(data_dir / EFFECTS, timeout=30, isolation_level=None) as db:
        db.execute("CREATE TABLE IF NOT EXISTS effects (run_id TEXT, step TEXT, pid INTEGER)")
        db.execute("INSERT INTO effects VALUES (?, ?, ?)", (run_id, step, os.getpid()))


def _effects(data_dir: Path, run_id: str) -> list[str]:
    path = data_dir / EFFECTS
    if not path.exists():
        return []
    with sqlite3.connect(path) as db:
        return [r[0] for r in db.execute("SELECT step FROM effects WHERE run_id = ? ORDER BY rowid", (run_id,))]


class PaymentAgent:
    """reserve -> post -> notify; each step writes its side effect and an audit record."""

    name = "rel-payment"
    description = "Three side-effecting steps (reliability crash test)."
    needs_index = False

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir

    def _node(self, step: str) -> Any:
        def run(state: State, config: RunnableConfig) -> State:
            ctx: RunContext = config["configurable"]["ctx"]
            flag = os.environ.get(BLOCK_ENV)
            if flag and Path(flag).exists() and Path(flag).read_text().strip() == step:
                print(f"READY {ctx.run_id}", flush=True)
                threading.Event().wait()  # until the test kills this process
            _effect(self.data_dir, ctx.run_id, step)
            ctx.recorder.record("payment.step", {"step": step, "pid": os.getpid()})
            return {"done": [*state.get("done", []), step]}

        return run

    def graph(self) -> Any:
        from langgraph.graph import END, START, StateGraph

        g = StateGraph(State)
        prev = START
        for step in STEPS:
            g.add_node(step, self._node(step))
            g.add_edge(prev, step)
            prev = step
        g.add_edge(prev, END)
        return g

    def to_answer(self, state: dict[str, Any], base: Answer) -> Answer:
        base.text = "done: " + ", ".join(state.get("done", []))
        base.status = "answered"
        return base


def make_runtime(data_dir: Path) -> Runtime:
    agent = PaymentAgent(data_dir)
    return Runtime(Settings(data_dir=data_dir), agents=lambda _name: agent)


CHILD = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    sys.path.insert(0, sys.argv[2])
    from test_rel_crash_agent import PaymentAgent, make_runtime
    data = Path(sys.argv[1])
    rt = make_runtime(data)
    if sys.argv[3] == "ask":
        a = rt.ask(PaymentAgent(data), "Pay invoice INV-7", "alice")
    else:
        a = rt.resume_crashed(sys.argv[3])
    print("ANSWER", a.status, a.text, flush=True)
    rt.close()
    """
)


def _child(data_dir: Path, block: Path, what: str) -> subprocess.Popen[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", BLOCK_ENV: str(block)}
    args = [sys.executable, "-c", CHILD, str(data_dir), str(Path(__file__).parent), what]
    return subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _kill_at_ready(proc: subprocess.Popen[str]) -> str:
    """Wait (bounded) for READY on the child's stdout, SIGKILL it there; the run id it printed."""
    assert proc.stdout is not None
    result: list[str] = []
    reader = threading.Thread(target=lambda: result.append(proc.stdout.readline()), daemon=True)  # type: ignore[union-attr]
    reader.start()
    reader.join(timeout=300)
    line = result[0] if result else ""
    if not line.startswith("READY "):
        proc.kill()
        _out, err = proc.communicate(timeout=60)
        pytest.fail(f"child never reached the kill point: {line!r}\n{err[-3000:]}")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    return line.split()[1]


@pytest.mark.slow  # two or three Python processes importing the stack
@pytest.mark.parametrize(
    "kill_at",
    [("post",), ("notify",), ("post", "notify")],
    ids=["kill-in-step-2", "kill-in-step-3", "kill-twice"],
)
def test_kill_9_during_an_agent_run_then_resume_runs_each_step_once(tmp_path, kill_at):
    data = tmp_path / "data"
    data.mkdir()
    (data / "users.json").write_text(json.dumps(USERS))
    block = tmp_path / "block"
    pids: list[int] = []

    block.write_text(kill_at[0])
    proc = _child(data, block, "ask")
    run_id = _kill_at_ready(proc)
    pids.append(proc.pid)
    done_before = list(STEPS[: STEPS.index(kill_at[0])])
    assert _effects(data, run_id) == done_before  # the blocked step's side effect did not happen

    for point in kill_at[1:]:  # killed again, this time while resuming in another process
        block.write_text(point)
        proc = _child(data, block, run_id)
        assert _kill_at_ready(proc) == run_id
        pids.append(proc.pid)
        assert _effects(data, run_id) == list(STEPS[: STEPS.index(point)])

    block.unlink()
    rt = make_runtime(data)
    try:
        row = rt.runs.get(run_id)
        assert row is not None and row.status == "running" and not row.process_alive()
        answer = rt.resume_crashed(run_id)
        assert answer.status == "answered" and answer.text == "done: " + ", ".join(STEPS), answer.text

        # Each side effect exactly once, in order; the steps finished before a kill were not redone.
        assert _effects(data, run_id) == list(STEPS)
        assert rt.runs.get(run_id).status == "answered"  # type: ignore[union-attr]
        with pytest.raises(Exception, match="not an interrupted run"):
            rt.resume_crashed(run_id)  # a finished run cannot be resumed (and so not finished twice)
        assert _effects(data, run_id) == list(STEPS)

        records = rt.services.audit.records(run_id)
        kinds = [r.kind for r in records]
        assert kinds.count("run.start") == 1 and kinds.count("run.end") == 1, kinds
        # The refused second resume above is on the record too (issue 23: every attempt audited).
        assert kinds[-2:] == ["run.end", "run.resume_refused"], kinds
        assert [r.data["step"] for r in records if r.kind == "payment.step"] == list(STEPS)
        resumes = [r.data for r in records if r.kind == "run.resume"]
        assert [d["why"] for d in resumes] == ["crash"] * len(kill_at), resumes
        assert [d["previous_pid"] for d in resumes] == pids, (resumes, pids)
        result = rt.services.audit.verify()
        assert result.ok, result.reason
        assert result.checked == len(rt.services.audit.records(run_id))  # the only run in this log
    finally:
        rt.close()


@pytest.mark.slow
def test_a_run_that_finished_before_the_kill_is_not_resumed(tmp_path):
    """The process dies after the run ended (e.g. while shutting down): nothing to resume, nothing redone."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "users.json").write_text(json.dumps(USERS))
    proc = _child(data, tmp_path / "no-block", "ask")
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0 and "ANSWER answered done: reserve, post, notify" in out, err[-3000:]
    rt = make_runtime(data)
    try:
        run_id = rt.services.audit.last_run_id()
        assert run_id is not None
        with pytest.raises(Exception, match="not an interrupted run"):
            rt.resume_crashed(run_id)
        assert _effects(data, run_id) == list(STEPS)
        assert rt.services.audit.verify().ok
    finally:
        rt.close()


def test_the_kill_point_is_deterministic(tmp_path):
    """Without a marker the agent runs straight through, each side effect once (in-process)."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "users.json").write_text(json.dumps(USERS))
    rt = make_runtime(data)
    try:
        a = rt.ask(PaymentAgent(data), "Pay invoice INV-7", "alice")
        assert a.status == "answered" and _effects(data, a.run_id) == list(STEPS)
    finally:
        rt.close()
