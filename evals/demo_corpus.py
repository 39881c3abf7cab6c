"""Deterministic demo corpus for the fictitious bank Nordbank AG.

``generate(dest)`` writes users, a SharePoint policy library export, a contract store and a
SQLite general ledger in the on-disk format the demo connectors read, plus
``planted_facts.json``: the inconsistencies planted on purpose and questions with expected
answers (the seed of an eval dataset). Same seed, same bytes: no wall clock is read.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import sqlite3
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sovra.evals.demo_corpus_contract_specs import (
    ACME,
    BLAUWAL,
    DATASTROM,
    KEIZERSGRACHT,
)
from sovra.evals.demo_corpus_contracts import write_contracts
from sovra.evals.demo_corpus_ledger import LEDGER_END, LedgerAnomalies, write_ledger
from sovra.evals.demo_corpus_loans import KEIZERSGRACHT_HEADS, RHEINTAL, RHEINTAL_TERM_SHEET
from sovra.evals.demo_corpus_policies import PEOPLE_POLICIES, Policy
from sovra.evals.demo_corpus_policies_ops import OPS_POLICIES
from sovra.evals.demo_corpus_render import DocBody, write_docx, write_html
from sovra.evals.demo_corpus_restricted import RESTRICTED_PHRASES, RESTRICTED_POLICIES

__all__ = ["DEFAULT_SEED", "POLICIES", "USERS", "generate"]

log = logging.getLogger(__name__)

DEFAULT_SEED = 20251127
SITE_URL = "https://intranet.nordbank.example/sites/policies"
POLICIES: tuple[Policy, ...] = (*PEOPLE_POLICIES, *OPS_POLICIES, *RESTRICTED_POLICIES)

# The demo bank's "today": the ledger ends here, so "this year" in a demo question means 2026
# whatever the wall clock says.
AS_OF = LEDGER_END

# The demo's example questions on the chat's empty screen (`sovra demo` writes them to the data dir's
# chat-examples.json; a deployment sets its own with SOVRA_CHAT_EXAMPLES).
CHAT_EXAMPLES = (
    "What is the hotel limit per night in London?",
    "Can we terminate the Acme Office Supplies contract early?",
    "May I accept a gift worth EUR 120 from a supplier?",
)

USERS: dict[str, dict[str, Any]] = {
    "alice": {"name": "Alice Martin", "groups": ["employees"]},
    "bob": {"name": "Bob Schneider", "groups": ["employees", "finance"]},
    "carol": {"name": "Carol Dubois", "groups": ["employees", "risk-committee"]},
    "dave": {"name": "Dave Legal", "groups": ["employees", "legal"]},
    "erin": {"name": "Erin Auditor", "groups": ["employees", "auditor"]},
}
GROUP_NAMES = {
    "employees": "All Employees",
    "everyone": "Everyone",
    "finance": "Finance",
    "risk-committee": "Risk Committee",
    "legal": "Legal",
}


def _dump(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def readers(acl: tuple[str, ...] | list[str]) -> list[str]:
    """The demo users whose principals intersect ``acl``."""
    out = []
    for uid, user in USERS.items():
        principals = {f"user:{uid}", "group:everyone", *(f"group:{g}" for g in user["groups"])}
        if principals & set(acl):
            out.append(uid)
    return out


def _permission(principal: str) -> dict[str, Any]:
    kind, _, ident = principal.partition(":")
    if kind == "user":
        granted = {"user": {"id": ident, "displayName": USERS[ident]["name"]}}
    else:
        granted = {"group": {"id": ident, "displayName": GROUP_NAMES[ident]}}
    return {"roles": ["read"], "grantedToV2": granted}


def _policy_body(p: Policy) -> DocBody:
    classification = "Internal" if set(p.acl) & {"group:employees", "group:everyone"} else "Strictly Confidential"
    return DocBody(
        title=p.title,
        lead=(
            f"Document owner: {p.owner}. Version {p.version}.0, last updated {p.modified[:10]}. "
            f"Classification: {classification}.",
            "Nordbank AG, Taunusanlage 12, 60325 Frankfurt am Main.",
        ),
        sections=p.sections,
        footer="Questions about this document: policies@nordbank.example",
    )


def write_sharepoint(folder: Path) -> list[dict[str, Any]]:
    files = folder / "files"
    files.mkdir(parents=True, exist_ok=True)
    items: list[dict[str, Any]] = []
    for p in POLICIES:
        path = files / p.filename
        body = _policy_body(p)
        if p.fmt == "html":
            write_html(path, body, {"owner": p.owner, "version": str(p.version)})
            mime = "text/html"
        else:
            write_docx(path, body)
            mime = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
        digest = hashlib.sha1(p.slug.encode()).digest()
        web_url = f"{SITE_URL}/Shared%20Documents/{quote(p.filename)}"
        items.append(
            {
                # Graph driveItem ids look like "01" + 32 base32 characters.
                "id": "01" + base64.b32encode(digest).decode()[:32],
                "name": p.filename,
                "title": p.title,
                "webUrl": web_url,
                "lastModifiedDateTime": p.modified,
                "eTag": f'"{{{str(uuid.uuid5(uuid.NAMESPACE_URL, web_url)).upper()}}},{p.version}"',
                "size": path.stat().st_size,
                "file": {"path": f"files/{p.filename}", "mimeType": mime},
                "permissions": [_permission(principal) for principal in p.acl],
            }
        )
    _dump(folder / "manifest.json", {"site": {"id": "eurobank-policies", "webUrl": SITE_URL}, "items": items})
    return items


def _sum(con: sqlite3.Connection, sql: str, *args: Any) -> float:
    return round(float(con.execute(sql, args).fetchone()[0] or 0.0), 2)


def _planted_facts(
    dest: Path, contracts: list[dict[str, Any]], anomalies: LedgerAnomalies, seed: int
) -> dict[str, Any]:
    by_id = {c["contract_id"]: f"contracts/{c['file']}" for c in contracts}
    con = sqlite3.connect(dest / "ledger.sqlite")
    try:
        paid = "SELECT SUM(debit) FROM journal_entries WHERE reference = ? AND substr(entry_date, 1, 4) = ?"
        acme_2025 = _sum(con, paid, ACME.contract_id, "2025")
        acme_2026 = _sum(con, paid, ACME.contract_id, "2026")
        acme_2026_n = con.execute(
            "SELECT COUNT(*) FROM journal_entries WHERE reference = ? AND entry_date LIKE '2026-%'", (ACME.contract_id,)
        ).fetchone()[0]
        blauwal_2025 = _sum(con, paid, BLAUWAL.contract_id, "2025")
        dup_dates = [
            r[0]
            for r in con.execute(
                f"SELECT entry_date FROM journal_entries WHERE entry_id IN "
                f"({','.join('?' * len(anomalies.duplicate_entry_ids))}) ORDER BY entry_id",
                anomalies.duplicate_entry_ids,
            )
        ]
    finally:
        con.close()
    policy = "sharepoint/files/"
    inconsistencies = [
        {
            "id": "INC-001",
            "kind": "amount_mismatch",
            "contract_id": RHEINTAL.contract_id,
            "documents": [by_id[RHEINTAL_TERM_SHEET.contract_id], by_id[RHEINTAL.contract_id]],
            "field": "facility_amount",
            "values": {"term_sheet": 25000000.0, "contract": RHEINTAL.principal},
            "description": "The term sheet offers EUR 25,000,000; the signed facility agreement says EUR 22,500,000.",
        },
        {
            "id": "INC-002",
            "kind": "governing_law_mismatch",
            "contract_id": KEIZERSGRACHT.contract_id,
            "documents": [by_id[KEIZERSGRACHT_HEADS.contract_id], by_id[KEIZERSGRACHT.contract_id]],
            "field": "governing_law",
            "values": {"term_sheet": "Netherlands", "contract": "Germany"},
            "description": "The heads of terms agree Dutch law; the signed lease is governed by German law.",
        },
        {
            "id": "INC-003",
            "kind": "payments_exceed_annual_cap",
            "contract_id": BLAUWAL.contract_id,
            "documents": [by_id[BLAUWAL.contract_id], "ledger.sqlite"],
            "year": 2025,
            "annual_cap": BLAUWAL.annual_cap,
            "ledger_total": blauwal_2025,
            "entry_ids": anomalies.over_cap_extra_entry_ids,
            "description": f"Payments to {BLAUWAL.counterparty} in 2025 total EUR {blauwal_2025:,.2f}, "
            f"above the annual cap of EUR {BLAUWAL.annual_cap:,.2f}.",
        },
        {
            "id": "INC-004",
            "kind": "duplicate_payment",
            "contract_id": ACME.contract_id,
            "documents": [by_id[ACME.contract_id], "ledger.sqlite"],
            "amount": ACME.fee,
            "entry_ids": anomalies.duplicate_entry_ids,
            "dates": dup_dates,
            "description": "The September 2025 Acme invoice was paid twice.",
        },
        {
            "id": "INC-005",
            "kind": "fee_above_contract",
            "contract_id": DATASTROM.contract_id,
            "documents": [by_id[DATASTROM.contract_id], "ledger.sqlite"],
            "values": {"contract_fee": DATASTROM.fee, "ledger_fee": 6820.0},
            "entry_ids": anomalies.fee_increase_entry_ids,
            "description": "Datastrom invoices in 2026 are 10% above the contract fee; the contract allows at "
            "most 3% indexation per year.",
        },
    ]

    def q(
        qid: str, user: str, question: str, answer: str, must: list[str], sources: list[str], kind: str, **extra: Any
    ) -> dict[str, Any]:
        return {
            "id": qid,
            "user": user,
            "kind": kind,
            "question": question,
            "expected_answer": answer,
            "must_contain": must,
            "sources": sources,
            **extra,
        }

    questions = [
        q(
            "Q-001",
            "alice",
            "How many days per week can I work from home?",
            "Up to 3 days per week.",
            ["3 days"],
            [policy + "remote-work-policy.html"],
            "policy",
        ),
        q(
            "Q-002",
            "alice",
            "What is the hotel limit per night in London?",
            "EUR 250 per night.",
            ["250"],
            [policy + "travel-and-expenses-policy.docx"],
            "policy",
        ),
        q(
            "Q-003",
            "alice",
            "A supplier offered me a gift worth EUR 120. May I accept it?",
            "Only with line manager approval and an entry in the gifts register within 5 working days.",
            ["line manager", "5 working days"],
            [policy + "gifts-and-hospitality-policy.docx"],
            "policy",
        ),
        q(
            "Q-004",
            "alice",
            "Within how many hours must a personal data breach be notified to the supervisory authority?",
            "Within 72 hours.",
            ["72 hours"],
            [policy + "data-protection-policy.docx"],
            "policy",
        ),
        q(
            "Q-005",
            "alice",
            "Who must approve a purchase of EUR 250,000?",
            "The Chief Financial Officer, after a competitive tender run by Procurement.",
            ["Chief Financial Officer"],
            [policy + "procurement-policy.docx"],
            "policy",
        ),
        q(
            "Q-006",
            "alice",
            "How long do we keep accounting records?",
            "10 years.",
            ["10 years"],
            [policy + "record-retention-policy.html"],
            "policy",
        ),
        q(
            "Q-007",
            "bob",
            "Can we terminate the Acme Office Supplies contract early?",
            "Yes. Nordbank may terminate for convenience with 90 days' written notice (clause 4.2).",
            ["90 days"],
            [by_id[ACME.contract_id]],
            "contract",
        ),
        q(
            "Q-008",
            "bob",
            "What are the monthly fee and the annual cap in the Acme Office Supplies contract?",
            "EUR 8,500 per month; annual cap EUR 120,000.",
            ["8,500", "120,000"],
            [by_id[ACME.contract_id]],
            "contract",
        ),
        q(
            "Q-009",
            "bob",
            "Can we terminate the Blauwal cleaning contract for convenience?",
            "No. Termination for convenience is excluded; only termination for cause.",
            ["No"],
            [by_id[BLAUWAL.contract_id]],
            "contract",
        ),
        q(
            "Q-010",
            "bob",
            "How much have we paid Acme Office Supplies GmbH in 2026?",
            f"EUR {acme_2026:,.2f} ({acme_2026_n} monthly payments of EUR 8,500).",
            [f"{acme_2026:,.0f}"],
            ["ledger.sqlite"],
            "ledger",
            expected_value=acme_2026,
        ),
        q(
            "Q-011",
            "bob",
            "How much did we pay Acme Office Supplies GmbH in 2025?",
            f"EUR {acme_2025:,.2f}, including a duplicate payment of the September invoice.",
            [f"{acme_2025:,.0f}"],
            ["ledger.sqlite"],
            "ledger",
            expected_value=acme_2025,
        ),
        q(
            "Q-012",
            "bob",
            "Did our 2025 payments to Blauwal Facility Services exceed the contract's annual cap?",
            f"Yes: EUR {blauwal_2025:,.2f} paid against a cap of EUR 125,000.",
            ["125,000"],
            [by_id[BLAUWAL.contract_id], "ledger.sqlite"],
            "consistency",
            expected_value=blauwal_2025,
        ),
        q(
            "Q-013",
            "carol",
            "What is the CET1 floor in the risk appetite statement?",
            "A CET1 floor of 13.2%.",
            ["13.2%"],
            [policy + "risk-appetite-statement-2026.docx"],
            "acl",
        ),
        q(
            "Q-014",
            "alice",
            "What is the CET1 floor in the risk appetite statement?",
            "Alice has no access to the risk appetite statement; the answer must not reveal it.",
            [],
            [],
            "acl",
            forbidden=["13.2%"],
            expected_behavior="no_access",
        ),
        q(
            "Q-015",
            "dave",
            "Which law governs the Keizersgracht 480 office lease?",
            "German law per the signed lease, although the heads of terms agreed Dutch law.",
            ["German"],
            [by_id[KEIZERSGRACHT.contract_id], by_id[KEIZERSGRACHT_HEADS.contract_id]],
            "consistency",
        ),
        q(
            "Q-016",
            "dave",
            "What is the facility amount of the Rheintal Logistik senior facility?",
            "EUR 22,500,000 in the signed agreement (the term sheet said EUR 25,000,000).",
            ["22,500,000"],
            [by_id[RHEINTAL.contract_id], by_id[RHEINTAL_TERM_SHEET.contract_id]],
            "consistency",
        ),
        q(
            "Q-017",
            "alice",
            "By when must the Code of Conduct be attested each year?",
            "By 31 January.",
            ["31 January"],
            [policy + "code-of-conduct.html"],
            "policy",
        ),
        q(
            "Q-018",
            "alice",
            "How quickly must a major ICT incident first be notified to BaFin?",
            "Within 4 hours of classification as major and no later than 24 hours after detection.",
            ["4 hours", "24 hours"],
            [policy + "incident-reporting-procedure.html"],
            "policy",
        ),
    ]
    restricted = [
        {
            "path": policy + p.filename,
            "title": p.title,
            "acl": list(p.acl),
            "phrase": RESTRICTED_PHRASES[p.slug],
            "allowed_users": readers(p.acl),
            "denied_users": [u for u in USERS if u not in readers(p.acl)],
        }
        for p in RESTRICTED_POLICIES
    ]
    return {
        "seed": seed,
        "inconsistencies": inconsistencies,
        "questions": questions,
        "restricted_documents": restricted,
    }


def generate(dest: Path, seed: int = DEFAULT_SEED) -> None:
    """Write the Nordbank demo corpus under ``dest`` (created if missing, files overwritten)."""
    started = time.perf_counter()
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    _dump(dest / "users.json", USERS)
    write_sharepoint(dest / "sharepoint")
    contracts = write_contracts(dest / "contracts")
    anomalies = write_ledger(dest / "ledger.sqlite", seed)
    _dump(dest / "planted_facts.json", _planted_facts(dest, contracts, anomalies, seed))
    log.info("demo corpus written to %s in %.2fs", dest, time.perf_counter() - started)
