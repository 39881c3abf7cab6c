"""What the chat asks of the core, without Streamlit: past conversations, a citation's passage, the
steps of a run as a reader sees them, and feedback on a run.

Access to audit details goes through :func:`sovra.ui.audit_report.load_run` (the run's owner and
members of the ``auditor`` group), the same rule the HTTP API and ``sovra audit`` apply.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sovra.audit import RUN_END, RUN_ERROR, RUN_START, AuditLog, AuditRecord, RunSummary
from sovra.errors import InputError
from sovra.identity import User
from sovra.runtime import Answer, Citation, Runtime
from sovra.ui.audit_report import AuditAccessError, load_run

FEEDBACK = "feedback"
MAX_COMMENT_CHARS = 2000
RATINGS = ("down", "up")  # st.feedback("thumbs") answers 0 (down) or 1 (up)


# ---------------------------------------------------------------------------------------------
# Agents


def available_agents(settings: Any = None) -> list[tuple[str, str]]:
    """(name, description) of the registered agents; just the assistant if the registry cannot say."""
    from sovra import agents

    lister = getattr(agents, "list_agents", None)
    if callable(lister):
        found: list[tuple[str, str]] = lister(settings)
        if found:
            return found
    return [("assistant", "Policy, contract and ledger questions with cited answers.")]


# ---------------------------------------------------------------------------------------------
# Runs and conversations


def citation_from(d: dict[str, Any]) -> Citation:
    """A citation as recorded in a run's ``run.end`` record."""
    keep = {k: d[k] for k in Citation.__dataclass_fields__ if k in d}
    keep["rows"] = tuple(keep.get("rows") or ())
    return Citation(**keep)


def answer_from_records(records: Sequence[AuditRecord], rt: Runtime | None = None) -> Answer:
    """A past run rebuilt from its audit records (question, answer, citations, pending approval)."""
    start = next((r for r in records if r.kind == RUN_START), records[0])
    end = next((r for r in reversed(records) if r.kind in (RUN_END, RUN_ERROR)), None)
    data = end.data if end is not None and isinstance(end.data, dict) else {}
    ans: dict[str, Any] = data["answer"] if isinstance(data.get("answer"), dict) else {}
    start_data = start.data if isinstance(start.data, dict) else {}
    a = Answer(
        run_id=start.run_id,
        trace_id=start.trace_id or "",
        user=start.user_id or "",
        question=str(start_data.get("question") or ""),
        text=str(ans.get("text") or ""),
        status=str(ans.get("status") or ("error" if end is not None and end.kind == RUN_ERROR else "")),
        citations=[citation_from(c) for c in data.get("citations", []) if isinstance(c, dict)],
        notes=[str(n) for n in ans.get("notes") or []],
    )
    if end is not None and end.kind == RUN_ERROR:
        a.text = f"The run failed: {data.get('message', '')}"
    if rt is not None:
        a.approval = rt.pending_approval(a.run_id)
        if a.approval is not None:
            # The findings stay; the proposed action is said in words beside Approve / Reject.
            a.status = "awaiting_approval"
            ap = a.approval
            a.text = a.text.strip() or f"Waiting for approval: {approval_words(ap.description, ap.tool, ap.args)}"
    return a


def plain_value(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float | int):
        return f"{value:,.2f}" if isinstance(value, float) else f"{value:,}"
    if isinstance(value, list | tuple):
        return ", ".join(plain_value(v) for v in value)
    return str(value)


def plain_action(tool: str, args: dict[str, Any]) -> str:
    """A proposed tool call in words for a web user: ``open_case`` with its arguments becomes
    "open case (counterparty: Acme GmbH; amount: 8,500.00)", never the raw call."""
    what = tool.replace("_", " ").strip()
    shown = "; ".join(f"{k.replace('_', ' ')}: {plain_value(v)}" for k, v in args.items() if v not in (None, "", []))
    return f"{what} ({shown})" if shown else what


_RAW_CALL = re.compile(r"^\s*\w+\(.*\)\s*$", re.S)


def approval_words(description: str, tool: str, args: dict[str, Any]) -> str:
    """What an approval box says: the tool's own description, unless that is a raw call. A tool's
    standard description (``open_case(counterparty='X', ...): Open a case ...``) keeps its words
    after the call, with the call itself in words."""
    text = description.strip()
    if text.startswith(f"{tool}(") and "): " in text:
        return f"{plain_action(tool, args)}: {text.rsplit('): ', 1)[1].strip()}"
    if text and not _RAW_CALL.match(text):
        return description
    return plain_action(tool, args)


_WAITING = "Waiting for approval: "


