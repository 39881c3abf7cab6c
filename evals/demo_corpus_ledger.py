"""The general ledger of the demo corpus: a SQLite file with accounts, counterparties and entries.

Contract fees and loan flows follow the contract specs exactly; everything else is random
background from ``random.Random(seed)``. Three anomalies are planted on purpose and reported in
``LedgerAnomalies`` so the eval dataset can point at the exact entries.
"""

from __future__ import annotations

import random
import sqlite3
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from sovra.evals.demo_corpus_contract_specs import (
    ACME,
    BLAUWAL,
    DATASTROM,
    SUPPLIER_CONTRACTS,
    fee_schedule,
)
from sovra.evals.demo_corpus_loans import ALPENBLICK, LOAN_CONTRACTS, loan_schedule

LEDGER_START = date(2025, 1, 1)
LEDGER_END = date(2026, 11, 27)

ACCOUNTS: tuple[tuple[str, str, str, str], ...] = (
    ("1000", "Cash in branches", "asset", "Banknotes and coins held in branch vaults and ATMs."),
    (
        "1010",
        "Central bank current account",
        "asset",
        "Current account with the Deutsche Bundesbank used for settlement.",
    ),
    ("1020", "Nostro accounts", "asset", "Accounts held with correspondent banks."),
    (
        "1100",
        "Loans to corporate customers",
        "asset",
        "Term loans, revolving credit and mortgage loans to corporate borrowers.",
    ),
    ("1110", "Loans to retail customers", "asset", "Consumer loans and residential mortgages."),
    ("1200", "Debt securities held", "asset", "Government and covered bonds held in the liquidity portfolio."),
    ("1300", "Other receivables", "asset", "Fees and other amounts receivable."),
    ("1400", "Prepaid expenses", "asset", "Expenses paid in advance, e.g. licences and rent."),
    ("1500", "Property and equipment", "asset", "Buildings, fit-out and office equipment."),
    ("1600", "Intangible assets", "asset", "Capitalised software and licences."),
    ("2000", "Customer current accounts", "liability", "Sight deposits of retail and corporate customers."),
    ("2010", "Customer savings deposits", "liability", "Savings and term deposits of customers."),
    ("2100", "Interbank borrowing", "liability", "Money-market borrowing from other banks."),
    ("2200", "Accounts payable", "liability", "Supplier invoices received and not yet paid."),
    ("2300", "Accrued expenses", "liability", "Expenses incurred but not yet invoiced."),
    ("2400", "Tax liabilities", "liability", "VAT, wage tax and corporate income tax payable."),
    ("2500", "Provisions", "liability", "Provisions for litigation, restructuring and other risks."),
    ("3000", "Share capital", "equity", "Subscribed capital of Nordbank AG."),
    ("3100", "Retained earnings", "equity", "Accumulated profits not distributed."),
    ("3200", "Additional Tier 1 instruments", "equity", "Perpetual AT1 capital instruments."),
    ("4000", "Interest income - corporate loans", "income", "Interest earned on loans to corporate customers."),
    ("4010", "Interest income - mortgages", "income", "Interest earned on mortgage loans."),
    ("4100", "Fee and commission income", "income", "Account fees, arrangement fees and advisory commissions."),
    ("4200", "Card fee income", "income", "Interchange and card scheme fee income."),
    ("4300", "Net trading income", "income", "Gains and losses from the trading book."),
    ("4400", "Other operating income", "income", "Rental income and other operating income."),
    ("5000", "Interest expense - deposits", "expense", "Interest paid on customer deposits."),
    ("6000", "Salaries", "expense", "Gross salaries and bonuses."),
    ("6010", "Social security contributions", "expense", "Employer social security contributions."),
    ("6100", "Rent and leases", "expense", "Rent for offices and branches."),
    ("6110", "Cleaning and facility services", "expense", "Cleaning, maintenance and facility management."),
    ("6120", "Security services", "expense", "Guarding and alarm response."),
    ("6130", "Energy", "expense", "Electricity, heating and water."),
    ("6200", "Office supplies", "expense", "Paper, toner and workplace consumables."),
    ("6300", "IT services and hosting", "expense", "Hosting, colocation and IT service providers."),
    ("6310", "Software licences", "expense", "Licence and subscription fees for software and databases."),
    ("6320", "Telecommunications", "expense", "Network, internet and telephony."),
    ("6400", "Consulting and professional fees", "expense", "Consultants, auditors and advisers."),
    ("6410", "Legal fees", "expense", "External legal counsel."),
    ("6500", "Travel and accommodation", "expense", "Flights, rail, taxis and hotels."),
    ("6510", "Meals and entertainment", "expense", "Business meals and client events."),
    ("6600", "Printing and postage", "expense", "Printing, mail and courier services."),
    ("6700", "Outsourced payment processing", "expense", "Card and payment processing by third parties."),
    ("6800", "Staff catering", "expense", "Staff restaurant operation."),
    ("6900", "Training", "expense", "Training courses and conferences."),
    ("6950", "Bank levies", "expense", "Contributions to the Single Resolution Fund and deposit guarantee scheme."),
    ("6990", "Other operating expenses", "expense", "Insurance, marketing and other expenses."),
)

