"""What real human translations do to facts (seen on XQuAD's professional translations, issue 25):
scale and currency words after the number, a year followed by the word "an", articles that are not
"one", war names, ages written without their unit, "governed by" outside a law clause. Each should
read the same value on both sides, or no fact at all, and a real change must still be found."""

from __future__ import annotations

import pytest

from sovra.evals.bench_consistency import document, run_pair
from sovra.tools.facts import ALL_KINDS, compare_facts, facts_of, settle_by_value
from sovra.tools.terms.normalize import find_durations, find_money


def _keys(text: str, kind: str) -> list[str]:
    return [f.key for f in facts_of({1: text}) if f.kind == kind]


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("fixed annual carriage fees of £30m", "GBP 30000000.00"),
        ("feste Sendegebühren in Höhe von 30 Mio. GBP für die Kanäle", "GBP 30000000.00"),
        ("Gebühren von 30 Millionen Pfund für die Kanäle", "GBP 30000000.00"),
        ("unos honorarios de 30 millones de libras esterlinas", "GBP 30000000.00"),
        ("Harvard's $37.6 billion endowment", "USD 37600000000.00"),
        ("eine Ausstattung von 37,6 Milliarden US-Dollar", "USD 37600000000.00"),
        ("una dotación de 37.600 millones de dólares", "USD 37600000000.00"),
        ("Con un presupuesto de 230 000 $, los datos", "USD 230000.00"),
        ("une capitalisation de 162 584 millions d'euros", "EUR 162584000000.00"),
        ("total capitalization of 162 584 mln EUR", "EUR 162584000000.00"),
    ],
)
def test_scale_and_currency_words_after_the_number(text, key):
    assert _keys(text, "amount") == [key]


def test_german_billion_is_a_million_millions():
    assert [str(f.value) for f in find_money("2 Billionen Euro")] == ["EUR 2,000,000,000,000.00"]


@pytest.mark.parametrize(
    "text",
    [
        "Als Sky Digital im Jahr 1998 an den Start ging",  # German "an", not French "an" (a year)
        "for the class of 2016 an Early Action program was reintroduced",
        "The announcement came a day after Setanta Sports confirmed",  # "a day later": a point in time
        "carries over 37 million passengers a year",  # a rate
        "la Bolsa de Varsovia es, a día de hoy, el mayor mercado",  # Spanish "a" is not "one"
        "the North American theater of the Seven Years' War",  # a war's name
        "el conflicto internacional se conoce como la Guerra de los Siete Años",
    ],
)
def test_not_a_period(text):
    assert find_durations(text) == []


@pytest.mark.parametrize(
    ("text", "show"),
    [
        ("for a year from the signing date", "1 year"),
        ("für ein Jahr ab Unterzeichnung", "1 year"),
        ("pour un an à compter de la signature", "1 year"),
        ("a period of 2 ans", "2 years"),
        ("within one (1) year", "1 year"),
    ],
)
def test_periods_still_read(text, show):
    assert [str(f.value) for f in find_durations(text)] == [show]


def test_governed_by_outside_a_law_clause_names_no_jurisdiction():
    text = "The basic unit is a commune. Both cities and communes are governed by a mayor (wójt in Polish)."
    assert _keys(text, "jurisdiction") == []
    assert _keys("This Agreement is governed by the laws of Poland.", "jurisdiction") == ["PL"]


def test_an_age_without_its_unit_is_the_same_value_not_a_difference():
    en = "Of the households, 68,511 (43.3%) had children under the age of 18 living in them."
    de = "Von den Haushalten lebten in 68.511 (43,3%) Kinder unter 18 Jahren."
    cmp = settle_by_value(compare_facts(facts_of({1: en}), facts_of({1: de})), en, de)
    assert not cmp.only_left and not cmp.only_right
    assert [f.show for f in cmp.by_value] == ["18 years"]
    assert not cmp.consistent  # the period was read on one side only: no "consistent" verdict


def test_a_changed_age_is_still_a_difference_even_when_the_number_is_stated_once():
    en = "Elway won at age 38. Manning, at 39, is the oldest quarterback."
    de = "Elway gewann im Alter von 39 Jahren. Manning ist mit 39 Jahren der älteste Quarterback."
    cmp = settle_by_value(compare_facts(facts_of({1: en}), facts_of({1: de})), en, de)
    assert [f.show for f in cmp.only_right] == ["39 years"]  # en states 39 once: one of the two settles


def test_a_period_whose_number_the_other_side_does_not_state_stays_a_difference():
    en = "The notice period is sixty days, for 1,200 employees."
    de = "Die Kündigungsfrist beträgt 90 Tage, für 1.200 Mitarbeiter."
    cmp = settle_by_value(compare_facts(facts_of({1: en}), facts_of({1: de})), en, de)
    assert [f.show for f in cmp.only_left] == ["60 days"] and [f.show for f in cmp.only_right] == ["90 days"]
    assert not cmp.by_value


