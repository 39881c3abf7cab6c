"""A searchable catalogue of runs, derived from the audit log: what the compliance console searches.

The audit log is the record; this is an index beside it (one SQLite file, ``<data_dir>/run-catalog.sqlite``)
that can be thrown away and rebuilt from the log at any time. :meth:`RunCatalog.refresh` reads the records
written since the last one it saw (:meth:`AuditLog.since`), so keeping it current costs one indexed read.
It never decides anything: the console opens, verifies and exports runs from the log itself.

It holds no personal content: run ids, times, user ids (which the chain itself keeps), agent, interface,
outcome, tool names, document ids and titles. Questions, answers and arguments stay sealed in the log, so an
erasure there leaves nothing here to erase, and a search by free text is a search by document, not by
what someone asked.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sovra.audit import RUN_END, RUN_ERROR, RUN_START, SYSTEM_RUN, AuditLog, AuditRecord

BATCH = 5000
# Record kinds that mean a user was refused something: a tool they lack the rights for, an approval
# someone refused, a question the guard stopped.
REFUSALS = frozenset({"tool.denied", "tool.refused", "security.refused", "guard.refused"})
# Tool kinds that are events about a tool, not a call of a tool named so.
_TOOL_EVENTS = {"tool.denied", "tool.refused", "tool.unknown"}
_FRAME = {RUN_START, RUN_END, RUN_ERROR, "run.resume", "run.paused", "run.thread"}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, user_id TEXT, started TEXT NOT NULL, day TEXT NOT NULL, agent TEXT,
    interface TEXT, outcome TEXT NOT NULL DEFAULT 'running', refused INTEGER NOT NULL DEFAULT 0,
    steps INTEGER NOT NULL DEFAULT 0, first_seq INTEGER NOT NULL, last_seq INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_started ON runs (started);
CREATE INDEX IF NOT EXISTS runs_user ON runs (user_id, started);
CREATE INDEX IF NOT EXISTS runs_agent ON runs (agent, started);
CREATE INDEX IF NOT EXISTS runs_outcome ON runs (outcome, started);
CREATE INDEX IF NOT EXISTS runs_day ON runs (day);
CREATE TABLE IF NOT EXISTS run_tools (run_id TEXT NOT NULL, tool TEXT NOT NULL, PRIMARY KEY (run_id, tool));
CREATE INDEX IF NOT EXISTS run_tools_tool ON run_tools (tool, run_id);
CREATE TABLE IF NOT EXISTS docs (doc_key INTEGER PRIMARY KEY, doc_id TEXT NOT NULL UNIQUE, title TEXT);
CREATE TABLE IF NOT EXISTS run_docs (
    run_id TEXT NOT NULL, doc_key INTEGER NOT NULL, cited INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (run_id, doc_key)
);
CREATE INDEX IF NOT EXISTS run_docs_doc ON run_docs (doc_key, run_id)
"""


@dataclass(frozen=True)
class RunQuery:
    """Filters, all optional and all required together. ``document``: a document id or words of its
    title (retrieved or cited by the run). ``outcome``: an answer status (answered, not_found, error,
    awaiting_approval, ...) or ``refused`` (the run holds a refusal). Dates are UTC days, inclusive."""

    user: str | None = None
    agent: str | None = None
    since: date | None = None
    until: date | None = None
    tool: str | None = None
    document: str | None = None
    outcome: str | None = None
    limit: int = 50
    offset: int = 0


@dataclass(frozen=True)
class RunEntry:
    run_id: str
    user_id: str | None
    started: str
    agent: str | None
    interface: str | None
    outcome: str
    refused: bool
    steps: int
    tools: tuple[str, ...] = ()


@dataclass(frozen=True)
class RunPage:
    entries: list[RunEntry]
    total: int


