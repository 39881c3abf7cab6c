"""The contracts of the demo corpus as data: the shared types and the supplier agreements.

The same specs drive the contract documents, their sidecars and the ledger payments, so the
three sources agree except where an inconsistency is planted on purpose (comments say
"Planted"). Loans and term sheets live in ``demo_corpus_loans``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

ContractType = Literal["supply", "services", "lease", "loan", "licence"]
Frequency = Literal["monthly", "quarterly", "annually"]

SUPPLIER_ACL = ("group:finance", "group:legal")
LOAN_ACL = ("group:legal", "group:risk-committee")


@dataclass(frozen=True, kw_only=True)
class Contract:
    contract_id: str
    slug: str
    title: str
    counterparty: str
    counterparty_id: str
    country: str
    address: str
    contract_type: ContractType
    effective: date
    end: date
    signed: date
    fmt: Literal["pdf", "docx"]
    governing_law: str
    courts: str
    acl: tuple[str, ...]
    annual_cap: float | None

    @property
    def filename(self) -> str:
        return f"{self.contract_id.lower()}-{self.slug}.{self.fmt}"


@dataclass(frozen=True, kw_only=True)
class SupplierContract(Contract):
    fee: float
    frequency: Frequency
    convenience_days: int | None  # Nordbank's right to terminate for convenience, None = none
    liability_cap: str
    account: str  # expense account the ledger books the fees to
    category: str
    subject: str
    deliverables: tuple[str, ...]
    termination_note: str = ""


@dataclass(frozen=True, kw_only=True)
class LoanContract(Contract):
    principal: float
    facility: str
    rate_pct: float  # all-in rate used for the ledger's interest income
    pricing: str
    amort_pct_per_quarter: float
    prepayment: str
    purpose: str
    covenants: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class TermSheet:
    """A pre-contract document describing a deal that a later contract documents."""

    contract_id: str
    slug: str
    title: str
    related: Contract
    dated: date
    governing_law: str
    annual_cap: float | None
    terms: tuple[tuple[str, str], ...]

    @property
    def filename(self) -> str:
        return f"{self.contract_id.lower()}-{self.slug}.docx"


def _supplier(**kw: object) -> SupplierContract:
    kw.setdefault("acl", SUPPLIER_ACL)
    kw.setdefault("courts", "Frankfurt am Main")
    kw.setdefault("governing_law", "the Federal Republic of Germany")
    return SupplierContract(**kw)  # type: ignore[arg-type]


ACME = _supplier(
    contract_id="C-2024-001",
    slug="acme-office-supplies-supply-agreement",
    title="Supply Agreement - Acme Office Supplies GmbH",
    counterparty="Acme Office Supplies GmbH",
    counterparty_id="CP-001",
    country="DE",
    address="Hanauer Landstrasse 204, 60314 Frankfurt am Main, Germany",
    contract_type="supply",
    effective=date(2024, 1, 1),
    end=date(2026, 12, 31),
    signed=date(2023, 12, 12),
    fmt="pdf",
    annual_cap=120000.0,
    fee=8500.0,
    frequency="monthly",
    convenience_days=90,
    liability_cap="EUR 250,000 per contract year",
    account="6200",
    category="office supplies",
    subject="office supplies, paper, toner and workplace consumables for all Nordbank offices in Germany",
    deliverables=(
        "Paper, envelopes and printed forms",
        "Toner and printer consumables",
        "Desk accessories and workplace consumables",
        "Next-business-day delivery to 14 sites",
    ),
)
BLAUWAL = _supplier(
    contract_id="C-2024-002",
    slug="blauwal-facility-cleaning-services",
    title="Facility Cleaning Services Agreement - Blauwal Facility Services B.V.",
    counterparty="Blauwal Facility Services B.V.",
    counterparty_id="CP-002",
    country="NL",
    address="Zuidas Boulevard 88, 1082 MD Amsterdam, Netherlands",
    contract_type="services",
    effective=date(2024, 7, 1),
    end=date(2027, 6, 30),
    signed=date(2024, 5, 21),
    fmt="pdf",
    annual_cap=125000.0,
    fee=9800.0,
    frequency="monthly",
    convenience_days=None,
    liability_cap="EUR 500,000 per claim",
    account="6110",
    category="facility services",
    subject="daily office cleaning, window cleaning and waste management for the Frankfurt head office",
    deliverables=(
        "Daily cleaning of 24,000 sqm office space",
        "Quarterly window cleaning",
        "Separated waste collection",
        "Additional cleaning on request at agreed rates",
    ),
    termination_note="Either party may give notice of non-renewal at least 6 months before the end of the Term.",
)
HELIX = _supplier(
    contract_id="C-2024-003",
    slug="helix-cloud-hosting-managed-services",
    title="Cloud Hosting and Managed Services Agreement - Helix Cloud Hosting SAS",
    counterparty="Helix Cloud Hosting SAS",
    counterparty_id="CP-003",
    country="FR",
    address="12 Rue de la Boetie, 75008 Paris, France",
    contract_type="services",
    effective=date(2024, 4, 1),
    end=date(2028, 3, 31),
    signed=date(2024, 2, 27),
    fmt="pdf",
    annual_cap=400000.0,
    fee=96000.0,
    frequency="quarterly",
    convenience_days=180,
    liability_cap="the fees paid in the 12 months before the claim, at most EUR 1,500,000",
    account="6300",
    category="IT services",
    governing_law="the French Republic",
    courts="Paris",
    subject="managed private cloud hosting of the online banking platform (material outsourcing)",
    deliverables=(
        "Hosting in two EU data centres (Paris and Frankfurt)",
        "99.95% monthly availability",
        "24x7 monitoring and incident response",
        "Quarterly disaster recovery tests",
    ),
)
KESTREL = _supplier(
    contract_id="C-2024-004",
    slug="kestrel-core-banking-licence",
    title="Core Banking Software Licence Agreement - Kestrel Software Ltd",
    counterparty="Kestrel Software Ltd",
    counterparty_id="CP-004",
    country="IE",
    address="Grand Canal Quay 5, Dublin 2, D02 X576, Ireland",
    contract_type="licence",
    effective=date(2024, 1, 1),
    end=date(2028, 12, 31),
    signed=date(2023, 11, 30),
    fmt="pdf",
    annual_cap=380000.0,
    fee=90000.0,
    frequency="quarterly",
    convenience_days=None,
    liability_cap="the licence fees paid in the preceding 12 months",
    account="6310",
    category="software",
    governing_law="Ireland",
    courts="Dublin",
    subject="a non-exclusive licence to the Kestrel Core Banking suite with maintenance and support",
    deliverables=(
        "Licence for up to 2,500 named users",
        "Two major releases per year",
        "Severity 1 support response within 30 minutes",
        "Source code escrow with an escrow agent",
    ),
)
SENTINEL = _supplier(
    contract_id="C-2024-005",
    slug="sentinel-security-guarding-services",
    title="Security Guarding Services Agreement - Sentinel Security Services GmbH",
    counterparty="Sentinel Security Services GmbH",
    counterparty_id="CP-005",
    country="DE",
    address="Mainzer Landstrasse 50, 60325 Frankfurt am Main, Germany",
    contract_type="services",
    effective=date(2024, 3, 1),
    end=date(2027, 2, 28),
    signed=date(2024, 1, 29),
    fmt="docx",
    annual_cap=175000.0,
    fee=14200.0,
    frequency="monthly",
    convenience_days=60,
    liability_cap="EUR 2,000,000 per incident",
    account="6120",
    category="security services",
    subject="manned guarding, reception security and alarm response for the Frankfurt head office",
    deliverables=(
        "Two guards on duty 24 hours a day",
        "Reception security 07:00-20:00",
        "Alarm response within 15 minutes",
        "Monthly security report",
    ),
)
GREENLEAF = _supplier(
    contract_id="C-2024-006",
    slug="greenleaf-staff-restaurant-catering",
    title="Staff Restaurant Catering Agreement - Greenleaf Catering GmbH",
    counterparty="Greenleaf Catering GmbH",
    counterparty_id="CP-006",
    country="DE",
    address="Eschborner Landstrasse 42, 60489 Frankfurt am Main, Germany",
    contract_type="services",
    effective=date(2024, 9, 1),
    end=date(2026, 8, 31),
    signed=date(2024, 7, 15),
    fmt="docx",
    annual_cap=95000.0,
    fee=7400.0,
    frequency="monthly",
    convenience_days=60,
    liability_cap="EUR 1,000,000 per claim",
    account="6800",
    category="catering",
    acl=("group:employees",),
    subject="operation of the staff restaurant and coffee bar at the Frankfurt head office",
    deliverables=(
        "Lunch service 11:30-14:00 on working days",
        "Subsidised menu price of EUR 4.90",
        "Vegetarian option every day",
        "Coffee bar 08:00-17:00",
    ),
)
KEIZERSGRACHT = _supplier(
    contract_id="C-2025-001",
    slug="keizersgracht-480-office-lease",
    title="Office Lease Agreement - Keizersgracht 480 Amsterdam",
    counterparty="Keizersgracht Vastgoed B.V.",
    counterparty_id="CP-007",
    country="NL",
    address="Keizersgracht 480, 1017 EG Amsterdam, Netherlands",
    contract_type="lease",
    effective=date(2025, 4, 1),
    end=date(2035, 3, 31),
    signed=date(2025, 2, 18),
    fmt="pdf",
    annual_cap=312000.0,
    fee=78000.0,
    frequency="quarterly",
    convenience_days=None,
    liability_cap="the annual rent",
    account="6100",
    category="real estate",
    # Planted: the heads of terms (TS-2025-002) agreed Dutch law.
    governing_law="the Federal Republic of Germany",
    subject="the lease of 2,150 sqm of office space and 12 parking spaces at Keizersgracht 480, Amsterdam",
    deliverables=(
        "Floors 2 to 4, 2,150 sqm lettable area",
        "12 underground parking spaces",
        "Service charges settled annually",
        "Rent indexed annually to the Dutch CPI",
    ),
    termination_note="Nordbank has a one-time break option at the end of the 5th lease year on 12 "
    "months' written notice.",
)
DATASTROM = _supplier(
    contract_id="C-2025-005",
    slug="datastrom-network-telecom-services",
    title="Network and Telecommunications Services Agreement - Datastrom Telecom GmbH",
    counterparty="Datastrom Telecom GmbH",
    counterparty_id="CP-011",
    country="DE",
    address="Am Borsigturm 100, 13507 Berlin, Germany",
    contract_type="services",
    effective=date(2025, 1, 1),
    end=date(2027, 12, 31),
    signed=date(2024, 11, 20),
    fmt="docx",
    annual_cap=80000.0,
    fee=6200.0,
    frequency="monthly",
    convenience_days=30,
    liability_cap="EUR 300,000 per contract year",
    account="6320",
    category="telecommunications",
    subject="WAN connectivity, internet access and fixed-line telephony for 14 sites",
    deliverables=(
        "Dual 10 Gbit/s links for the head office",
        "1 Gbit/s links for 13 branches",
        "SIP telephony for 4,200 extensions",
        "Fault repair within 4 hours",
    ),
    termination_note="The right to terminate for convenience may be exercised only after a minimum term of 12 months.",
)
QUILLFIELD = _supplier(
    contract_id="C-2025-006",
    slug="quillfield-legal-database-licence",
    title="Legal Research Database Subscription Licence - Quillfield Legal Publishing Ltd",
    counterparty="Quillfield Legal Publishing Ltd",
    counterparty_id="CP-012",
    country="GB",
    address="14 Chancery Lane, London WC2A 1PL, United Kingdom",
    contract_type="licence",
    effective=date(2025, 1, 1),
    end=date(2027, 12, 31),
    signed=date(2024, 12, 2),
    fmt="pdf",
    annual_cap=45000.0,
    fee=42000.0,
    frequency="annually",
    convenience_days=None,
    liability_cap="the annual subscription fee",
    account="6310",
    category="software",
    governing_law="England and Wales",
    courts="London",
    subject="access to the Quillfield legal research database for the Legal and Compliance departments",
    deliverables=(
        "Up to 60 concurrent users",
        "EU and German case law modules",
        "Regulatory alert service",
        "Annual training session",
    ),
)
MERIDIAN = _supplier(
    contract_id="C-2025-007",
    slug="meridian-statement-printing-mail",
    title="Statement Printing and Mail Services Agreement - Meridian Print & Mail GmbH",
    counterparty="Meridian Print & Mail GmbH",
    counterparty_id="CP-013",
    country="DE",
    address="Industriestrasse 21, 63150 Heusenstamm, Germany",
    contract_type="services",
    effective=date(2025, 1, 1),
    end=date(2027, 12, 31),
    signed=date(2024, 10, 8),
    fmt="pdf",
    annual_cap=130000.0,
    fee=9750.0,
    frequency="monthly",
    convenience_days=90,
    liability_cap="EUR 750,000 per contract year",
    account="6600",
    category="printing",
    subject="printing, enveloping and posting of customer statements and letters",
    deliverables=(
        "Up to 180,000 statements per month",
        "Posting within 1 business day",
        "Certified destruction of misprints",
        "Monthly quality report",
    ),
)
ORBIS = _supplier(
    contract_id="C-2025-008",
    slug="orbis-card-processing-outsourcing",
    title="Card Processing Outsourcing Agreement - Orbis Payments SA",
    counterparty="Orbis Payments SA",
    counterparty_id="CP-014",
    country="BE",
    address="Avenue Louise 250, 1050 Brussels, Belgium",
    contract_type="services",
    effective=date(2025, 2, 1),
    end=date(2030, 1, 31),
    signed=date(2024, 12, 16),
    fmt="pdf",
    annual_cap=360000.0,
    fee=27500.0,
    frequency="monthly",
    convenience_days=180,
    liability_cap="EUR 5,000,000 per contract year",
    account="6700",
    category="payment processing",
    governing_law="the Kingdom of Belgium",
    courts="Brussels",
    subject="debit and credit card authorisation, clearing and settlement (material outsourcing)",
    deliverables=(
        "Authorisation availability of 99.99%",
        "Clearing with Visa and Mastercard",
        "Fraud monitoring 24x7",
        "Exit assistance for up to 12 months",
    ),
)
NORDLICHT = _supplier(
    contract_id="C-2025-009",
    slug="nordlicht-electricity-supply",
    title="Electricity Supply Agreement - Nordlicht Energie GmbH",
    counterparty="Nordlicht Energie GmbH",
    counterparty_id="CP-015",
    country="DE",
    address="Alsterufer 9, 20354 Hamburg, Germany",
    contract_type="supply",
    effective=date(2025, 1, 1),
    end=date(2026, 12, 31),
    signed=date(2024, 9, 30),
    fmt="docx",
    annual_cap=160000.0,
    fee=12300.0,
    frequency="monthly",
    convenience_days=None,
    liability_cap="EUR 200,000 per contract year",
    account="6130",
    category="energy",
    subject="supply of 100% renewable electricity to all Nordbank sites in Germany",
    deliverables=(
        "Estimated consumption of 4.1 GWh per year",
        "Guarantees of origin for 100% renewables",
        "Fixed monthly instalments, annual true-up",
        "Metering data portal access",
    ),
)
CASTELLAN = _supplier(
    contract_id="C-2026-001",
    slug="castellan-regulatory-remediation-consulting",
    title="Regulatory Remediation Consulting Agreement - Castellan Consulting Partners LLP",
    counterparty="Castellan Consulting Partners LLP",
    counterparty_id="CP-017",
    country="GB",
    address="30 Finsbury Square, London EC2A 1AG, United Kingdom",
    contract_type="services",
    effective=date(2026, 1, 15),
    end=date(2026, 12, 31),
    signed=date(2026, 1, 9),
    fmt="pdf",
    annual_cap=220000.0,
    fee=55000.0,
    frequency="quarterly",
    convenience_days=30,
    liability_cap="the total fees payable under this Agreement",
    account="6400",
    category="consulting",
    governing_law="England and Wales",
    courts="London",
    acl=("group:legal", "user:carol"),
    subject="support for the remediation of the BaFin special audit findings on outsourcing",
    deliverables=(
        "Outsourcing register remediation",
        "Exit plans for material outsourcings",
        "Weekly status report to the COO",
        "Final report by 15 December 2026",
    ),
)
FJORD = _supplier(
    contract_id="C-2026-002",
    slug="fjord-data-centre-colocation",
    title="Colocation Services Agreement - Fjord Data Centres AS",
    counterparty="Fjord Data Centres AS",
    counterparty_id="CP-018",
    country="NO",
    address="Dronning Eufemias gate 16, 0191 Oslo, Norway",
    contract_type="services",
    effective=date(2026, 2, 1),
    end=date(2031, 1, 31),
    signed=date(2025, 12, 19),
    fmt="pdf",
    annual_cap=240000.0,
    fee=18900.0,
    frequency="monthly",
    convenience_days=None,
    liability_cap="EUR 1,000,000 per contract year",
    account="6300",
    category="IT services",
    governing_law="the Kingdom of Norway",
    courts="Oslo",
    subject="colocation of 12 racks for backup and archive systems",
    deliverables=(
        "12 racks with 8 kW each",
        "Tier III certified facility",
        "Remote hands 24x7",
        "100% renewable power",
    ),
)

SUPPLIER_CONTRACTS: tuple[SupplierContract, ...] = (
    ACME,
    BLAUWAL,
    HELIX,
    KESTREL,
    SENTINEL,
    GREENLEAF,
    KEIZERSGRACHT,
    DATASTROM,
    QUILLFIELD,
    MERIDIAN,
    ORBIS,
    NORDLICHT,
    CASTELLAN,
    FJORD,
)


def business_day(day: date) -> date:
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


def month_starts(start: date, end: date, step: int) -> list[date]:
    out: list[date] = []
    year, month = start.year, start.month
    while date(year, month, 1) <= end:
        out.append(date(year, month, 1))
        month += step
        year, month = year + (month - 1) // 12, (month - 1) % 12 + 1
    return out


def fee_schedule(contract: SupplierContract) -> list[tuple[date, float, str]]:
    """(due date, amount, period label) for every fee over the whole contract term."""
    step = {"monthly": 1, "quarterly": 3, "annually": 12}[contract.frequency]
    out: list[tuple[date, float, str]] = []
    for period in month_starts(contract.effective, contract.end, step):
        if contract.frequency == "monthly":
            label = period.strftime("%B %Y")
            due = business_day(period.replace(day=5))
        elif contract.frequency == "quarterly":
            label = f"Quarter starting {period.strftime('%B %Y')}"
            due = business_day(period.replace(day=10))
        else:
            label = f"Year starting {period.strftime('%B %Y')}"
            due = business_day(period.replace(day=15))
        out.append((due, contract.fee, label))
    return out
