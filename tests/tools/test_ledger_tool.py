"""The allow-listed ledger query against a real SQLite ledger (and PostgreSQL when reachable)."""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError, OperationalError

from sovra.errors import InputError, SovraError
from sovra.tools.ledger import LedgerQuery, _connection, find_counterparty, ledger_engine, query_ledger

SCHEMA = """
CREATE TABLE accounts(account_code TEXT PRIMARY KEY, name TEXT,
  type TEXT CHECK(type IN ('asset','liability','equity','income','expense')), description TEXT);
CREATE TABLE counterparties(counterparty_id TEXT PRIMARY KEY, name TEXT, country TEXT, iban TEXT,
  category TEXT, contract_id TEXT NULL);
CREATE TABLE journal_entries(entry_id INTEGER PRIMARY KEY, entry_date TEXT, account_code TEXT REFERENCES accounts,
  counterparty_id TEXT NULL REFERENCES counterparties, description TEXT, debit NUMERIC, credit NUMERIC,
  currency TEXT, reference TEXT);
CREATE INDEX je_date ON journal_entries(entry_date);
CREATE INDEX je_cp ON journal_entries(counterparty_id);
CREATE INDEX je_acct ON journal_entries(account_code);
"""
ACCOUNTS = [
    ("1000", "Bank", "asset", "Operating account"),
    ("6100", "Rent and leases", "expense", "Office rent"),
    ("6200", "Office supplies", "expense", "Paper, toner"),
    ("4000", "Interest income", "income", "Loans"),
]
COUNTERPARTIES = [
    ("CP-001", "Acme Office Supplies GmbH", "DE", "DE00", "office supplies", "C-2024-001"),
    ("CP-002", "Baltic Timber Holdings OÜ", "EE", "EE00", "borrower", "C-2025-003"),
    ("CP-003", "Baltic Timber Logistics SIA", "LV", "LV00", "logistics", None),
    ("CP-004", "ÖKO Energie AG", "AT", "AT00", "energy", None),
    ("CP-005", "Nordic Hardware Solutions AB", "SE", "SE00", "IT hardware", None),
    ("CP-006", "Nordic Payments Oy", "FI", "FI00", "payments", None),
    ("CP-007", "100% Pure_Data Ltd", "IE", "IE00", "data", None),
    ("CP-008", "Rhein Air Travel GmbH", "DE", "DE00", "travel", None),
    ("CP-009", "Versicherungskammer Rhein AG", "DE", "DE00", "insurance", None),
]


def build_entries() -> list[tuple]:
    """Deterministic entries: (entry_id, date, account, counterparty, description, debit, credit, currency, ref)."""
    rows: list[tuple] = []
    start = date(2024, 1, 1)
    for i in range(300):
        day = start + timedelta(days=i * 2)
        cp = COUNTERPARTIES[i % 6][0]
        account = "6200" if cp == "CP-001" else "6100"
        debit, credit = (
            (round(100 + i * 7.25, 2), 0.0) if i % 10 else (0.0, round(50 + i, 2))
        )  # every 10th: credit note
        rows.append((i + 1, day.isoformat(), account, cp, f"Invoice {i}", debit, credit, "EUR", f"INV-{i:04d}"))
    rows.append((1000, "2024-06-30", "1000", None, "Bank fees", 12.5, 0.0, "EUR", None))
    return rows


ENTRIES = build_entries()


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def ledger_url(request: pytest.FixtureRequest) -> str:
    """The same ledger on both engines: every backend-agnostic test runs on SQLite (the demo) and
    on PostgreSQL (a bank's ledger replica; skipped when SOVRA_TEST_POSTGRES_URL is unset)."""
    return request.getfixturevalue("sqlite_ledger_url" if request.param == "sqlite" else "pg_url")


@pytest.fixture(scope="module")
def sqlite_ledger_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("ledger") / "ledger.sqlite"
    with sqlite3.connect(path) as conn:
        conn.executescript(SCHEMA)
        conn.executemany("INSERT INTO accounts VALUES (?,?,?,?)", ACCOUNTS)
        conn.executemany("INSERT INTO counterparties VALUES (?,?,?,?,?,?)", COUNTERPARTIES)
        conn.executemany("INSERT INTO journal_entries VALUES (?,?,?,?,?,?,?,?,?)", ENTRIES)
    conn.close()
    return f"sqlite:///{path}"