def shown_text(a: Answer) -> str:
    """An answer's text for the page: the runtime's "Waiting for approval: <raw call>" in words."""
    ap = a.approval
    if ap is not None and a.text.startswith(_WAITING + ap.description):
        return _WAITING + approval_words(ap.description, ap.tool, ap.args) + a.text[len(_WAITING + ap.description) :]
    return a.text


def history(audit: AuditLog, user: User, limit: int = 30) -> list[RunSummary]:
    """The user's own most recent runs, newest first."""
    return audit.runs(user.id, limit=limit)


def conversation(rt: Runtime, viewer: User, run_id: str) -> tuple[str, list[Answer]]:
    """The thread a run belongs to and its runs in order, if ``viewer`` may read them."""
    load_run(rt.services.audit, run_id, viewer)  # access check (raises) before anything is read
    row = rt.runs.get(run_id)
    thread_id = row.thread_id if row is not None else run_id
    ids = [r.run_id for r in rt.runs.thread_runs(thread_id)] if row is not None else [run_id]
    return thread_id, [answer_from_records(load_run(rt.services.audit, rid, viewer), rt) for rid in ids or [run_id]]


# ---------------------------------------------------------------------------------------------
# Feedback


def record_feedback(audit: AuditLog, run_id: str, user: User, rating: str, comment: str = "") -> AuditRecord:
    """Append a ``feedback`` record to the run (its owner only). The comment is free text, so it is
    stored under ``text``: sealed like every other free text and erasable (GDPR)."""
    if rating not in RATINGS:
        raise InputError(f"unknown rating {rating!r}", hint="thumbs up or down")
    comment = comment.strip()
    if len(comment) > MAX_COMMENT_CHARS:
        raise InputError(f"the comment is {len(comment)} characters; the limit is {MAX_COMMENT_CHARS}")
    owner = audit.run_owner(run_id)
    if owner is None:
        raise InputError(f"no run {run_id!r} in the audit log")
    if owner != user.id:
        raise AuditAccessError(f"{user.id} may not give feedback on run {run_id}: it belongs to another user")
    return audit.append(FEEDBACK, {"rating": rating, "text": comment}, run_id=run_id, user_id=user.id)


# ---------------------------------------------------------------------------------------------
# The cited passage


@dataclass(frozen=True)
class Passage:
    title: str
    url: str
    page: int | None
    text: str  # the chunk's text, as indexed
    spans: tuple[tuple[int, int], ...]  # character spans of ``text`` that the answer quotes
    char_start: int = 0  # where the chunk sits in its document
    char_end: int = 0
    chunk_id: str = ""


_QUOTED = re.compile(r'"([^"]{8,})"\s*\[(\d{1,3})\]')
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def quotes_for(answer_text: str, n: int) -> list[str]:
    """What the answer quotes from source ``n`` (``"..." [n]``)."""
    return [q for q, i in _QUOTED.findall(answer_text) if int(i) == n]


def find_spans(text: str, needles: Iterable[str]) -> list[tuple[int, int]]:
    """Where each needle occurs in ``text``, whitespace-insensitively; sorted, and merged where they
    overlap or only whitespace separates them (one highlight per run of quoted sentences)."""
    spans: list[tuple[int, int]] = []
    for needle in needles:
        words = needle.split()
        if not words:
            continue
        m = re.search(r"\s+".join(re.escape(w) for w in words), text)
        if m:
            spans.append((m.start(), m.end()))
    merged: list[tuple[int, int]] = []
    for s, e in sorted(spans):
        if merged and not text[merged[-1][1] : s].strip():  # overlapping, or apart by whitespace only
            merged[-1] = (merged[-1][0], max(e, merged[-1][1]))
        else:
            merged.append((s, e))
    return merged


def passage_spans(text: str, citation: Citation, answer_text: str) -> list[tuple[int, int]]:
    """The spans to highlight: what the answer quotes, else the sentences of the citation's quote."""
    spans = find_spans(text, quotes_for(answer_text, citation.n))
    return spans or find_spans(text, _SENTENCE_END.split(citation.quote))


def find_passage(rt: Runtime, user: User, citation: Citation, answer_text: str = "") -> Passage | None:
    """The indexed chunk a document citation points at, read as ``user`` (their ACL applies inside
    Qdrant); ``None`` when it is gone (re-ingested since) or the user may not read it."""
    if citation.kind != "document" or not citation.chunk_id:
        return None
    from sovra.errors import IndexMissingError
    from sovra.index import SearchFilter

    svc = rt.services
    doc_id = citation.chunk_id.rsplit("#", 1)[0]
    # The index has no read-by-id; a search restricted to the document finds the chunk among its
    # few chunks, with the same ACL filter every search uses.
    query = citation.quote or citation.title
    flt = SearchFilter(principals=tuple(user.principals), doc_ids=(doc_id,))
    try:
        hits = svc.index.search(svc.embedder.embed_query(query), svc.embedder.sparse_query(query), flt, limit=50)
    except IndexMissingError:
        return None  # nothing was ingested (or the index was dropped): the run's recorded quote is shown
    hit = next((h for h in hits if h.chunk_id == citation.chunk_id), None)
    if hit is None:
        return None
    return Passage(
        title=hit.title,
        url=hit.url,
        page=hit.page,
        text=hit.text,
        spans=tuple(passage_spans(hit.text, citation, answer_text)),
        char_start=hit.char_start,
        char_end=hit.char_end,
        chunk_id=hit.chunk_id,
    )


