"""Contract consistency checker: find a contract and its related documents, extract their key terms
into a typed schema, compare them, and report each inconsistency with citations on both sides.

The graph is find -> extract -> compare -> report. Finding documents, extracting terms and
comparing them are deterministic code (``tools/contract_docs``, ``tools/extract``, ``compare``
below); a model only helps extraction where a served model is configured, and then only with
values the document contains verbatim. Every step is an audit record.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, TypedDict

from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph
from pydantic import BaseModel

from sovra.agents.assistant import NOT_FOUND
from sovra.errors import SovraError
from sovra.runtime import Answer, Citation, RunContext
from sovra.tools.base import ToolContext
from sovra.tools.contract_docs import ContractDocsArgs, ContractDocsResult, ContractDocument, find_contract_documents
from sovra.tools.extract import Evidence, ExtractArgs, KeyTerms, extract_terms, field_evidence, law_name
from sovra.tools.terms import FieldResult
from sovra.tools.terms.normalize import same_jurisdiction
from sovra.tools.terms.parties import same_party


class Side(BaseModel):
    """One side of a comparison: what a document (or its metadata sidecar) says, and where."""

    title: str
    value: str
    source: Literal["text", "metadata"] = "text"
    evidence: Evidence | None = None
    url: str = ""


class Finding(BaseModel):
    field: str
    label: str
    left: Side  # the main contract (or a document's text when checking its own metadata)
    right: Side
    note: str = ""


# field -> (label, how to show a value, equal?)
def _money(v: Any) -> str:
    return f"EUR {v:,.2f}"


def _same_number(a: Any, b: Any) -> bool:
    return abs(float(a) - float(b)) < 0.005


def _same_text(a: Any, b: Any) -> bool:
    return " ".join(str(a).casefold().replace(".", "").split()) == " ".join(str(b).casefold().replace(".", "").split())


Compare = tuple[str, Callable[[Any], str], Callable[[Any, Any], bool]]
COMPARED: dict[str, Compare] = {
    "counterparty": ("Counterparty", str, _same_text),
    "currency": ("Currency", str, _same_text),
    "facility_amount": ("Facility amount", _money, _same_number),
    "annual_fee": ("Fee per year", _money, _same_number),
    "annual_cap": ("Annual cap", _money, _same_number),
    "term_years": ("Term", lambda v: f"{v} years", lambda a, b: a == b),
    "convenience_notice_days": ("Termination for convenience notice", lambda v: f"{v} days", lambda a, b: a == b),
    "break_notice_months": ("Break option notice", lambda v: f"{v} months", lambda a, b: a == b),
    "margin_pct": ("Margin", lambda v: f"{v:.2f}% p.a.", _same_number),
    "amortisation_pct_per_quarter": ("Repayment per quarter", lambda v: f"{v:.2f}%", _same_number),
}
# Sidecar key -> (terms field, parse). A term sheet's sidecar dates are the sheet's own, not the deal's.
SIDECAR: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "counterparty": ("counterparty", str),
    "contract_id": ("contract_id", str),
    "currency": ("currency", str),
    "annual_cap": ("annual_cap", float),
    "governing_law": ("governing_law", lambda v: law_name(str(v)) or str(v)),
    "courts": ("courts", str),
    "effective_date": ("effective_date", lambda v: dt.date.fromisoformat(str(v))),
    "end_date": ("end_date", lambda v: dt.date.fromisoformat(str(v))),
}
_CONTRACT_ONLY_SIDECAR = {"effective_date", "end_date"}
# Typed terms that the general fields compare in documents, but that a sidecar may still state.
_SIDECAR_ONLY: dict[str, Compare] = {
    "governing_law": ("Governing law", str, lambda a, b: same_jurisdiction(str(a), str(b))),
    "courts": ("Jurisdiction (courts)", str, _same_text),
    "effective_date": ("Start date", lambda v: v.isoformat(), lambda a, b: a == b),
    "end_date": ("End date", lambda v: v.isoformat(), lambda a, b: a == b),
}


# --- the general key terms: found on both sides, or the report says why not -------------------------

# The general fields compared between a contract and a related document, in report order.
GENERAL = (
    "parties", "agreement_date", "effective_date", "expiration_date", "initial_term", "renewal_term",
    "auto_renewal", "notice_period", "termination_for_convenience", "governing_law", "courts",
)  # fmt: skip


def _same_parties(a: FieldResult, b: FieldResult) -> bool:
    """Every party one document names is a party of the other (legal forms and case aside)."""
    left = [str(n[0]) for n in a.value or []]
    right = [str(n[0]) for n in b.value or []]
    short, long = (left, right) if len(left) <= len(right) else (right, left)
    return all(any(same_party(x, y) for y in long) for x in short)


def same_value(name: str, a: FieldResult, b: FieldResult) -> bool:
    if name == "parties":
        return _same_parties(a, b)
    if name == "governing_law":
        return same_jurisdiction(a.show, b.show) or a.norm == b.norm
    return a.norm == b.norm


@dataclass
class FieldCheck:
    name: str
    label: str
    left: FieldResult  # the main contract
    right: FieldResult  # the related document
    outcome: Literal["match", "differ", "unchecked"]
    why: str = ""


@dataclass
class FieldComparison:
    """Each general term both documents were compared on, and those that could not be checked."""

    checks: list[FieldCheck] = field(default_factory=list)

    @property
    def compared(self) -> list[FieldCheck]:
        return self.checks

    @property
    def differ(self) -> list[FieldCheck]:
        return [c for c in self.checks if c.outcome == "differ"]

    @property
    def matched(self) -> list[FieldCheck]:
        return [c for c in self.checks if c.outcome == "match"]

    @property
    def unchecked(self) -> list[FieldCheck]:
        return [c for c in self.checks if c.outcome == "unchecked"]

    @property
    def clean(self) -> bool:
        """An all-clear: something was compared, everything compared was read on both sides and agrees."""
        return bool(self.checks) and all(c.outcome == "match" for c in self.checks)


def _why(side: str, f: FieldResult) -> str:
    if f.state == "not_stated":
        return f"{side} does not state it"
    return f"{side}'s clause could not be read ({f.reason})"


def _own_date(f: FieldResult) -> bool:
    """A term sheet's or amendment's date that is its own ("Dated 20 January 2025"), not the agreement's."""
    q = (f.evidence.quote if f.evidence else "").lower()
    return "agreement" not in q and "contract" not in q