def expected(
    cp: str | None = None, account: str | None = None, lo: date | None = None, hi: date | None = None
) -> list[tuple]:
    return [
        e for e in ENTRIES
        if (cp is None or e[3] == cp) and (account is None or e[2] == account)
        and (lo is None or e[1] >= lo.isoformat()) and (hi is None or e[1] <= hi.isoformat())
    ]  # fmt: skip


def net(rows: list[tuple]) -> float:
    return round(sum(e[5] - e[6] for e in rows), 2)


def test_payments_to_counterparty_totals_cover_all_rows_not_only_the_limit(ledger_url: str) -> None:
    q = LedgerQuery(kind="payments_to_counterparty", counterparty="acme office", limit=5)
    result = query_ledger(ledger_url, q)
    matching = expected(cp="CP-001")
    assert (result.resolved_counterparty, result.resolved_counterparty_id) == ("Acme Office Supplies GmbH", "CP-001")
    assert result.row_count == len(result.rows) == 5
    assert result.matched == len(matching) == 50
    assert result.truncated is True
    assert result.total == pytest.approx(net(matching))
    first = result.rows[0]
    assert (first.table, first.key) == ("journal_entries", "1")  # the citation of the entry
    assert first.entry_date == date(2024, 1, 1)
    assert first.amount == -50.0  # entry 0 is a credit note
    assert (first.counterparty, first.account_code, first.reference) == (
        "Acme Office Supplies GmbH",
        "6200",
        "INV-0000",
    )
    assert [r.entry_date for r in result.rows] == sorted(r.entry_date for r in result.rows)


def test_limit_equal_to_the_matches_is_not_truncated(ledger_url: str) -> None:
    q = LedgerQuery(kind="payments_to_counterparty", counterparty="CP-001", limit=50)
    result = query_ledger(ledger_url, q)
    assert (result.row_count, result.truncated) == (50, False)
    assert sum(r.amount for r in result.rows) == pytest.approx(result.total)


def test_date_range_and_id_match_are_case_insensitive(ledger_url: str) -> None:
    lo, hi = date(2025, 1, 1), date(2025, 6, 30)
    q = LedgerQuery(kind="payments_to_counterparty", counterparty="cp-002", date_from=lo, date_to=hi, limit=500)
    result = query_ledger(ledger_url, q)
    matching = expected(cp="CP-002", lo=lo, hi=hi)
    assert result.resolved_counterparty == "Baltic Timber Holdings OÜ"
    assert [r.key for r in result.rows] == [str(e[0]) for e in matching]
    assert result.total == pytest.approx(net(matching))
    assert all(lo <= r.entry_date <= hi for r in result.rows)


def test_account_balance(ledger_url: str) -> None:
    result = query_ledger(
        ledger_url, LedgerQuery(kind="account_balance", account_code="6100", date_to=date(2024, 12, 31))
    )
    matching = expected(account="6100", hi=date(2024, 12, 31))
    assert result.matched == len(matching) and result.truncated
    assert result.total == pytest.approx(net(matching))
    assert result.resolved_counterparty is None


def test_entries_by_amount_filters_and_orders_by_magnitude(ledger_url: str) -> None:
    result = query_ledger(
        ledger_url, LedgerQuery(kind="entries_by_amount", min_amount=2000, max_amount=2100, limit=500)
    )
    matching = [e for e in ENTRIES if 2000 <= abs(e[5] - e[6]) <= 2100]
    assert matching and result.matched == len(matching) and not result.truncated
    amounts = [abs(r.amount) for r in result.rows]
    assert amounts == sorted(amounts, reverse=True) and all(2000 <= a <= 2100 for a in amounts)
    assert result.total == pytest.approx(net(matching))


def test_unknown_counterparty_hints_close_names(ledger_url: str) -> None:
    with pytest.raises(InputError, match="no counterparty matches 'Acme Ofice Suplies'") as err:
        query_ledger(ledger_url, LedgerQuery(kind="payments_to_counterparty", counterparty="Acme Ofice Suplies"))
    assert err.value.hint and "Acme Office Supplies GmbH" in err.value.hint


def test_ambiguous_counterparty_lists_the_candidates(ledger_url: str) -> None:
    with pytest.raises(InputError, match="several counterparties") as err:
        query_ledger(ledger_url, LedgerQuery(kind="payments_to_counterparty", counterparty="Nordic"))
    assert (
        err.value.hint and "Nordic Hardware Solutions AB" in err.value.hint and "Nordic Payments Oy" in err.value.hint
    )


