"""The programs in examples/ run as written: real ingestion, index, embeddings, audit and checkpoints;
the model is the fake vLLM over HTTP (the real litellm client code runs against it)."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from fakes.vllm_server import FakeVLLM
from sdk_support import sdk_settings, text_reply, tool_reply

from sovra.runtime import Runtime

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def fake() -> Iterator[FakeVLLM]:
    f = FakeVLLM()
    yield f
    f.close()


def test_the_tutorial_example_is_under_50_lines():
    assert len((EXAMPLES / "vendor_agent.py").read_text().splitlines()) < 50


def test_vendor_agent_ingests_its_notes_and_answers_with_a_citation(tmp_path, fake, model_cache):
    example = load("vendor_agent")
    settings = sdk_settings(tmp_path / "data", fake.base_url)
    (settings.data_dir / "models").symlink_to(model_cache)  # the converted embedding model, built once
    fake.script = [
        tool_reply("vendor_notes", question="Nimbus Cloud SOC 2 report"),
        text_reply("Keller & Partner issues the SOC 2 Type II report of Nimbus Cloud [1]."),
    ]
    rt = Runtime(settings)
    out = example.main("Who issues the SOC 2 report of Nimbus Cloud?", "bob", rt)
    assert out.splitlines()[0].startswith("Keller & Partner")
    assert "[1] Nimbus Cloud, p. 1 <file://" in out
    # The tool really searched the index: the passage went back to the model.
    assert "Keller & Partner Wirtschaftspr" in fake.chat_bodies()[1]["messages"][-1]["content"]

    # alice is not in group:finance: the connector's ACL keeps the notes from her, inside the index.
    fake.script = [tool_reply("vendor_notes", question="Nimbus Cloud SOC 2 report"), text_reply("Not found.")]
    answer = rt.ask(example.agent, "Who issues the SOC 2 report of Nimbus Cloud?", "alice")
    assert answer.citations == [] and fake.chat_bodies()[-1]["messages"][-1]["content"] == '{"result":[]}'
    step = next(r for r in rt.services.audit.records(answer.run_id) if r.kind == "tool.vendor_notes")
    assert step.user_id == "alice" and step.data["result"] == {"result": []}
    rt.close()


@pytest.mark.parametrize("approve", [True, False])
def test_approve_case_pauses_then_continues_from_a_second_runtime(tmp_path, fake, capsys, approve):
    example = load("approve_case")
    settings = sdk_settings(tmp_path / "data", fake.base_url)
    fake.script = [
        tool_reply("open_case", counterparty="Acme", summary="paid twice in March", amount=8500),
        text_reply("Done." if approve else "Not opened."),
    ]
    reason = "confirmed" if approve else "already refunded"
    cases = example.main("Acme was paid twice in March (8,500)", "bob", "erin", approve, reason, settings)
    printed = capsys.readouterr().out
    assert printed.startswith("awaiting_approval open_case(counterparty='Acme'")
    assert "approval.decision" in printed and "run.paused" in printed
    if approve:
        assert [(c["counterparty"], c["amount"], c["opened_by"]) for c in cases] == [("Acme", 8500.0, "bob")]
        assert "tool.open_case" in printed
    else:
        assert cases == [] and "tool.refused" in printed and "tool.open_case" not in printed
    assert json.dumps(cases)  # plain rows
