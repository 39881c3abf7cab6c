"""Ledger reconciliation: what a contract says should be paid (fee, schedule, indexation, annual cap)
against what the general ledger shows, each difference explained with the clause and the rows.

The graph is find -> extract -> ledger -> reconcile -> report. The ledger is read only through the
allow-listed ``payments_to_counterparty`` query (``tools/ledger.py``) and only for users in
``group:finance``; everything that decides whether something is a discrepancy is typed code.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any, Literal, TypedDict

from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph
from pydantic import BaseModel, Field

from sovra.agents.assistant import NOT_FOUND
from sovra.agents.contracts import CitationBook, ctx_of, find_documents, report_answer, tool_ctx
from sovra.errors import SovraError
from sovra.runtime import Answer
from sovra.tools.base import ToolContext, tool
from sovra.tools.contract_docs import ContractDocument
from sovra.tools.extract import Evidence, ExtractArgs, KeyTerms, ScheduledPayment, extract_terms
from sovra.tools.ledger import LedgerQuery, LedgerRow, query_ledger

FINANCE = "group:finance"
_STEP_DAYS = {"month": 31, "quarter": 92, "year": 366}
_MONTHS = {"month": 1, "quarter": 3, "year": 12}
# What a payment schedule is derived from, when the contract has no schedule table.
_SCHEDULE_TERMS = {"fee_amount": "fee", "fee_period": "payment period", "effective_date": "start date",
                   "end_date": "end date"}  # fmt: skip

Kind = Literal["duplicate_payment", "fee_above_contract", "fee_below_contract", "over_annual_cap", "missing_payment"]


# --- the ledger tool -----------------------------------------------------------------------------------


class ContractPaymentsArgs(BaseModel):
    counterparty_id: str = Field(description="Ledger counterparty id, e.g. CP-001.")
    contract_id: str | None = Field(default=None, description="Keep only entries referencing this contract.")


class ContractPayments(BaseModel):
    counterparty: str | None
    rows: list[LedgerRow]
    matched: int
    truncated: bool


@tool(read_only=True, requires=(FINANCE,))
def contract_payments(args: ContractPaymentsArgs, ctx: ToolContext) -> ContractPayments:
    """Every ledger entry booked to a counterparty (optionally only those referencing a contract)."""
    db_url = ctx.services.ledger_url
    if db_url is None:
        raise SovraError("no ledger source is configured", hint="ingest a ledger: sovra ingest ledger.sqlite")
    res = query_ledger(
        db_url, LedgerQuery(kind="payments_to_counterparty", counterparty=args.counterparty_id, limit=500)
    )
    rows = res.rows
    if args.contract_id and any(r.reference == args.contract_id for r in rows):
        rows = [r for r in rows if r.reference == args.contract_id]
    return ContractPayments(
        counterparty=res.resolved_counterparty, rows=rows, matched=res.matched, truncated=res.truncated
    )


# --- the reconciliation (pure) -------------------------------------------------------------------------


class Discrepancy(BaseModel):
    kind: Kind
    summary: str
    clause: str  # which KeyTerms evidence explains the expectation
    rows: list[str] = Field(default_factory=list)  # journal_entries#id
    amount: float = 0.0  # the money at stake


class Reconciliation(BaseModel):
    contract_id: str | None
    expected: int  # scheduled payments inside the ledger window
    paid_by_year: dict[int, float]
    discrepancies: list[Discrepancy]
    unscheduled: list[str] = Field(default_factory=list)  # rows that match no scheduled payment
    window: tuple[dt.date, dt.date] | None = None


def _key(r: LedgerRow) -> str:
    return f"{r.table}#{r.key}"


def _derived_schedule(t: KeyTerms) -> list[ScheduledPayment]:
    """Payments implied by fee, period and term when the document has no schedule table."""
    if not (t.fee_amount and t.fee_period and t.effective_date and t.end_date):
        return []
    out: list[ScheduledPayment] = []
    y, m, n = t.effective_date.year, t.effective_date.month, 1
    while dt.date(y, m, 1) <= t.end_date:
        start = dt.date(y, m, 1)
        out.append(ScheduledPayment(no=n, period=start.strftime("%B %Y"), due=start, amount=t.fee_amount))
        m += _MONTHS[t.fee_period]
        y, m, n = y + (m - 1) // 12, (m - 1) % 12 + 1, n + 1
    return out


def _allowed_fee(t: KeyTerms, due: dt.date) -> float:
    """The highest fee the indexation clause allows on ``due`` (fixed for the first 12 months)."""
    base = float(t.fee_amount or 0.0)
    if not t.max_indexation_pct or not t.effective_date:
        return base
    years = max(0, (due - t.effective_date).days // 365)
    return round(base * (1 + t.max_indexation_pct / 100) ** years, 2)


def reconcile(t: KeyTerms, rows: list[LedgerRow], today: dt.date) -> Reconciliation:
    schedule = t.payment_schedule or _derived_schedule(t)
    payments = sorted(
        (r for r in rows if r.amount > 0), key=lambda r: (r.entry_date, int(r.key) if r.key.isdigit() else 0)
    )
    if not schedule or not payments:
        return Reconciliation(contract_id=t.contract_id, expected=0, paid_by_year={}, discrepancies=[])
    slack = dt.timedelta(days=_STEP_DAYS.get(t.fee_period or "month", 31) // 2)
    # A first payment booked late still belongs to the period it pays: the window opens half a period
    # before it, so that period is expected (and matched) instead of silently dropped.
    window = (payments[0].entry_date - slack, today)
    assigned: dict[int, list[LedgerRow]] = defaultdict(list)
    unscheduled: list[LedgerRow] = []
    for r in payments:
        near = min(schedule, key=lambda p: (abs((r.entry_date - p.due).days), p.no))
        if abs(r.entry_date - near.due) <= slack:
            assigned[near.no].append(r)
        else:
            unscheduled.append(r)
    found: list[Discrepancy] = []
    price: dict[tuple[Kind, int, float, float], list[LedgerRow]] = defaultdict(list)
    expected = 0
    for p in schedule:
        if not window[0] <= p.due <= window[1]:
            continue
        expected += 1
        got = assigned.get(p.no, [])
        if not got:
            found.append(
                Discrepancy(
                    kind="missing_payment",
                    summary=f"no payment booked for {p.period} (EUR {p.amount:,.2f} due {p.due.isoformat()})",
                    clause="payment_schedule",
                    amount=p.amount,
                )
            )
            continue
        # The entry that names the period (or is closest in amount) is the scheduled one.
        best = min(got, key=lambda r: (p.period.lower() not in r.description.lower(), abs(r.amount - p.amount)))
        for r in got:
            if r is best:
                continue
            if abs(r.amount - best.amount) < 0.005 and r.description == best.description:
                found.append(
                    Discrepancy(
                        kind="duplicate_payment",
                        summary=f"the {p.period} fee of EUR {r.amount:,.2f} was booked twice: on "
                        f"{best.entry_date.isoformat()} ({_key(best)}) and on {r.entry_date.isoformat()} ({_key(r)})",
                        clause="fee_amount",
                        rows=[_key(best), _key(r)],
                        amount=r.amount,
                    )
                )
            else:
                unscheduled.append(r)
        if abs(best.amount - p.amount) >= 0.005:
            allowed = _allowed_fee(t, p.due)
            if best.amount > allowed + 0.005:
                price[("fee_above_contract", p.due.year, best.amount, p.amount)].append(best)
            elif best.amount < p.amount:
                price[("fee_below_contract", p.due.year, best.amount, p.amount)].append(best)
    for (kind, year, paid, fee), rs in price.items():
        allowed = _allowed_fee(t, rs[0].entry_date)
        limit = f"; indexation allows at most EUR {allowed:,.2f}" if kind == "fee_above_contract" else ""
        found.append(
            Discrepancy(
                kind=kind,
                summary=f"{len(rs)} fee payment(s) in {year} of EUR {paid:,.2f} against a contract fee of "
                f"EUR {fee:,.2f}{limit} (difference EUR {abs(paid - fee) * len(rs):,.2f})",
                clause="max_indexation_pct" if kind == "fee_above_contract" and t.max_indexation_pct else "fee_amount",
                rows=[_key(r) for r in rs],
                amount=round(abs(paid - fee) * len(rs), 2),
            )
        )
    by_year: dict[int, list[LedgerRow]] = defaultdict(list)
    for r in payments:
        by_year[r.entry_date.year].append(r)
    paid_by_year = {y: round(sum(r.amount for r in rs), 2) for y, rs in sorted(by_year.items())}
    if t.annual_cap:
        for year, total in paid_by_year.items():
            if total > t.annual_cap + 0.005:
                extra = [r for r in unscheduled if r.entry_date.year == year]
                found.append(
                    Discrepancy(
                        kind="over_annual_cap",
                        summary=f"payments in {year} total EUR {total:,.2f}, EUR {total - t.annual_cap:,.2f} above the "
                        f"annual cap of EUR {t.annual_cap:,.2f}"
                        + (f"; unscheduled entries: {', '.join(_key(r) for r in extra)}" if extra else ""),
                        clause="annual_cap",
                        rows=[_key(r) for r in (extra or by_year[year])],
                        amount=round(total - t.annual_cap, 2),
                    )
                )
    return Reconciliation(
        contract_id=t.contract_id,
        expected=expected,
        paid_by_year=paid_by_year,
        discrepancies=found,
        unscheduled=[_key(r) for r in unscheduled],
        window=window,
    )


# --- the graph -----------------------------------------------------------------------------------------


class State(TypedDict, total=False):
    question: str
    doc: dict[str, Any] | None
    terms: dict[str, Any] | None
    rows: list[dict[str, Any]]
    denied: bool
    counterparty: str | None
    result: dict[str, Any]
    notes: list[str]
    answer: str
    citations: list[dict[str, Any]]
    status: str


def find(state: State, config: RunnableConfig) -> State:
    res, notes = find_documents(ctx_of(config), state["question"])
    main = next((d for d in res.documents if d.role == "contract"), None) if res else None
    return {"doc": main.model_dump(mode="json") if main else None, "notes": notes}


def extract(state: State, config: RunnableConfig) -> State:
    ctx = ctx_of(config)
    doc = ContractDocument.model_validate(state["doc"])
    try:
        with ctx.recorder.step("tool.extract_terms", args={"doc_id": doc.doc_id}) as step:
            t = extract_terms(ExtractArgs(document=doc), tool_ctx(ctx))
            step.result = t.model_dump(mode="json", exclude={"payment_schedule", "evidence"}) | {
                "scheduled_payments": len(t.payment_schedule)
            }
    except SovraError as exc:
        return {"terms": None, "notes": [*state.get("notes", []), f"Terms not extracted: {exc.message}"]}
    return {"terms": t.model_dump(mode="json")}


def ledger(state: State, config: RunnableConfig) -> State:
    ctx = ctx_of(config)
    notes = list(state.get("notes", []))
    doc = ContractDocument.model_validate(state["doc"])
    if not doc.counterparty_id:
        return {"rows": [], "notes": [*notes, "The contract's metadata names no ledger counterparty."]}
    args = ContractPaymentsArgs(counterparty_id=doc.counterparty_id, contract_id=doc.contract_id)
    if not contract_payments.allowed(ctx.user):
        ctx.recorder.record("tool.denied", {"tool": contract_payments.name, "args": args.model_dump()})
        return {"rows": [], "denied": True, "notes": notes}
    try:
        with ctx.recorder.step("tool.contract_payments", args=args.model_dump()) as step:
            res = contract_payments(args, tool_ctx(ctx))
            step.result = {"matched": res.matched, "rows": [_key(r) for r in res.rows], "truncated": res.truncated}
    except SovraError as exc:
        return {"rows": [], "notes": [*notes, f"The ledger query failed: {exc.message}"]}
    if res.truncated:
        notes.append(f"Only the first {len(res.rows)} of {res.matched} ledger entries were compared.")
    return {"rows": [r.model_dump(mode="json") for r in res.rows], "counterparty": res.counterparty, "notes": notes}


def reconcile_node(state: State, config: RunnableConfig) -> State:
    ctx = ctx_of(config)
    t = KeyTerms.model_validate(state["terms"])
    rows = [LedgerRow.model_validate(r) for r in state.get("rows", [])]
    result = reconcile(t, rows, ctx.services.settings.today)
    ctx.recorder.record("reconcile.result", result.model_dump(mode="json"))
    return {"result": result.model_dump(mode="json")}


def _ledger_cite(book: CitationBook, state: State, rows: list[str], quote: str) -> int:
    doc = state["doc"] or {}
    return book.add(
        {
            "kind": "ledger",
            "title": f"General ledger: journal_entries ({state.get('counterparty') or doc.get('counterparty')})",
            "url": f"ledger://journal_entries?counterparty={doc.get('counterparty_id')}&contract={doc.get('contract_id')}",
            "rows": rows,
            "quote": quote,
        }
    )


def report(state: State, config: RunnableConfig) -> State:
    ctx = ctx_of(config)
    notes = list(state.get("notes", []))
    if not state.get("doc"):
        ctx.recorder.record("answer.not_found", {"reason": "no contract the user may read matched"})
        return {"answer": NOT_FOUND, "citations": [], "status": "not_found"}
    if state.get("denied"):
        text = "The ledger was not read: reconciliation needs finance access (group:finance)."
        return {"answer": text, "citations": [], "status": "not_found", "notes": notes}
    if not state.get("terms"):
        text = f"{NOT_FOUND} The ledger could not be compared with {(state.get('doc') or {}).get('title')}."
        return {"answer": text, "citations": [], "status": "not_found", "notes": notes}
    t = KeyTerms.model_validate(state["terms"])
    rows = state.get("rows", [])
    if "result" not in state or not rows:
        text = f"No ledger entries could be compared with {t.title}."
        return {"answer": text, "citations": [], "status": "not_found", "notes": notes}
    res = Reconciliation.model_validate(state["result"])
    if res.expected == 0:
        # Nothing the contract says should be paid was read: never "no discrepancy".
        missing = [label for name, label in _SCHEDULE_TERMS.items() if t.value(name) in (None, [], 0)]
        why = (
            f"the contract's {', '.join(missing)} could not be read"
            if missing and not t.payment_schedule
            else "no scheduled payment falls inside the period the ledger covers"
        )
        text = (
            f"Could not reconcile {t.title} with the ledger: {why}. "
            f"{len(rows)} ledger entries were found but not checked against the contract."
        )
        ctx.recorder.record("reconcile.not_checked", {"reason": why, "rows": len(rows)})
        return {"answer": text, "citations": [], "status": "not_found", "notes": notes}
    book = CitationBook()
    fee_n = book.evidence(t.evidence["fee_amount"]) if "fee_amount" in t.evidence else None
    all_n = _ledger_cite(book, state, [f"journal_entries#{r['key']}" for r in rows], f"{len(rows)} entries")
    window = f" ({res.window[0].isoformat()} to {res.window[1].isoformat()})" if res.window else ""
    lines = [
        f"Reconciled {t.contract_id} {t.title}"
        + (f" [{fee_n}]" if fee_n else "")
        + f" with {len(rows)} ledger entries{window} [{all_n}]: {res.expected} scheduled payments in that period."
    ]
    if res.discrepancies:
        n = len(res.discrepancies)
        lines.append(f"{n} discrepanc{'y' if n == 1 else 'ies'}:")
        for i, d in enumerate(res.discrepancies, start=1):
            cites = []
            ev = t.evidence.get(d.clause)
            if ev:
                cites.append(book.evidence(Evidence.model_validate(ev)))
            if d.rows:
                cites.append(_ledger_cite(book, state, d.rows, d.summary))
            label = d.kind.replace("_", " ").capitalize()
            lines.append(f"{i}. {label}: {d.summary} {''.join(f'[{c}]' for c in cites)}")
    else:
        checked = ["fee", "schedule"] + (["annual cap"] if t.annual_cap else [])
        lines.append(f"No discrepancy: every payment matches the contract's {', '.join(checked)}.")
    if not t.annual_cap:
        lines.append("The annual cap was not checked: the contract states none that could be read.")
    cap = f" (annual cap EUR {t.annual_cap:,.2f})" if t.annual_cap else ""
    lines.append("Paid per year: " + "; ".join(f"{y}: EUR {v:,.2f}" for y, v in res.paid_by_year.items()) + cap + ".")
    return {"answer": "\n".join(lines), "citations": book.items, "status": "answered", "notes": notes}


def open_cases(state: State, config: RunnableConfig) -> State:
    """Propose one follow-up case for the discrepancies; a person approves it (LangGraph interrupt)."""
    from sovra.tools.base import run_tool
    from sovra.tools.cases import open_case

    ctx = ctx_of(config)
    res = Reconciliation.model_validate(state["result"])
    doc = state["doc"] or {}
    summary = "; ".join(d.summary for d in res.discrepancies)[:480]
    args = {
        "counterparty": str(state.get("counterparty") or doc.get("counterparty") or "unknown"),
        "summary": f"{doc.get('contract_id')}: {summary}",
        "amount": round(sum(d.amount for d in res.discrepancies), 2),
    }
    outcome = run_tool(open_case, args, ctx, call_id="reconcile-case")
    if outcome.status == "ok" and outcome.result is not None:
        line = f"Follow-up case #{outcome.result.case_id} opened for the finance team."  # type: ignore[attr-defined]
    else:
        line = f"No follow-up case was opened ({outcome.status}: {outcome.message})."
    return {"answer": f"{state['answer']}\n{line}"}


def _after_report(state: State) -> str:
    found = (state.get("result") or {}).get("discrepancies")
    return "open_cases" if found and state.get("status") == "answered" else END


def _after_find(state: State) -> str:
    return "extract" if state.get("doc") else "report"


def _after_extract(state: State) -> str:
    return "ledger" if state.get("terms") else "report"


def _after_ledger(state: State) -> str:
    return "reconcile" if state.get("rows") else "report"


def reconciler_with_cases() -> Reconciler:
    return Reconciler(open_cases=True)


class Reconciler:
    """Compares what a contract says should be paid with what the ledger shows."""

    name = "reconcile"
    title = "Payments against the contract (finance)"
    description = "Ledger reconciliation: contract fees, schedule and caps against ledger rows (finance only)."

    def __init__(self, open_cases: bool = False) -> None:
        # With open_cases, a run that finds discrepancies proposes a follow-up case (needs approval).
        self.open_cases = open_cases
        if open_cases:
            self.name = "reconcile-cases"
            self.title = "Payments against the contract, with a follow-up case"
            self.description = "Ledger reconciliation that proposes a follow-up case for approval."

    def graph(self) -> StateGraph:
        g = StateGraph(State)
        g.add_node("find", find)
        g.add_node("extract", extract)
        g.add_node("ledger", ledger)
        g.add_node("reconcile", reconcile_node)
        g.add_node("report", report)
        g.add_edge(START, "find")
        g.add_conditional_edges("find", _after_find, ["extract", "report"])
        g.add_conditional_edges("extract", _after_extract, ["ledger", "report"])
        g.add_conditional_edges("ledger", _after_ledger, ["reconcile", "report"])
        g.add_edge("reconcile", "report")
        if self.open_cases:
            g.add_node("open_cases", open_cases)
            g.add_conditional_edges("report", _after_report, ["open_cases", END])
            g.add_edge("open_cases", END)
        else:
            g.add_edge("report", END)
        return g

    def to_answer(self, state: dict[str, Any], base: Answer) -> Answer:
        return report_answer(state, base)