@dataclass
class Usage:
    """Usage over a period: questions per day, per agent, outcome rates, most cited documents."""

    runs: int
    per_day: list[tuple[str, int, int, int]]  # (day, runs, not found, refused)
    per_agent: list[tuple[str, int]]
    outcomes: dict[str, int]
    refused: int
    top_sources: list[tuple[str, str, int]]  # (doc_id, title, runs citing it)
    not_found_rate: float = field(init=False)
    refusal_rate: float = field(init=False)

    def __post_init__(self) -> None:
        self.not_found_rate = self.outcomes.get("not_found", 0) / self.runs if self.runs else 0.0
        self.refusal_rate = self.refused / self.runs if self.runs else 0.0


def _day(value: date | datetime) -> str:
    return (value.date() if isinstance(value, datetime) else value).isoformat()


class RunCatalog:
    """The catalogue of ``log`` in ``path``. ``agents``: run ids -> agent names for runs whose agent
    the log does not name (the run table knows it); thread-safe."""

    def __init__(
        self,
        log: AuditLog,
        path: Path | str,
        *,
        agents: Callable[[list[str]], dict[str, str]] | None = None,
    ) -> None:
        self.log = log
        self.path = Path(path)
        self._agents = agents
        self._lock = threading.RLock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode = WAL")
        self._conn.execute("PRAGMA synchronous = NORMAL")  # a cache: a lost tail is read again
        self._conn.executescript(_SCHEMA)
        if self._meta("audit") not in (None, log.location):
            self.rebuild()  # another log's catalogue (a moved data dir): start over
        self._set_meta("audit", log.location)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # -- upkeep ----------------------------------------------------------------------------

    def _meta(self, key: str) -> str | None:
        row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def _set_meta(self, key: str, value: str) -> None:
        self._conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    @property
    def last_seq(self) -> int:
        return int(self._meta("last_seq") or 0)

    def rebuild(self) -> None:
        with self._lock:
            for table in ("runs", "run_tools", "docs", "run_docs"):
                self._conn.execute(f"DELETE FROM {table}")
            self._set_meta("last_seq", "0")

    def refresh(self) -> int:
        """Read what the log gained since the last refresh; returns how many records were read."""
        with self._lock:
            if self.log.head().count < self.last_seq:
                self.rebuild()  # the log is shorter than what was read: another (restored) log
            read = 0
            while True:
                batch = self.log.since(self.last_seq, BATCH)
                if not batch:
                    break
                self._conn.execute("BEGIN")
                try:
                    self._add(batch)
                    self._set_meta("last_seq", str(batch[-1].seq))
                    self._conn.execute("COMMIT")
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    raise
                read += len(batch)
            if read:
                self._fill_agents()
            return read

    def _add(self, records: Iterable[AuditRecord]) -> None:
        ex = self._conn.execute
        for r in records:
            if r.run_id == SYSTEM_RUN:
                continue
            d: dict[str, Any] = r.data if isinstance(r.data, dict) else {}
            if r.kind == RUN_START:
                ex(
                    "INSERT OR IGNORE INTO runs (run_id, user_id, started, day, interface, first_seq, last_seq) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (r.run_id, r.user_id, r.ts, r.ts[:10], d.get("interface"), r.seq, r.seq),
                )
                continue
            # A record of a run whose start this catalogue never saw still makes it findable.
            ex(
                "INSERT OR IGNORE INTO runs (run_id, user_id, started, day, first_seq, last_seq) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (r.run_id, r.user_id, r.ts, r.ts[:10], r.seq, r.seq),
            )
            step = 0 if r.kind in _FRAME else 1
            ex("UPDATE runs SET last_seq = ?, steps = steps + ? WHERE run_id = ?", (r.seq, step, r.run_id))
            if r.kind == "run.thread" and d.get("agent"):
                ex("UPDATE runs SET agent = ? WHERE run_id = ?", (str(d["agent"]), r.run_id))
            elif r.kind.startswith("tool."):
                tool = str(d.get("tool") or "") if r.kind in _TOOL_EVENTS else r.kind.removeprefix("tool.")
                if tool:
                    ex("INSERT OR IGNORE INTO run_tools (run_id, tool) VALUES (?, ?)", (r.run_id, tool))
                result = d.get("result")
                hits = result.get("hits") if isinstance(result, dict) else None
                for h in hits if isinstance(hits, list) else []:
                    if isinstance(h, dict) and h.get("doc_id"):
                        self._doc(r.run_id, str(h["doc_id"]), h.get("title"), cited=False)
            elif r.kind == RUN_END:
                ans = d.get("answer")
                status = ans.get("status") if isinstance(ans, dict) else None
                ex("UPDATE runs SET outcome = ? WHERE run_id = ?", (str(status or "ended"), r.run_id))
                for c in d.get("citations") or []:
                    if isinstance(c, dict) and c.get("kind", "document") == "document" and c.get("chunk_id"):
                        self._doc(r.run_id, str(c["chunk_id"]).rsplit("#", 1)[0], c.get("title"), cited=True)
            elif r.kind == RUN_ERROR:
                ex("UPDATE runs SET outcome = 'error' WHERE run_id = ?", (r.run_id,))
            elif r.kind == "run.paused":
                ex("UPDATE runs SET outcome = 'awaiting_approval' WHERE run_id = ?", (r.run_id,))
            elif r.kind == "run.resume":
                ex("UPDATE runs SET outcome = 'running' WHERE run_id = ?", (r.run_id,))
            if r.kind in REFUSALS or (r.kind == "approval.decision" and d.get("approved") is False):
                ex("UPDATE runs SET refused = 1 WHERE run_id = ?", (r.run_id,))

    def _doc(self, run_id: str, doc_id: str, title: Any, *, cited: bool) -> None:
        ex = self._conn.execute
        ex(
            "INSERT OR IGNORE INTO docs (doc_id, title) VALUES (?, ?)",
            (doc_id, title if isinstance(title, str) else None),
        )
        if isinstance(title, str) and title:
            ex("UPDATE docs SET title = ? WHERE doc_id = ? AND title IS NULL", (title, doc_id))
        key = ex("SELECT doc_key FROM docs WHERE doc_id = ?", (doc_id,)).fetchone()[0]
        ex(
            "INSERT INTO run_docs (run_id, doc_key, cited) VALUES (?, ?, ?) "
            "ON CONFLICT (run_id, doc_key) DO UPDATE SET cited = MAX(cited, excluded.cited)",
            (run_id, key, int(cited)),
        )

    def _fill_agents(self) -> None:
        """Agents the log did not name, from the run table; a run that has ended and is still unknown
        there keeps '' so it is not asked about again."""
        missing = [r[0] for r in self._conn.execute("SELECT run_id FROM runs WHERE agent IS NULL")]
        if not missing:
            return
        found = self._agents(missing) if self._agents is not None else {}
        self._conn.execute("BEGIN")
        for run_id in missing:
            if run_id in found:
                self._conn.execute("UPDATE runs SET agent = ? WHERE run_id = ?", (found[run_id], run_id))
            else:
                self._conn.execute("UPDATE runs SET agent = '' WHERE run_id = ? AND outcome != 'running'", (run_id,))
        self._conn.execute("COMMIT")

    # -- reading ---------------------------------------------------------------------------

    def _where(self, q: RunQuery) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        if q.user:
            clauses.append("r.user_id = ?")
            params.append(q.user)
        if q.agent:
            clauses.append("r.agent = ?")
            params.append(q.agent)
        if q.since:
            clauses.append("r.started >= ?")
            params.append(_day(q.since))
        if q.until:
            clauses.append("r.day <= ?")
            params.append(_day(q.until))
        if q.outcome == "refused":
            clauses.append("r.refused = 1")
        elif q.outcome:
            clauses.append("r.outcome = ?")
            params.append(q.outcome)
        if q.tool:
            clauses.append("r.run_id IN (SELECT run_id FROM run_tools WHERE tool = ?)")
            params.append(q.tool)
        if q.document:
            text = q.document.strip()
            like = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            clauses.append(
                "r.run_id IN (SELECT rd.run_id FROM run_docs rd WHERE rd.doc_key IN "
                "(SELECT doc_key FROM docs WHERE doc_id = ? OR title LIKE ? ESCAPE '\\'))"
            )
            params += [text, like]
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", params

    def search(self, q: RunQuery, *, refresh: bool = True) -> RunPage:
        """Runs matching ``q``, newest first, and how many match in all."""
        if refresh:
            self.refresh()
        where, params = self._where(q)
        with self._lock:
            total = int(self._conn.execute(f"SELECT COUNT(*) FROM runs r{where}", params).fetchone()[0])
            rows = self._conn.execute(
                "SELECT r.run_id, r.user_id, r.started, r.agent, r.interface, r.outcome, r.refused, r.steps, "
                "(SELECT group_concat(tool, ' ') FROM run_tools t WHERE t.run_id = r.run_id) "
                f"FROM runs r{where} ORDER BY r.started DESC, r.first_seq DESC LIMIT ? OFFSET ?",
                [*params, max(1, min(q.limit, 500)), max(0, q.offset)],
            ).fetchall()
        entries = [
            RunEntry(a, b, c, d, e, f, bool(g), int(h), tuple(sorted((t or "").split())))
            for a, b, c, d, e, f, g, h, t in rows
        ]
        return RunPage(entries, total)

    def choices(self) -> dict[str, list[str]]:
        """The values the filters can take (users, agents, tools, outcomes), for pick lists."""
        with self._lock:
            ex = self._conn.execute
            return {
                "users": [r[0] for r in ex("SELECT DISTINCT user_id FROM runs WHERE user_id IS NOT NULL ORDER BY 1")],
                "agents": [r[0] for r in ex("SELECT DISTINCT agent FROM runs WHERE agent != '' ORDER BY 1")],
                "tools": [r[0] for r in ex("SELECT DISTINCT tool FROM run_tools ORDER BY 1")],
                "outcomes": [r[0] for r in ex("SELECT DISTINCT outcome FROM runs ORDER BY 1")],
            }

    def usage(self, since: date | None = None, until: date | None = None, *, top: int = 10) -> Usage:
        """Questions per day and per agent, outcome counts, refusals and the most cited documents."""
        self.refresh()
        where, params = self._where(RunQuery(since=since, until=until))
        with self._lock:
            ex = self._conn.execute
            per_day = [
                (str(d), int(n), int(nf), int(rf))
                for d, n, nf, rf in ex(
                    "SELECT r.day, COUNT(*), SUM(r.outcome = 'not_found'), SUM(r.refused) "
                    f"FROM runs r{where} GROUP BY r.day ORDER BY r.day",
                    params,
                )
            ]
            per_agent = [
                (str(a or "unknown"), int(n))
                for a, n in ex(f"SELECT r.agent, COUNT(*) FROM runs r{where} GROUP BY r.agent ORDER BY 2 DESC", params)
            ]
            outcomes = {
                str(o): int(n) for o, n in ex(f"SELECT r.outcome, COUNT(*) FROM runs r{where} GROUP BY 1", params)
            }
            refused = int(ex(f"SELECT COALESCE(SUM(r.refused), 0) FROM runs r{where}", params).fetchone()[0])
            top_sources = [
                (str(doc_id), str(title or doc_id), int(n))
                for doc_id, title, n in ex(
                    "SELECT d.doc_id, d.title, COUNT(*) FROM run_docs rd JOIN docs d ON d.doc_key = rd.doc_key "
                    f"JOIN runs r ON r.run_id = rd.run_id{where}{' AND' if where else ' WHERE'} rd.cited = 1 "
                    "GROUP BY d.doc_key ORDER BY 3 DESC, 1 LIMIT ?",
                    [*params, top],
                )
            ]
        return Usage(sum(n for _, n, _, _ in per_day), per_day, per_agent, outcomes, refused, top_sources)
