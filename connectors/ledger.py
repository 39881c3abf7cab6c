"""Descriptive ledger data (counterparties, accounts) as documents, so retrieval can find them.

Individual journal entries are not indexed: figures come from the typed ledger tool
(``sovra.tools.ledger``), which queries the database at answer time. Bank details (IBAN) are
left out of the indexed text on purpose.
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import closing
from pathlib import Path

from sovra.documents import Document, Page
from sovra.errors import ConfigError

log = logging.getLogger(__name__)

DEFAULT_ACL = frozenset({"group:finance"})


class LedgerConnector:
    def __init__(self, db_path: Path | str, name: str = "ledger", acl: Iterable[str] = DEFAULT_ACL) -> None:
        self.db_path = Path(db_path)
        self.name = name
        self.acl = frozenset(acl)

    def documents(self) -> Iterator[Document]:
        # The texts are small, so they are built while listing: the version is then the hash
        # of exactly what gets indexed, and load() only hands the text over.
        with closing(self._connect()) as conn:
            docs = [*self._counterparties(conn), *self._accounts(conn)]
        yield from docs

    def _connect(self) -> sqlite3.Connection:
        if not self.db_path.is_file():
            raise ConfigError(
                f"connector {self.name!r}: ledger database {self.db_path} does not exist",
                hint="check the connector's db_path",
            )
        uri = self.db_path.resolve().as_uri() + "?mode=ro"
        try:
            conn = sqlite3.connect(uri, uri=True)
            conn.execute("PRAGMA query_only = ON")
            conn.execute("SELECT 1 FROM counterparties LIMIT 0")
        except sqlite3.Error as exc:
            raise ConfigError(
                f"connector {self.name!r}: cannot read ledger {self.db_path} ({exc})",
                hint="the file must be a SQLite ledger with accounts, counterparties and journal_entries",
            ) from exc
        conn.row_factory = sqlite3.Row
        return conn

    def _counterparties(self, conn: sqlite3.Connection) -> list[Document]:
        yearly: dict[str, list[sqlite3.Row]] = {}
        for row in conn.execute(
            """SELECT counterparty_id, substr(entry_date, 1, 4) AS year, COALESCE(currency, '') AS currency,
                      COUNT(*) AS n, SUM(COALESCE(debit, 0) - COALESCE(credit, 0)) AS total
               FROM journal_entries WHERE counterparty_id IS NOT NULL
               GROUP BY counterparty_id, year, currency ORDER BY counterparty_id, year, currency"""
        ):
            yearly.setdefault(row["counterparty_id"], []).append(row)
        docs = []
        for cp in conn.execute(
            "SELECT counterparty_id, name, country, category, contract_id FROM counterparties ORDER BY counterparty_id"
        ):
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
                    f"- {y['year']}: {y['n']} entries, total {y['total']:,.2f} {y['currency']}".rstrip() for y in years
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

    def _accounts(self, conn: sqlite3.Connection) -> list[Document]:
        docs = []
        for acc in conn.execute("SELECT account_code, name, type, description FROM accounts ORDER BY account_code"):
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
