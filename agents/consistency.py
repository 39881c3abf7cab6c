"""Consistency between a document and its translation or summary: amounts, percentages and rates,
dates, periods, years, jurisdictions, parties, defined terms and other numbers, compared on meaning
across languages, cited on both sides.

The graph is find -> compare -> report. ``find`` takes the document the question names (by its
parties or title, as the contracts agent does) and, among the documents the user may read, the one
that shares most of its facts: a translation restates nearly all of them. A question that says
"summary" compares one way: every fact of the summary must be in the body (the body may say more).
"Consistent" is said only when both documents were read and every compared fact was found on the
other side; otherwise the report lists what differs and what could not be compared.
"""

from __future__ import annotations

import re
from typing import Any, TypedDict

from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph

from sovra.agents.assistant import NOT_FOUND
from sovra.agents.contracts import CitationBook, ctx_of, report_answer, tool_ctx
from sovra.errors import SovraError
from sovra.index import SearchFilter
from sovra.language import detect_language
from sovra.runtime import Answer, RunContext
from sovra.tools.contract_docs import ContractDocument, _mentioned, _parties_of, _search, _whole, _words
from sovra.tools.facts import (
    ALL_KINDS,
    Fact,
    compare_defined_terms,
    compare_facts,
    compare_numbers,
    compare_parties,
    counterpart,
    defined_term_facts,
    facts_of,
    number_facts,
    party_facts,
    settle_by_value,
)
from sovra.tools.terms.layout import Passage, passages

_CANDIDATES = 8
_MIN_SHARED = 0.5  # a translation restates at least half of the other version's facts
_SUMMARY = re.compile(r"\bsummar(?:y|ies)\b|\brésumé\b|\bzusammenfassung\b|\bsintesi\b|\bsamenvatting\b", re.I)


class State(TypedDict, total=False):
    question: str
    docs: list[dict[str, Any]]
    one_way: bool
    result: dict[str, Any]
    notes: list[str]
    answer: str
    citations: list[dict[str, Any]]
    status: str


def _facts(doc: ContractDocument) -> list[Fact]:
    return facts_of(doc.pages(), ALL_KINDS)


def _with_counterpart(f: Fact, own: list[Passage], other: list[Passage], window: float | None) -> dict[str, Any]:
    """The fact, and where the other document says what its passage says (None when nothing matches):
    a difference is shown with both sides' wording, the changed value beside the original."""
    out = dict(f.__dict__)
    p = counterpart(f, own, other, window)
    out["counterpart"] = None
    if p is not None:
        quote = p.text if len(p.text) <= 300 else p.text[:299] + "…"
        out["counterpart"] = {"page": p.page, "char_start": p.start, "char_end": p.end, "quote": quote}
    return out


def _joined(pages: dict[int, str]) -> str:
    return "\n\n".join(t for _, t in sorted(pages.items()))


def _shared(a: list[Fact], b: list[Fact]) -> float:
    ka, kb = {f.key for f in a}, {f.key for f in b}
    return len(ka & kb) / max(1, min(len(ka), len(kb)))


def find_pair(ctx: RunContext, question: str) -> tuple[list[ContractDocument], list[str]]:
    """The document the question names and its counterpart (translation, summary or body)."""
    tctx = tool_ctx(ctx)
    flt = SearchFilter(principals=tuple(ctx.user.principals))
    first: dict[str, Any] = {}
    for h in _search(tctx, question, flt, 50):
        first.setdefault(h.doc_id, h)
    docs = [_whole(tctx, h, h.source) for h in list(first.values())[:_CANDIDATES]]
    if not docs:
        return [], []
    qwords = _words(question)

    def score(d: ContractDocument) -> float:
        title = _words(d.title.replace("_", " "))
        return _mentioned(question, _parties_of(d)) + len(qwords & title) / max(len(title), 1)

    ranked = sorted(docs, key=score, reverse=True)
    main = ranked[0]
    main_facts = _facts(main)
    pairs = sorted(((_shared(main_facts, _facts(d)), d) for d in ranked[1:]), key=lambda x: -x[0])
    if not pairs or pairs[0][0] < _MIN_SHARED:
        return [main], [f"No translation or summary of {main.title} was found among the documents you may read."]
    if len(pairs) > 1 and abs(pairs[0][0] - pairs[1][0]) < 1e-9:
        names = f"{pairs[0][1].title}; {pairs[1][1].title}"
        return [main], [f"Several documents could be the counterpart of {main.title}: {names}. Name one."]
    return [main, pairs[0][1]], []


