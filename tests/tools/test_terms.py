"""General key-term extraction: normalisers, field extractors and the three states, on clauses written
the way agreements in general word them (not the demo's wording), and on two real CUAD contracts."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from sovra.agents.contracts import compare_fields
from sovra.connectors.parsers import parse_file
from sovra.tools.terms import extract_fields
from sovra.tools.terms.layout import passages
from sovra.tools.terms.normalize import (
    Duration,
    find_dates,
    find_durations,
    find_money,
    jurisdiction,
    same_jurisdiction,
)
from sovra.tools.terms.parties import parse_parties, same_party

CUAD = Path(__file__).resolve().parents[1] / "fixtures" / "cuad"
WATERNOW = "WaterNowInc_20191120_10-Q_EX-10.12_11900227_EX-10.12_Distributor_Agreement"
MARTIN = "MARTINMIDSTREAMPARTNERSLP_01_23_2004-EX-10.3-TRANSPORTATION_SERVICES_AGREEMENT"


# --- normalisers ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "iso"),
    [
        ("made this 15th day of March, 2019 by", "2019-03-15"),
        ("dated March 15, 2019", "2019-03-15"),
        ("dated July 11 , 2006", "2006-07-11"),
        ("signed on 3/15/2019", "2019-03-15"),
        ("effective 2019-03-15", "2019-03-15"),
        ("as of 15 March 2019", "2019-03-15"),
        ("Sept. 3rd, 2020", "2020-09-03"),
        ("vom 1. März 2024", "2024-03-01"),
        ("le 1er mars 2024", "2024-03-01"),
        ("am 15.03.2019", "2019-03-15"),
    ],
)
def test_dates_in_every_common_form(text, iso):
    assert [f.value.isoformat() for f in find_dates(text)] == [iso]


def test_incomplete_or_impossible_dates_are_not_dates():
    assert find_dates("this ____ day of ________, 2012") == []
    assert find_dates("February 30, 2019") == []


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("unless either party gives sixty (60) days notice", Duration(60, "days")),
        ("for successive one (1) year periods", Duration(1, "years")),
        ("at least one (1) year's written notice", Duration(1, "years")),
        ("ninety (90) calendar days", Duration(90, "days")),
        ("within thirty days", Duration(30, "days")),
        ("twenty-four months", Duration(24, "months")),
        ("mit einer Frist von 3 Monaten", Duration(3, "months")),
        ("un préavis de trois (3) mois", Duration(3, "months")),
    ],
)
def test_durations_in_words_and_digits(text, value):
    assert find_durations(text)[0].value == value


def test_twelve_months_and_one_year_compare_equal_but_365_days_do_not():
    assert Duration(12, "months").key == Duration(1, "years").key
    assert Duration(365, "days").key != Duration(1, "years").key


@pytest.mark.parametrize(
    ("text", "currency", "amount"),
    [
        ("a fee of $1,250,000.00", "USD", 1_250_000.0),
        ("USD 5 million", "USD", 5_000_000.0),
        ("EUR 8,500 per month", "EUR", 8500.0),
        ("8.500,00 EUR monatlich", "EUR", 8500.0),
        ("£ 120,000", "GBP", 120_000.0),
    ],
)
def test_money(text, currency, amount):
    m = find_money(text)[0].value
    assert (m.currency, m.amount) == (currency, amount)


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("the laws of the State of Delaware", "US-DE"),
        ("the laws of the Commonwealth of Massachusetts", "US-MA"),
        ("the laws of the Province of Ontario and the federal laws of Canada applicable therein", "CA-ON"),
        ("the laws of the Province of British Columbia", "CA-BC"),
        ("the laws of the Federal Republic of Germany", "DE"),
        ("German law", "DE"),
        ("the laws of England and Wales", "GB-EW"),
        ("the laws of the State of Georgia", "US-GA"),
        ("the laws of Hong Kong", "HK"),
        ("droit français", "FR"),
    ],
)
def test_a_full_jurisdiction_gazetteer(text, code):
    j = jurisdiction(text)
    assert j is not None and j.code == code


def test_two_unrelated_jurisdictions_in_one_phrase_are_not_merged():
    assert jurisdiction("the laws of New York or of Texas") is None
    assert same_jurisdiction("Ontario, Canada", "the laws of the Province of Ontario")
    assert not same_jurisdiction("New York", "Illinois")


# --- parties ---------------------------------------------------------------------------------------------


def test_parties_with_roles_from_an_opening_sentence():
    text = (
        "This Supply Agreement is entered into as of May 2, 2018 by and between Northwind Traders, Inc., a "
        'Delaware corporation ("Supplier"), and Contoso Foods LLC, a Texas limited liability company, having '
        'its principal place of business at 12 Main Street, Austin ("Buyer").'
    )
    assert parse_parties(text) == [("Northwind Traders, Inc.", "Supplier"), ("Contoso Foods LLC", "Buyer")]


def test_a_legal_form_of_several_words_is_kept_whole_and_a_name_ending_in_a_is_not_cut():
    text = (
        'This Agreement is entered into by and between Fabrikam Holdings ("Buyer"), and Tailspin Corporation '
        'Limited, a public limited company incorporated in India ("Seller").'
    )
    assert parse_parties(text) == [("Fabrikam Holdings", "Buyer"), ("Tailspin Corporation Limited", "Seller")]
    # "...DATA CORPORATION" is a name, not the description "a corporation"
    assert parse_parties('between NORTHDATA CORPORATION ("Northdata") and Contoso Inc. ("Buyer")') == [
        ("NORTHDATA CORPORATION", "Northdata"),
        ("Contoso Inc.", "Buyer"),
    ]


def test_an_opening_with_short_names_only_takes_the_full_names_they_were_defined_for():
    # a two-column cover table defines both names, the opening sentence uses only the short ones
    cover = (
        "DISTRIBUTION AGREEMENT\n\n"
        'NORTHDATA CORPORATION ("Northdata")      "DISTRIBUTOR"  CONTOSO TRADING COMPANY\n\n'
        "1 Main Street                             ADDRESS: 2 Low Road\n\n"
        'This Distribution Agreement (the "Agreement") is entered into by and between Northdata and Distributor.\n'
    )
    f = extract_fields({1: cover})["parties"]
    assert f.state == "found"
    assert [n for n, _ in f.value] == ["NORTHDATA CORPORATION", "CONTOSO TRADING COMPANY"]
    # a short name defined nowhere is not taken as a party's name
    bare = 'This Agreement (the "Agreement") is entered into by and between Northdata and Distributor.\n'
    assert extract_fields({1: bare})["parties"].state != "found"


def test_redacted_party_names_are_skipped_not_guessed():
    text = 'by and between [***] (the "Provider") and Fabrikam Ltd. (the "Recipient").'
    assert parse_parties(text) == [("Fabrikam Ltd.", "Recipient")]


def test_same_party_ignores_legal_form_case_and_punctuation():
    assert same_party("ACME HOLDINGS, INC.", "Acme Holdings")
    assert not same_party("Acme Holdings", "Acme Logistics")


# --- fields and their three states ------------------------------------------------------------------------

AGREEMENT = """MASTER SERVICES AGREEMENT