def compare_fields(
    main: dict[str, FieldResult], other: dict[str, FieldResult], other_role: str = "term_sheet"
) -> FieldComparison:
    """Compare the general terms a related document states with the main contract's.

    A term the related document does not state is not compared (a term sheet restates a few terms);
    a term it states must be found in the contract too, or it is reported as unchecked, never as
    agreeing. A term either side could not determine is unchecked, with the reason."""
    out = FieldComparison()
    for name in GENERAL:
        a, b = main.get(name), other.get(name)
        if a is None or b is None or b.state == "not_stated":
            continue
        if name == "agreement_date" and other_role != "contract" and b.found and _own_date(b):
            continue
        if b.state == "undetermined":
            out.checks.append(FieldCheck(name, b.label, a, b, "unchecked", _why("the related document", b)))
        elif a.state != "found":
            out.checks.append(FieldCheck(name, a.label, a, b, "unchecked", _why("the contract", a)))
        elif same_value(name, a, b):
            out.checks.append(FieldCheck(name, a.label, a, b, "match"))
        else:
            out.checks.append(FieldCheck(name, a.label, a, b, "differ"))
    return out


def _side(t: KeyTerms, name: str) -> Side:
    _label, show, _ = COMPARED.get(name, (name, str, _same_text))
    ev = t.evidence.get(name)
    return Side(title=t.title, value=show(t.value(name)), evidence=ev, url=ev.url if ev else "")


