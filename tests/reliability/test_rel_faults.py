"""Dependency faults, end to end through the runtime: Qdrant unavailable, the model server down,
slow or answering garbage, and PostgreSQL restarted in the middle of a run.

Expectations: a clear ``SovraError`` naming the dependency (never a raw traceback or a hang),
a ``run.error`` record that keeps the audit chain valid, and the system working again once the
dependency is back.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest
from conftest import copy_demo_data
from fakes.openai_server import FakeOpenAI

from sovra.audit import AuditLog
from sovra.config import Settings
from sovra.errors import SovraError
from sovra.runtime import Runtime

pytestmark = pytest.mark.reliability


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again when the block ends: nothing listens there


@pytest.fixture(scope="module")
def data_dir(demo_settings, tmp_path_factory) -> Path:
    return copy_demo_data(demo_settings, tmp_path_factory.mktemp("faults") / "data")


def _ask(settings: Settings, question: str = "What is the hotel limit per night in London?", user: str = "alice"):
    from sovra.agents import get_agent

    rt = Runtime(settings)
    try:
        return rt.ask(get_agent("assistant"), question, user, interface="test")
    finally:
        rt.close()


def _last_run_errored(settings: Settings) -> None:
    with AuditLog(settings.paths.audit_db) as log:
        run = log.last_run_id()
        assert run is not None
        kinds = [r.kind for r in log.records(run)]
        assert kinds[-1] == "run.error", kinds
        assert log.verify().ok


def test_qdrant_server_unreachable_is_one_clear_error(data_dir):
    settings = Settings(data_dir=data_dir, qdrant_url=f"http://127.0.0.1:{_closed_port()}")
    with pytest.raises(SovraError) as info:
        _ask(settings)
    msg = str(info.value).lower()
    assert "qdrant" in msg and ("unreachable" in msg or "connect" in msg), msg


@pytest.mark.parametrize(
    ("replies", "expect"),
    [
        ([], "unreachable"),  # nothing listens
        ([(0, "")] * 4, "no answer within"),  # accepts, never answers
        ([(200, "<html>not json</html>")] * 6, "model"),  # answers garbage
        ([(500, "upstream exploded")] * 6, "model"),  # answers errors
    ],
    ids=["down", "hangs", "garbage", "errors"],
)
def test_model_server_faults_are_clear_errors_and_recorded(data_dir, tmp_path, replies, expect):
    fake = FakeOpenAI(replies) if replies else None
    url = fake.base_url if fake else f"http://127.0.0.1:{_closed_port()}/v1"
    data = tmp_path / "d"
    shutil.copytree(data_dir, data, ignore=shutil.ignore_patterns("*.lock"))
    settings = Settings(data_dir=data, llm_base_url=url, llm_model="nordbank-chat", llm_timeout_s=3)
    try:
        with pytest.raises(SovraError) as info:
            _ask(settings)
    finally:
        if fake:
            fake.close()
    assert expect in str(info.value).lower(), str(info.value)
    if fake:
        # Bounded retries: a dead or hanging server costs a few attempts, never an endless loop.
        assert 1 <= len(fake.requests) <= 4, len(fake.requests)
    _last_run_errored(settings)


# ---------------------------------------------------------------------------------------------
# PostgreSQL restarted mid-run: a private cluster, so the machine's server is left alone.

PG_BIN = (
    next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin"))), None)
    if Path("/usr/lib/postgresql").exists()
    else None
)


@pytest.fixture
def private_postgres():
    if PG_BIN is None or shutil.which("runuser") is None:
        pytest.skip("PostgreSQL server binaries (Debian postgresql package) are not installed")
    # Not under pytest's tmp dir: the postgres user cannot enter root's private folders.
    root = Path(tempfile.mkdtemp(prefix="sovra-pg-"))
    root.chmod(0o777)
    data = root / "data"
    port = _closed_port()
    as_pg = ["runuser", "-u", "postgres", "--"]

    def ctl(*args: str) -> None:
        subprocess.run(
            [*as_pg, str(PG_BIN / "pg_ctl"), "-D", str(data), "-w", "-t", "60", *args],
            check=True,
            capture_output=True,
        )

    subprocess.run(
        [*as_pg, str(PG_BIN / "initdb"), "-A", "trust", "-U", "postgres", "-D", str(data)],
        check=True,
        capture_output=True,
    )
    opts = f"-c port={port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={root} -c fsync=on"
    ctl("-o", opts, "-l", str(root / "log"), "start")
    try:
        yield (
            f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres",
            lambda: ctl("-o", opts, "-l", str(root / "log"), "-m", "fast", "restart"),
        )
    finally:
        subprocess.run(
            [*as_pg, str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"], capture_output=True
        )


def test_postgres_restart_mid_run_gives_clear_errors_then_recovers(private_postgres):
    url, restart = private_postgres
    log = AuditLog(url)
    try:
        for i in range(20):
            log.append("step", {"i": i}, run_id="before", user_id="u")
        restart()
        # The first write after a restart may find its pooled connection dead: it either succeeds
        # on a fresh connection or fails with one clear error; it never half-writes the chain.
        outcomes = []
        for i in range(5):
            try:
                log.append("step", {"i": i}, run_id="after", user_id="u")
                outcomes.append("ok")
            except SovraError as exc:
                assert "audit" in str(exc).lower(), str(exc)
                outcomes.append("error")
        assert outcomes[-1] == "ok", outcomes
        result = log.verify()
        assert result.ok, result.reason
        assert result.checked == 20 + outcomes.count("ok")
    finally:
        log.close()
