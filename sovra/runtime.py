"""Runs an agent for a user: identity, services, audit recorder, checkpoints, budgets, approvals.

The runtime knows nothing about particular agents (it sits below ``agents/``): an agent is anything
that can build a LangGraph ``StateGraph`` whose nodes read the run's context from
``config["configurable"]["ctx"]`` (see ``RunContext``).

A run is streamed (``stream``: steps as graph nodes finish, tokens of a model-written answer, then
the answer); ``ask`` is the same run, consumed. Each run has a budget (steps, tokens, wall time)
and may be cancelled. A tool that needs approval pauses the run with a LangGraph ``interrupt``;
the run's checkpoint (SQLite or PostgreSQL, see :mod:`sovra.runs`) lets ``resume`` continue it from
any process once a person decides, and ``resume_crashed`` continue a run whose process died.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib
import logging
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Literal, Protocol

from langchain_core.runnables import RunnableConfig
from langgraph.graph import StateGraph

from sovra.config import Settings
from sovra.errors import ApprovalError, BudgetExceeded, InputError, RunCancelled, SovraError
from sovra.guard import StreamSanitizer
from sovra.identity import Directory, User
from sovra.recorder import RunRecorder
from sovra.runs import RunRow, RunStore
from sovra.search_scope import SearchScope, scoped

log = logging.getLogger(__name__)

MAX_QUESTION_CHARS = 8000
_COMPILED_GRAPHS = 64


class Services:
    """The shared, lazily built parts a run needs. Cheap to create; each part is built on first use."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @cached_property
    def embedder(self) -> Any:
        from sovra.embeddings import local_embedder
        from sovra.gateway.embedder import gateway_embedder

        s = self.settings
        # An `embedding` route in the routes file sends dense embedding to a vLLM/TEI server.
        served = gateway_embedder(s, lambda: self.gateway)
        embedder = served if served is not None else local_embedder(s)
        embedder.sparse_by_language = s.sparse_analysis == "per_language"
        return embedder

    @cached_property
    def index(self) -> Any:
        from sovra.index import open_index

        return open_index(self.settings)

    @cached_property
    def reranker(self) -> Any:
        """The cross-encoder of SOVRA_RERANK_MODEL_DIR, or None (no reranking stage)."""
        from sovra.rerank import load_reranker

        return load_reranker(self.settings)

    @cached_property
    def gateway(self) -> Any:
        from sovra.gateway import ModelGateway

        return ModelGateway(self.settings)

    @cached_property
    def audit(self) -> Any:
        from sovra.audit import open_audit

        return open_audit(self.settings)

    @cached_property
    def directory(self) -> Directory:
        return Directory.from_file(self.settings.resolved_users_file)

    @property
    def ledger_url(self) -> str | None:
        """The ledger database the ledger tool reads (first source of kind 'ledger')."""
        from sovra.ingest import load_sources

        for spec in load_sources(self.settings.paths.root / "sources.json").values():
            if spec.get("kind") == "ledger":
                return f"sqlite:///{spec['path']}"
        return None

    def close(self) -> None:
        for name in ("gateway", "index"):
            part = self.__dict__.pop(name, None)
            if part is not None:
                part.close()


@dataclass(frozen=True)
class Citation:
    n: int
    kind: str  # "document" | "ledger"
    title: str
    url: str
    page: int | None = None
    chunk_id: str | None = None
    rows: tuple[str, ...] = ()
    quote: str = ""

    @property
    def link(self) -> str:
        """The source's address; a PDF's opens at the cited page (``#page=N``, which PDF readers and
        browsers follow)."""
        path = self.url.split("?", 1)[0].split("#", 1)[0]
        if self.page is not None and path.lower().endswith(".pdf") and "#" not in self.url:
            return f"{self.url}#page={self.page}"
        return self.url

    def label(self) -> str:
        where = f"p. {self.page}" if self.page is not None else ""
        if self.rows:
            where = f"rows {', '.join(self.rows[:5])}" + (" ..." if len(self.rows) > 5 else "")
        return f"[{self.n}] {self.title}" + (f", {where}" if where else "") + f" <{self.link}>"