def compare(
    main: KeyTerms, other: KeyTerms, docs: dict[str, ContractDocument] | None = None
) -> tuple[list[Finding], list[str]]:
    """Terms both documents state and that differ (general fields first, then the typed financial
    terms); also the labels of the terms that agree. Unchecked terms: ``compare_fields``."""
    findings: list[Finding] = []
    note = "changed by the amendment" if other.role == "amendment" else ""
    fc = compare_fields(main.fields, other.fields, other.role)
    for c in fc.differ:
        left, right = _general_side(main, c.left, docs), _general_side(other, c.right, docs)
        findings.append(Finding(field=c.name, label=c.label, left=left, right=right, note=note))
    agreed: list[str] = [c.label for c in fc.matched]
    for name, (label, _show, same) in COMPARED.items():
        a, b = main.value(name), other.value(name)
        if a is None or b is None:
            continue
        if same(a, b):
            agreed.append(label)
            continue
        findings.append(Finding(field=name, label=label, left=_side(main, name), right=_side(other, name), note=note))
    return findings, agreed


def _general_side(t: KeyTerms, f: FieldResult, docs: dict[str, ContractDocument] | None) -> Side:
    doc = (docs or {}).get(t.doc_id)
    if doc is not None:
        ev = field_evidence(doc, f)
    elif f.evidence is not None:
        q = f.evidence
        ev = Evidence(doc_id=t.doc_id, title=t.title, url="", chunk_id="", page=q.page, char_start=q.char_start,
                      char_end=q.char_end, quote=q.quote)  # fmt: skip
    else:
        ev = None
    return Side(title=t.title, value=f.show, evidence=ev, url=ev.url if ev else "")


def check_metadata(doc: ContractDocument, t: KeyTerms) -> tuple[list[Finding], list[str]]:
    """The document's metadata sidecar against its own text."""
    findings: list[Finding] = []
    agreed: list[str] = []
    for key, (name, parse) in SIDECAR.items():
        raw = doc.metadata.get(key)
        if raw is None or t.value(name) is None or (key in _CONTRACT_ONLY_SIDECAR and doc.role != "contract"):
            continue
        try:
            meta_value = parse(raw)
        except (TypeError, ValueError):
            meta_value = raw
        label, show, same = COMPARED.get(
            name, _SIDECAR_ONLY.get(name, (name.replace("_", " ").capitalize(), str, _same_text))
        )
        if same(meta_value, t.value(name)):
            agreed.append(f"{label} (metadata)")
            continue
        findings.append(
            Finding(
                field=name,
                label=f"{label} (metadata vs text)",
                left=_side(t, name),
                right=Side(
                    title=f"{doc.title} (metadata)",
                    value=show(meta_value),
                    source="metadata",
                    url=f"{doc.url}.meta.json",
                ),
            )
        )
    return findings, agreed


# --- citations shared by the flagship agents ---------------------------------------------------------


@dataclass
class CitationBook:
    """Numbers each distinct piece of evidence once, in order of first use."""

    items: list[dict[str, Any]] = field(default_factory=list)
    _keys: dict[tuple[Any, ...], int] = field(default_factory=dict)

    def add(self, cite: dict[str, Any]) -> int:
        key = (cite["kind"], cite["url"], cite.get("chunk_id"), tuple(cite.get("rows", ())), cite.get("quote", ""))
        if key not in self._keys:
            self.items.append({**cite, "n": len(self.items) + 1})
            self._keys[key] = len(self.items)
        return self._keys[key]

    def evidence(self, ev: Evidence) -> int:
        return self.add(
            {
                "kind": "document",
                "title": ev.title,
                "url": ev.url,
                "page": ev.page,
                "chunk_id": ev.chunk_id,
                "quote": ev.quote,
                "span": [ev.char_start, ev.char_end],
            }
        )

    def side(self, s: Side) -> int:
        if s.evidence is not None:
            return self.evidence(s.evidence)
        return self.add({"kind": "document", "title": s.title, "url": s.url, "quote": f"{s.title}: {s.value}"})


