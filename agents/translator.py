"""The ``translate`` agent: "Translate into French: <text>" in the chat or with ``sovra ask``. The
passage is translated with the served ``translation`` route and checked (:mod:`sovra.tools.translate`);
the answer is the translation and what the checker found: every changed fact with both values, and
what it could not check. "All facts preserved" only when every fact was verified.

The target language is named in the question (English, French or German words for the six
languages, or a code after "to"/"into": "into fr"); the text is what follows the first colon or
newline, or the quoted part. Documents are translated with ``sovra translate`` (resumable, with a
report); this agent is for passages.
"""

from __future__ import annotations

import re
from typing import Any, TypedDict

from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph

from sovra.agents.contracts import ctx_of, report_answer
from sovra.errors import InputError
from sovra.runtime import Answer
from sovra.tools.translate import LANGUAGES, detect_source_language, segments, translate_segments

_NAMES = {
    "english": "en", "anglais": "en", "englisch": "en", "engels": "en", "inglese": "en", "inglés": "en",
    "french": "fr", "français": "fr", "francais": "fr", "französisch": "fr", "frans": "fr", "francese": "fr",
    "german": "de", "allemand": "de", "deutsch": "de", "duits": "de", "tedesco": "de", "alemán": "de",
    "dutch": "nl", "néerlandais": "nl", "niederländisch": "nl", "nederlands": "nl", "olandese": "nl",
    "italian": "it", "italien": "it", "italienisch": "it", "italiaans": "it", "italiano": "it",
    "spanish": "es", "espagnol": "es", "spanisch": "es", "spaans": "es", "spagnolo": "es", "español": "es",
}  # fmt: skip
# "into French", "en français", "ins Deutsche", "naar het Nederlands", "to fr"
_TARGET = re.compile(
    r"\b(?:into|in|to|en|vers|auf|ins|naar)\s+(?:(?:het|the|le|das|die)\s+)?(?P<name>[A-Za-zÀ-ÿ]+)\b", re.I
)
_QUOTED = re.compile(r"[\"“«„](?P<text>[^\"”»“]{2,})[\"”»“]")


class State(TypedDict, total=False):
    question: str
    answer: str
    citations: list[dict[str, Any]]
    status: str
    notes: list[str]


def parse_request(question: str) -> tuple[str, str]:
    """(target language code, text to translate) from "Translate into French: ..."."""
    sep = re.search(r"[:\n]", question)
    head, text = (question[: sep.start()], question[sep.end() :].strip()) if sep else (question, "")
    quoted = _QUOTED.search(question)
    if not text and quoted:
        text, head = quoted.group("text").strip(), question[: quoted.start()] + " " + question[quoted.end() :]
    target = None
    for m in _TARGET.finditer(head):
        word = m.group("name").lower()
        target = word if word in LANGUAGES else _NAMES.get(word.removesuffix("e"), _NAMES.get(word, target))
    if target is None:
        raise InputError(
            "say which language to translate into", hint='e.g. "Translate into French: <text>" (en, fr, de, nl, it, es)'
        )
    if not text:
        raise InputError("no text to translate", hint='put it after a colon: "Translate into French: <text>"')
    return target, text


def translate(state: State, config: RunnableConfig) -> State:
    ctx = ctx_of(config)
    try:
        target, text = parse_request(state["question"])
        source = detect_source_language(text)
    except InputError as exc:
        return {"answer": f"{exc.message} ({exc.hint})", "status": "not_found", "citations": [], "notes": []}
    if source == target:
        return {"answer": f"The text is already in {LANGUAGES[target]}.", "status": "not_found", "citations": []}
    with ctx.recorder.step("tool.translate_passage", args={"to": target, "from": source}) as step:
        report = translate_segments(
            segments({1: text}), ctx.services.gateway, ctx.recorder, source=source, target=target
        )
        step.result = {"statuses": [s.check.status for s in report.segments], "changed": report.changed}
    lines = [report.text.strip(), ""]
    changes = [c for s in report.segments for c in s.check.changes]
    glossary = [g for s in report.segments for g in s.check.glossary]
    unchecked = [u for s in report.segments for u in s.check.unchecked]
    checked = sum(s.check.checked for s in report.segments)
    if changes:
        lines.append(f"Check ({LANGUAGES[source]} -> {LANGUAGES[target]}): {len(changes)} fact(s) CHANGED:")
        lines += [f"- {c.kind}: {c.source or '(not in the original)'} -> {c.translation or '(missing)'}"
                  for c in changes]  # fmt: skip
    lines += [f"- glossary: {g['source_term']} should be {g['expected']}" for g in glossary]
    if unchecked:
        lines.append("Could not check: " + "; ".join(unchecked) + ".")
    if report.all_preserved:
        lines.append(
            f"Check: all {checked} facts, numbers and names preserved." if checked else "Check: no facts to check."
        )
    models = ", ".join(dict.fromkeys(s.model for s in report.segments))
    return {"answer": "\n".join(lines).strip(), "status": "answered", "citations": [], "notes": [f"model: {models}"]}


class Translator:
    """A passage translated with the served model, every fact checked."""

    name = "translate"
    title = "Translate a passage"
    description = (
        "Translate a passage between English, French, German, Dutch, Italian and Spanish with the served "
        'translation model, every number, amount, date and name checked ("Translate into French: ...").'
    )
    needs_index = False

    def graph(self) -> StateGraph:
        g = StateGraph(State)
        g.add_node("translate", translate)
        g.add_edge(START, "translate")
        g.add_edge("translate", END)
        return g

    def to_answer(self, state: dict[str, Any], base: Answer) -> Answer:
        return report_answer(state, base)
