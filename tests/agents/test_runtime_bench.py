"""The agent benchmark measures what it says: model and retrieval time are taken out, steps counted."""

from __future__ import annotations

from fakes.vllm_server import FakeVLLM
from sdk_support import sdk_settings, text_reply, tool_reply

from sovra.agents.sdk import define_agent
from sovra.evals.bench_agents import Task, _Intervals, run_benchmark
from sovra.tools.base import tool


def test_overlapping_intervals_count_once():
    iv = _Intervals()
    iv.add("model", 1.0, 2.0)
    iv.add("retrieval", 1.5, 3.0)  # a model call inside a tool body
    iv.add("retrieval", 4.0, 4.5)
    assert iv.covered(("model",)) == 1000.0
    assert iv.covered(("model", "retrieval")) == 2500.0


def test_bench_separates_model_and_tool_time_from_overhead(tmp_path):
    ticks = []

    @tool
    def slow_tool(key: str) -> str:
        """Work that takes a while, like a ledger query."""
        import hashlib

        digest = key.encode()
        for _ in range(200_000):  # busy work, not a sleep: it must show up as retrieval time
            digest = hashlib.sha256(digest).digest()
        ticks.append(1)
        return digest.hex()[:8]

    agent = define_agent("b", "Bench me.", tools=[slow_tool], grounded=False)  # its result cites no source
    fake = FakeVLLM(
        script=[
            tool_reply("slow_tool", key="a"),
            text_reply("done"),
            tool_reply("slow_tool", key="b"),
            text_reply("done"),
        ]
    )
    try:
        res = run_benchmark(
            sdk_settings(tmp_path / "data", fake.base_url),
            tasks=(Task("b", "alice", "go"),),
            warmup=True,
            agents=lambda name: agent,
        )
    finally:
        fake.close()
    [t] = res.tasks
    assert t.status == "answered" and t.steps == 4  # agent, tools, agent, respond
    assert t.model_calls == 2 and t.model_ms > 0 and len(ticks) == 2
    assert t.retrieval_ms > 0  # the tool body
    assert 0 < t.overhead_ms < t.total_ms
    assert abs(t.total_ms - (t.model_ms + t.retrieval_ms + t.overhead_ms)) < 1.0
    s = res.summary()
    assert s["steps"] == 4 and s["steps_per_task"] == {"b": 4}