def to_citations(items: list[dict[str, Any]]) -> list[Citation]:
    return [
        Citation(
            n=c["n"],
            kind=c["kind"],
            title=c["title"],
            url=c["url"],
            page=c.get("page"),
            chunk_id=c.get("chunk_id"),
            rows=tuple(c.get("rows", ())),
            quote=c.get("quote", ""),
        )
        for c in items
    ]


def ctx_of(config: RunnableConfig) -> RunContext:
    """The run's context; stops the node first if the run was cancelled or is over its budget."""
    ctx: RunContext = config["configurable"]["ctx"]
    check = getattr(ctx, "check", None)
    if callable(check):
        check()
    return ctx


def tool_ctx(ctx: RunContext) -> ToolContext:
    return ToolContext(
        user=ctx.user, services=ctx.services, extras={"model_call": ctx.model_call}, recorder=ctx.recorder
    )


# --- the graph ----------------------------------------------------------------------------------------


class State(TypedDict, total=False):
    question: str
    docs: list[dict[str, Any]]
    contract_id: str | None
    terms: list[dict[str, Any]]
    findings: list[dict[str, Any]]
    agreed: dict[str, list[str]]
    unchecked: list[dict[str, Any]]  # terms that could not be compared, with why and the quotes
    notes: list[str]
    answer: str
    citations: list[dict[str, Any]]
    status: str


def find_documents(ctx: RunContext, question: str) -> tuple[ContractDocsResult | None, list[str]]:
    """The contract a question names and its amendments, audited as one tool step. A failed
    search (``None``) or an ambiguous counterparty comes back as a note for the answer."""
    args = ContractDocsArgs(query=question)
    try:
        with ctx.recorder.step("tool.find_contract_documents", args=args.model_dump()) as step:
            res: ContractDocsResult = find_contract_documents(args, tool_ctx(ctx))
            step.result = {
                "contract_id": res.contract_id,
                "ambiguous": res.ambiguous,
                "documents": [
                    {"doc_id": d.doc_id, "title": d.title, "role": d.role, "chunks": len(d.chunks)}
                    for d in res.documents
                ],
            }
    except SovraError as exc:
        return None, [f"The contract search failed: {exc.message}"]
    if res.ambiguous:
        return res, [
            f"Several agreements match the question: {'; '.join(res.ambiguous)}. Name one (by its parties, "
            "title or date); nothing was compared."
        ]
    return res, []


def find(state: State, config: RunnableConfig) -> State:
    res, notes = find_documents(ctx_of(config), state["question"])
    if res is None:
        return {"docs": [], "notes": notes}
    return {"docs": [d.model_dump(mode="json") for d in res.documents], "contract_id": res.contract_id, "notes": notes}


def extract(state: State, config: RunnableConfig) -> State:
    ctx = ctx_of(config)
    use_model = ctx.services.settings.resolved_answer_mode == "generate"
    terms: list[dict[str, Any]] = []
    notes = list(state.get("notes", []))
    for raw in state["docs"]:
        doc = ContractDocument.model_validate(raw)
        try:
            with ctx.recorder.step("tool.extract_terms", args={"doc_id": doc.doc_id, "use_model": use_model}) as step:
                t = extract_terms(ExtractArgs(document=doc, use_model=use_model), tool_ctx(ctx))
                step.result = t.model_dump(mode="json", exclude={"payment_schedule"})
        except SovraError as exc:
            notes.append(f"The terms of {doc.title} could not be extracted: {exc.message}")
            continue
        terms.append(t.model_dump(mode="json"))
    return {"terms": terms, "notes": notes}


def _quotes(f: FieldResult, doc: ContractDocument) -> list[dict[str, Any]]:
    """The passages behind an unreadable or disputed field: rival values first, then clauses looked at,
    each with the chunk it lies in (so the faces can check who may read it)."""
    out = [{"page": c["page"], "span": [c["char_start"], c["char_end"]], "quote": c["quote"], "value": c["value"]}
           for c in f.candidates]  # fmt: skip
    out += [{"page": q.page, "span": [q.char_start, q.char_end], "quote": q.quote} for q in f.looked_at]
    for q in out:
        chunk = doc.chunk_at(q["page"], q["span"][0])
        q["chunk_id"] = chunk.chunk_id if chunk else None
    return out[:3]


