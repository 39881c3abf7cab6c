"""Entity, period and kind read from file names and first pages; questions scoped by them (issue 22)."""

from __future__ import annotations

from dataclasses import replace

from sovra.doc_profile import (
    STATEMENTS,
    implied_statements,
    named_statements,
    names_entity,
    names_title,
    period_fit,
    profile,
    question_scope,
    residual_question,
    statement_heading_rank,
)
from sovra.documents import Document, Page
from sovra.index.base import Hit, SearchFilter
from sovra.ingest import with_profile
from sovra.retrieval import RetrievalConfig, Retriever, embed_query, fuse_rankings

COVER_10K = """UNITED STATES
SECURITIES AND EXCHANGE COMMISSION
FORM 10-K
ANNUAL REPORT PURSUANT TO SECTION 13 OR 15(d) OF THE SECURITIES EXCHANGE ACT OF 1934
For the fiscal year ended September 30, 2021
Commission file number 1-1234
NORTHWIND TRADERS, INC.
(Exact name of registrant as specified in its charter)
Delaware 12-3456789
Title of each class Trading Symbol(s) Name of each exchange on which registered
Common Stock NWT New York Stock Exchange
"""

RELEASE = """FOR IMMEDIATE RELEASE
Springfield, Ohio (February 2, 2024) - Contoso Pharma Corp (NYSE: CPH) today announced results for the
fourth quarter and full year 2023. Sales grew 4%.
"""


def test_a_10k_cover_gives_the_registrant_its_symbol_the_fiscal_year_and_the_kind():
    meta = profile("annual.pdf", "annual", [COVER_10K])
    assert meta["entity"] == "NORTHWIND TRADERS, INC"
    assert {"northwindtraders", "nwt"} <= set(meta["entity_aliases"])
    assert (meta["fiscal_year"], meta["period"], meta["doc_kind"]) == (2021, "FY2021", "10-K")


def test_an_earnings_release_gives_the_listed_name_and_the_quarter():
    meta = profile("press.pdf", "press", [RELEASE])
    assert meta["entity"] == "Contoso Pharma Corp"
    assert {"contosopharma", "cph", "coph"} <= set(meta["entity_aliases"])
    assert (meta["fiscal_year"], meta["fiscal_quarter"], meta["doc_kind"]) == (2023, 4, "earnings release")


def test_the_file_name_names_entity_and_period_when_the_text_does_not():
    meta = profile("FABRIKAM_2019Q3_10Q.pdf", "FABRIKAM 2019Q3 10Q", ["Quarterly figures, no cover."])
    assert (meta["entity"], meta["period"], meta["doc_kind"]) == ("FABRIKAM", "2019Q3", "10-Q")


def test_documents_that_are_not_filings_get_no_entity_from_their_name():
    assert profile("policy_2024_kyc.md", "Policy 2024 KYC", ["Know your customer rules, 2024 edition."]) == {}
    assert profile("supply_agreement_acme.pdf", "Supply Agreement", ["This Supply Agreement"]) == {
        "doc_kind": "agreement"
    }


def test_connector_metadata_wins_over_what_is_read():
    doc = Document("d", "annual", "files", "file:///annual.pdf", "v1", frozenset(), lambda: [], {"entity": "Given"})
    out = with_profile(doc, [Page(1, COVER_10K)])
    assert out.metadata["entity"] == "Given" and out.metadata["fiscal_year"] == 2021


def test_a_question_names_an_entity_by_name_symbol_or_abbreviation_and_a_period():
    meta = profile("annual.pdf", "annual", [COVER_10K])
    for q in ("What was Northwind Traders' FY2021 revenue?", "NWT capex in 2021?", "northwind traders margin"):
        assert names_entity(question_scope(q), meta), q
    assert not names_entity(question_scope("What was the revenue of Tailspin Toys?"), meta)
    assert period_fit(question_scope("Northwind revenue FY2020 vs FY2021"), meta) == 2
    assert period_fit(question_scope("Northwind revenue FY2021 vs FY2022"), meta) == 1
    assert period_fit(question_scope("Northwind revenue in FY2019"), meta) == 0
    scope = question_scope("Cash in Q2 of FY24 and in H1 2023?")
    assert scope.years == {2024, 2023} and scope.quarters == {1, 2}


