"""`sovra serve --workers N`: refused with the embedded index; with two real uvicorn worker processes
sharing a PostgreSQL audit log and checkpoints, runs written by one worker are read, approved and
verified through the other.

No Qdrant server runs here, so the served agents are stubs that never touch the index
(``needs_index = False``); SOVRA_QDRANT_URL points at a closed port only to pass the start-up check.
What this proves is the worker plumbing (shared audit chain, checkpoints, run table), not Qdrant.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sovra.config import Settings
from sovra.errors import ConfigError

PG_URL = os.environ.get("SOVRA_TEST_POSTGRES_URL")
USERS = {
    "alice": {"name": "Alice", "groups": ["employees"]},
    "bob": {"name": "Bob", "groups": ["employees", "finance"]},
    "erin": {"name": "Erin", "groups": ["employees", "auditor"]},
}
TOKENS = {f"{u}-token-0123456789abcdef": u for u in USERS}
H = {u: {"Authorization": f"Bearer {t}"} for t, u in TOKENS.items()}
TESTS = Path(__file__).resolve().parents[1]


def test_several_workers_need_a_qdrant_server(tmp_path):
    from sovra.ui.api import check_workers

    with pytest.raises(ConfigError, match="embedded index admits one process"):
        check_workers(Settings(data_dir=tmp_path), 2)
    check_workers(Settings(data_dir=tmp_path), 1)
    check_workers(Settings(data_dir=tmp_path, qdrant_url="http://127.0.0.1:6333"), 4)
    env = {k: v for k, v in os.environ.items() if k != "SOVRA_QDRANT_URL"} | {"SOVRA_DATA_DIR": str(tmp_path)}
    sovra = Path(sys.executable).with_name("sovra")
    p = subprocess.run(
        [str(sovra), "serve", "--workers", "2", "--no-check-models"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 1, p
    assert "needs a Qdrant server" in p.stderr and "SOVRA_QDRANT_URL" in p.stderr
    assert "Traceback" not in p.stderr and p.stderr.startswith("error: --workers 2 needs a Qdrant server"), p.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory) -> Iterator[str]:
    if not PG_URL:
        pytest.skip("SOVRA_TEST_POSTGRES_URL is not set")
    data = tmp_path_factory.mktemp("api-workers")
    (data / "users.json").write_text(json.dumps(USERS))
    (data / "tokens.json").write_text(json.dumps(TOKENS))
    port = _free_port()
    env = os.environ | {
        "SOVRA_DATA_DIR": str(data),
        "SOVRA_API_TOKENS_FILE": str(data / "tokens.json"),
        "SOVRA_AUDIT_URL": PG_URL,
        "SOVRA_AUDIT_SCHEMA": (schema := f"api_workers_{uuid.uuid4().hex[:8]}"),
        "SOVRA_QDRANT_URL": "http://127.0.0.1:9",  # never contacted: the stub agents need no index
        "SOVRA_API_QUEUE_PER_USER": "64",  # this test floods two workers on purpose; admission has its own test
        "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
    }
    code = f"from sovra.ui.api import serve; serve(port={port}, workers=2, factory='fakes.api_workers_app:create')"
    log = (data / "server.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300  # spawned workers import the whole stack: slow on a busy machine
        # The workers start in their own time, and /health answers as soon as the first is up: wait
        # until both have logged their start-up (uvicorn writes one line per worker) and one answers.
        log_path = data / "server.log"
        while True:
            started = log_path.read_text(errors="replace").count("Application startup complete")
            try:
                if started >= 2 and httpx.get(f"{url}/health", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, (data / "server.log").read_text()
            assert time.monotonic() < deadline, (data / "server.log").read_text()
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        log.close()
        import psycopg

        with psycopg.connect("postgresql://" + PG_URL.split("://", 1)[1], autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


async def _ask_many(url: str, n: int, agent: str = "echo", text: str = "q") -> list[httpx.Response]:
    # One connection per request, so the kernel spreads them over both workers' accept queues.
    async def one(i: int) -> httpx.Response:
        async with httpx.AsyncClient(base_url=url, timeout=120) as c:
            who = ("alice", "bob")[i % 2]
            return await c.post("/v1/ask", json={"question": f"{text}{i}", "agent": agent}, headers=H[who])

    return await asyncio.gather(*(one(i) for i in range(n)))


def _worker(answer: str) -> str:
    return answer.split("worker ")[1].split(")")[0]


@pytest.mark.slow
def test_two_workers_share_one_audit_chain(two_workers):
    pids: set[str] = set()
    runs: list[dict] = []
    for _ in range(10):  # bounded: connections go to either worker; both must have served some
        rs = asyncio.run(_ask_many(two_workers, 24))
        assert all(r.status_code == 200 for r in rs), [r.text for r in rs if r.status_code != 200]
        runs += [r.json() for r in rs]
        pids |= {_worker(r.json()["answer"]) for r in rs}
        if len(pids) >= 2:
            break
    assert len(pids) == 2, f"every request went to one worker: {pids}"
    # Every run, whichever worker wrote it, is readable through any worker and the chain verifies.
    with httpx.Client(base_url=two_workers, timeout=60) as c:
        for run in runs[:10]:
            r = c.get(f"/v1/runs/{run['run_id']}", headers=H[run["user"]])
            assert r.status_code == 200 and r.json()["status"] == "answered", r.text
        listed = c.get("/v1/runs?owner=*&limit=200", headers=H["erin"]).json()["runs"]
        assert {r["run_id"] for r in runs} <= {r["run_id"] for r in listed}
        check = c.get(f"/v1/runs/{runs[0]['run_id']}/audit?verify=true", headers=H["erin"]).json()
        # Each echo run writes run.start, echo.plan and run.end.
        assert check["chain"]["ok"] is True and check["chain"]["checked"] >= 3 * len(runs), check["chain"]


@pytest.mark.slow
def test_a_run_paused_on_one_worker_is_approved_on_either(two_workers):
    rs = asyncio.run(_ask_many(two_workers, 8, agent="chat-test", text="pay invoice "))
    paused = [r.json() for r in rs]
    assert all(p["status"] == "awaiting_approval" for p in paused), paused
    with httpx.Client(base_url=two_workers, timeout=60) as c:
        for p in paused:  # new connections: the decision lands on either worker, the checkpoint is in PostgreSQL
            r = httpx.post(
                f"{two_workers}/v1/runs/{p['run_id']}/approval",
                json={"approved": True, "reason": "ok"},
                headers=H[p["user"]],
                timeout=60,
            )
            assert r.status_code == 200, r.text
            assert r.json()["answer"] == f"Invoice INV-7 payment approved by {p['user']}."
        check = c.get(f"/v1/runs/{paused[0]['run_id']}/audit?verify=true", headers=H["erin"]).json()
        assert check["chain"]["ok"] is True
