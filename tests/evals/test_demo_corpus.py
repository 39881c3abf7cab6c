"""The demo corpus generator: determinism, format contract, planted facts."""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
import time
from html.parser import HTMLParser
from pathlib import Path

import docx
import pytest
from pypdf import PdfReader

from sovra.evals.demo_corpus import USERS, generate

CONTRACT_TYPES = {"supply", "services", "lease", "loan", "licence"}
SIDECAR_KEYS = {
    "contract_id",
    "title",
    "counterparty",
    "counterparty_id",
    "contract_type",
    "effective_date",
    "end_date",
    "currency",
    "annual_cap",
    "acl",
}


@pytest.fixture(scope="module")
def corpora(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, float]:
    first, second = tmp_path_factory.mktemp("corpus-a"), tmp_path_factory.mktemp("corpus-b")
    started = time.perf_counter()
    generate(first)
    elapsed = time.perf_counter() - started
    generate(second)
    return first, second, elapsed


@pytest.fixture(scope="module")
def corpus(corpora: tuple[Path, Path, float]) -> Path:
    return corpora[0]


def _hashes(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def text_of(path: Path) -> str:
    if path.suffix == ".pdf":
        return "\n".join(page.extract_text() for page in PdfReader(path).pages)
    if path.suffix == ".docx":
        document = docx.Document(str(path))
        cells = [c.text for t in document.tables for row in t.rows for c in row.cells]
        return "\n".join([p.text for p in document.paragraphs] + cells)
    parser = _Text()
    parser.feed(path.read_text(encoding="utf-8"))
    return " ".join(parser.parts)


def _principals(item: dict) -> set[str]:
    out = set()
    for perm in item["permissions"]:
        granted = perm["grantedToV2"]
        kind = "user" if "user" in granted else "group"
        out.add(f"{kind}:{granted[kind]['id']}")
    return out


def _readers(acl: set[str]) -> set[str]:
    return {
        uid for uid, u in USERS.items() if acl & {f"user:{uid}", "group:everyone", *(f"group:{g}" for g in u["groups"])}
    }


def test_generation_is_byte_identical(corpora: tuple[Path, Path, float]) -> None:
    first, second, _elapsed = corpora
    a, b = _hashes(first), _hashes(second)
    assert len(a) > 60
    assert a == b  # PDFs, DOCX (zip timestamps pinned) and the SQLite file included


def test_users_file_is_the_shared_directory(corpus: Path) -> None:
    users = json.loads((corpus / "users.json").read_text())
    assert users == {
        "alice": {"name": "Alice Martin", "groups": ["employees"]},
        "bob": {"name": "Bob Schneider", "groups": ["employees", "finance"]},
        "carol": {"name": "Carol Dubois", "groups": ["employees", "risk-committee"]},
        "dave": {"name": "Dave Legal", "groups": ["employees", "legal"]},
        "erin": {"name": "Erin Auditor", "groups": ["employees", "auditor"]},
    }


def test_sharepoint_manifest_items_have_files_and_acls(corpus: Path) -> None:
    manifest = json.loads((corpus / "sharepoint" / "manifest.json").read_text())
    assert manifest["site"] == {"id": "eurobank-policies", "webUrl": "https://intranet.nordbank.example/sites/policies"}
    items = manifest["items"]
    assert len(items) >= 20
    assert len({i["id"] for i in items}) == len(items)
    assert {Path(i["name"]).suffix for i in items} == {".html", ".docx"}
    for item in items:
        path = corpus / "sharepoint" / item["file"]["path"]
        assert path.is_file(), item["name"]
        assert item["webUrl"].startswith(manifest["site"]["webUrl"] + "/Shared%20Documents/")
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", item["lastModifiedDateTime"])
        assert re.fullmatch(r'"\{[0-9A-F-]{36}\},\d+"', item["eTag"])
        assert item["permissions"] and all(p["roles"] == ["read"] for p in item["permissions"])
        text = text_of(path)
        assert item["title"] in text
        assert len(re.findall(r"\d", text)) >= 5, f"{item['name']} has no concrete numbers"
    remote = next(i for i in items if i["name"] == "remote-work-policy.html")
    assert "up to 3 days per week" in text_of(corpus / "sharepoint" / remote["file"]["path"])


def test_restricted_documents_hide_their_phrases(corpus: Path) -> None:
    facts = json.loads((corpus / "planted_facts.json").read_text())
    manifest = json.loads((corpus / "sharepoint" / "manifest.json").read_text())
    by_path = {f"sharepoint/{i['file']['path']}": i for i in manifest["items"]}
    restricted = facts["restricted_documents"]
    assert len(restricted) >= 4
    assert any(r["acl"] == ["group:risk-committee"] for r in restricted)
    assert any(r["acl"] == ["group:finance"] for r in restricted)
    assert any(len(r["acl"]) == 1 and r["acl"][0].startswith("user:") for r in restricted)
    texts = {p: text_of(corpus / p) for p in by_path}
    for doc in restricted:
        acl = _principals(by_path[doc["path"]])
        assert acl == set(doc["acl"])
        assert not acl & {"group:employees", "group:everyone"}
        assert sorted(_readers(acl)) == sorted(doc["allowed_users"]) and doc["denied_users"]
        assert doc["phrase"] in texts[doc["path"]]
        for other, text in texts.items():
            readable_by_denied = _readers(_principals(by_path[other])) & set(doc["denied_users"])
            if readable_by_denied:
                assert doc["phrase"] not in text, f"{doc['phrase']!r} leaks through {other}"


def test_contracts_have_files_sidecars_and_numbered_clauses(corpus: Path) -> None:
    folder = corpus / "contracts"
    documents = sorted(p for p in folder.iterdir() if p.suffix in {".pdf", ".docx"})
    assert len(documents) >= 15
    assert {p.suffix for p in documents} == {".pdf", ".docx"}
    ids = set()
    for path in documents:
        meta = json.loads((folder / f"{path.name}.meta.json").read_text())
        assert set(meta) == SIDECAR_KEYS
        assert meta["contract_type"] in CONTRACT_TYPES and meta["currency"] == "EUR"
        assert meta["acl"] and all(re.fullmatch(r"(group|user):[a-z-]+", p) for p in meta["acl"])
        assert meta["effective_date"] <= meta["end_date"]
        ids.add(meta["contract_id"])
        text = text_of(path)
        assert meta["contract_id"] in text
        if path.suffix == ".pdf":
            assert len(PdfReader(path).pages) >= 2
            for heading in ("1. Parties", "2. Term", "4. ", "5. ", "6. Governing law", "7. Confidentiality"):
                assert heading in text, f"{heading!r} missing in {path.name}"
    assert len(ids) == len(documents)
    sidecars = [p for p in folder.iterdir() if p.name.endswith(".meta.json")]
    assert len(sidecars) == len(documents)


def test_acme_contract_terms(corpus: Path) -> None:
    path = corpus / "contracts" / "c-2024-001-acme-office-supplies-supply-agreement.pdf"
    meta = json.loads(Path(f"{path}.meta.json").read_text())
    assert meta["counterparty"] == "Acme Office Supplies GmbH" and meta["annual_cap"] == 120000.0
    text = " ".join(text_of(path).split())
    assert "for convenience at any time by giving the Supplier not less than 90 days' written notice" in text
    assert "EUR 8,500.00 per month" in text and "EUR 120,000.00" in text


def test_ledger_shape_and_acme_payments(corpus: Path) -> None:
    con = sqlite3.connect(corpus / "ledger.sqlite")
    try:
        cols = {
            t: [r[1] for r in con.execute(f"PRAGMA table_info({t})")]
            for t in ("accounts", "counterparties", "journal_entries")
        }
        assert cols["journal_entries"] == [
            "entry_id",
            "entry_date",
            "account_code",
            "counterparty_id",
            "description",
            "debit",
            "credit",
            "currency",
            "reference",
        ]
        assert cols["counterparties"] == ["counterparty_id", "name", "country", "iban", "category", "contract_id"]
        indexed = {
            r[0]
            for r in con.execute(
                "SELECT il.name FROM sqlite_master m, pragma_index_list(m.name) i, pragma_index_info(i.name) il "
                "WHERE m.name = 'journal_entries'"
            )
        }
        assert {"entry_date", "counterparty_id", "account_code"} <= indexed
        n, first, last = con.execute(
            "SELECT COUNT(*), MIN(entry_date), MAX(entry_date) FROM journal_entries"
        ).fetchone()
        assert n >= 10000 and first == "2025-01-01" and last <= "2026-11-27"
        assert 35 <= con.execute("SELECT COUNT(*) FROM accounts").fetchone()[0] <= 50
        assert 55 <= con.execute("SELECT COUNT(*) FROM counterparties").fetchone()[0] <= 65
        assert con.execute("PRAGMA foreign_key_check").fetchall() == []
        assert (
            con.execute(
                "SELECT COUNT(*) FROM journal_entries WHERE round(debit, 2) != debit OR round(credit, 2) != credit"
            ).fetchone()[0]
            == 0
        )
        for meta_path in (corpus / "contracts").glob("c-*.meta.json"):
            meta = json.loads(meta_path.read_text())
            row = con.execute(
                "SELECT name, contract_id FROM counterparties WHERE counterparty_id = ?", (meta["counterparty_id"],)
            ).fetchone()
            assert row == (meta["counterparty"], meta["contract_id"])
        acme_2026 = con.execute(
            "SELECT substr(e.entry_date, 1, 7), e.debit, a.type FROM journal_entries e "
            "JOIN accounts a USING (account_code) JOIN counterparties c USING (counterparty_id) "
            "WHERE c.name = 'Acme Office Supplies GmbH' AND e.entry_date LIKE '2026-%' AND e.reference = 'C-2024-001'"
        ).fetchall()
        assert [m for m, _, _ in acme_2026] == [f"2026-{m:02d}" for m in range(1, 12)]
        assert {(d, t) for _, d, t in acme_2026} == {(8500, "expense")}
    finally:
        con.close()


def test_planted_facts_match_the_corpus(corpus: Path) -> None:
    facts = json.loads((corpus / "planted_facts.json").read_text())
    inc = {i["kind"]: i for i in facts["inconsistencies"]}
    for item in facts["inconsistencies"]:
        assert all((corpus / d).is_file() for d in item["documents"])
    term_sheet, agreement = (" ".join(text_of(corpus / d).split()) for d in inc["amount_mismatch"]["documents"])
    assert "EUR 25,000,000" in term_sheet and "EUR 22,500,000.00" in agreement
    heads, lease = (" ".join(text_of(corpus / d).split()) for d in inc["governing_law_mismatch"]["documents"])
    assert "Dutch law" in heads and "laws of the Federal Republic of Germany" in lease

    con = sqlite3.connect(corpus / "ledger.sqlite")
    try:
        cap = inc["payments_exceed_annual_cap"]
        total = con.execute(
            "SELECT SUM(debit) FROM journal_entries WHERE reference = ? AND entry_date LIKE '2025-%'",
            (cap["contract_id"],),
        ).fetchone()[0]
        assert total == pytest.approx(cap["ledger_total"]) and total > cap["annual_cap"]
        dup = inc["duplicate_payment"]["entry_ids"]
        rows = con.execute(
            f"SELECT description, debit, reference FROM journal_entries WHERE entry_id IN ({dup[0]}, {dup[1]})"
        ).fetchall()
        assert len(rows) == 2 and rows[0] == rows[1]
        for q in facts["questions"]:
            if "expected_value" in q and q["kind"] == "ledger":
                year = "2026" if "2026" in q["question"] else "2025"
                got = con.execute(
                    "SELECT SUM(debit) FROM journal_entries WHERE reference = 'C-2024-001' AND entry_date LIKE ?",
                    (f"{year}-%",),
                ).fetchone()[0]
                assert got == pytest.approx(q["expected_value"])
    finally:
        con.close()
    assert {q["user"] for q in facts["questions"]} <= set(USERS)
    assert any(q.get("forbidden") for q in facts["questions"])