def compare_node(state: State, config: RunnableConfig) -> State:
    ctx = ctx_of(config)
    docs = {d["doc_id"]: ContractDocument.model_validate(d) for d in state["docs"]}
    terms = [KeyTerms.model_validate(t) for t in state.get("terms", [])]
    findings: list[Finding] = []
    agreed: dict[str, list[str]] = {}
    unchecked: list[dict[str, Any]] = []
    if terms:
        main = terms[0]  # the tool puts the main contract first
        for other in terms[1:]:
            f, a = compare(main, other, docs)
            fc = compare_fields(main.fields, other.fields, other.role)
            for c in fc.unchecked:
                unchecked.append(
                    {
                        "label": c.label,
                        "why": c.why,
                        "document": other.title,
                        "left": {
                            "title": main.title,
                            "url": docs[main.doc_id].url,
                            "quotes": _quotes(c.left, docs[main.doc_id]),
                        },
                        "right": {
                            "title": other.title,
                            "url": docs[other.doc_id].url,
                            "quotes": _quotes(c.right, docs[other.doc_id]),
                            "value": c.right.show,
                        },
                    }
                )
            for t in (main, other):
                if docs[t.doc_id].truncated and not any(u["label"] == f"the end of {t.title}" for u in unchecked):
                    unchecked.append({"label": f"the end of {t.title}", "document": t.title, "why": (
                        f"it is longer than the reader's limit; only its first {len(docs[t.doc_id].chunks)} passages "
                        "were read, so terms stated after them were not compared"
                    )})  # fmt: skip
            if not f and not a and not fc.unchecked:
                unchecked.append({"label": "all terms", "document": other.title, "why": (
                    f"no key term could be read from {other.title} (is it scanned, empty, or not an agreement?)"
                )})  # fmt: skip
            findings += f
            agreed[other.title] = a
        for t in terms:
            f, a = check_metadata(docs[t.doc_id], t)
            findings += f
            agreed[f"{t.title} metadata"] = [x.removesuffix(" (metadata)") for x in a]
    ctx.recorder.record(
        "contracts.compare",
        {
            "findings": [f.model_dump(mode="json") for f in findings],
            "agreed": agreed,
            "unchecked": [{k: u[k] for k in ("label", "why", "document")} for u in unchecked],
            "documents": len(terms),
        },
    )
    return {"findings": [f.model_dump(mode="json") for f in findings], "agreed": agreed, "unchecked": unchecked}


def _found_terms(t: dict[str, Any]) -> list[str]:
    """'Governing law: Delaware' for each general term found in a document (what was read)."""
    out = []
    for name in GENERAL:
        f = t.get("fields", {}).get(name)
        if f and f.get("state") == "found":
            out.append(f"{f['label'].lower()}: {f['show']}")
    return out


