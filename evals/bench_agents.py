"""Agent benchmark: the framework's own overhead per step, and steps per flagship task.

Overhead is all wall time of a run NOT spent waiting on the model or on retrieval: the run's total
time minus the union of the intervals spent in the model gateway (every completion, stream and
embedding call), in the index and the embedder (search, query embeddings, evidence scoring), and
inside tool bodies (ledger queries, extraction). What remains is LangGraph, the runtime (budgets,
run table, checkpoints), the audit log (hash chain, fsync) and OpenTelemetry, and the agents' own
Python. A step is a graph node that finished (a ``step`` event of ``Runtime.stream``).

Run on a data dir with the demo bank (``sovra demo`` first)::

    sovra bench agents                    # every flagship task once, with the configured model
    python -m sovra.evals.bench_agents --repeat 3 --out bench-agents.json
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from sovra.config import Settings

TARGET_MS_PER_STEP = 50.0


@dataclass(frozen=True)
class Task:
    agent: str
    user: str
    question: str


TASKS: tuple[Task, ...] = (
    Task("assistant", "alice", "How many days per week may I work from home?"),
    Task("policy", "alice", "What is the hotel limit per night in London?"),
    Task("contracts", "dave", "Is the Keizersgracht 480 lease consistent with its heads of terms?"),
    Task("reconcile", "bob", "Reconcile the Acme Office Supplies contract with the ledger"),
    Task(
        "supervisor",
        "bob",
        "Does the Acme supply contract allow early termination, and what have we paid Acme this year?",
    ),
)


@dataclass
class TaskResult:
    agent: str
    user: str
    question: str
    status: str
    steps: int
    total_ms: float
    model_ms: float
    retrieval_ms: float
    overhead_ms: float
    overhead_ms_per_step: float
    model_calls: int


class _Intervals:
    """Wall-clock intervals (perf_counter) spent outside the framework, from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.spans: dict[str, list[tuple[float, float]]] = {"model": [], "retrieval": []}
        self.model_calls = 0

    def add(self, kind: str, start: float, end: float) -> None:
        with self._lock:
            self.spans[kind].append((start, end))
            if kind == "model":
                self.model_calls += 1

    def reset(self) -> None:
        with self._lock:
            self.spans = {"model": [], "retrieval": []}
            self.model_calls = 0

    def covered(self, kinds: tuple[str, ...]) -> float:
        """Length (ms) of the union of the intervals of ``kinds``: nested calls count once."""
        merged: list[list[float]] = []
        for s, e in sorted(iv for k in kinds for iv in self.spans[k]):
            if merged and s <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], e)
            else:
                merged.append([s, e])
        return sum(e - s for s, e in merged) * 1000.0


