"""The `sovra` command line. Thin: parse, call the runtime, render. Errors become one line."""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from sovra.config import Settings
from sovra.errors import SovraError
from sovra.ui.api import serve_command
from sovra.ui.approve_cli import approve_command, runs_app
from sovra.ui.audit_cli import audit_app
from sovra.ui.bench_cli import bench_app
from sovra.ui.bot_cli import slack_command, teams_command
from sovra.ui.chat.launch import ui_command
from sovra.ui.eval_cli import eval_command
from sovra.ui.mcp_cli import mcp_command
from sovra.ui.models_cli import models_app
from sovra.ui.sync_cli import sync_command
from sovra.ui.translate_cli import translate_command

app = typer.Typer(
    name="sovra",
    help="Sovra: retrieval-augmented agents that run on your own machines.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(audit_app, name="audit")
app.add_typer(bench_app, name="bench")
app.add_typer(runs_app, name="runs")
app.command("approve")(approve_command)
app.add_typer(models_app, name="models")
app.command("eval")(eval_command)
app.command("serve")(serve_command)
app.command("ui")(ui_command)
app.command("mcp")(mcp_command)
app.command("sync")(sync_command)
app.command("slack")(slack_command)
app.command("teams")(teams_command)
app.command("translate")(translate_command)

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

DEMO_QUESTIONS = [
    ("alice", "How many days per week may I work from home?"),
    ("bob", "Does the Acme supply contract allow early termination, and what have we paid Acme this year?"),
]


def _settings() -> Settings:
    return Settings()


@app.callback()
def _root(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log progress details.")] = False,
) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


@app.command()
def ingest(
    path: Annotated[Path | None, typer.Argument(help="Folder, SharePoint export or ledger .sqlite.")] = None,
    source: Annotated[str | None, typer.Option("--source", "-s", help="Re-sync a source ingested before.")] = None,
    name: Annotated[str | None, typer.Option(help="Name for a new source (default: folder name).")] = None,
    rebuild: Annotated[bool, typer.Option(help="Drop the index and ingest every known source again.")] = False,
    ray: Annotated[
        bool, typer.Option("--ray", help="Parse, chunk and embed on Ray (local runtime, or RAY_ADDRESS).")
    ] = False,
    workers: Annotated[int, typer.Option(min=1, help="Ray tasks at a time (with --ray).")] = 2,
    acl: Annotated[
        list[str] | None,
        typer.Option(
            "--acl",
            help="Who may read the folder's files that have no .meta.json sidecar, e.g. group:legal "
            "(repeat for several; remembered for --source). Without it such files are readable by nobody.",
        ),
    ] = None,
) -> None:
    """Ingest documents into the index (incremental: unchanged documents are skipped)."""
    from sovra.ui.commands import run_ingest

    report = run_ingest(
        _settings(),
        path=path,
        source=source,
        name=name,
        rebuild=rebuild,
        console=err,
        ray_workers=workers if ray else None,
        default_acl=list(acl) if acl else None,
    )
    out.print(report.summary())
    if report.no_acl:
        err.print(
            f"  {len(report.no_acl)} file(s) have no .meta.json sidecar and no --acl: nobody can read them "
            "(e.g. " + ", ".join(report.no_acl[:3]) + "). Re-run with --acl group:NAME to share them.",
            markup=False,
        )
    elif acl:
        err.print(f"  Files without a .meta.json sidecar are readable by: {', '.join(acl)} (--acl).", markup=False)
    for doc_id, reason in report.failed:
        err.print(f"  failed: {doc_id}: {reason}", markup=False)
    for doc_id, reason in report.skipped_pages[:20]:
        err.print(f"  skipped: {doc_id} {reason}", markup=False)
    if len(report.skipped_pages) > 20:
        err.print(f"  ... and {len(report.skipped_pages) - 20} more skipped pages", markup=False)


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="The question, in quotes.")],
    user: Annotated[str, typer.Option("--as", help="The user asking (their groups decide what they may read).")],
    agent: Annotated[str, typer.Option(help="Agent to ask.")] = "assistant",
    as_json: Annotated[bool, typer.Option("--json", help="Print the answer as JSON.")] = False,
    thread: Annotated[
        str | None, typer.Option("--thread", help="Conversation id: earlier turns of it are available.")
    ] = None,
) -> None:
    """Ask a question as a user; prints the answer, its citations and the audit run id."""
    from sovra.ui.approve_cli import ask_in_thread
    from sovra.ui.commands import ask_question
    from sovra.ui.render import answer_json, print_answer

    settings = _settings()
    if thread:
        answer = ask_in_thread(settings, question, user, agent, thread)
    else:
        answer = ask_question(settings, question, user, agent)
    if as_json:
        out.print_json(json.dumps(answer_json(answer)))
    else:
        print_answer(out, answer)


