"""The commands of docs/sdk.md and examples/README.md, run as written on the bundled local model (issue 26):
the tutorial's answer is the expected fact with its citation; the approval flow pauses before the
side effect, and the case is opened only once a person approved it. The fast tests with a scripted
model are in test_examples.py and tests/agents/test_runtime_cli.py."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from sovra.config import Settings
from sovra.tools.cases import list_cases

pytestmark = [pytest.mark.llm, pytest.mark.slow]  # the bundled model in new processes: 10-40 s each

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
USERS = {
    "bob": {"name": "Bob", "groups": ["employees", "finance"]},
    "erin": {"name": "Erin", "groups": ["employees", "finance-managers"]},
    "alice": {"name": "Alice", "groups": ["employees"]},
}


@pytest.fixture
def env(tmp_path: Path, model_cache: Path) -> dict[str, str]:
    data = tmp_path / "data"
    data.mkdir()
    (data / "users.json").write_text(json.dumps(USERS))
    model_cache.mkdir(parents=True, exist_ok=True)
    (data / "models").symlink_to(model_cache)  # the converted embedding model, built once
    full = {**os.environ, "SOVRA_DATA_DIR": str(data), "HF_HUB_OFFLINE": "1"}
    for name in ("SOVRA_LLM_BASE_URL", "SOVRA_LLM_MODEL", "SOVRA_DEBUG"):
        full.pop(name, None)  # the bundled model, as a user who just installed Sovra has it
    return full


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(args, capture_output=True, text=True, env=env, timeout=300, cwd=EXAMPLES.parent)
    assert done.returncode == 0, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    return done


def test_vendor_agent_tutorial_command_answers_with_the_fact_and_its_citation(env):
    # python examples/vendor_agent.py "Who issues the SOC 2 report of Nimbus Cloud?" bob
    q = "Who issues the SOC 2 report of Nimbus Cloud?"
    out = run(env, sys.executable, "examples/vendor_agent.py", q, "bob").stdout
    assert "Keller & Partner" in out and "Stopped before an answer" not in out
    assert re.search(r"^\[\d\] Nimbus Cloud, p\. 1 <file://.*nimbus-cloud\.md>$", out, re.M), out
    # alice is not in group:finance: the notes are not hers to read, so nothing is found or cited.
    out = run(env, sys.executable, "examples/vendor_agent.py", q, "alice").stdout
    assert "Keller" not in out and not re.search(r"^\[\d\]", out, re.M)


def test_approve_case_example_pauses_then_opens_the_case_once_approved(env):
    # python examples/approve_case.py bob bob "Acme was paid twice in March (8,500); open a case"
    q = "Acme was paid twice in March (8,500); open a case"
    out = run(env, sys.executable, "examples/approve_case.py", "bob", "bob", q).stdout
    lines = out.splitlines()
    assert lines[0].startswith("awaiting_approval open_case("), out
    kinds = [line.split()[1] for line in lines if re.match(r"^\d+ \S+$", line)]
    assert kinds.index("run.paused") < kinds.index("approval.decision") < kinds.index("tool.open_case")
    cases = list_cases(Settings(data_dir=Path(env["SOVRA_DATA_DIR"])))
    # The bundled 135M model fills in the arguments poorly (see docs/sdk.md): the person who approves
    # sees them first. What is asserted is the flow: one case, opened as bob, after the approval.
    assert len(cases) == 1 and cases[0]["opened_by"] == "bob"


def test_sdk_md_approval_commands_pause_list_and_approve_in_three_processes(env):
    sovra = [sys.executable, "-m", "sovra.ui.cli"]
    q = "Acme was paid twice in March (8,500); open a case"
    answer = json.loads(run(env, *sovra, "ask", q, "--as", "bob", "--agent", "followup", "--json").stdout)
    assert answer["status"] == "awaiting_approval" and answer["approval"]["tool"] == "open_case"
    data = Path(env["SOVRA_DATA_DIR"])
    assert list_cases(Settings(data_dir=data)) == []  # nothing happened yet
    pending = run(env, *sovra, "runs", "pending").stdout
    assert answer["run_id"] in pending and "open_case(" in pending
    done = run(env, *sovra, "approve", answer["run_id"], "--as", "erin", "--reason", "double payment confirmed")
    assert "Approving: open_case(" in done.stdout and "Stopped before an answer" not in done.stdout
    cases = list_cases(Settings(data_dir=data))
    assert len(cases) == 1 and cases[0]["opened_by"] == "bob" and cases[0]["run_id"] == answer["run_id"]
    shown = json.loads(run(env, *sovra, "audit", "show", answer["run_id"], "--json").stdout)
    decision = next(r for r in shown if r["kind"] == "approval.decision")
    assert decision["data"]["approver"] == "erin" and decision["data"]["reason"] == "double payment confirmed"


def test_measure_vendor_agent_answers_the_ten_questions(env):
    # python examples/measure_vendor_agent.py  (docs/sdk.md, section 8)
    out = run(env, sys.executable, "examples/measure_vendor_agent.py").stdout
    assert "correct cited answers 5/5, correct not found 5/5" in out, out
    assert out.count("\nok ") + out.startswith("ok ") == 10 and "BAD" not in out


def test_measure_through_the_tutorials_supervisor_answers_the_ten_questions(env):
    # python examples/measure_vendor_agent.py --supervisor  (docs/sdk.md, section 8)
    out = run(env, sys.executable, "examples/measure_vendor_agent.py", "--supervisor").stdout
    assert "correct cited answers 5/5, correct not found 5/5" in out, out
