"""Runs an agent for a user: identity, services, audit recorder, checkpoints, one answer.

The runtime knows nothing about particular agents (it sits below ``agents/``): an agent is anything
that can build a LangGraph ``StateGraph`` whose nodes read the run's context from
``config["configurable"]["ctx"]`` (see ``RunContext``).
"""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Protocol

from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import StateGraph

from sovra.config import Settings
from sovra.errors import InputError
from sovra.identity import Directory, User

log = logging.getLogger(__name__)

MAX_QUESTION_CHARS = 8000


class Services:
    """The shared, lazily built parts a run needs. Cheap to create; each part is built on first use."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @cached_property
    def embedder(self) -> Any:
        from sovra.embeddings import Embedder

        s = self.settings
        return Embedder(s.embedding_model_dir, s.paths.models, batch_size=s.embed_batch_size)

    @cached_property
    def index(self) -> Any:
        from sovra.index import open_index

        return open_index(self.settings)

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

    def label(self) -> str:
        where = f"p. {self.page}" if self.page is not None else ""
        if self.rows:
            where = f"rows {', '.join(self.rows[:5])}" + (" ..." if len(self.rows) > 5 else "")
        return f"[{self.n}] {self.title}" + (f", {where}" if where else "") + f" <{self.url}>"


@dataclass
class Answer:
    run_id: str
    trace_id: str
    user: str
    question: str
    text: str
    status: str  # "answered" | "not_found" | "uncited"
    citations: list[Citation] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # Passages the agent retrieved but the model did not cite (shown only when it cited nothing).
    evidence: list[Citation] = field(default_factory=list)


@dataclass
class RunContext:
    """Passed to every graph node through ``config["configurable"]["ctx"]``."""

    user: User
    services: Services
    recorder: Any  # sovra.recorder.RunRecorder

    def model_call(self, call: Any, messages: list[dict[str, str]]) -> None:
        """Record one gateway call: route, model, parameters, prompt, output, tokens, latency."""
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

    interface: str


class Agent(Protocol):
    name: str
    description: str

    def graph(self) -> StateGraph: ...

    def to_answer(self, state: dict[str, Any], base: Answer) -> Answer: ...


class Runtime:
    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings()
        self.services = Services(self.settings)

    def _checkpointer(self) -> SqliteSaver:
        conn = sqlite3.connect(self.settings.paths.checkpoints_db, check_same_thread=False)
        return SqliteSaver(conn)

    def preflight(self, question: str, user_id: str) -> tuple[str, User]:
        """Check what a user can get wrong before any model or index is loaded."""
        question = question.strip()
        if not question:
            raise InputError("the question is empty", hint='ask something, e.g. sovra ask "..." --as alice')
        if len(question) > MAX_QUESTION_CHARS:
            raise InputError(f"the question is {len(question)} characters; the limit is {MAX_QUESTION_CHARS}")
        user = self.services.directory.get(user_id)
        from sovra.index import IndexInfo

        emb = self.services.embedder
        self.services.index.check(IndexInfo(model_id=emb.model_id, dim=emb.dim))
        return question, user

    def ask(self, agent: Agent, question: str, user_id: str, interface: str = "cli") -> Answer:
        from sovra.recorder import RunRecorder

        question, user = self.preflight(question, user_id)
        saver = self._checkpointer()
        try:
            with RunRecorder(
                self.services.audit, user_id=user.id, groups=list(user.groups), interface=interface, question=question
            ) as rec:
                graph = agent.graph().compile(checkpointer=saver)
                ctx = RunContext(user=user, services=self.services, recorder=rec, interface=interface)
                state = graph.invoke(
                    {"question": question},
                    config={"configurable": {"thread_id": rec.run_id, "ctx": ctx}},
                )
                base = Answer(
                    run_id=rec.run_id, trace_id=rec.trace_id or "", user=user.id, question=question, text="", status=""
                )
                answer = agent.to_answer(state, base)
                rec.finish(
                    answer={"text": answer.text, "status": answer.status, "notes": answer.notes},
                    citations=[c.__dict__ for c in answer.citations],
                )
        finally:
            saver.conn.close()
        return answer

    def close(self) -> None:
        self.services.close()
