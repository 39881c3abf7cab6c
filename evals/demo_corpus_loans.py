"""Loan contracts and term sheets of the demo corpus (Nordbank AG as lender).

Two inconsistencies are planted here on purpose for the consistency checker: a term sheet whose
facility amount differs from the signed agreement, and heads of terms whose governing law
differs from the signed lease.
"""

from __future__ import annotations

from datetime import date

from sovra.evals.demo_corpus_contract_specs import (
    KEIZERSGRACHT,
    LOAN_ACL,
    LoanContract,
    TermSheet,
    business_day,
    month_starts,
)


def _loan(**kw: object) -> LoanContract:
    kw.setdefault("acl", LOAN_ACL)
    kw.setdefault("courts", "Frankfurt am Main")
    kw.setdefault("governing_law", "the Federal Republic of Germany")
    kw.setdefault("contract_type", "loan")
    kw.setdefault("annual_cap", None)
    return LoanContract(**kw)  # type: ignore[arg-type]


RHEINTAL = _loan(
    contract_id="C-2025-002",
    slug="rheintal-logistik-senior-term-facility",
    title="Senior Term Facility Agreement - Rheintal Logistik SE",
    counterparty="Rheintal Logistik SE",
    counterparty_id="CP-008",
    country="DE",
    address="Rheinallee 3, 55116 Mainz, Germany",
    effective=date(2025, 3, 14),
    end=date(2030, 3, 14),
    signed=date(2025, 3, 10),
    fmt="pdf",
    principal=22500000.0,
    facility="a senior secured term loan facility",
    rate_pct=4.35,
    pricing="3-month EURIBOR plus a margin of 2.10% per annum, EURIBOR floored at zero",
    amort_pct_per_quarter=1.25,
    prepayment="The Borrower may prepay the Loan in whole or in part (minimum EUR 1,000,000) on any "
    "interest payment date by giving not less than 30 days' prior written notice. Prepayments in the "
    "first 12 months carry a prepayment fee of 1.00% of the amount prepaid.",
    purpose="financing of the acquisition of 40 electric trucks and a logistics hub in Mainz",
    covenants=("Net leverage (net debt / EBITDA) of at most 3.50x", "Debt service cover ratio of at least 1.20x"),
)
BALTIC = _loan(
    contract_id="C-2025-003",
    slug="baltic-timber-revolving-credit-facility",
    title="Revolving Credit Facility Agreement - Baltic Timber Holdings OÜ",
    counterparty="Baltic Timber Holdings OÜ",
    counterparty_id="CP-009",
    country="EE",
    address="Narva mnt 7, 10117 Tallinn, Estonia",
    effective=date(2025, 6, 2),
    end=date(2028, 6, 2),
    signed=date(2025, 5, 26),
    fmt="pdf",
    principal=8000000.0,
    facility="a revolving credit facility",
    rate_pct=5.00,
    pricing="3-month EURIBOR plus a margin of 2.75% per annum; commitment fee of 0.35% per annum on the undrawn amount",
    amort_pct_per_quarter=0.0,
    prepayment="The Borrower may cancel the undrawn commitment or prepay any loan on 10 business days' "
    "prior written notice without penalty.",
    purpose="general corporate purposes and working capital",
    covenants=("Equity ratio of at least 35%", "Interest cover of at least 4.00x"),
)
ALPENBLICK = _loan(
    contract_id="C-2025-004",
    slug="alpenblick-hotels-mortgage-loan",
    title="Mortgage Loan Agreement - Alpenblick Hotels AG",
    counterparty="Alpenblick Hotels AG",
    counterparty_id="CP-010",
    country="AT",
    address="Maria-Theresien-Strasse 18, 6020 Innsbruck, Austria",
    effective=date(2025, 2, 3),
    end=date(2040, 1, 31),
    signed=date(2025, 1, 27),
    fmt="pdf",
    principal=14750000.0,
    facility="a mortgage loan secured on three hotel properties",
    rate_pct=4.05,
    pricing="a fixed rate of 4.05% per annum for the full term",
    amort_pct_per_quarter=1.5,
    prepayment="Voluntary prepayment is not permitted during the first 3 years. Thereafter the Borrower "
    "may prepay on 3 months' written notice against payment of a prepayment compensation.",
    purpose="refinancing of three hotels in Innsbruck, Seefeld and Kitzbuehel",
    covenants=("Loan-to-value of at most 60%", "Debt service cover ratio of at least 1.30x"),
    governing_law="the Republic of Austria",
    courts="Innsbruck",
)
VISTULA = _loan(
    contract_id="C-2025-010",
    slug="vistula-fintech-term-loan",
    title="Term Loan Agreement - Vistula Fintech Sp. z o.o.",
    counterparty="Vistula Fintech Sp. z o.o.",
    counterparty_id="CP-016",
    country="PL",
    address="ul. Prosta 51, 00-838 Warsaw, Poland",
    effective=date(2025, 9, 1),
    end=date(2029, 9, 1),
    signed=date(2025, 8, 25),
    fmt="docx",
    principal=3200000.0,
    facility="a term loan facility",
    rate_pct=5.55,
    pricing="3-month EURIBOR plus a margin of 3.40% per annum",
    amort_pct_per_quarter=5.0,
    prepayment="The Borrower may prepay the Loan on 20 business days' prior written notice; "
    "prepayments carry no fee after 1 September 2026.",
    purpose="financing of the development of a payment platform",
    covenants=("Minimum liquidity of EUR 1,500,000 at all times", "Annual recurring revenue growth reported quarterly"),
)