def find(state: State, config: RunnableConfig) -> State:
    ctx = ctx_of(config)
    try:
        with ctx.recorder.step("tool.find_document_pair", args={"query": state["question"]}) as step:
            docs, notes = find_pair(ctx, state["question"])
            step.result = {"documents": [d.doc_id for d in docs], "notes": notes}
    except SovraError as exc:
        return {"docs": [], "notes": [f"The document search failed: {exc.message}"]}
    return {
        "docs": [d.model_dump(mode="json") for d in docs],
        "notes": notes,
        "one_way": bool(_SUMMARY.search(state["question"])),
    }


def compare(state: State, config: RunnableConfig) -> State:
    ctx = ctx_of(config)
    one_way = bool(state.get("one_way"))
    # each document's pages rebuilt from its chunks once, and its facts read once
    read = []
    for d in (ContractDocument.model_validate(d) for d in state["docs"][:2]):
        pages = d.pages()
        read.append((d, pages, facts_of(pages, ALL_KINDS)))
    if one_way:  # the shorter one is the summary: all of its facts must be in the body
        read.sort(key=lambda x: len(x[2]))
    (left, lpages, lf), (right, rpages, rf) = read
    ltext, rtext = _joined(lpages), _joined(rpages)
    ln, rn = number_facts(lpages), number_facts(rpages)
    window = None if one_way else 0.2  # a summary restates its body's facts in another order
    # A side is read when it states any fact, a bare number included ("2 Gegenstimmen")
    res = settle_by_value(compare_facts(lf + ln, rf + rn, ALL_KINDS), ltext, rtext)
    unverified: list[Fact] = []
    unverified_numbers: list[Fact] = []
    if not res.unreadable:  # parties: names with a legal form, found by name on the other side
        parties, unverified = compare_parties(party_facts(lpages), party_facts(rpages), ltext, rtext)
        # numbers outside those facts (counts, measures, article numbers): a changed one is a difference
        numbers, unverified_numbers = compare_numbers(ln, rn, lpages, rpages, window)
        if one_way:  # a body says more than its summary: only the summary's numbers count
            unverified_numbers = [f for f in unverified_numbers if any(f is g for g in ln)]
        # defined terms: the same term in one language, the term defined at the same place across two
        languages = {detect_language(ltext), detect_language(rtext)}
        same_language = len(languages) == 1 and None not in languages
        terms = compare_defined_terms(
            defined_term_facts(lpages), defined_term_facts(rpages), lpages, rpages, same_language, window
        )
        for more in (parties, numbers, terms):
            res.matched += more.matched
            res.only_left += more.only_left
            res.only_right += [] if one_way else more.only_right
    lp, rp = passages(lpages), passages(rpages)
    result = {
        "left": left.model_dump(mode="json", include={"doc_id", "title", "url"}),
        "right": right.model_dump(mode="json", include={"doc_id", "title", "url"}),
        "matched": [[a.__dict__, b.__dict__] for a, b in res.matched],
        "only_left": [_with_counterpart(f, lp, rp, window) for f in res.only_left],
        "only_right": [] if one_way else [_with_counterpart(f, rp, lp, window) for f in res.only_right],
        "unreadable": res.unreadable,
        "by_value": [f.__dict__ for f in res.by_value],
        "parties_unverified": [f.__dict__ for f in unverified],
        "numbers_unverified": [f.__dict__ for f in unverified_numbers],
        "chunks": {d.doc_id: [c.model_dump() for c in d.chunks] for d in (left, right)},
    }
    ctx.recorder.record(
        "consistency.compare",
        {k: result[k] for k in ("matched", "only_left", "only_right", "unreadable", "by_value")}
        | {k: result[k] for k in ("parties_unverified", "numbers_unverified")}
        | {"one_way": state.get("one_way")},
    )
    return {"result": result}


def _cite(book: CitationBook, doc: dict[str, Any], chunks: list[dict[str, Any]], f: dict[str, Any]) -> int:
    chunk = next(
        (c for c in chunks if c["page"] == f["page"] and c["char_start"] <= f["char_start"] < c["char_end"]), None
    )
    return book.add({"kind": "document", "title": doc["title"], "url": doc["url"], "page": f["page"],
                     "chunk_id": chunk["chunk_id"] if chunk else None, "quote": f["quote"],
                     "span": [f["char_start"], f["char_end"]]})  # fmt: skip


