"""Human approval from the command line: `sovra ask` pauses, `sovra runs pending` lists, `sovra approve`
decides in another process, and the decision is in the audit log. Model: the fake vLLM over HTTP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fakes.vllm_server import FakeVLLM
from sdk_support import USERS, text_reply, tool_reply

from sovra.audit import open_audit
from sovra.config import Settings
from sovra.tools.cases import list_cases

pytestmark = pytest.mark.slow  # three `sovra` processes


def _run(data_dir: Path, fake: FakeVLLM, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "SOVRA_DATA_DIR": str(data_dir),
        "SOVRA_LLM_BASE_URL": fake.base_url,
        "SOVRA_LLM_MODEL": fake.base_model,
        "HF_HUB_OFFLINE": "1",
    }
    env.pop("SOVRA_DEBUG", None)
    return subprocess.run(
        [sys.executable, "-m", "sovra.ui.cli", *args], capture_output=True, text=True, env=env, timeout=300
    )


def test_ask_pauses_then_approve_from_another_process(tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "users.json").write_text(json.dumps(USERS))
    fake = FakeVLLM(script=[tool_reply("open_case", counterparty="Acme", summary="paid twice", amount=8500)])
    try:
        q = "Acme was paid twice in March (8,500); open a follow-up case"
        p = _run(data_dir, fake, "ask", q, "--as", "bob", "--agent", "followup", "--thread", "conv-1", "--json")
        assert p.returncode == 0, p.stderr
        answer = json.loads(p.stdout)
        run_id = answer["run_id"]
        assert answer["status"] == "awaiting_approval" and answer["thread_id"] == "conv-1"
        assert answer["approval"]["tool"] == "open_case" and answer["approval"]["args"]["counterparty"] == "Acme"

        p = _run(data_dir, fake, "runs", "pending")
        assert p.returncode == 0 and run_id in p.stdout and "open_case" in p.stdout

        fake.script = [text_reply("Case opened for Acme.")]
        p = _run(data_dir, fake, "approve", run_id, "--as", "erin", "--reason", "confirmed in the ledger")
        assert p.returncode == 0, p.stderr
        assert "Approving: open_case(" in p.stdout and "Case opened for Acme." in p.stdout
    finally:
        fake.close()
    settings = Settings(data_dir=data_dir)
    assert [c["counterparty"] for c in list_cases(settings)] == ["Acme"]
    audit = open_audit(settings)
    recs = audit.records(run_id)
    decision = next(r for r in recs if r.kind == "approval.decision")
    assert decision.data["approver"] == "erin" and decision.data["reason"] == "confirmed in the ledger"
    assert [r.kind for r in recs][-1] == "run.end" and audit.verify().ok
