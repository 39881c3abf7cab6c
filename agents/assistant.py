"""The demo agent: plan, search documents, query the ledger when asked about money, answer with
numbered citations, and check that every citation points at something it retrieved.

Small self-hosted models stay reliable because every model output is constrained to a JSON schema
and every decision the model makes is checked against what the tools can verify.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any, TypedDict

from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph
from pydantic import BaseModel, Field

from sovra.agents.scope import (
    asked_amount,
    asked_year,
    asks_about_money,
    brackets,
    is_follow_up,
    named_parties,
    renumber,
    scope_to_named,
    states_quantity,
)
from sovra.doc_profile import names_entity, names_title, question_scope
from sovra.errors import SovraError
from sovra.guard import scan_for_injection
from sovra.index import SearchFilter
from sovra.runtime import Answer, Citation, RunContext
from sovra.tools.base import ToolContext
from sovra.tools.evidence import best_sentences, split_sentences
from sovra.tools.ledger_tool import LedgerLookupArgs, ledger_lookup
from sovra.tools.search import SearchArgs, search_documents, search_hit
from sovra.tools.table_cells import asks_one_figure, best_cell, cell_line, last_header

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
    subject: str  # the conversation's subject: the last question that was not a follow-up
    context: str  # what this turn is about: the question, after the subject when it follows up
    plan: dict[str, Any]
    sources: list[dict[str, Any]]
    notes: list[str]
    missing: str
    party: str  # the named party the sources were narrowed to
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
    # The period is the one the question names, else none (the ledger then reads the current year
    # and says so): a small planner invents years nobody asked for.
    p.year = asked_year(state["question"], today)
    p.search_query = p.search_query.strip() or state["question"]
    p.counterparty = (p.counterparty or "").strip() or None
    # A thread's state carries the previous turns' subject: a follow-up is searched, scoped to a
    # party and dated within it, while its evidence is still chosen for what this turn asks.
    question, prev = state["question"], state.get("subject") or ""
    follow = bool(prev) and is_follow_up(question)
    context = f"{prev} {question}" if follow else question
    if p.year is None and follow:
        p.year = asked_year(prev, today)
    ctx.recorder.record("plan", {**p.model_dump(), "follow_up_of": prev if follow else None})
    return {
        "plan": p.model_dump(),
        "notes": [],
        "subject": prev if follow else question,
        "context": context,
        "missing": "",
        "sources": [],
    }


_PINNED = 2


def retrieve(state: State, config: RunnableConfig) -> State:
    ctx = _ctx(config)
    tctx = ToolContext(user=ctx.user, services=ctx.services, recorder=ctx.recorder)
    k = ctx.services.settings.top_k
    seen: dict[str, dict[str, Any]] = {}
    # The user's own words and the planner's query both go in: a small planner may drop a key term.
    context = state.get("context") or state["question"]
    named: set[str] = set()  # the documents of the entity the question names, if it names one
    lists: list[list[dict[str, Any]]] = []
    for query in dict.fromkeys([context, state["plan"]["search_query"]]):
        args = SearchArgs(query=query, limit=k)
        with ctx.recorder.step("tool.search_documents", args=args.model_dump()) as step:
            result = search_documents(args, tctx)
            step.result = {
                "hits": [
                    {"chunk_id": h.chunk_id, "doc_id": h.doc_id, "page": h.page, "score": h.score, "scores": h.scores}
                    for h in result.hits
                ]
            }
        hits = result.hits
        if query == context:
            scope = question_scope(context)
            named = {h.doc_id for h in hits if names_entity(scope, h.metadata) or names_title(scope, h.title)}
        elif named:
            # The planner may drop the company the user named ("net PP&E" for "3M's net PP&E"): its
            # query is answered from that company's documents only, so an answer never mixes companies.
            hits = [h for h in hits if h.doc_id in named]
        lists.append([{"kind": "document", **h.model_dump()} for h in hits])
    # The user's question's first hits keep their place: the retrieval pipeline put them first (the
    # named entity's statement page for the period, say), which their fused scores alone do not say.
    pinned = lists[0][:_PINNED] if lists else []
    for hits_of_query in lists:
        for h in hits_of_query:
            seen.setdefault(h["chunk_id"], h)
    ids = {h["chunk_id"] for h in pinned}
    ranked = pinned + sorted((h for h in seen.values() if h["chunk_id"] not in ids), key=lambda s: -s["score"])
    # A question about a named party is answered from that party's documents only; when none the
    # user may read mentions it, the answer says so (search is ACL-filtered: nothing restricted
    # is confirmed or denied).
    scoped, party, missing = scope_to_named(context, ranked)
    if missing:
        ctx.recorder.record("retrieve.unnamed", {"name": missing})
        return {"sources": [], "missing": missing, "party": ""}
    return {"sources": scoped[:k], "party": party or ""}


def ledger(state: State, config: RunnableConfig) -> State:
    ctx = _ctx(config)
    p = state["plan"]
    notes = list(state.get("notes", []))
    sources = list(state.get("sources", []))
    names = named_parties(state.get("context") or state["question"])
    party = names[0] if names else p.get("counterparty")
    args = LedgerLookupArgs(question=state["question"], counterparty=party, year=p.get("year"))
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
        found = res.model_dump(mode="json")
        if p.get("year") is None:
            found["headline"] += " (no period was asked: the current year)"
        sources.append({"kind": "ledger", **found})
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
            {
                "text": x.text,
                "score": round(x.score, 5),
                "dense": round(x.dense, 4),
                "overlap": x.overlap,
                "supported": x.overlap >= x.needed,
            }
            for x in sents
        ]
    # A "how many days" question is answered by a line that gives a number of days.
    for s in docs:
        for u in s["sentences"]:
            u["quantity"] = states_quantity(question, u["text"])
    # A question giving an amount ("a gift worth EUR 120") is answered by the rule whose band holds
    # it ("above EUR 50 and up to EUR 150"), wherever similarity ranked that line.
    amount = asked_amount(question)
    for s in docs if amount is not None else []:
        for unit, _ in split_sentences(s["text"].replace(s["title"], " ")):
            if brackets(unit, amount):
                s["sentences"] = [u for u in s["sentences"] if u["text"] != unit]
                s["sentences"].append({"text": unit, "score": 1.0, "dense": 1.0, "supported": True, "band": True})
    return sources


_TABLE_PAGES = 3  # pages of tables read whole for a figure: the first sources' with a table on them


def _page_chunks(ctx: RunContext, sources: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every chunk of the pages of the first sources that hold a table, in source order: a statement
    page is cut into several chunks and the search may have found only its heading's."""
    pages: list[tuple[str, int]] = []
    for s in sources:
        if s["kind"] == "document" and "|" in s["text"] and (s["doc_id"], s["page"]) not in pages:
            pages.append((s["doc_id"], s["page"]))
    out: list[dict[str, Any]] = []
    by_doc: dict[str, list[Any]] = {}
    for doc_id, page in pages[:_TABLE_PAGES]:
        if doc_id not in by_doc:  # the ACL term stays in the filter: only what the user may read
            flt = SearchFilter(principals=tuple(ctx.user.principals), doc_ids=(doc_id,))
            by_doc[doc_id] = ctx.services.index.chunks(flt)
        hits = sorted((h for h in by_doc[doc_id] if h.page == page), key=lambda h: h.char_start)
        # A chunk that tries to instruct the reader (sovra.guard) is never quoted.
        out += [
            {"kind": "document", **search_hit(h).model_dump(), "score": 0.0, "scores": {}}
            for h in hits
            if not scan_for_injection(h.text)
        ]
    return out