@dataclass(frozen=True)
class Budget:
    """Per-run limits. ``Budget.from_settings`` takes the SOVRA_RUN_MAX_* defaults."""

    max_steps: int = 25
    max_tokens: int = 20_000
    max_seconds: float = 300.0

    @classmethod
    def from_settings(cls, settings: Settings) -> Budget:
        return cls(settings.run_max_steps, settings.run_max_tokens, settings.run_max_seconds)


@dataclass(frozen=True)
class Approval:
    """A tool call paused for a human decision (a LangGraph interrupt)."""

    run_id: str
    tool: str
    args: dict[str, Any]
    description: str
    requested_for: str  # the user id the run belongs to
    call_id: str = ""
    thread_id: str = ""


@dataclass(frozen=True)
class RunEvent:
    """What ``Runtime.stream`` yields. ``data`` by kind: step {"name", "summary"}; token {"text"};
    approval {"approval": Approval}; answer {"answer": Answer}; error {"message", "hint"}."""

    kind: Literal["step", "token", "approval", "answer", "error"]
    run_id: str
    data: dict[str, Any]


# The interrupt value a tool that needs approval raises (see sovra.tools.base.run_tool).
APPROVAL_INTERRUPT = "sovra.approval"
# Answer statuses besides the agents' own ("answered", "not_found", "uncited", "extracted").
AWAITING_APPROVAL, BUDGET_EXCEEDED, CANCELLED = "awaiting_approval", "budget_exceeded", "cancelled"


@dataclass
class Answer:
    run_id: str
    trace_id: str
    user: str
    question: str
    text: str
    status: str  # "answered" | "not_found" | "uncited" | "awaiting_approval" | "budget_exceeded" | "cancelled"
    citations: list[Citation] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # Passages the agent retrieved but the model did not cite (shown only when it cited nothing).
    evidence: list[Citation] = field(default_factory=list)
    approval: Approval | None = None
    thread_id: str | None = None
    output: dict[str, Any] | None = None  # the structured result of an agent with an output schema


@dataclass
class RunContext:
    """Passed to every graph node through ``config["configurable"]["ctx"]``.

    Nodes call ``check()`` before expensive work (the SDK's nodes do): it raises ``RunCancelled`` or
    ``BudgetExceeded``. Every model call is recorded with ``model_call``, which also counts tokens.
    """

    user: User
    services: Services
    recorder: Any  # sovra.recorder.RunRecorder
    interface: str
    run_id: str = ""
    thread_id: str = ""
    budget: Budget = field(default_factory=Budget)
    steps: int = 0
    tokens: int = 0
    started: float = field(default_factory=time.monotonic)
    cancelled: threading.Event = field(default_factory=threading.Event)
    cite_offset: int = 0  # citations the run already has (tools number theirs after them)

    def model_call(self, call: Any, messages: list[dict[str, Any]]) -> None:
        """Record one gateway call: route, model, parameters, prompt, output, tokens, latency."""
        self.tokens += (call.prompt_tokens or 0) + (call.completion_tokens or 0)
        self.recorder.model_call(
            model=call.model,
            input_tokens=call.prompt_tokens,
            output_tokens=call.completion_tokens,
            duration_ms=call.latency_ms,
            route=call.route,
            base_url=call.base_url,
            params=call.params,
            attempts=call.attempts,
            served_route=getattr(call, "served_route", call.route),
            failures=getattr(call, "failures", []),
            pii_masked=getattr(call, "pii_masked", False),
            prompt=messages,
            output=call.output,
        )

    def check(self) -> None:
        """Raise if the run was cancelled or went past its token or time budget."""
        if self.cancelled.is_set():
            raise RunCancelled(f"run {self.run_id} was cancelled")
        b = self.budget
        if self.tokens > b.max_tokens:
            raise BudgetExceeded(
                f"the run used {self.tokens} model tokens; its budget is {b.max_tokens}",
                hint="ask a narrower question, or raise SOVRA_RUN_MAX_TOKENS",
            )
        elapsed = time.monotonic() - self.started
        if elapsed > b.max_seconds:
            raise BudgetExceeded(
                f"the run took {elapsed:.1f} s; its budget is {b.max_seconds:g} s",
                hint="raise SOVRA_RUN_MAX_SECONDS, or use a faster model route",
            )
        if self.steps > b.max_steps:
            raise BudgetExceeded(
                f"the run took more than {b.max_steps} steps", hint="raise SOVRA_RUN_MAX_STEPS or simplify the task"
            )

    def emit_token(self, text: str) -> None:
        """Stream a piece of the answer as it is generated (``RunEvent`` kind "token")."""
        from langgraph.config import get_stream_writer

        # Outside a running graph (a node called directly in a test) there is no writer.
        with contextlib.suppress(RuntimeError):
            get_stream_writer()({"token": text})


