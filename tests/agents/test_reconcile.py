"""Ledger reconciliation on the demo bank: every planted ledger discrepancy is found with the clause
and the exact journal entries, contracts paid as agreed are not flagged, finance access is enforced."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest

from sovra.agents import get_agent
from sovra.agents.reconcile import reconcile
from sovra.evals.demo_corpus_contract_specs import SUPPLIER_CONTRACTS
from sovra.tools.extract import KeyTerms, ScheduledPayment
from sovra.tools.ledger import LedgerRow

PLANTED = {
    "INC-003": (
        "Did our 2025 payments to Blauwal Facility Services exceed the contract's annual cap?",
        "Over annual cap",
    ),
    "INC-004": ("Reconcile the Acme Office Supplies contract with the ledger", "Duplicate payment"),
    "INC-005": ("Reconcile Datastrom Telecom payments with the contract", "Fee above contract"),
}


def _facts(settings) -> dict:
    return json.loads((settings.paths.corpus / "planted_facts.json").read_text())


@pytest.mark.parametrize("inc_id", sorted(PLANTED))
def test_planted_ledger_discrepancy_is_found_with_clause_and_rows(demo_runtime, demo_settings, inc_id):
    inc = next(i for i in _facts(demo_settings)["inconsistencies"] if i["id"] == inc_id)
    question, label = PLANTED[inc_id]
    a = demo_runtime.ask(get_agent("reconcile"), question, "bob")
    assert a.status == "answered", a.text
    lines = [ln for ln in a.text.splitlines() if re.match(r"\d+\. ", ln)]
    assert len(lines) == 1, a.text  # exactly the planted discrepancy, nothing else
    assert lines[0].startswith(f"1. {label}:")
    cited = {int(n) for n in re.findall(r"\[(\d+)\]", lines[0])}
    by_n = {c.n: c for c in a.citations}
    clause = [by_n[n] for n in cited if by_n[n].kind == "document"]
    rows = [by_n[n] for n in cited if by_n[n].kind == "ledger"]
    assert clause and clause[0].page and clause[0].chunk_id and inc["contract_id"] in clause[0].url.upper()
    assert rows and set(rows[0].rows) == {f"journal_entries#{e}" for e in inc["entry_ids"]}


@pytest.mark.parametrize(
    "contract",
    [c for c in SUPPLIER_CONTRACTS if c.contract_id not in ("C-2024-001", "C-2024-002", "C-2025-005", "C-2026-001")],
    ids=lambda c: c.contract_id,
)
def test_contracts_paid_as_agreed_are_not_flagged(demo_runtime, contract):
    a = demo_runtime.ask(get_agent("reconcile"), f"Reconcile contract {contract.contract_id}", "bob")
    assert a.status == "answered", a.text
    assert "No discrepancy" in a.text, a.text
    assert any(c.kind == "ledger" and c.rows for c in a.citations)


def test_a_user_without_finance_access_gets_no_ledger_data(demo_runtime):
    a = demo_runtime.ask(get_agent("reconcile"), "Reconcile Datastrom Telecom payments with the contract", "dave")
    assert a.status == "not_found" and "finance access" in a.text
    assert not [c for c in a.citations if c.kind == "ledger"] and "6,820" not in a.text
    kinds = [r.kind for r in demo_runtime.services.audit.records(a.run_id)]
    assert "tool.denied" in kinds and "tool.contract_payments" not in kinds


def test_a_contract_the_user_cannot_read_is_not_found(demo_runtime):
    # Castellan's contract is readable by Legal and carol only; bob is in Finance.
    a = demo_runtime.ask(get_agent("reconcile"), "Reconcile the Castellan Consulting contract", "bob")
    assert a.status == "not_found" and "Castellan" not in a.text and not a.citations


# --- the reconciliation rules on their own ----------------------------------------------------------------


def _terms(**kw) -> KeyTerms:
    base = dict(
        doc_id="d", title="T", role="contract", contract_id="C-1", fee_amount=100.0, fee_period="month",
        annual_cap=2000.0, max_indexation_pct=3.0, effective_date=dt.date(2025, 1, 1), end_date=dt.date(2026, 12, 31),
    )  # fmt: skip
    base.update(kw)
    return KeyTerms(**base)


def _row(key: int, day: str, amount: float, desc: str = "fee") -> LedgerRow:
    return LedgerRow(
        table="journal_entries", key=str(key), entry_date=dt.date.fromisoformat(day), description=desc,
        amount=amount, counterparty="X", account_code="6000", reference="C-1",
    )  # fmt: skip


def test_missing_and_underpaid_fees_are_found_and_an_allowed_indexation_is_not():
    t = _terms()  # no schedule table: derived monthly from fee, period and term
    rows = [_row(1, "2025-01-02", 100.0), _row(2, "2025-03-01", 90.0), _row(3, "2026-01-02", 103.0)]
    res = reconcile(t, rows, dt.date(2026, 1, 20))
    kinds = sorted(d.kind for d in res.discrepancies)
    # February 2025 and every month from April to December 2025 were not paid.
    assert kinds.count("missing_payment") == 10
    assert "fee_below_contract" in kinds
    assert "fee_above_contract" not in kinds  # 103 is within the 3% indexation allowed after 12 months
    assert res.paid_by_year == {2025: 190.0, 2026: 103.0}


def test_a_schedule_table_wins_over_the_derived_schedule():
    sched = [ScheduledPayment(no=1, period="Q1 2025", due=dt.date(2025, 1, 10), amount=300.0)]
    t = _terms(fee_period="quarter", fee_amount=300.0, payment_schedule=sched)
    res = reconcile(t, [_row(1, "2025-01-10", 300.0, "Q1 2025 fee")], dt.date(2025, 2, 1))
    assert res.expected == 1 and not res.discrepancies


def test_reconcile_cases_proposes_a_follow_up_case_that_waits_for_approval(demo_runtime, demo_settings):
    from sovra.tools.cases import list_cases

    agent = get_agent("reconcile-cases")
    a = demo_runtime.ask(agent, "Reconcile the Acme Office Supplies contract with the ledger", "bob")
    assert a.status == "awaiting_approval" and a.approval and a.approval.tool == "open_case"
    assert a.approval.args["amount"] == 8500.0 and "C-2024-001" in a.approval.args["summary"]
    before = len(list_cases(demo_settings))
    done = demo_runtime.resume(a.run_id, "bob", approved=True, reason="duplicate confirmed")
    assert "Follow-up case #" in done.text and "Duplicate payment" in done.text
    assert len(list_cases(demo_settings)) == before + 1
    kinds = [r.kind for r in demo_runtime.services.audit.records(a.run_id)]
    assert "approval.decision" in kinds and "tool.open_case" in kinds

    refused = demo_runtime.ask(agent, "Reconcile Datastrom Telecom payments with the contract", "bob")
    out = demo_runtime.resume(refused.run_id, "bob", approved=False, reason="already disputed")
    assert "No follow-up case was opened (refused" in out.text
    assert len(list_cases(demo_settings)) == before + 1


def test_a_first_payment_booked_after_its_due_date_keeps_its_period():
    # January is due on 1 January but booked on the 5th, and booked again on the 6th: the window
    # must still hold January, or its duplicate goes unseen.
    t = _terms()
    rows = [_row(1, "2025-01-05", 100.0), _row(2, "2025-01-06", 100.0), _row(3, "2025-02-01", 100.0)]
    res = reconcile(t, rows, dt.date(2025, 2, 20))
    assert res.expected == 2
    assert [d.kind for d in res.discrepancies] == ["duplicate_payment"]


def _report(terms: KeyTerms, rows: list[LedgerRow], today: dt.date) -> dict:
    from types import SimpleNamespace

    from sovra.agents.reconcile import report

    recorded: list[tuple[str, dict]] = []
    ctx = SimpleNamespace(recorder=SimpleNamespace(record=lambda kind, data: recorded.append((kind, data))))
    state = {
        "doc": {"title": terms.title, "counterparty_id": "CP-1", "contract_id": "C-1"},
        "terms": terms.model_dump(mode="json"),
        "rows": [r.model_dump(mode="json") for r in rows],
        "result": reconcile(terms, rows, today).model_dump(mode="json"),
    }
    out = report(state, {"configurable": {"ctx": ctx}})
    return {**out, "recorded": recorded}


def test_an_unread_fee_or_schedule_is_could_not_reconcile_never_no_discrepancy():
    t = _terms(fee_amount=None, fee_period=None, annual_cap=None)
    out = _report(t, [_row(1, "2025-01-02", 100.0)], dt.date(2025, 3, 1))
    assert out["status"] == "not_found"
    assert out["answer"].startswith("Could not reconcile") and "No discrepancy" not in out["answer"]
    assert "fee" in out["answer"] and "1 ledger entries were found but not checked" in out["answer"]
    assert out["recorded"][0][0] == "reconcile.not_checked"


def test_a_clean_reconciliation_says_which_terms_were_checked():
    rows = [_row(1, "2025-01-02", 100.0), _row(2, "2025-02-01", 100.0)]
    out = _report(_terms(), rows, dt.date(2025, 2, 20))
    assert "No discrepancy: every payment matches the contract's fee, schedule, annual cap." in out["answer"]
    out = _report(_terms(annual_cap=None), rows, dt.date(2025, 2, 20))
    assert "annual cap was not checked" in out["answer"]