def report(state: State, config: RunnableConfig) -> State:
    ctx = ctx_of(config)
    terms = state.get("terms", [])
    notes = list(state.get("notes", []))
    if not terms:
        ctx.recorder.record("answer.not_found", {"reason": "no contract the user may read matched"})
        text = " ".join([NOT_FOUND, *notes]) if notes else NOT_FOUND
        return {"answer": text, "citations": [], "status": "not_found", "notes": notes}
    if terms[0]["role"] != "contract":
        ctx.recorder.record("answer.not_found", {"reason": "a related document without its contract"})
        read = _found_terms(terms[0])
        text = (
            f"Found {terms[0]['title']}, but no contract it belongs to among the documents you may read: "
            "nothing was compared." + (f" Terms it states: {'; '.join(read)}." if read else "")
        )
        return {"answer": text, "citations": [], "status": "not_found", "notes": notes}
    book = CitationBook()
    findings = [Finding.model_validate(f) for f in state.get("findings", [])]
    unchecked = state.get("unchecked", [])
    agreed = {k: v for k, v in state.get("agreed", {}).items() if v}
    main = terms[0]
    others = [t["title"] for t in terms[1:]]
    head = f"Checked {main['title']}" + (
        f" against {len(others)} related document(s): {'; '.join(others)}."
        if others
        else " (no related document found)."
    )
    lines = [head]
    if findings:
        lines.append(f"{len(findings)} inconsistenc{'y' if len(findings) == 1 else 'ies'} found:")
        for i, f in enumerate(findings, start=1):
            left, right = book.side(f.left), book.side(f.right)
            note = f" ({f.note})" if f.note else ""
            lines.append(
                f"{i}. {f.label}: {f.left.value} in {f.left.title} [{left}] vs {f.right.value} "
                f"in {f.right.title} [{right}]{note}."
            )
    if unchecked:
        lines.append(f"Could not check {len(unchecked)} term(s):")
        for u in unchecked:
            cites = []
            for side in ("right", "left"):
                for q in (u.get(side) or {}).get("quotes", [])[:2]:
                    cites.append(book.add({"kind": "document", "title": u[side]["title"], "url": u[side]["url"],
                                           "page": q["page"], "quote": q["quote"], "span": q["span"],
                                           "chunk_id": q.get("chunk_id")}))  # fmt: skip
            stated = (u.get("right") or {}).get("value")
            what = f" ({u['document']} states {stated})" if stated else ""
            lines.append(f"- {u['label']}{what}: {u['why']}{''.join(f' [{c}]' for c in cites)}.")
    compared_any = any(agreed.values()) or findings
    if not findings and not unchecked and compared_any:
        lines.append(
            "No inconsistency found between the terms the documents state."
            if others
            else "No inconsistency found between the contract's text and its metadata."
        )
        for t in terms[:2]:
            for name in ("facility_amount", "annual_fee", "governing_law"):
                ev = t["evidence"].get(name)
                if ev:
                    book.evidence(Evidence.model_validate(ev))
                    break
    elif not findings and not unchecked:
        read = _found_terms(main)
        why = (
            "no related document (term sheet, amendment) was found" if not others else "no term was read on both sides"
        )
        lines.append(f"Consistency not checked: {why}.")
        if read:
            lines.append(f"Terms read in {main['title']}: " + "; ".join(read) + ".")
    elif not findings:
        lines.append("Consistency not confirmed: the terms above could not be checked on both sides.")
    for title, labels in agreed.items():
        lines.append(f"Agrees with {title}: {', '.join(labels).lower()}.")
    ctx.recorder.record(
        "contracts.report", {"findings": len(findings), "unchecked": len(unchecked), "citations": len(book.items)}
    )
    status = "answered"
    return {"answer": "\n".join(lines), "citations": book.items, "status": status, "notes": notes}


def report_answer(state: dict[str, Any], base: Answer) -> Answer:
    """The answer a ``report`` node left in the state (text, status, citations, notes)."""
    base.text = state.get("answer", NOT_FOUND)
    base.status = state.get("status", "not_found")
    base.citations = to_citations(state.get("citations", []))
    base.notes = list(state.get("notes", []))
    return base


def _after_find(state: State) -> str:
    return "extract" if state.get("docs") else "report"


class ContractChecker:
    """Compares a contract with its term sheets, amendments and metadata; cites both sides."""

    name = "contracts"
    title = "Check a contract against its documents"
    description = "Contract consistency check: key terms across a contract and its related documents."

    def graph(self) -> StateGraph:
        g = StateGraph(State)
        g.add_node("find", find)
        g.add_node("extract", extract)
        g.add_node("compare", compare_node)
        g.add_node("report", report)
        g.add_edge(START, "find")
        g.add_conditional_edges("find", _after_find, ["extract", "report"])
        g.add_edge("extract", "compare")
        g.add_edge("compare", "report")
        g.add_edge("report", END)
        return g

    def to_answer(self, state: dict[str, Any], base: Answer) -> Answer:
        return report_answer(state, base)
