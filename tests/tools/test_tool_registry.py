"""Tools published by name (the sovra.tools entry point or the [tools] setting) are usable by name in
define_agent; names are unique and mistakes name the culprit (issue 26)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sovra.agents.sdk import define_agent
from sovra.config import Settings
from sovra.errors import ConfigError, DefinitionError, InputError
from sovra.tools.registry import get_tool, registry

PLUGIN = '''
from sovra.tools.base import ToolContext, tool


@tool
def renewal_terms(supplier: str, ctx: ToolContext) -> str:
    """The renewal terms of a supplier's contract."""
    return f"{supplier}: 12 months"


def not_a_tool(supplier: str) -> str:
    return supplier
'''


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    site = tmp_path / "site"
    site.mkdir()
    (site / "terms_plugin.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(site))
    return site


def settings(tmp_path: Path, **tools: str) -> Settings:
    return Settings(data_dir=tmp_path / "data", tools=tools)


def test_a_tool_of_the_tools_setting_is_found_by_name(site, tmp_path):
    s = settings(tmp_path, renewal_terms="terms_plugin:renewal_terms")
    assert get_tool("renewal_terms", s).name == "renewal_terms" and "search_documents" in registry(s)
    with pytest.raises(InputError, match="unknown tool 'renewal_terms'"):
        get_tool("renewal_terms", settings(tmp_path))


@pytest.mark.parametrize(
    ("tools", "error", "message"),
    [
        (
            {"search_documents": "terms_plugin:renewal_terms"},
            ConfigError,
            "tool name 'search_documents' of the .tools. setting .* is taken by the built-in tool",
        ),
        ({"terms": "terms_plugin:renewal_terms"}, ConfigError, "registered as 'terms' but is named 'renewal_terms'"),
        (
            {"not_a_tool": "terms_plugin:not_a_tool"},
            DefinitionError,
            "tool 'not_a_tool': terms_plugin:not_a_tool is a function, not a tool",
        ),
        ({"x": "terms_plugin_missing:x"}, ConfigError, "tool 'x': cannot load terms_plugin_missing:x"),
        ({"x": "terms_plugin"}, ConfigError, "is not 'module:attribute'"),
    ],
)
def test_registration_mistakes_name_the_culprit(site, tmp_path, tools, error, message):
    with pytest.raises(error, match=message):
        get_tool(next(iter(tools)), settings(tmp_path, **tools))


def test_define_agent_takes_tool_names_published_by_a_package(site, tmp_path):
    """In a new process, as a package installed by pip leaves it: the entry point is found by name."""
    dist = site / "terms_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: terms-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[sovra.tools]\nrenewal_terms = terms_plugin:renewal_terms\n")
    code = (
        "from sovra.agents.sdk import define_agent\n"
        "a = define_agent('renewals', 'Renewals.', tools=['renewal_terms', 'search_documents'])\n"
        "print([t.name for t in a.tools])\n"
    )
    env = {**os.environ, "PYTHONPATH": str(site), "SOVRA_DATA_DIR": str(tmp_path / "data")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.replace("'", '"')) == ["renewal_terms", "search_documents"]
    with pytest.raises(InputError, match="unknown tool 'no_such_tool'"):
        define_agent("renewals", "Renewals.", tools=["no_such_tool"])
