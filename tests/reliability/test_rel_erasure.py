"""Erasure leaves nothing of the subject's questions on disk: `sovra audit erase --subject` removes
the sealed audit content, the run checkpoints (state and writes), the run table's question and the
chat's conversation titles; the free text of approvals is sealed like other personal data, and the
chain still verifies. The check is a raw scan of every file in the data dir, as a data-protection
officer would run it."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import pytest
from fakes.chat_agent import CitedAgent
from typer.testing import CliRunner

from sovra.audit import open_audit
from sovra.config import Settings
from sovra.conversations import Conversations, ConversationStore
from sovra.runtime import Runtime

pytestmark = pytest.mark.reliability
SECRET_Q = "please pay INV-7 for Zephyrine Quillfeather"  # the subject's personal question
REASON = "Zephyrine's manager confirmed by phone"


def _pg_dump(url: str, schema: str) -> str:
    import psycopg

    out = []
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        tables = conn.execute(
            "SELECT table_schema, table_name FROM information_schema.tables WHERE table_schema IN (%s, 'public') "
            "AND (table_name LIKE 'audit%%' OR table_name LIKE 'checkpoint%%' "
            "OR table_name IN ('sovra_runs', 'sovra_conversations'))",
            (schema,),
        ).fetchall()
        for sch, name in tables:
            out += [str(r) for r in conn.execute(f'SELECT * FROM "{sch}"."{name}"').fetchall()]
    return "\n".join(out)


def _all_bytes(root: Path) -> bytes:
    return b"".join(p.read_bytes() for p in root.rglob("*") if p.is_file())


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_erasing_a_subject_removes_their_questions_from_every_store(tmp_path, monkeypatch, backend):
    data = tmp_path / "data"
    data.mkdir()
    users = {"alice": {"groups": ["employees"]}, "paula": {"groups": ["employees", "approvers"]}}
    (data / "users.json").write_text(json.dumps(users))
    kw: dict[str, str] = {}
    if backend == "postgres":
        url = os.environ.get("SOVRA_TEST_POSTGRES_URL")
        if not url:
            pytest.skip("SOVRA_TEST_POSTGRES_URL not set")
        schema = f"erasure_{uuid.uuid4().hex[:8]}"
        kw = {"audit_url": url, "audit_schema": schema, "checkpoint_url": url}
        monkeypatch.setenv("SOVRA_AUDIT_URL", url)
        monkeypatch.setenv("SOVRA_AUDIT_SCHEMA", schema)
        monkeypatch.setenv("SOVRA_CHECKPOINT_URL", url)
    settings = Settings(data_dir=data, **kw)
    rt = Runtime(settings, agents=lambda name: CitedAgent())
    try:
        paused = rt.ask(CitedAgent(), SECRET_Q, "alice")
        assert paused.status == "awaiting_approval"
        done = rt.resume(paused.run_id, "paula", approved=True, reason=REASON)
        assert done.status == "answered"
        rt.ask(CitedAgent(), "what is the travel policy?", "alice")
        # The chat's conversation title is personal too (store and audit record).
        store = ConversationStore(settings)
        try:
            Conversations(rt.runs, store, rt.services.audit).rename("alice", paused.run_id, "Zephyrine's invoice")
        finally:
            store.close()
    finally:
        rt.close()
    before = _all_bytes(data)
    if backend == "postgres":
        before += _pg_dump(os.environ["SOVRA_TEST_POSTGRES_URL"], kw["audit_schema"]).encode()
    assert b"Zephyrine" in before  # the question and the reason are on disk before erasure

    monkeypatch.setenv("SOVRA_DATA_DIR", str(data))
    from sovra.ui.cli import app

    res = CliRunner().invoke(app, ["audit", "erase", "--subject", "alice", "--by", "dpo", "--reason", "art. 17"])
    assert res.exit_code == 0, res.output
    assert "erased the checkpoints of" in res.output
    after = _all_bytes(data)
    assert b"Zephyrine" not in after and b"Quillfeather" not in after
    if backend == "postgres":  # every table the stores wrote, read back as text
        assert "Zephyrine" not in _pg_dump(os.environ["SOVRA_TEST_POSTGRES_URL"], kw["audit_schema"])
    log = open_audit(settings)
    try:
        assert log.verify().ok
        kinds = [r.kind for r in log.records("audit")]
        assert "audit.erasure" in kinds and "privacy.erasure" in kinds
    finally:
        log.close()


def test_approval_reasons_and_pause_descriptions_are_sealed(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "users.json").write_text(json.dumps({"alice": {"groups": ["employees", "approvers"]}}))
    settings = Settings(data_dir=data)
    rt = Runtime(settings, agents=lambda name: CitedAgent())
    try:
        paused = rt.ask(CitedAgent(), "pay INV-7", "alice")
        rt.resume(paused.run_id, "alice", approved=False, reason=REASON)
        records = rt.services.audit.records(paused.run_id)
    finally:
        rt.close()
    sealed = json.dumps([r.sealed for r in records])
    assert "Zephyrine" not in sealed  # the chained records hold only refs to it
    assert any("Zephyrine" in json.dumps(r.data) for r in records)  # readable until erased
