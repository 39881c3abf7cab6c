"""The compliance console's work, without Streamlit: who may use it, and what it does for them.

Every method takes the viewing :class:`User` and checks it here, on the server, whatever the page
showed: the console is for ``SOVRA_CONSOLE_PRINCIPALS`` (auditors and data-protection officers), and
retention and erasure for ``SOVRA_PRIVACY_OFFICER_PRINCIPALS`` alone. What a console user does to or
with the log (open, replay or export a run, verify the chain, apply retention, erase a subject, and a
refused attempt) is itself written to the log as a ``console.*`` record of the ``audit`` run.

Searching uses the run catalogue (:mod:`sovra.run_catalog`); opening, verifying and exporting read
the audit log itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sovra.audit import RUN_END, RUN_ERROR, RUN_START, SYSTEM_RUN, AuditLog, AuditRecord, VerifyResult
from sovra.config import Settings
from sovra.errors import InputError
from sovra.identity import User
from sovra.run_catalog import RunCatalog, RunPage, RunQuery, Usage
from sovra.ui.audit_report import AuditAccessError

CATALOG_FILE = "run-catalog.sqlite"


class ConsoleAccessError(AuditAccessError):
    """The user may not use the compliance console (or this part of it)."""


def is_console_user(user: User, settings: Settings) -> bool:
    return bool(set(user.principals) & set(settings.console_principals))


def is_privacy_officer(user: User, settings: Settings) -> bool:
    return bool(set(user.principals) & set(settings.privacy_officer_principals))


# ---------------------------------------------------------------------------------------------
# A run as a timeline


@dataclass
class Step:
    seq: int
    ts: str
    kind: str
    phase: str  # question, plan, retrieval, tool, model, approval, refusal, answer, error, other
    title: str
    lines: list[str] = field(default_factory=list)
    table: list[dict[str, Any]] = field(default_factory=list)
    data: Any = None


@dataclass
class Timeline:
    run_id: str
    user: str | None
    question: str
    status: str
    answer: str
    steps: list[Step]
    sources: list[dict[str, Any]]
    models: list[str]


def _short(value: Any, width: int = 400) -> str:
    import json

    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _step(r: AuditRecord) -> Step:
    d: dict[str, Any] = r.data if isinstance(r.data, dict) else {"value": r.data}
    s = Step(r.seq, r.ts, r.kind, "other", r.kind, data=d)
    if r.kind in (RUN_START, "run.resume"):
        s.phase, s.title = "question", "Question received" if r.kind == RUN_START else "Run resumed"
        s.lines = [
            f"user {d.get('user')} (groups: {', '.join(d.get('groups') or []) or 'none'}) via {d.get('interface')}"
        ]
        if r.kind == "run.resume":
            s.lines.append(f"by {d.get('by')}: {d.get('why')}")
    elif r.kind in ("plan", "supervisor.route"):
        s.phase, s.title = "plan", "Plan" if r.kind == "plan" else "Routed to a specialist"
        s.lines = [f"{k}: {_short(v)}" for k, v in d.items()]
    elif r.kind == "model.call":
        s.phase, s.title = "model", f"Model call ({d.get('route')})"
        s.lines = [
            f"model/adapter {d.get('model')} at {d.get('base_url') or 'local'}"
            + (f", served by route {d['served_route']}" if d.get("served_route") not in (None, d.get("route")) else ""),
            f"{d.get('input_tokens')} tokens in, {d.get('output_tokens')} out, "
            f"{float(d.get('duration_ms') or 0):.0f} ms, {d.get('attempts') or 1} attempt(s)",
        ]
    elif r.kind in ("tool.denied", "tool.refused"):
        s.phase, s.title = "refusal", f"Tool {d.get('tool')} {r.kind.removeprefix('tool.')}"
        s.lines = [f"arguments: {_short(d.get('args'))}"]
        if d.get("requires"):
            s.lines.append(f"requires one of: {', '.join(d['requires'])}")
        if d.get("approver"):
            s.lines.append(f"refused by {d.get('approver')}: {_short(d.get('reason'))}")
    elif r.kind.startswith("tool."):
        result = d.get("result")
        hits = result.get("hits") if isinstance(result, dict) else None
        s.phase = "retrieval" if isinstance(hits, list) else "tool"
        s.title = f"Tool {r.kind.removeprefix('tool.')}"
        s.lines = [f"arguments: {_short(d.get('args'))}"]
        if isinstance(hits, list):
            s.table = [
                {
                    "chunk": h.get("chunk_id"),
                    "document": h.get("doc_id"),
                    "page": h.get("page"),
                    "score": round(float(h.get("score") or 0), 4),
                }
                for h in hits
                if isinstance(h, dict)
            ]
        elif result is not None:
            s.lines.append(f"result: {_short(result)}")
        if d.get("error"):
            s.lines.append(f"error: {_short(d['error'])}")
        if d.get("duration_ms") is not None:
            s.lines.append(f"{float(d['duration_ms']):.0f} ms")
    elif r.kind.startswith("approval.") or r.kind == "run.paused":
        s.phase = "approval"
        if r.kind == "run.paused":
            ap = d.get("approval") or {}
            s.title = "Paused for approval"
            s.lines = [f"{ap.get('tool')} {_short(ap.get('args'))}", _short(ap.get("description") or "")]
        elif r.kind == "approval.decision":
            s.title = "Approval decision"
            verdict = "approved" if d.get("approved") else "refused"
            s.lines = [f"{verdict} by {d.get('approver')} at {d.get('at')}: {_short(d.get('reason') or '')}"]
        else:
            s.title = r.kind
            s.lines = [_short(d)]
    elif r.kind == RUN_END:
        ans: dict[str, Any] = d["answer"] if isinstance(d.get("answer"), dict) else {}
        s.phase, s.title = "answer", "Answer given"
        s.lines = [f"status {ans.get('status')}, {len(d.get('citations') or [])} citation(s)"]
    elif r.kind == RUN_ERROR:
        s.phase, s.title = "error", "Run failed"
        s.lines = [_short(d.get("message"))]
    else:
        s.lines = [_short(d)]
    return s


def timeline(records: list[AuditRecord]) -> Timeline:
    start = next((r for r in records if r.kind == RUN_START), records[0])
    end = next((r for r in reversed(records) if r.kind in (RUN_END, RUN_ERROR)), None)
    sd: dict[str, Any] = start.data if isinstance(start.data, dict) else {}
    ed: dict[str, Any] = end.data if end is not None and isinstance(end.data, dict) else {}
    ans: dict[str, Any] = ed["answer"] if isinstance(ed.get("answer"), dict) else {}
    status = "error" if end is not None and end.kind == RUN_ERROR else str(ans.get("status") or "running")
    models = sorted({str(r.data.get("model")) for r in records if r.kind == "model.call" and isinstance(r.data, dict)})
    return Timeline(
        run_id=start.run_id,
        user=start.user_id,
        question=str(sd.get("question") or ""),
        status=status,
        answer=str(ans.get("text") or ed.get("message") or ""),
        steps=[_step(r) for r in records],
        sources=[c for c in ed.get("citations") or [] if isinstance(c, dict)],
        models=models,
    )


# ---------------------------------------------------------------------------------------------
# Results


@dataclass(frozen=True)
class ChainCheck:
    result: VerifyResult
    around: list[AuditRecord]  # the records next to the first bad one (empty when the chain verifies)
    run_id: str | None  # the run the first bad record belongs to


@dataclass(frozen=True)
class Proof:
    """What an erasure or retention did, and the record in the chain that documents it."""

    action: str
    erased: int
    runs: tuple[str, ...]
    seq: int
    hash: str
    chain_ok: bool
    checked: int
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "action": self.action, "erased_values": self.erased, "runs": list(self.runs), "record_seq": self.seq,
            "record_hash": self.hash, "chain_verifies_after": self.chain_ok, "records_checked": self.checked,
            **self.details,
        }  # fmt: skip


# ---------------------------------------------------------------------------------------------
# The console


class Console:
    """The console over one audit log (and the run table, for agents and subject erasure)."""

    def __init__(self, settings: Settings, audit: AuditLog, runs: Any = None) -> None:
        self.settings = settings
        self.audit = audit
        self.runs = runs  # sovra.runs.RunStore, or None
        self.catalog = RunCatalog(audit, settings.paths.root / CATALOG_FILE, agents=self._agents_of)

    def close(self) -> None:
        self.catalog.close()

    def _agents_of(self, run_ids: list[str]) -> dict[str, str]:
        if self.runs is None:
            return {}
        out = {}
        for run_id in run_ids:
            row = self.runs.get(run_id)
            if row is not None:
                out[run_id] = row.agent
        return out

    # -- access ----------------------------------------------------------------------------

    def _log(self, viewer: User, action: str, data: dict[str, Any]) -> AuditRecord:
        return self.audit.append(f"console.{action}", data, run_id=SYSTEM_RUN, user_id=viewer.id)

    def require(self, viewer: User, action: str = "open") -> None:
        """Raise ConsoleAccessError (and record the refusal) unless ``viewer`` may use the console."""
        if not is_console_user(viewer, self.settings):
            self._log(viewer, "denied", {"action": action, "groups": list(viewer.groups)})
            raise ConsoleAccessError(
                f"{viewer.id} may not use the compliance console",
                hint=f"it is for members of: {', '.join(self.settings.console_principals)}",
            )

    def _require_officer(self, viewer: User, action: str) -> None:
        self.require(viewer, action)
        if not is_privacy_officer(viewer, self.settings):
            self._log(viewer, "denied", {"action": action, "groups": list(viewer.groups)})
            raise ConsoleAccessError(
                f"{viewer.id} may not {action}: that is for the data-protection officer",
                hint=f"it needs one of: {', '.join(self.settings.privacy_officer_principals)}",
            )

    # -- reading ---------------------------------------------------------------------------

    def search(self, viewer: User, query: RunQuery) -> RunPage:
        self.require(viewer, "search")
        return self.catalog.search(query)

    def choices(self, viewer: User) -> dict[str, list[str]]:
        self.require(viewer, "search")
        self.catalog.refresh()
        return self.catalog.choices()

    def usage(self, viewer: User, since: date | None = None, until: date | None = None) -> Usage:
        self.require(viewer, "usage")
        return self.catalog.usage(since, until)

    def _records(self, run_id: str) -> list[AuditRecord]:
        records = self.audit.records(run_id.strip())
        if not records or run_id.strip() == SYSTEM_RUN:
            raise InputError(f"no run {run_id!r} in the audit log", hint="search for it first")
        return records

    def open_run(self, viewer: User, run_id: str) -> Timeline:
        self.require(viewer, "open_run")
        records = self._records(run_id)
        self._log(viewer, "open_run", {"run": run_id})
        return timeline(records)

    def verify(self, viewer: User) -> ChainCheck:
        self.require(viewer, "verify")
        result = self.audit.verify()
        self._log(viewer, "verify", {"ok": result.ok, "checked": result.checked, "first_bad_seq": result.first_bad_seq})
        if result.ok or result.first_bad_seq is None:
            return ChainCheck(result, [], None)
        try:
            around = self.audit.since(max(0, result.first_bad_seq - 3), 5)
        except ValueError:  # the tampered record is not even JSON any more: name it without neighbours
            return ChainCheck(result, [], None)
        bad = next((r for r in around if r.seq == result.first_bad_seq), None)
        return ChainCheck(result, around, bad.run_id if bad is not None else None)

    def replay(self, viewer: User, run_id: str, services: Any) -> list[Any]:
        """Re-run the run's retrieval and ledger calls as its user (:func:`sovra.ui.audit_report.replay`)."""
        from sovra.ui.audit_report import replay

        self.require(viewer, "replay")
        records = self._records(run_id)
        diffs = replay(records, services)
        self._log(viewer, "replay", {"run": run_id, "changed": sum(d.status == "changed" for d in diffs)})
        return diffs

    def export(
        self, viewer: User, *, run_id: str | None = None, since: date | None = None, until: date | None = None
    ) -> bytes:
        """A signed bundle (:mod:`sovra.ui.audit_bundle`) of one run or of every run in a date range."""
        from sovra.ui.audit_bundle import MAX_RUNS, export_bundle

        self.require(viewer, "export")
        scope: dict[str, Any]
        if run_id:
            ids, scope = [self._records(run_id)[0].run_id], {"run": run_id}
        elif since or until:
            page = self.catalog.search(RunQuery(since=since, until=until, limit=MAX_RUNS))
            if page.total > MAX_RUNS:
                raise InputError(f"{page.total} runs in that range; a bundle holds {MAX_RUNS}", hint="narrow it")
            ids = [e.run_id for e in reversed(page.entries)]  # oldest first
            scope = {"since": since.isoformat() if since else None, "until": until.isoformat() if until else None}
        else:
            raise InputError("say what to export", hint="a run id, or a date range")
        data = export_bundle(self.audit, ids, exported_by=viewer.id, scope=scope)
        self._log(viewer, "export", {"scope": scope, "runs": len(ids)})
        return data

    # -- data protection -------------------------------------------------------------------

    def retention(self, viewer: User, days: int) -> Proof:
        """Delete the stored personal content older than ``days`` days; records and chain stay."""
        self._require_officer(viewer, "apply retention")
        if days < 0:
            raise InputError("the retention period is zero days or more")
        report = self.audit.purge(datetime.now(UTC) - timedelta(days=days), requested_by=viewer.id)
        check = self.audit.verify()
        self._log(viewer, "retention", {"days": days, "record": report.record.seq, "erased": report.erased})
        return Proof(
            "retention", report.erased, report.runs, report.record.seq, report.record.hash, check.ok, check.checked,
            {"days": days, "before": report.record.data.get("before")},
        )  # fmt: skip

    def erase_subject(self, viewer: User, subject: str, reason: str) -> Proof:
        """A data subject's erasure request: their content in the audit log and, as ``sovra audit erase
        --subject`` does, their checkpoints and run-table questions; the chain still verifies."""
        self._require_officer(viewer, "erase a data subject")
        subject = subject.strip()
        if not subject:
            raise InputError("say whose data to erase", hint="the subject's user id")
        if not reason.strip():
            raise InputError("an erasure needs a reason", hint="e.g. the request's reference")
        report = self.audit.erase(subject=subject, requested_by=viewer.id, reason=reason.strip())
        details: dict[str, Any] = {"subject": subject, "reason": reason.strip()}
        if self.runs is not None:
            from sovra.conversations import erase_subject as erase_titles

            done = self.runs.erase_subject(subject)
            titles = erase_titles(self.settings, subject)
            rec = self.audit.append(
                "privacy.erasure",
                {
                    "subject_erased": True,
                    "stores": {"runs": done, "conversation_titles": titles},
                    "reason": reason.strip(),
                },
                run_id=SYSTEM_RUN,
                user_id=viewer.id,
            )
            details |= {"run_store": done, "conversation_titles": titles, "run_store_record": rec.seq}
        check = self.audit.verify()
        self._log(viewer, "erasure", {"record": report.record.seq, "erased": report.erased})
        return Proof(
            "erasure", report.erased, report.runs, report.record.seq, report.record.hash, check.ok, check.checked,
            details,
        )  # fmt: skip

    def requests(self, viewer: User, limit: int = 50) -> list[AuditRecord]:
        """The erasure and retention records (newest first): the log of data-protection requests."""
        self.require(viewer, "requests")
        records = self.audit.records(SYSTEM_RUN)
        kinds = {"audit.erasure", "audit.retention", "privacy.erasure"}
        return [r for r in reversed(records) if r.kind in kinds][:limit]