@pytest.mark.parametrize(
    ("text", "keys"),
    [
        ("since the 1970s, and in the '80s", ["70s", "80s"]),
        ("seit den 1970ern, in den 80er Jahren, in den siebziger Jahren", ["70s", "80s", "70s"]),
        ("desde los años setenta, en las décadas de 1960 y 1970", ["70s", "60s", "70s"]),
        ("depuis les années 1990", ["90s"]),
        ("dans les années quatre-vingt-dix, les années quatre-vingts et soixante-dix", ["90s", "80s"]),
        ("Avicenna (981–1037) and a mid-2013 trip, in 1998", ["1037", "2013", "1998"]),
        ("the campaign of George Maniaces in 1038–40", ["1038", "1040"]),  # = "(1038-1040)"
        # not years: a count with separators, a measure, a compound, a fraction, a date, an amount
        ("1,998 people on 1600 mm track in the 1500-Meter-Lauf in 2019/20 on 15 March 2024 for $2000", []),
    ],
)
def test_years_and_decades(text, keys):
    assert [f.key for f in facts_of({1: text}, ALL_KINDS) if f.kind == "year"] == keys


def test_years_are_compared_only_when_asked():
    assert facts_of({1: "In 1998 the bank opened."}) == []  # the translation checker compares them as numbers


def test_a_changed_year_is_a_difference_and_a_count_written_differently_is_not():
    en = "Between 1550 and 1580, 1,388 couples left; in the 1970s, more."
    de = "Zwischen 1550 und 1589 gingen 1388 Paare; in den 1970ern mehr."
    cmp = settle_by_value(compare_facts(facts_of({1: en}, ALL_KINDS), facts_of({1: de}, ALL_KINDS), ALL_KINDS), en, de)
    assert [f.key for f in cmp.only_left] == ["1580"] and [f.key for f in cmp.only_right] == ["1589"]
    assert [f.key for f in cmp.by_value] == ["1388"]


def test_a_long_passage_is_quoted_around_the_value():
    text = "Filler words here. " * 40 + "In 1998 the network began a new logo." + " More filler." * 20
    (f,) = [f for f in facts_of({1: text}, ALL_KINDS) if f.kind == "year"]
    assert "1998" in f.quote and len(f.quote) <= 301


def test_one_day_is_some_day_unless_it_is_a_length_of_time():
    facts = facts_of({1: "The partnership will perhaps one day become strategic."})
    assert not [f for f in facts if f.kind == "period"]
    assert [f.key for f in facts_of({1: "Notice is given within one day of the request."})] == ["1 days"]


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("el 1,06 por ciento del PIB", "1.06%"),
        ("quell'un percento del bilancio comunitario", "1%"),
        ("one per cent of the budget", "1%"),
        ("ongeveer 3,5 procent", "3.5%"),
        ("il 2 per cento", "2%"),
    ],
)
def test_percentages_in_spanish_italian_dutch_and_in_words(text, key):
    assert _keys(text, "percentage") == [key]


def test_dutch_decades_in_words():
    assert [f.key for f in facts_of({1: "in de loop van de jaren negentig"}, ALL_KINDS) if f.kind == "year"] == ["90s"]


def test_a_currency_word_inside_a_compound_is_not_an_amount():
    assert find_money("Laat de 15 Euro-parlementsleden de IGC voorbereiden") == []
    assert [str(f.value) for f in find_money("15 euro per maand")] == ["EUR 15.00"]


@pytest.mark.parametrize(
    "text", ["in un anno importante come il 2001", "in a year like 2001", "in einem Jahr wie diesem"]
)
def test_which_year_is_not_a_length_of_time(text):
    assert find_durations(text) == []


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("a total of around EUR five million, is a huge step", "EUR 5,000,000.00"),  # Europarl 2-031 (en)
        ("environ cinq milliards d'euros", "EUR 5,000,000,000.00"),
        ("twenty-five million dollars", "USD 25,000,000.00"),
    ],
)
def test_amounts_in_words_with_a_scale_word(text, value):
    assert [str(f.value) for f in find_money(text)] == [value]


def test_an_amount_without_a_number_is_not_read():
    assert find_money("a few million euros") == [] and find_money("des millions d'euros") == []


@pytest.mark.parametrize("text", ["a partire dal 1° gennaio 2001 non", "a partir del 1-1-2001 no", "ab 1.1.2001 keine"])
def test_day_first_dates_of_italian_spanish_and_german(text):
    assert _keys(text, "date") == ["2001-01-01"]


@pytest.mark.parametrize(
    ("text", "keys"),
    [("Today 30-40% of EU gas", ["30%", "40%"]), ("entre el 10 y el 30 % durante", ["10%", "30%"])],
)
def test_both_ends_of_a_percentage_range(text, keys):
    assert sorted(_keys(text, "percentage")) == keys


def test_a_scale_word_after_a_range_applies_to_both_ends():
    en = "Algiers lost 30 to 50 thousand inhabitants to it."
    es = "Argel perdió de 30 000 a 50 000 habitantes."
    st = run_pair(document("en", "Plague (en)", en), document("es", "Peste (es)", es))
    assert "Consistent: all" in st["answer"], st["answer"]
