"""One data dir, every face at once, with the embedded defaults: `sovra serve` answers while
`sovra ingest` adds documents from another process, the new documents are searchable in the running
server without a restart, `--rebuild` refuses to delete the index under a running server, and a
kill -9 of the server loses nothing that was ingested."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.slow

SOVRA = str(Path(sys.executable).with_name("sovra"))
TOKEN = "alice-token-0123456789abcdef"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(data: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOVRA_")}
    return env | {
        "SOVRA_DATA_DIR": str(data),
        "SOVRA_API_TOKENS_FILE": str(data / "tokens.json"),
        "HF_HUB_OFFLINE": "1",
    }


def _sovra(data: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SOVRA, *args], env=_env(data), capture_output=True, text=True, timeout=timeout)


def _serve(data: Path, port: int) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [SOVRA, "serve", "--port", str(port), "--no-check-models"],
        env=_env(data),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        try:
            if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    proc.kill()
    raise AssertionError("sovra serve did not get ready")


def _titles(port: int, query: str) -> list[str]:
    r = httpx.post(
        f"http://127.0.0.1:{port}/v1/search",
        json={"query": query, "limit": 5},
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=60,
    )
    r.raise_for_status()
    return [h["title"] for h in r.json()["hits"]]


def test_the_server_answers_while_another_process_ingests_and_sees_the_new_documents(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "users.json").write_text(json.dumps({"alice": {"name": "Alice", "groups": ["employees"]}}))
    (data / "tokens.json").write_text(json.dumps({TOKEN: "alice"}))
    first, second = tmp_path / "handbook", tmp_path / "travel"
    first.mkdir()
    second.mkdir()
    (first / "remote-work.md").write_text(
        "# Remote work\n\nEmployees may work remotely up to three days per week with their manager's approval.\n"
    )
    (second / "hotel-limits.md").write_text(
        "# Hotel limits\n\nA hotel night on a business trip may cost at most EUR 180 in Frankfurt, EUR 150 elsewhere.\n"
    )
    p = _sovra(data, "ingest", str(first), "--acl", "group:employees")
    assert p.returncode == 0, p.stderr

    port = _free_port()
    server = _serve(data, port)
    try:
        assert "hotel-limits" not in _titles(port, "hotel night business trip")
        t0 = time.monotonic()
        p = _sovra(data, "ingest", str(second), "--acl", "group:employees")  # another process, same data dir
        assert p.returncode == 0, p.stderr
        assert _titles(port, "hotel night business trip")[0] == "hotel-limits"  # no restart
        print(f"ingest to searchable in the running server: {time.monotonic() - t0:.1f} s")

        p = _sovra(data, "ingest", "--rebuild")  # would delete the index under the server
        assert p.returncode != 0 and "needs the index to itself" in p.stderr, p.stderr
        assert "Traceback" not in p.stderr

        server.send_signal(signal.SIGKILL)
        server.wait(timeout=30)
        port = _free_port()
        server = _serve(data, port)
        assert _titles(port, "hotel night business trip")[0] == "hotel-limits"  # nothing lost
        assert _titles(port, "work remotely three days")[0] == "remote-work"
    finally:
        server.terminate()
        server.wait(timeout=60)