class Agent(Protocol):
    """What the runtime runs. Optional: ``initial_state(question) -> dict`` (the graph input of a
    turn; default ``{"question": question}``) and ``needs_index: bool`` (default True)."""

    name: str
    description: str

    def graph(self) -> StateGraph: ...

    def to_answer(self, state: dict[str, Any], base: Answer) -> Answer: ...


class _Recorder(RunRecorder):
    """A RunRecorder that can continue a run (``run.resume`` instead of a second ``run.start``) and
    pause one (``run.paused``: the run is not over, so no ``run.end`` is written)."""

    def __init__(
        self, *args: Any, resumed: dict[str, Any] | None = None, agent: Agent | None = None, **kw: Any
    ) -> None:
        super().__init__(*args, **kw)
        self._resumed = resumed
        self._agent = agent

    def _append(self, kind: str, data: Any, span: Any) -> Any:
        if kind == "run.start" and self._resumed is not None:
            kind, data = "run.resume", {**data, **self._resumed}
        elif kind == "run.start" and self._agent is not None:
            # What resumes the run later must be this agent, not another one under its name.
            data = {**data, "agent": self._agent.name, "agent_identity": agent_identity(self._agent)}
        return super()._append(kind, data, span)

    def pause(self, data: Any) -> None:
        self.record("run.paused", data)
        self._finished = True

    def fail(self, exc: SovraError) -> None:
        """End the run as failed without raising (the stream reports the error as an event)."""
        self.record("run.error", {"type": type(exc).__name__, "message": exc.message, "hint": exc.hint})
        self._finished = True


def _utc_now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _summary(update: Any) -> str:
    if not isinstance(update, dict):
        return ""
    return ", ".join(sorted(str(k) for k in update))


def _default_agents(name: str, settings: Settings | None = None) -> Agent:
    # Late lookup by name so that a new process (sovra approve) can rebuild a paused run's graph;
    # the core still does not import agents/ at import time. The settings' [agents] table counts.
    agent: Agent = importlib.import_module("sovra.agents").get_agent(name, settings)
    return agent


