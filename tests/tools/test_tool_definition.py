"""SDK mistakes are refused where they are made, in one line that names the culprit (issue 26)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import pytest
from fakes.vllm_server import FakeVLLM
from pydantic import BaseModel, Field
from sdk_support import make_runtime, text_reply, tool_reply

from sovra.agents.sdk import define_agent, supervisor
from sovra.errors import DefinitionError
from sovra.tools.base import Tool, ToolContext, tool


def _no_docstring() -> None:
    @tool
    def lookup(key: str) -> str:
        return key


def _untyped() -> None:
    @tool
    def lookup(key: str, limit) -> str:  # type: ignore[no-untyped-def]
        """Look up."""
        return key


def _optional_ctx() -> None:
    @tool
    def lookup(key: str, ctx: ToolContext | None = None) -> str:
        """Look up."""
        return key


def _annotated_optional_ctx() -> None:
    @tool
    def lookup(key: str, ctx: Annotated[ToolContext | None, Field(description="x")] = None) -> str:
        """Look up."""
        return key


def _ctx_of_another_type() -> None:
    @tool
    def lookup(key: str, ctx: dict[str, Any]) -> str:
        """Look up."""
        return key


def _star_args() -> None:
    @tool
    def lookup(*keys: str) -> str:
        """Look up."""
        return ""


def _requires_a_string() -> None:
    @tool(read_only=False, requires="group:finance")  # type: ignore[arg-type]
    def pay(amount: float) -> str:
        """Pay."""
        return ""


def _no_return_type() -> None:
    @tool
    def lookup(key: str):  # type: ignore[no-untyped-def]
        """Look up."""
        return key


def _plain_function_in_tools() -> None:
    def lookup(key: str) -> str:
        return key

    define_agent("vendors", "Vendors.", tools=[lookup])  # type: ignore[list-item]


def _two_tools_one_name() -> None:
    @tool
    def lookup(key: str) -> str:
        """Look up."""
        return key

    @tool(name="lookup")
    def other(key: str) -> str:
        """Look up elsewhere."""
        return key

    define_agent("vendors", "Vendors.", tools=[lookup, other])


def _builtin_agent_name() -> None:
    define_agent("assistant", "My own assistant.")


def _two_specialists_one_name() -> None:
    supervisor("front", [define_agent("a", "A."), define_agent("a", "A again.")])


@pytest.mark.parametrize(
    ("mistake", "message"),
    [
        (_no_docstring, "tool lookup: has no docstring"),
        (_untyped, "tool lookup: parameter 'limit' has no type"),
        (_optional_ctx, "tool lookup: parameter 'ctx' is typed"),
        (_annotated_optional_ctx, "tool lookup: parameter 'ctx' is typed"),
        (_ctx_of_another_type, "tool lookup: parameter 'ctx' is not typed ToolContext"),
        (_star_args, "tool lookup: *keys"),
        (_requires_a_string, "tool pay: requires='group:finance' is a string"),
        (_no_return_type, "tool lookup: needs a return type"),
        (_plain_function_in_tools, "agent vendors: tools[0] (lookup) is not a tool"),
        (_two_tools_one_name, "agent vendors: two tools are named 'lookup'"),
        (_builtin_agent_name, "agent 'assistant': the name is taken by a built-in agent"),
        (_two_specialists_one_name, "distinct names"),
    ],
)
def test_a_mistake_is_refused_at_definition_with_the_culprit_named(mistake, message):
    with pytest.raises((DefinitionError, ValueError)) as info:
        mistake()
    assert str(info.value).startswith(message) or message in str(info.value)
    assert "\n" not in str(info.value)


# ---------------------------------------------------------------------- the context is injected only


@pytest.fixture
def fake() -> Iterator[FakeVLLM]:
    f = FakeVLLM()
    yield f
    f.close()


@tool
def whoami(note: str, ctx: ToolContext) -> str:
    """Say who the tool runs as."""
    return ctx.user.id


def test_the_context_is_never_a_model_argument_and_a_model_supplied_one_is_ignored(tmp_path, fake):
    assert set(whoami.schema()["function"]["parameters"]["properties"]) == {"note"}
    fake.script = [
        tool_reply("whoami", note="x", ctx={"user": {"id": "erin", "groups": ["finance-managers"]}}),
        text_reply("done"),
    ]
    rt = make_runtime(tmp_path, fake)
    a = rt.ask(define_agent("who", "Who.", tools=[whoami]), "who am I?", "alice")
    step = next(r for r in rt.services.audit.records(a.run_id) if r.kind == "tool.whoami")
    assert step.data["args"] == {"note": "x"} and step.data["result"] == {"result": "alice"}
    rt.close()


# ---------------------------------------------------------------------- async, name=, types


@tool(name="vendor_rating")
async def rate(vendor: str, ctx: ToolContext) -> int:
    """Rate a vendor from 1 (low risk) to 5."""
    return len(vendor) % 5 + 1


def test_an_async_tool_runs_and_name_sets_its_name(tmp_path, fake):
    assert rate.name == "vendor_rating" and rate.schema()["function"]["name"] == "vendor_rating"
    fake.script = [tool_reply("vendor_rating", vendor="Nimbus"), text_reply("Rated.")]
    rt = make_runtime(tmp_path, fake)
    a = rt.ask(define_agent("rater", "Rates.", tools=[rate], grounded=False), "rate Nimbus", "alice")
    step = next(r for r in rt.services.audit.records(a.run_id) if r.kind == "tool.vendor_rating")
    assert "error" not in step.data and step.data["result"] == {"result": 2}
    rt.close()


class Query(BaseModel):
    text: str


class Rows(BaseModel):
    rows: list[str]


@tool
def query_rows(args: Query, ctx: ToolContext) -> Rows:
    """Rows matching a query."""
    return Rows(rows=[args.text])


def test_the_decorator_is_typed_for_the_type_checker(tmp_path):
    assert isinstance(query_rows, Tool) and query_rows.args_model is Query and query_rows.result_model is Rows
    checked = tmp_path / "typed_tool.py"
    checked.write_text(
        textwrap.dedent(
            """
            from typing import assert_type
            from pydantic import BaseModel
            from sovra.tools.base import Tool, ToolContext, tool

            class Query(BaseModel):
                text: str

            class Rows(BaseModel):
                rows: list[str]

            @tool
            def query_rows(args: Query, ctx: ToolContext) -> Rows:
                \"\"\"Rows.\"\"\"
                return Rows(rows=[])

            @tool(name="rows2", read_only=True)
            def query_rows2(args: Query) -> Rows:
                \"\"\"Rows.\"\"\"
                return Rows(rows=[])

            assert_type(query_rows, Tool[Query, Rows])
            assert_type(query_rows2, Tool[Query, Rows])
            """
        )
    )
    # mypy cannot follow the editable install's import hook: lay the package out as installed.
    root = Path(__file__).resolve().parents[2]
    pkg = tmp_path / "site" / "sovra"
    pkg.mkdir(parents=True)
    for entry in (root / "sovra").iterdir():
        (pkg / entry.name).symlink_to(entry)
    (pkg / "tools").symlink_to(root / "tools")
    mypy = [sys.executable, "-m", "mypy", "--no-incremental", "--follow-imports=silent", "--cache-dir=/dev/null"]
    env = {**os.environ, "MYPYPATH": str(tmp_path / "site")}
    done = subprocess.run([*mypy, str(checked)], capture_output=True, text=True, cwd=root, env=env)
    assert done.returncode == 0, done.stdout
    # The check can fail: a wrong result type is an error.
    checked.write_text(checked.read_text().replace("Tool[Query, Rows])", "Tool[Query, Query])", 1))
    done = subprocess.run([*mypy, str(checked)], capture_output=True, text=True, cwd=root, env=env)
    assert done.returncode == 1 and "[assert-type]" in done.stdout, done.stdout
