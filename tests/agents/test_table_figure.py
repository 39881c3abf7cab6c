"""The assistant answers a figure question from a financial statement's table (issue 22), through the
real parser, ingest, index, embedding model and extractive answer: the figure leads the answer with its
row and column labels, the table's unit and page, and is cited to the chunk that holds the row, even
when the search found only the page's heading chunk. A question that names no row gets no figure."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import make_settings
from fpdf import FPDF

from sovra.agents import get_agent
from sovra.runtime import Runtime
from sovra.ui.commands import run_ingest

ITEMS = [
    "Net income", "Depreciation and amortization", "Stock-based compensation expense", "Deferred income taxes",
    "Accounts receivable", "Inventories", "Accounts payable", "Accrued income taxes", "Other - net",
    "Net cash provided by operating activities", "Purchases of property and equipment",
    "Proceeds from sale of property and equipment", "Acquisitions, net of cash acquired",
    "Purchases of marketable securities", "Proceeds from maturities of marketable securities",
    "Net cash used in investing activities", "Change in short-term debt", "Repayment of long-term debt",
    "Proceeds from long-term debt", "Purchases of treasury stock", "Dividends paid to shareholders",
    "Net cash used in financing activities", "Net increase in cash and cash equivalents",
]  # fmt: skip


def _value(i: int, year: int) -> str:
    n = 1000 + 37 * i + (2024 - year) * 11
    return f"({n:,})" if i % 3 == 1 else f"{n:,}"


def statement_pdf(path: Path) -> Path:
    pdf = FPDF()
    pdf.set_font("Helvetica", size=10)
    pdf.add_page()
    pdf.multi_cell(0, 6, "Northwind Industries Annual Report 2024. Management discussion of the year's results: "
                   "sales grew in every region and the company kept investing in its plants.",
                   new_x="LMARGIN", new_y="NEXT")  # fmt: skip
    pdf.add_page()
    for line in ("Northwind Industries", "Consolidated Statement of Cash Flows", "(In millions)"):
        pdf.multi_cell(0, 6, line, new_x="LMARGIN", new_y="NEXT")
    pdf.cell(90, 6, "")
    for year in ("2024", "2023", "2022"):
        pdf.cell(30, 6, year, align="R")
    pdf.ln(6)
    for i, item in enumerate(ITEMS):
        pdf.cell(90, 6, item)
        for year in (2024, 2023, 2022):
            pdf.cell(30, 6, _value(i, year), align="R")
        pdf.ln(6)
    pdf.output(str(path))
    return path


@pytest.fixture(scope="module")
def rt(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("statement")
    folder = root / "docs"
    folder.mkdir()
    statement_pdf(folder / "northwind-2024-annual-report.pdf")
    data = root / "data"
    data.mkdir()
    (data / "users.json").write_text(json.dumps({"ana": {"groups": ["finance"]}}))
    settings = make_settings(data)
    run_ingest(settings, path=folder, name="reports", default_acl=["group:finance"])
    runtime = Runtime(settings)
    yield runtime
    runtime.close()


def test_a_figure_question_is_answered_with_its_row_column_unit_and_page(rt):
    capex = ITEMS.index("Purchases of property and equipment")
    a = rt.ask(get_agent("assistant"), "What was Northwind's capital expenditure in FY2023 (in USD millions)?", "ana")
    assert a.status == "extracted", a.text
    first = a.text.splitlines()[0]
    assert first.startswith(f"Purchases of property and equipment, 2023: {_value(capex, 2023)} (In millions), "
                            "table on page 2 [1]"), a.text  # fmt: skip
    assert a.citations[0].page == 2 and "Purchases of property and equipment | 2024:" in a.citations[0].quote
    assert len(a.text.splitlines()) <= 2, a.text  # the figure, and at most one quote beside it
    figure = next(r for r in rt.services.audit.records(a.run_id) if r.kind == "answer.extractive").data
    assert figure["table_figure"]["label"] == "Purchases of property and equipment"


def test_the_asked_scale_is_given_beside_the_tables(rt):
    a = rt.ask(get_agent("assistant"), "What is Northwind's FY2024 dividends paid amount, in USD billions?", "ana")
    div = ITEMS.index("Dividends paid to shareholders")
    value = _value(div, 2024)
    expected = f"{int(value.strip('()').replace(',', '')) / 1000:.3g} billion"
    assert a.text.startswith(f"Dividends paid to shareholders, 2024: {value} (In millions) = {expected}"), a.text


def test_no_figure_for_a_row_the_statement_does_not_have(rt):
    a = rt.ask(get_agent("assistant"), "What was Northwind's effective tax rate in FY2023?", "ana")
    assert "table on page" not in a.text
