"""Where the audit log lives: one SQLite file (default) or a PostgreSQL database.

The audit logic (chain, sealing, verification) is in :mod:`sovra.audit` and speaks one SQL dialect
with ``?`` placeholders; a store only supplies connections, the two kinds of transaction the log
needs and the schema. The one thing that must be right in both: a *write* transaction takes the
chain's write lock before it reads the head, so two writers never extend the same predecessor.
SQLite does that with ``BEGIN IMMEDIATE``; PostgreSQL with ``SELECT ... FOR UPDATE`` on the head row
(done by the caller, see :attr:`Store.lock_head`).
"""

from __future__ import annotations

import logging
import os
import re
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from sovra.errors import ConfigError

log = logging.getLogger(__name__)

BUSY_TIMEOUT_S = 30.0
GENESIS_HASH = "0" * 64

_SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit_records (
    seq INTEGER PRIMARY KEY, run_id TEXT NOT NULL, ts TEXT NOT NULL, kind TEXT NOT NULL,
    user_id TEXT, trace_id TEXT, span_id TEXT, data TEXT NOT NULL, prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_records_run_id ON audit_records(run_id);
CREATE TABLE IF NOT EXISTS chain_head (
    id INTEGER PRIMARY KEY CHECK (id = 1), count INTEGER NOT NULL, last_hash TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS audit_content (
    ref TEXT PRIMARY KEY, seq INTEGER NOT NULL, run_id TEXT NOT NULL, subject TEXT,
    ts TEXT NOT NULL, salt TEXT NOT NULL, value TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_content_subject ON audit_content(subject);
CREATE INDEX IF NOT EXISTS audit_content_run ON audit_content(run_id);
CREATE TABLE IF NOT EXISTS audit_signatures (seq INTEGER PRIMARY KEY, signature TEXT NOT NULL);
-- Guards against our own code (and careless tools) changing history. They are not a security
-- boundary: whoever can write the file can drop them. The hash chain is the real check.
CREATE TRIGGER IF NOT EXISTS audit_records_no_update BEFORE UPDATE ON audit_records
BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_records_no_delete BEFORE DELETE ON audit_records
BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END
"""

_PG_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit_records (
    seq BIGINT PRIMARY KEY, run_id TEXT NOT NULL, ts TEXT NOT NULL, kind TEXT NOT NULL,
    user_id TEXT, trace_id TEXT, span_id TEXT, data TEXT NOT NULL, prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_records_run_id ON audit_records(run_id);
CREATE TABLE IF NOT EXISTS chain_head (
    id INTEGER PRIMARY KEY CHECK (id = 1), count BIGINT NOT NULL, last_hash TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS audit_content (
    ref TEXT PRIMARY KEY, seq BIGINT NOT NULL, run_id TEXT NOT NULL, subject TEXT,
    ts TEXT NOT NULL, salt TEXT NOT NULL, value TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_content_subject ON audit_content(subject);
CREATE INDEX IF NOT EXISTS audit_content_run ON audit_content(run_id);
CREATE TABLE IF NOT EXISTS audit_signatures (seq BIGINT PRIMARY KEY, signature TEXT NOT NULL);
CREATE OR REPLACE FUNCTION sovra_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS
$$ BEGIN RAISE EXCEPTION 'audit records are append-only'; END $$;
CREATE OR REPLACE TRIGGER audit_records_append_only BEFORE UPDATE OR DELETE ON audit_records
FOR EACH ROW EXECUTE FUNCTION sovra_audit_append_only()
"""


class Exec(Protocol):
    def __call__(self, sql: str, params: tuple[Any, ...] = ...) -> Any: ...


class Store(Protocol):
    location: str
    errors: tuple[type[BaseException], ...]
    lock_head: str  # suffix for the head SELECT inside a write transaction

    def write(self) -> Any: ...  # context manager yielding Exec, one exclusive transaction

    def snapshot(self) -> Any: ...  # context manager yielding Exec, one consistent read

    def compact(self) -> None: ...  # after erasure: make deleted bytes unrecoverable from the store

    def close(self) -> None: ...


class SqliteStore:
    """One file; WAL + ``synchronous=FULL`` so a commit returns only once it is fsynced."""

    errors: tuple[type[BaseException], ...] = (sqlite3.Error,)
    lock_head = ""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.location = str(self.path)
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        self._pid = 0
        self.connect()

    def connect(self) -> sqlite3.Connection:
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
            conn.execute("PRAGMA secure_delete = ON")  # erased content is zeroed, not just unlinked
            conn.execute("BEGIN IMMEDIATE")
            try:
                for stmt in _SQLITE_SCHEMA.split(";\n"):
                    if stmt.strip():
                        conn.execute(stmt)
                conn.execute("INSERT OR IGNORE INTO chain_head (id, count, last_hash) SELECT 1, 0, ? "
                             "WHERE NOT EXISTS (SELECT 1 FROM audit_records)", (GENESIS_HASH,))  # fmt: skip
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

    @contextmanager
    def _tx(self, begin: str) -> Iterator[Exec]:
        with self._lock:
            conn = self.connect()
            conn.execute(begin)
            try:
                yield conn.execute  # type: ignore[misc]  # sqlite3's own signature is wider
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def write(self) -> Any:
        return self._tx("BEGIN IMMEDIATE")

    def snapshot(self) -> Any:
        return self._tx("BEGIN")

    def compact(self) -> None:
        with self._lock:
            conn = self.connect()
            conn.execute("VACUUM")
            # Old pages may still sit in the WAL; fold it in and cut the file to zero bytes.
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def close(self) -> None:
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None


class PostgresStore:
    """PostgreSQL through psycopg 3. Commits are durable with the server's default
    ``synchronous_commit = on``; ``schema`` keeps several logs (or test runs) apart."""

    lock_head = " FOR UPDATE"

    def __init__(self, url: str, schema: str | None = None) -> None:
        import psycopg

        self.errors = (psycopg.Error,)
        self.url = re.sub(r"^postgres(?:ql)?\+\w+://", "postgresql://", url)
        self.location = re.sub(r"://[^@/]*@", "://***@", self.url)  # never print a password
        if schema is not None and not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", schema):
            raise ConfigError(f"invalid audit schema name {schema!r}", hint="use lowercase letters, digits, _")
        self.schema = schema
        self._lock = threading.RLock()
        self._conn: Any = None
        self._pid = 0
        self.connect()

    def connect(self) -> Any:
        if self._conn is not None and self._pid == os.getpid() and not self._conn.closed:
            return self._conn
        import psycopg

        try:
            conn = psycopg.connect(self.url, autocommit=True)
            with conn.transaction():
                # Schema creation races between workers starting together; serialise it.
                conn.execute("SELECT pg_advisory_xact_lock(7460239)")
                if self.schema:
                    conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
                    conn.execute(f'SET search_path TO "{self.schema}"')
                for stmt in _PG_SCHEMA.split(";\n"):
                    if stmt.strip():
                        conn.execute(stmt)
                conn.execute(
                    "INSERT INTO chain_head (id, count, last_hash) SELECT 1, 0, %s "
                    "WHERE NOT EXISTS (SELECT 1 FROM audit_records) ON CONFLICT (id) DO NOTHING",
                    (GENESIS_HASH,),
                )
            if self.schema:
                conn.execute(f'SET search_path TO "{self.schema}"')
        except psycopg.Error as exc:
            raise ConfigError(
                f"cannot open the audit log {self.location}: {exc}",
                hint="check the PostgreSQL URL, that the server runs and that the user may create tables",
            ) from exc
        self._conn, self._pid = conn, os.getpid()
        return conn

    @contextmanager
    def _tx(self, isolation: str | None) -> Iterator[Exec]:
        with self._lock:
            conn = self.connect()
            with conn.transaction():
                if isolation:
                    conn.execute(f"SET TRANSACTION ISOLATION LEVEL {isolation}")

                def run(sql: str, params: tuple[Any, ...] = ()) -> Any:
                    return conn.execute(sql.replace("?", "%s"), params)

                yield run

    def write(self) -> Any:
        return self._tx(None)  # READ COMMITTED; the head row lock serialises writers

    def snapshot(self) -> Any:
        return self._tx("REPEATABLE READ")

    def compact(self) -> None:
        # VACUUM FULL rewrites the table into new files, so erased values leave the table's
        # files; they can survive in WAL segments and backups until those are recycled.
        with self._lock:
            self.connect().execute("VACUUM FULL audit_content")

    def close(self) -> None:
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None


def open_store(target: Path | str, schema: str | None = None) -> SqliteStore | PostgresStore:
    """A path (or ``sqlite:///path``) opens SQLite; a ``postgresql://`` URL opens PostgreSQL."""
    text = str(target)
    if re.match(r"^postgres(?:ql)?(?:\+\w+)?://", text):
        return PostgresStore(text, schema=schema)
    if text.startswith("sqlite:///"):
        text = text[len("sqlite:///") :]
    return SqliteStore(text)
