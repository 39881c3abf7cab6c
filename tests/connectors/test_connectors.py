"""Filesystem, SharePoint-export and ledger connectors over real files in tmp_path."""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
import stat
from pathlib import Path

import docx
import pytest
from fpdf import FPDF

from sovra.connectors import base
from sovra.connectors.base import Connector, create, register
from sovra.connectors.filesystem import FilesystemConnector
from sovra.connectors.ledger import LedgerConnector
from sovra.connectors.sharepoint_export import SharePointExportConnector, map_permissions
from sovra.documents import Document, Page
from sovra.errors import ConfigError, ParseError


def write_pdf(path: Path, pages: list[str]) -> None:
    pdf = FPDF()
    pdf.set_font("Helvetica", size=12)
    for text in pages:
        pdf.add_page()
        pdf.multi_cell(0, 8, text)
    pdf.output(str(path))


def write_docx(path: Path, text: str) -> None:
    d = docx.Document()
    d.add_paragraph(text)
    d.save(str(path))


def by_id(docs: list[Document]) -> dict[str, Document]:
    return {d.id: d for d in docs}


# --- filesystem ---------------------------------------------------------------------------

SIDECAR = {
    "contract_id": "C-2024-001",
    "title": "Supply Agreement - Acme Office Supplies GmbH",
    "counterparty": "Acme Office Supplies GmbH",
    "counterparty_id": "CP-001",
    "contract_type": "supply",
    "effective_date": "2024-01-01",
    "end_date": "2026-12-31",
    "currency": "EUR",
    "annual_cap": 120000.0,
    "acl": ["group:finance", "group:legal"],
}


@pytest.fixture
def contracts(tmp_path: Path) -> Path:
    root = tmp_path / "contracts"
    (root / "loans").mkdir(parents=True)
    write_pdf(root / "acme.pdf", ["Supply agreement page one", "Page two: fees"])
    (root / "acme.pdf.meta.json").write_text(json.dumps(SIDECAR))
    write_docx(root / "loans" / "baltic.docx", "Revolving credit facility")
    (root / "loans" / "baltic.docx.meta.json").write_text(
        json.dumps({"title": "Baltic RCF", "contract_type": "loan", "acl": ["group:legal", "user:carol"]})
    )
    (root / "notes.txt").write_text("internal notes without a sidecar")
    write_pdf(root / "broken-sidecar.pdf", ["text"])
    (root / "broken-sidecar.pdf.meta.json").write_text('{"title": "oops", "acl": [')
    write_pdf(root / "bad-acl.pdf", ["text"])
    (root / "bad-acl.pdf.meta.json").write_text(json.dumps({"acl": ["finance"]}))
    (root / "orphan.pdf.meta.json").write_text(json.dumps({"acl": ["group:x"]}))
    (root / ".hidden.txt").write_text("hidden")
    (root / "~$acme.docx").write_bytes(b"word lock file")
    (root / "sheet.xls").write_bytes(b"\xd0\xcf\x11\xe0")  # legacy Excel: not a supported type
    return root


def test_filesystem_lists_supported_files_with_sidecar_metadata(contracts: Path) -> None:
    docs = by_id(list(FilesystemConnector(contracts).documents()))
    assert sorted(docs) == [
        "contracts:acme.pdf",
        "contracts:bad-acl.pdf",
        "contracts:broken-sidecar.pdf",
        "contracts:loans/baltic.docx",
        "contracts:notes.txt",
    ]
    acme = docs["contracts:acme.pdf"]
    assert acme.title == SIDECAR["title"]
    assert acme.source == "contracts"
    assert acme.acl == frozenset({"group:finance", "group:legal"})
    assert acme.doc_type == "supply"
    assert acme.url == (contracts / "acme.pdf").resolve().as_uri() and acme.url.startswith("file:///")
    assert acme.version == hashlib.sha256((contracts / "acme.pdf").read_bytes()).hexdigest()[:16]
    assert acme.metadata["counterparty"] == "Acme Office Supplies GmbH"
    assert acme.metadata["contract_id"] == "C-2024-001"
    assert acme.metadata["end_date"] == "2026-12-31"
    assert "acl" not in acme.metadata and "title" not in acme.metadata
    pages = acme.load()
    assert [p.number for p in pages] == [1, 2] and "fees" in pages[1].text

    baltic = docs["contracts:loans/baltic.docx"]
    assert (baltic.title, baltic.doc_type) == ("Baltic RCF", "loan")
    assert baltic.acl == frozenset({"group:legal", "user:carol"})
    assert baltic.load() == [Page(1, "Revolving credit facility")]