def report(state: State, config: RunnableConfig) -> State:
    ctx = ctx_of(config)
    notes = list(state.get("notes", []))
    if not state.get("docs"):
        ctx.recorder.record("answer.not_found", {"reason": "no document the user may read matched"})
        return {"answer": " ".join([NOT_FOUND, *notes]), "citations": [], "status": "not_found", "notes": notes}
    if "result" not in state:
        text = " ".join(notes) + " Nothing was compared."
        return {"answer": text.strip(), "citations": [], "status": "not_found", "notes": notes}
    r = state["result"]
    left, right, chunks = r["left"], r["right"], r["chunks"]
    book = CitationBook()
    lines = [f"Compared {left['title']} with {right['title']}."]
    if r["unreadable"]:
        sides = [left if s == "left" else right for s in r["unreadable"]]
        empty = [d["title"] for d in sides if not any(c["text"].strip() for c in chunks[d["doc_id"]])]
        factless = [d["title"] for d in sides if d["title"] not in empty]
        if empty:
            lines.append(f"Could not compare: no text could be read from {'; '.join(empty)} (scanned or empty?).")
        if factless:
            lines.append(f"Could not compare: {'; '.join(factless)} states no amount, rate, date, period, year "
                         "or governing law to compare.")  # fmt: skip
    diffs = [(left, f) for f in r["only_left"]] + [(right, f) for f in r["only_right"]]
    if diffs:
        lines.append(f"{len(diffs)} fact(s) stated in one document and not found in the other:")
        for doc, f in diffs:
            other = right if doc is left else left
            n = _cite(book, doc, chunks[doc["doc_id"]], f)
            there = ""
            if f.get("counterpart"):
                m = _cite(book, other, chunks[other["doc_id"]], f["counterpart"])
                there = f" (the corresponding passage there [{m}])"
            kind = f["kind"].replace("_", " ")
            lines.append(f"- {kind} {f['show']} in {doc['title']} [{n}], not in {other['title']}{there}.")
    by_value = r.get("by_value", [])
    if by_value:
        shown = ", ".join(sorted({f["show"] for f in by_value}))
        lines.append(f"{len(by_value)} value(s) read on one side only, whose number the other states without "
                     f"its unit or currency (same value, not verified): {shown}.")  # fmt: skip
    unverified = r.get("parties_unverified", [])
    if unverified:
        shown = "; ".join(sorted({f["show"] for f in unverified}))
        lines.append(f"{len(unverified)} part(y/ies) whose name the other document states only in part (the legal "
                     f"form and the last word: not verified as the same party): {shown}.")  # fmt: skip
    numbers = r.get("numbers_unverified", [])
    if numbers:
        shown = ", ".join(sorted({f["show"] for f in numbers}))
        lines.append(f"{len(numbers)} number(s) stated in one document whose value was not read in the other (in "
                     f"digits or words; written another way, or left out: not verified): {shown}.")  # fmt: skip
    renderings = [(a["show"], b["show"]) for a, b in r["matched"] if a["kind"] == "defined_term" and a != b]
    if renderings:
        shown = "; ".join(f'"{a}" = "{b}"' for a, b in renderings)
        lines.append(f"Defined terms paired by where they are defined (the renderings are yours to check): {shown}.")
    if r["matched"] and not diffs and not r["unreadable"] and not by_value and not unverified and not numbers:
        lines.append(f"Consistent: all {len(r['matched'])} facts compared (amounts, rates, dates, periods, "
                     "jurisdictions, parties, defined terms, other numbers) are stated in both.")  # fmt: skip
    elif r["matched"]:
        lines.append(f"{len(r['matched'])} facts agree.")
    for a, b in r["matched"][:3]:
        _cite(book, left, chunks[left["doc_id"]], a)
        _cite(book, right, chunks[right["doc_id"]], b)
    ctx.recorder.record("consistency.report", {"differences": len(diffs), "matched": len(r["matched"])})
    return {"answer": "\n".join(lines), "citations": book.items, "status": "answered", "notes": notes}


def _after_find(state: State) -> str:
    return "compare" if len(state.get("docs", [])) == 2 else "report"


class ConsistencyChecker:
    """A document against its translation or summary: facts compared on meaning, across languages."""

    name = "consistency"
    title = "Compare a translation or summary with its original"
    description = "Consistency of a document with its translation or summary (amounts, rates, dates, periods, law)."

    def graph(self) -> StateGraph:
        g = StateGraph(State)
        g.add_node("find", find)
        g.add_node("compare", compare)
        g.add_node("report", report)
        g.add_edge(START, "find")
        g.add_conditional_edges("find", _after_find, ["compare", "report"])
        g.add_edge("compare", "report")
        g.add_edge("report", END)
        return g

    def to_answer(self, state: dict[str, Any], base: Answer) -> Answer:
        return report_answer(state, base)