This Master Services Agreement (the "Agreement") is made and entered into as of the 15th day of March, 2019
(the "Effective Date") by and between Northwind Traders, Inc., a Delaware corporation ("Provider"), and
Contoso Foods LLC, a Texas limited liability company ("Customer").

1. Term. The initial term of this Agreement shall be three (3) years from the Effective Date. Thereafter this
Agreement shall automatically renew for successive one (1) year periods unless either party gives written
notice of non-renewal at least sixty (60) days prior to the end of the then-current term.

2. Termination for Convenience. Customer may terminate this Agreement for convenience upon ninety (90) days'
written notice to Provider.

3. Fees. Customer shall pay Provider a monthly fee of $12,500, payable monthly in arrears within thirty (30)
days of receipt of invoice.

4. Governing Law. This Agreement shall be governed by and construed in accordance with the laws of the State
of New York, without regard to its conflict of laws principles. The parties submit to the exclusive
jurisdiction of the state and federal courts located in New York County.
"""


def test_every_key_term_of_a_general_agreement_is_found_with_its_evidence():
    fields = extract_fields({1: AGREEMENT})
    got = {name: f.show for name, f in fields.items() if f.found}
    assert got["parties"] == "Northwind Traders, Inc. (Provider); Contoso Foods LLC (Customer)"
    assert fields["agreement_date"].value == "2019-03-15" and fields["effective_date"].value == "2019-03-15"
    assert got["initial_term"] == "3 years" and got["renewal_term"] == "1 year"
    assert fields["auto_renewal"].value is True and got["notice_period"] == "60 days"
    assert got["termination_for_convenience"] == "yes (90 days notice)"
    assert got["governing_law"] == "New York, United States"
    assert "New York" in got["courts"]
    assert got["fee"] == "USD 12,500.00" and "monthly" in got["payment_schedule"]
    for f in fields.values():
        if f.found:  # every value cites the passage it was read from, as a span of the page
            ev = f.evidence
            assert ev is not None and ev.page == 1
            assert " ".join(AGREEMENT[ev.char_start : ev.char_end].split()).startswith(ev.quote.rstrip("…")[:40])


def test_a_term_the_document_does_not_mention_is_not_stated():
    fields = extract_fields({1: AGREEMENT})
    assert fields["expiration_date"].state == "not_stated"
    assert fields["liability_cap"].state == "not_stated"


def test_a_clause_whose_value_cannot_be_read_is_undetermined_with_its_quote():
    text = "12. Governing Law. This Agreement shall be governed by the laws of [***]."
    f = extract_fields({1: text})["governing_law"]
    assert f.state == "undetermined" and f.value is None
    assert f.looked_at and "[***]" in f.looked_at[0].quote


def test_conflicting_values_are_undetermined_and_both_are_shown():
    text = (
        "9.1 This Agreement shall be governed by the laws of the State of Texas.\n\n"
        "14.2 This Agreement shall be governed by the laws of the State of Nevada."
    )
    f = extract_fields({1: text})["governing_law"]
    assert f.state == "undetermined"
    assert {c["value"] for c in f.candidates} == {"Texas, United States", "Nevada, United States"}


def test_incorporation_places_are_not_the_governing_law():
    text = (
        'between Alpha Ltd., a company organized under the laws of Singapore ("Alpha"), and Beta Inc. ("Beta").\n\n'
        "This Agreement is governed by the laws of the State of California."
    )
    assert extract_fields({1: text})["governing_law"].show == "California, United States"


def test_a_term_sheet_table_is_read_by_its_row_labels():
    sheet = (
        "# Term sheet: Supply Agreement\n\n| Term | Agreed position |\n| --- | --- |\n"
        "| Parties | Northwind Traders, Inc.; Contoso Foods LLC |\n| Date of agreement | 15 March 2019 |\n"
        "| Renewal | renews automatically for successive periods of twelve (12) months |\n"
        "| Notice to prevent renewal | at least 60 days' written notice |\n| Governing law | the laws of New York |\n"
    )
    fields = extract_fields({1: sheet})
    assert fields["initial_term"].state == "not_stated"  # the header row names no term
    report = compare_fields(extract_fields({1: AGREEMENT}), fields)
    assert report.clean, [(c.name, c.outcome, c.why) for c in report.checks]
    assert {c.name for c in report.matched} >= {"parties", "agreement_date", "renewal_term", "governing_law"}


def test_no_all_clear_when_a_stated_term_was_not_read_in_the_contract():
    contract = extract_fields({1: AGREEMENT.replace("the laws of the State\nof New York", "the laws of [***]")})
    sheet = extract_fields({1: "- **Governing law:** the laws of New York\n- **Renewal:** successive 1 year periods\n"})
    report = compare_fields(contract, sheet)
    assert not report.clean
    (gov,) = [c for c in report.checks if c.name == "governing_law"]
    assert gov.outcome == "unchecked" and "could not be read" in gov.why


def test_passages_keep_headings_and_do_not_split_at_abbreviations():
    ps = passages({1: "12. Governing Law. Acme Inc. and Beta Corp. agree that U.S. law applies. 13. Notices. Fine."})
    texts = [p.text for p in ps]
    assert "Acme Inc. and Beta Corp. agree that U.S. law applies." in texts
    assert next(p for p in ps if p.text.startswith("Acme")).heading == "Governing Law"


# --- two real CUAD contracts and their term sheets ----------------------------------------------------------


def _fields(name: str) -> dict:
    return extract_fields({p.number: p.text for p in parse_file(CUAD / name)})


def test_real_contract_terms_match_cuad_gold():
    f = _fields(f"{WATERNOW}.txt")
    names = [n for n, _ in f["parties"].value]
    for gold in ("WATER NOW, INC.", "Hydraspin USA, Inc.", "BESTEV MANAGEMENT, LLC"):
        assert any(same_party(gold, n) for n in names), names
    assert f["governing_law"].show.startswith("Texas")
    assert f["renewal_term"].show == "5 years" and f["notice_period"].show == "120 days"
    assert f["agreement_date"].value == dt.date(2019, 11, 12).isoformat()


def test_real_changed_term_is_found_with_quotes_on_both_sides_and_a_consistent_pair_is_clean():
    changed = compare_fields(_fields(f"{WATERNOW}.txt"), _fields(f"{WATERNOW}.term-sheet.md"))
    assert [c.name for c in changed.differ] == ["renewal_term"]
    (c,) = changed.differ
    assert c.left.evidence and "five (5) year" in c.left.evidence.quote
    assert c.right.evidence and "1 year" in c.right.evidence.quote
    consistent = compare_fields(_fields(f"{MARTIN}.txt"), _fields(f"{MARTIN}.term-sheet.md"))
    assert consistent.clean, [(x.name, x.outcome, x.why) for x in consistent.checks]


# --- a served extraction model: JSON-schema guided, every value grounded in the text -------------------------


def test_a_served_model_may_add_only_values_the_document_states(tmp_path):
    from types import SimpleNamespace

    from fakes.openai_server import FakeOpenAI

    from sovra.config import Settings
    from sovra.gateway import ModelGateway
    from sovra.identity import User
    from sovra.tools.base import ToolContext
    from sovra.tools.contract_docs import ContractDocument, DocChunk
    from sovra.tools.extract import ExtractArgs, extract_terms

    text = (
        "SERVICES AGREEMENT\n\nThis agreement binds Northwind Traders, Inc. and Contoso Foods LLC.\n\n"
        "7. Disputes. Questions of law are settled under Bavarian law, exclusively.\n\n"
        "8. Renewal. The agreement continues for a further twelve months unless cancelled."
    )
    proposal = {
        "parties": ["Northwind Traders, Inc.", "Contoso Foods LLC"],
        "governing_law": "Bavarian law",  # in the text, but names no jurisdiction the gazetteer knows as a law
        "renewal_term": "twelve months",  # in the text: accepted, parsed, cited
        "notice_period": "ninety (90) days",  # not in the text: dropped
        "agreement_date": "1 January 2020",  # not in the text: dropped
    }
    fake = FakeOpenAI([(200, json.dumps(proposal))])
    settings = Settings(data_dir=tmp_path, llm_base_url=fake.base_url, llm_model="extractor")
    gw = ModelGateway(settings)
    try:
        doc = ContractDocument(
            doc_id="t:1", title="Services Agreement", url="file:///sa.txt", doc_type="file", role="contract",
            chunks=[DocChunk(chunk_id="c1", page=1, char_start=0, char_end=len(text), text=text)],
        )  # fmt: skip
        calls: list[object] = []
        ctx = ToolContext(
            user=User(id="lena", name="Lena", groups=("legal",)),
            services=SimpleNamespace(gateway=gw),
            extras={"model_call": lambda call, messages: calls.append(call)},
        )
        before = extract_terms(ExtractArgs(document=doc), ctx)
        assert before.fields["renewal_term"].state != "found"
        t = extract_terms(ExtractArgs(document=doc, use_model=True), ctx)
    finally:
        gw.close()
        fake.close()
    assert calls and fake.requests[0]["messages"][-1]["content"].startswith("<document>")
    f = t.fields
    assert f["parties"].found and f["parties"].show == "Northwind Traders, Inc.; Contoso Foods LLC"
    assert f["renewal_term"].found and f["renewal_term"].show == "12 months"
    assert "twelve months" in f["renewal_term"].evidence.quote and "model" in f["renewal_term"].reason
    assert f["notice_period"].state != "found" and f["agreement_date"].state != "found"
    assert f["governing_law"].state != "found"


def test_parties_from_a_cover_page_and_from_an_english_parties_block():
    cover = "SERVICES AGREEMENT\n\nBETWEEN\n\nNORTHWIND TRADERS LIMITED\n\nAND\n\nCONTOSO FOODS LLC\n\nCONTENTS\n"
    f = extract_fields({1: cover})["parties"]
    assert f.show == "NORTHWIND TRADERS LIMITED; CONTOSO FOODS LLC"
    block = (
        "THIS AGREEMENT is dated 13 October 2005\n\n"
        "NORTHWIND TRADERS LIMITED (Company no 2085882) whose registered office is at 1 High Street, London\n\n"
        "CONTOSO FOODS LIMITED (company no 4463640) whose registered office is at 2 Low Road, Leeds\n\n"
        "1. Definitions\n"
    )
    f = extract_fields({1: block})["parties"]
    assert f.show == "NORTHWIND TRADERS LIMITED; CONTOSO FOODS LIMITED"
    assert extract_fields({1: block})["agreement_date"].value == "2005-10-13"


GERMAN = """LIEFERVERTRAG

