"""Where runs live between processes: LangGraph checkpoints and a small table of runs.

SQLite by default (``<data_dir>/checkpoints.sqlite``); PostgreSQL when ``SOVRA_CHECKPOINT_URL`` is a
postgres URL (or, unset, when the audit log is in PostgreSQL), through LangGraph's Postgres saver.
The run table maps a run to its checkpoint thread, agent, asking user, status and (when paused)
the approval it waits for, so ``sovra approve RUN_ID`` in a new process can find and continue it.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from sovra.config import Settings
from sovra.errors import ConfigError

_COLUMNS = (
    "run_id, thread_id, agent, user_id, interface, question, status, approval, "
    "steps, tokens, budget, pid, host, created, updated"
)
_DDL = """
CREATE TABLE IF NOT EXISTS sovra_runs (
    run_id TEXT PRIMARY KEY,
    thread_id TEXT NOT NULL,
    agent TEXT NOT NULL,
    user_id TEXT NOT NULL,
    interface TEXT NOT NULL,
    question TEXT NOT NULL,
    status TEXT NOT NULL,
    approval TEXT,
    steps INTEGER NOT NULL DEFAULT 0,
    tokens INTEGER NOT NULL DEFAULT 0,
    budget TEXT,
    pid INTEGER,
    host TEXT,
    created DOUBLE PRECISION NOT NULL,
    updated DOUBLE PRECISION NOT NULL
)"""
_INDEX = "CREATE INDEX IF NOT EXISTS sovra_runs_thread ON sovra_runs (thread_id, created)"
_SETUP_LOCK = 7460240  # PostgreSQL advisory lock key held while the tables are created (audit: 7460239)

# Statuses a run can end in; "running" and "awaiting_approval" are the live ones.
LIVE = ("running", "awaiting_approval")


@dataclass
class RunRow:
    run_id: str
    thread_id: str
    agent: str
    user_id: str
    interface: str
    question: str
    status: str
    approval: dict[str, Any] | None = None
    steps: int = 0
    tokens: int = 0
    budget: dict[str, Any] = field(default_factory=dict)
    pid: int | None = None
    host: str | None = None
    created: float = 0.0
    updated: float = 0.0

    def process_alive(self) -> bool:
        """Whether the process that last ran this run still exists (same host only)."""
        if self.pid is None or self.host != socket.gethostname():
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


def postgres_url(settings: Settings) -> str | None:
    """The PostgreSQL URL for checkpoints (psycopg form), or None for SQLite."""
    url = settings.checkpoint_url
    if url is None and settings.audit_url and settings.audit_url.startswith("postgres"):
        url = settings.audit_url
    if url is None:
        return None
    if not url.startswith("postgres"):
        raise ConfigError(f"SOVRA_CHECKPOINT_URL must be a postgresql:// URL, got {url.split(':', 1)[0]}://...")
    rest = url.split("://", 1)[1]
    return "postgresql://" + rest  # psycopg wants no SQLAlchemy driver suffix (postgresql+psycopg)


class RunStore:
    """The checkpointer and the run table on one connection (SQLite file or PostgreSQL)."""

    def __init__(self, settings: Settings) -> None:
        self.pg_url = postgres_url(settings)
        self._lock = threading.Lock()
        pg_url = self.pg_url
        if pg_url:
            import psycopg
            from langgraph.checkpoint.postgres import PostgresSaver
            from psycopg.rows import dict_row

            def connect() -> Any:
                return psycopg.Connection.connect(pg_url, autocommit=True, prepare_threshold=0, row_factory=dict_row)

            # The saver serializes its own use of its connection; the run table gets another one.
            self._saver_conn: Any = connect()
            self.conn: Any = connect()
            self.saver: Any = PostgresSaver(self._saver_conn)
            self._mark = "%s"
            # Workers of one deployment start together: concurrent CREATE TABLE IF NOT EXISTS on a
            # fresh database fails (duplicate pg_type row), so one process at a time creates the tables.
            # Polled, not waited for: the saver's migrations run CREATE INDEX CONCURRENTLY, which waits
            # for every open transaction, a blocked pg_advisory_lock() call included (a deadlock).
            deadline = time.monotonic() + 300
            while not self.conn.execute("SELECT pg_try_advisory_lock(%s) AS ok", (_SETUP_LOCK,)).fetchone()["ok"]:
                if time.monotonic() > deadline:
                    raise ConfigError("another process has held the checkpoint set-up lock for 5 minutes")
                time.sleep(0.1)
            try:
                self.saver.setup()
                self._exec(_DDL)
                self._exec(_INDEX)
            finally:
                self.conn.execute("SELECT pg_advisory_unlock(%s)", (_SETUP_LOCK,))
        else:
            from langgraph.checkpoint.sqlite import SqliteSaver

            path = settings.paths.checkpoints_db

            def connect_sqlite(autocommit: bool) -> sqlite3.Connection:
                # The saver commits its own transactions (one per put, not one per row).
                conn = sqlite3.connect(
                    path, check_same_thread=False, isolation_level=None if autocommit else "DEFERRED"
                )
                conn.execute("PRAGMA busy_timeout=10000")
                # WAL + synchronous=NORMAL: a commit is in the WAL file before it returns, so a killed
                # process (kill -9) loses nothing; only a power cut may lose the last few steps, which
                # are then run again on resume. FULL would fsync every step (~40 ms each on a busy disk).
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                return conn

            # The run table is read (cancel checks) while the saver writes: its own connection.
            self._saver_conn = connect_sqlite(autocommit=False)
            self.conn = connect_sqlite(autocommit=True)
            self.saver = SqliteSaver(self._saver_conn)
            self._mark = "?"
            self._exec(_DDL)
            self._exec(_INDEX)

    def _exec(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        sql = sql.replace("?", self._mark)
        if self.pg_url:
            with self._lock, self.conn.cursor() as cur:
                cur.execute(sql, params)
                return list(cur.fetchall()) if cur.description else []
        with self._lock:
            cur = self.conn.execute(sql, params)
            rows = cur.fetchall()
            return [dict(zip([c[0] for c in cur.description or ()], r, strict=True)) for r in rows]

    def create(self, row: RunRow) -> None:
        now = time.time()
        self._exec(
            f"INSERT INTO sovra_runs ({_COLUMNS}) VALUES ({', '.join('?' * 15)})",
            (
                row.run_id,
                row.thread_id,
                row.agent,
                row.user_id,
                row.interface,
                row.question,
                row.status,
                json.dumps(row.approval) if row.approval else None,
                row.steps,
                row.tokens,
                json.dumps(row.budget),
                os.getpid(),
                socket.gethostname(),
                now,
                now,
            ),
        )

    def update(self, run_id: str, **values: Any) -> None:
        if "approval" in values and values["approval"] is not None:
            values["approval"] = json.dumps(values["approval"])
        values["updated"] = time.time()
        sets = ", ".join(f"{k} = ?" for k in values)
        self._exec(f"UPDATE sovra_runs SET {sets} WHERE run_id = ?", (*values.values(), run_id))

    def transition(self, run_id: str, old: str, new: str) -> bool:
        """Move a run from status ``old`` to ``new``; False when it was not in ``old`` (someone was first)."""
        sql = "UPDATE sovra_runs SET status = ?, updated = ? WHERE run_id = ? AND status = ?".replace("?", self._mark)
        params = (new, time.time(), run_id, old)
        if self.pg_url:
            with self._lock, self.conn.cursor() as cur:
                cur.execute(sql, params)
                return bool(cur.rowcount == 1)
        with self._lock:
            return bool(self.conn.execute(sql, params).rowcount == 1)

    def claim(self, run_id: str) -> None:
        """Mark this process as the one running the run (for crash detection)."""
        self.update(run_id, pid=os.getpid(), host=socket.gethostname())

    def get(self, run_id: str) -> RunRow | None:
        rows = self._exec(f"SELECT {_COLUMNS} FROM sovra_runs WHERE run_id = ?", (run_id,))
        return _row(rows[0]) if rows else None

    def status(self, run_id: str) -> str | None:
        rows = self._exec("SELECT status FROM sovra_runs WHERE run_id = ?", (run_id,))
        return str(rows[0]["status"]) if rows else None

    def thread_runs(self, thread_id: str) -> list[RunRow]:
        rows = self._exec(f"SELECT {_COLUMNS} FROM sovra_runs WHERE thread_id = ? ORDER BY created", (thread_id,))
        return [_row(r) for r in rows]

    def user_runs(self, user_id: str, limit: int = 5000) -> list[RunRow]:
        """One user's most recent runs, newest first (their conversations are grouped from these)."""
        rows = self._exec(
            f"SELECT {_COLUMNS} FROM sovra_runs WHERE user_id = ? ORDER BY created DESC LIMIT ?", (user_id, limit)
        )
        return [_row(r) for r in rows]

    def pending(self, limit: int = 100) -> list[RunRow]:
        rows = self._exec(
            f"SELECT {_COLUMNS} FROM sovra_runs WHERE status = 'awaiting_approval' ORDER BY created LIMIT ?", (limit,)
        )
        return [_row(r) for r in rows]

    def erase_subject(self, user_id: str) -> dict[str, int]:
        """Erasure (GDPR art. 17) of one user's runs outside the audit log: their checkpoints (state
        and pending writes of every thread they ran) are deleted and the run rows keep only what
        runs need for bookkeeping (status, counts), never the question or approval arguments.
        Live runs (running, awaiting approval) are left alone: cancel them first."""
        rows = self._exec("SELECT run_id, thread_id, status FROM sovra_runs WHERE user_id = ?", (user_id,))
        ended = [r for r in rows if r["status"] not in LIVE]
        threads = sorted(
            {str(r["thread_id"]) for r in ended} - {str(r["thread_id"]) for r in rows if r["status"] in LIVE}
        )
        for thread_id in threads:
            self.saver.delete_thread(thread_id)
        for r in ended:
            self._exec("UPDATE sovra_runs SET question = '[erased]', approval = NULL WHERE run_id = ?", (r["run_id"],))
        if not self.pg_url:  # the bytes leave the files, not only the tables
            for conn in (self.conn, self._saver_conn):
                with self._lock:
                    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            with self._lock:
                self.conn.execute("VACUUM")
                self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return {"runs": len(ended), "threads": len(threads), "live_runs_kept": len(rows) - len(ended)}

    def close(self) -> None:
        self.conn.close()
        self._saver_conn.close()


def _row(r: dict[str, Any]) -> RunRow:
    return RunRow(
        run_id=r["run_id"],
        thread_id=r["thread_id"],
        agent=r["agent"],
        user_id=r["user_id"],
        interface=r["interface"],
        question=r["question"],
        status=r["status"],
        approval=json.loads(r["approval"]) if r["approval"] else None,
        steps=int(r["steps"]),
        tokens=int(r["tokens"]),
        budget=json.loads(r["budget"]) if r["budget"] else {},
        pid=r["pid"],
        host=r["host"],
        created=float(r["created"]),
        updated=float(r["updated"]),
    )
