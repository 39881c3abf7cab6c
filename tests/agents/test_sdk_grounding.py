"""SDK agents answer from what their tools returned, or say they cannot (issue 26).

A model that repeats a call, never finishes, or is about to run out of budget is not asked again: the
answer quotes the cited tool results. An answer no tool result supports is not passed off as one.
The model is the fake vLLM over HTTP; embeddings, index-free tools, audit and checkpoints are real.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fakes.vllm_server import FakeVLLM, Reply
from sdk_support import json_reply, kinds, sdk_settings, text_reply, tool_reply

from sovra.agents.grounding import check_citations, extract
from sovra.agents.sdk import NOT_FOUND, define_agent
from sovra.runtime import Budget, Runtime
from sovra.tools.base import ToolContext, tool

NIMBUS = (
    "Nimbus Cloud hosts our document archive in Frankfurt. Its SOC 2 Type II report is issued by\n"
    "Keller & Partner Wirtschaftsprüfung; the last report covers January to December 2025.\n"
    "Exit clause: we may terminate with 60 days notice if the data centre leaves the EU."
)
ORBIT = (
    "Orbit Payments processes card refunds for the retail bank. Due diligence found no sanctions hits.\n"
    "Open point: Orbit has not yet delivered its 2025 penetration test summary; follow up by March."
)


@tool
def notes(question: str, ctx: ToolContext) -> list[str]:
    """Search the vendor notes; returns numbered passages to cite."""
    out = []
    for title, text in (("Nimbus Cloud", NIMBUS), ("Orbit Payments", ORBIT)):
        n = ctx.cite(kind="document", title=title, url=f"file:///notes/{title.replace(' ', '-')}.md", quote=text)
        out.append(f"[{n}] {text}")
    return out


@pytest.fixture
def fake() -> Iterator[FakeVLLM]:
    f = FakeVLLM()
    yield f
    f.close()


def runtime(tmp_path: Path, fake: FakeVLLM, model_cache: Path, **kw) -> Runtime:
    settings = sdk_settings(tmp_path / "data", fake.base_url, **kw)
    (settings.data_dir / "models").symlink_to(model_cache)  # the converted embedding model, built once
    return Runtime(settings)


def record(rt: Runtime, run_id: str, kind: str) -> dict:
    return next(r.data for r in rt.services.audit.records(run_id) if r.kind == kind)


Q = "Who issues the SOC 2 report of Nimbus Cloud?"


# ---------------------------------------------------------------------- a model that does not finish


def test_a_repeated_identical_call_stops_the_model_and_the_answer_quotes_the_cited_result(tmp_path, fake, model_cache):
    fake.script = [tool_reply("notes", question="nimbus"), tool_reply("notes", question="nimbus")]
    rt = runtime(tmp_path, fake, model_cache)
    a = rt.ask(define_agent("vendors", "Vendors.", tools=[notes]), Q, "bob")
    assert len(fake.chat_bodies()) == 2  # not asked a third time
    assert a.status == "extracted" and "Keller & Partner Wirtschaftsprüfung" in a.text and a.text.endswith("[1]")
    assert [(c.n, c.title) for c in a.citations] == [(1, "Nimbus Cloud")]
    assert "asked again for notes(" in a.notes[0] and "quotes what the tools returned" in a.notes[0]
    assert record(rt, a.run_id, "agent.stopped")["rounds"] == 1
    assert record(rt, a.run_id, "answer.extractive")["cited"] == [1]
    assert rt.runs.get(a.run_id).status == "extracted"
    rt.close()


def test_past_max_steps_the_answer_comes_from_the_results_not_a_stop(tmp_path, fake, model_cache):
    fake.script = [tool_reply("notes", question=f"try {i}") for i in range(5)]
    rt = runtime(tmp_path, fake, model_cache)
    a = rt.ask(define_agent("vendors", "Vendors.", tools=[notes], max_steps=3), Q, "bob")
    assert a.status == "extracted" and "Keller & Partner" in a.text and "Stopped before an answer" not in a.text
    assert "called tools 3 times without finishing" in a.notes[0]
    assert len(fake.chat_bodies()) == 3
    rt.close()


def test_a_decision_that_would_not_fit_the_token_budget_is_not_asked_for(tmp_path, fake, model_cache):
    fake.script = [tool_reply("notes", question="nimbus"), tool_reply("notes", question="other")]
    rt = runtime(tmp_path, fake, model_cache)
    a = rt.ask(define_agent("vendors", "Vendors.", tools=[notes]), Q, "bob", budget=Budget(max_tokens=500))
    assert a.status == "extracted" and "Keller & Partner" in a.text
    assert "budget would run out" in a.notes[0] and len(fake.chat_bodies()) == 1
    assert "run.budget_exceeded" not in kinds(rt, a.run_id)
    rt.close()


def test_an_invalid_decision_after_a_tool_round_answers_from_the_results(tmp_path, fake, model_cache):
    fake.script = [
        json_reply({"tool": "notes", "args": {"question": "nimbus"}}),
        text_reply('{"tool": "notes", "args": {"question": "cut off'),
        text_reply('{"tool": "notes", "args": {"question": "cut off again'),
    ]
    rt = runtime(tmp_path, fake, model_cache)
    a = rt.ask(define_agent("vendors", "Vendors.", tools=[notes], tool_mode="json"), Q, "bob")
    assert a.status == "extracted" and "Keller & Partner" in a.text
    assert "decision was not valid JSON" in a.notes[0]
    # The decision schema caps free strings, so a small model under a grammar closes its JSON.
    schema = fake.chat_bodies()[0]["response_format"]["json_schema"]["schema"]
    assert schema["$defs"]["NotesArgs"]["properties"]["question"]["maxLength"] == 240
    rt.close()


# ---------------------------------------------------------------------- safe by default


def test_an_answer_without_any_tool_call_is_not_found(tmp_path, fake, model_cache):
    fake.script = [text_reply("Keller & Partner, obviously.")]  # answered without looking anything up
    rt = runtime(tmp_path, fake, model_cache)
    a = rt.ask(define_agent("vendors", "Vendors.", tools=[notes]), Q, "bob")
    assert a.status == "not_found" and a.text == NOT_FOUND and a.citations == []
    assert "without calling a tool" in record(rt, a.run_id, "answer.not_found")["reason"]
    rt.close()


def test_dangling_citation_numbers_are_removed_and_recorded(tmp_path, fake, model_cache):
    fake.script = [
        tool_reply("notes", question="nimbus"),
        text_reply("Keller & Partner issues it [1], audited since 2019 [7]."),
    ]
    rt = runtime(tmp_path, fake, model_cache)
    a = rt.ask(define_agent("vendors", "Vendors.", tools=[notes]), Q, "bob")
    assert a.status == "answered" and a.text == "Keller & Partner issues it [1], audited since 2019."
    assert [c.n for c in a.citations] == [1]
    assert record(rt, a.run_id, "citations.check") == {"valid": [1], "removed": [7], "citations": 2}
    rt.close()


def test_an_answer_citing_none_of_the_sources_is_uncited_with_the_sources_as_evidence(tmp_path, fake, model_cache):
    fake.script = [tool_reply("notes", question="nimbus"), text_reply("Keller & Partner issues it.")]
    rt = runtime(tmp_path, fake, model_cache)
    a = rt.ask(define_agent("vendors", "Vendors.", tools=[notes]), Q, "bob")
    assert a.status == "uncited" and a.citations == [] and [e.n for e in a.evidence] == [1, 2]
    rt.close()


def test_extractive_mode_quotes_instead_of_letting_the_model_write(tmp_path, fake, model_cache):
    fake.script = [tool_reply("notes", question="nimbus"), Reply(content='{"tool": "final_answer"}')]
    rt = runtime(tmp_path, fake, model_cache, answer_mode="extractive")
    a = rt.ask(define_agent("vendors", "Vendors.", tools=[notes]), Q, "bob")
    assert a.status == "extracted" and a.notes == [] and "Keller & Partner" in a.text
    assert len(fake.chat_bodies()) == 2  # the decisions; nobody wrote prose
    rt.close()


# ---------------------------------------------------------------------- what counts as evidence


@pytest.fixture(scope="module")
def cites() -> list[dict]:
    return [
        {"n": 1, "title": "Nimbus Cloud", "quote": NIMBUS},
        {"n": 2, "title": "Orbit Payments", "quote": ORBIT},
    ]


@pytest.mark.parametrize(
    ("question", "expected", "n"),
    [
        ("How much notice do we need to terminate Nimbus Cloud?", "60 days notice", 1),
        ("Where does Nimbus Cloud host our document archive?", "Frankfurt", 1),
        ("What does Orbit Payments process for us?", "card refunds", 2),
    ],
)
def test_the_sentence_that_answers_is_quoted_from_the_named_document(embedder, cites, question, expected, n):
    found = extract(question, cites, embedder, min_dense=0.35)
    assert found.cited == [n] and expected in found.text and found.text.endswith(f"[{n}]")


@pytest.mark.parametrize(
    "question",
    [
        "Does Orbit Payments have an exit clause?",  # Nimbus has one: another vendor's note never answers
        "Who audits Orbit Payments?",
        "Which vendors have an ISO 27001 certificate?",
        "What is the annual fee of Nimbus Cloud?",
    ],
)
def test_nothing_is_quoted_when_no_sentence_answers(embedder, cites, question):
    assert extract(question, cites, embedder, min_dense=0.35).cited == []


def test_check_citations_keeps_valid_numbers_only():
    text, valid, removed = check_citations("A [1] and B [2] and C [3].", [{"n": 1}, {"n": 3}])
    assert (text, valid, removed) == ("A [1] and B and C [3].", [1, 3], [2])
