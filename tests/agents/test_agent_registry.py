"""One's own agents are served by name (entry points or the [agents] setting), names are unique, and
a paused run is only ever continued by the agent that started it (issue 26)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sdk_support import USERS, kinds

from sovra.agents import get_agent, list_agents, registry
from sovra.config import Settings
from sovra.errors import ApprovalError, ConfigError, InputError
from sovra.runtime import Runtime
from sovra.testing import ScriptedModel, call, say

AGENT_MODULE = '''
from sovra.agents.sdk import define_agent
from sovra.tools.base import ToolContext, tool
from sovra.tools.cases import open_case


@tool
def renewal_terms(supplier: str, ctx: ToolContext) -> str:
    """The renewal terms of a supplier's contract."""
    n = ctx.cite(kind="document", title=f"{supplier} contract", url=f"https://contracts.example/{supplier}",
                 quote=f"The {supplier} contract renews for 12 months unless cancelled 90 days before.")
    return f"[{n}] renews for 12 months unless cancelled 90 days before"


renewals = define_agent("supplier_renewals", "Supplier renewals.", tools=[renewal_terms, open_case])


def misnamed():
    return define_agent("renewals_v2", "Supplier renewals.", tools=[renewal_terms])


def other_renewals():  # same name, other tools: another agent
    return define_agent("supplier_renewals", "Supplier renewals.", tools=[renewal_terms])