def test_file_without_sidecar_is_readable_by_nobody(contracts: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="sovra.connectors.filesystem"):
        notes = by_id(list(FilesystemConnector(contracts).documents()))["contracts:notes.txt"]
    assert notes.acl == frozenset()
    assert (notes.title, notes.doc_type) == ("notes", "file")
    assert "contracts:notes.txt has no access list" in caplog.text


def test_default_acl_applies_only_without_sidecar_acl(contracts: Path) -> None:
    docs = by_id(list(FilesystemConnector(contracts, name="docs", default_acl={"group:employees"}).documents()))
    assert docs["docs:notes.txt"].acl == frozenset({"group:employees"})
    assert docs["docs:acme.pdf"].acl == frozenset({"group:finance", "group:legal"})


@pytest.mark.parametrize(
    ("doc_id", "message"),
    [("contracts:broken-sidecar.pdf", "not valid JSON"), ("contracts:bad-acl.pdf", "invalid acl")],
)
def test_bad_sidecar_fails_closed_at_load_not_at_listing(contracts: Path, doc_id: str, message: str) -> None:
    doc = by_id(list(FilesystemConnector(contracts, default_acl={"group:everyone"}).documents()))[doc_id]
    assert doc.acl == frozenset()  # not the public default: the sidecar meant to restrict it
    with pytest.raises(ParseError, match=message):
        doc.load()


def test_corrupt_file_is_listed_and_fails_at_load(contracts: Path) -> None:
    (contracts / "truncated.pdf").write_bytes(b"%PDF-1.4\n1 0 obj")
    doc = by_id(list(FilesystemConnector(contracts).documents()))["contracts:truncated.pdf"]
    with pytest.raises(ParseError):
        doc.load()


def test_version_changes_with_content(contracts: Path) -> None:
    connector = FilesystemConnector(contracts)
    before = by_id(list(connector.documents()))["contracts:notes.txt"].version
    (contracts / "notes.txt").write_text("edited notes")
    assert by_id(list(connector.documents()))["contracts:notes.txt"].version != before


def test_missing_root_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        list(FilesystemConnector(tmp_path / "nope").documents())


# --- SharePoint export --------------------------------------------------------------------

SITE_URL = "https://intranet.nordbank.example/sites/policies"


def sp_item(item_id: str, name: str, permissions: list[dict], **extra: object) -> dict:
    return {
        "id": item_id,
        "name": name,
        "webUrl": f"{SITE_URL}/Shared%20Documents/{name}",
        "lastModifiedDateTime": "2025-03-01T09:00:00Z",
        "eTag": f'"{{{item_id}-GUID}},3"',
        "file": {"path": f"files/{name}", "mimeType": "text/html"},
        "permissions": permissions,
        **extra,
    }


def group(gid: str) -> dict:
    return {"roles": ["read"], "grantedToV2": {"group": {"id": gid, "displayName": gid.title()}}}


def user(uid: str) -> dict:
    return {"roles": ["read"], "grantedToV2": {"user": {"id": uid, "displayName": uid.title()}}}