def test_non_ascii_names_match_case_insensitively(ledger_url: str) -> None:
    result = query_ledger(ledger_url, LedgerQuery(kind="payments_to_counterparty", counterparty="öko energie"))
    assert result.resolved_counterparty_id == "CP-004"
    assert result.matched == len(expected(cp="CP-004"))


def test_like_wildcards_in_names_are_literal(ledger_url: str) -> None:
    result = query_ledger(ledger_url, LedgerQuery(kind="payments_to_counterparty", counterparty="100% pure_data"))
    assert result.resolved_counterparty_id == "CP-007" and result.matched == 0 and result.total == 0
    with pytest.raises(InputError):  # "_" must not match any character
        query_ledger(ledger_url, LedgerQuery(kind="payments_to_counterparty", counterparty="pure-data"))


def test_unknown_account_hints_close_accounts(ledger_url: str) -> None:
    with pytest.raises(InputError, match="no account '6110'") as err:
        query_ledger(ledger_url, LedgerQuery(kind="account_balance", account_code="6110"))
    assert err.value.hint and "6100 (Rent and leases)" in err.value.hint


def test_injection_attempts_are_just_unknown_names(ledger_url: str) -> None:
    with pytest.raises(InputError):
        query_ledger(
            ledger_url, LedgerQuery(kind="payments_to_counterparty", counterparty="x'; DROP TABLE journal_entries; --")
        )
    assert query_ledger(ledger_url, LedgerQuery(kind="entries_by_amount")).matched == len(ENTRIES)


@pytest.mark.parametrize(
    "args",
    [
        {"kind": "payments_to_counterparty"},
        {"kind": "account_balance"},
        {"kind": "entries_by_amount", "limit": 0},
        {"kind": "entries_by_amount", "limit": 501},
        {"kind": "entries_by_amount", "date_from": "2025-02-01", "date_to": "2025-01-01"},
        {"kind": "entries_by_amount", "min_amount": 10, "max_amount": 5},
        {"kind": "entries_by_amount", "sql": "DELETE FROM accounts"},
        {"kind": "raw_sql"},
    ],
)
def test_query_arguments_are_validated(args: dict) -> None:
    with pytest.raises(ValidationError):
        LedgerQuery.model_validate(args)


def test_engine_is_read_only(sqlite_ledger_url: str) -> None:
    engine = ledger_engine(sqlite_ledger_url)
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA query_only")).scalar() == 1
        with pytest.raises(OperationalError, match=r"readonly|read-only|query_only"):
            conn.execute(text("DELETE FROM journal_entries"))
        conn.rollback()
        with pytest.raises(OperationalError):
            conn.execute(text("CREATE TABLE sneaky(x)"))
        conn.rollback()
        # even with the pragma switched off, the file itself is opened read-only (mode=ro)
        conn.exec_driver_sql("PRAGMA query_only = OFF")
        with pytest.raises(OperationalError, match="attempt to write a readonly database"):
            conn.execute(text("UPDATE accounts SET name = 'x'"))
        conn.rollback()
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA query_only")).scalar() == 1  # re-armed on checkout
        assert conn.execute(text("SELECT COUNT(*) FROM journal_entries")).scalar() == len(ENTRIES)


def test_missing_database_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(SovraError, match="does not exist"):
        query_ledger(f"sqlite:///{tmp_path}/nope.sqlite", LedgerQuery(kind="entries_by_amount"))
    assert not (tmp_path / "nope.sqlite").exists()  # read-only open must not create it


def test_statement_timeout_stops_long_queries(sqlite_ledger_url: str) -> None:
    with pytest.raises(SovraError, match="took longer than"):
        query_ledger(sqlite_ledger_url, LedgerQuery(kind="entries_by_amount", limit=500), timeout_s=0)
    # the connection is usable again afterwards
    assert query_ledger(sqlite_ledger_url, LedgerQuery(kind="entries_by_amount", limit=1)).row_count == 1


