"""`sovra audit ...`: read, verify, export, replay and erase. Mount with
``app.add_typer(audit_app, name="audit")`` in ui/cli.py."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from sovra.audit import AuditLog, ChainHead, open_audit
from sovra.config import Settings
from sovra.errors import InputError
from sovra.identity import User

audit_app = typer.Typer(help="Read, verify, export and replay the tamper-evident audit log.", no_args_is_help=True)

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)

AsUser = Annotated[
    str | None,
    typer.Option("--as", help="Read as this user: only the run's owner and auditors may read it."),
]


def _open() -> tuple[Settings, AuditLog]:
    settings = Settings()
    return settings, open_audit(settings)


def _viewer(settings: Settings, user_id: str | None) -> User | None:
    if user_id is None:
        return None  # the operator, who holds the store itself
    from sovra.identity import Directory

    return Directory.from_file(settings.resolved_users_file).get(user_id)


@audit_app.command("show")
def show(
    run_id: Annotated[str, typer.Argument(help="Run id printed with the answer.")],
    as_user: AsUser = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Every record in full (data not shortened) as a JSON list.")
    ] = False,
) -> None:
    """Print every decision step of a run (shortened to a line each; --json for the full records)."""
    from sovra.ui.audit_report import load_run
    from sovra.ui.render import print_run

    settings, log = _open()
    records = load_run(log, run_id, _viewer(settings, as_user))
    if as_json:
        fields = ("seq", "run_id", "ts", "kind", "user_id", "trace_id", "span_id", "data", "prev_hash", "hash")
        rows = [{f: getattr(r, f) for f in fields} for r in records]
        typer.echo(json.dumps(rows, ensure_ascii=False, indent=1, default=str))
        return
    print_run(out, records)


@audit_app.command("runs")
def runs(
    limit: Annotated[int, typer.Option(help="How many.")] = 20,
    user: Annotated[str | None, typer.Option(help="Only this user's runs.")] = None,
) -> None:
    """List recent runs."""
    for r in _open()[1].runs(user_id=user, limit=limit):
        out.print(
            f"{r.run_id}  {r.started}  {r.user_id or '-':<8} {r.steps:>3} steps  {r.question or ''}", markup=False
        )


@audit_app.command("verify")
def verify(
    anchor: Annotated[str | None, typer.Option(help="COUNT:HASH from an earlier `sovra audit head`.")] = None,
    public_key: Annotated[str | None, typer.Option(help="Ed25519 public key (hex): require signatures.")] = None,
) -> None:
    """Check the hash chain; exits non-zero and names the first bad record if anything was altered."""
    head = None
    if anchor:
        count, _, digest = anchor.partition(":")
        if not count.isdigit() or len(digest) != 64:
            raise InputError("--anchor must be COUNT:HASH", hint="as printed by `sovra audit head`")
        head = ChainHead(int(count), digest)
    result = _open()[1].verify(anchor=head, public_key=public_key)
    if result.ok:
        out.print(f"audit chain intact: {result.checked} records verified")
        return
    err.print(f"audit chain BROKEN: {result.reason}", markup=False)
    raise typer.Exit(3)


@audit_app.command("head")
def head() -> None:
    """Print COUNT:HASH of the chain head; keep it outside this machine to detect truncation later."""
    h = _open()[1].head()
    out.print(f"{h.count}:{h.last_hash}")


@audit_app.command("export")
def export(
    run_id: Annotated[str, typer.Argument(help="Run id.")],
    fmt: Annotated[str, typer.Option("--format", help="html or json.")] = "html",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="File to write (default: stdout).")] = None,
    as_user: AsUser = None,
) -> None:
    """A self-contained report of a run: question, answer, every step, every source quoted."""
    from sovra.ui.audit_report import load_run, report_html, report_json

    if fmt not in ("html", "json"):
        raise InputError(f"unknown format {fmt!r}", hint="use --format html or --format json")
    settings, log = _open()
    report = report_json(log, load_run(log, run_id, _viewer(settings, as_user)))
    text = report_html(report) if fmt == "html" else json.dumps(report, ensure_ascii=False, indent=2)
    if output is None:
        print(text)
    else:
        output.write_text(text, encoding="utf-8")
        err.print(f"wrote {output}", markup=False)


@audit_app.command("replay")
def replay(run_id: Annotated[str, typer.Argument(help="Run id.")], as_user: AsUser = None) -> None:
    """Re-run a run's retrieval and ledger calls against today's index and report what differs."""
    from sovra.runtime import Services
    from sovra.ui.audit_report import load_run
    from sovra.ui.audit_report import replay as do_replay

    settings, log = _open()
    records = load_run(log, run_id, _viewer(settings, as_user))
    services = Services(settings)
    try:
        diffs = do_replay(records, services)
    finally:
        services.close()
    if not diffs:
        out.print("nothing to replay: the run made no retrieval or ledger calls")
    changed = 0
    for d in diffs:
        changed += d.status == "changed"
        out.print(f"{d.seq:>6} {d.kind:<24} {d.status:<8} {d.note}", markup=False)
        for c in d.added:
            out.print(f"         + {c}", markup=False)
        for c in d.removed:
            out.print(f"         - {c}", markup=False)
        for c, (a, b) in d.score_changes.items():
            out.print(f"         ~ {c}: {a:.4f} -> {b:.4f}", markup=False)
    if changed:
        raise typer.Exit(1)


@audit_app.command("erase")
def erase(
    subject: Annotated[str | None, typer.Option(help="Erase the content of every run by this user.")] = None,
    run_id: Annotated[str | None, typer.Option("--run", help="Erase the content of this run.")] = None,
    containing: Annotated[str | None, typer.Option(help="Erase every stored value containing this text.")] = None,
    reason: Annotated[str, typer.Option(help="Why (recorded in the audit log).")] = "",
    by: Annotated[str | None, typer.Option(help="Who requested it (recorded).")] = None,
) -> None:
    """GDPR erasure: delete personal content; the chain still verifies afterwards. With --subject,
    the user's run checkpoints and run-table questions go too."""
    settings, log = _open()
    report = log.erase(subject=subject, run_id=run_id, containing=containing, requested_by=by, reason=reason)
    out.print(f"erased {report.erased} values from {len(report.runs)} runs (record {report.record.seq})")
    if subject is not None:
        from sovra.conversations import erase_subject as erase_titles
        from sovra.runs import RunStore

        store = RunStore(settings)
        try:
            done = store.erase_subject(subject)
        finally:
            store.close()
        titles = erase_titles(settings, subject)
        rec = log.append("privacy.erasure",
                         {"subject_erased": True, "stores": {"runs": done, "conversation_titles": titles},
                          "reason": reason},
                         run_id="audit", user_id=by)  # fmt: skip
        out.print(
            f"erased the checkpoints of {done['threads']} threads, the questions of {done['runs']} runs "
            f"and {titles} conversation titles "
            f"(record {rec.seq})"
            + (f"; {done['live_runs_kept']} live runs kept: cancel them first" if done["live_runs_kept"] else "")
        )