class Runtime:
    def __init__(self, settings: Settings | None = None, agents: Callable[[str], Agent] | None = None) -> None:
        self.settings = settings or Settings()
        self.services = Services(self.settings)
        self._agents = agents or (lambda name: _default_agents(name, self.settings))
        self._live: dict[str, RunContext] = {}
        # Compiled graphs by agent object (kept alive here, so ids are not reused): compiling costs
        # tens of milliseconds (LangGraph inspects every node's signature), a run should not pay it.
        self._compiled: OrderedDict[int, tuple[Agent, Any]] = OrderedDict()
        self._compile_lock = threading.Lock()

    @cached_property
    def runs(self) -> RunStore:
        return RunStore(self.settings)

    def preflight(self, question: str, user_id: str, *, check_index: bool = True) -> tuple[str, User]:
        """Check what a user can get wrong before any model or index is loaded."""
        question = question.strip()
        if not question:
            raise InputError("the question is empty", hint='ask something, e.g. sovra ask "..." --as alice')
        if len(question) > MAX_QUESTION_CHARS:
            raise InputError(f"the question is {len(question)} characters; the limit is {MAX_QUESTION_CHARS}")
        user = self.services.directory.get(user_id)
        if check_index:
            from sovra.index import IndexInfo

            emb = self.services.embedder
            self.services.index.check(IndexInfo(model_id=emb.model_id, dim=emb.dim))
        return question, user

    # ------------------------------------------------------------------ asking

    def ask(
        self,
        agent: Agent,
        question: str,
        user_id: str,
        interface: str = "cli",
        *,
        thread_id: str | None = None,
        budget: Budget | None = None,
        scope: SearchScope | None = None,
    ) -> Answer:
        return _last_answer(
            self.stream(agent, question, user_id, interface, thread_id=thread_id, budget=budget, scope=scope)
        )

    def stream(
        self,
        agent: Agent,
        question: str,
        user_id: str,
        interface: str = "cli",
        *,
        thread_id: str | None = None,
        budget: Budget | None = None,
        scope: SearchScope | None = None,
    ) -> Iterator[RunEvent]:
        """Run ``agent`` for ``user_id``; the last event is always an "answer" or an "error".

        ``scope``: filters the asker chose (sources, document types, dates); every search of the run
        is narrowed by them (:mod:`sovra.search_scope`) and the run's audit records them."""
        question, user = self.preflight(question, user_id, check_index=getattr(agent, "needs_index", True))
        budget = budget or Budget.from_settings(self.settings)
        if thread_id is not None:
            for prior in self.runs.thread_runs(thread_id):
                if prior.user_id != user.id:  # a thread's history is its owner's: never shown to another user
                    raise InputError(f"thread {thread_id!r} belongs to another user", hint="start a new thread")
                if prior.status == AWAITING_APPROVAL:
                    raise ApprovalError(
                        f"thread {thread_id!r} has run {prior.run_id} waiting for approval",
                        hint=f"decide it first: sovra approve {prior.run_id} --as APPROVER --reason ...",
                    )
        init = getattr(agent, "initial_state", None)
        graph_input = init(question) if callable(init) else {"question": question}
        with _Recorder(
            self.services.audit,
            user_id=user.id,
            groups=list(user.groups),
            interface=interface,
            question=question,
            agent=agent,
        ) as rec:
            row = RunRow(
                run_id=rec.run_id,
                thread_id=thread_id or rec.run_id,
                agent=agent.name,
                user_id=user.id,
                interface=interface,
                question=question,
                status="running",
                budget=asdict(budget),
            )
            self.runs.create(row)
            if thread_id is not None:
                rec.record("run.thread", {"thread_id": thread_id, "agent": agent.name})
            ctx = RunContext(
                user=user,
                services=self.services,
                recorder=rec,
                interface=interface,
                run_id=rec.run_id,
                thread_id=row.thread_id,
                budget=budget,
            )
            if scope is not None and not scope.empty:
                rec.record("run.scope", scope.record())
            with scoped(scope):
                yield from self._drive(agent, graph_input, ctx, rec, row)

    # ------------------------------------------------------------------ approvals

    def pending_approval(self, run_id: str) -> Approval | None:
        row = self.runs.get(run_id)
        if row is None or row.status != AWAITING_APPROVAL or not row.approval:
            return None
        return _approval(row)

    def pending(self, limit: int = 100) -> list[Approval]:
        """Every run waiting for a decision, oldest first."""
        return [_approval(r) for r in self.runs.pending(limit) if r.approval]

    def resume(
        self,
        run_id: str,
        user_id: str,
        approved: bool,
        reason: str = "",
        interface: str = "cli",
        *,
        agent: Agent | None = None,
    ) -> Answer:
        return _last_answer(self.resume_stream(run_id, user_id, approved, reason, interface, agent=agent))

    def resume_stream(
        self,
        run_id: str,
        user_id: str,
        approved: bool,
        reason: str = "",
        interface: str = "cli",
        *,
        agent: Agent | None = None,
    ) -> Iterator[RunEvent]:
        """Record a person's decision on a paused run and continue it from its checkpoint.

        Every attempt is audited; one refused (not waiting, not allowed, the owner no longer in the
        directory, decided by someone else first) is recorded as ``approval.refused`` and leaves the
        run as it was: still waiting (to be decided again or cancelled) when it was waiting. The run
        continues only as its owner as the directory knows them now, never with stale grants.
        """
        from langgraph.types import Command

        row = self.runs.get(run_id)
        if row is None:
            raise ApprovalError(f"no run {run_id!r}", hint="see the runs waiting: sovra runs pending")
        try:
            if row.status != AWAITING_APPROVAL or not row.approval:
                raise ApprovalError(f"run {run_id} is not waiting for approval (it is {row.status})")
            approver = self.services.directory.get(user_id)
            may_approve = set(self.settings.approver_groups) & set(approver.principals)
            if user_id != row.user_id and not may_approve:
                raise ApprovalError(
                    f"user {user_id!r} may not decide run {run_id} of {row.user_id!r}",
                    hint=f"an approver needs one of: {', '.join(self.settings.approver_groups)}",
                )
            if not approved and not reason.strip():
                raise ApprovalError("a refusal needs a reason", hint='add --reason "..."')
            try:
                owner = self.services.directory.get(row.user_id)
            except SovraError as exc:
                raise ApprovalError(
                    f"the owner of run {run_id}, {row.user_id!r}, is not in the user directory: {exc.message}",
                    hint=f"add them back to the directory and decide again, or cancel: sovra runs cancel {run_id}",
                ) from exc
            agent = agent or self._agents(row.agent)
            _check_same_agent(self.services.audit, run_id, agent, ApprovalError)
            self._compile(agent)  # a graph that cannot be built fails here, while the run still waits
            if not self.runs.transition(run_id, AWAITING_APPROVAL, "running"):
                raise ApprovalError(f"run {run_id} was decided by someone else meanwhile")
        except SovraError as exc:
            self.services.audit.append(
                "approval.refused",
                {"by": user_id, "approved": approved, "interface": interface, "error": exc.message},
                run_id=run_id,
                user_id=row.user_id,
            )
            raise
        decision = {"approved": approved, "approver": user_id, "reason": reason.strip(), "at": _utc_now()}
        with _Recorder(
            self.services.audit,
            user_id=owner.id,
            groups=list(owner.groups),
            interface=interface,
            question=row.question,
            run_id=run_id,
            resumed={"by": user_id, "why": "approval"},
        ) as rec:
            rec.record("approval.decision", {**decision, "tool": row.approval["tool"], "args": row.approval["args"]})
            ctx = self._context(owner, rec, interface, row)
            yield from self._drive(agent, Command(resume=decision), ctx, rec, row)

    def resume_crashed(self, run_id: str, *, agent: Agent | None = None, interface: str = "cli") -> Answer:
        """Continue a run whose process died (kill -9, power loss) from its last checkpoint."""
        row = self.runs.get(run_id)
        if row is None:
            raise InputError(f"no run {run_id!r}")
        try:  # a refused attempt is audited and leaves the run as it was (cancellable: see cancel)
            if row.status != "running":
                raise InputError(f"run {run_id} is {row.status}, not an interrupted run")
            if row.process_alive():
                raise InputError(f"run {run_id} is still running in process {row.pid}")
            agent = agent or self._agents(row.agent)
            _check_same_agent(self.services.audit, run_id, agent, InputError)
            self._compile(agent)
            owner = self.services.directory.get(row.user_id)
        except SovraError as exc:
            self.services.audit.append(
                "run.resume_refused", {"interface": interface, "error": exc.message}, run_id=run_id, user_id=row.user_id
            )
            raise
        self.runs.claim(run_id)
        with _Recorder(
            self.services.audit,
            user_id=owner.id,
            groups=list(owner.groups),
            interface=interface,
            question=row.question,
            run_id=run_id,
            resumed={"by": owner.id, "why": "crash", "previous_pid": row.pid},
        ) as rec:
            ctx = self._context(owner, rec, interface, row)
            return _last_answer(self._drive(agent, None, ctx, rec, row))

    def cancel(self, run_id: str) -> None:
        """Stop a run at its next step (status "cancelled"); a paused run is cancelled at once, and so
        is a "running" one whose process is gone (nothing would ever see "cancelling").

        Every change is a compare-and-set on the run table, so a cancel racing the run's own end (an
        aborted stream, an answer) never overwrites the status it ended with; every attempt is audited
        (``run.cancel_requested`` with the outcome, ``run.cancelled`` when this call ended the run).
        """
        live = self._live.get(run_id)
        if live is not None:
            live.cancelled.set()
        row = self.runs.get(run_id)
        if row is None:
            raise InputError(f"no run {run_id!r}")
        outcome = row.status  # already ended (or cancelling): nothing to change
        if row.status == AWAITING_APPROVAL and self.runs.transition(run_id, AWAITING_APPROVAL, CANCELLED):
            outcome = CANCELLED
        elif row.status in ("running", "cancelling") and live is None and not row.process_alive():
            if self.runs.transition(run_id, row.status, CANCELLED):
                outcome = CANCELLED
        elif row.status == "running" and self.runs.transition(run_id, "running", "cancelling"):
            outcome = "cancelling"  # seen between steps by the process running it
        if outcome == row.status:  # no change made here: say where the run stands now
            outcome = self.runs.status(run_id) or outcome
        self.services.audit.append(
            "run.cancel_requested", {"was": row.status, "outcome": outcome}, run_id=run_id, user_id=row.user_id
        )
        if outcome == CANCELLED:
            self.services.audit.append("run.cancelled", {"while": row.status}, run_id=run_id, user_id=row.user_id)

    # ------------------------------------------------------------------ the loop

    def _context(self, owner: User, rec: Any, interface: str, row: RunRow) -> RunContext:
        b = row.budget
        return RunContext(
            user=owner,
            services=self.services,
            recorder=rec,
            interface=interface,
            run_id=row.run_id,
            thread_id=row.thread_id,
            budget=Budget(**b) if b else Budget.from_settings(self.settings),
            steps=row.steps,
            tokens=row.tokens,
        )

    def _compile(self, agent: Agent) -> Any:
        with self._compile_lock:
            hit = self._compiled.get(id(agent))
            if hit is not None and hit[0] is agent:
                self._compiled.move_to_end(id(agent))
                return hit[1]
            graph = agent.graph().compile(checkpointer=self.runs.saver)
            self._compiled[id(agent)] = (agent, graph)
            while len(self._compiled) > _COMPILED_GRAPHS:
                self._compiled.popitem(last=False)
            return graph

    def _drive(self, agent: Agent, graph_input: Any, ctx: RunContext, rec: Any, row: RunRow) -> Iterator[RunEvent]:
        from langgraph.errors import GraphRecursionError

        run_id = row.run_id
        config: RunnableConfig = {
            "configurable": {"thread_id": row.thread_id, "ctx": ctx},
            # LangGraph's own backstop; our counter below stops the run first, with a clear status.
            "recursion_limit": max(ctx.budget.max_steps - ctx.steps, 0) + 2,
        }
        graph = self._compile(agent)
        self._live[run_id] = ctx
        base = Answer(
            run_id=run_id,
            trace_id=rec.trace_id or "",
            user=row.user_id,
            question=row.question,
            text="",
            status="",
            thread_id=row.thread_id if row.thread_id != run_id else None,
        )
        stop: SovraError | None = None
        # Streamed text is sanitised like the final answer: a client renders it as it comes.
        tokens = StreamSanitizer()
        try:
            # durability="sync": a step's checkpoint is written before the next step starts, so a
            # process killed mid-run resumes after the last finished step.
            # subgraphs=True: the nodes of a specialist run inside a supervisor's node are steps too
            # ("policy/retrieve"), and their answer tokens stream.
            parts = graph.stream(
                graph_input, config, stream_mode=["updates", "custom"], subgraphs=True, durability="sync"
            )
            for namespace, mode, chunk in parts:
                if mode == "custom":
                    if isinstance(chunk, dict) and "token" in chunk:
                        text = tokens.feed(str(chunk["token"]))
                        if text:
                            yield RunEvent("token", run_id, {"text": text})
                    continue
                held = tokens.flush()  # the node that streamed has finished: release its tail
                if held:
                    yield RunEvent("token", run_id, {"text": held})
                prefix = "".join(part.split(":", 1)[0] + "/" for part in namespace)
                updates: dict[str, Any] = chunk if isinstance(chunk, dict) else {}
                for node, update in updates.items():
                    if node.startswith("__"):
                        continue
                    ctx.steps += 1
                    yield RunEvent("step", run_id, {"name": prefix + node, "summary": _summary(update)})
                    if self.runs.status(run_id) == "cancelling":
                        ctx.cancelled.set()
                    ctx.check()
        except (BudgetExceeded, RunCancelled) as exc:
            stop = exc
        except GraphRecursionError:
            stop = BudgetExceeded(f"the run took more than {ctx.budget.max_steps} steps")
        except SovraError as exc:
            self._live.pop(run_id, None)
            self.runs.update(run_id, status="error", steps=ctx.steps, tokens=ctx.tokens)
            rec.fail(exc)
            yield RunEvent("error", run_id, {"message": exc.message, "hint": exc.hint, "exception": exc})
            return
        except BaseException:
            self._live.pop(run_id, None)
            self.runs.update(run_id, status="error", steps=ctx.steps, tokens=ctx.tokens)
            raise
        self._live.pop(run_id, None)
        if tokens.removed:
            removed = tokens.removed
            rec.record("security.stream_sanitized", {"removed": removed[:20], "count": len(removed)})
        if stop is not None:
            status = CANCELLED if isinstance(stop, RunCancelled) else BUDGET_EXCEEDED
            rec.record(f"run.{status}", {"message": stop.message, "steps": ctx.steps, "tokens": ctx.tokens})
            base.status = status
            base.text = (
                "The run was cancelled." if status == CANCELLED else f"Stopped before an answer: {stop.message}."
            )
            self.runs.update(run_id, status=status, steps=ctx.steps, tokens=ctx.tokens)
            rec.finish(answer={"text": base.text, "status": status})
            yield RunEvent("answer", run_id, {"answer": base})
            return
        snapshot = graph.get_state(config)
        approval = _pending_interrupt(snapshot, run_id, row.thread_id)
        if approval is not None:
            base.status = AWAITING_APPROVAL
            base.approval = approval
            base.text = f"Waiting for approval: {approval.description}"
            self.runs.update(
                run_id, status=AWAITING_APPROVAL, approval=asdict(approval), steps=ctx.steps, tokens=ctx.tokens
            )
            rec.pause({"approval": asdict(approval), "steps": ctx.steps, "tokens": ctx.tokens})
            yield RunEvent("approval", run_id, {"approval": approval})
            yield RunEvent("answer", run_id, {"answer": base})
            return
        answer = _sanitized(agent.to_answer(dict(snapshot.values), base), rec)
        self.runs.update(run_id, status=answer.status or "answered", steps=ctx.steps, tokens=ctx.tokens)
        rec.finish(
            answer={"text": answer.text, "status": answer.status, "notes": answer.notes},
            citations=[c.__dict__ for c in answer.citations],
        )
        yield RunEvent("answer", run_id, {"answer": answer})

    def close(self) -> None:
        self.services.close()
        runs = self.__dict__.pop("runs", None)
        if runs is not None:
            runs.close()


