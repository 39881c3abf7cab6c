"""The compliance console's server side: who may do what (checked here, not by the page), runs as
timelines, where a broken chain breaks, signed bundles that verify offline (and fail when altered),
retention and subject erasure with their proof. Real SQLite audit log and run table."""

from __future__ import annotations

import io
import json
import sqlite3
import zipfile
from datetime import UTC, datetime, timedelta

import pytest

from sovra.audit import SYSTEM_RUN
from sovra.audit_sign import Signer
from sovra.config import Settings
from sovra.identity import User
from sovra.recorder import RunRecorder
from sovra.run_catalog import RunQuery
from sovra.runs import RunRow, RunStore
from sovra.ui.audit_bundle import verify_bundle
from sovra.ui.compliance import Console, ConsoleAccessError

KEY = "11" * 32
ALICE = User("alice", "Alice", ("employees",))
ERIN = User("erin", "Erin Auditor", ("employees", "auditor"))
DORA = User("dora", "Dora DPO", ("employees", "dpo"))
QUESTION = "Is Zoe Quincy-Marsh behind on her mortgage?"


def record_run(console: Console, user: str = "alice", *, agent: str = "assistant", approval: bool = False) -> str:
    """A run as the runtime writes it (audit records and a run-table row)."""
    with RunRecorder(console.audit, user_id=user, interface="api", question=QUESTION, groups=["employees"]) as rec:
        console.runs.create(RunRow(rec.run_id, rec.run_id, agent, user, "api", QUESTION, "running"))
        rec.record("plan", {"search_query": "mortgage arrears", "ledger_lookup": False})
        with rec.step("tool.search_documents", args={"query": QUESTION, "limit": 6}) as step:
            step.result = {"hits": [{"chunk_id": "pol-credit#0a1", "doc_id": "pol-credit", "page": 2, "score": 0.61}]}
        rec.model_call(model="qwen2.5-7b+lora-credit", input_tokens=812, output_tokens=95, route="answer")
        if approval:
            rec.record("approval.decision", {"approved": False, "approver": "erin", "reason": "no", "at": "now"})
            rec.record("tool.refused", {"tool": "open_case", "args": {"counterparty": "Acme"}, "approver": "erin"})
        cite = {
            "n": 1,
            "kind": "document",
            "title": "Credit Policy",
            "url": "file:///credit",
            "chunk_id": "pol-credit#0a1",
        }
        rec.finish(answer={"text": "Arrears are escalated after 30 days [1].", "status": "answered"}, citations=[cite])
    console.runs.update(rec.run_id, status="answered")
    return rec.run_id


@pytest.fixture
def console(tmp_path):
    settings = Settings(data_dir=tmp_path / "data", audit_signing_key=KEY)
    from sovra.audit import open_audit

    audit = open_audit(settings)
    runs = RunStore(settings)
    c = Console(settings, audit, runs)
    yield c
    c.close()
    runs.close()
    audit.close()


def test_only_console_principals_get_in_and_a_refusal_is_recorded(console):
    run_id = record_run(console)
    attempts = [
        lambda u: console.search(u, RunQuery()),
        lambda u: console.open_run(u, run_id),
        lambda u: console.verify(u),
        lambda u: console.export(u, run_id=run_id),
        lambda u: console.usage(u),
        lambda u: console.retention(u, 30),
        lambda u: console.erase_subject(u, "alice", "ticket 1"),
    ]
    for attempt in attempts:
        with pytest.raises(ConsoleAccessError):
            attempt(ALICE)
    denied = [r for r in console.audit.records(SYSTEM_RUN) if r.kind == "console.denied"]
    assert len(denied) == len(attempts) and {r.user_id for r in denied} == {"alice"}
    # An auditor reads, verifies and exports, but erasure and retention are the DPO's.
    assert console.search(ERIN, RunQuery()).total == 1
    for attempt in attempts[-2:]:
        with pytest.raises(ConsoleAccessError, match="data-protection officer"):
            attempt(ERIN)
    assert console.search(DORA, RunQuery(user="alice")).entries[0].agent == "assistant"  # from the run table


