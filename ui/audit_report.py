"""What an auditor reads and does with a run: access check, JSON/HTML export, replay.

The HTML report is one self-contained file (inline CSS, no scripts, no external URLs) and every
value in it is escaped: questions, answers and documents are untrusted text.
"""

from __future__ import annotations

import html
import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from sovra.audit import RUN_END, RUN_ERROR, RUN_START, AuditLog, AuditRecord
from sovra.errors import InputError, SovraError
from sovra.identity import User
from sovra.privacy import ERASED, can_read_run


class AuditAccessError(SovraError):
    """The viewer may not read this run (only its owner and auditors may)."""

    exit_code = 4


def load_run(log: AuditLog, run_id: str, viewer: User | None) -> list[AuditRecord]:
    """The run's records, if ``viewer`` may read them (``None``: the operator, who holds the store)."""
    records = log.records(run_id)
    if not records:
        raise InputError(f"no run {run_id!r} in the audit log", hint="`sovra audit runs` lists recent runs")
    if viewer is not None and not can_read_run(viewer, records[0].user_id):
        raise AuditAccessError(
            f"{viewer.id} may not read run {run_id}: it belongs to another user",
            hint="only members of the 'auditor' group read other users' runs",
        )
    return records


# ---------------------------------------------------------------------------------------------
# Export