# Suppliers without a contract in the contract store: (name, country, category, expense account, typical amount range).
OTHER_COUNTERPARTIES: tuple[tuple[str, str, str, str, tuple[float, float]], ...] = (
    ("Rhein Air Travel GmbH", "DE", "travel", "6500", (90, 1900)),
    ("Bahnreisen Service GmbH", "DE", "travel", "6500", (30, 420)),
    ("Citytaxi Frankfurt eG", "DE", "travel", "6500", (12, 95)),
    ("Hotel Mainufer Frankfurt GmbH", "DE", "accommodation", "6500", (140, 720)),
    ("Amstel Business Hotel B.V.", "NL", "accommodation", "6500", (160, 900)),
    ("Hotel Wien Ring GmbH", "AT", "accommodation", "6500", (150, 780)),
    ("Paris Etoile Hotel SARL", "FR", "accommodation", "6500", (210, 1100)),
    ("Trattoria Goethe GmbH", "DE", "meals", "6510", (35, 480)),
    ("Brasserie Opernplatz GmbH", "DE", "meals", "6510", (40, 620)),
    ("Kaffeehaus Westend GmbH", "DE", "meals", "6510", (8, 140)),
    ("Nordsee Event GmbH", "DE", "events", "6510", (1500, 18000)),
    ("Nordic Hardware Solutions AB", "SE", "IT hardware", "6300", (400, 24000)),
    ("Pixelwerk IT-Handel GmbH", "DE", "IT hardware", "6300", (150, 9500)),
    ("Lisbon Tech Services Lda", "PT", "IT services", "6300", (2000, 16000)),
    ("Helsinki Cyber Oy", "FI", "IT security", "6300", (3000, 28000)),
    ("Lumen Software GmbH", "DE", "software", "6310", (500, 12000)),
    ("Arcadia Analytics Ltd", "IE", "software", "6310", (1200, 15000)),
    ("Hartmann & Vogel Rechtsanwaelte PartG mbB", "DE", "legal services", "6410", (2500, 48000)),
    ("Clearwater Legal LLP", "GB", "legal services", "6410", (3000, 60000)),
    ("Pruefer & Partner Wirtschaftspruefung GmbH", "DE", "audit", "6400", (5000, 85000)),
    ("Bellweather Strategy GmbH", "DE", "consulting", "6400", (4000, 55000)),
    ("Datenschutz Audit Services GmbH", "DE", "consulting", "6400", (1500, 14000)),
    ("Zurich Risk Advisory AG", "CH", "consulting", "6400", (5000, 40000)),
    ("Madrid Traducciones S.L.", "ES", "translation", "6400", (200, 3500)),
    ("Copenhagen Research ApS", "DK", "research", "6400", (800, 9000)),
    ("Luxembourg Fund Admin S.A.", "LU", "fund services", "6400", (2500, 22000)),
    ("Talentbruecke Personalberatung GmbH", "DE", "recruitment", "6400", (6000, 32000)),
    ("Akademie fuer Bankwesen e.V.", "DE", "training", "6900", (250, 4800)),
    ("Lernpfad Digital GmbH", "DE", "training", "6900", (150, 2600)),
    ("Alpine Conference Centre GmbH", "AT", "events", "6900", (2000, 21000)),
    ("Postexpress Kurier GmbH", "DE", "postage", "6600", (20, 900)),
    ("Kurierdienst Blitz GmbH", "DE", "postage", "6600", (15, 380)),
    ("Druckerei Sachsenhausen GmbH", "DE", "printing", "6600", (180, 6500)),
    ("Stadtwerke Offenbach GmbH", "DE", "energy", "6130", (900, 5200)),
    ("Gruenpflege Garten- und Landschaftsbau GmbH", "DE", "facility services", "6110", (300, 4200)),
    ("Aufzugtechnik Mainz GmbH", "DE", "facility services", "6110", (450, 7800)),
    ("Moebelhaus Office Design GmbH", "DE", "furniture", "6990", (600, 26000)),
    ("Versicherungskammer Rhein AG", "DE", "insurance", "6990", (1200, 36000)),
    ("Fachverlag Finanzen GmbH", "DE", "subscriptions", "6990", (60, 1800)),
    ("Milano Design Studio S.r.l.", "IT", "marketing", "6990", (1500, 19000)),
    ("Vienna Marketing GmbH", "AT", "marketing", "6990", (900, 12000)),
    ("Taunus Tower Immobilien KG", "DE", "real estate", "6100", (0, 0)),  # head-office rent, monthly
)
HQ_RENT = 186500.0
DEPARTMENTS = ("Retail Banking", "Corporate Banking", "Treasury", "Risk", "Finance", "IT", "Operations", "Compliance")
_IBAN_SHAPE = {
    "DE": (0, 18),
    "NL": (4, 10),
    "FR": (0, 23),
    "IE": (4, 14),
    "GB": (4, 14),
    "BE": (0, 12),
    "AT": (0, 16),
    "EE": (0, 16),
    "PL": (0, 24),
    "NO": (0, 11),
    "SE": (0, 20),
    "PT": (0, 21),
    "FI": (0, 14),
    "CH": (0, 17),
    "ES": (0, 20),
    "DK": (0, 14),
    "LU": (0, 16),
    "IT": (1, 22),
}