# ---------------------------------------------------------------------------------------------
# How an answer was made


@dataclass
class StepView:
    seq: int
    kind: str
    title: str
    lines: list[str] = field(default_factory=list)
    table: list[dict[str, Any]] = field(default_factory=list)  # e.g. retrieved chunks with scores
    data: Any = None


@dataclass
class RunView:
    run_id: str
    user: str | None
    steps: list[StepView]
    models: list[str]
    input_tokens: int
    output_tokens: int


def _fmt(value: Any, width: int = 300) -> str:
    text = value if isinstance(value, str) else repr(value)
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _step(r: AuditRecord) -> StepView:
    d = r.data if isinstance(r.data, dict) else {"value": r.data}
    v = StepView(seq=r.seq, kind=r.kind, title=r.kind, data=d)
    if r.kind == RUN_START:
        v.title = "Question received"
        groups = ", ".join(d.get("groups") or []) or "none"
        v.lines = [f"user {d.get('user')} (groups: {groups}) via {d.get('interface')}"]
    elif r.kind == "plan":
        v.title = "Plan"
        v.lines = [f"{k}: {_fmt(val)}" for k, val in d.items()]
    elif r.kind == "model.call":
        v.title = f"Model call ({d.get('route')})"
        v.lines = [
            f"model/adapter {d.get('model')} at {d.get('base_url') or 'local'}",
            f"{d.get('input_tokens')} tokens in, {d.get('output_tokens')} out, "
            f"{float(d.get('duration_ms') or 0):.0f} ms, {d.get('attempts') or 1} attempt(s)",
        ]
    elif r.kind.startswith("tool."):
        v.title = f"Tool {r.kind.removeprefix('tool.')}"
        if d.get("args") is not None:
            v.lines.append(f"arguments: {_fmt(d.get('args'))}")
        result = d.get("result")
        if isinstance(result, dict) and isinstance(result.get("hits"), list):
            v.table = [
                {"chunk": h.get("chunk_id"), "page": h.get("page"), "score": round(float(h.get("score") or 0), 4)}
                for h in result["hits"]
                if isinstance(h, dict)
            ]
        elif result is not None:
            v.lines.append(f"result: {_fmt(result)}")
        if d.get("error"):
            v.lines.append(f"error: {_fmt(d['error'])}")
    elif r.kind == RUN_END:
        ans: dict[str, Any] = d["answer"] if isinstance(d.get("answer"), dict) else {}
        v.title = "Answer given"
        v.lines = [f"status {ans.get('status')}, {len(d.get('citations') or [])} citation(s)"]
    elif r.kind == RUN_ERROR:
        v.title = "Run failed"
        v.lines = [_fmt(d.get("message"))]
    elif r.kind == FEEDBACK:
        v.title = "Feedback"
        v.lines = [f"thumbs {d.get('rating')}" + (f": {_fmt(d.get('text'))}" if d.get("text") else "")]
    elif r.kind == "approval.decision":
        v.title = "Approval decision"
        verdict = "approved" if d.get("approved") else "refused"
        why = f": {d['reason']}" if d.get("reason") else ""
        v.lines = [f"{verdict} by {d.get('approver')} at {d.get('at')}{why}"]
    else:
        v.lines = [_fmt(d)]
    if d.get("duration_ms") is not None and r.kind.startswith("tool."):
        v.lines.append(f"{float(d['duration_ms']):.0f} ms")
    return v


def run_view(audit: AuditLog, run_id: str, viewer: User) -> RunView:
    """The run's steps for the "How this answer was made" panel; raises AuditAccessError unless
    ``viewer`` owns the run or is an auditor, InputError if there is no such run."""
    records = load_run(audit, run_id, viewer)
    calls = [r.data for r in records if r.kind == "model.call" and isinstance(r.data, dict)]
    return RunView(
        run_id=run_id,
        user=records[0].user_id,
        steps=[_step(r) for r in records],
        models=sorted({str(c.get("model")) for c in calls}),
        input_tokens=sum(int(c.get("input_tokens") or 0) for c in calls),
        output_tokens=sum(int(c.get("output_tokens") or 0) for c in calls),
    )