def report_json(log: AuditLog, records: list[AuditRecord]) -> dict[str, Any]:
    """Question, answer, every step and every cited source with its quote, plus the chain check."""
    start = next((r for r in records if r.kind == RUN_START), records[0])
    end = next((r for r in reversed(records) if r.kind in (RUN_END, RUN_ERROR)), None)
    answer = end.data.get("answer") if end and isinstance(end.data, dict) else None
    sources = list(end.data.get("citations", [])) if end and isinstance(end.data, dict) else []
    check = log.verify()
    return {
        "run_id": start.run_id,
        "trace_id": start.trace_id,
        "user": start.user_id,
        "groups": start.data.get("groups", []),
        "interface": start.data.get("interface"),
        "started": start.ts,
        "question": start.data.get("question"),
        "answer": answer,
        "status": "error" if end and end.kind == RUN_ERROR else ("ok" if end else "running"),
        "error": end.data if end and end.kind == RUN_ERROR else None,
        "sources": sources,
        "steps": [
            {"seq": r.seq, "ts": r.ts, "kind": r.kind, "span_id": r.span_id, "hash": r.hash, "data": r.data}
            for r in records
        ],
        "chain": {"ok": check.ok, "checked": check.checked, "reason": check.reason, "head": asdict(log.head())},
        "exported_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:60em;color:#222}
h1{font-size:1.4em}h2{font-size:1.1em;margin-top:1.6em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;width:100%}
td,th{border:1px solid #ddd;padding:4px 6px;vertical-align:top;text-align:left}
pre{white-space:pre-wrap;word-break:break-word;margin:0;font:12px/1.35 ui-monospace,monospace}
blockquote{margin:.3em 0 .8em;padding:.3em .8em;border-left:3px solid #888;background:#f6f6f6}
.ok{color:#060}.bad{color:#a00;font-weight:bold}.meta{color:#666}
"""


def _e(value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        value = json.dumps(value, ensure_ascii=False, indent=1, sort_keys=True)
    return html.escape(value, quote=True)


def _answer_text(answer: Any) -> str:
    if isinstance(answer, dict):
        return str(answer.get("text", ""))
    return "" if answer is None else str(answer)


def report_html(report: dict[str, Any]) -> str:
    chain = report["chain"]
    verdict = (
        f'<span class="ok">intact: {chain["checked"]} records verified</span>'
        if chain["ok"]
        else f'<span class="bad">BROKEN: {_e(chain["reason"])}</span>'
    )
    sources = []
    for i, s in enumerate(report["sources"], start=1):
        where = f", p. {_e(s.get('page'))}" if s.get("page") is not None else ""
        quote = s.get("quote") or ""
        sources.append(
            f"<li><b>[{_e(s.get('n', i))}] {_e(s.get('title'))}</b>{where} "
            f'<span class="meta">{_e(s.get("url"))} {_e(s.get("chunk_id"))}</span>'
            + (f"<blockquote>{_e(quote)}</blockquote>" if quote else "")
            + "</li>"
        )
    steps = "".join(
        f"<tr><td>{_e(st['seq'])}</td><td>{_e(st['ts'])}</td><td>{_e(st['kind'])}</td>"
        f"<td><pre>{_e(st['data'])}</pre></td></tr>"
        for st in report["steps"]
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>Audit report {_e(report["run_id"])}</title><style>{_CSS}</style></head><body>
<h1>Audit report: run {_e(report["run_id"])}</h1>
<p class="meta">user {_e(report["user"])} (groups {_e(", ".join(report["groups"] or []))}) via
{_e(report["interface"])}, started {_e(report["started"])}; trace {_e(report["trace_id"])};
status {_e(report["status"])}; exported {_e(report["exported_at"])}</p>
<p>Audit chain: {verdict}. Head: {_e(chain["head"]["count"])} records, {_e(chain["head"]["last_hash"])}</p>
<h2>Question</h2><blockquote>{_e(report["question"])}</blockquote>
<h2>Answer</h2><blockquote><pre>{_e(_answer_text(report["answer"]))}</pre></blockquote>
{f"<p class='bad'>Error: {_e(report['error'])}</p>" if report["error"] else ""}
<h2>Sources</h2><ol>{"".join(sources) or "<li>none cited</li>"}</ol>
<h2>Every step</h2>
<table><tr><th>seq</th><th>time (UTC)</th><th>step</th><th>recorded data</th></tr>{steps}</table>
<p class="meta">Values shown as {_e(ERASED)} were erased under the data-protection policy; their hashes
remain in the chain.</p>
</body></html>
"""


# ---------------------------------------------------------------------------------------------
# Replay


@dataclass
class StepDiff:
    seq: int
    kind: str
    status: str  # "same" | "changed" | "skipped"
    note: str = ""
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    score_changes: dict[str, tuple[float, float]] = field(default_factory=dict)


def replay(records: list[AuditRecord], services: Any, *, tolerance: float = 1e-4) -> list[StepDiff]:
    """Re-run the run's retrieval and ledger calls as the recorded user and report what differs.

    The user's permissions come from the ``run.start`` record (groups at the time of the run), so
    a replay shows what the index now returns for the same person, not for whoever replays.
    """
    from sovra.tools.base import ToolContext
    from sovra.tools.ledger_tool import LedgerLookupArgs, ledger_lookup
    from sovra.tools.search import SearchArgs, search_documents

    start = next((r for r in records if r.kind == RUN_START), None)
    if start is None:
        raise InputError("the run has no run.start record, so the user's permissions are unknown")
    user = User(id=str(start.data.get("user") or start.user_id), name="", groups=tuple(start.data.get("groups", [])))
    ctx = ToolContext(user=user, services=services)
    out: list[StepDiff] = []
    for r in records:
        if r.kind not in ("tool.search_documents", "tool.ledger_lookup"):
            continue
        args = r.data.get("args") or {}
        if ERASED in json.dumps(args) or r.data.get("error"):
            reason = "its arguments were erased" if ERASED in json.dumps(args) else "it failed when recorded"
            out.append(StepDiff(r.seq, r.kind, "skipped", f"not replayed: {reason}"))
            continue
        if r.kind == "tool.search_documents":
            old = {h["chunk_id"]: float(h["score"]) for h in (r.data.get("result") or {}).get("hits", [])}
            new = {h.chunk_id: h.score for h in search_documents(SearchArgs(**args), ctx).hits}
            d = StepDiff(r.seq, r.kind, "same", note=f"query {args.get('query')!r}")
            d.added = [c for c in new if c not in old]
            d.removed = [c for c in old if c not in new]
            d.score_changes = {c: (old[c], new[c]) for c in old if c in new and abs(old[c] - new[c]) > tolerance}
            if d.added or d.removed or d.score_changes:
                d.status = "changed"
            out.append(d)
        else:
            res = ledger_lookup(LedgerLookupArgs(**args), ctx).model_dump(mode="json")
            same = res == r.data.get("result")
            out.append(
                StepDiff(r.seq, r.kind, "same" if same else "changed", "" if same else f"now: {res.get('headline')}")
            )
    return out
