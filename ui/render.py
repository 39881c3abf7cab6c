"""Terminal rendering of answers and audit timelines."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console

from sovra.runtime import Answer

_STATUS = {
    "answered": "",
    "extracted": "[dim](quoted from the sources; set SOVRA_LLM_BASE_URL to a served model for written answers)[/]",
    "not_found": "[yellow](not found in the documents you can access)[/]",
    "uncited": "[yellow](the model cited no source: treat this answer with care)[/]",
    "awaiting_approval": "[yellow](paused: a person must approve the next step)[/]",
    "budget_exceeded": "[red](stopped: the run went past its budget)[/]",
    "cancelled": "[yellow](cancelled)[/]",
}


def _clip(text: str, width: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3] + "..."


def answer_json(a: Answer) -> dict[str, Any]:
    return {
        "run_id": a.run_id,
        "trace_id": a.trace_id,
        "user": a.user,
        "question": a.question,
        "answer": a.text,
        "status": a.status,
        "citations": [c.__dict__ | {"rows": list(c.rows)} for c in a.citations],
        "notes": a.notes,
        "evidence": [c.__dict__ | {"rows": list(c.rows)} for c in a.evidence],
        "approval": a.approval.__dict__ if a.approval else None,
        "thread_id": a.thread_id,
        "output": a.output,
    }


def print_answer(console: Console, a: Answer) -> None:
    console.print(a.text, markup=False)
    if _STATUS.get(a.status):
        console.print(_STATUS[a.status])
    for note in a.notes:
        console.print(f"[dim]note:[/] {note}")
    if a.citations:
        console.print("[bold]Sources[/]")
        for c in a.citations:
            console.print("  " + c.label(), markup=False)
            console.print(f'      "{_clip(c.quote)}"', markup=False, style="dim")
    if a.evidence:
        console.print("[bold]Most relevant passages retrieved[/] [dim](not cited by the model)[/]")
        for c in a.evidence:
            console.print("  " + c.label(), markup=False)
            console.print(f'      "{_clip(c.quote)}"', markup=False, style="dim")
    if a.approval is not None:
        console.print(f"[bold]Waiting for approval[/] (asked by {a.approval.requested_for}):")
        console.print(f"  {a.approval.description}", markup=False)
        console.print(
            f"  approve: sovra approve {a.run_id} --as APPROVER --reason '...'   refuse: add --reject", markup=False
        )
    console.print(f"[dim]audit run: {a.run_id}  (sovra audit show {a.run_id})[/]")


def _brief(data: Any, width: int = 220) -> str:
    text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False, default=str)
    return text if len(text) <= width else text[: width - 3] + "..."


def _describe(kind: str, d: dict[str, Any]) -> str:
    if kind == "run.start":
        return f"user={d.get('user')} groups={d.get('groups')} via {d.get('interface')}: {d.get('question')!r}"
    if kind == "model.call":
        return (
            f"{d.get('route')} -> {d.get('model')} at {d.get('base_url')}: {d.get('input_tokens')} in / "
            f"{d.get('output_tokens')} out tokens, {float(d.get('duration_ms') or 0):.0f} ms, "
            f"{d.get('attempts')} attempt(s); output {_brief(d.get('output', ''), 160)}"
        )
    if kind.startswith("tool.") and isinstance(d.get("result"), dict) and "hits" in d["result"]:
        hits = ", ".join(f"{h['chunk_id']} ({h['score']:.3f})" for h in d["result"]["hits"])
        return f"args={_brief(d.get('args'), 140)} -> {len(d['result']['hits'])} hits: {hits}"
    return _brief(d)


def print_run(console: Console, records: list[Any]) -> None:
    first = records[0]
    console.print(f"[bold]run {first.run_id}[/]  trace {first.trace_id}")
    for r in records:
        console.print(f"[cyan]{r.seq:>6}[/] {r.ts}  [bold]{r.kind}[/]", highlight=False)
        console.print("         " + _describe(r.kind, r.data or {}), markup=False, soft_wrap=False)