def _table_figure(
    ctx: RunContext, question: str, sources: list[dict[str, Any]]
) -> tuple[int, str, dict[str, Any], list[dict[str, Any]]] | None:
    """The figure a question asks for, read from a table row (:mod:`sovra.tools.table_cells`) of a
    source or of the rest of its page: (source number, the labelled figure, what the audit records,
    the sources with the row's chunk added when it was not one of them)."""
    if not asks_one_figure(question):  # no page is read for a question no cell answers
        return None
    docs = [s for s in sources if s["kind"] == "document"]
    # The rows may be on the rest of a source's page.
    page = _page_chunks(ctx, sources)
    extra = [c for c in page if c["chunk_id"] not in {s["chunk_id"] for s in docs}]
    # A chunk that starts inside a table reads its unit and columns from the header an earlier
    # chunk of the page holds.
    carried: dict[str, str] = {}
    for prev, c in zip([None, *page], page, strict=False):
        same = prev is not None and (prev["doc_id"], prev["page"]) == (c["doc_id"], c["page"])
        carried[c["chunk_id"]] = (last_header(prev["text"]) or carried[prev["chunk_id"]]) if same else ""
    texts = [f"{carried[s['chunk_id']]}\n{s['text']}" if carried.get(s["chunk_id"]) else s["text"]
             for s in docs + extra]  # fmt: skip
    found = best_cell(question, texts)
    if found is None:
        return None
    chunk = (docs + extra)[found[0]]
    if found[0] < len(docs):
        n = sources.index(chunk) + 1
    else:
        sources = [*sources, chunk]
        n = len(sources)
    _, cell, converted = found
    record = {"source": n, "chunk_id": chunk["chunk_id"], "label": cell.label, "period": cell.period,
              "value": cell.value, "unit": cell.unit, "converted": converted, "row": cell.row}  # fmt: skip
    return n, cell_line(cell, converted, chunk.get("page")), record, sources


