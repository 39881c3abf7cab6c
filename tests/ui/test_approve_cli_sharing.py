"""`sovra approve` by an approver who may not read the owner's sources (issue 17): the run is
decided and continues, the approver is told so, and the owner's answer is not printed. The real
CLI entry point, runtime, checkpoints, audit log and embedded index; the fixed-answer agent."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fakes.chat_agent import CitedAgent, index_cited_document

import sovra.runtime
from sovra.config import Settings
from sovra.runtime import Runtime
from sovra.ui.cli import main

USERS = {
    "alice": {"name": "Alice Martin", "groups": ["employees"]},
    "paula": {"name": "Paula Approver", "groups": ["employees", "approvers"]},
    "fiona": {"name": "Fiona Finance-Approver", "groups": ["employees", "finance", "approvers"]},
}


@pytest.fixture
def paused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    data = tmp_path / "data"
    data.mkdir()
    (data / "users.json").write_text(json.dumps(USERS))
    monkeypatch.setenv("SOVRA_DATA_DIR", str(data))
    agent = CitedAgent()
    monkeypatch.setattr(sovra.runtime, "_default_agents", agent.resolver)  # `sovra approve` rebuilds it
    settings = Settings()
    index_cited_document(settings)
    rt = Runtime(settings)
    try:
        answer = rt.ask(agent, "please pay invoice INV-7", "alice", interface="cli")
    finally:
        rt.close()
    assert answer.status == "awaiting_approval"
    return answer.run_id


def _approve(capsys: pytest.CaptureFixture[str], run_id: str, who: str, *extra: str) -> str:
    assert main(["approve", run_id, "--as", who, "--reason", "checked", *extra]) == 0
    return capsys.readouterr().out


def test_an_approver_who_may_not_read_the_sources_does_not_see_the_answer(paused, capsys) -> None:
    out = _approve(capsys, paused, "paula", "--json")
    body = json.loads(out)
    assert body["withheld"] is True and body["status"] == "answered" and body["answer"] is None
    assert "approved by paula" not in out and "JE-1001" not in out and "250 EUR" not in out


def test_the_plain_output_says_the_run_was_decided(paused, capsys) -> None:
    out = _approve(capsys, paused, "paula")
    assert "Decided; the run is now answered." in out and "approved by paula" not in out


def test_an_approver_who_may_read_every_source_sees_it(paused, capsys) -> None:
    out = _approve(capsys, paused, "fiona", "--json")
    assert json.loads(out)["answer"] == "Invoice INV-7 payment approved by fiona."