def test_a_run_opens_as_a_timeline_of_its_steps_with_its_sources(console):
    run_id = record_run(console, approval=True)
    t = console.open_run(ERIN, run_id)
    assert t.user == "alice" and t.question == QUESTION and t.status == "answered"
    phases = [s.phase for s in t.steps]
    assert phases == ["question", "plan", "retrieval", "model", "approval", "refusal", "answer"]
    retrieval = t.steps[2]
    assert retrieval.table == [{"chunk": "pol-credit#0a1", "document": "pol-credit", "page": 2, "score": 0.61}]
    assert "mortgage" in " ".join(retrieval.lines)  # the tool's arguments
    assert "qwen2.5-7b+lora-credit" in t.steps[3].lines[0] and t.models == ["qwen2.5-7b+lora-credit"]
    assert "refused by erin" in t.steps[4].lines[0]
    assert t.sources[0]["title"] == "Credit Policy"
    opened = [r for r in console.audit.records(SYSTEM_RUN) if r.kind == "console.open_run"]
    assert opened[-1].user_id == "erin" and opened[-1].data == {"run": run_id}


def test_verify_names_where_the_chain_breaks(console):
    record_run(console)
    victim = record_run(console, "bob")
    assert console.verify(ERIN).result.ok
    target = console.audit.records(victim)[2]
    db = sqlite3.connect(console.settings.paths.audit_db)
    db.execute("DROP TRIGGER audit_records_no_update")
    db.execute("UPDATE audit_records SET data = replace(data, '0.61', '0.99') WHERE seq = ?", (target.seq,))
    db.commit()
    db.close()
    check = console.verify(ERIN)
    assert not check.result.ok and check.result.first_bad_seq == target.seq
    assert check.run_id == victim and target.seq in [r.seq for r in check.around]
    db = sqlite3.connect(console.settings.paths.audit_db)
    db.execute("UPDATE audit_records SET data = '{not json' WHERE seq = ?", (target.seq,))
    db.commit()
    db.close()
    check = console.verify(ERIN)  # still names the record, even when it cannot be read at all
    assert not check.result.ok and check.result.first_bad_seq == target.seq


def _rezip(data: bytes, change) -> bytes:
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        files = {n: z.read(n) for n in z.namelist()}
    change(files)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for n, b in files.items():
            z.writestr(n, b)
    return buf.getvalue()


def test_a_signed_bundle_verifies_offline_and_any_change_is_caught(console):
    run_id = record_run(console)
    data = console.export(ERIN, run_id=run_id)
    public = Signer.load(KEY).public_key_hex
    check = verify_bundle(data, public)
    assert check.ok and check.runs == 1 and check.records == len(console.audit.records(run_id)), check
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        names = set(z.namelist())
        report = z.read(f"runs/{run_id}.html").decode()
    assert {"bundle.json", "index.html", "manifest.json", "manifest.sig", f"runs/{run_id}.html"} == names
    assert "Credit Policy" in report and "Arrears are escalated" in report

    def edit_json(files):
        files["bundle.json"] = files["bundle.json"].replace(b"Arrears are escalated", b"Arrears are forgiven")

    assert "altered" in verify_bundle(_rezip(data, edit_json), public).reason
    assert "added" in verify_bundle(_rezip(data, lambda f: f.update({"x.txt": b"x"})), public).reason
    assert "another key" in verify_bundle(data, Signer.generate().public_key_hex).reason
    assert not verify_bundle(b"not a zip").ok

    # A bundle rebuilt and re-signed by another key verifies only against that key, never the audit key.
    forger = Signer.generate()

    def forge(files):
        import hashlib

        edit_json(files)
        manifest = json.loads(files["manifest.json"])
        manifest["public_key"] = forger.public_key_hex
        manifest["files"]["bundle.json"] = hashlib.sha256(files["bundle.json"]).hexdigest()
        files["manifest.json"] = json.dumps(manifest).encode()
        files["manifest.sig"] = forger.sign(hashlib.sha256(files["manifest.json"]).hexdigest()).encode()

    forged = _rezip(data, forge)
    assert not verify_bundle(forged, public).ok
    assert verify_bundle(forged).ok  # integrity without a pinned key: the signer must be pinned to prove origin

    def edit_record(files):  # even a correctly signed bundle must hold records that hash as recorded
        import hashlib

        bundle = json.loads(files["bundle.json"])
        bundle["records"][0]["user_id"] = "mallory"
        files["bundle.json"] = json.dumps(bundle).encode()
        manifest = json.loads(files["manifest.json"])
        manifest["files"]["bundle.json"] = hashlib.sha256(files["bundle.json"]).hexdigest()
        files["manifest.json"] = json.dumps(manifest).encode()
        files["manifest.sig"] = Signer.load(KEY).sign(hashlib.sha256(files["manifest.json"]).hexdigest()).encode()

    assert "does not hash" in verify_bundle(_rezip(data, edit_record), public).reason


