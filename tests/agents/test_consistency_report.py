"""The consistency agent's compare and report steps on two small documents, without an index: a
changed year is cited on both sides, a value stated without its unit on one side is reported as
"not verified" and never earns "consistent", and an empty side gets no verdict."""

from __future__ import annotations

from sovra.evals.bench_consistency import document, run_pair

EN = "Between 1550 and 1580 the members left. Of the households, 1,200 had children under the age of 18."
DE = "Zwischen 1550 und 1580 gingen die Mitglieder. In 1.200 Haushalten lebten Kinder unter 18 Jahren."


def test_a_changed_year_is_cited_on_both_sides():
    st = run_pair(document("en", "Article (en)", EN), document("de", "Artikel (de)", DE.replace("1580", "1589")))
    assert "year 1580 in Article (en)" in st["answer"] and "year 1589 in Artikel (de)" in st["answer"]
    assert "Consistent" not in st["answer"]
    assert {c["url"] for c in st["citations"]} == {"xquad://en", "xquad://de"}
    assert any("1589" in c["quote"] for c in st["citations"])


def test_a_value_without_its_unit_is_not_verified_and_not_consistent():
    st = run_pair(document("en", "Article (en)", EN), document("de", "Artikel (de)", DE))
    assert "not found in the other" not in st["answer"]
    assert "1 period(s) read on one side only" in st["answer"] and "18 years" in st["answer"]
    assert "Consistent" not in st["answer"] and "2 facts agree" in st["answer"]


def test_an_empty_side_gets_no_verdict():
    st = run_pair(document("en", "Article (en)", EN), document("de", "Artikel (de)", ""))
    assert "Could not compare" in st["answer"] and "Consistent" not in st["answer"]


def test_a_difference_is_shown_beside_the_other_documents_corresponding_passage():
    # English states the age as a bare number (not a fact); the translation's "39 Jahren" was changed.
    en = "The record was held by John Elway, who won Super Bowl XXXIII at age 38. Attendance was high."
    de = "Der Rekord wurde von John Elway gehalten, der im Alter von 39 Jahren den Super Bowl XXXIII gewann."
    st = run_pair(document("en", "Article (en)", en), document("de", "Artikel (de)", de))
    assert (
        "period 39 years in Artikel (de) [1], not in Article (en) (the corresponding passage there [2])" in st["answer"]
    )
    en_quotes = [c["quote"] for c in st["citations"] if c["url"] == "xquad://en"]
    assert len(en_quotes) == 1 and "who won Super Bowl XXXIII at age 38" in en_quotes[0]
    assert "Consistent" not in st["answer"]


def test_a_text_without_comparable_facts_is_not_called_empty():
    plain = document("en", "Article (en)", "The museum opened to the public.")
    st = run_pair(plain, document("de", "Artikel (de)", DE))
    assert "Article (en) states no amount, rate, date, period, year or governing law to compare" in st["answer"]
    assert "scanned" not in st["answer"] and "Consistent" not in st["answer"]


def test_parties_are_compared_by_name_with_their_legal_form():
    en = "This loan agreement is made between Nordbank Luxembourg S.A. and Rheintal Logistik SE in 2024."
    de = (
        "Dieser Darlehensvertrag wird 2024 zwischen der Nordbank Luxembourg S.A. und der Darlehensnehmerin {} "
        "geschlossen."
    )
    same = run_pair(document("en", "Loan (en)", en), document("de", "Darlehen (de)", de.format("Rheintal Logistik SE")))
    # "Darlehensnehmerin Rheintal Logistik SE": a German noun before the name is not a different party
    assert "Consistent: all 3 facts" in same["answer"], same["answer"]
    changed = run_pair(
        document("en", "Loan (en)", en), document("de", "Darlehen (de)", de.format("Rheintal Logistik AG"))
    )
    assert "party Rheintal Logistik SE in Loan (en)" in changed["answer"]
    assert "Logistik AG in Darlehen (de)" in changed["answer"] and "Consistent" not in changed["answer"]
    # the first word changed and the rest kept: named in part only, so not verified (and no verdict)
    other = en.replace("Nordbank", "Sudbank")
    part = run_pair(
        document("en", "Loan (en)", other), document("de", "Darlehen (de)", de.format("Rheintal Logistik SE"))
    )
    assert "not verified as the same party" in part["answer"] and "Consistent" not in part["answer"]
