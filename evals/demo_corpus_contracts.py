"""Contract documents of the demo corpus: clause texts, files and metadata sidecars."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sovra.evals.demo_corpus_contract_specs import (
    SUPPLIER_CONTRACTS,
    Contract,
    LoanContract,
    SupplierContract,
    TermSheet,
    fee_schedule,
)
from sovra.evals.demo_corpus_loans import LOAN_CONTRACTS, TERM_SHEETS, loan_schedule
from sovra.evals.demo_corpus_render import DocBody, Section, Table, write_docx, write_pdf

NORDBANK = (
    "Nordbank AG, Taunusanlage 12, 60325 Frankfurt am Main, Germany, registered with the local "
    "court of Frankfurt am Main under HRB 104 221"
)


def eur(amount: float) -> str:
    return f"EUR {amount:,.2f}"


def long_date(day: Any) -> str:
    return f"{day.day} {day.strftime('%B %Y')}"


def _common_tail(c: Contract, start: int) -> list[Section]:
    """Boilerplate clauses every contract shares, numbered from ``start``."""
    n = start
    return [
        Section(
            f"{n}. Data protection and information security",
            (
                f"{n}.1 Where a party processes personal data on behalf of the other, the parties shall "
                "conclude a data processing agreement under Article 28 GDPR before processing starts.",
                f"{n}.2 {c.counterparty} shall comply with the Nordbank information security requirements "
                "for suppliers, shall report any security incident affecting Nordbank data within 24 "
                "hours and shall process Nordbank data only within the European Economic Area.",
            ),
        ),
        Section(
            f"{n + 1}. Audit rights",
            (
                f"{n + 1}.1 Nordbank, its external auditors and the competent supervisory authorities "
                "(including BaFin and the European Central Bank) may audit compliance with this Agreement "
                "on 10 business days' notice, or without notice where required by a supervisor.",
            ),
        ),
        Section(
            f"{n + 2}. Assignment and subcontracting",
            (
                f"{n + 2}.1 Neither party may assign this Agreement without the prior written consent of "
                "the other party. Subcontracting of material parts of the services requires Nordbank's "
                "prior written consent.",
            ),
        ),
        Section(
            f"{n + 3}. Notices",
            (
                f"{n + 3}.1 Notices under this Agreement must be in writing and delivered by hand, by "
                "registered mail or by email with confirmation of receipt. Notices to Nordbank are "
                "addressed to Nordbank AG, Legal Department, Taunusanlage 12, 60325 Frankfurt am Main, "
                "legal.notices@nordbank.example.",
            ),
        ),
        Section(
            f"{n + 4}. Entire agreement and severability",
            (
                f"{n + 4}.1 This Agreement, including its Schedules, is the entire agreement between the "
                "parties on its subject matter. Amendments must be made in writing. Should any provision "
                "be invalid, the remaining provisions remain in force.",
            ),
        ),
    ]


def _law_and_confidentiality(c: Contract) -> list[Section]:
    return [
        Section(
            "6. Governing law and jurisdiction",
            (
                f"6.1 This Agreement and any non-contractual obligations arising out of it are governed "
                f"by the laws of {c.governing_law}.",
                f"6.2 The courts of {c.courts} have exclusive jurisdiction over any dispute arising out "
                "of or in connection with this Agreement.",
            ),
        ),
        Section(
            "7. Confidentiality",
            (
                "7.1 Each party shall keep confidential all information received from the other party "
                "in connection with this Agreement and use it only for the purposes of this Agreement.",
                "7.2 The confidentiality obligation continues for 5 years after the end of this "
                "Agreement. It does not apply to information that is public or must be disclosed by law "
                "or to a supervisory authority.",
                "7.3 Nordbank may disclose this Agreement to its auditors, supervisors and professional advisers.",
            ),
        ),
    ]


def _signatures(c: Contract) -> Section:
    return Section(
        "Signatures",
        (
            f"Signed in Frankfurt am Main on {long_date(c.signed)}.",
            "For Nordbank AG: ________________________  ________________________",
            f"For {c.counterparty}: ________________________  ________________________",
        ),
    )


def supplier_body(c: SupplierContract) -> DocBody:
    per = {"monthly": "month", "quarterly": "quarter", "annually": "year"}[c.frequency]
    role = "Landlord" if c.contract_type == "lease" else "Supplier"
    if c.convenience_days is not None:
        convenience = (
            f"4.2 Nordbank may terminate this Agreement early for convenience at any time by giving "
            f"the {role} not less than {c.convenience_days} days' written notice. No termination fee "
            "is payable; fees are due pro rata up to the termination date."
        )
    else:
        convenience = (
            "4.2 Neither party may terminate this Agreement for convenience. Ordinary termination "
            "before the end of the Term is excluded; this Agreement ends only at the end of the Term "
            "or by termination for cause under clause 4.1."
        )
    termination = [
        "4.1 Either party may terminate this Agreement for cause with immediate effect, in "
        "particular if the other party materially breaches this Agreement and does not remedy the "
        "breach within 30 days of written notice, or becomes insolvent.",
        convenience,
    ]
    if c.termination_note:
        termination.append(f"4.3 {c.termination_note}")
    termination.append(
        f"4.{len(termination) + 1} On termination the {role} shall provide reasonable exit "
        "assistance for up to 6 months at the rates in force."
    )
    sections = [
        Section(
            "1. Parties",
            (
                f'1.1 {NORDBANK} ("Nordbank").',
                f'1.2 {c.counterparty}, {c.address} (the "{role}").',
                f'1.3 The {role} provides {c.subject} as described in Schedule 1 (the "Services").',
            ),
        ),
        Section(
            "2. Term",
            (
                f"2.1 This Agreement takes effect on {long_date(c.effective)} and ends on "
                f'{long_date(c.end)} (the "Term"), unless terminated earlier under clause 4.',
                "2.2 The Term may be extended by written agreement of the parties.",
            ),
        ),
        Section(
            "3. Fees and payment schedule",
            (
                f"3.1 Nordbank shall pay a fixed fee of {eur(c.fee)} per {per}, exclusive of VAT, "
                f"payable {c.frequency}. The payment schedule is set out in Schedule 2.",
                "3.2 Invoices are payable within 30 days of receipt of a correct invoice quoting the "
                f"contract number {c.contract_id}.",
                f"3.3 Annual cap: the total amount payable under this Agreement in any calendar year, "
                f'including additional orders, shall not exceed {eur(c.annual_cap or 0.0)} (the "Annual '
                'Cap"). Amounts above the Annual Cap require a prior written amendment signed by both '
                "parties.",
                "3.4 Fees are fixed for the first 12 months. Thereafter fees may be adjusted once a year "
                "in line with the consumer price index, by at most 3% per year, on 3 months' notice.",
            ),
        ),
        Section("4. Termination", tuple(termination)),
        Section(
            "5. Liability",
            (
                f"5.1 The total liability of each party under this Agreement is limited to "
                f'{c.liability_cap} (the "Liability Cap").',
                "5.2 The Liability Cap does not apply to liability for intent or gross negligence, for "
                "injury to life, body or health, for breaches of confidentiality or data protection, or "
                "where liability cannot be limited by law.",
                "5.3 Neither party is liable for indirect or consequential loss, including lost profit.",
            ),
        ),
        *_law_and_confidentiality(c),
        Section(
            "8. Service levels and reporting",
            (
                f"8.1 The {role} shall meet the service levels in Schedule 1 and report on them monthly.",
                "8.2 If a service level is missed in 2 consecutive months, Nordbank may reduce the fee "
                "for the following month by 5%.",
            ),
        ),
        *_common_tail(c, 9),
        _signatures(c),
    ]
    schedule1 = Section("Schedule 1 - Description of the Services", tuple(f"- {d}" for d in c.deliverables))
    rows = tuple(
        (str(n), label, due.isoformat(), eur(amount)) for n, (due, amount, label) in enumerate(fee_schedule(c), start=1)
    )
    table = Table(
        "Schedule 2 - Payment schedule",
        ("No.", "Period", "Due date", "Amount (excl. VAT)"),
        rows,
        (15.0, 75.0, 40.0, 50.0),
    )
    return DocBody(
        title=c.title,
        lead=(
            f"Contract number: {c.contract_id}",
            f"{'Lease' if c.contract_type == 'lease' else 'Agreement'} dated {long_date(c.signed)}",
        ),
        sections=(*sections, schedule1),
        tables=(table,),
        footer=f"{c.contract_id} - Confidential - Nordbank AG",
    )


def loan_body(c: LoanContract) -> DocBody:
    sections = [
        Section(
            "1. Parties",
            (
                f'1.1 {NORDBANK}, as lender (the "Lender").',
                f'1.2 {c.counterparty}, {c.address}, as borrower (the "Borrower").',
            ),
        ),
        Section(
            "2. Term",
            (
                f"2.1 The Lender makes available {c.facility} for {c.purpose}. The facility may be "
                f"utilised from {long_date(c.effective)}.",
                f"2.2 The final maturity date is {long_date(c.end)}, on which all outstanding amounts become due.",
            ),
        ),
        Section(
            "3. Facility amount, interest and repayment",
            (
                f'3.1 The total commitment is {eur(c.principal)} (the "Facility Amount").',
                f"3.2 Interest accrues at {c.pricing} and is payable quarterly in arrears.",
                f"3.3 The Borrower repays {c.amort_pct_per_quarter:.2f}% of the Facility Amount on each "
                "quarterly interest payment date, with the balance due on the final maturity date. The "
                "repayment schedule is set out in Schedule 1.",
                "3.4 An arrangement fee of 0.75% of the Facility Amount is payable on signing.",
            ),
        ),
        Section(
            "4. Prepayment and termination",
            (
                f"4.1 {c.prepayment}",
                "4.2 The Lender may terminate the facility and declare all amounts due on an event of "
                "default, including non-payment, breach of a financial covenant, cross-default above EUR "
                "500,000, insolvency or a change of control without the Lender's consent.",
            ),
        ),
        Section(
            "5. Limitation of liability",
            (
                "5.1 The Lender is liable only for intent and gross negligence. Any liability of the "
                "Lender for indirect loss is excluded.",
                "5.2 The Borrower indemnifies the Lender against costs arising from an event of default.",
            ),
        ),
        *_law_and_confidentiality(c),
        Section(
            "8. Financial covenants",
            tuple(
                f"8.{n} {cov}, tested quarterly on the basis of the Borrower's consolidated accounts."
                for n, cov in enumerate(c.covenants, start=1)
            ),
        ),
        Section(
            "9. Information undertakings",
            (
                "9.1 The Borrower delivers audited annual accounts within 120 days of year end and "
                "quarterly management accounts within 45 days of quarter end, each with a compliance "
                "certificate.",
            ),
        ),
        *_common_tail(c, 10),
        _signatures(c),
    ]
    rows = tuple(
        (str(n), due.isoformat(), eur(repaid), eur(interest), eur(left))
        for n, (due, repaid, interest, left) in enumerate(loan_schedule(c), start=1)
    )
    table = Table(
        "Schedule 1 - Repayment schedule (indicative interest)",
        ("No.", "Date", "Repayment", "Interest", "Outstanding"),
        rows,
        (12.0, 30.0, 42.0, 42.0, 54.0),
    )
    return DocBody(
        title=c.title,
        lead=(f"Contract number: {c.contract_id}", f"Facility agreement dated {long_date(c.signed)}"),
        sections=tuple(sections),
        tables=(table,),
        footer=f"{c.contract_id} - Strictly confidential - Nordbank AG",
    )


def term_sheet_body(t: TermSheet) -> DocBody:
    return DocBody(
        title=t.title,
        lead=(
            f"Reference: {t.contract_id} (relates to contract {t.related.contract_id})",
            f"Dated {long_date(t.dated)}",
        ),
        sections=tuple(Section(f"{n}. {name}", (value,)) for n, (name, value) in enumerate(t.terms, start=1)),
        footer="This document is confidential.",
    )


def sidecar(c: Contract | TermSheet) -> dict[str, Any]:
    base = c.related if isinstance(c, TermSheet) else c
    return {
        "contract_id": c.contract_id,
        "title": c.title,
        "counterparty": base.counterparty,
        "counterparty_id": base.counterparty_id,
        "contract_type": base.contract_type,
        "effective_date": (c.dated if isinstance(c, TermSheet) else base.effective).isoformat(),
        "end_date": base.end.isoformat(),
        "currency": "EUR",
        "annual_cap": c.annual_cap,
        "acl": list(base.acl),
    }


def write_contracts(folder: Path) -> list[dict[str, Any]]:
    """Write every contract and term sheet with its sidecar; return the sidecars (with file names)."""
    folder.mkdir(parents=True, exist_ok=True)
    written: list[dict[str, Any]] = []
    items: list[tuple[Contract | TermSheet, DocBody, str]] = [
        *((c, supplier_body(c), c.filename) for c in SUPPLIER_CONTRACTS),
        *((c, loan_body(c), c.filename) for c in LOAN_CONTRACTS),
        *((t, term_sheet_body(t), t.filename) for t in TERM_SHEETS),
    ]
    for spec, body, name in items:
        path = folder / name
        if name.endswith(".pdf"):
            write_pdf(path, body)
        else:
            write_docx(path, body)
        meta = sidecar(spec)
        (folder / f"{name}.meta.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        written.append({"file": name, **meta})
    return written
