"""The ledger connector on a real PostgreSQL server: the same documents as from SQLite, read-only."""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from sovra.connectors.ledger import LedgerConnector
from sovra.errors import SourceError

PG_ADMIN_URL = os.environ.get("SOVRA_TEST_POSTGRES_URL", "")


@pytest.fixture(scope="module")
def sqlite_ledger(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from sovra.evals.demo_corpus_ledger import write_ledger

    path = tmp_path_factory.mktemp("ledger") / "ledger.sqlite"
    write_ledger(path, 20251127)
    return path


@pytest.fixture(scope="module")
def pg_url(sqlite_ledger: Path) -> Iterator[str]:
    if not PG_ADMIN_URL:
        pytest.skip("SOVRA_TEST_POSTGRES_URL is not set")
    schema = f"ledger_conn_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_ADMIN_URL)
    src = sqlite3.connect(sqlite_ledger)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
        conn.exec_driver_sql(f"SET search_path TO {schema}")
        conn.exec_driver_sql(
            "CREATE TABLE accounts(account_code TEXT PRIMARY KEY, name TEXT NOT NULL, type TEXT NOT NULL, "
            "description TEXT)"
        )
        conn.exec_driver_sql(
            "CREATE TABLE counterparties(counterparty_id TEXT PRIMARY KEY, name TEXT NOT NULL, country TEXT, "
            "iban TEXT, category TEXT, contract_id TEXT)"
        )
        conn.exec_driver_sql(
            "CREATE TABLE journal_entries(entry_id INTEGER PRIMARY KEY, entry_date DATE NOT NULL, account_code TEXT, "
            "counterparty_id TEXT, description TEXT, debit NUMERIC(18,2) NOT NULL, credit NUMERIC(18,2) NOT NULL, "
            "currency TEXT NOT NULL, reference TEXT)"
        )
        for table, n in (("accounts", 4), ("counterparties", 6), ("journal_entries", 9)):
            rows = src.execute(f"SELECT * FROM {table}").fetchall()
            cols = ", ".join(f":c{i}" for i in range(n))
            if table == "journal_entries":
                cols = cols.replace(":c1", "CAST(:c1 AS DATE)")
            conn.execute(
                text(f"INSERT INTO {table} VALUES ({cols})"), [{f"c{i}": v for i, v in enumerate(r)} for r in rows]
            )
    src.close()
    try:
        yield f"{PG_ADMIN_URL}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.dispose()


def test_postgres_ledger_gives_the_same_documents_as_sqlite(pg_url: str, sqlite_ledger: Path) -> None:
    lite = {d.id: d for d in LedgerConnector(sqlite_ledger).documents()}
    pg = {d.id: d for d in LedgerConnector(url=pg_url).documents()}
    assert len(lite) > 100 and lite.keys() == pg.keys()
    for doc_id, doc in lite.items():
        assert pg[doc_id].load() == doc.load(), doc_id
        assert pg[doc_id].version == doc.version


def test_refused_connection_is_a_clear_source_error() -> None:
    conn = LedgerConnector(url="postgresql+psycopg://nobody@127.0.0.1:9/none", timeout_s=2)
    with pytest.raises(SourceError, match="cannot read the ledger"):
        list(conn.documents())


def test_sqlite_ledger_connection_refuses_writes(sqlite_ledger: Path) -> None:
    engine = LedgerConnector(sqlite_ledger)._engine()
    try:
        with engine.connect() as conn, pytest.raises(Exception, match=r"readonly|read-only|query_only"):
            conn.exec_driver_sql("DELETE FROM accounts")
    finally:
        engine.dispose()