@pytest.fixture
def sharepoint(tmp_path: Path) -> Path:
    root = tmp_path / "sharepoint"
    (root / "files").mkdir(parents=True)
    (root / "files" / "remote-work-policy.html").write_text(
        "<html><head><title>Remote Work Policy</title></head><body><h1>Remote Work Policy</h1>"
        "<p>Up to 3 days per week.</p></body></html>"
    )
    write_docx(root / "files" / "stress-test.docx", "Adverse scenario losses")
    (root / "files" / "everyone.html").write_text("<p>Canteen menu</p>")
    (root.parent / "secret.txt").write_text("outside the export")
    items = [
        sp_item("01ABC", "remote-work-policy.html", [group("employees"), user("carol")], title="Remote Work Policy"),
        sp_item("01RISK", "stress-test.docx", [group("risk-committee")]),
        sp_item(
            "01ALL",
            "everyone.html",
            [
                {"roles": ["read"], "link": {"scope": "organization", "type": "view"}},
                {"roles": ["read"], "link": {"scope": "anonymous", "type": "view"}},
            ],
        ),
        sp_item("01ANON", "everyone.html", [{"roles": ["read"], "link": {"scope": "anonymous", "type": "view"}}]),
        {**sp_item("01ESC", "x.txt", [group("employees")]), "file": {"path": "../secret.txt"}},
        {"id": "01FOLDER", "name": "Archive", "folder": {"childCount": 2}},
        {"name": "no-id.html"},
    ]
    manifest = {"site": {"id": "eurobank-policies", "webUrl": SITE_URL}, "items": items}
    (root / "manifest.json").write_text(json.dumps(manifest))
    return root


def test_sharepoint_maps_items_and_permissions(sharepoint: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="sovra.connectors.sharepoint_export"):
        docs = by_id(list(SharePointExportConnector(sharepoint).documents()))
    assert sorted(docs) == [
        "sharepoint:01ABC",
        "sharepoint:01ALL",
        "sharepoint:01ANON",
        "sharepoint:01ESC",
        "sharepoint:01RISK",
    ]
    policy = docs["sharepoint:01ABC"]
    assert policy.title == "Remote Work Policy"
    assert policy.source == "sharepoint"
    assert policy.url == f"{SITE_URL}/Shared%20Documents/remote-work-policy.html"
    assert policy.version == '"{01ABC-GUID},3"'
    assert policy.acl == frozenset({"group:employees", "user:carol"})
    assert policy.metadata["lastModifiedDateTime"] == "2025-03-01T09:00:00Z"
    assert policy.load() == [Page(1, "Remote Work Policy\n\nUp to 3 days per week.")]

    assert docs["sharepoint:01RISK"].title == "stress-test"  # no title: the file name's stem
    assert docs["sharepoint:01RISK"].acl == frozenset({"group:risk-committee"})
    assert docs["sharepoint:01RISK"].load()[0].text == "Adverse scenario losses"
    # An organization-wide link grants what organization_link_principal says, by default nothing,
    # as in the Graph connector (issue 17).
    assert docs["sharepoint:01ALL"].acl == frozenset()
    configured = by_id(
        list(SharePointExportConnector(sharepoint, organization_link_principal="group:everyone").documents())
    )
    assert configured["sharepoint:01ALL"].acl == frozenset({"group:everyone"})
    assert docs["sharepoint:01ANON"].acl == frozenset()  # anonymous links grant nothing
    assert "ignoring an anonymous sharing link" in caplog.text


def test_sharepoint_item_cannot_read_outside_the_export(sharepoint: Path) -> None:
    doc = by_id(list(SharePointExportConnector(sharepoint).documents()))["sharepoint:01ESC"]
    with pytest.raises(ParseError, match="outside the export"):
        doc.load()


def test_map_permissions_handles_identity_lists_and_unknown_shapes() -> None:
    perms = [
        {
            "roles": ["read"],
            "link": {"scope": "users"},
            "grantedToIdentitiesV2": [{"user": {"id": "dave"}}, {"group": {"id": "legal"}}],
        },
        {"roles": ["owner"], "grantedToV2": {"siteGroup": {"id": "3", "displayName": "Owners"}}},
        {"roles": ["read"], "grantedToV2": {"application": {"id": "app"}}},
        "garbage",
    ]
    assert map_permissions(perms) == frozenset({"user:dave", "group:legal"})


