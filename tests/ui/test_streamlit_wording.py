"""Issue 24: an approval waiting in the chat is said in words, never as a raw tool call."""

from __future__ import annotations

from sovra.ui.chat.session import approval_words, plain_action, shown_text


def test_a_raw_call_becomes_the_proposed_action_in_words():
    raw = "open_case(counterparty='Kestrel Ltd', amount=8500.0)"
    said = approval_words(raw, "open_case", {"counterparty": "Kestrel Ltd", "amount": 8500.0, "note": None})
    assert said == "open case (counterparty: Kestrel Ltd; amount: 8,500.00)"
    assert "(" in said and "open_case(" not in said and "8500.0" not in said


def test_a_tools_own_description_is_kept():
    assert approval_words("Pay invoice INV-7 (1,200 EUR)", "pay_invoice", {"invoice": "INV-7"}) == (
        "Pay invoice INV-7 (1,200 EUR)"
    )
    assert plain_action("close_case", {}) == "close case"


def test_a_tools_standard_description_keeps_its_words_and_loses_the_raw_call():
    from sovra.runtime import Answer, Approval

    args = {"counterparty": "Acme Office Supplies GmbH", "summary": "Paid twice (f(x): y)", "amount": 8500.0}
    raw = f"open_case(counterparty='Acme Office Supplies GmbH', summary='Paid twice (f(x): y)', amount=8500.0): {DOC}"
    said = approval_words(raw, "open_case", args)
    words = "open case (counterparty: Acme Office Supplies GmbH; summary: Paid twice (f(x): y); amount: 8,500.00)"
    assert said == f"{words}: {DOC}"
    ap = Approval(run_id="r1", tool="open_case", args=args, description=raw, requested_for="bob")
    a = Answer(run_id="r1", trace_id="", user="bob", question="q", text=f"Waiting for approval: {raw}", status="")
    a.approval = ap
    assert shown_text(a) == f"Waiting for approval: {said}" and "open_case(" not in shown_text(a)
    a.text = "Findings: two payments of EUR 8,500 in March."  # an agent's own findings stay as they are
    assert shown_text(a) == a.text


DOC = "Open a follow-up case for the finance team about a payment problem with a counterparty."