@dataclass
class LedgerAnomalies:
    """Entry ids of the planted anomalies, filled in once entries are numbered."""

    duplicate_entry_ids: list[int] = field(default_factory=list)
    over_cap_extra_entry_ids: list[int] = field(default_factory=list)
    fee_increase_entry_ids: list[int] = field(default_factory=list)


Row = tuple[date, str, str | None, str, float, float, str, str]  # ..., reference, anomaly tag


def iban(rng: random.Random, country: str) -> str:
    """A syntactically valid IBAN (correct check digits) for a fictitious account."""
    letters, digits = _IBAN_SHAPE[country]
    bban = "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(letters))
    bban += "".join(rng.choice("0123456789") for _ in range(digits))
    numeric = "".join(str(int(ch, 36)) for ch in bban + country + "00")
    return f"{country}{98 - int(numeric) % 97:02d}{bban}"


def _in_window(day: date) -> bool:
    return LEDGER_START <= day <= LEDGER_END


def _contract_rows() -> list[Row]:
    rows: list[Row] = []
    for c in SUPPLIER_CONTRACTS:
        prefix = "".join(w[0] for w in c.counterparty.split()[:3]).upper()
        for due, amount, label in fee_schedule(c):
            if not _in_window(due):
                continue
            invoice = f"{prefix}-{due:%Y%m}"
            tag = ""
            if c is DATASTROM and due.year == 2026:
                amount, tag = 6820.0, "fee_increase"  # planted: 10% above the contract fee
            desc = f"{c.counterparty} - {label} fee (invoice {invoice})"
            rows.append((due, c.account, c.counterparty_id, desc, amount, 0.0, c.contract_id, tag))
            if c is ACME and due.year == 2025 and due.month == 9:
                # planted: the September 2025 invoice was paid a second time three days later
                rows.append(
                    (
                        due + timedelta(days=3),
                        c.account,
                        c.counterparty_id,
                        desc,
                        amount,
                        0.0,
                        c.contract_id,
                        "duplicate",
                    )
                )
    # planted: extra orders that push 2025 payments to Blauwal above the 125,000 annual cap
    for day, amount, what in (
        (date(2025, 3, 14), 6400.0, "additional deep cleaning after water damage"),
        (date(2025, 11, 20), 4900.0, "additional cleaning for client event"),
    ):
        rows.append(
            (
                day,
                BLAUWAL.account,
                BLAUWAL.counterparty_id,
                f"{BLAUWAL.counterparty} - {what}",
                amount,
                0.0,
                BLAUWAL.contract_id,
                "over_cap",
            )
        )
    for loan in LOAN_CONTRACTS:
        income = "4010" if loan is ALPENBLICK else "4000"
        if _in_window(loan.effective):
            rows.append(
                (
                    loan.effective,
                    "1100",
                    loan.counterparty_id,
                    f"Drawdown {loan.title}",
                    loan.principal,
                    0.0,
                    loan.contract_id,
                    "",
                )
            )
            rows.append(
                (
                    loan.effective,
                    "4100",
                    loan.counterparty_id,
                    "Arrangement fee 0.75%",
                    0.0,
                    round(loan.principal * 0.0075, 2),
                    loan.contract_id,
                    "",
                )
            )
        for due, repaid, interest, _left in loan_schedule(loan):
            if not _in_window(due):
                continue
            rows.append(
                (
                    due,
                    income,
                    loan.counterparty_id,
                    f"Interest {loan.counterparty} quarter to {due}",
                    0.0,
                    interest,
                    loan.contract_id,
                    "",
                )
            )
            if repaid:
                rows.append(
                    (
                        due,
                        "1100",
                        loan.counterparty_id,
                        f"Scheduled repayment {loan.counterparty}",
                        0.0,
                        repaid,
                        loan.contract_id,
                        "",
                    )
                )
    return rows


