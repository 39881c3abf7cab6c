"""Admission control under abandoned clients: p95 latency of a normal user's question with N
abandoned questions in flight, against the same question on an idle server (issue 23: within 2x).

A real uvicorn server on 127.0.0.1 (the app of ``sovra serve``). The agent (:class:`WorkAgent`) goes
through the runtime, audit log and checkpoints and holds the runtime ``work_s`` seconds, a stand-in
for a model writing an answer. Each loaded round: ``abandoned`` clients (each its own user) send a
question and give up after ``give_up_s``; then the normal user asks and is timed. Without admission
control every abandoned question still ran (the issue measured 26.7 s instead of 1.6 s).

    .venv/bin/python -m sovra.evals.bench_abandoned [--abandoned 50] [--rounds 10] [--work-s 0.5]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sovra.config import Settings
from sovra.evals.bench_api import EchoAgent, _pct, serving


@dataclass
class WorkAgent(EchoAgent):
    """One node that holds the runtime ``work_s`` seconds, then answers like :class:`EchoAgent`."""

    name: str = "work"
    work_s: float = 0.5

    def graph(self) -> Any:
        from langgraph.graph import END, START, StateGraph

        from sovra.evals.bench_api import EchoState

        work_s = self.work_s

        def work(state: EchoState) -> dict[str, Any]:
            time.sleep(work_s)  # the model's time to answer: workload, not a wait for an event
            return {"answer": f"You asked: {state['question']} [1]"}

        g = StateGraph(EchoState)
        g.add_node("work", work)
        g.add_edge(START, "work")
        g.add_edge("work", END)
        return g


def run(abandoned: int = 50, rounds: int = 10, work_s: float = 0.5, give_up_s: float = 0.3) -> dict[str, Any]:
    import httpx

    from sovra.ui.api import create_app

    data = Path(tempfile.mkdtemp(prefix="sovra-bench-abandoned-"))
    users = {f"u{i}": {"name": f"U{i}", "groups": ["employees"]} for i in range(abandoned)} | {
        "normal": {"name": "Normal", "groups": ["employees"]}
    }
    (data / "users.json").write_text(json.dumps(users))
    tokens = {f"{u}-token-0123456789abcdef": u for u in users}
    auth = {u: {"Authorization": f"Bearer {t}"} for t, u in tokens.items()}
    settings = Settings(data_dir=data, api_queue_max=abandoned + 8)
    app = create_app(settings, tokens=tokens, agents={"work": lambda: WorkAgent(work_s=work_s)})

    async def normal(http: httpx.AsyncClient) -> float:
        t0 = time.perf_counter()
        r = await http.post("/v1/ask", json={"question": "hotel limit?", "agent": "work"}, headers=auth["normal"])
        r.raise_for_status()
        return time.perf_counter() - t0

    async def abandon(url: str, user: str) -> None:
        async with httpx.AsyncClient(base_url=url, timeout=give_up_s) as http:
            with contextlib.suppress(httpx.TimeoutException):
                await http.post("/v1/ask", json={"question": "long question", "agent": "work"}, headers=auth[user])

    async def main(url: str) -> tuple[list[float], list[float]]:
        idle: list[float] = []
        loaded: list[float] = []
        async with httpx.AsyncClient(base_url=url, timeout=600) as http:
            await normal(http)  # warm-up
            for _ in range(rounds):
                idle.append(await normal(http))
            for _ in range(rounds):
                await asyncio.gather(*(abandon(url, f"u{i}") for i in range(abandoned)))
                loaded.append(await normal(http))
                await asyncio.to_thread(app.state.api.admission.wait_idle, 600)
        return idle, loaded

    with serving(app) as url:
        idle, loaded = asyncio.run(main(url))
        dropped = app.state.api.admission.dropped
    p95_idle, p95_loaded = _pct(idle, 0.95), _pct(loaded, 0.95)
    return {
        "abandoned_per_round": abandoned,
        "rounds": rounds,
        "work_s": work_s,
        "give_up_s": give_up_s,
        "p95_idle_s": round(p95_idle, 3),
        "p95_with_abandoned_s": round(p95_loaded, 3),
        "ratio": round(p95_loaded / p95_idle, 2),
        "dropped_before_running": dropped,
        "ran": abandoned * rounds - dropped,
    }


def cli() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--abandoned", type=int, default=50)
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--work-s", type=float, default=0.5)
    a = p.parse_args()
    print(json.dumps(run(a.abandoned, a.rounds, a.work_s), indent=2))


if __name__ == "__main__":
    cli()