'''


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A package on the path, as `pip install` would leave it: a module and its entry points."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "renewals_plugin.py").write_text(AGENT_MODULE)
    monkeypatch.syspath_prepend(str(site))
    return site


def publish(site: Path, **agents: str) -> None:
    dist = site / "renewals_plugin-1.0.dist-info"
    dist.mkdir(exist_ok=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: renewals-plugin\nVersion: 1.0\n")
    lines = [f"{name} = {target}" for name, target in agents.items()]
    (dist / "entry_points.txt").write_text("[sovra.agents]\n" + "\n".join(lines) + "\n")


def data_dir(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    (data / "users.json").write_text(json.dumps(USERS))
    return data


# ---------------------------------------------------------------------- the registry


def test_an_agent_in_the_agents_setting_is_served_by_name(plugin, tmp_path):
    settings = Settings(data_dir=data_dir(tmp_path), agents={"supplier_renewals": "renewals_plugin:renewals"})
    agent = get_agent("supplier_renewals", settings)
    assert agent.name == "supplier_renewals" and "supplier_renewals" in registry(settings)
    assert ("supplier_renewals", "Supplier renewals.") in list_agents(settings)
    with pytest.raises(InputError, match="unknown agent 'supplier_renewals'"):
        get_agent("supplier_renewals", Settings(data_dir=tmp_path / "data"))


@pytest.mark.parametrize(
    ("agents", "message"),
    [
        (
            {"assistant": "renewals_plugin:renewals"},
            "agent name 'assistant' of the .agents. setting .* is taken by the built-in agent",
        ),
        ({"renewals_v3": "renewals_plugin:misnamed"}, "registered as 'renewals_v3' but is named 'renewals_v2'"),
        ({"x": "renewals_plugin_missing:agent"}, "agent 'x': cannot load renewals_plugin_missing:agent"),
        ({"x": "renewals_plugin"}, "is not 'module:attribute'"),
    ],
)
def test_registration_mistakes_are_errors_naming_the_culprit(plugin, tmp_path, agents, message):
    settings = Settings(data_dir=data_dir(tmp_path), agents=agents)
    with pytest.raises(ConfigError, match=message):
        get_agent(next(iter(agents)), settings)


def test_an_entry_point_agent_is_served_by_sovra_ask_and_a_clash_is_an_error(plugin, tmp_path):
    """`sovra ask --agent NAME` in a new process finds a published agent; the model is scripted."""
    publish(plugin, supplier_renewals="renewals_plugin:renewals")
    data = data_dir(tmp_path)
    script = [call("renewal_terms", supplier="Acme"), say("It renews for 12 months [1].")]
    with ScriptedModel(script) as model:
        env = {
            **os.environ,
            "PYTHONPATH": str(plugin),
            "SOVRA_DATA_DIR": str(data),
            "SOVRA_LLM_BASE_URL": model.base_url,
            "SOVRA_LLM_MODEL": "sovra-scripted",
        }
        sovra = [sys.executable, "-m", "sovra.ui.cli"]
        question = "When does the Acme contract renew?"
        ask = [*sovra, "ask", question, "--as", "bob", "--agent", "supplier_renewals", "--json"]
        done = subprocess.run(ask, capture_output=True, text=True, env=env, timeout=300)
        assert done.returncode == 0, done.stderr
        answer = json.loads(done.stdout)
        assert answer["status"] == "answered" and "12 months" in answer["answer"]
        assert answer["citations"][0]["title"] == "Acme contract"
        # Another package publishing a built-in's name breaks nothing silently: every lookup says so.
        publish(plugin, supplier_renewals="renewals_plugin:renewals", assistant="renewals_plugin:renewals")
        done = subprocess.run(
            [*sovra, "ask", "hi", "--as", "bob"], capture_output=True, text=True, env=env, timeout=300
        )
        assert done.returncode != 0
        assert "agent name 'assistant' of the entry point of package renewals-plugin" in done.stdout + done.stderr


# ---------------------------------------------------------------------- approvals find the same agent


def _paused(tmp_path: Path, model: ScriptedModel, plugin: Path) -> tuple[Settings, str]:
    settings = model.settings(data_dir(tmp_path), agents={"supplier_renewals": "renewals_plugin:renewals"})
    rt = Runtime(settings)
    model.script = [call("open_case", counterparty="Acme", summary="renewal missed", amount=100)]
    answer = rt.ask(get_agent("supplier_renewals", settings), "Open a case: Acme renewal missed", "bob")
    rt.close()
    assert answer.status == "awaiting_approval"
    return settings, answer.run_id


def test_approving_a_run_whose_agent_is_not_registered_leaves_it_waiting(plugin, tmp_path):
    with ScriptedModel() as model:
        settings, run_id = _paused(tmp_path, model, plugin)
        rt = Runtime(settings.model_copy(update={"agents": {}}))  # as a process without the setting
        with pytest.raises(InputError, match="unknown agent 'supplier_renewals'"):
            rt.resume(run_id, "erin", approved=True, reason="ok")
        assert rt.runs.get(run_id).status == "awaiting_approval" and rt.pending_approval(run_id) is not None
        assert "approval.refused" in kinds(rt, run_id)
        rt.close()
        # Where the agent is registered, the same run is approved and continues.
        rt = Runtime(settings)
        model.script = [say("Case opened.")]
        done = rt.resume(run_id, "erin", approved=True, reason="ok")
        assert done.status == "answered" and "tool.open_case" in kinds(rt, run_id)
        rt.close()


def test_another_agent_under_the_same_name_never_continues_the_run(plugin, tmp_path):
    with ScriptedModel() as model:
        settings, run_id = _paused(tmp_path, model, plugin)
        start = next(r for r in Runtime(settings).services.audit.records(run_id) if r.kind == "run.start")
        assert start.data["agent_identity"] == "sdk:supplier_renewals:open_case,renewal_terms"
        other = Runtime(settings.model_copy(update={"agents": {"supplier_renewals": "renewals_plugin:other_renewals"}}))
        with pytest.raises(ApprovalError, match="was started by agent 'sdk:supplier_renewals:open_case,renewal_terms'"):
            other.resume(run_id, "erin", approved=True, reason="ok")
        assert other.runs.get(run_id).status == "awaiting_approval"
        assert "tool.open_case" not in kinds(other, run_id) and "approval.decision" not in kinds(other, run_id)
        other.close()


def test_a_crashed_run_is_not_resumed_by_another_agent(plugin, tmp_path):
    with ScriptedModel() as model:
        settings, run_id = _paused(tmp_path, model, plugin)
        rt = Runtime(settings.model_copy(update={"agents": {"supplier_renewals": "renewals_plugin:other_renewals"}}))
        rt.runs.update(run_id, status="running", pid=2**22 + 7)  # as a process killed mid-run leaves it
        with pytest.raises(InputError, match="was started by agent"):
            rt.resume_crashed(run_id)
        assert rt.runs.get(run_id).status == "running" and "run.resume_refused" in kinds(rt, run_id)
        rt.close()


# ---------------------------------------------------------------------- every face serves it


def test_the_api_serves_an_agent_of_the_agents_setting(plugin, tmp_path):
    from fastapi.testclient import TestClient

    from sovra.ui.api import create_app

    bob = {"Authorization": "Bearer bob-token-0123456789ab"}
    with ScriptedModel([call("renewal_terms", supplier="Acme"), say("It renews for 12 months [1].")]) as model:
        settings = model.settings(data_dir(tmp_path), agents={"supplier_renewals": "renewals_plugin:renewals"})
        app = create_app(settings, tokens={"bob-token-0123456789ab": "bob"})
        with TestClient(app) as client:
            listed = client.get("/v1/models", headers=bob)
            assert listed.status_code == 200, listed.text
            assert "sovra-supplier_renewals" in {m["id"] for m in listed.json()["data"]}
            body = {"question": "When does the Acme contract renew?", "agent": "supplier_renewals"}
            r = client.post("/v1/ask", json=body, headers=bob)
            assert r.status_code == 200, r.text
            answer = r.json()
            assert answer["status"] == "answered" and "12 months" in answer["answer"]
            assert answer["citations"][0]["title"] == "Acme contract"
            r = client.post("/v1/ask", json={**body, "agent": "supplier_renewals_v9"}, headers=bob)
            assert r.status_code == 400 and "unknown agent 'supplier_renewals_v9'" in r.json()["error"]


def test_the_chat_bots_serve_an_agent_of_the_agents_setting(plugin, tmp_path):
    from sovra.ui.bot_common import ChatService

    with ScriptedModel() as model:
        settings = model.settings(
            data_dir(tmp_path), agents={"supplier_renewals": "renewals_plugin:renewals"}, chat_agent="supplier_renewals"
        )
        bots = ChatService(settings, "slack")
        assert bots.agent.name == "supplier_renewals"
        bots.close()


def test_the_chat_lists_an_agent_of_the_agents_setting(plugin, tmp_path):
    from sovra.ui.chat import session

    settings = Settings(data_dir=data_dir(tmp_path), agents={"supplier_renewals": "renewals_plugin:renewals"})
    assert ("supplier_renewals", "Supplier renewals.") in session.available_agents(settings)
    assert "supplier_renewals" not in dict(session.available_agents(Settings(data_dir=tmp_path / "data")))


def test_a_hand_built_agent_is_the_same_agent_whichever_way_its_module_was_imported():
    """`pkg.mod.Agent` in one process is `mod.Agent` in another (a script, or its folder on sys.path):
    resume after kill -9 must not refuse it as another agent (the crash test found this)."""
    from sovra.runtime import agent_identity

    def built(module: str) -> object:
        cls = type("PaymentAgent", (), {"name": "rel-payment", "__module__": module})
        return cls()

    assert agent_identity(built("tests.reliability.crash")) == agent_identity(built("crash"))
    assert agent_identity(built("crash")) != agent_identity(built("other"))