def _extractive(
    sources: list[dict[str, Any]], min_dense: float, max_units: int = 3, lead: tuple[int, str] | None = None
) -> tuple[str, list[int]]:
    """An answer made only of what the sources say: the ledger summary, the asked table figure with
    its labels (``lead``), and the best units: one beside a figure (the figure answers; one quote
    shows where it stands, more would bury it), else up to ``max_units``.

    At most one unit per source is taken first, so three passages of one document do not crowd
    out the passage that answers (unless all are of one document); a unit already quoted inside
    another is skipped.
    """
    lines: list[str] = []
    cited: list[int] = []
    if lead is not None:
        max_units = min(max_units, 1)
    for i, s in enumerate(sources, start=1):
        if s["kind"] == "ledger":
            lines.append(f"Ledger: {s['headline']} [{i}]")
            cited.append(i)
    if lead is not None:
        lines.append(f"{lead[1]} [{lead[0]}]")
        cited.append(lead[0])
    # Lines stating the asked quantity come first, the ones sharing most of the question's words
    # among them; then the fused similarity.
    ranked = sorted(
        ((u["score"], i, u) for i, s in enumerate(sources, start=1) for u in s.get("sentences", [])),
        key=lambda t: (not t[2].get("quantity"), -t[2].get("overlap", 0) if t[2].get("quantity") else 0, -t[0]),
    )
    # A "how many days" question is answered by the lines that give a number of days and share about
    # as many of the question's words as the best of them: "30 working days of paid annual leave" (2
    # shared) does not answer "How many days per week may I work from home?" beside "work remotely
    # for up to 3 days per week" (5), and lines that give no number of days are not added after them.
    best = max((u.get("overlap", 0) for _, _, u in ranked if u.get("quantity") and _usable(u, min_dense)), default=0)
    picked: list[tuple[float, int, str]] = []
    # When every passage is from one document (a question about one party's contract), spreading
    # the quotes over passages would only skip that document's second-best clause.
    one_doc = len({s.get("doc_id") for s in sources if s["kind"] == "document"}) <= 1
    for first_pass in (False,) if one_doc else (True, False):
        for score, i, u in ranked:
            if len(picked) == max_units:
                break
            # Lines giving the asked quantity may come two from one passage ("1 hour", "72 hours").
            spread = first_pass and not u.get("quantity")
            if not _usable(u, min_dense) or (spread and any(p[1] == i for p in picked)):
                continue
            if best and (not u.get("quantity") or 2 * u.get("overlap", 0) < best):
                continue  # a "how many" question is answered by the lines that give the number
            if any(u["text"] in p[2] or p[2] in u["text"] for p in picked):
                continue
            picked.append((score, i, u["text"]))
    for _, i, text in picked:
        lines.append(f'"{text}" [{i}]')
        cited.append(i)
    return "\n".join(lines), sorted(set(cited))