def _monthly_rows(rng: random.Random, hq_rent_cp: str) -> list[Row]:
    rows: list[Row] = []
    month = LEDGER_START
    while month <= LEDGER_END:
        payday = month.replace(day=25) if month.replace(day=25) <= LEDGER_END else None
        if payday:
            for dept in DEPARTMENTS:
                gross = round(rng.uniform(1.6e6, 4.8e6), 2)
                rows.append(
                    (payday, "6000", None, f"Salaries {dept} {month:%B %Y}", gross, 0.0, f"PAY-{month:%Y%m}", "")
                )
                rows.append(
                    (
                        payday,
                        "6010",
                        None,
                        f"Employer social security {dept} {month:%B %Y}",
                        round(gross * 0.195, 2),
                        0.0,
                        f"PAY-{month:%Y%m}",
                        "",
                    )
                )
            rows.append(
                (
                    month.replace(day=28),
                    "5000",
                    None,
                    f"Interest on customer deposits {month:%B %Y}",
                    round(rng.uniform(3.1e6, 4.4e6), 2),
                    0.0,
                    f"INT-{month:%Y%m}",
                    "",
                )
            )
        rows.append(
            (
                month.replace(day=3),
                "6100",
                hq_rent_cp,
                f"Head office rent {month:%B %Y}",
                HQ_RENT,
                0.0,
                f"TTI-{month:%Y%m}",
                "",
            )
        )
        month = (month.replace(day=28) + timedelta(days=4)).replace(day=1)
    for year in (2025, 2026):
        rows.append(
            (
                date(year, 5, 29),
                "6950",
                None,
                f"Single Resolution Fund contribution {year}",
                round(rng.uniform(9.5e6, 11.0e6), 2),
                0.0,
                f"SRF-{year}",
                "",
            )
        )
    return rows


def _daily_rows(rng: random.Random, suppliers: list[tuple[str, str, str, str, tuple[float, float]]]) -> list[Row]:
    rows: list[Row] = []
    invoice_no = 10000
    day = LEDGER_START
    while day <= LEDGER_END:
        if day.weekday() < 5:
            rows.append(
                (
                    day,
                    "4200",
                    None,
                    "Card interchange and scheme fees - daily settlement",
                    0.0,
                    round(rng.uniform(38000, 95000), 2),
                    f"CARD-{day:%Y%m%d}",
                    "",
                )
            )
            for _ in range(rng.randint(4, 8)):
                amount = round(rng.uniform(5e4, 2.5e6), 2)
                acct = rng.choice(("2000", "2010"))
                inflow = rng.random() < 0.52
                rows.append(
                    (
                        day,
                        acct,
                        None,
                        f"Customer deposits net {'inflow' if inflow else 'outflow'}",
                        0.0 if inflow else amount,
                        amount if inflow else 0.0,
                        f"DEP-{day:%Y%m%d}",
                        "",
                    )
                )
            for _ in range(rng.randint(1, 3)):
                rows.append(
                    (
                        day,
                        "4100",
                        None,
                        rng.choice(
                            (
                                "Account maintenance fees",
                                "Securities custody fees",
                                "Advisory commission",
                                "Payment transaction fees",
                            )
                        ),
                        0.0,
                        round(rng.uniform(800, 42000), 2),
                        f"FEE-{day:%Y%m%d}",
                        "",
                    )
                )
            if rng.random() < 0.6:
                pnl = round(rng.uniform(-250000, 400000), 2)
                rows.append(
                    (day, "4300", None, "Net trading result", max(-pnl, 0.0), max(pnl, 0.0), f"TRD-{day:%Y%m%d}", "")
                )
            for _ in range(rng.randint(7, 12)):
                cp_id, name, category, account, (low, high) = rng.choice(suppliers)
                invoice_no += 1
                rows.append(
                    (
                        day,
                        account,
                        cp_id,
                        f"{category.capitalize()} - {name}",
                        round(rng.uniform(low, high), 2),
                        0.0,
                        f"INV-{invoice_no}",
                        "",
                    )
                )
        day += timedelta(days=1)
    return rows