def test_a_date_range_exports_every_run_in_it(console):
    ids = [record_run(console, u) for u in ("alice", "bob", "carol")]
    today = datetime.now(UTC).date()
    data = console.export(ERIN, since=today, until=today)
    check = verify_bundle(data, Signer.load(KEY).public_key_hex)
    assert check.ok and check.runs == 3
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        bundle = json.loads(z.read("bundle.json"))
    assert [r["run_id"] for r in bundle["runs"]] == ids and bundle["chain"]["ok"]
    assert bundle["scope"] == {"since": today.isoformat(), "until": today.isoformat()}
    with pytest.raises(Exception, match="no run"):
        console.export(ERIN, since=today - timedelta(days=9), until=today - timedelta(days=8))


def test_retention_and_erasure_leave_a_verifiable_chain_and_their_proof(console):
    old = record_run(console, "alice")
    kept = record_run(console, "bob")
    proof = console.retention(DORA, 0)  # everything written before now
    assert proof.erased > 0 and old in proof.runs and proof.chain_ok and proof.action == "retention"
    assert console.open_run(ERIN, old).question == "[erased]"
    new = record_run(console, "alice")
    proof = console.erase_subject(DORA, "alice", "DSAR-2026-001")
    assert proof.runs == (new,) and proof.chain_ok and proof.details["run_store"]["runs"] == 2
    assert console.open_run(ERIN, new).question == "[erased]" and console.runs.get(new).question == "[erased]"
    assert console.audit.verify().ok and kept not in proof.runs
    log = console.requests(ERIN)
    assert [r.kind for r in log] == ["privacy.erasure", "audit.erasure", "audit.retention"]
    assert log[1].seq == proof.seq and log[1].data["reason"] == "DSAR-2026-001" and log[1].user_id == "dora"
    with pytest.raises(Exception, match="reason"):
        console.erase_subject(DORA, "bob", " ")


def test_the_cli_exports_a_bundle_and_verifies_it_offline(console, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from sovra.ui.cli import app

    run_id = record_run(console)
    data = console.settings.data_dir
    (data / "users.json").write_text(
        json.dumps({u.id: {"name": u.name, "groups": list(u.groups)} for u in (ALICE, ERIN)})
    )
    monkeypatch.setenv("SOVRA_DATA_DIR", str(data))
    monkeypatch.setenv("SOVRA_AUDIT_SIGNING_KEY", KEY)
    runner = CliRunner()
    out = tmp_path / "run.zip"
    r = runner.invoke(app, ["audit", "export-bundle", "--run", run_id, "-o", str(out), "--as", "erin"])
    assert r.exit_code == 0, r.output
    public = Signer.load(KEY).public_key_hex
    r = runner.invoke(app, ["audit", "verify-bundle", str(out), "--public-key", public])
    assert r.exit_code == 0 and "bundle verifies: 1 runs" in r.output, r.output
    r = runner.invoke(app, ["audit", "verify-bundle", str(out), "--public-key", Signer.generate().public_key_hex])
    assert r.exit_code == 3, r.output
    r = runner.invoke(app, ["audit", "export-bundle", "--run", run_id, "-o", str(tmp_path / "x.zip"), "--as", "alice"])
    assert r.exit_code != 0 and not (tmp_path / "x.zip").exists()
