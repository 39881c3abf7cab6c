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
    assert "1 value(s) read on one side only" in st["answer"] and "18 years" in st["answer"]
    assert "Consistent" not in st["answer"] and "4 facts agree" in st["answer"]  # 2 years, 1,200 and 18


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


def test_a_changed_count_is_a_difference_cited_on_both_sides():
    en = "The treaty was signed by 27 Member States. It entered into force two years later."
    de = "Der Vertrag wurde von 28 Mitgliedstaaten unterzeichnet. Er trat zwei Jahre später in Kraft."
    st = run_pair(document("en", "Treaty (en)", en), document("de", "Vertrag (de)", de))
    assert "number 27 in Treaty (en)" in st["answer"] and "number 28 in Vertrag (de)" in st["answer"]
    assert "Consistent" not in st["answer"]
    assert any("27 Member States" in c["quote"] for c in st["citations"] if c["url"] == "xquad://en")
    assert any("28 Mitgliedstaaten" in c["quote"] for c in st["citations"] if c["url"] == "xquad://de")


def test_numbers_in_another_locale_in_words_or_in_converted_units_agree():
    en = ("In 1998, 1,388 couples lived on the estate, sixteen of them farmers. The land lies 20 miles "
          "above the falls and covers 3.5 square kilometres.")  # fmt: skip
    fr = ("En 1998, 1 388 couples vivaient sur le domaine, dont 16 agriculteurs. Les terres sont situées "
          "à 32 km en amont des chutes et couvrent 3,5 kilomètres carrés.")  # fmt: skip
    st = run_pair(document("en", "Estate (en)", en), document("fr", "Domaine (fr)", fr))
    assert "Consistent: all" in st["answer"], st["answer"]


def test_a_changed_number_is_found_even_when_the_new_value_is_stated_nearby():
    # the same passage states 18 already (the score): the change 17 -> 18 leaves one 18 too many
    en = "They beat the Patriots 20–18 by intercepting a pass with 17 seconds left on the clock."
    es = "Batieron a los Patriots por 20 a 18 al interceptar un pase cuando quedaban 18 segundos."
    st = run_pair(document("en", "Game (en)", en), document("es", "Partido (es)", es))
    assert "number 17 in Game (en)" in st["answer"] and "Consistent" not in st["answer"]


def test_a_measure_changed_in_the_same_unit_is_not_hidden_by_its_conversion():
    # 900 km and 901 km both round to 560 miles: a conversion matches only the other unit
    en = "The relic was carried some 900 km on carts to a monastery."
    de = "Die Reliquie wurde über etwa 901 km auf Karren in ein Kloster gebracht."
    st = run_pair(document("en", "Relic (en)", en), document("de", "Reliquie (de)", de))
    assert "number 901 in Reliquie (de)" in st["answer"] and "Consistent" not in st["answer"]


def test_a_number_the_other_side_leaves_out_is_not_verified():
    en = "The committee met in 2019. It heard 14 witnesses and adopted the report."
    de = "Der Ausschuss tagte 2019. Er hörte Zeugen an und nahm den Bericht an."
    st = run_pair(document("en", "Report (en)", en), document("de", "Bericht (de)", de))
    assert "number(s) stated in one document whose value was not read in the other" in st["answer"]
    assert "14" in st["answer"] and "Consistent" not in st["answer"] and "not found in the other" not in st["answer"]


def test_roman_numerals_and_sentences_split_differently_still_match():
    # one English sentence is two Dutch passages; "Category I" is "rubriek 1"
    en = "We know Letter of Amendment No. 2, i.e. that around 900 million can be saved in Category I. It holds."
    nl = "Wij kennen de nota nr. 2.\n\nDeze houdt in dat in rubriek 1 ongeveer 900 miljoen bespaard wordt."
    same = run_pair(document("en", "Budget (en)", en), document("nl", "Begroting (nl)", nl))
    assert "Consistent: all" in same["answer"], same["answer"]
    changed = run_pair(
        document("en", "Budget (en)", en), document("nl", "Begroting (nl)", nl.replace("rubriek 1", "rubriek 2"))
    )
    assert "Consistent" not in changed["answer"], changed["answer"]


def test_defined_terms_are_paired_across_languages_and_a_missing_one_is_a_difference():
    en = (
        'This agreement is made between Nordbank Luxembourg S.A. (the "Lender") and Rheintal Logistik SE '
        '(the "Borrower") in 2024.\n\nThe Facility (the "Loan") bears interest at 3.5%.'
    )
    fr = (
        "Le présent contrat est conclu entre Nordbank Luxembourg S.A. (le « Prêteur ») et Rheintal Logistik SE "
        "(l'« Emprunteur ») en 2024.\n\nLe crédit (le « Prêt ») porte intérêt à 3,5 %."
    )
    same = run_pair(document("en", "Loan (en)", en), document("fr", "Prêt (fr)", fr))
    assert "Consistent: all" in same["answer"], same["answer"]
    assert '"Lender" = "Prêteur"' in same["answer"] and '"Borrower" = "Emprunteur"' in same["answer"]
    dropped = run_pair(document("en", "Loan (en)", en), document("fr", "Prêt (fr)", fr.replace(" (le « Prêt »)", "")))
    assert "defined term Loan in Loan (en)" in dropped["answer"] and "Consistent" not in dropped["answer"]


def test_a_summary_must_use_the_terms_its_body_defines():
    body = 'Acme Bank AG (the "Arranger") arranges the notes in 2025. The Arranger is paid 1.5%.'
    summary = 'Acme Bank AG (the "Dealer") arranges the notes in 2025 for 1.5%.'
    st = run_pair(document("en", "Body (en)", body), document("en2", "Summary (en)", summary))
    assert "defined term Dealer in Summary (en)" in st["answer"] or "defined term Arranger" in st["answer"]
    assert "Consistent" not in st["answer"]