def _hit(doc: str, n: int, meta: dict) -> Hit:
    return Hit(f"{doc}#{n}", doc, doc, "", "filings", "file", 1, 0, 1, f"{doc} text {n}", 1.0 / n, {}, meta)


class _Index:
    """Returns its hits in order, honouring a doc_ids filter as Qdrant does."""

    def __init__(self, hits: list[Hit]) -> None:
        self.hits, self.filters = hits, []

    def search(self, dense, sparse, flt, limit, mode="hybrid", with_vectors=False):
        self.filters.append(flt.doc_ids)
        return [h for h in self.hits if not flt.doc_ids or h.doc_id in flt.doc_ids][:limit]


def test_the_named_entitys_documents_come_first_and_its_period_before_others(embedder):
    nw21 = {"entity_aliases": ["northwindtraders", "nwt"], "fiscal_year": 2021}
    nw19 = {"entity_aliases": ["northwindtraders", "nwt"], "fiscal_year": 2019}
    other = {"entity_aliases": ["tailspintoys"], "fiscal_year": 2021}
    hits = [_hit("tailspin", 1, other), _hit("nw19", 2, nw19), _hit("tailspin", 3, other)]
    hits += [_hit("nw21", 4, nw21), _hit("nw21", 5, nw21)]
    idx = _Index(hits)
    flt = SearchFilter(principals=("group:everyone",))
    out = Retriever(idx, embedder).search("NWT gross margin in FY2021", flt, limit=5)
    assert [h.chunk_id for h in out] == ["nw21#4", "nw21#5", "nw19#2", "tailspin#1", "tailspin#3"]
    assert idx.filters[1] == ("nw19", "nw21")  # the named entity's documents searched on their own
    plain = Retriever(idx, embedder, config=RetrievalConfig(scope=False)).search("NWT margin FY2021", flt, limit=5)
    assert [h.chunk_id for h in plain] == [h.chunk_id for h in hits]
    unnamed = Retriever(idx, embedder).search("gross margin in FY2021", flt, limit=5)
    assert [h.chunk_id for h in unnamed] == [h.chunk_id for h in hits]


def test_rankings_are_fused_by_weighted_reciprocal_rank_with_a_small_k():
    a, b, c = (_hit("doc", n, {}) for n in (1, 2, 3))
    out = fuse_rankings([([a, b, c], 1.0), ([b, a], 1.0), ([c, b], 0.5)], k=2)
    # a: 1/3 + 1/4 = 0.583; b: 1/4 + 1/3 + 0.5/4 = 0.708; c: 1/5 + 0.5/3 = 0.367
    assert [h.chunk_id for h in out] == ["doc#2", "doc#1", "doc#3"]
    assert out[0].scores["scoped"] == out[0].score == round(1 / 4 + 1 / 3 + 0.5 / 4, 6)
    # With the index's k=60 the first places barely count: c's half-weight first place no longer
    # lifts it above a, a's first place in one leg no longer beats b's second, first pair.
    assert [h.chunk_id for h in fuse_rankings([([a, b], 1.0), ([b, a], 1.0)], k=60)] == ["doc#1", "doc#2"]


