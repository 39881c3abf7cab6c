"""Reading the figure a question asks for from a financial statement's table (issue 22): the row the
question names in analyst's words, the column of its period, the table's unit, and nothing at all
when no row is named, several periods are asked (arithmetic) or the question is not a "what is"."""

from __future__ import annotations

from sovra.tools.table_cells import asks_figure, best_cell, cell_line, cells

CASH_FLOWS = """Consolidated Statement of Cash Flows
(Millions) | 2024 | 2023 | 2022
Net income | 2024: 4,100 | 2023: 3,900 | 2022: 3,500
Cash interest payments | 2024: 310 | 2023: 290 | 2022: 270
Purchases of property and equipment | 2024: (1,250) | 2023: (1,100) | 2022: (990)
Dividends paid to shareholders | 2024: (2,000) | 2023: (1,900) | 2022: (1,800)
"""
BALANCE_SHEET = """Consolidated Balance Sheet
(Dollars in millions) | 2024 | 2023
Property, plant and equipment | 2024: 20,500 | 2023: 19,800
Property, plant and equipment — net | 2024: 7,640 | 2023: 7,310
Goodwill | 2024: 9,000 | 2023: 8,800
"""


def test_cells_carry_their_row_column_and_unit() -> None:
    c = next(c for c in cells(CASH_FLOWS) if c.label.startswith("Purchases") and c.period == "2023")
    assert (c.value, c.unit, c.number()) == ("(1,100)", "(Millions)", -1100.0)


def test_an_analyst_term_finds_the_statement_line_item() -> None:
    found = best_cell("What was the FY2023 capital expenditure (in USD millions)?", [BALANCE_SHEET, CASH_FLOWS])
    assert found is not None
    i, cell, converted = found
    assert (i, cell.label, cell.value, converted) == (1, "Purchases of property and equipment", "(1,100)", "")
    assert cell_line(cell, converted, 60) == (
        "Purchases of property and equipment, 2023: (1,100) (Millions), table on page 60"
    )


def test_net_is_not_gross_and_the_asked_scale_is_given() -> None:
    found = best_cell("What is the year end FY2024 net PP&E? Answer in USD billions.", [BALANCE_SHEET])
    assert found is not None and found[1].label == "Property, plant and equipment — net"
    assert found[2] == "7.64 billion"


def test_no_figure_when_no_row_is_named_or_it_is_not_one_cell() -> None:
    assert best_cell("What was the FY2024 effective tax rate?", [CASH_FLOWS, BALANCE_SHEET]) is None
    # three periods: an average is arithmetic, not a cell
    assert best_cell("What is the FY2022 - FY2024 average capex?", [CASH_FLOWS]) is None
    # no period named
    assert best_cell("What is the capital expenditure?", [CASH_FLOWS]) is None
    assert best_cell("Which line item grew the most in 2024?", [CASH_FLOWS]) is None


def test_only_questions_that_ask_for_a_figure() -> None:
    assert asks_figure("How much goodwill did the company carry in 2024?")
    assert asks_figure("What is the FY2018 capital expenditure amount (in USD millions) for 3M?")
    assert not asks_figure("Is 3M a capital-intensive business based on FY2022 data?")
    assert not asks_figure("Which type of debt received the largest investment in 2023?")