@audit_app.command("retention")
def retention(days: Annotated[int, typer.Option(help="Keep content this many days.")]) -> None:
    """Delete stored personal content older than DAYS; the records and the chain stay."""
    if days < 0:
        raise InputError("--days must be zero or more")
    report = _open()[1].purge(datetime.now(UTC) - timedelta(days=days))
    out.print(f"purged {report.erased} values from {len(report.runs)} runs (record {report.record.seq})")


@audit_app.command("export-bundle")
def export_bundle_command(
    output: Annotated[Path, typer.Option("--output", "-o", help="The zip file to write.")],
    run_id: Annotated[str | None, typer.Option("--run", help="One run.")] = None,
    since: Annotated[datetime | None, typer.Option(formats=["%Y-%m-%d"], help="Every run from this day (UTC).")] = None,
    until: Annotated[datetime | None, typer.Option(formats=["%Y-%m-%d"], help="... to this day, inclusive.")] = None,
    as_user: Annotated[str, typer.Option("--as", help="The auditor exporting (console principals only).")] = "",
) -> None:
    """A signed bundle (JSON + HTML reports) of one run or a date range; check it with verify-bundle."""
    from sovra.runs import RunStore
    from sovra.ui.compliance import Console

    settings, log = _open()
    viewer = _viewer(settings, as_user or None)
    if viewer is None:
        raise InputError("say who exports", hint="--as AUDITOR (a user the console admits)")
    store = RunStore(settings)
    console = Console(settings, log, store)
    try:
        data = console.export(
            viewer, run_id=run_id, since=since.date() if since else None, until=until.date() if until else None
        )
    finally:
        console.close()
        store.close()
    output.write_bytes(data)
    err.print(f"wrote {output} ({len(data):,} bytes)", markup=False)


@audit_app.command("verify-bundle")
def verify_bundle_command(
    bundle: Annotated[Path, typer.Argument(help="A bundle from the console or export-bundle.")],
    public_key: Annotated[str | None, typer.Option(help="The audit key (hex) it must be signed with.")] = None,
) -> None:
    """Check a signed bundle offline: signature, every file, every record's hash. Exits 3 if it fails."""
    from sovra.ui.audit_bundle import verify_bundle

    check = verify_bundle(bundle.read_bytes(), public_key)
    if check.ok:
        out.print(f"bundle verifies: {check.runs} runs, {check.records} records, signed by {check.public_key}")
        if public_key is None:
            out.print("(no --public-key given: this proves the bundle is intact, not who signed it)")
        return
    err.print(f"bundle does NOT verify: {check.reason}", markup=False)
    raise typer.Exit(3)
