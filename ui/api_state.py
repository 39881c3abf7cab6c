"""What the API's routers share: the runtime, the one-run-at-a-time gate, agents, and the bridge
from the runtime's blocking event iterator to an async stream (SSE, OpenAI chunks).

One run at a time per process: the embedded qdrant-edge index, the SQLite audit log and the bundled
llama.cpp model are single-writer resources, so runs execute the synchronous runtime in a worker
thread behind one gate (an ``asyncio.Semaphore``: a queued request waits on the event loop, not in a
thread). Several workers (``sovra serve --workers N``, Qdrant server + PostgreSQL) scale out.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import threading
from collections.abc import AsyncGenerator, Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

from fastapi import Request

from sovra.config import Settings
from sovra.errors import InputError, SovraError
from sovra.runtime import Answer, RunEvent, Runtime

log = logging.getLogger(__name__)

T = TypeVar("T")
HEARTBEAT_S = 15.0  # an SSE comment this often keeps proxies from closing a quiet stream
DISCONNECT_POLL_S = 1.0


@dataclass
class ApiState:
    settings: Settings
    runtime: Runtime
    agents: Mapping[str, Callable[[], Any]] | None  # None: the installed agents (sovra.agents)
    gate: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(1))

    def agent(self, name: str) -> Any:
        """The agent called ``name``; unknown: InputError (400)."""
        if self.agents is None:
            from sovra.agents import get_agent

            return get_agent(name)
        if name not in self.agents:
            raise InputError(f"unknown agent {name!r}", hint=f"available: {', '.join(self.agents)}")
        return self.agents[name]()

    def agent_names(self) -> list[tuple[str, str]]:
        """(name, description) of every agent this API serves."""
        if self.agents is not None:
            return [(n, getattr(f(), "description", "")) for n, f in self.agents.items()]
        import sovra.agents as agents

        lister = getattr(agents, "list_agents", None)
        if callable(lister):
            return [(str(n), str(d)) for n, d in lister()]
        a = agents.get_agent("assistant")
        return [(a.name, a.description)]


def api_state(request: Request) -> ApiState:
    state: ApiState = request.app.state.api
    return state


async def run_locked(request: Request, fn: Callable[[Runtime], T]) -> T:
    """Run ``fn(runtime)`` in a worker thread, one run at a time (see the module docstring)."""
    import anyio

    st = api_state(request)
    async with st.gate:
        return await anyio.to_thread.run_sync(fn, st.runtime)


def answer_body(a: Answer) -> dict[str, Any]:
    from sovra.ui.render import answer_json

    return answer_json(a) | {
        "thread_id": a.thread_id,
        "approval": asdict(a.approval) if a.approval is not None else None,
    }


def event_body(ev: RunEvent) -> dict[str, Any]:
    """A RunEvent as JSON (without the Python exception an error event carries)."""
    if ev.kind == "answer":
        return answer_body(ev.data["answer"])
    if ev.kind == "approval":
        return {"run_id": ev.run_id, "approval": asdict(ev.data["approval"])}
    if ev.kind == "error":
        return {"run_id": ev.run_id, "error": ev.data.get("message"), "hint": ev.data.get("hint")}
    return {"run_id": ev.run_id} | {k: v for k, v in ev.data.items() if k != "exception"}


async def stream_run(
    request: Request, produce: Callable[[Runtime], Iterator[RunEvent]]
) -> AsyncGenerator[RunEvent | None, None]:
    """The events of ``produce(runtime)``, run in a worker thread behind the gate.

    Yields ``None`` as a heartbeat after ``HEARTBEAT_S`` of quiet. When the consumer stops early (the
    client disconnected, or the generator was closed) the run is cancelled (``Runtime.cancel``: it
    stops at its next step) and the gate is held until the worker thread is done with the runtime.
    Errors raised before the first event (``preflight``: empty question, missing index) propagate.
    """
    st = api_state(request)
    rt = st.runtime
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
    gone = threading.Event()

    def put(item: tuple[str, Any]) -> None:
        # RuntimeError: the loop is closed (server shutting down): nobody is listening.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(queue.put_nowait, item)

    def worker() -> None:
        # Drains the runtime's iterator to its end even after the client left: closing it early
        # would end the run as an error; cancelled, it stops at its next step with its own status.
        try:
            for ev in produce(rt):
                if not gone.is_set():
                    put(("event", ev))
        except BaseException as exc:
            put(("error", exc))
        finally:
            put(("end", None))

    await st.gate.acquire()
    thread = threading.Thread(target=contextvars.copy_context().run, args=(worker,), daemon=True, name="sovra-run")
    thread.start()
    run_id: str | None = None
    ended = False
    quiet = 0.0
    try:
        while True:
            try:
                kind, item = await asyncio.wait_for(queue.get(), timeout=DISCONNECT_POLL_S)
            except TimeoutError:
                if await request.is_disconnected():
                    log.info("client gone: cancelling run %s", run_id)
                    return
                quiet += DISCONNECT_POLL_S
                if quiet >= HEARTBEAT_S:
                    quiet = 0.0
                    yield None
                continue
            quiet = 0.0
            if kind == "end":
                ended = True
                return
            if kind == "error":
                raise item
            run_id = item.run_id
            yield item
    finally:
        if not ended:
            gone.set()
            if run_id is not None:
                try:
                    rt.cancel(run_id)
                except SovraError as exc:
                    log.warning("could not cancel run %s: %s", run_id, exc)
        # Hold the gate until the runtime is free again (shielded: we may be here because of a cancel).
        waiter = asyncio.ensure_future(asyncio.to_thread(thread.join))
        try:
            await asyncio.shield(waiter)
        except asyncio.CancelledError:
            waiter.add_done_callback(lambda _: st.gate.release())
            raise
        st.gate.release()