def test_a_fused_hit_carries_every_legs_breakdown_the_first_ranking_winning_a_shared_key():
    def leg(n: int, scores: dict[str, float]) -> Hit:
        return replace(_hit("doc", n, {}), scores=scores)

    dense = [leg(1, {"dense": 0.8, "dense_rank": 1.0}), leg(2, {"dense": 0.7, "dense_rank": 2.0})]
    sparse = [leg(2, {"sparse": 9.0, "sparse_rank": 1.0})]
    whole = [leg(2, {"dense": 0.5, "dense_rank": 1.0}), leg(3, {"dense": 0.4, "dense_rank": 2.0})]
    out = {h.chunk_id: h.scores for h in fuse_rankings([(dense, 1.0), (sparse, 1.0), (whole, 0.5)], k=2)}
    assert out["doc#2"] == {"dense": 0.7, "dense_rank": 2.0, "sparse": 9.0, "sparse_rank": 1.0, "scoped": 0.75}
    assert out["doc#1"] == {"dense": 0.8, "dense_rank": 1.0, "scoped": round(1 / 3, 6)}
    assert out["doc#3"] == {"dense": 0.4, "dense_rank": 2.0, "scoped": 0.125}


class _RankingIndex:
    """Ranks the named contract's clauses per question and leg, as given; records each search."""

    def __init__(self, embedder, hits: list[Hit], rankings: dict[tuple[str, str], list[int]]) -> None:
        self.hits, self.calls = hits, []
        self.by_vector = {tuple(embed_query(embedder, q)[0]): q for q, _ in rankings}
        self.rankings = rankings

    def search(self, dense, sparse, flt, limit, mode="hybrid", with_vectors=False):
        question = self.by_vector.get(tuple(dense), "?")
        self.calls.append((question, mode, flt.doc_ids))
        if not flt.doc_ids:
            return self.hits[:limit]
        return [self.hits[i] for i in self.rankings[(question, mode)]][:limit]


def test_within_the_named_contract_the_whole_question_ranks_too_at_half_weight(embedder):
    """The residual question ("What is granted under the between and") lost "license" with the title; the
    whole question still has it, and its rankings count at half weight."""
    title = "Software License Agreement (Acme Corp; Beta Ltd)"
    hits = [
        Hit(f"lic#{n}", "lic", title, "", "contracts", "agreement", 1, 0, 1, f"clause {n}", 0.0, {}, {})
        for n in range(3)
    ]
    question = "What license is granted under the Software License Agreement between Acme Corp and Beta Ltd?"
    rest = residual_question(question, [title])
    assert rest == "What is granted under the between and"  # "license" went with the title
    rankings = {
        (rest, "dense"): [1, 0, 2],  # residual: the clause that grants an extension of time first ...
        (rest, "sparse"): [0, 1, 2],  # ... or the licence grant
        (question, "dense"): [0, 2, 1],  # the whole question: the licence grant
        (question, "sparse"): [0, 1, 2],
    }
    idx = _RankingIndex(embedder, hits, rankings)
    out = Retriever(idx, embedder).search(question, SearchFilter(principals=("group:everyone",)), limit=3)
    assert [(q, mode) for q, mode, docs in idx.calls if docs] == list(rankings)  # both questions, both legs
    assert all(docs == ("lic",) for _, _, docs in idx.calls[1:])
    # The residual's legs tie the first two clauses; the whole question breaks the tie.
    assert [h.chunk_id for h in out] == ["lic#0", "lic#1", "lic#2"]


def test_a_question_names_a_primary_statement_in_gaap_ifrs_or_european_wording():
    kinds = {
        "What was capex? Use the details shown in the cash flow statement.": ["cash flow statement"],
        "the largest liability in the company's Balance Sheet in 2022": ["balance sheet"],
        "per the consolidated statements of operations": ["income statement"],
        "from the statement of financial position": ["balance sheet"],
        "selon le tableau des flux de trésorerie": ["cash flow statement"],
        "laut Gewinn- und Verlustrechnung": ["income statement"],
        "capex as % of revenue from the statement of cash flows and the statement of income": [
            "income statement",
            "cash flow statement",
        ],
        "What drove gross margin change?": [],
        "net cash from operations": [],  # a line item, not a statement
    }
    for question, want in kinds.items():
        assert sorted(k for k, _, _ in named_statements(question)) == sorted(want), question