def agent_identity(agent: Any) -> str:
    """What an agent is, beyond its name: its ``identity()`` if it has one (an SDK agent: its name
    and tools), else its class and name."""
    ident = getattr(agent, "identity", None)
    if callable(ident):
        return str(ident())
    # The module's last name only: the same file is `pkg.mod` in one process and `mod` in another
    # (run as a script, or with its folder on sys.path); it is still the same agent.
    module = type(agent).__module__
    if module == "__main__":
        main = sys.modules.get("__main__")
        module = Path(getattr(main, "__file__", None) or "__main__").stem
    return f"{module.rpartition('.')[2]}.{type(agent).__qualname__}:{getattr(agent, 'name', '')}"


def _check_same_agent(audit: Any, run_id: str, agent: Agent, error: type[SovraError]) -> None:
    """Refuse to continue a run with another agent than the one that started it (same name, other
    tools: another registration, or a built-in where a user's agent ran). Runs recorded before
    agents were identified carry no identity and are not checked."""
    start = next((r for r in audit.records(run_id) if r.kind == "run.start"), None)
    recorded = start.data.get("agent_identity") if start is not None and isinstance(start.data, dict) else None
    if recorded is not None and recorded != agent_identity(agent):
        raise error(
            f"run {run_id} was started by agent {recorded!r}; the agent named {agent.name!r} here is "
            f"{agent_identity(agent)!r}",
            hint=f"decide it where its agent is registered, or cancel it: sovra runs cancel {run_id}",
        )


