"""`sovra translate PATH --to fr`: translate a document with the served `translation` route, check
every fact, write the translation (Markdown) and the checker's report. Exit code 1 when a fact
changed or a glossary term was not used; see docs/translation.md."""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from sovra.config import Settings

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "cli"


def translate_command(
    path: Annotated[Path, typer.Argument(help="PDF, DOCX, Markdown or text file to translate.")],
    to: Annotated[str, typer.Option("--to", help="Target language: en, fr, de, nl, it or es.")],
    source: Annotated[
        str | None, typer.Option("--from", help="Source language (default: detected from the text).")
    ] = None,
    glossary: Annotated[
        Path | None,
        typer.Option(help="CSV of term pairs (source,target[,source_lang,target_lang] or columns en,fr,de...)."),
    ] = None,
    out_path: Annotated[
        Path | None, typer.Option("--out", help="Output Markdown file (default: <name>.<to>.md beside the input).")
    ] = None,
    fresh: Annotated[bool, typer.Option(help="Ignore segments translated by an earlier, interrupted run.")] = False,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Segments sent to the model at once.")] = 4,
    user: Annotated[str | None, typer.Option("--as", help="User recorded in the audit log (default: you).")] = None,
) -> None:
    """Translate a document section by section with the served model, resumably; check every fact."""
    from sovra.tools.translate import report_file, translate_document
    from sovra.tools.translation_check import Glossary

    terms = Glossary.load(glossary) if glossary else None
    bar = Progress(
        TextColumn("{task.description:<12}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=err
    )
    task = bar.add_task("translating", total=None)

    def progress(done: int, total: int) -> None:
        if done == 0:
            bar.start()  # only once the route and the input are known good: an error stays one line
        bar.update(task, completed=done, total=total)

    try:
        report = translate_document(
            path, Settings(), to=to, source=source, glossary=terms, out=out_path, fresh=fresh,
            user_id=user or _user(), interface="cli", progress=progress, workers=workers,
        )  # fmt: skip
    finally:
        bar.stop()
    problems = [s for s in report.segments if s.check.status in ("changed", "could_not_check")]
    if problems:
        table = Table("segment", "status", "what", show_lines=False)
        for s in problems[:30]:
            what = [f"{c.kind}: {c.source or '-'} -> {c.translation or '(missing)'}" for c in s.check.changes]
            what += [f"glossary: {g['source_term']} should be {g['expected']}" for g in s.check.glossary]
            what += s.check.unchecked
            table.add_row(s.id, s.check.status, "\n".join(what))
        err.print(table)
        if len(problems) > 30:
            err.print(f"... and {len(problems) - 30} more segments: see the report", markup=False)
    resumed = sum(1 for s in report.segments if s.resumed)
    out.print(
        f"Translated {path.name} ({report.source_lang} -> {report.target_lang}) to {report.out_path}", markup=False
    )
    out.print(report.summary(), markup=False)
    if resumed:
        out.print(f"{resumed} segment(s) kept from an earlier run.", markup=False)
    out.print(f"Report: {report_file(Path(report.out_path))}  audit run: {report.run_id}", markup=False)
    if report.changed:
        raise typer.Exit(1)