_SCHEMA = """
CREATE TABLE accounts(account_code TEXT PRIMARY KEY, name TEXT NOT NULL,
  type TEXT NOT NULL CHECK(type IN ('asset','liability','equity','income','expense')), description TEXT);
CREATE TABLE counterparties(counterparty_id TEXT PRIMARY KEY, name TEXT NOT NULL, country TEXT, iban TEXT,
  category TEXT, contract_id TEXT NULL);
CREATE TABLE journal_entries(entry_id INTEGER PRIMARY KEY, entry_date TEXT NOT NULL,
  account_code TEXT NOT NULL REFERENCES accounts(account_code),
  counterparty_id TEXT NULL REFERENCES counterparties(counterparty_id), description TEXT,
  debit NUMERIC NOT NULL DEFAULT 0, credit NUMERIC NOT NULL DEFAULT 0, currency TEXT NOT NULL, reference TEXT);
CREATE INDEX ix_journal_entry_date ON journal_entries(entry_date);
CREATE INDEX ix_journal_counterparty ON journal_entries(counterparty_id);
CREATE INDEX ix_journal_account ON journal_entries(account_code);
"""


def write_ledger(path: Path, seed: int) -> LedgerAnomalies:
    rng = random.Random(seed)
    path.unlink(missing_ok=True)
    counterparties: list[tuple[str, str, str, str, str, str | None]] = []
    for c in (*SUPPLIER_CONTRACTS, *LOAN_CONTRACTS):
        category = "borrower" if c.contract_type == "loan" else getattr(c, "category", c.contract_type)
        counterparties.append(
            (c.counterparty_id, c.counterparty, c.country, iban(rng, c.country), category, c.contract_id)
        )
    counterparties.sort()
    suppliers: list[tuple[str, str, str, str, tuple[float, float]]] = []
    hq_rent_cp = ""
    for n, (name, country, category, account, span) in enumerate(OTHER_COUNTERPARTIES, start=len(counterparties) + 1):
        cp_id = f"CP-{n:03d}"
        counterparties.append((cp_id, name, country, iban(rng, country), category, None))
        if category == "real estate":
            hq_rent_cp = cp_id
        else:
            suppliers.append((cp_id, name, category, account, span))

    rows = _contract_rows() + _monthly_rows(rng, hq_rent_cp) + _daily_rows(rng, suppliers)
    rows = [r for r in rows if _in_window(r[0])]
    rows.sort(key=lambda r: r[0])  # stable: same-day rows keep their generation order
    anomalies = LedgerAnomalies()
    bucket = {
        "duplicate": anomalies.duplicate_entry_ids,
        "over_cap": anomalies.over_cap_extra_entry_ids,
        "fee_increase": anomalies.fee_increase_entry_ids,
    }
    for entry_id, row in enumerate(rows, start=1):
        if row[7]:
            bucket[row[7]].append(entry_id)
    # the duplicate pair is the original payment plus its repeat
    first = next(
        i for i, r in enumerate(rows, start=1) if r[6] == ACME.contract_id and r[0].year == 2025 and r[0].month == 9
    )
    anomalies.duplicate_entry_ids.insert(0, first)

    con = sqlite3.connect(path)
    try:
        con.executescript(_SCHEMA)
        con.executemany("INSERT INTO accounts VALUES (?,?,?,?)", ACCOUNTS)
        con.executemany("INSERT INTO counterparties VALUES (?,?,?,?,?,?)", counterparties)
        con.executemany(
            "INSERT INTO journal_entries VALUES (?,?,?,?,?,?,?,?,?)",
            ((i, r[0].isoformat(), r[1], r[2], r[3], r[4], r[5], "EUR", r[6]) for i, r in enumerate(rows, start=1)),
        )
        con.commit()
    finally:
        con.close()
    return anomalies
