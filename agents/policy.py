"""Policy assistant: answers employees' questions from the policy library only, with citations.

The graph is retrieve -> screen -> answer -> check citations. Retrieval is limited to the policy
source (SharePoint by default) and to what the asking user may read; passages that address an AI
("ignore previous instructions ...") are data, not orders: they are recorded and left out of the
evidence. The answer and citation steps are the demo assistant's, so the policy assistant says
"I could not find this in the documents you can access." rather than guess.
"""

from __future__ import annotations

import re
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph

from sovra.agents.assistant import NOT_FOUND, Assistant, State, answer, check_citations
from sovra.agents.contracts import ctx_of, tool_ctx
from sovra.errors import SovraError
from sovra.runtime import Answer
from sovra.tools.evidence import split_sentences
from sovra.tools.search import SearchArgs, search_documents

POLICY_SOURCES = ("sharepoint",)

# Text written to steer a model rather than to inform a reader. Matching is deliberately broad:
# a policy never needs to tell its reader to ignore instructions or to send data somewhere.
_INJECTION = re.compile(
    r"\b(ignore|disregard|forget)\b[^.]{0,40}\b(previous|prior|above|all|earlier)\b[^.]{0,20}\b(instructions?|rules|prompts?)\b"
    r"|\b(you are|act as)\b[^.]{0,30}\b(assistant|ai|model|chatbot)\b"
    r"|\bsystem prompt\b"
    r"|\b(e-?mail|send|forward|upload|post)\b[^.]{0,40}\b(ledger|password|credentials?|all documents|the data)\b",
    re.I,
)


def injected_sentences(text: str) -> list[str]:
    """The sentences of ``text`` that read as instructions to an AI."""
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+", text) if _INJECTION.search(s)]


def retrieve(state: State, config: RunnableConfig) -> State:
    ctx = ctx_of(config)
    k = ctx.services.settings.top_k
    args = SearchArgs(query=state["question"], limit=k, sources=list(POLICY_SOURCES))
    try:
        with ctx.recorder.step("tool.search_documents", args=args.model_dump()) as step:
            result = search_documents(args, tool_ctx(ctx))
            step.result = {
                "hits": [
                    {"chunk_id": h.chunk_id, "doc_id": h.doc_id, "page": h.page, "score": h.score} for h in result.hits
                ]
            }
    except SovraError as exc:
        return {"sources": [], "notes": [f"The policy search failed: {exc.message}"]}
    return {"sources": [{"kind": "document", **h.model_dump()} for h in result.hits], "notes": []}


def screen(state: State, config: RunnableConfig) -> State:
    """Remove instruction-like sentences from the passages before anything reads them."""
    ctx = ctx_of(config)
    notes = list(state.get("notes", []))
    cleaned: list[dict[str, Any]] = []
    flagged: list[dict[str, Any]] = []
    for s in state.get("sources", []):
        bad = injected_sentences(s["text"])
        if bad:
            text = s["text"]
            for sentence in bad:
                text = text.replace(sentence, " ")
            flagged.append({"chunk_id": s["chunk_id"], "title": s["title"], "sentences": bad})
            s = {**s, "text": text}
        if s["text"].strip():
            cleaned.append(s)
    if flagged:
        ctx.recorder.record("injection.suspected", {"passages": flagged})
        notes.append("A passage that addressed an AI with instructions was ignored (treated as data).")
    return {"sources": cleaned, "notes": notes}


_EUR = r"(?:EUR|€)\s?((?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:\s*(?:million|billion|bn)\b)?)"
_RANGES = (
    (re.compile(rf"(?:above|over|more than|from)\s+{_EUR}\s+(?:and\s+)?(?:up\s+)?to\s+{_EUR}", re.I), 2),
    (re.compile(rf"(?:between\s+)?{_EUR}\s+(?:to|and|-|–)\s+{_EUR}", re.I), 2),
    (re.compile(rf"\bup\s+to\s+{_EUR}", re.I), 0),
    (re.compile(rf"\b(?:above|over|more than)\s+{_EUR}", re.I), 1),
)
_TOP_SOURCES = 3


def _money(text: str) -> float:
    """'250,000' -> 250000.0; 'EUR 40 million' must not fall in a band 'up to EUR 75'."""
    number, _, scale = text.replace(",", "").partition(" ")
    factor = {"million": 1e6, "billion": 1e9, "bn": 1e9}.get(scale.strip().lower(), 1.0)
    return float(re.sub(r"[^\d.]", "", number) or 0) * factor


def amount_range_unit(question: str, texts: list[str]) -> tuple[int, str] | None:
    """The passage unit whose amount band contains the amount asked about ("a gift worth EUR 120" ->
    "Gifts above EUR 50 and up to EUR 150 require ..."): a lookup a sentence ranker cannot make.
    Looks in the best-ranked passages; returns (passage index, unit) of the tightest band."""
    asked = re.search(_EUR, question)
    if not asked:
        return None
    x = _money(asked.group(1))
    best: tuple[float, int, str] | None = None
    for i, text in enumerate(texts[:_TOP_SOURCES]):
        for unit, _ in split_sentences(text):
            for pattern, kind in _RANGES:
                m = pattern.search(unit)
                if not m:
                    continue
                if kind == 2:
                    lo, hi = _money(m.group(1)), _money(m.group(2))
                else:
                    lo, hi = (0.0, _money(m.group(1))) if kind == 0 else (_money(m.group(1)), float("inf"))
                if lo <= x <= hi and (best is None or hi - lo < best[0]):
                    best = (hi - lo, i, unit)
                break
    return (best[1], best[2]) if best else None


def answer_node(state: State, config: RunnableConfig) -> State:
    """The assistant's answer, with the unit whose amount band contains the asked amount first."""
    out = answer(state, config)
    sources = out.get("sources") or state.get("sources", [])
    if "draft" in out or not sources or out.get("status") == "not_found":
        return out  # the band only reorders evidence already found; it never turns "not found" into an answer
    hit = amount_range_unit(state["question"], [s["text"] for s in sources])
    if hit is None:
        return out
    i, unit = hit[0] + 1, hit[1]
    ctx_of(config).recorder.record("answer.amount_band", {"source": i, "unit": unit})
    lines = [ln for ln in out["answer"].splitlines() if unit not in ln]
    return {
        "answer": "\n".join([f'"{unit}" [{i}]', *lines]),
        "citations": sorted({i, *out.get("citations", [])}),
        "status": "extracted",
        "sources": sources,
    }


def _after_answer(state: State) -> str:
    return "check_citations" if "draft" in state else END


class PolicyAssistant:
    """Answers from the policy library only, with citations; never guesses."""

    name = "policy"
    title = "Company policies"
    description = "Policy questions answered from the SharePoint policy library, with citations."

    def graph(self) -> StateGraph:
        g = StateGraph(State)
        g.add_node("retrieve", retrieve)
        g.add_node("screen", screen)
        g.add_node("answer", answer_node)
        g.add_node("check_citations", check_citations)
        g.add_edge(START, "retrieve")
        g.add_edge("retrieve", "screen")
        g.add_edge("screen", "answer")
        g.add_conditional_edges("answer", _after_answer, ["check_citations", END])
        g.add_edge("check_citations", END)
        return g

    def to_answer(self, state: dict[str, Any], base: Answer) -> Answer:
        out = Assistant().to_answer(state, base)
        if out.status == "not_found":
            out.text = NOT_FOUND
        return out