@app.command()
def demo(
    reset: Annotated[bool, typer.Option(help="Regenerate the demo corpus and rebuild the index.")] = False,
) -> None:
    """Set up the demo bank (corpus, users, index) and ask the demo agent two questions."""
    from sovra.evals.demo_corpus import AS_OF
    from sovra.ui.commands import ask_questions, setup_demo
    from sovra.ui.render import print_answer

    settings = _settings()
    if settings.as_of is None:
        settings = settings.model_copy(update={"as_of": AS_OF})
    report = setup_demo(settings, reset=reset, console=err)
    out.print(f"[bold]Index:[/] {report.summary()}")
    for answer in ask_questions(settings, DEMO_QUESTIONS, "assistant"):
        out.rule(f"{answer.user} asks")
        out.print(answer.question, markup=False)
        print_answer(out, answer)


@app.command()
def users() -> None:
    """List the users of the identity directory and their groups."""
    from sovra.identity import Directory

    for u in Directory.from_file(_settings().resolved_users_file):
        out.print(f"{u.id:<10} {u.name:<20} {', '.join(u.groups)}", markup=False)


@app.command()
def doctor() -> None:
    """Say what is configured (data dir, index, stores, model), what is reachable and what is missing."""
    from sovra.doctor import diagnose

    checks = diagnose(_settings())
    for check in checks:
        out.print(check.line(), markup=False)
    missing = [c.name for c in checks if c.required and not c.ok]
    if missing:
        err.print(f"missing or unreachable: {', '.join(missing)}", markup=False)
        raise typer.Exit(1)


def _error_line(exc: BaseException) -> str:
    if isinstance(exc, SovraError):
        # One line, so a script's log or a CI summary shows the whole error and its fix.
        message = " ".join(exc.message.split())
        return f"error: {message}" + (f" (hint: {' '.join(exc.hint.split())})" if exc.hint else "")
    return f"error: {type(exc).__name__}: {exc}"


def usage_error(exc: Exception) -> None:
    message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
    ctx = getattr(exc, "ctx", None)
    line = " ".join(str(message).split())
    if not line and ctx is not None:  # a group called with no command (no_args_is_help): its help
        out.print(ctx.get_help(), markup=False, highlight=False)
        return
    where = getattr(ctx, "command_path", None) or "sovra"
    err.print(f"error: {line} (hint: see `{where} --help`)", markup=False)


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        # Non-standalone click returns the code of a typer.Exit instead of exiting.
        rc = app(args=argv, standalone_mode=False)
        return rc if isinstance(rc, int) else 0
    except SovraError as exc:
        err.print(_error_line(exc), markup=False)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except Exception as exc:
        import click

        # A usage error (unknown option or command, missing or bad argument): one line and the
        # command's --help, exit 2. Typer >= 0.2x raises its own vendored click's exceptions, all
        # TyperException; plain click's are caught too for commands built on click directly.
        if isinstance(exc, (click.exceptions.ClickException, typer.TyperException)):
            usage_error(exc)
            sys.exit(getattr(exc, "exit_code", 2))
        if isinstance(exc, (click.exceptions.Abort, typer.Abort)):
            sys.exit(1)
        if os.environ.get("SOVRA_DEBUG"):
            raise
        err.print(
            _error_line(exc) + " (this is a bug in Sovra; rerun with SOVRA_DEBUG=1 for a traceback)", markup=False
        )
        sys.exit(70)


if __name__ == "__main__":
    sys.exit(main())
