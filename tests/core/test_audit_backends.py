"""The audit log's contract, run against both stores: SQLite (the default) and PostgreSQL.

Same tests, same assertions, one parametrised fixture: the PostgreSQL-backed mode must pass what
the SQLite mode passes (chain, tamper detection, append-only, concurrency, value encoding). The
postgres cases run when SOVRA_TEST_POSTGRES_URL is set (each test gets its own schema) and skip
otherwise; SQLite-only details (PRAGMAs, hypothesis sweeps over the file) stay in test_audit.py.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from sovra.audit import GENESIS_HASH, AuditLog, ChainHead, canonical_json, record_hash
from sovra.errors import AuditIntegrityError

PG_URL = os.environ.get("SOVRA_TEST_POSTGRES_URL", "")
N = 60


class Backend:
    """Opens logs on one store and gives raw SQL access with the append-only guard switched off."""

    def __init__(self, kind: str, tmp_path: Path) -> None:
        self.kind = kind
        self.schema = f"audit_parity_{uuid.uuid4().hex[:12]}"
        self.target: str | Path = PG_URL if kind == "postgres" else tmp_path / "audit.sqlite"

    def open(self) -> AuditLog:
        if self.kind == "postgres":
            return AuditLog(str(self.target), schema=self.schema)
        return AuditLog(self.target)

    def sql(self, log: AuditLog) -> Callable[..., Any]:
        """Run SQL written with ``?`` placeholders on the log's own connection."""
        conn = log._connect()

        def run(statement: str, params: tuple[Any, ...] = ()) -> Any:
            if self.kind == "postgres":
                statement = statement.replace("?", "%s")
            return conn.execute(statement, params)

        return run

    def drop_guard(self, log: AuditLog) -> None:
        """What anyone with write access to the database can do."""
        run = self.sql(log)
        if self.kind == "postgres":
            run("ALTER TABLE audit_records DISABLE TRIGGER audit_records_append_only")
        else:
            run("DROP TRIGGER audit_records_no_update")
            run("DROP TRIGGER audit_records_no_delete")

    def append_only_error(self) -> type[BaseException]:
        if self.kind == "postgres":
            import psycopg

            return psycopg.errors.RaiseException
        import sqlite3

        return sqlite3.IntegrityError

    def cleanup(self) -> None:
        if self.kind == "postgres":
            import psycopg

            with psycopg.connect(PG_URL.replace("+psycopg", ""), autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "postgres" and not PG_URL:
        pytest.skip("SOVRA_TEST_POSTGRES_URL is not set")
    b = Backend(request.param, tmp_path)
    yield b
    b.cleanup()


def fill(log: AuditLog, n: int = N) -> None:
    for i in range(n):
        log.append(
            "tool.search" if i % 3 else "plan",
            {"i": i, "query": f"question {i}", "scores": [i / 7, 1.5], "text": "Zürich €"},
            run_id=f"run-{i // 20}",
            user_id=None if i % 11 == 0 else f"user{i % 4}",
            trace_id=f"{i:032x}",
            span_id=f"{i:016x}",
        )


@pytest.fixture
def tampered(backend: Backend) -> Iterator[tuple[AuditLog, Callable[..., Any]]]:
    log = backend.open()
    fill(log)
    backend.drop_guard(log)
    yield log, backend.sql(log)
    log.close()


def row(sql: Callable[..., Any], seq: int) -> dict[str, Any]:
    cur = sql("SELECT * FROM audit_records WHERE seq = ?", (seq,))
    return dict(zip([c[0] for c in cur.description], cur.fetchone(), strict=True))


def test_chain_verifies_and_reads_back(backend: Backend) -> None:
    with backend.open() as log:
        assert log.verify().ok and log.verify().checked == 0
        fill(log)
        result = log.verify()
        assert result.ok and result.checked == N and result.first_bad_seq is None
        assert log.head().count == N
        recs = log.records("run-1")
        assert [r.seq for r in recs] == list(range(21, 41))
        assert recs[0].data["text"] == "Zürich €"
        assert recs[0].timestamp.tzinfo is not None
    first = backend.open().records("run-0")[0]
    assert first.prev_hash == GENESIS_HASH
    body = {k: getattr(first, k) for k in ("seq", "run_id", "ts", "kind", "user_id", "trace_id", "span_id")}
    assert first.hash == record_hash(**body, data=first.sealed, prev_hash=GENESIS_HASH)


def test_records_are_append_only_through_sql(backend: Backend) -> None:
    log = backend.open()
    fill(log, 3)
    sql = backend.sql(log)
    with pytest.raises(backend.append_only_error(), match="append-only"):
        sql("UPDATE audit_records SET kind = 'x' WHERE seq = 2")
    with pytest.raises(backend.append_only_error(), match="append-only"):
        sql("DELETE FROM audit_records WHERE seq = 3")
    assert log.verify().ok
    log.close()


@pytest.mark.parametrize(("seq", "field", "value"), [(7, "kind", "forged"), (30, "user_id", None), (1, "ts", "x")])
def test_altering_a_field_is_caught_at_that_record(tampered, seq: int, field: str, value: object) -> None:
    log, sql = tampered
    sql(f"UPDATE audit_records SET {field} = ? WHERE seq = ?", (value, seq))
    result = log.verify()
    assert (result.ok, result.first_bad_seq) == (False, seq), result.reason
    with pytest.raises(AuditIntegrityError):
        result.raise_for_error()


def test_altered_data_is_caught(tampered) -> None:
    log, sql = tampered
    sql("UPDATE audit_records SET data = ? WHERE seq = ?", (canonical_json({"i": 999}), 12))
    assert (log.verify().ok, log.verify().first_bad_seq) == (False, 12)


def test_deleting_a_middle_record_names_the_gap(tampered) -> None:
    log, sql = tampered
    sql("DELETE FROM audit_records WHERE seq = ?", (25,))
    result = log.verify()
    assert (result.ok, result.first_bad_seq) == (False, 25)
    assert result.reason == "record 25 is missing (seq gap 24 -> 26)"


def test_swapping_two_records_data_is_caught_at_the_first(tampered) -> None:
    log, sql = tampered
    d5, d9 = row(sql, 5)["data"], row(sql, 9)["data"]
    sql("UPDATE audit_records SET data = ? WHERE seq = ?", (d9, 5))
    sql("UPDATE audit_records SET data = ? WHERE seq = ?", (d5, 9))
    result = log.verify()
    assert (result.ok, result.first_bad_seq, result.reason) == (False, 5, "record 5 was altered")


def test_deleting_the_tail_is_caught_by_the_chain_head(tampered) -> None:
    log, sql = tampered
    sql("DELETE FROM audit_records WHERE seq > ?", (N - 3,))
    result = log.verify()
    assert (result.ok, result.first_bad_seq) == (False, N - 2)


def test_rehashed_record_breaks_the_link_to_the_next(tampered) -> None:
    log, sql = tampered
    old = row(sql, 10)
    data = {"forged": True}
    fields = {k: old[k] for k in ("seq", "run_id", "ts", "kind", "user_id", "trace_id", "span_id", "prev_hash")}
    forged = record_hash(**fields, data=data)
    sql("UPDATE audit_records SET data = ?, hash = ? WHERE seq = ?", (canonical_json(data), forged, 10))
    result = log.verify()
    assert (result.ok, result.first_bad_seq) == (False, 11)
    assert result.reason == "chain broken at 11: prev_hash does not match record 10"


def test_truncation_with_rewritten_head_needs_an_external_anchor(tampered) -> None:
    log, sql = tampered
    anchor = log.head()
    last_kept = row(sql, 40)
    sql("DELETE FROM audit_records WHERE seq > 40")
    sql("UPDATE chain_head SET count = 40, last_hash = ?", (last_kept["hash"],))
    assert log.verify().ok  # the documented limit: indistinguishable without an anchor
    assert (log.verify(anchor=anchor).ok, log.verify(anchor=anchor).first_bad_seq) == (False, 41)
    assert log.verify(anchor=ChainHead(30, str(row(sql, 30)["hash"]))).ok


def test_altered_head_is_caught(tampered) -> None:
    log, sql = tampered
    sql("UPDATE chain_head SET last_hash = ?", ("f" * 64,))
    assert (log.verify().ok, log.verify().first_bad_seq) == (False, N)
    sql("DELETE FROM chain_head")
    assert not log.verify().ok
    with pytest.raises(AuditIntegrityError, match="no chain head"):
        log.append("x", run_id="r")


def test_concurrent_appends_from_threads_keep_one_chain(backend: Backend) -> None:
    shared = backend.open()
    barrier = threading.Barrier(4)
    logs: list[AuditLog] = []

    def work(w: int) -> None:
        log = shared if w < 2 else backend.open()
        if log is not shared:
            logs.append(log)
        barrier.wait()
        for i in range(25):
            log.append("step", {"i": i}, run_id=f"t{w}")

    threads = [threading.Thread(target=work, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    result = shared.verify()
    assert result.ok and result.checked == 100, result.reason
    for w in range(4):
        assert [r.data["i"] for r in shared.records(f"t{w}")] == list(range(25))
    for log in [shared, *logs]:
        log.close()


def test_non_json_values_are_serialised(backend: Backend) -> None:
    log = backend.open()
    when = datetime(2025, 1, 2, 3, 4, 5, 6, tzinfo=UTC)
    rec = log.append(
        "x", {"when": when, "amount": Decimal("1234.50"), "raw": b"\x00\xff", "tags": {"b", "a"}}, run_id="r"
    )
    got = log.records("r")[0].data
    assert got == rec.data
    assert (got["when"], got["amount"], got["raw"], got["tags"]) == (
        when.isoformat(),
        "1234.50",
        {"base64": "AP8="},
        ["a", "b"],
    )
    assert log.verify().ok
    log.close()
