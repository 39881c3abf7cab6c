"""A tiny deterministic agent for testing the chat bots' plumbing in milliseconds.

It implements the runtime's ``Agent`` protocol with a real LangGraph graph (so runs, checkpoints,
the audit log and approvals are the runtime's own) but needs no index and no model: it answers
with two fixed citations and names the user it ran as. A question containing "pay" pauses for a
human decision the way a tool with ``needs_approval`` does (a LangGraph interrupt with the
runtime's approval payload). ``gate``: when set to a ``threading.Event``, the answer node waits for
it, so a test can prove that the bot acknowledged before the answer existed.
"""

from __future__ import annotations

import hashlib
import threading
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypedDict

from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph
from langgraph.types import interrupt

from sovra.runtime import APPROVAL_INTERRUPT, Answer, Citation

DOC_URL = "https://intranet.nordbank.example/sites/policies/travel.pdf"
DOC_ID = "policies/travel.pdf"
DOC_TEXT = "London: 250 EUR per night."
DOC_READERS = frozenset({"group:employees"})  # who the index lets read the cited policy


def index_cited_document(settings: Any, acl: frozenset[str] = DOC_READERS) -> str:
    """Put the policy the agent cites into the real embedded index at ``settings`` under ``acl``
    (tiny stand-in vectors: only its ACL is read), so the bots' "who may read this answer" check
    runs against a real index. Returns the cited chunk id."""
    from sovra.documents import Chunk
    from sovra.index import DocInfo, IndexInfo, IndexPoint, Sparse
    from sovra.index.edge import EdgeIndex

    chunk = Chunk(DOC_ID, 0, 3, 0, len(DOC_TEXT), DOC_TEXT)
    info = DocInfo(DOC_ID, "Travel & Expenses Policy", DOC_URL, "policies", "policy", "v1", acl)
    index = EdgeIndex(settings.paths.qdrant, settings.collection)
    try:
        index.ensure(IndexInfo(model_id="chat-test@1", dim=4))
        index.upsert([IndexPoint(chunk, info, [0.5, 0.5, 0.5, 0.5], Sparse([1], [1.0]))])
    finally:
        index.close()
    return chunk.id


class State(TypedDict, total=False):
    question: str
    decision: dict[str, Any]


class CitedAgent:
    name = "chat-test"
    description = "Fixed cited answers, for the chat bot tests."
    needs_index = False

    def __init__(self, gate: threading.Event | None = None) -> None:
        self.gate = gate
        self.started = threading.Semaphore(0)  # released each time a run reaches the answer node

    def graph(self) -> StateGraph:
        def act(state: State, config: RunnableConfig) -> State:
            if "pay" not in state["question"].lower():
                return {}
            ctx = config["configurable"]["ctx"]
            decision = interrupt(
                {
                    "type": APPROVAL_INTERRUPT,
                    "tool": "pay_invoice",
                    "args": {"invoice": "INV-7", "amount_eur": 1200},
                    "description": "Pay invoice INV-7 (1,200 EUR) to Acme Supplies",
                    "requested_for": ctx.user.id,
                    "call_id": "call-1",
                }
            )
            return {"decision": decision}

        def answer(state: State, config: RunnableConfig) -> State:
            self.started.release()
            if self.gate is not None and not self.gate.wait(timeout=60):
                raise TimeoutError("the test never opened the gate")
            return {}

        g = StateGraph(State)
        g.add_node("act", act)
        g.add_node("answer", answer)
        g.add_edge(START, "act")
        g.add_edge("act", "answer")
        g.add_edge("answer", END)
        return g

    def to_answer(self, state: dict[str, Any], base: Answer) -> Answer:
        decision = state.get("decision")
        if decision is not None:
            verdict = "approved" if decision["approved"] else f"refused ({decision['reason']})"
            base.text = f"Invoice INV-7 payment {verdict} by {decision['approver']}."
        else:
            base.text = (
                f"Hotel nights in London are capped at 250 EUR [1]; Acme was paid 1,200 EUR [2]. (asked by {base.user})"
            )
        base.status = "answered"
        base.citations = [
            Citation(
                n=1,
                kind="document",
                title="Travel & Expenses Policy",
                url=DOC_URL,
                page=3,
                chunk_id=f"{DOC_ID}#{hashlib.sha256(DOC_TEXT.encode()).hexdigest()[:16]}",
                quote=DOC_TEXT,
            ),
            Citation(
                n=2,
                kind="ledger",
                title="General ledger",
                url="ledger://journal",
                rows=("JE-1001", "JE-1002"),
                quote="2 entries, 1,200.00 EUR",
            ),
        ]
        return base

    def resolver(self, name: str, settings: Any = None) -> Any:
        """For ``Runtime(agents=...)``: a paused run is resumed with this agent."""
        if name == self.name:
            return self
        from sovra.agents import get_agent

        return get_agent(name, settings)


@contextmanager
def serve_asgi(app: Any) -> Iterator[str]:
    """Run an ASGI app under uvicorn on 127.0.0.1; yields its base URL.

    The socket is bound and listening before the server thread starts, so the first request waits
    in the backlog until uvicorn accepts it: no polling or sleeping for startup.
    """
    import socket

    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=60)
        sock.close()
    assert not thread.is_alive(), "server did not shut down"


class Outcomes:
    """What a bot did with each message (``on_done`` hook), for tests to wait on."""

    def __init__(self) -> None:
        self.by_key: dict[str, list[str]] = defaultdict(list)
        self.cond = threading.Condition()

    def __call__(self, key: str, outcome: str) -> None:
        with self.cond:
            self.by_key[key].append(outcome)
            self.cond.notify_all()

    def wait(self, key: str, count: int = 1, timeout: float = 60) -> list[str]:
        with self.cond:
            assert self.cond.wait_for(lambda: len(self.by_key[key]) >= count, timeout), dict(self.by_key)
            return list(self.by_key[key])
