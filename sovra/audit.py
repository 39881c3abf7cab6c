"""The tamper-evident audit log: an append-only, hash-chained SQLite table.

Every record stores ``hash = sha256(canonical JSON of {seq, run_id, ts, kind, user_id, trace_id,
span_id, data, prev_hash})`` and ``prev_hash`` = the hash of the record before it (64 zeros for the
first). Changing, removing or reordering any record therefore breaks the chain at that record,
and :meth:`AuditLog.verify` names it.

What the chain cannot prove on its own: that nothing was cut off *the end*. A truncated chain is
still a valid chain. To catch that, a one-row ``chain_head`` table (record count + last hash) is
updated in the same transaction as every append, so deleting the last records is detected —
unless the attacker also rewrites the head (or rewrites the whole chain, recomputing every hash).
Only an anchor kept outside this database closes that gap: copy :meth:`AuditLog.head` somewhere
the attacker cannot write (WORM storage, a signed timestamp, another system's log) from time to
time and pass it to ``verify(anchor=...)``.

Durability: WAL + ``synchronous=FULL`` means :meth:`AuditLog.append` returns only after the record
is fsynced, so callers append *before* they make a step's effect visible.
"""

from __future__ import annotations

import base64
import dataclasses
import enum
import hashlib
import json
import logging
import os
import sqlite3
import threading
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal
from pathlib import Path, PurePath
from typing import Any

from sovra.errors import AuditIntegrityError, ConfigError, SovraError

log = logging.getLogger(__name__)

