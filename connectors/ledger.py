"""Descriptive ledger data (counterparties, accounts) as documents, so retrieval can find them.

Individual journal entries are not indexed: figures come from the typed ledger tool
(``sovra.tools.ledger``), which queries the database at answer time. Bank details (IBAN) are
left out of the indexed text on purpose.

The database is a SQLite file (``db_path``) or any SQLAlchemy URL (``url``: SQLite or PostgreSQL).
Connections are read-only (SQLite: ``mode=ro`` and ``PRAGMA query_only``; PostgreSQL: a
``READ ONLY`` transaction) and statements run under ``timeout_s``.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy import text as sql
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from sovra.documents import Document, Page
from sovra.errors import ConfigError, SourceError

log = logging.getLogger(__name__)

DEFAULT_ACL = frozenset({"group:finance"})


class LedgerConnector:
    def __init__(
        self,
        db_path: Path | str | None = None,
        name: str = "ledger",
        acl: Iterable[str] = DEFAULT_ACL,
        url: str | None = None,
        timeout_s: float = 30.0,
    ) -> None:
        if (db_path is None) == (url is None):
            raise ConfigError(f"connector {name!r}: give either db_path (a SQLite file) or url")
        self.db_path = Path(db_path) if db_path is not None else None
        self.url = url
        self.name = name
        self.acl = frozenset(acl)
        self.timeout_s = timeout_s

    def documents(self) -> Iterator[Document]:
        # The texts are small, so they are built while listing: the version is then the hash
        # of exactly what gets indexed, and load() only hands the text over.
        engine = self._engine()
        try:
            with engine.connect() as conn:
                self._arm(conn)
                docs = [*self._counterparties(conn), *self._accounts(conn)]
                conn.rollback()
        except SQLAlchemyError as exc:
            # A database that refuses connections fails the listing (never an empty one, which
            # would delete every ledger document from the index).
            raise SourceError(
                f"connector {self.name!r}: cannot read the ledger ({type(exc).__name__}: {_first_line(exc)})",
                hint="check that the database is up and the URL, user and tables (accounts, counterparties, "
                "journal_entries) are right",
            ) from exc
        finally:
            engine.dispose()
        yield from docs

    def _engine(self) -> Engine:
        if self.db_path is not None:
            if not self.db_path.is_file():
                raise ConfigError(
                    f"connector {self.name!r}: ledger database {self.db_path} does not exist",
                    hint="check the connector's db_path",
                )
            url = make_url("sqlite://").set(
                database=self.db_path.resolve().as_uri(), query={"mode": "ro", "uri": "true"}
            )
        else:
            try:
                url = make_url(str(self.url))
            except Exception as exc:
                raise ConfigError(f"connector {self.name!r}: invalid ledger URL ({exc})") from exc
        backend = url.get_backend_name()
        if backend == "sqlite":
            engine = create_engine(url)
            event.listen(engine, "connect", _sqlite_read_only)
        elif backend == "postgresql":
            args = (
                {"connect_timeout": max(1, int(self.timeout_s))}
                if url.get_driver_name() in ("psycopg", "psycopg2")
                else {}
            )
            engine = create_engine(url, connect_args=args)
        else:
            raise ConfigError(
                f"connector {self.name!r}: unsupported ledger database {backend!r}", hint="SQLite or PostgreSQL"
            )
        return engine

    def _arm(self, conn: Connection) -> None:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("SET TRANSACTION READ ONLY")
            conn.exec_driver_sql(f"SET LOCAL statement_timeout = {max(1, int(self.timeout_s * 1000))}")
        try:
            conn.exec_driver_sql("SELECT 1 FROM counterparties LIMIT 0")
        except SQLAlchemyError as exc:
            if "refused" in str(exc).lower() or "could not connect" in str(exc).lower():
                raise
            raise ConfigError(
                f"connector {self.name!r}: cannot read ledger {self.db_path or _safe_url(str(self.url))} "
                f"({_first_line(exc)})",
                hint="the database must be a ledger with accounts, counterparties and journal_entries",
            ) from exc

    def _counterparties(self, conn: Connection) -> list[Document]:
        yearly: dict[str, list[Any]] = {}
        for row in conn.execute(
            sql(
                """SELECT counterparty_id, substr(CAST(entry_date AS TEXT), 1, 4) AS year,
                          COALESCE(currency, '') AS currency, COUNT(*) AS n,
                          SUM(COALESCE(debit, 0) - COALESCE(credit, 0)) AS total
                   FROM journal_entries WHERE counterparty_id IS NOT NULL
                   GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"""
            )
        ).mappings():
            yearly.setdefault(row["counterparty_id"], []).append(row)
        docs = []
        for cp in conn.execute(
            sql(
                "SELECT counterparty_id, name, country, category, contract_id FROM counterparties "
                "ORDER BY counterparty_id"
            )
        ).mappings():
            cp_id = cp["counterparty_id"]
            lines = [
                f"Counterparty: {cp['name']} ({cp_id})",
                f"Country: {cp['country'] or 'unknown'}",
                f"Category: {cp['category'] or 'unknown'}",
                f"Contract: {cp['contract_id'] or 'none on file'}",
            ]
            years = yearly.get(cp_id, [])
            if years:
                lines.append("Payments by year (ledger entries, net debit minus credit):")
                lines += [
                    f"- {y['year']}: {y['n']} entries, total {float(y['total']):,.2f} {y['currency']}".rstrip()
                    for y in years
                ]
            else:
                lines.append("No ledger entries recorded.")
            docs.append(
                self._doc(
                    f"counterparties/{cp_id}",
                    f"Counterparty: {cp['name']}",
                    "\n".join(lines),
                    doc_type="counterparty",
                    metadata={
                        "counterparty_id": cp_id,
                        "counterparty": cp["name"],
                        "country": cp["country"],
                        "category": cp["category"],
                        "contract_id": cp["contract_id"],
                    },
                )
            )
        return docs

    def _accounts(self, conn: Connection) -> list[Document]:
        docs = []
        for acc in conn.execute(
            sql("SELECT account_code, name, type, description FROM accounts ORDER BY account_code")
        ).mappings():
            text = "\n".join(
                [
                    f"Account {acc['account_code']}: {acc['name']}",
                    f"Type: {acc['type']}",
                    f"Description: {acc['description'] or ''}".rstrip(),
                ]
            )
            docs.append(
                self._doc(
                    f"accounts/{acc['account_code']}",
                    f"Account {acc['account_code']}: {acc['name']}",
                    text,
                    doc_type="account",
                    metadata={"account_code": acc["account_code"], "account_type": acc["type"]},
                )
            )
        return docs

    def _doc(self, key: str, title: str, text: str, doc_type: str, metadata: dict[str, object]) -> Document:
        pages = [Page(1, text)]
        return Document(
            id=f"{self.name}:{key}",
            title=title,
            source=self.name,
            url=f"ledger://{key}",
            version=hashlib.sha256(text.encode()).hexdigest()[:16],
            acl=self.acl,
            load=lambda: list(pages),
            metadata=metadata,
            doc_type=doc_type,
        )


def _sqlite_read_only(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA query_only = ON")
    cursor.close()


def _first_line(exc: SQLAlchemyError) -> str:
    return str(getattr(exc, "orig", None) or exc).strip().splitlines()[0][:300]


def _safe_url(url: str) -> str:
    """The URL without its password, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "(invalid URL)"
