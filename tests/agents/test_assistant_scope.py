"""Issue 24: the default agent answers what was asked, from the named party's documents, for the
period asked, keeps a conversation's subject and numbers citations in order of first use."""

from __future__ import annotations

import datetime as dt
import re
import uuid

import pytest

from sovra.agents import get_agent
from sovra.agents.scope import asked_year, is_follow_up, named_parties, renumber, scope_to_named

TODAY = dt.date(2026, 11, 27)


def test_names_periods_and_follow_ups_are_read_from_the_question():
    assert named_parties("Can we terminate the Acme Office Supplies contract early?") == ["Acme Office Supplies"]
    assert named_parties("Kestrel was paid twice in March (8,500); open a case") == ["Kestrel"]
    assert named_parties("A supplier offered me a gift worth EUR 120. May I accept it?") == []
    assert asked_year("Did our 2025 payments exceed the cap?", TODAY) == 2025
    assert asked_year("What did we pay last year?", TODAY) == 2025
    assert asked_year("What are the fee and the cap?", TODAY) is None
    assert is_follow_up("And how many days must I spend in the office?")
    assert not is_follow_up("How many days must I spend in the office?")
    assert not is_follow_up("And what about Kestrel Ltd?")  # names its own subject


def test_sources_are_scoped_to_the_named_party_or_say_none_is_readable():
    a = {"kind": "document", "title": "Supply Agreement - Kestrel Ltd", "text": "fee"}
    b = {"kind": "document", "title": "Catering Agreement - Otter GmbH", "text": "60 days"}
    assert scope_to_named("Can we end the Kestrel contract?", [b, a]) == ([a], "Kestrel", None)
    assert scope_to_named("Can we end the Heron contract?", [a, b]) == ([], None, "Heron")
    # A name no source mentions narrows nothing when the question is not about its document.
    assert scope_to_named("What is the hotel limit in Lisbon?", [a, b]) == ([a, b], None, None)


def test_citations_are_renumbered_in_order_of_first_use():
    sources = [{"n": 1}, {"n": 2}, {"n": 3}, {"n": 4}]
    text, cited, reordered = renumber('"x" [3]\n"y" [1] [3]\n"z" [4]', sources)
    assert text == '"x" [1]\n"y" [2] [1]\n"z" [3]' and cited == [1, 2, 3]
    assert [s["n"] for s in reordered] == [3, 1, 4, 2]


def _numbers(text: str) -> list[int]:
    return list(dict.fromkeys(int(n) for n in re.findall(r"\[(\d+)\]", text)))


@pytest.mark.llm
def test_contract_terms_question_gets_no_ledger_lines_and_the_fee(demo_runtime):
    a = demo_runtime.ask(
        get_agent("assistant"),
        "What are the monthly fee and the annual cap in the Acme Office Supplies contract?",
        "bob",
    )
    assert "Ledger" not in a.text and not [c for c in a.citations if c.kind == "ledger"]
    head = "\n".join(a.text.splitlines()[:2])
    assert "8,500" in head and "120,000" in head
    assert all("Acme" in c.title for c in a.citations)
    assert _numbers(a.text) == list(range(1, len(_numbers(a.text)) + 1))


@pytest.mark.llm
def test_a_named_party_the_user_cannot_read_is_not_answered_from_another_contract(demo_runtime):
    a = demo_runtime.ask(get_agent("assistant"), "Can we terminate the Acme Office Supplies contract early?", "alice")
    assert a.status == "not_found" and a.text == "No document about Acme Office Supplies is available to you."
    assert not a.citations and "60 days" not in a.text and "90 days" not in a.text


@pytest.mark.llm
def test_payments_are_for_the_period_asked_and_the_named_partys_cap(demo_runtime):
    a = demo_runtime.ask(
        get_agent("assistant"), "Did our 2025 payments to Blauwal exceed the contract's annual cap?", "bob"
    )
    assert "2025-01-01 to 2025-12-31" in a.text and "128,900.00" in a.text and "125,000" in a.text
    assert all("Blauwal" in c.title for c in a.citations)
    b = demo_runtime.ask(get_agent("assistant"), "What have we paid Acme Office Supplies?", "bob")
    assert b.text.startswith("Ledger:") and "no period was asked: the current year" in b.text.splitlines()[0]


@pytest.mark.llm
def test_a_follow_up_keeps_the_conversations_subject(demo_runtime):
    thread = f"t-{uuid.uuid4().hex[:8]}"
    demo_runtime.ask(get_agent("assistant"), "How many days per week can I work from home?", "alice", thread_id=thread)
    a = demo_runtime.ask(
        get_agent("assistant"), "And how many days must I spend in the office?", "alice", thread_id=thread
    )
    assert any(c.title == "Remote Work Policy" for c in a.citations)
    thread = f"t-{uuid.uuid4().hex[:8]}"
    demo_runtime.ask(get_agent("assistant"), "What have we paid Acme Office Supplies in 2025?", "bob", thread_id=thread)
    b = demo_runtime.ask(get_agent("assistant"), "And what is the annual cap?", "bob", thread_id=thread)
    assert "120,000" in b.text.splitlines()[0] and "Ledger" not in b.text


def test_a_band_of_amounts_holding_the_asked_amount_is_recognised():
    from sovra.agents.scope import asked_amount, brackets

    assert asked_amount("A client offered me a gift worth EUR 120. May I accept it?") == 120.0
    assert brackets("- Gifts above EUR 50 and up to EUR 150 require approval", 120.0)
    assert brackets("EUR 100,000 to EUR 500,000: Chief Financial Officer", 250_000.0)
    assert not brackets("Gifts of up to EUR 50 may be accepted.", 120.0)
    assert not brackets("EUR 100 and a fee of EUR 300 apply", 200.0)  # two amounts, not a band