def _timed(iv: _Intervals, kind: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            iv.add(kind, t0, time.perf_counter())

    return wrapper


class _TimedStream:
    """A gateway TextStream whose waiting for each piece counts as model time."""

    def __init__(self, inner: Any, iv: _Intervals) -> None:
        self._inner, self._iv = inner, iv

    def __iter__(self) -> _TimedStream:
        return self

    def __next__(self) -> str:
        t0 = time.perf_counter()
        try:
            piece: str = next(self._inner)
            return piece
        finally:
            self._iv.add("model", t0, time.perf_counter())

    @property
    def call(self) -> Any:
        return self._inner.call


def instrument(services: Any, iv: _Intervals) -> None:
    """Wrap the gateway, index and embedder of ``services`` (instance attributes, nothing global)."""
    gw = services.gateway
    for name in ("complete_json", "complete_tools", "complete_text", "embed"):
        setattr(gw, name, _timed(iv, "model", getattr(gw, name)))
    stream_text = gw.stream_text

    def timed_stream(*args: Any, **kwargs: Any) -> _TimedStream:
        t0 = time.perf_counter()
        inner = stream_text(*args, **kwargs)
        iv.add("model", t0, time.perf_counter())
        return _TimedStream(inner, iv)

    gw.stream_text = timed_stream
    services.index.search = _timed(iv, "retrieval", services.index.search)
    emb = services.embedder
    for name in ("embed_query", "sparse_query", "embed", "embed_documents", "embed_texts"):
        if callable(getattr(emb, name, None)):
            with contextlib.suppress(AttributeError, TypeError):
                setattr(emb, name, _timed(iv, "retrieval", getattr(emb, name)))


@contextlib.contextmanager
def _tool_bodies(iv: _Intervals) -> Iterator[None]:
    """Count the body of every ``tool.*`` audit step (ledger SQL, extraction) as retrieval time.

    The step's own ``duration_ms`` covers the body only; its audit write comes right after, so the
    body is the interval that ends where the write starts."""
    from sovra.recorder import RunRecorder

    original = RunRecorder._append

    def _append(self: Any, kind: str, data: Any, span: Any) -> Any:
        if kind.startswith("tool.") and isinstance(data, dict) and "duration_ms" in data:
            end = time.perf_counter()
            iv.add("retrieval", end - float(data["duration_ms"]) / 1000.0, end)
        return original(self, kind, data, span)

    RunRecorder._append = _append  # type: ignore[method-assign]
    try:
        yield
    finally:
        RunRecorder._append = original  # type: ignore[method-assign]


def run_task(runtime: Any, agent: Any, task: Task, iv: _Intervals) -> TaskResult:
    iv.reset()
    steps = 0
    status = "error"
    t0 = time.perf_counter()
    for ev in runtime.stream(agent, task.question, task.user, interface="bench"):
        if ev.kind == "step":
            steps += 1
        elif ev.kind == "answer":
            status = ev.data["answer"].status
        elif ev.kind == "error":
            status = f"error: {ev.data['message']}"
    total = (time.perf_counter() - t0) * 1000.0
    model = iv.covered(("model",))
    outside = iv.covered(("model", "retrieval"))
    overhead = total - outside
    return TaskResult(
        agent=task.agent,
        user=task.user,
        question=task.question,
        status=status,
        steps=steps,
        total_ms=round(total, 1),
        model_ms=round(model, 1),
        retrieval_ms=round(outside - model, 1),
        overhead_ms=round(overhead, 1),
        overhead_ms_per_step=round(overhead / max(steps, 1), 2),
        model_calls=iv.model_calls,
    )


@dataclass
class BenchResult:
    tasks: list[TaskResult] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        done = [t for t in self.tasks if not t.status.startswith("error")]
        steps = sum(t.steps for t in done)
        overhead = sum(t.overhead_ms for t in done)
        per_step = [t.overhead_ms_per_step for t in done]
        return {
            "runs": len(done),
            "steps": steps,
            "overhead_ms_per_step": round(overhead / max(steps, 1), 2),
            "overhead_ms_per_step_p50": round(statistics.median(per_step), 2) if per_step else None,
            "overhead_ms_per_step_max": round(max(per_step), 2) if per_step else None,
            "target_ms_per_step": TARGET_MS_PER_STEP,
            "within_target": bool(done) and overhead / max(steps, 1) < TARGET_MS_PER_STEP,
            "steps_per_task": {t.agent: t.steps for t in done},
        }

    def to_json(self) -> dict[str, Any]:
        return {"summary": self.summary(), "tasks": [asdict(t) for t in self.tasks], "skipped": self.skipped}


def run_benchmark(
    settings: Settings,
    tasks: tuple[Task, ...] = TASKS,
    repeat: int = 1,
    warmup: bool = True,
    agents: Callable[[str], Any] | None = None,
) -> BenchResult:
    """Run each task ``repeat`` times (after one untimed warm-up run of the first task)."""
    from sovra.agents import AGENTS, get_agent
    from sovra.runtime import Runtime

    resolve = agents or get_agent
    runtime = Runtime(settings)
    iv = _Intervals()
    result = BenchResult()
    try:
        instrument(runtime.services, iv)
        with _tool_bodies(iv):
            todo = [t for t in tasks if agents is not None or t.agent in AGENTS]
            result.skipped = [t.agent for t in tasks if t not in todo]
            if warmup and todo:  # model server start, ONNX load, litellm import: not per-step costs
                run_task(runtime, resolve(todo[0].agent), todo[0], iv)
            for _ in range(repeat):
                for task in todo:
                    result.tasks.append(run_task(runtime, resolve(task.agent), task, iv))
    finally:
        runtime.close()
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--out", default=None, help="write the JSON result here")
    args = p.parse_args(argv)
    res = run_benchmark(Settings(), repeat=args.repeat)
    data = res.to_json()
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=1)
    print(json.dumps(data, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
