"""Issue 24's measure: the share of answers whose opening holds the asked fact."""

from __future__ import annotations

from sovra.evals.metrics import first_units_hold
from sovra.evals.suites import suite_items


def test_the_opening_must_hold_the_asked_facts():
    ledger_first = 'Ledger: payments ... total EUR 0.00 [1]\n"3.3 Annual cap: EUR 120,000.00" [2]'
    assert first_units_hold(ledger_first, ["120,000"]) == 0.0  # the cap is there, under a line nobody asked for
    assert first_units_hold(ledger_first, ["0.00", "120,000"]) == 1.0  # two facts asked: two units read
    assert first_units_hold('"The limit is EUR 180. In London it is EUR 250." [1]', ["250"]) == 1.0
    assert first_units_hold("Core hours apply. Up to 3 days per week.", ["3 days"]) == 0.0


def test_the_answers_suite_has_facts_and_a_refusal():
    items, path = suite_items("answers")
    assert path.name == "answers.jsonl" and len(items) >= 10
    assert all("first-answer" in i.tags and i.agent == "assistant" for i in items)
    assert any(i.expects_refusal and i.forbidden_phrases for i in items)
    assert all(i.must_contain for i in items if not i.expects_refusal)
