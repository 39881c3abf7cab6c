"""`sovra bench api`: requests/s and latency percentiles of the HTTP API under concurrent clients.

A real uvicorn server on 127.0.0.1 (the same app as ``sovra serve``), driven by ``httpx.AsyncClient``
with N concurrent clients, each sending its requests one after another. Two agents:

- ``assistant`` on the demo bank: retrieval, the audit log and the local llama.cpp model (the
  default), i.e. what a user waits for;
- ``echo`` (:class:`EchoAgent`, below): a two-node LangGraph graph that touches neither the index
  nor a model, but goes through the same runtime, audit log and checkpoints: the API's own overhead.

The server answers one run at a time per worker (see ``sovra.ui.api_state``), so with the model
requests/s is about 1 / (time per answer) and p95 grows with the queue.
"""

from __future__ import annotations

import asyncio
import json
import operator
import os
import socket
import statistics
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypedDict

from langchain_core.runnables import RunnableConfig

from sovra.config import Settings
from sovra.runtime import Answer, Citation, RunContext

TOKEN = "bench-token-0123456789abcdef"


# ---------------------------------------------------------------------------------------------
# The stub agent


class EchoState(TypedDict, total=False):
    question: str
    messages: Annotated[list[dict[str, Any]], operator.add]
    answer: str


@dataclass
class EchoAgent:
    """Answers "You asked: ..." with one citation, streaming the words as tokens. No index, no
    model; its turn number (user messages in the thread) shows that thread history is kept."""

    name: str = "echo"
    description: str = "Echoes the question with a fixed citation (API benchmarks and tests)."
    needs_index: bool = False

    def initial_state(self, question: str) -> dict[str, Any]:
        return {"question": question, "messages": [{"role": "user", "content": question}], "answer": ""}

    def graph(self) -> Any:
        from langgraph.graph import END, START, StateGraph

        def plan(state: EchoState, config: RunnableConfig) -> dict[str, Any]:
            ctx: RunContext = config["configurable"]["ctx"]
            ctx.recorder.record("echo.plan", {"question": state["question"]})
            return {}

        def answer(state: EchoState, config: RunnableConfig) -> dict[str, Any]:
            ctx: RunContext = config["configurable"]["ctx"]
            turn = sum(1 for m in state.get("messages", []) if m.get("role") == "user")
            text = f"You asked: {state['question']} (turn {turn}, worker {os.getpid()}) [1]"
            for word in text.split(" "):
                ctx.emit_token(word + " ")
            return {"answer": text, "messages": [{"role": "assistant", "content": text}]}

        g = StateGraph(EchoState)
        g.add_node("plan", plan)
        g.add_node("answer", answer)
        g.add_edge(START, "plan")
        g.add_edge("plan", "answer")
        g.add_edge("answer", END)
        return g

    def to_answer(self, state: dict[str, Any], base: Answer) -> Answer:
        base.text = state.get("answer", "")
        base.status = "answered"
        base.citations = [Citation(1, "document", "Echo policy", "https://intranet.invalid/echo", page=1, quote="echo")]
        return base


# ---------------------------------------------------------------------------------------------
# Server and load


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """``app`` under uvicorn on a free loopback port, in a thread; yields its base URL."""
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(256)
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on", backlog=256))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=120)
        sock.close()


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(q * (len(ordered) - 1))))
    return ordered[k]


async def load(
    base_url: str, agent: str | None, questions: list[str], clients: int, per_client: int, timeout_s: float = 600.0
) -> dict[str, Any]:
    """``clients`` concurrent clients, each sending ``per_client`` POST /v1/ask one after another
    (``agent`` None: GET /health, the HTTP stack alone)."""
    import httpx

    latencies: list[float] = []
    errors: dict[str, int] = {}
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(base_url=base_url, timeout=timeout_s, limits=limits, headers=headers) as http:

        async def send(q: str) -> httpx.Response:
            if agent is None:
                return await http.get("/health")
            return await http.post("/v1/ask", json={"question": q, "agent": agent})

        (await send(questions[0])).raise_for_status()  # warm-up, untimed

        async def client(i: int) -> None:
            for j in range(per_client):
                q = questions[(i * per_client + j) % len(questions)]
                t0 = time.perf_counter()
                try:
                    resp = await send(q)
                    key = None if resp.status_code == 200 else str(resp.status_code)
                except httpx.HTTPError as exc:
                    key = type(exc).__name__
                if key is None:
                    latencies.append(time.perf_counter() - t0)
                else:
                    errors[key] = errors.get(key, 0) + 1

        started = time.perf_counter()
        await asyncio.gather(*(client(i) for i in range(clients)))
        wall = time.perf_counter() - started
    return {
        "agent": agent or "GET /health",
        "clients": clients,
        "requests": clients * per_client,
        "ok": len(latencies),
        "errors": errors,
        "wall_s": round(wall, 3),
        "requests_per_s": round(len(latencies) / wall, 3) if wall else 0.0,
        "latency_s": {
            "p50": round(_pct(latencies, 0.50), 4),
            "p95": round(_pct(latencies, 0.95), 4),
            "max": round(max(latencies), 4) if latencies else None,
            "mean": round(statistics.fmean(latencies), 4) if latencies else None,
        },
    }


@dataclass
class BenchConfig:
    data_dir: Path
    clients: int = 50
    stub_requests: int = 10  # per client
    model_requests: int = 1  # per client; 0 skips the model run
    model: bool = True


def run_benchmark(cfg: BenchConfig) -> dict[str, Any]:
    """Both figures on the demo data dir ``cfg.data_dir`` (``sovra demo`` built it)."""
    from sovra.evals.demo_corpus import AS_OF
    from sovra.ui.api import create_app

    settings = Settings(data_dir=cfg.data_dir, as_of=AS_OF)
    if not settings.resolved_users_file.is_file():
        from sovra.errors import InputError

        raise InputError(
            f"no demo bank in {cfg.data_dir} (the benchmark asks its assistant as a demo user)",
            hint="run `sovra demo` first, or point SOVRA_DATA_DIR at a demo data dir",
        )
    users = json.loads(settings.resolved_users_file.read_text())
    user = "alice" if "alice" in users else next(iter(users))

    def factory() -> Any:
        from sovra.agents import get_agent

        return get_agent("assistant")

    agents = {"echo": EchoAgent, "assistant": factory}
    app = create_app(settings, tokens={TOKEN: user}, agents=agents)
    questions = [
        "What is the hotel limit per night in London?",
        "How many days per week may I work from home?",
        "Who approves expenses over 5,000 EUR?",
        "What is the meal allowance on business travel?",
    ]
    load1 = os.getloadavg()[0]
    results = []
    with serving(app) as url:
        results.append(asyncio.run(load(url, None, questions, cfg.clients, cfg.stub_requests * 4)))
        results.append(asyncio.run(load(url, "echo", questions, cfg.clients, cfg.stub_requests)))
        if cfg.model and cfg.model_requests > 0:
            results.append(asyncio.run(load(url, "assistant", questions, cfg.clients, cfg.model_requests)))
    return {
        "results": results,
        "user": user,
        "machine": {
            "cpus": os.cpu_count(),
            "load_avg_start": round(load1, 2),
            "load_avg_end": round(os.getloadavg()[0], 2),
        },
        "notes": [
            "loopback, one uvicorn worker (one run at a time), audit in SQLite under the data dir",
            "GET /health: HTTP + FastAPI only; echo: + runtime, audit, checkpoints (no index, no model)",
            "assistant: the demo agent with the local llama.cpp model (SmolLM2-135M) and the embedded index",
        ],
    }