GENESIS_HASH = "0" * 64
BUSY_TIMEOUT_S = 30.0
# Kinds that frame a run rather than being one of its steps.
RUN_START, RUN_END, RUN_ERROR = "run.start", "run.end", "run.error"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit_records (
    seq       INTEGER PRIMARY KEY,
    run_id    TEXT NOT NULL,
    ts        TEXT NOT NULL,
    kind      TEXT NOT NULL,
    user_id   TEXT,
    trace_id  TEXT,
    span_id   TEXT,
    data      TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_records_run_id ON audit_records(run_id);
CREATE TABLE IF NOT EXISTS chain_head (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    count     INTEGER NOT NULL,
    last_hash TEXT NOT NULL
);
-- Guards against our own code (and careless tools) changing history. They are not a security
-- boundary: whoever can write the file can drop them. The hash chain is the real check.
CREATE TRIGGER IF NOT EXISTS audit_records_no_update BEFORE UPDATE ON audit_records
BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_records_no_delete BEFORE DELETE ON audit_records
BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END;
"""

_COLUMNS = "seq, run_id, ts, kind, user_id, trace_id, span_id, data, prev_hash, hash"


# ---------------------------------------------------------------------------------------------
# Canonical JSON


def _jsonable(obj: Any) -> Any:
    """``json.dumps(default=...)`` hook: turn common non-JSON values into JSON ones.

    Audit must never be the reason a step fails, so anything unknown falls back to ``repr``.
    """
    if hasattr(obj, "model_dump") and callable(obj.model_dump):  # pydantic v2 models
        return obj.model_dump(mode="json")
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    if isinstance(obj, datetime | date | time):
        return obj.isoformat()
    if isinstance(obj, PurePath):
        return str(obj)
    if isinstance(obj, uuid.UUID):
        return obj.hex
    if isinstance(obj, Decimal):
        return str(obj)  # keep amounts exact; a float would round them
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, set | frozenset):
        return sorted(obj, key=repr)
    if isinstance(obj, bytes | bytearray | memoryview):
        return {"base64": base64.b64encode(bytes(obj)).decode("ascii")}
    if isinstance(obj, BaseException):
        return {"type": type(obj).__name__, "message": str(obj)}
    if isinstance(obj, Mapping):
        return dict(obj)
    if isinstance(obj, Iterator | tuple | list):
        return list(obj)
    return repr(obj)


_NATIVE = (str, int, float, bool, type(None))


def _normalize(obj: Any) -> Any:
    """Deep-convert to plain JSON types with string keys, in one pass.

    One pass matters: a second attempt after ``json.dumps`` failed would see generators already
    consumed. json also refuses tuple keys and cannot sort mixed-type keys, hence ``str(k)``.
    """
    if isinstance(obj, _NATIVE):
        return obj
    if isinstance(obj, dict):
        return {k if isinstance(k, str) else str(k): _normalize(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_normalize(v) for v in obj]
    return _normalize(_jsonable(obj))


def canonical_json(value: Any) -> str:
    """The one serialisation the chain hashes: sorted keys, no spaces, UTF-8 kept as is."""
    return json.dumps(_normalize(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_jsonable)


def record_hash(
    *,
    seq: int,
    run_id: str,
    ts: str,
    kind: str,
    user_id: str | None,
    trace_id: str | None,
    span_id: str | None,
    data: Any,
    prev_hash: str,
) -> str:
    body = {
        "seq": seq,
        "run_id": run_id,
        "ts": ts,
        "kind": kind,
        "user_id": user_id,
        "trace_id": trace_id,
        "span_id": span_id,
        "data": data,
        "prev_hash": prev_hash,
    }
    return hashlib.sha256(canonical_json(body).encode("utf-8")).hexdigest()


def new_run_id() -> str:
    """A UUIDv7 (time-ordered: 48-bit Unix milliseconds + 74 random bits) as 32 hex chars.

    Time order makes run ids sort like the runs happened, which helps when reading logs.
    """
    ms = int(datetime.now(UTC).timestamp() * 1000) & ((1 << 48) - 1)
    rand_a = int.from_bytes(os.urandom(2), "big") & 0xFFF
    rand_b = int.from_bytes(os.urandom(8), "big") & ((1 << 62) - 1)
    value = (ms << 80) | (0x7 << 76) | (rand_a << 64) | (0b10 << 62) | rand_b
    return uuid.UUID(int=value).hex


# ---------------------------------------------------------------------------------------------
# Result types


@dataclass(frozen=True)
class AuditRecord:
    seq: int
    run_id: str
    ts: str  # UTC ISO-8601 with microseconds, exactly as hashed
    kind: str
    user_id: str | None
    trace_id: str | None
    span_id: str | None
    data: Any
    prev_hash: str
    hash: str

    @property
    def timestamp(self) -> datetime:
        return datetime.fromisoformat(self.ts)


@dataclass(frozen=True)
class ChainHead:
    """Number of records and hash of the last one: what an external anchor should keep."""

    count: int
    last_hash: str


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    checked: int
    first_bad_seq: int | None = None
    reason: str = "chain verifies"

    def raise_for_error(self) -> None:
        if not self.ok:
            raise AuditIntegrityError(
                f"audit log does not verify: {self.reason}",
                hint="keep the file for investigation; restore from backup to continue",
            )


@dataclass(frozen=True)
class RunSummary:
    run_id: str
    user_id: str | None
    started: datetime
    question: str | None
    steps: int
    status: str  # "ok", "error" or "running" (no run.end / run.error yet)


# ---------------------------------------------------------------------------------------------
# The store


class AuditLog:
    """Append-only audit store in one SQLite file. Safe to share between threads; every process
    (and every thread, if it likes) may open its own instance on the same file."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._pid = 0
        with self._lock:
            self._connect()

    # -- connection ------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        # A connection must not cross fork(): a child re-opens its own.
        if self._conn is not None and self._pid == os.getpid():
            return self._conn
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # isolation_level=None: we issue BEGIN ourselves, so each append is exactly one
            # transaction that starts by taking the write lock.
            conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("BEGIN IMMEDIATE")
            try:
                for stmt in _SCHEMA.split(";\n"):
                    if stmt.strip():
                        conn.execute(stmt)
                empty = conn.execute("SELECT 1 FROM audit_records LIMIT 1").fetchone() is None
                if empty:
                    conn.execute(
                        "INSERT OR IGNORE INTO chain_head (id, count, last_hash) VALUES (1, 0, ?)",
                        (GENESIS_HASH,),
                    )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise ConfigError(
                f"cannot open the audit log {self.path}: {exc}",
                hint="check that the folder exists and is writable, or set SOVRA_DATA_DIR",
            ) from exc
        self._conn, self._pid = conn, os.getpid()
        return conn

    def close(self) -> None:
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing ---------------------------------------------------------------------------

    def append(
        self,
        kind: str,
        data: Any = None,
        *,
        run_id: str,
        user_id: str | None = None,
        trace_id: str | None = None,
        span_id: str | None = None,
    ) -> AuditRecord:
        """Append one record and return it once it is on disk (fsynced)."""
        data_text = canonical_json({} if data is None else data)
        parsed = json.loads(data_text)  # hash what readers will see, not the Python object
        with self._lock:
            conn = self._connect()
            try:
                # Write lock first, then read the head: two writers can never both extend the
                # same predecessor.
                conn.execute("BEGIN IMMEDIATE")
                try:
                    head = conn.execute("SELECT count, last_hash FROM chain_head WHERE id = 1").fetchone()
                    if head is None:
                        raise AuditIntegrityError(
                            f"the audit log {self.path} has records but no chain head",
                            hint="someone edited the file; run `sovra audit verify` and investigate",
                        )
                    seq, prev_hash = int(head[0]) + 1, str(head[1])
                    ts = datetime.now(UTC).isoformat(timespec="microseconds")
                    digest = record_hash(
                        seq=seq, run_id=run_id, ts=ts, kind=kind, user_id=user_id,
                        trace_id=trace_id, span_id=span_id, data=parsed, prev_hash=prev_hash,
                    )  # fmt: skip
                    conn.execute(
                        f"INSERT INTO audit_records ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (seq, run_id, ts, kind, user_id, trace_id, span_id, data_text, prev_hash, digest),
                    )
                    conn.execute("UPDATE chain_head SET count = ?, last_hash = ? WHERE id = 1", (seq, digest))
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise SovraError(
                    f"could not write to the audit log {self.path}: {exc}",
                    hint="check free disk space and file permissions; the step was not recorded",
                ) from exc
        log.debug("audit %s seq=%d run=%s", kind, seq, run_id)
        return AuditRecord(seq, run_id, ts, kind, user_id, trace_id, span_id, parsed, prev_hash, digest)

    # -- reading ---------------------------------------------------------------------------

    def _query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._connect().execute(sql, params).fetchall()

    @staticmethod
    def _record(row: tuple[Any, ...]) -> AuditRecord:
        seq, run_id, ts, kind, user_id, trace_id, span_id, data, prev_hash, digest = row
        return AuditRecord(seq, run_id, ts, kind, user_id, trace_id, span_id, json.loads(data), prev_hash, digest)

    def records(self, run_id: str) -> list[AuditRecord]:
        """All records of one run, in the order they were written."""
        rows = self._query(f"SELECT {_COLUMNS} FROM audit_records WHERE run_id = ? ORDER BY seq", (run_id,))
        return [self._record(r) for r in rows]

    def runs(self, user_id: str | None = None, limit: int = 20) -> list[RunSummary]:
        """The most recent runs first, optionally only one user's."""
        where, params = ("AND s.user_id = ?", (user_id,)) if user_id is not None else ("", ())
        rows = self._query(
            f"""
            SELECT s.run_id, s.user_id, s.ts, s.data,
                (SELECT COUNT(*) FROM audit_records r WHERE r.run_id = s.run_id
                    AND r.kind NOT IN ('{RUN_START}', '{RUN_END}', '{RUN_ERROR}')),
                (SELECT r.kind FROM audit_records r WHERE r.run_id = s.run_id
                    AND r.kind IN ('{RUN_END}', '{RUN_ERROR}') ORDER BY r.seq DESC LIMIT 1)
            FROM audit_records s WHERE s.kind = '{RUN_START}' {where}
            ORDER BY s.seq DESC LIMIT ?""",
            (*params, limit),
        )
        status = {RUN_END: "ok", RUN_ERROR: "error", None: "running"}
        out = []
        for run_id, uid, ts, data, steps, end_kind in rows:
            question = json.loads(data).get("question") if data else None
            out.append(RunSummary(run_id, uid, datetime.fromisoformat(ts), question, steps, status[end_kind]))
        return out

    def last_run_id(self) -> str | None:
        rows = self._query(f"SELECT run_id FROM audit_records WHERE kind = '{RUN_START}' ORDER BY seq DESC LIMIT 1")
        return str(rows[0][0]) if rows else None

    def head(self) -> ChainHead:
        """The current head; store it outside this file to make later truncation detectable."""
        rows = self._query("SELECT count, last_hash FROM chain_head WHERE id = 1")
        if not rows:
            raise AuditIntegrityError(f"the audit log {self.path} has no chain head")
        return ChainHead(int(rows[0][0]), str(rows[0][1]))

    # -- verification ----------------------------------------------------------------------

    def verify(self, anchor: ChainHead | None = None) -> VerifyResult:
        """Walk the whole chain and report the first record that does not check out.

        ``anchor`` is a :class:`ChainHead` taken earlier and kept elsewhere; when given, the
        record at ``anchor.count`` must still carry ``anchor.last_hash``.
        """
        with self._lock:
            conn = self._connect()
            conn.execute("BEGIN")  # one snapshot for the records and the head
            try:
                head_row = conn.execute("SELECT count, last_hash FROM chain_head WHERE id = 1").fetchone()
                cursor = conn.execute(f"SELECT {_COLUMNS} FROM audit_records ORDER BY seq")
                return _walk(cursor, head_row, anchor)
            finally:
                conn.execute("COMMIT")


def _walk(
    rows: Iterator[tuple[Any, ...]] | sqlite3.Cursor,
    head_row: tuple[Any, ...] | None,
    anchor: ChainHead | None,
) -> VerifyResult:
    expected, prev_hash, checked = 1, GENESIS_HASH, 0
    anchor_seen = anchor is None or anchor.count == 0

    def bad(seq: int, reason: str) -> VerifyResult:
        return VerifyResult(ok=False, checked=checked, first_bad_seq=seq, reason=reason)

    for seq, run_id, ts, kind, user_id, trace_id, span_id, data_text, stored_prev, stored_hash in rows:
        if not isinstance(seq, int) or seq < expected:
            return bad(expected, f"record {seq!r} is out of place (expected seq {expected})")
        if seq > expected:
            return bad(expected, f"record {expected} is missing (seq gap {expected - 1} -> {seq})")
        try:
            data = json.loads(data_text)
            canonical = canonical_json(data) == data_text
        except (TypeError, ValueError):
            canonical = False
        if not canonical:
            return bad(seq, f"record {seq} was altered (data is not the canonical JSON that was hashed)")
        digest = record_hash(
            seq=seq, run_id=run_id, ts=ts, kind=kind, user_id=user_id,
            trace_id=trace_id, span_id=span_id, data=data, prev_hash=stored_prev,
        )  # fmt: skip
        if digest != stored_hash:
            return bad(seq, f"record {seq} was altered")
        if stored_prev != prev_hash:
            return bad(seq, f"chain broken at {seq}: prev_hash does not match record {seq - 1}")
        if anchor is not None and seq == anchor.count:
            if stored_hash != anchor.last_hash:
                return bad(seq, f"record {seq} does not match the external anchor")
            anchor_seen = True
        checked += 1
        expected, prev_hash = seq + 1, stored_hash

    last = expected - 1
    if head_row is None:
        if checked:
            return bad(last, "the chain head is missing, so deleted tail records cannot be ruled out")
    else:
        count, head_hash = int(head_row[0]), str(head_row[1])
        if count > last:
            return bad(last + 1, f"record {last + 1} is missing: the chain head says {count} records, found {last}")
        if count < last or head_hash != prev_hash:
            return bad(last, f"the chain head does not match record {last} (head altered)")
    if not anchor_seen:
        assert anchor is not None
        return bad(last + 1, f"record {last + 1} is missing: the external anchor says {anchor.count} records")
    return VerifyResult(ok=True, checked=checked)