def test_a_statement_page_opens_with_its_title_a_note_that_cites_it_does_not():
    balance = STATEMENTS[0][1]
    page = "Table of Contents\nNorthwind Traders, Inc.\nCONSOLIDATED BALANCE SHEETS\nDecember 31 | 2022\nCash | 2022: 5"
    note = "Note 7. Leases\nLease liabilities are included in Other liabilities on the Consolidated Balance Sheets."
    row = "Table of Contents\nItems | 2022\nBalance sheet total | 2022: 5"
    assert statement_heading_rank(page, balance) > 0
    assert statement_heading_rank(note, balance) == 0
    assert statement_heading_rank(row, balance) == 0


def test_the_groups_statement_ranks_above_a_table_titled_with_the_statements_name():
    income, balance = STATEMENTS[1][1], STATEMENTS[0][1]
    assert statement_heading_rank("Table of Contents\nCONSOLIDATED STATEMENTS OF INCOME\nYear | 2022", income) == 3
    assert statement_heading_rank("Condensed Consolidated Statements of Earnings (unaudited)\n$ | 2023", income) == 3
    assert statement_heading_rank("Konzern-Gewinn- und Verlustrechnung\nUmsatz | 2023: 5", income) == 3
    assert statement_heading_rank("Bilan\nActif | 2023", balance) == 2
    assert statement_heading_rank("INCOME STATEMENT\nRevenue is recognised when", income) == 2
    assert statement_heading_rank("TABLE 1: SUMMARY\nSelected Income Statement Data\nRevenues $ 52,862", income) == 1
    assert statement_heading_rank("PARENT COMPANY – CONDENSED STATEMENTS OF CASH FLOWS", STATEMENTS[2][1]) == 1
    assert statement_heading_rank("Leases are shown in the consolidated balance sheets.", balance) == 0


def test_a_question_about_a_statements_line_item_gets_the_groups_statement_first(embedder):
    nw = {"entity_aliases": ["northwindtraders", "nwt"], "fiscal_year": 2022}
    hits = [
        _page_hit("nw22", 1, 44, "TABLE 1: SUMMARY OF PERFORMANCE\nSelected Income Statement Data\nRevenues $ 52", nw),
        _page_hit("nw22", 2, 96, "CONSOLIDATED STATEMENTS OF INCOME\nYear | 2022\nRevenues | 2022: 52", nw),
    ]
    flt = SearchFilter(principals=("group:everyone",))
    out = Retriever(_Index(hits), embedder).search("What drove NWT's gross margin in FY2022?", flt, 2)
    assert [h.chunk_id for h in out] == ["nw22#2", "nw22#1"]


def _page_hit(doc: str, n: int, page: int, text: str, meta: dict, start: int = 0) -> Hit:
    return Hit(f"{doc}#{n}", doc, doc, "", "filings", "file", page, start, start + len(text), text, 1.0 / n, {}, meta)


def test_a_question_naming_a_statement_is_answered_from_that_statements_page(embedder):
    nw = {"entity_aliases": ["northwindtraders", "nwt"], "fiscal_year": 2022}
    hits = [
        _page_hit("nw22", 1, 71, "Note 7. Leases\nLiabilities on the Consolidated Balance Sheets include leases.", nw),
        _page_hit("nw22", 2, 12, "Our largest liabilities are customer deposits, discussed below.", nw),
        _page_hit(
            "nw22", 3, 58, "Table of Contents\nCONSOLIDATED BALANCE SHEETS\nDecember 31 | 2022\nDeposits | 2022: 9", nw
        ),
        _page_hit("nw22", 4, 58, "Long-term debt | 2022: 3\nTotal liabilities | 2022: 12", nw),
    ]
    flt = SearchFilter(principals=("group:everyone",))
    out = Retriever(_Index(hits), embedder).search(
        "What was the largest liability in NWT's balance sheet in 2022?", flt, 4
    )
    assert [(h.page, h.chunk_id) for h in out][:2] == [(58, "nw22#3"), (58, "nw22#4")]  # the whole statement page
    # a line item the balance sheet reports: the same pages first
    implied = Retriever(_Index(hits), embedder).search("Did NWT's total liabilities grow in 2022?", flt, 4)
    assert [h.chunk_id for h in implied][:2] == ["nw22#3", "nw22#4"]
    same = Retriever(_Index(hits), embedder).search("Who were NWT's auditors in 2022?", flt, 4)
    assert [h.chunk_id for h in same] == ["nw22#1", "nw22#2", "nw22#3", "nw22#4"]  # no statement: unchanged


