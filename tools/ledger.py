"""The typed, allow-listed ledger query that agents call for figures.

The model never writes SQL: it picks one of a few query kinds and fills typed filters, which
become bound parameters of fixed statements. Connections are read-only (SQLite: ``mode=ro`` and
``PRAGMA query_only``; PostgreSQL: ``SET TRANSACTION READ ONLY``) and every statement runs
under a time limit. The same code runs on SQLite and PostgreSQL through SQLAlchemy.

Conventions: an entry's ``amount`` is ``debit - credit``; amount filters compare its absolute
value ("entries over 10,000" means magnitude); ``total`` sums ``amount`` over *all* matching
entries, not only the rows returned.
"""

from __future__ import annotations

import difflib
import functools
import logging
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy import text as sql
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError

from sovra.errors import ConfigError, InputError, SovraError

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 10.0
SOURCE_TABLE = "journal_entries"


class LedgerQuery(BaseModel):
    """What the agent asks for. ``counterparty`` is an id (CP-001) or part of a name."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    kind: Literal["payments_to_counterparty", "account_balance", "entries_by_amount"]
    counterparty: str | None = None
    account_code: str | None = None
    date_from: date | None = None
    date_to: date | None = None
    min_amount: float | None = Field(default=None, ge=0)
    max_amount: float | None = Field(default=None, ge=0)
    limit: int = Field(default=50, ge=1, le=500)

    @model_validator(mode="after")
    def _check(self) -> LedgerQuery:
        if self.kind == "payments_to_counterparty" and not self.counterparty:
            raise ValueError("payments_to_counterparty needs a counterparty (id or name)")
        if self.kind == "account_balance" and not self.account_code:
            raise ValueError("account_balance needs an account_code")
        if self.date_from and self.date_to and self.date_from > self.date_to:
            raise ValueError("date_from is after date_to")
        if self.min_amount is not None and self.max_amount is not None and self.min_amount > self.max_amount:
            raise ValueError("min_amount is greater than max_amount")
        return self


class LedgerRow(BaseModel):
    """One journal entry; ``table`` + ``key`` cite it."""

    table: str
    key: str
    entry_date: date
    description: str
    amount: float
    counterparty: str | None
    account_code: str
    reference: str | None
    currency: str | None = None


class LedgerResult(BaseModel):
    query: LedgerQuery
    rows: list[LedgerRow]
    total: float  # sum of debit - credit over all matching entries
    row_count: int  # rows returned (at most query.limit)
    matched: int  # entries matching the filters, including those beyond the limit
    truncated: bool
    resolved_counterparty: str | None  # the counterparty name the query was narrowed to
    resolved_counterparty_id: str | None = None


# --- engine -------------------------------------------------------------------------------


@functools.lru_cache(maxsize=16)
def ledger_engine(db_url: str) -> Engine:
    """A read-only engine for ``db_url`` (``sqlite:///path`` or a PostgreSQL URL)."""
    url = make_url(db_url)
    backend = url.get_backend_name()
    if backend == "sqlite":
        if not url.database or url.database == ":memory:":
            raise ConfigError(f"ledger URL {db_url!r} names no database file")
        path = Path(url.database)
        if not path.is_file():
            raise ConfigError(f"ledger database {path} does not exist", hint="check the ledger URL")
        # uri=true makes sqlite3 open the file URI; mode=ro refuses writes at the file level.
        url = url.set(database=path.resolve().as_uri(), query={"mode": "ro", "uri": "true"})
        engine = create_engine(url)
        event.listen(engine, "checkout", _sqlite_on_checkout)
    elif backend == "postgresql":
        engine = create_engine(url, pool_pre_ping=True)
        event.listen(engine, "begin", _postgres_on_begin)
    else:
        raise ConfigError(f"unsupported ledger database {backend!r}", hint="use SQLite or PostgreSQL")
    return engine


def _sqlite_on_checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    # A second guard besides mode=ro, re-armed on every checkout so that a pooled connection
    # on which someone switched it off does not stay writable.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA query_only = ON")
    cursor.close()


def _postgres_on_begin(conn: Connection) -> None:
    # Must be the first statements of every transaction: afterwards writes fail and a runaway
    # query is cancelled by the server.
    conn.exec_driver_sql("SET TRANSACTION READ ONLY")
    conn.exec_driver_sql(f"SET LOCAL statement_timeout = {int(DEFAULT_TIMEOUT_S * 1000)}")


@contextmanager
def _connection(db_url: str, timeout_s: float) -> Iterator[Connection]:
    engine = ledger_engine(db_url)
    try:
        with engine.connect() as conn:
            if engine.dialect.name == "sqlite":
                # SQLite has no statement timeout; a progress handler aborts the statement
                # (sqlite3 raises "interrupted") once the deadline has passed.
                raw: Any = conn.connection.driver_connection
                deadline = time.monotonic() + timeout_s
                raw.set_progress_handler(lambda: int(time.monotonic() > deadline), 1000)
            elif engine.dialect.name == "postgresql":
                conn.exec_driver_sql(f"SET LOCAL statement_timeout = {max(1, int(timeout_s * 1000))}")
            try:
                yield conn
            finally:
                if engine.dialect.name == "sqlite":
                    raw.set_progress_handler(None, 0)
                conn.rollback()
    except OperationalError as exc:
        if _is_timeout(exc):
            raise SovraError(
                f"the ledger query took longer than {timeout_s:g}s and was stopped",
                hint="narrow the date range or the counterparty",
            ) from exc
        raise ConfigError(f"cannot query the ledger ({exc.orig})", hint="check the ledger URL") from exc
    except DBAPIError as exc:
        if _is_timeout(exc):
            raise SovraError(f"the ledger query took longer than {timeout_s:g}s and was stopped") from exc
        raise


def _is_timeout(exc: SQLAlchemyError) -> bool:
    message = str(getattr(exc, "orig", exc)).lower()
    return "interrupted" in message or "statement timeout" in message


# --- queries ------------------------------------------------------------------------------

_SELECT = """SELECT je.entry_id, je.entry_date, je.description, je.debit, je.credit, je.currency,
       je.account_code, je.reference, cp.name AS counterparty
FROM journal_entries je LEFT JOIN counterparties cp ON cp.counterparty_id = je.counterparty_id"""
_AGGREGATE = """SELECT COUNT(*) AS n, COALESCE(SUM(COALESCE(je.debit, 0) - COALESCE(je.credit, 0)), 0) AS total
FROM journal_entries je"""
_AMOUNT = "ABS(COALESCE(je.debit, 0) - COALESCE(je.credit, 0))"
_ORDER = {
    "payments_to_counterparty": "je.entry_date, je.entry_id",
    "account_balance": "je.entry_date, je.entry_id",
    "entries_by_amount": f"{_AMOUNT} DESC, je.entry_date, je.entry_id",
}


def query_ledger(db_url: str, q: LedgerQuery, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> LedgerResult:
    """Run an allow-listed ledger query. Unknown counterparties/accounts raise ``InputError``
    with a hint naming close matches."""
    with _connection(db_url, timeout_s) as conn:
        where: list[str] = []
        params: dict[str, Any] = {}
        cp_id = cp_name = None
        if q.counterparty:
            cp_id, cp_name = _resolve_counterparty(conn, q.counterparty)
            where.append("je.counterparty_id = :cp_id")
            params["cp_id"] = cp_id
        if q.account_code:
            _check_account(conn, q.account_code)
            where.append("je.account_code = :account_code")
            params["account_code"] = q.account_code
        # ISO strings compare correctly against SQLite TEXT dates and cast to PostgreSQL DATE.
        if q.date_from:
            where.append("je.entry_date >= :date_from")
            params["date_from"] = q.date_from.isoformat()
        if q.date_to:
            where.append("je.entry_date <= :date_to")
            params["date_to"] = q.date_to.isoformat()
        if q.min_amount is not None:
            where.append(f"{_AMOUNT} >= :min_amount")
            params["min_amount"] = q.min_amount
        if q.max_amount is not None:
            where.append(f"{_AMOUNT} <= :max_amount")
            params["max_amount"] = q.max_amount
        clause = f" WHERE {' AND '.join(where)}" if where else ""

        fetched = conn.execute(
            sql(f"{_SELECT}{clause} ORDER BY {_ORDER[q.kind]} LIMIT :limit"),
            {**params, "limit": q.limit + 1},
        ).all()
        agg = conn.execute(sql(f"{_AGGREGATE}{clause}"), params).one()

    rows = [
        LedgerRow(
            table=SOURCE_TABLE,
            key=str(r.entry_id),
            entry_date=r.entry_date,
            description=r.description or "",
            amount=round(float(r.debit or 0) - float(r.credit or 0), 2),
            counterparty=r.counterparty,
            account_code=str(r.account_code),
            reference=r.reference,
            currency=r.currency,
        )
        for r in fetched[: q.limit]
    ]
    return LedgerResult(
        query=q,
        rows=rows,
        total=round(float(agg.total), 2),
        row_count=len(rows),
        matched=int(agg.n),
        truncated=len(fetched) > q.limit,
        resolved_counterparty=cp_name,
        resolved_counterparty_id=cp_id,
    )


def _resolve_counterparty(conn: Connection, wanted: str) -> tuple[str, str]:
    exact = conn.execute(
        sql("SELECT counterparty_id, name FROM counterparties WHERE LOWER(counterparty_id) = LOWER(:v)"),
        {"v": wanted},
    ).all()
    if exact:
        return exact[0].counterparty_id, exact[0].name
    pattern = "%" + re.sub(r"([\\%_])", r"\\\1", wanted.lower()) + "%"
    matches = conn.execute(
        sql("SELECT counterparty_id, name FROM counterparties WHERE LOWER(name) LIKE :p ESCAPE '\\' ORDER BY name"),
        {"p": pattern},
    ).all()
    everyone = None
    if not matches:
        # SQL LOWER() folds only ASCII in SQLite; compare case-folded in Python as well.
        everyone = conn.execute(sql("SELECT counterparty_id, name FROM counterparties")).all()
        matches = [r for r in everyone if wanted.casefold() in r.name.casefold()]
    if len(matches) == 1:
        return matches[0].counterparty_id, matches[0].name
    if matches:
        same = [r for r in matches if r.name.casefold() == wanted.casefold()]
        if len(same) == 1:
            return same[0].counterparty_id, same[0].name
        names = ", ".join(f"{r.name} ({r.counterparty_id})" for r in matches[:8])
        raise InputError(f"{wanted!r} matches several counterparties", hint=f"pick one of: {names}")
    by_fold = {r.name.casefold(): r.name for r in everyone or []}
    close = difflib.get_close_matches(wanted.casefold(), list(by_fold), n=5, cutoff=0.4)
    # A shared distinctive word ("Acme Logistics" for "Acme Office Supplies GmbH") helps too.
    words = set(_TOKEN.findall(wanted.casefold())) - _GENERIC_WORDS - _LEGAL_SUFFIXES
    close += [f for f in by_fold if words & set(_TOKEN.findall(f))]
    hint_names = [by_fold[c] for c in dict.fromkeys(close)][:5]
    raise InputError(
        f"no counterparty matches {wanted!r}",
        hint=f"did you mean: {', '.join(hint_names)}" if hint_names else "check the name or use the id (CP-...)",
    )


def _check_account(conn: Connection, code: str) -> None:
    found = conn.execute(sql("SELECT 1 FROM accounts WHERE account_code = :c"), {"c": code}).first()
    if found:
        return
    accounts = conn.execute(sql("SELECT account_code, name FROM accounts ORDER BY account_code")).all()
    # Match the code ("6010" for "6100") and the name ("rent" for "6200 Rent and leases").
    labels = {f"{a.account_code} {a.name}": f"{a.account_code} ({a.name})" for a in accounts}
    by_code = {str(a.account_code): f"{a.account_code} ({a.name})" for a in accounts}
    close = [by_code[c] for c in difflib.get_close_matches(code, list(by_code), n=5, cutoff=0.5)]
    lowered = {k.casefold(): v for k, v in labels.items()}
    close += [lowered[k] for k in lowered if code.casefold() in k]
    close += [lowered[k] for k in difflib.get_close_matches(code.casefold(), list(lowered), n=5, cutoff=0.4)]
    hint = ", ".join(list(dict.fromkeys(close))[:5])
    raise InputError(f"no account {code!r} in the ledger", hint=f"did you mean: {hint}" if hint else None)


# --- free-text counterparty lookup ----------------------------------------------------------

_LEGAL_SUFFIXES = {
    "gmbh", "mbh", "ag", "se", "kg", "kgaa", "ohg", "ug", "eg", "partg", "mbb", "co", "&", "sa",
    "s.a", "sas", "sarl", "sàrl", "ltd", "limited", "plc", "llp", "llc", "inc", "corp",
    "corporation", "company", "bv", "b.v", "nv", "n.v", "spa", "s.p.a", "srl", "s.r.l", "sl",
    "s.l", "lda", "oy", "oyj", "ab", "as", "a/s", "aps", "oü", "sia", "uab", "sp", "z", "o.o",
    "s.r.o", "kft",
}  # fmt: skip
# Words that also occur in ordinary questions ("our global spend", "payments to ...") say too
# little on their own to name a counterparty; they count only next to a distinctive word.
_GENERIC_WORDS = {
    "the", "and", "of", "for", "to", "from", "in", "on", "at", "by", "with", "de", "der", "die",
    "global", "international", "national", "general", "first", "united", "european", "euro",
    "bank", "office", "services", "service", "group", "capital", "partners", "partner",
    "solutions", "consulting", "holding", "holdings", "systems", "trust", "data", "city", "north",
    "south", "east", "west", "nord", "central", "standard", "digital", "supplies", "supply",
    "energy", "management", "logistics", "insurance", "real", "estate", "property", "new",
    "payment", "payments", "invoice", "invoices", "fee", "fees", "loan", "loans", "credit",
    "finance", "financial", "fintech", "hotel", "hotels", "travel", "legal", "software",
    "hardware", "security", "cloud", "hosting", "facility", "facilities", "catering", "print",
    "printing", "mail", "telecom", "analytics", "tech", "technology", "strategy", "audit",
    "network", "media", "air", "event", "events", "market", "markets", "trading", "health",
}  # fmt: skip
_TOKEN = re.compile(r"[\w&]+(?:[.'/-][\w&]+)*")


def find_counterparty(db_url: str, text: str) -> tuple[str, str] | None:
    """The counterparty (id, name) that free text refers to, e.g. "what have we paid Acme this
    year" -> ("CP-001", "Acme Office Supplies GmbH"). Matches the id, the full name, or a run
    of its words (legal suffixes dropped); the longest match wins. ``None`` when nothing
    matches or when two counterparties match equally well."""
    with _connection(db_url, DEFAULT_TIMEOUT_S) as conn:
        counterparties = conn.execute(sql("SELECT counterparty_id, name FROM counterparties")).all()
    haystack = text.casefold()
    best: dict[tuple[int, int, int], set[tuple[str, str]]] = {}
    for cp in counterparties:
        score = counterparty_match_score(haystack, str(cp.counterparty_id), str(cp.name))
        if score is not None:
            best.setdefault(score, set()).add((str(cp.counterparty_id), str(cp.name)))
    if not best:
        return None
    winners = best[max(best)]
    if len(winners) > 1:
        log.debug("free text matches several counterparties equally: %s", sorted(winners))
        return None
    return next(iter(winners))


def counterparty_match_score(haystack: str, cp_id: str, name: str) -> tuple[int, int, int] | None:
    """How well casefolded free text names one counterparty, ``None`` when it does not; the
    ledger's matcher, shared with the contract tools so both read a name the same way.

    (strength, matched length, starts the name): strength 2 = id or full name, 1 = a run of
    the name's words. People name a company by its leading words, so on equal length a run
    that starts the name beats one inside it ("Rhein" -> Rhein Air, not Versicherungskammer Rhein)."""
    tokens = _TOKEN.findall(name.casefold())
    if _contains(haystack, [cp_id.casefold()]) or _contains(haystack, tokens):
        return (2, len(name), 1)
    while len(tokens) > 1 and tokens[-1] in _LEGAL_SUFFIXES:
        tokens.pop()
    best: tuple[int, int] = (0, 0)
    for start in range(len(tokens)):
        for end in range(start + 1, len(tokens) + 1):
            run = tokens[start:end]
            candidate = (sum(map(len, run)) + len(run) - 1, int(start == 0))
            if candidate <= best or candidate[0] < 3:
                continue
            if all(t in _GENERIC_WORDS or t in _LEGAL_SUFFIXES for t in run):
                continue
            if _contains(haystack, run):
                best = candidate
    return (1, *best) if best[0] else None


def _contains(haystack: str, tokens: list[str]) -> bool:
    if not tokens or not any(tokens):
        return False
    pattern = r"(?<!\w)" + r"\W+".join(map(re.escape, tokens)) + r"(?!\w)"
    return re.search(pattern, haystack) is not None
