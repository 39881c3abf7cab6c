"""Conversations: a user's runs grouped by thread, with a title they may change and a delete that
hides a conversation from its owner's list and chat.

The runs and their thread come from the run table (:mod:`sovra.runs`); what a person adds on top
(a title, the deleted flag) lives in a small table of its own: SQLite at
``<data_dir>/conversations.sqlite`` by default, PostgreSQL when runs are kept there
(``SOVRA_CHECKPOINT_URL``, or the audit URL when that is a PostgreSQL one). The audit log is never
edited: a rename or delete is *appended* to it as a ``conversation.rename`` /
``conversation.delete`` record of the thread's first run (the new title is free text, so it is
sealed and erasable like every question).

Only the owner sees a conversation: every call names the user, and a conversation of another
user, a deleted one and one that never existed are refused with the same words.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sovra.audit import AuditLog
from sovra.config import Settings
from sovra.errors import InputError
from sovra.runs import RunRow, RunStore, postgres_url

MAX_TITLE_CHARS = 120
RENAME = "conversation.rename"
DELETE = "conversation.delete"

_DDL = """
CREATE TABLE IF NOT EXISTS sovra_conversations (
    thread_id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    title TEXT,
    deleted INTEGER NOT NULL DEFAULT 0,
    updated DOUBLE PRECISION NOT NULL
)"""
_INDEX = "CREATE INDEX IF NOT EXISTS sovra_conversations_user ON sovra_conversations (user_id)"


class ConversationNotFound(InputError):
    """No conversation of this user by that id (another user's and a deleted one read the same)."""


@dataclass(frozen=True)
class Conversation:
    thread_id: str
    title: str  # the owner's title, else the first question
    started: float
    updated: float  # the last question's time
    run_ids: tuple[str, ...]  # in the order asked
    questions: tuple[str, ...]
    renamed: bool = False

    def matches(self, query: str) -> bool:
        """Every word of ``query`` in the title or one of the questions (case-insensitive)."""
        hay = " ".join((self.title, *self.questions)).casefold()
        return all(w in hay for w in query.casefold().split())


class ConversationStore:
    """Title and deleted flag per thread (SQLite file or PostgreSQL)."""

    def __init__(self, settings: Settings) -> None:
        self.pg_url = postgres_url(settings)
        self._lock = threading.Lock()
        self.conn: Any
        if self.pg_url:
            import psycopg
            from psycopg.rows import dict_row

            self.conn = psycopg.Connection.connect(
                self.pg_url, autocommit=True, prepare_threshold=0, row_factory=dict_row
            )
            self._mark = "%s"
        else:
            settings.paths.root.mkdir(parents=True, exist_ok=True)
            self.conn = sqlite3.connect(
                settings.paths.root / "conversations.sqlite", check_same_thread=False, isolation_level=None
            )
            self.conn.execute("PRAGMA busy_timeout=10000")
            self.conn.execute("PRAGMA journal_mode=WAL")
            self._mark = "?"
        self._exec(_DDL)
        self._exec(_INDEX)

    def _exec(self, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        sql = sql.replace("?", self._mark)
        with self._lock:
            if self.pg_url:
                with self.conn.cursor() as cur:
                    cur.execute(sql, params)
                    return list(cur.fetchall()) if cur.description else []
            cur = self.conn.execute(sql, params)
            names = [c[0] for c in cur.description or ()]
            return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]

    def of_user(self, user_id: str) -> dict[str, dict[str, Any]]:
        """thread id -> {"title", "deleted"} of what ``user_id`` set."""
        rows = self._exec("SELECT thread_id, title, deleted FROM sovra_conversations WHERE user_id = ?", (user_id,))
        return {str(r["thread_id"]): {"title": r["title"], "deleted": bool(r["deleted"])} for r in rows}

    def _upsert(self, thread_id: str, user_id: str, column: str, value: Any) -> None:
        self._exec(
            f"INSERT INTO sovra_conversations (thread_id, user_id, {column}, updated) VALUES (?, ?, ?, ?) "
            f"ON CONFLICT (thread_id) DO UPDATE SET {column} = excluded.{column}, updated = excluded.updated",
            (thread_id, user_id, value, time.time()),
        )

    def set_title(self, thread_id: str, user_id: str, title: str) -> None:
        self._upsert(thread_id, user_id, "title", title)

    def set_deleted(self, thread_id: str, user_id: str) -> None:
        self._upsert(thread_id, user_id, "deleted", 1)

    def erase_subject(self, user_id: str) -> int:
        """Erasure (GDPR art. 17): the titles a user wrote go; deleted flags stay (no personal data)."""
        rows = self._exec(
            "SELECT thread_id FROM sovra_conversations WHERE user_id = ? AND title IS NOT NULL", (user_id,)
        )
        self._exec("UPDATE sovra_conversations SET title = NULL WHERE user_id = ?", (user_id,))
        if not self.pg_url:  # the bytes leave the file, not only the table
            with self._lock:
                self.conn.execute("VACUUM")
                self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return len(rows)

    def close(self) -> None:
        self.conn.close()


def erase_subject(settings: Settings, user_id: str) -> int:
    """The conversation titles ``user_id`` wrote, erased (``sovra audit erase --subject``, the console)."""
    store = ConversationStore(settings)
    try:
        return store.erase_subject(user_id)
    finally:
        store.close()


def group(runs: Iterable[RunRow], meta: dict[str, dict[str, Any]]) -> list[Conversation]:
    """Runs (any order) as conversations, newest first, deleted ones left out."""
    threads: dict[str, list[RunRow]] = {}
    for r in sorted(runs, key=lambda r: r.created):
        threads.setdefault(r.thread_id, []).append(r)
    out = []
    for thread_id, rows in threads.items():
        m = meta.get(thread_id, {})
        if m.get("deleted"):
            continue
        title = (m.get("title") or "").strip()
        out.append(
            Conversation(
                thread_id=thread_id,
                title=title or rows[0].question,
                started=rows[0].created,
                updated=rows[-1].created,
                run_ids=tuple(r.run_id for r in rows),
                questions=tuple(r.question for r in rows),
                renamed=bool(title),
            )
        )
    return sorted(out, key=lambda c: c.updated, reverse=True)


class Conversations:
    """A user's conversations: list and search, open, rename, delete (owner only)."""

    def __init__(self, runs: RunStore, store: ConversationStore, audit: AuditLog) -> None:
        self.runs = runs
        self.store = store
        self.audit = audit

    def list(self, user_id: str, query: str = "", limit: int = 50) -> list[Conversation]:
        """The user's conversations, newest first; with ``query``, those whose title or questions hold
        every word of it."""
        found = group(self.runs.user_runs(user_id), self.store.of_user(user_id))
        if query.strip():
            found = [c for c in found if c.matches(query)]
        return found[:limit]

    def get(self, user_id: str, thread_id: str) -> Conversation:
        """The user's conversation ``thread_id``; ConversationNotFound for anyone else's, a deleted one
        or an unknown id (the same words: an id reveals nothing about other users)."""
        rows = self.runs.thread_runs(thread_id) if thread_id else []
        if not rows or any(r.user_id != user_id for r in rows):
            raise self._not_found(thread_id)
        found = group(rows, self.store.of_user(user_id))
        if not found:  # deleted
            raise self._not_found(thread_id)
        return found[0]

    def rename(self, user_id: str, thread_id: str, title: str) -> Conversation:
        title = " ".join(title.split())
        if not title:
            raise InputError("The new title is empty: type a title first.")
        if len(title) > MAX_TITLE_CHARS:
            raise InputError(f"The title is {len(title)} characters long; the limit is {MAX_TITLE_CHARS}.")
        conv = self.get(user_id, thread_id)
        self.audit.append(RENAME, {"thread_id": thread_id, "text": title}, run_id=conv.run_ids[0], user_id=user_id)
        self.store.set_title(thread_id, user_id, title)
        return self.get(user_id, thread_id)

    def delete(self, user_id: str, thread_id: str) -> None:
        conv = self.get(user_id, thread_id)
        self.audit.append(DELETE, {"thread_id": thread_id}, run_id=conv.run_ids[0], user_id=user_id)
        self.store.set_deleted(thread_id, user_id)

    @staticmethod
    def _not_found(thread_id: str) -> ConversationNotFound:
        return ConversationNotFound(
            "This conversation is not available to you.",
            hint="it was deleted, or it is not one of your conversations; start a new one",
        )