def _usable(unit: dict[str, Any], min_dense: float) -> bool:
    """Evidence must be close in meaning AND share words with the question: a passage that is merely
    on a nearby topic ("equipment allowance" for "pet insurance allowance") is not."""
    return bool(unit["dense"] >= min_dense and unit["supported"])


def answer(state: State, config: RunnableConfig) -> State:
    ctx = _ctx(config)
    sources = state.get("sources", [])
    if not sources and state.get("missing"):
        text = f"No document about {state['missing']} is available to you."
        return {"answer": text, "citations": [], "status": "not_found"}
    if not sources:
        ctx.recorder.record("answer.not_found", {"reason": "no source the user may read matched"})
        return {"answer": NOT_FOUND, "citations": [], "status": "not_found"}
    # Once the sources are one party's, its name only pulls signature blocks and running headers
    # to the top of the evidence: the sentences are chosen for the rest of the question.
    party = state.get("party") or ""
    asked = " ".join(state["question"].replace(party, " ").split()) if party else state["question"]
    sources = _add_evidence(asked, sources, ctx.services.embedder)
    settings = ctx.services.settings
    if settings.resolved_answer_mode == "extractive":
        figure = _table_figure(ctx, state["question"], sources)
        lead = (figure[0], figure[1]) if figure else None
        if figure:
            sources = figure[3]
        text, cited = _extractive(sources, settings.min_evidence_score, lead=lead)
        ctx.recorder.record(
            "answer.extractive",
            {
                "cited": cited,
                "min_score": settings.min_evidence_score,
                "table_figure": figure[2] if figure else None,
                "sentences": {i: s.get("sentences", []) for i, s in enumerate(sources, start=1)},
            },
        )
        if not cited:
            return {"answer": NOT_FOUND, "citations": [], "status": "not_found", "sources": sources}
        text, cited, sources = renumber(text, sources)
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
    parsed, call = ctx.services.gateway.complete_json(messages, Drafted, route="chat", on_text=_AnswerStream(ctx))
    ctx.model_call(call, messages)
    d: Drafted = parsed  # type: ignore[assignment]
    return {"draft": d.model_dump(), "sources": sources}


_ANSWER_SO_FAR = re.compile(r'^\s*\{\s*"answer"\s*:\s*"((?:[^"\\]|\\.)*)')


class _AnswerStream:
    """Shows the draft's ``answer`` while a served model writes its JSON reply: called with the
    text received so far, it emits what was added to the answer string (run events of kind
    "token"). A reply that starts NOT_FOUND is held back (check_citations words it), and the shown
    text is replaced by the checked answer when the run ends."""

    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx
        self.shown = ""

    def __call__(self, received: str) -> None:
        m = _ANSWER_SO_FAR.match(received)
        if not m:
            return
        try:  # an escape cut in half ("\\u00") fails here: wait for the rest
            answer = json.loads(f'"{m.group(1)}"')
        except ValueError:
            return
        if "NOT_FOUND".startswith(answer.strip().upper()[:9]) or answer.strip().upper().startswith("NOT_FOUND"):
            return
        if answer.startswith(self.shown) and len(answer) > len(self.shown):
            self.ctx.emit_token(answer[len(self.shown) :])
            self.shown = answer


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
    # Numbers listed in 'citations' but absent from the text stay cited, after the ones used.
    text, valid, sources = renumber(text, state.get("sources", []), valid)
    return {"answer": text, "citations": valid, "status": "answered" if valid else "uncited", "sources": sources}


_YEARISH = re.compile(r"\b(20\d\d|year)\b", re.I)


def _after_retrieve(state: State) -> str:
    # Ledger lines only for payment questions, read from the question's own words: the planner's
    # flag alone put payment totals on top of contract-term answers.
    # A follow-up that only changes the period ("And in 2024?") keeps asking about payments.
    question, context = state["question"], state.get("context") or state["question"]
    period_only = context != question and len(question.split()) <= 5 and bool(_YEARISH.search(question))
    return "ledger" if asks_about_money(question) or (period_only and asks_about_money(context)) else "answer"


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
    title = "Ask about policies, contracts and payments"
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
