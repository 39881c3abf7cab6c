"""The demo agent: plan, search documents, query the ledger when asked about money, answer with
numbered citations, and check that every citation points at something it retrieved.

Small self-hosted models stay reliable because every model output is constrained to a JSON schema
and every decision the model makes is checked against what the tools can verify.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, TypedDict

from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph
from pydantic import BaseModel, Field

from sovra.errors import SovraError
from sovra.runtime import Answer, Citation, RunContext
from sovra.tools.base import ToolContext
from sovra.tools.evidence import best_sentences
from sovra.tools.ledger_tool import LedgerLookupArgs, ledger_lookup
from sovra.tools.search import SearchArgs, search_documents

NOT_FOUND = "I could not find this in the documents you can access."
_MAX_SOURCE_CHARS = 700


# Bounded strings keep a small model from rambling until max_tokens cuts the JSON off; the bounds
# stay modest because llama.cpp compiles each bounded string into a grammar rule per character.
class Plan(BaseModel):
    search_query: str = Field(description="keywords to search the documents for", max_length=100)
    ledger_lookup: bool = Field(description="true if the question asks what was paid, spent or booked")
    counterparty: str | None = Field(default=None, description="company the payments went to", max_length=60)
    year: int | None = Field(default=None, description="calendar year of the payments, if any")


class Drafted(BaseModel):
    answer: str = Field(max_length=400)
    citations: list[int] = Field(default_factory=list, max_length=6)


class State(TypedDict, total=False):
    question: str
    plan: dict[str, Any]
    sources: list[dict[str, Any]]
    notes: list[str]
    draft: dict[str, Any]
    answer: str
    citations: list[int]
    status: str


def _ctx(config: RunnableConfig) -> RunContext:
    return config["configurable"]["ctx"]


def _plan_messages(question: str, today: dt.date) -> list[dict[str, str]]:
    system = (
        "You plan how to answer an employee's question at a bank. Reply with JSON only.\n"
        f"Today is {today.isoformat()}; 'this year' means {today.year}.\n"
        'Example: question "What did we pay Globex in 2025 and can we end the contract early?" -> '
        '{"search_query": "Globex contract termination", "ledger_lookup": true, '
        '"counterparty": "Globex", "year": 2025}\n'
        'Example: question "How many days can I work from home?" -> '
        '{"search_query": "remote work days per week", "ledger_lookup": false, "counterparty": null, "year": null}'
    )
    return [{"role": "system", "content": system}, {"role": "user", "content": question}]


def plan(state: State, config: RunnableConfig) -> State:
    ctx = _ctx(config)
    today = ctx.services.settings.today
    messages = _plan_messages(state["question"], today)
    parsed, call = ctx.services.gateway.complete_json(messages, Plan, route="planning", max_tokens=120)
    ctx.model_call(call, messages)
    p: Plan = parsed  # type: ignore[assignment]
    # The model proposes; values it cannot know are checked here.
    if p.year is not None and not 2000 <= p.year <= today.year:
        p.year = None
    p.search_query = p.search_query.strip() or state["question"]
    p.counterparty = (p.counterparty or "").strip() or None
    ctx.recorder.record("plan", p.model_dump())
    return {"plan": p.model_dump(), "notes": []}


def retrieve(state: State, config: RunnableConfig) -> State:
    ctx = _ctx(config)
    tctx = ToolContext(user=ctx.user, services=ctx.services, recorder=ctx.recorder)
    k = ctx.services.settings.top_k
    seen: dict[str, dict[str, Any]] = {}
    # The user's own words and the planner's query both go in: a small planner may drop a key term.
    for query in dict.fromkeys([state["question"], state["plan"]["search_query"]]):
        args = SearchArgs(query=query, limit=k)
        with ctx.recorder.step("tool.search_documents", args=args.model_dump()) as step:
            result = search_documents(args, tctx)
            step.result = {
                "hits": [
                    {"chunk_id": h.chunk_id, "doc_id": h.doc_id, "page": h.page, "score": h.score, "scores": h.scores}
                    for h in result.hits
                ]
            }
        for h in result.hits:
            seen.setdefault(h.chunk_id, {"kind": "document", **h.model_dump()})
    ranked = sorted(seen.values(), key=lambda s: -s["score"])[:k]
    return {"sources": ranked}


def ledger(state: State, config: RunnableConfig) -> State:
    ctx = _ctx(config)
    p = state["plan"]
    notes = list(state.get("notes", []))
    sources = list(state.get("sources", []))
    args = LedgerLookupArgs(question=state["question"], counterparty=p.get("counterparty"), year=p.get("year"))
    if not ledger_lookup.allowed(ctx.user):
        ctx.recorder.record("tool.denied", {"tool": ledger_lookup.name, "args": args.model_dump()})
        notes.append("The ledger was not searched: you do not have access to financial data.")
        return {"notes": notes}
    try:
        with ctx.recorder.step("tool.ledger_lookup", args=args.model_dump(mode="json")) as step:
            res = ledger_lookup(args, ToolContext(user=ctx.user, services=ctx.services))
            step.result = res.model_dump(mode="json")
    except SovraError as exc:
        notes.append(f"The ledger lookup failed: {exc.message}")
        return {"notes": notes}
    if res.found:
        sources.append({"kind": "ledger", **res.model_dump(mode="json")})
    else:
        notes.append(res.summary)
    return {"sources": sources, "notes": notes}


def _source_block(i: int, s: dict[str, Any]) -> str:
    if s["kind"] == "ledger":
        return f"[{i}] General ledger: {s['summary']}"
    return f"[{i}] {s['title']} (page {s['page']}): {s['evidence'][:_MAX_SOURCE_CHARS]}"


def _add_evidence(question: str, sources: list[dict[str, Any]], embedder: Any) -> list[dict[str, Any]]:
    """Attach to each document source the sentences that best answer the question."""
    docs = [s for s in sources if s["kind"] == "document"]
    # Running headers repeat the title on every page; they are never evidence.
    texts = [s["text"].replace(s["title"], " ") for s in docs]
    picked = best_sentences(question, texts, embedder)
    for s, sents in zip(docs, picked, strict=True):
        s["evidence"] = " ".join(x.text for x in sents) or s["text"][:_MAX_SOURCE_CHARS]
        s["sentences"] = [
            {"text": x.text, "score": round(x.score, 5), "dense": round(x.dense, 4), "supported": x.overlap >= x.needed}
            for x in sents
        ]
    return sources


def _extractive(sources: list[dict[str, Any]], min_dense: float, max_units: int = 3) -> tuple[str, list[int]]:
    """An answer made only of what the sources say: the ledger summary and the best units.

    At most one unit per source is taken first, so three passages of one document do not crowd
    out the passage that answers; a unit already quoted inside another is skipped.
    """
    lines: list[str] = []
    cited: list[int] = []
    for i, s in enumerate(sources, start=1):
        if s["kind"] == "ledger":
            lines.append(f"Ledger: {s['headline']} [{i}]")
            cited.append(i)
    ranked = sorted(
        ((u["score"], i, u) for i, s in enumerate(sources, start=1) for u in s.get("sentences", [])),
        key=lambda t: -t[0],
    )
    picked: list[tuple[float, int, str]] = []
    for first_pass in (True, False):
        for score, i, u in ranked:
            if len(picked) == max_units:
                break
            # Evidence must be close in meaning AND share words with the question: a passage that is
            # merely on a nearby topic ("equipment allowance" for "pet insurance allowance") is not.
            if u["dense"] < min_dense or not u["supported"] or (first_pass and any(p[1] == i for p in picked)):
                continue
            if any(u["text"] in p[2] or p[2] in u["text"] for p in picked):
                continue
            picked.append((score, i, u["text"]))
    for _, i, text in sorted(picked, key=lambda t: -t[0]):
        lines.append(f'"{text}" [{i}]')
        cited.append(i)
    return "\n".join(lines), sorted(set(cited))


def answer(state: State, config: RunnableConfig) -> State:
    ctx = _ctx(config)
    sources = state.get("sources", [])
    if not sources:
        ctx.recorder.record("answer.not_found", {"reason": "no source the user may read matched"})
        return {"answer": NOT_FOUND, "citations": [], "status": "not_found"}
    sources = _add_evidence(state["question"], sources, ctx.services.embedder)
    settings = ctx.services.settings
    if settings.resolved_answer_mode == "extractive":
        text, cited = _extractive(sources, settings.min_evidence_score)
        ctx.recorder.record(
            "answer.extractive",
            {
                "cited": cited,
                "min_score": settings.min_evidence_score,
                "sentences": {i: s.get("sentences", []) for i, s in enumerate(sources, start=1)},
            },
        )
        if not cited:
            return {"answer": NOT_FOUND, "citations": [], "status": "not_found", "sources": sources}
        return {"answer": text, "citations": cited, "status": "extracted", "sources": sources}
    blocks = "\n\n".join(_source_block(i, s) for i, s in enumerate(sources, start=1))
    messages = [
        {
            "role": "system",
            "content": "Answer the question using only the numbered sources. Be brief and factual. "
            "Put the number of each source you use in square brackets, like [1]. "
            "List the numbers you used in 'citations'. If the sources do not answer the question, "
            'reply {"answer": "NOT_FOUND", "citations": []}.',
        },
        {"role": "user", "content": f"Sources:\n{blocks}\n\nQuestion: {state['question']}"},
    ]
    parsed, call = ctx.services.gateway.complete_json(messages, Drafted, route="chat")
    ctx.model_call(call, messages)
    d: Drafted = parsed  # type: ignore[assignment]
    return {"draft": d.model_dump(), "sources": sources}


def check_citations(state: State, config: RunnableConfig) -> State:
    """Keep only citations that point at a retrieved source; record the ones that do not."""
    ctx = _ctx(config)
    draft = state["draft"]
    n = len(state.get("sources", []))
    text = draft["answer"].strip()
    if not text or text.upper().startswith("NOT_FOUND"):
        ctx.recorder.record("answer.not_found", {"reason": "the model found no answer in the sources"})
        return {"answer": NOT_FOUND, "citations": [], "status": "not_found"}
    claimed = set(draft.get("citations", [])) | {int(m) for m in re.findall(r"\[(\d{1,3})\]", text)}
    valid = sorted(c for c in claimed if 1 <= c <= n)
    invalid = sorted(claimed - set(valid))
    # A citation to a source that was not retrieved is removed from the text as well.
    for c in invalid:
        text = text.replace(f"[{c}]", "")
    ctx.recorder.record("citations.check", {"valid": valid, "invalid": invalid, "sources": n})
    return {"answer": text, "citations": valid, "status": "answered" if valid else "uncited"}


# A backstop for the planner's recall: a small model sometimes misses that "what have we paid"
# needs the ledger. The ledger tool still checks permissions and resolves the counterparty itself.
_MONEY = re.compile(r"\b(paid|pay|payments?|spent|spend|invoiced?|invoices|booked|charged|transferred)\b", re.I)


def _after_retrieve(state: State) -> str:
    wants_ledger = state["plan"].get("ledger_lookup") or _MONEY.search(state["question"])
    return "ledger" if wants_ledger else "answer"


def _after_answer(state: State) -> str:
    return "check_citations" if "draft" in state else END


def _doc_citation(n: int, s: dict[str, Any]) -> Citation:
    return Citation(
        n=n,
        kind="document",
        title=s["title"],
        url=s["url"],
        page=s["page"],
        chunk_id=s["chunk_id"],
        quote=s.get("evidence") or s["text"][:240],
    )


class Assistant:
    """Answers questions over policies, contracts and the ledger, with citations."""

    name = "assistant"
    description = "Policy, contract and ledger questions with cited answers."

    def graph(self) -> StateGraph:
        g = StateGraph(State)
        g.add_node("plan", plan)
        g.add_node("retrieve", retrieve)
        g.add_node("ledger", ledger)
        g.add_node("answer", answer)
        g.add_node("check_citations", check_citations)
        g.add_edge(START, "plan")
        g.add_edge("plan", "retrieve")
        g.add_conditional_edges("retrieve", _after_retrieve, ["ledger", "answer"])
        g.add_edge("ledger", "answer")
        g.add_conditional_edges("answer", _after_answer, ["check_citations", END])
        g.add_edge("check_citations", END)
        return g

    def to_answer(self, state: dict[str, Any], base: Answer) -> Answer:
        sources = state.get("sources", [])
        cites: list[Citation] = []
        for n in state.get("citations", []):
            s = sources[n - 1]
            if s["kind"] == "ledger":
                cites.append(
                    Citation(
                        n=n,
                        kind="ledger",
                        title=s["title"],
                        url=s["url"],
                        rows=tuple(s["row_keys"]),
                        quote=s["summary"],
                    )
                )
            else:
                cites.append(_doc_citation(n, s))
        if not cites and state.get("status") == "uncited":
            # Show what the model was given, clearly apart from citations it did not make.
            base.evidence = [_doc_citation(i, s) for i, s in enumerate(sources, 1) if s["kind"] == "document"][:3]
        base.text = state.get("answer", NOT_FOUND)
        base.status = state.get("status", "not_found")
        base.citations = cites
        base.notes = list(state.get("notes", []))
        return base
