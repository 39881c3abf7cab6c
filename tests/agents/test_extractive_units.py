"""Which lines the extractive answer quotes (no model: the scored units are given)."""

from __future__ import annotations

from typing import Any

from sovra.agents.assistant import _extractive


def _unit(text: str, dense: float, overlap: int, quantity: bool) -> dict[str, Any]:
    return {"text": text, "score": dense / 10, "dense": dense, "overlap": overlap, "supported": overlap >= 2,
            "quantity": quantity}  # fmt: skip


def _doc(doc_id: str, *units: dict[str, Any]) -> dict[str, Any]:
    return {"kind": "document", "doc_id": doc_id, "sentences": list(units)}


def test_a_how_many_question_quotes_the_lines_that_give_the_number_and_nothing_to_pad():
    # "How many days per week may I work from home?"
    sources = [
        _doc(
            "remote",
            _unit("Staff must be reachable by phone during core hours.", 0.53, 4, False),
            _unit("Working remotely from abroad is allowed for at most 20 working days a year.", 0.50, 3, True),
        ),
        _doc(
            "remote",
            _unit("Employees may work remotely for up to 3 days per week.", 0.51, 5, True),
            _unit("Remote days are agreed with the manager 5 working days in advance.", 0.48, 2, True),
        ),
        _doc(
            "leave",
            _unit("Full-time employees receive 30 working days of paid annual leave.", 0.53, 2, True),
            _unit("Leave of more than 10 consecutive working days needs 4 weeks' notice.", 0.51, 3, False),
        ),
    ]
    text, cited = _extractive(sources, min_dense=0.3)
    lines = text.splitlines()
    assert lines[0] == '"Employees may work remotely for up to 3 days per week." [2]'
    assert lines[1] == '"Working remotely from abroad is allowed for at most 20 working days a year." [1]'
    assert len(lines) == 2 and cited == [1, 2]  # not the annual leave (2 shared words), no padding


def test_without_an_asked_quantity_the_best_lines_of_different_sources_are_quoted():
    sources = [
        _doc("a", _unit("The hotel limit in London is EUR 250 per night.", 0.6, 4, False)),
        _doc("b", _unit("Taxis are reimbursed with a receipt.", 0.4, 2, False)),
        _doc("c", _unit("Unrelated but close in meaning.", 0.5, 1, False)),  # shares one word: not support
    ]
    text, cited = _extractive(sources, min_dense=0.3)
    assert cited == [1, 2] and "Unrelated" not in text


def test_a_figure_read_from_its_table_is_followed_by_one_quote_not_three():
    sources = [
        _doc("10k", _unit("Consolidated Statement of Cash Flows, years ended December 31", 0.6, 3, False)),
        _doc("10k", _unit("Cash income tax payments | 2018: 1,560 | 2017: 1,604", 0.5, 2, False)),
        _doc("10k", _unit("Cash interest payments | 2018: 328 | 2017: 214", 0.5, 2, False)),
    ]
    lead = (1, "Purchases of property, plant and equipment, 2018: (1,577) (Millions), table on page 60")
    text, cited = _extractive(sources, min_dense=0.3, lead=lead)
    assert text.splitlines() == [
        f"{lead[1]} [1]",
        '"Consolidated Statement of Cash Flows, years ended December 31" [1]',
    ]
    assert cited == [1]
    without = _extractive(sources, min_dense=0.3)[0].splitlines()
    assert len(without) == 3  # with no figure, the three best lines