def test_broken_manifest_raises_instead_of_listing_nothing(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        list(SharePointExportConnector(tmp_path).documents())
    (tmp_path / "manifest.json").write_text('{"items": [')
    with pytest.raises(ParseError, match="not valid JSON"):
        list(SharePointExportConnector(tmp_path).documents())


# --- ledger -------------------------------------------------------------------------------

LEDGER_SCHEMA = """
CREATE TABLE accounts(account_code TEXT PRIMARY KEY, name TEXT,
  type TEXT CHECK(type IN ('asset','liability','equity','income','expense')), description TEXT);
CREATE TABLE counterparties(counterparty_id TEXT PRIMARY KEY, name TEXT, country TEXT, iban TEXT,
  category TEXT, contract_id TEXT NULL);
CREATE TABLE journal_entries(entry_id INTEGER PRIMARY KEY, entry_date TEXT, account_code TEXT REFERENCES accounts,
  counterparty_id TEXT NULL REFERENCES counterparties, description TEXT, debit NUMERIC, credit NUMERIC,
  currency TEXT, reference TEXT);
"""


@pytest.fixture
def ledger(tmp_path: Path) -> Path:
    path = tmp_path / "ledger.sqlite"
    with sqlite3.connect(path) as conn:
        conn.executescript(LEDGER_SCHEMA)
        conn.executemany(
            "INSERT INTO accounts VALUES (?,?,?,?)",
            [
                ("1000", "Bank", "asset", "Main operating account"),
                ("6100", "Office supplies", "expense", "Paper, toner"),
            ],
        )
        conn.executemany(
            "INSERT INTO counterparties VALUES (?,?,?,?,?,?)",
            [
                ("CP-001", "Acme Office Supplies GmbH", "DE", "DE89370400440532013000", "supplies", "C-2024-001"),
                ("CP-002", "Quiet Vendor SA", "FR", "FR7630006000011234567890189", "services", None),
            ],
        )
        conn.executemany(
            "INSERT INTO journal_entries(entry_date, account_code, counterparty_id, description, debit, credit,"
            " currency, reference)"
            " VALUES (?,?,?,?,?,?,?,?)",
            [
                ("2024-01-31", "6100", "CP-001", "Invoice 1", 1000.0, 0, "EUR", "INV-1"),
                ("2024-02-29", "6100", "CP-001", "Invoice 2", 1500.5, 0, "EUR", "INV-2"),
                ("2025-01-31", "6100", "CP-001", "Invoice 3", 2000.0, 0, "EUR", "INV-3"),
                ("2025-02-15", "6100", "CP-001", "Credit note", 0, 250.0, "EUR", "CN-1"),
                ("2025-02-15", "1000", None, "Bank fees", 10.0, 0, "EUR", None),
            ],
        )
    conn.close()
    return path


def test_ledger_connector_describes_counterparties_and_accounts(ledger: Path) -> None:
    ledger.chmod(stat.S_IRUSR)  # read-only file: the connector must not need write access
    docs = by_id(list(LedgerConnector(ledger).documents()))
    assert sorted(docs) == [
        "ledger:accounts/1000",
        "ledger:accounts/6100",
        "ledger:counterparties/CP-001",
        "ledger:counterparties/CP-002",
    ]
    acme = docs["ledger:counterparties/CP-001"]
    assert acme.title == "Counterparty: Acme Office Supplies GmbH"
    assert acme.url == "ledger://counterparties/CP-001"
    assert acme.acl == frozenset({"group:finance"})
    assert (acme.doc_type, acme.metadata["contract_id"]) == ("counterparty", "C-2024-001")
    [page] = acme.load()
    assert "Country: DE" in page.text and "Category: supplies" in page.text and "Contract: C-2024-001" in page.text
    assert "- 2024: 2 entries, total 2,500.50 EUR" in page.text
    assert "- 2025: 2 entries, total 1,750.00 EUR" in page.text
    assert "DE8937" not in page.text  # bank details are not indexed
    assert "No ledger entries recorded." in docs["ledger:counterparties/CP-002"].load()[0].text
    account = docs["ledger:accounts/6100"]
    assert account.url == "ledger://accounts/6100" and account.doc_type == "account"
    assert account.load()[0].text == "Account 6100: Office supplies\nType: expense\nDescription: Paper, toner"


def test_ledger_versions_follow_content(ledger: Path) -> None:
    before = {d.id: d.version for d in LedgerConnector(ledger).documents()}
    with sqlite3.connect(ledger) as conn:
        conn.execute("UPDATE counterparties SET country = 'AT' WHERE counterparty_id = 'CP-001'")
    conn.close()
    after = {d.id: d.version for d in LedgerConnector(ledger, acl=["group:audit"]).documents()}
    changed = {k for k in before if before[k] != after[k]}
    assert changed == {"ledger:counterparties/CP-001"}


def test_ledger_connector_refuses_a_missing_or_foreign_database(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        list(LedgerConnector(tmp_path / "none.sqlite").documents())
    other = tmp_path / "other.sqlite"
    sqlite3.connect(other).execute("CREATE TABLE t(x)").connection.close()
    with pytest.raises(ConfigError, match="cannot read ledger"):
        list(LedgerConnector(other).documents())


# --- registry -----------------------------------------------------------------------------


def test_registry_creates_builtins_by_name(contracts: Path, ledger: Path) -> None:
    fs = create("filesystem", root=str(contracts), name="files", default_acl=["group:employees"])
    assert isinstance(fs, FilesystemConnector) and isinstance(fs, Connector)
    assert by_id(list(fs.documents()))["files:notes.txt"].acl == frozenset({"group:employees"})
    assert isinstance(create("ledger", db_path=ledger), LedgerConnector)


def test_registry_accepts_custom_connectors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(base, "_REGISTRY", {})

    class Memory:
        def __init__(self, name: str) -> None:
            self.name = name

        def documents(self):  # type: ignore[no-untyped-def]
            yield Document(id=f"{self.name}:1", title="t", source=self.name, url="", version="1",
                           acl=frozenset({"group:x"}), load=lambda: [Page(1, "hi")])  # fmt: skip

    register("memory", Memory)
    connector = create("memory", name="mem")
    assert [d.id for d in connector.documents()] == ["mem:1"]
    assert "memory" in base.registered_kinds()


def test_registry_errors_are_config_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(base, "_REGISTRY", {})
    with pytest.raises(ConfigError, match="unknown connector kind 'nfs'") as err:
        create("nfs")
    assert err.value.hint and "filesystem" in err.value.hint
    with pytest.raises(ConfigError, match="does not accept these options"):
        create("filesystem", root="/tmp", colour="blue")
    register("not-a-connector", lambda: object())
    with pytest.raises(ConfigError, match="does not implement"):
        create("not-a-connector")


# --- the generated demo corpus, once it exists -----------------------------------------------


def test_connectors_read_the_generated_demo_corpus(tmp_path: Path) -> None:
    demo = pytest.importorskip("sovra.evals.demo_corpus")
    demo.generate(tmp_path)
    contracts = list(FilesystemConnector(tmp_path / "contracts").documents())
    policies = list(SharePointExportConnector(tmp_path / "sharepoint").documents())
    ledger_docs = list(LedgerConnector(tmp_path / "ledger.sqlite").documents())
    assert contracts and policies and ledger_docs
    for doc in [*contracts, *policies, *ledger_docs]:
        assert doc.acl, f"{doc.id} has no ACL in the demo corpus"
        pages = doc.load()
        assert pages and all(p.text.strip() for p in pages), doc.id
    assert all(d.metadata.get("contract_id") for d in contracts)
    assert any(len(d.load()) > 1 for d in contracts if d.id.endswith(".pdf"))