LOAN_CONTRACTS: tuple[LoanContract, ...] = (RHEINTAL, BALTIC, ALPENBLICK, VISTULA)

# Planted: the term sheet promised EUR 25m, the signed facility says EUR 22.5m.
RHEINTAL_TERM_SHEET = TermSheet(
    contract_id="TS-2025-001",
    slug="rheintal-logistik-indicative-term-sheet",
    title="Indicative Term Sheet - Senior Term Facility - Rheintal Logistik SE",
    related=RHEINTAL,
    dated=date(2025, 1, 20),
    governing_law="the Federal Republic of Germany",
    annual_cap=None,
    terms=(
        ("Borrower", "Rheintal Logistik SE, Rheinallee 3, 55116 Mainz, Germany"),
        ("Lender", "Nordbank AG"),
        ("Facility", "Senior secured term loan facility"),
        ("Facility amount", "EUR 25,000,000"),
        ("Purpose", RHEINTAL.purpose),
        ("Tenor", "5 years from signing"),
        ("Pricing", RHEINTAL.pricing),
        ("Repayment", "1.25% of the facility amount per quarter, balance at maturity"),
        ("Financial covenants", "; ".join(RHEINTAL.covenants)),
        ("Governing law", "German law; courts of Frankfurt am Main"),
        ("Status", "Indicative and non-binding; subject to credit approval and documentation"),
    ),
)
# Planted: the heads of terms agreed Dutch law, the signed lease says German law.
KEIZERSGRACHT_HEADS = TermSheet(
    contract_id="TS-2025-002",
    slug="keizersgracht-480-heads-of-terms",
    title="Heads of Terms - Office Lease Keizersgracht 480 Amsterdam",
    related=KEIZERSGRACHT,
    dated=date(2024, 11, 5),
    governing_law="the Netherlands",
    annual_cap=312000.0,
    terms=(
        ("Landlord", "Keizersgracht Vastgoed B.V., Keizersgracht 480, 1017 EG Amsterdam"),
        ("Tenant", "Nordbank AG, Amsterdam branch"),
        ("Premises", "Floors 2 to 4, 2,150 sqm, and 12 parking spaces"),
        ("Term", "10 years from 1 April 2025"),
        ("Rent", "EUR 312,000 per annum, payable quarterly in advance (EUR 78,000 per quarter)"),
        ("Break option", "Tenant only, at the end of year 5 on 12 months' notice"),
        ("Governing law", "Dutch law; courts of Amsterdam"),
        ("Status", "Subject to contract; not legally binding except for confidentiality"),
    ),
)
TERM_SHEETS: tuple[TermSheet, ...] = (RHEINTAL_TERM_SHEET, KEIZERSGRACHT_HEADS)


def loan_schedule(loan: LoanContract) -> list[tuple[date, float, float, float]]:
    """(date, principal repaid, interest, outstanding after) per quarter, up to 5 years shown."""
    outstanding = loan.principal
    rows: list[tuple[date, float, float, float]] = []
    for period in month_starts(loan.effective, loan.end, 3)[1:21]:
        due = business_day(period.replace(day=min(loan.effective.day, 28)))
        interest = round(outstanding * loan.rate_pct / 100 / 4, 2)
        repaid = round(loan.principal * loan.amort_pct_per_quarter / 100, 2)
        outstanding = round(outstanding - repaid, 2)
        rows.append((due, repaid, interest, outstanding))
    return rows
