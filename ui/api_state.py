"""What the API's routers share: the runtime, the one-run-at-a-time gate, agents, and the bridge
from the runtime's blocking event iterator to an async stream (SSE, OpenAI chunks).

One run at a time per process: the embedded qdrant-edge index, the SQLite audit log and the bundled
llama.cpp model are single-writer resources, so runs execute the synchronous runtime in a worker
thread behind one gate (an ``asyncio.Semaphore``: a queued request waits on the event loop, not in a
thread). Several workers (``sovra serve --workers N``, Qdrant server + PostgreSQL) scale out.

Admission control (:class:`Admission`): a question is admitted only while the process holds fewer
than ``api_queue_max`` questions (running + queued) and its user fewer than ``api_queue_per_user``;
otherwise 429 with ``Retry-After``. A queued question whose client has gone is dropped when its turn
comes, before it runs (it never reaches the runtime, so it leaves no run); a streamed one is
cancelled at its next step when its client goes. ``/health`` and ``/ready`` never queue behind questions.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import threading
from collections import Counter
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


class ClientGone(Exception):
    """The client left while its question was queued: nothing to run, nobody to answer."""


@dataclass
class Admission:
    """Bounds the questions a process holds (running + queued), overall and per user (see module doc)."""

    total: int
    per_user: int
    retry_after_s: int
    held: Counter[str] = field(default_factory=Counter)
    dropped: int = 0  # questions whose client left before their turn (not run)
    changed: threading.Condition = field(default_factory=threading.Condition)  # notified on leave

    def wait_idle(self, timeout: float) -> bool:
        """Block (another thread: tests, benchmarks) until no question is held; False on timeout."""
        with self.changed:
            return self.changed.wait_for(lambda: not self.held, timeout)

    def enter(self, user_id: str) -> None:
        from sovra.ui.api_auth import ApiError

        headers = {"Retry-After": str(self.retry_after_s)}
        if self.held[user_id] >= self.per_user:
            raise ApiError(
                429,
                f"{user_id} already has {self.held[user_id]} questions running or queued",
                hint=f"wait for an answer, or retry after {self.retry_after_s} s",
                headers=headers,
            )
        if sum(self.held.values()) >= self.total:
            raise ApiError(429, "the server is busy", hint=f"retry after {self.retry_after_s} s", headers=headers)
        with self.changed:
            self.held[user_id] += 1

    def leave(self, user_id: str) -> None:
        with self.changed:
            self.held[user_id] -= 1
            if self.held[user_id] <= 0:
                del self.held[user_id]
            self.changed.notify_all()


@dataclass
class ApiState:
    settings: Settings
    runtime: Runtime
    agents: Mapping[str, Callable[[], Any]] | None  # None: the installed agents (sovra.agents)
    gate: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(1))
    admission: Admission = field(init=False)
    ready_cache: Any = None  # the last /ready result (None: not checked yet), answered while busy

    def __post_init__(self) -> None:
        s = self.settings
        self.admission = Admission(s.api_queue_max, s.api_queue_per_user, s.api_retry_after_s)

    def agent(self, name: str) -> Any:
        """The agent called ``name``; unknown: InputError (400)."""
        if self.agents is None:
            from sovra.agents import get_agent

            return get_agent(name, self.settings)
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
            return [(str(n), str(d)) for n, d in lister(self.settings)]
        a = agents.get_agent("assistant", self.settings)
        return [(a.name, a.description)]


def api_state(request: Request) -> ApiState:
    state: ApiState = request.app.state.api
    return state


async def run_locked(request: Request, fn: Callable[[Runtime], T], *, admit: str | None = None) -> T:
    """Run ``fn(runtime)`` in a worker thread, one run at a time (see the module docstring).

    ``admit``: the asking user's id for a question, which then passes admission control (429 when
    the queue is full) and is dropped (:class:`ClientGone`) if its client left while it waited.
    """
    import anyio

    st = api_state(request)
    if admit is None:
        async with st.gate:
            return await anyio.to_thread.run_sync(fn, st.runtime)
    st.admission.enter(admit)
    try:
        async with st.gate:
            await _check_client(request, st)
            return await anyio.to_thread.run_sync(fn, st.runtime)
    finally:
        st.admission.leave(admit)


async def _check_client(request: Request, st: ApiState) -> None:
    if await request.is_disconnected():
        st.admission.dropped += 1
        log.info("client gone before its question ran: dropped")
        raise ClientGone


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
    request: Request, produce: Callable[[Runtime], Iterator[RunEvent]], *, admit: str | None = None
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

    if admit is not None:
        st.admission.enter(admit)
    try:
        await st.gate.acquire()
    except BaseException:
        if admit is not None:
            st.admission.leave(admit)
        raise
    try:
        if admit is not None:
            await _check_client(request, st)
    except BaseException:
        st.gate.release()
        st.admission.leave(admit)  # type: ignore[arg-type]
        raise
    release = st.gate.release if admit is None else lambda: (st.gate.release(), st.admission.leave(admit))
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
            waiter.add_done_callback(lambda _: release())
            raise
        release()
