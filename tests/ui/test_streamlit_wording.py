"""Issue 24: an approval waiting in the chat is said in words, never as a raw tool call."""

from __future__ import annotations

from sovra.ui.chat.session import approval_words, plain_action


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
