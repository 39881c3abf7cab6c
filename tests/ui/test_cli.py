"""The `sovra` command as a user runs it: a real process, real data, one-line errors."""

from __future__ import annotations

import os
import shutil
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import copy_demo_data

SOVRA = [sys.executable, "-m", "sovra.ui.cli"]


@pytest.fixture(scope="module")
def data_dir(demo_settings, tmp_path_factory) -> Path:
    return copy_demo_data(demo_settings, tmp_path_factory.mktemp("cli") / "data")


def run(data_dir: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "SOVRA_DATA_DIR": str(data_dir), "HF_HUB_OFFLINE": "1", **(env or {})}
    full_env.pop("SOVRA_DEBUG", None)
    return subprocess.run([*SOVRA, *args], capture_output=True, text=True, env=full_env, timeout=300)


def assert_one_line_error(p: subprocess.CompletedProcess[str], code: int, text: str) -> None:
    assert p.returncode == code, (p.returncode, p.stdout, p.stderr)
    assert "Traceback" not in p.stderr + p.stdout
    assert p.stderr.startswith("error: ") and text in p.stderr, p.stderr
    assert len(p.stderr.strip().splitlines()) == 1  # the message and, maybe, its hint, on one line


def test_help_lists_every_command(tmp_path):
    p = run(tmp_path, "--help")
    assert p.returncode == 0
    for cmd in ("ingest", "ask", "demo", "users", "audit"):
        assert cmd in p.stdout
    p = run(tmp_path, "audit", "--help")
    for cmd in ("show", "verify", "runs"):
        assert cmd in p.stdout


def test_ask_prints_citations_and_run_id_then_audit_show_replays_it(data_dir):
    p = run(data_dir, "ask", "What is the hotel limit per night in London?", "--as", "alice")
    assert p.returncode == 0, p.stderr
    assert "EUR 250" in p.stdout and "Sources" in p.stdout and "[1]" in p.stdout
    run_id = p.stdout.split("audit run: ")[1].split()[0]
    show = run(data_dir, "audit", "show", run_id)
    assert show.returncode == 0
    for kind in ("run.start", "model.call", "plan", "tool.search_documents", "run.end"):
        assert kind in show.stdout
    assert run(data_dir, "audit", "verify").returncode == 0


def test_ask_json_output(data_dir):
    import json

    p = run(data_dir, "ask", "How long do we keep accounting records?", "--as", "alice", "--json")
    assert p.returncode == 0, p.stderr
    data = json.loads(p.stdout)
    assert data["user"] == "alice" and data["run_id"] and data["citations"]


def test_user_mistakes_are_one_line_errors(data_dir, tmp_path):
    assert_one_line_error(run(data_dir, "ask", "hi", "--as", "mallory"), 2, "unknown user 'mallory'")
    assert_one_line_error(run(data_dir, "ask", "  ", "--as", "alice"), 2, "the question is empty")
    assert_one_line_error(run(data_dir, "ingest", str(tmp_path / "nope")), 2, "does not exist")
    assert_one_line_error(run(data_dir, "ingest", "--source", "nope"), 2, "unknown source")
    assert_one_line_error(run(data_dir, "audit", "show", "0" * 32), 2, "no run")


@pytest.mark.parametrize(
    ("args", "text"),
    [
        (("ask", "--user", "alice", "hi"), "No such option: --user"),  # issue 17: was "a bug in Sovra"
        (("approve",), "Missing argument"),
        (("nosuch",), "No such command 'nosuch'"),
        (("ask", "hi", "--as"), "requires an argument"),
        (("runs", "pending", "--limit", "many"), "--limit"),
        (("audit", "show", "--bogus"), "No such option: --bogus"),
    ],
)
def test_usage_errors_are_one_line_not_a_bug(tmp_path, args, text):
    p = run(tmp_path, *args)
    assert_one_line_error(p, 2, text)
    assert "bug in Sovra" not in p.stderr and "--help" in p.stderr


def test_a_command_group_without_a_command_shows_its_help(tmp_path):
    p = run(tmp_path, "runs")
    assert "Usage:" in p.stdout and "pending" in p.stdout and "bug in Sovra" not in p.stderr


def test_missing_index_is_explained(tmp_path, data_dir):
    shutil.copy(data_dir / "users.json", tmp_path / "users.json")
    assert_one_line_error(run(tmp_path, "ask", "hi", "--as", "alice"), 1, "no index")


def test_model_server_down_is_one_line(data_dir):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    p = run(
        data_dir,
        "ask",
        "What is the hotel limit?",
        "--as",
        "alice",
        env={"SOVRA_LLM_BASE_URL": f"http://127.0.0.1:{port}/v1"},
    )
    assert_one_line_error(p, 1, "unreachable")


def test_ingest_reports_a_corrupt_file_and_keeps_the_rest(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "good.md").write_text("# Notice\n\nThe canteen opens at 11:30 on working days.\n")
    (folder / "good.md.meta.json").write_text('{"title": "Canteen notice", "acl": ["group:everyone"]}')
    (folder / "broken.pdf").write_bytes(b"%PDF-1.7\n this is not really a pdf")
    (folder / "broken.pdf.meta.json").write_text('{"acl": ["group:everyone"]}')
    (folder / "empty.txt").write_bytes(b"")
    (folder / "empty.txt.meta.json").write_text('{"acl": ["group:everyone"]}')
    data = tmp_path / "data"
    p = run(data, "ingest", str(folder))
    assert p.returncode == 0, p.stderr
    assert "1 added" in p.stdout and "2 failed" in p.stdout
    assert "broken.pdf" in p.stderr and "empty.txt" in p.stderr
    again = run(data, "ingest", "--source", "docs")
    assert "1 unchanged" in again.stdout and "0 added" in again.stdout


def test_tampering_is_detected_and_named(data_dir, tmp_path):
    assert run(data_dir, "ask", "Who approves a purchase of EUR 250,000?", "--as", "alice").returncode == 0
    copy = tmp_path / "d"
    shutil.copytree(data_dir, copy, ignore=shutil.ignore_patterns("logs", "qdrant", "models"))
    assert run(copy, "audit", "verify").returncode == 0
    db = sqlite3.connect(copy / "audit.sqlite")
    seq = db.execute("SELECT seq FROM audit_records ORDER BY seq DESC LIMIT 1 OFFSET 2").fetchone()[0]
    # Whoever can write the file can drop the guard triggers; the hash chain is the real check.
    for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type='trigger'").fetchall():
        db.execute(f"DROP TRIGGER {name}")
    db.execute("UPDATE audit_records SET kind = 'tool.harmless' WHERE seq = ?", (seq,))
    db.commit()
    db.close()
    p = run(copy, "audit", "verify")
    assert p.returncode == 3
    assert f"record {seq}" in p.stderr