def test_a_statement_listed_further_down_a_page_does_not_make_it_that_statements_page(embedder):
    # The annual report's index of statements, in the second chunk of the page before them: its
    # first lines name the balance sheet, but the page does not open with it.
    nw = {"entity_aliases": ["northwindtraders", "nwt"], "fiscal_year": 2022}
    index_of_statements = "Item 8. Financial Statements\nIndex\n40 Consolidated Balance Sheets\n41 Earnings"
    hits = [
        _page_hit("nw22", 1, 45, index_of_statements, nw, start=900),
        _page_hit("nw22", 2, 46, "CONSOLIDATED BALANCE SHEETS\nDecember 31 | 2022\nInventories | 2022: 9", nw),
    ]
    flt = SearchFilter(principals=("group:everyone",))
    question = "How large were NWT's inventories in its 2022 balance sheet?"
    out = Retriever(_Index(hits), embedder).search(question, flt, 2)
    assert [h.chunk_id for h in out] == ["nw22#2", "nw22#1"]


def test_a_line_item_implies_the_statement_that_reports_it():
    kinds = {
        "What drove gross margin change as of FY2022?": ["income statement"],
        "What is the FY2018 capital expenditure amount?": ["cash flow statement"],
        "Among operating, investing and financing activities, which brought in the most cash flow?": [
            "cash flow statement"
        ],
        "Wie hoch war der Cashflow 2023?": ["cash flow statement"],
        "Is the company a capital-intensive business?": ["balance sheet", "cash flow statement"],
        "How many times has the company sold its inventory in FY2022?": ["balance sheet"],
        "Quelle est la marge brute en 2023 ?": ["income statement"],
        "Wie hoch waren die Verbindlichkeiten 2023?": ["balance sheet"],
        "Which segment dragged down growth, excluding M&A?": [],
        "Who is the company's auditor?": [],
    }
    for question, want in kinds.items():
        assert sorted(k for k, _, _ in implied_statements(question)) == want, question


def test_a_question_names_a_document_by_its_title():
    def named(question: str, title: str) -> bool:
        return names_title(question_scope(question), title)

    # Nearly all of the title's distinctive words.
    assert named(
        "Which law governs the Supply Agreement between Acme Corp and Beta Ltd?",
        "Supply Agreement (Acme Corp; Beta Ltd)",
    )
    assert not named(
        "Which law governs the Supply Agreement between Acme Corp and Gamma Ltd?",
        "Supply Agreement (Acme Corp; Beta Ltd)",
    )
    # The first parties of a title that lists more of them than the question ("... and others").
    title = (
        "Outsourcing Agreement (Northwind Traders, Inc.; Fabrikam Printing Co., Ltd.; Contoso Photomask Corporation)"
    )
    assert named(
        "How long is the warranty in the Outsourcing Agreement between Northwind Traders, Fabrikam Printing and others",
        title,
    )
    assert not named("What does the Outsourcing Agreement between Northwind and Tailspin say?", title)
    # A title of two distinctive words: both, one of them a name the question writes with a capital.
    assert named(
        "Does the Co-Branding Agreement of PlanetCAD Inc. restrict competition?",
        "Co-Branding Agreement (PlanetCAD Inc.)",
    )
    assert named(
        "Does the CO-BRANDING Agreement of The Boxlot Company grant a license?",
        "CO-BRANDING Agreement (The Boxlot Company)",
    )
    assert not named("What does the annual report say about risk?", "Annual Report")
    assert not named("What supply terms apply?", "Supply Agreement (Acme)")
    assert not named("What was revenue in 2018 per the 10K?", "3M_2018_10K")  # no name among the two
