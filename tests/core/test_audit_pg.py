"""The audit log on PostgreSQL: same chain, same checks, concurrent writers, erasure.

Runs only when SOVRA_TEST_POSTGRES_URL is set; each test gets its own schema.
"""

from __future__ import annotations

import multiprocessing
import os
import uuid
from collections.abc import Iterator

import pytest

from sovra.audit import AuditLog

URL = os.environ.get("SOVRA_TEST_POSTGRES_URL")
pytestmark = pytest.mark.skipif(not URL, reason="SOVRA_TEST_POSTGRES_URL is not set")


@pytest.fixture
def schema() -> Iterator[str]:
    name = f"audit_test_{uuid.uuid4().hex[:12]}"
    yield name
    import psycopg

    assert URL
    with psycopg.connect(URL.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


def _writer(schema: str, worker: int, barrier: object) -> None:
    assert URL
    log = AuditLog(URL, schema=schema)
    barrier.wait()  # type: ignore[attr-defined]
    for i in range(40):
        log.append("step", {"worker": worker, "i": i, "question": f"q{i}"}, run_id=f"w{worker}", user_id=f"u{worker}")
    log.close()


def test_chain_tamper_and_append_only_on_postgres(schema: str) -> None:
    assert URL
    import psycopg

    log = AuditLog(URL, schema=schema)
    for i in range(10):
        log.append("step", {"i": i, "question": f"secret {i}"}, run_id="r", user_id="alice")
    assert log.verify().ok and log.verify().checked == 10
    assert log.records("r")[3].data == {"i": 3, "question": "secret 3"}
    conn = log._connect()
    with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
        conn.execute("UPDATE audit_records SET kind = 'x' WHERE seq = 2")
    conn.execute("ALTER TABLE audit_records DISABLE TRIGGER audit_records_append_only")
    conn.execute("UPDATE audit_records SET data = replace(data, '\"i\":4', '\"i\":5') WHERE seq = 5")
    result = log.verify()
    assert not result.ok and result.first_bad_seq == 5
    conn.execute("UPDATE audit_records SET data = replace(data, '\"i\":5', '\"i\":4') WHERE seq = 5")
    conn.execute("DELETE FROM audit_records WHERE seq = 7")
    result = log.verify()
    assert not result.ok and result.first_bad_seq == 7 and "missing" in result.reason


def test_concurrent_writers_keep_one_chain_on_postgres(schema: str) -> None:
    assert URL
    AuditLog(URL, schema=schema).close()
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(4)
    procs = [ctx.Process(target=_writer, args=(schema, w, barrier)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0] * 4
    log = AuditLog(URL, schema=schema)
    result = log.verify()
    assert result.ok and result.checked == 160, result.reason
    assert [r.data["i"] for r in log.records("w2")] == list(range(40))


def test_erasure_on_postgres(schema: str) -> None:
    assert URL
    log = AuditLog(URL, schema=schema)
    log.append("run.start", {"question": "Quartermain's balance?"}, run_id="r1", user_id="alice")
    log.append("run.start", {"question": "hotel limit?"}, run_id="r2", user_id="bob")
    report = log.erase(subject="alice")
    assert report.erased == 1 and log.verify().ok
    assert log.records("r1")[0].data["question"] == "[erased]"
    rows = log._connect().execute("SELECT value FROM audit_content").fetchall()
    assert all("Quartermain" not in r[0] for r in rows) and len(rows) == 1
