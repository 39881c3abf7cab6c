"""sovra.testing, the public kit for testing one's own agents, does what docs/sdk.md says."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from sovra.agents.sdk import define_agent
from sovra.runtime import Runtime
from sovra.testing import (
    Doc,
    ScriptedModel,
    assert_audited,
    assert_cited,
    assert_not_found,
    call,
    finish,
    say,
    temp_data_dir,
)
from sovra.tools.base import ToolContext, tool
from sovra.tools.search import SearchArgs, search_documents

DOCS = [
    Doc("Nimbus Cloud", "Its SOC 2 Type II report is issued by Keller & Partner.", acl={"group:finance"}),
    Doc("Canteen", "The canteen opens at eight in the morning for all staff.", acl={"group:employees"}),
]
USERS = {"bob": ["employees", "finance"], "alice": ["employees"]}


@tool
def notes(question: str, ctx: ToolContext) -> list[str]:
    """Search the notes; returns numbered passages to cite."""
    hits = search_documents(SearchArgs(query=question, limit=2), ctx).hits
    return [f"[{ctx.cite(kind='document', title=h.title, url=h.url, quote=h.text)}] {h.text}" for h in hits]


agent = define_agent("notes_agent", "Answers from the notes.", tools=[notes], needs_index=True)
Q = "Who issues the SOC 2 report of Nimbus Cloud?"


def test_a_scripted_model_a_data_dir_with_acls_and_the_assertions(model_cache):
    script = [call("notes", question="Nimbus SOC 2"), say("Keller & Partner issues it [1].")]
    with ScriptedModel(script) as model, temp_data_dir(USERS, DOCS, model=model, models_cache=model_cache) as s:
        rt = Runtime(s)
        answer = rt.ask(agent, Q, "bob")
        assert_cited(answer, "Keller & Partner", source="Nimbus Cloud")
        records = assert_audited(rt, answer, "run.start", "tool.notes", "model.call", "run.end")
        assert next(r for r in records if r.kind == "tool.notes").data["args"] == {"question": "Nimbus SOC 2"}
        # The real gateway sent the tool's passages back to the model.
        assert "Keller & Partner" in model.requests[1]["messages"][-1]["content"]
        # alice is not in finance: the ACL keeps the note from her inside the index.
        model.script = [call("notes", question="Nimbus SOC 2"), say("Keller & Partner [1].")]
        other = rt.ask(agent, Q, "alice")
        assert [c.title for c in other.citations] == ["Canteen"]  # all she may read
        assert "Keller" not in model.requests[-1]["messages"][-1]["content"]
        with pytest.raises(AssertionError, match="no citation of 'Nimbus Cloud'"):
            assert_cited(other, "Keller & Partner", source="Nimbus Cloud")
        rt.close()


def test_the_assertions_fail_when_they_should(model_cache):
    script = [say("Keller & Partner, I think.")]  # no tool call: not found
    with ScriptedModel(script) as model, temp_data_dir(USERS, model=model, models_cache=model_cache) as s:
        rt = Runtime(s)
        answer = rt.ask(define_agent("guess", "Guesses.", tools=[notes]), Q, "bob")
        assert_not_found(answer)
        with pytest.raises(AssertionError, match="not answered"):
            assert_cited(answer, "Keller")
        with pytest.raises(AssertionError, match=r"lack \['tool.notes'\]"):
            assert_audited(rt, answer, "run.start", "tool.notes")
        rt.close()


def test_json_mode_decisions_and_a_script_that_runs_out(model_cache):
    script = [call("notes", question="Nimbus"), finish(), say("Keller & Partner [1].")]
    json_agent = define_agent("notes_json", "Notes.", tools=[notes], tool_mode="json", needs_index=True)
    with ScriptedModel(script) as model, temp_data_dir(USERS, DOCS, model=model, models_cache=model_cache) as s:
        rt = Runtime(s)
        assert_cited(rt.ask(json_agent, Q, "bob"), "Keller")
        assert model.requests[0]["response_format"]["type"] == "json_schema"
        with pytest.raises(Exception, match="after the last scripted reply"):
            rt.ask(json_agent, Q, "bob")
        rt.close()


def test_the_testing_module_keeps_to_the_core():
    """DESIGN.md: sovra/ imports nothing from agents/, tools/, connectors/ or ui/."""
    source = Path(__file__).resolve().parents[2] / "sovra" / "testing.py"
    imported = {
        n.module if isinstance(n, ast.ImportFrom) else a.name
        for n in ast.walk(ast.parse(source.read_text()))
        if isinstance(n, ast.Import | ast.ImportFrom)
        for a in (n.names if isinstance(n, ast.Import) else [n])
    }
    outside = {m for m in imported if m and m.split(".")[:2] in (["sovra", p] for p in ("agents", "tools", "ui"))}
    assert not outside, outside
