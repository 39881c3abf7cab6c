"""ledger_lookup: what was paid to a counterparty in a period, as a cited ledger summary.

A thin, permissioned tool over the allow-listed queries in ``sovra.tools.ledger``: the model names a
counterparty and a year; the tool resolves the name against the ledger itself and never runs SQL
that the model wrote.
"""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, Field

from sovra.errors import InputError
from sovra.tools.base import ToolContext, tool
from sovra.tools.ledger import LedgerQuery, find_counterparty, query_ledger


class LedgerLookupArgs(BaseModel):
    question: str = Field(description="The user's question; used to find the counterparty if none is named.")
    counterparty: str | None = Field(default=None, description="Company name as the user wrote it.")
    year: int | None = Field(default=None, description="Calendar year; default: the current year.")


class LedgerLookupResult(BaseModel):
    found: bool
    summary: str  # headline plus the first rows: what a model reads
    headline: str = ""  # one line: who, period, count, total
    title: str = "General ledger"
    url: str = ""
    counterparty: str | None = None
    total: float = 0.0
    count: int = 0
    row_keys: list[str] = Field(default_factory=list)


@tool(read_only=True, requires=("group:finance",))
def ledger_lookup(args: LedgerLookupArgs, ctx: ToolContext) -> LedgerLookupResult:
    """Sum the payments booked to a counterparty in a calendar year, citing the ledger rows."""
    db_url = ctx.services.ledger_url
    if db_url is None:
        return LedgerLookupResult(found=False, summary="No ledger source is configured.")
    match = None
    for text in (args.counterparty, args.question):
        if text:
            match = find_counterparty(db_url, text)
            if match:
                break
    if match is None:
        return LedgerLookupResult(found=False, summary="No counterparty named in the question is in the ledger.")
    cp_id, cp_name = match
    today = ctx.services.settings.today
    year = args.year or today.year
    start, end = dt.date(year, 1, 1), min(dt.date(year, 12, 31), today)
    try:
        res = query_ledger(
            db_url,
            LedgerQuery(kind="payments_to_counterparty", counterparty=cp_id, date_from=start, date_to=end, limit=500),
        )
    except InputError as exc:
        return LedgerLookupResult(found=False, summary=exc.message)
    keys = [f"{r.table}#{r.key}" for r in res.rows]
    headline = (
        f"payments to {cp_name} booked from {start.isoformat()} to {end.isoformat()}: "
        f"{res.matched} entries, total EUR {res.total:,.2f}"
    )
    summary = headline
    if res.rows:
        rows = "; ".join(f"{r.entry_date} EUR {r.amount:,.2f} ({r.reference or r.description})" for r in res.rows[:12])
        summary += "; " + rows
    return LedgerLookupResult(
        found=True,
        summary=summary,
        headline=headline,
        title=f"General ledger: payments to {cp_name} ({year})",
        url=f"ledger://journal_entries?counterparty={cp_id}&year={year}",
        counterparty=cp_name,
        total=res.total,
        count=res.matched,
        row_keys=keys,
    )