def _sanitized(answer: Answer, rec: Any) -> Answer:
    """Whatever an agent wrote (or quoted from a document), no interface renders an image, HTML or a
    link to anything but the answer's own sources: that is how injected text would exfiltrate data."""
    from sovra.guard import sanitize_answer

    allowed = [c.url for c in (*answer.citations, *answer.evidence)]
    clean, removed = sanitize_answer(answer.text, allowed)
    if removed:
        answer.text = clean
        rec.record("security.output_sanitized", {"removed": removed[:20], "count": len(removed)})
    return answer


def _approval(row: RunRow) -> Approval:
    a = dict(row.approval or {})
    return Approval(**{k: a[k] for k in Approval.__dataclass_fields__ if k in a})


def _pending_interrupt(snapshot: Any, run_id: str, thread_id: str) -> Approval | None:
    interrupts = list(getattr(snapshot, "interrupts", ()) or ())
    if not interrupts:
        interrupts = [i for t in getattr(snapshot, "tasks", ()) for i in getattr(t, "interrupts", ())]
    for it in interrupts:
        v = getattr(it, "value", None)
        if isinstance(v, dict) and v.get("type") == APPROVAL_INTERRUPT:
            return Approval(
                run_id=run_id,
                tool=str(v["tool"]),
                args=dict(v.get("args") or {}),
                description=str(v.get("description") or v["tool"]),
                requested_for=str(v.get("requested_for") or ""),
                call_id=str(v.get("call_id") or ""),
                thread_id=thread_id,
            )
    if interrupts:
        raise SovraError(
            f"run {run_id} was interrupted by something other than an approval request",
            hint="interrupt() in an agent's node must use sovra.tools.base.run_tool's approval payload",
        )
    return None


def _last_answer(events: Iterator[RunEvent]) -> Answer:
    last: RunEvent | None = None
    for ev in events:
        last = ev
    assert last is not None
    if last.kind == "error":
        exc = last.data.get("exception")
        if isinstance(exc, SovraError):
            raise exc
        raise SovraError(last.data["message"], hint=last.data.get("hint"))
    answer: Answer = last.data["answer"]
    return answer
