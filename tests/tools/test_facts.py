"""Key facts compared across languages: locale number and date formats, periods in words,
jurisdictions in the language of the clause; a difference is found, an unread side gives no verdict."""

from __future__ import annotations

from pathlib import Path

import pytest

from sovra.tools.facts import compare_facts, facts_of

BILINGUAL = Path(__file__).resolve().parents[1] / "fixtures" / "bilingual"


def _facts(name: str):
    return facts_of({1: (BILINGUAL / name).read_text()})


@pytest.mark.parametrize(
    ("text", "kind", "key"),
    [
        ("un crédit de 1 000 000,50 EUR", "amount", "EUR 1000000.50"),
        ("ein Kredit von 1.000.000,50 €", "amount", "EUR 1000000.50"),
        ("a facility of EUR 1,000,000.50", "amount", "EUR 1000000.50"),
        ("une marge de 3,5 % par an", "percentage", "3.5%"),
        ("a margin of 3.5 per cent", "percentage", "3.5%"),
        ("daté du 15 mars 2024", "date", "2024-03-15"),
        ("vom 15. März 2024", "date", "2024-03-15"),
        ("pour une durée de douze (12) mois", "period", "12 months"),
        ("for a term of one (1) year", "period", "12 months"),
        ("régi par le droit de la République fédérale d'Allemagne", "jurisdiction", "DE"),
        ("unterliegt dem Recht der Bundesrepublik Deutschland", "jurisdiction", "DE"),
        ("is governed by Dutch law", "jurisdiction", "NL"),
    ],
)
def test_facts_in_every_locale(text, kind, key):
    assert (kind, key) in {(f.kind, f.key) for f in facts_of({1: text})}


def test_a_language_name_is_not_a_jurisdiction():
    assert not [f for f in facts_of({1: "# Facility Agreement (English version)"}) if f.kind == "jurisdiction"]


def test_a_translation_with_a_changed_margin_is_found_on_both_sides():
    res = compare_facts(_facts("loan-agreement-en.md"), _facts("loan-agreement-fr.md"))
    assert not res.consistent
    assert [(f.kind, f.key) for f in res.only_left] == [("percentage", "2.1%")]
    assert [(f.kind, f.key) for f in res.only_right] == [("percentage", "2.35%")]
    assert "2.10%" in res.only_left[0].quote and "2,35 %" in res.only_right[0].quote
    assert {f.kind for f, _ in res.matched} == {"amount", "date", "period", "jurisdiction"}


def test_a_faithful_translation_is_consistent_and_an_unread_side_never_is():
    fr = (BILINGUAL / "loan-agreement-fr.md").read_text().replace("2,35 %", "2,10 %")
    assert compare_facts(_facts("loan-agreement-en.md"), facts_of({1: fr})).consistent
    empty = compare_facts(_facts("loan-agreement-en.md"), facts_of({1: "   "}))
    assert not empty.consistent and empty.unreadable == ["right"]