@pytest.mark.parametrize(
    ("question", "expected_id"),
    [
        ("what have we paid Acme this year", "CP-001"),
        ("Payments to ACME OFFICE SUPPLIES GMBH in 2025?", "CP-001"),
        ("how much did we lend to baltic timber holdings", "CP-002"),
        ("invoices from Baltic Timber Logistics last quarter", "CP-003"),  # longest match wins
        ("what did we pay öko energie", "CP-004"),
        ("show entries for cp-006", "CP-006"),
        ("Nordic Payments Oy's fees", "CP-006"),
        ("flights booked with Rhein last month", "CP-008"),  # a name's leading word beats an inner one
        ("premiums paid to Versicherungskammer", "CP-009"),
        ("what is our total spend on office supplies", None),  # generic words name nobody
        ("what have we paid Baltic Timber", None),  # two equally good matches
        ("payments to Globex", None),
        ("acmeville tourism", None),  # words, not substrings
    ],
)
def test_find_counterparty(ledger_url: str, question: str, expected_id: str | None) -> None:
    found = find_counterparty(ledger_url, question)
    assert (found[0] if found else None) == expected_id
    if found:
        assert found[1] == dict((c[0], c[1]) for c in COUNTERPARTIES)[found[0]]


# --- PostgreSQL, when the local test server is reachable ------------------------------------------

# Set by .ci/run; a developer without PostgreSQL skips these tests, CI never does.
PG_ADMIN_URL = os.environ.get("SOVRA_TEST_POSTGRES_URL", "")


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    if not PG_ADMIN_URL:
        pytest.skip("SOVRA_TEST_POSTGRES_URL is not set")
    admin = create_engine(PG_ADMIN_URL)
    schema = f"ledger_{uuid.uuid4().hex[:8]}"
    pg_schema = SCHEMA.replace("entry_date TEXT", "entry_date DATE").replace("je_", f"{schema}_je_")
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
        conn.exec_driver_sql(f"SET search_path TO {schema}")
        for statement in filter(str.strip, pg_schema.split(";")):
            conn.exec_driver_sql(statement)
        conn.execute(
            text("INSERT INTO accounts VALUES (:a, :b, :c, :d)"), [dict(zip("abcd", r, strict=True)) for r in ACCOUNTS]
        )
        conn.execute(
            text("INSERT INTO counterparties VALUES (:a, :b, :c, :d, :e, :f)"),
            [dict(zip("abcdef", r, strict=True)) for r in COUNTERPARTIES],
        )
        conn.execute(
            text("INSERT INTO journal_entries VALUES (:a, CAST(:b AS DATE), :c, :d, :e, :f, :g, :h, :i)"),
            [dict(zip("abcdefghi", r, strict=True)) for r in ENTRIES],
        )
    try:
        yield f"{PG_ADMIN_URL}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.dispose()


def test_postgres_gives_the_same_answers(pg_url: str, sqlite_ledger_url: str) -> None:
    queries = [
        LedgerQuery(kind="payments_to_counterparty", counterparty="acme office", limit=5),
        LedgerQuery(
            kind="payments_to_counterparty",
            counterparty="cp-002",
            date_from=date(2025, 1, 1),
            date_to=date(2025, 6, 30),
        ),
        LedgerQuery(kind="account_balance", account_code="6100"),
        LedgerQuery(kind="entries_by_amount", min_amount=2000, max_amount=2100),
        LedgerQuery(kind="payments_to_counterparty", counterparty="öko energie"),
        LedgerQuery(kind="payments_to_counterparty", counterparty="100% pure_data"),
    ]
    for q in queries:
        assert query_ledger(pg_url, q) == query_ledger(sqlite_ledger_url, q), q
    assert find_counterparty(pg_url, "what have we paid Acme this year") == ("CP-001", "Acme Office Supplies GmbH")


def test_postgres_connection_is_read_only(pg_url: str) -> None:
    with ledger_engine(pg_url).connect() as conn:
        with pytest.raises(DBAPIError, match="read-only transaction"):
            conn.execute(text("DELETE FROM journal_entries"))
        conn.rollback()
        assert conn.exec_driver_sql("SHOW transaction_read_only").scalar() == "on"


def test_postgres_statement_timeout(pg_url: str) -> None:
    with _connection(pg_url, 2.5) as conn:
        assert conn.exec_driver_sql("SHOW statement_timeout").scalar() == "2500ms"
    # the server cancels the statement at 50 ms; the 5 s sleep never completes
    with pytest.raises(SovraError, match="took longer than"), _connection(pg_url, 0.05) as conn:
        conn.exec_driver_sql("SELECT pg_sleep(5)")
