"""`sovra approve` and `sovra runs ...`: decide paused runs, list them, cancel or resume runs, and
ask within a conversation thread. Thin: the runtime does the work (and the audit records)."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console

from sovra.config import Settings
from sovra.errors import InputError
from sovra.runtime import Answer, Runtime
from sovra.ui.answer_access import WITHHELD, may_see_answer, withheld_body

out = Console(highlight=False, soft_wrap=True)

runs_app = typer.Typer(
    help="Runs: those waiting for approval, cancelling, resuming after a crash.", no_args_is_help=True
)


def _print(answer: Answer, as_json: bool) -> None:
    from sovra.ui.render import answer_json, print_answer

    if as_json:
        out.print_json(json.dumps(answer_json(answer)))
    else:
        print_answer(out, answer)


def ask_in_thread(settings: Settings, question: str, user_id: str, agent_name: str, thread_id: str) -> Answer:
    """One turn of a conversation: earlier turns of ``thread_id`` are available to the agent."""
    from sovra.agents import get_agent

    runtime = Runtime(settings)
    try:
        return runtime.ask(get_agent(agent_name, settings), question, user_id, interface="cli", thread_id=thread_id)
    finally:
        runtime.close()


def approve_command(
    run_id: Annotated[str, typer.Argument(help="The run waiting for approval (see: sovra runs pending).")],
    user: Annotated[str, typer.Option("--as", help="Who decides: the requester or an approver.")],
    reason: Annotated[str, typer.Option("--reason", help="Why (recorded in the audit log).")] = "",
    reject: Annotated[bool, typer.Option("--reject", help="Refuse the tool call instead of approving it.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the answer as JSON.")] = False,
) -> None:
    """Approve (or --reject) a paused tool call; the run continues from its checkpoint."""
    runtime = Runtime(Settings())
    try:
        approval = runtime.pending_approval(run_id)
        if approval is not None and not as_json:
            verdict = "Refusing" if reject else "Approving"
            out.print(f"{verdict}: {approval.description}", markup=False)
        answer = runtime.resume(run_id, user, approved=not reject, reason=reason, interface="cli")
        # An approver sees the owner's answer only when they may read every source it quotes.
        shown = may_see_answer(runtime, runtime.services.directory.get(user), answer)
    finally:
        runtime.close()
    if shown:
        _print(answer, as_json)
    elif as_json:
        out.print_json(json.dumps(withheld_body(answer)))
    else:
        out.print(f"Decided; the run is now {answer.status}. {WITHHELD}", markup=False)
        if answer.approval is not None:
            out.print(f"It waits again: {answer.approval.description} (sovra approve {run_id} --as ...)", markup=False)


@runs_app.command("pending")
def pending_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """List the runs waiting for a person's approval, oldest first."""
    runtime = Runtime(Settings())
    try:
        pending = runtime.pending()
        rows = {a.run_id: runtime.runs.get(a.run_id) for a in pending}
    finally:
        runtime.close()
    if as_json:
        out.print_json(json.dumps([a.__dict__ for a in pending]))
        return
    if not pending:
        out.print("No run is waiting for approval.")
        return
    for a in pending:
        row = rows[a.run_id]
        out.print(f"[bold]{a.run_id}[/]  {row.agent if row else ''}  asked by {a.requested_for}")
        out.print(f"    {a.description}", markup=False)
        out.print(f"    [dim]sovra approve {a.run_id} --as APPROVER --reason '...'  (or --reject)[/]")


@runs_app.command("cancel")
def cancel_command(run_id: Annotated[str, typer.Argument(help="The run to stop.")]) -> None:
    """Cancel a run: a paused one at once, a running one at its next step."""
    runtime = Runtime(Settings())
    try:
        runtime.cancel(run_id)
        status = runtime.runs.status(run_id)
    finally:
        runtime.close()
    out.print(f"run {run_id}: {status}")


@runs_app.command("resume")
def resume_command(
    run_id: Annotated[str, typer.Argument(help="A run whose process died (crash, kill -9).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the answer as JSON.")] = False,
) -> None:
    """Continue a run whose process died, from its last checkpoint."""
    runtime = Runtime(Settings())
    try:
        if runtime.runs.get(run_id) is None:
            raise InputError(f"no run {run_id!r}")
        answer = runtime.resume_crashed(run_id)
    finally:
        runtime.close()
    _print(answer, as_json)