Dieser Vertrag wird am 1. März 2024 zwischen der Nordwind Handel GmbH ("Lieferant") und der Kontoso Lebensmittel AG
("Kunde") geschlossen.

§ 5 Laufzeit. Der Vertrag hat eine Laufzeit von drei (3) Jahren und verlängert sich automatisch um jeweils zwölf (12)
Monate, sofern er nicht mit einer Frist von drei (3) Monaten zum Ende der Laufzeit gekündigt wird.

§ 12 Rechtswahl. Dieser Vertrag unterliegt deutschem Recht. Gerichtsstand ist Frankfurt am Main.
"""
FRENCH = """CONTRAT DE PRESTATION DE SERVICES

Le présent contrat est conclu le 15 mars 2024 entre Vent du Nord SAS (le "Prestataire") et Contoso SA (le "Client").

Article 4 – Durée. Le contrat est conclu pour une durée initiale de deux (2) ans et se renouvelle par tacite
reconduction pour des périodes successives d'un (1) an, sauf préavis de trois (3) mois avant l'échéance.

Article 11 – Droit applicable. Le présent contrat est régi par le droit français. Tout litige relève de la compétence
exclusive des tribunaux de Paris.
"""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (GERMAN, {"agreement_date": "March 1, 2024", "initial_term": "3 years", "renewal_term": "12 months",
                  "auto_renewal": "yes", "notice_period": "3 months", "governing_law": "Germany",
                  "courts": "Frankfurt am Main"}),
        (FRENCH, {"agreement_date": "March 15, 2024", "initial_term": "2 years", "renewal_term": "1 year",
                  "auto_renewal": "yes", "notice_period": "3 months", "governing_law": "France", "courts": "Paris"}),
    ],
)  # fmt: skip
def test_german_and_french_agreements(text, expected):
    fields = extract_fields({1: text})
    assert {k: fields[k].show for k in expected} == expected
    assert len(fields["parties"].value) == 2
