"""`sovra doctor` against real parts (issue 19): a local HTTP server as the model endpoint, the real
PostgreSQL of SOVRA_TEST_POSTGRES_URL, the demo data dir, a port nobody listens on."""

from __future__ import annotations

import json
import os
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from conftest import private_demo_settings

from sovra.config import Settings
from sovra.doctor import check_audit, check_index, check_model, diagnose
from sovra.ui.cli import main

PG_URL = os.environ.get("SOVRA_TEST_POSTGRES_URL")


class _Models(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path != "/v1/models":
            self.send_error(404)
            return
        if self.headers.get("Authorization") != "Bearer right-key":
            self.send_error(401)
            return
        body = json.dumps({"object": "list", "data": [{"id": "bank-7b", "object": "model"}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def model_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Models)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def data(demo_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return private_demo_settings(demo_settings, tmp_path_factory.mktemp("doctor") / "data")


def run(args: list[str]) -> int:
    """The exit code `sovra ARGS` ends with (main returns it, or exits with it)."""
    try:
        return main(args)
    except SystemExit as exc:
        return int(exc.code or 0)


def test_demo_data_dir_is_healthy(data: Settings, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setenv("SOVRA_DATA_DIR", str(data.data_dir))
    assert run(["doctor"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert all(line.startswith("✓") for line in lines), out
    assert any("index" in line and "embedded" in line and "chunks" in line for line in lines)
    assert any("SQLite" in line and "audit.sqlite" in line for line in lines)
    assert any("local model" in line and ".gguf" in line for line in lines)
    assert any("embedding" in line and "384 dims" in line for line in lines)
    assert any(" ledger " in line and "ledger.sqlite" in line for line in lines)


def test_missing_ledger_is_named_but_not_required(data: Settings, tmp_path: Path, monkeypatch, capsys) -> None:
    from sovra.doctor import check_ledger

    sources = json.loads((data.data_dir / "sources.json").read_text())
    name = next(n for n, spec in sources.items() if spec.get("kind") == "ledger")
    sources[name]["path"] = str(tmp_path / "gone.sqlite")
    moved = Settings(data_dir=tmp_path / "d")
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "sources.json").write_text(json.dumps(sources))
    check = check_ledger(moved)
    assert not check.ok and not check.required
    assert check.line().startswith("! ledger") and "gone.sqlite (missing)" in check.line()
    assert f"sovra sync {name}" in check.line()


def test_empty_data_dir_says_what_is_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setenv("SOVRA_DATA_DIR", str(tmp_path / "nothing"))
    assert run(["doctor"]) == 1
    captured = capsys.readouterr()
    index = next(line for line in captured.out.splitlines() if " index " in line)
    assert index.startswith("✗") and "no index yet" in index and "hint: run `sovra demo`" in index
    assert "missing or unreachable: data dir, users, index" in captured.err
    assert not (tmp_path / "nothing").exists()  # the doctor looks, it does not create


def test_served_model_reachable(model_server: str, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, llm_base_url=model_server, llm_model="bank-7b", llm_api_key="right-key")
    check = check_model(settings)
    assert check.ok, check
    assert model_server in check.detail and "right-key" not in check.line()


def test_served_model_wrong_key_or_model(model_server: str, tmp_path: Path) -> None:
    wrong_key = check_model(Settings(data_dir=tmp_path, llm_base_url=model_server, llm_model="bank-7b"))
    assert not wrong_key.ok and "401" in wrong_key.detail and "SOVRA_LLM_API_KEY" in (wrong_key.hint or "")
    wrong_model = check_model(
        Settings(data_dir=tmp_path, llm_base_url=model_server, llm_model="bank-70b", llm_api_key="right-key")
    )
    assert not wrong_model.ok and "bank-7b" in wrong_model.detail and "SOVRA_LLM_MODEL" in (wrong_model.hint or "")


def test_unreachable_model_and_index(tmp_path: Path) -> None:
    port = _closed_port()
    model = check_model(Settings(data_dir=tmp_path, llm_base_url=f"http://127.0.0.1:{port}/v1"))
    assert not model.ok and f"127.0.0.1:{port}" in model.detail and "SOVRA_LLM_BASE_URL" in (model.hint or "")
    index = check_index(Settings(data_dir=tmp_path, qdrant_url=f"http://127.0.0.1:{port}"))
    assert not index.ok and f"Qdrant server http://127.0.0.1:{port}" in index.detail, index


@pytest.mark.skipif(not PG_URL, reason="SOVRA_TEST_POSTGRES_URL not set")
def test_postgres_store_reachable_password_masked(tmp_path: Path) -> None:
    assert PG_URL
    scheme, rest = PG_URL.split("://", 1)
    userinfo, host = rest.rsplit("@", 1) if "@" in rest else ("postgres", rest)
    user = userinfo.split(":", 1)[0]
    with_password = f"{scheme}://{user}:s3cret-pw@{host}"
    check = check_audit(Settings(data_dir=tmp_path, audit_url=with_password))
    line = check.line()
    assert check.ok or "password" in check.detail, line  # trust auth ignores the password
    assert "s3cret-pw" not in line and "PostgreSQL" in line and "***@" in line


def test_unreachable_postgres(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    url = f"postgresql+psycopg://sovra:s3cret-pw@127.0.0.1:{_closed_port()}/sovra"
    checks = {c.name: c for c in diagnose(Settings(data_dir=tmp_path, audit_url=url))}
    assert not checks["audit"].ok and not checks["runs"].ok
    assert "s3cret-pw" not in checks["audit"].line()
    monkeypatch.setenv("SOVRA_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SOVRA_AUDIT_URL", url)
    assert run(["doctor"]) == 1
    captured = capsys.readouterr()
    assert "s3cret-pw" not in captured.out + captured.err
    assert "audit" in captured.err


def test_ocr_line_says_what_reads_scans_and_what_is_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sovra.doctor import check_ocr

    settings = Settings(data_dir=tmp_path)
    monkeypatch.setattr("shutil.which", lambda name: None)
    line = check_ocr(settings)
    assert (line.ok, line.required) == (False, False)  # optional: scans are skipped and reported
    assert line.line() == (
        "! ocr        OCR not installed: scanned PDF pages are skipped "
        "(hint: apt-get install tesseract-ocr tesseract-ocr-fra tesseract-ocr-deu)"
    )
    monkeypatch.setenv("SOVRA_OCR", "off")
    assert check_ocr(settings).detail == "OCR is off (SOVRA_OCR=off): scanned PDF pages are skipped"
