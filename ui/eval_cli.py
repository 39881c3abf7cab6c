"""`sovra eval`: run an eval suite and write its JSON + HTML report, or compare two runs.

Mounted in ui/cli.py with ``app.command("eval")(eval_command)``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from sovra.config import Settings
from sovra.errors import InputError

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)


def eval_command(
    suite: Annotated[str, typer.Option(help="quick | demo | full | path to a .jsonl dataset or BEIR folder.")] = "demo",
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Report folder (default: <data_dir>/evals/<time>).")
    ] = None,
    compare: Annotated[
        tuple[Path, Path] | None, typer.Option(help="Compare two earlier runs (report folders or result.json).")
    ] = None,
    mode: Annotated[
        str, typer.Option(help="Retrieval mode forced on every search: hybrid | dense | sparse.")
    ] = "hybrid",
    k: Annotated[int, typer.Option(help="Documents scored per query for retrieval metrics.")] = 10,
    judge: Annotated[bool | None, typer.Option(help="Score answers with the LLM judge (default: on for full).")] = None,
    retrieval_only: Annotated[bool, typer.Option(help="Score retrieval and ACL probes only; ask no agent.")] = False,
    seed: Annotated[int, typer.Option(help="Seed for the bootstrap and the permutation test.")] = 20251127,
    plant_acl_leak: Annotated[
        bool, typer.Option("--plant-acl-leak", hidden=True, help="TEST ONLY: give every user every group.")
    ] = False,
) -> None:
    """Evaluate retrieval, answers, citations, refusals and ACL leakage; write report.html and result.json.

    Exits with code 4 when any question leaked restricted content.
    """
    from sovra.evals.report import compare as compare_runs
    from sovra.evals.report import load_result, render_comparison_html, write_report

    settings = Settings()
    if compare is not None:
        a, b = (load_result(p) for p in compare)
        cmp = compare_runs(a, b, seed=seed)
        dest = out_dir or Path(compare[1]) / "compare"
        dest.mkdir(parents=True, exist_ok=True)
        (dest / "comparison.json").write_text(json.dumps(cmp, indent=1), encoding="utf-8")
        (dest / "comparison.html").write_text(render_comparison_html(cmp), encoding="utf-8")
        for name, t in cmp["metrics"].items():
            out.print(
                f"{name:<24} A {t['mean_a']:.3f}  B {t['mean_b']:.3f}  diff {t['diff']['mean']:+.3f}  "
                f"p={t['p_value']:.4f}",
                markup=False,
            )
        out.print(f"comparison: {dest / 'comparison.html'}", markup=False)
        return
    if mode not in ("hybrid", "dense", "sparse"):
        raise InputError(f"unknown retrieval mode {mode!r}", hint="use hybrid, dense or sparse")
    from sovra.evals.suites import run_suite

    dest = out_dir or settings.paths.root / "evals" / time.strftime("%Y%m%d-%H%M%S")
    options: dict[str, object] = {
        "mode": mode,
        "k": k,
        "seed": seed,
        "plant_acl_leak": plant_acl_leak,
        "ask_agents": not retrieval_only,
    }
    if judge is not None:
        options["judge"] = judge
    result = run_suite(settings, suite, dest, **options)
    json_path, html_path = write_report(result, dest)
    s = result["summary"]
    for name in (
        "nDCG@10",
        "R@10",
        "RR",
        "passage_RR",
        "passage_P@1",
        "must_contain",
        "numeric_match",
        "token_f1",
        "citation_precision",
        "citation_recall",
        "refusal_correct",
        "latency_s",
    ):
        if name in s:
            out.print(
                f"{name:<22} {s[name]['mean']:.3f}  [{s[name]['ci_low']:.3f}, {s[name]['ci_high']:.3f}]  "
                f"n={s[name]['n']}",
                markup=False,
            )
    out.print(
        f"questions {s['questions']}, errors {s['errors']}, ACL leaks {s['acl_leaks']}, {result['seconds']:.0f} s"
    )
    out.print(f"report: {html_path}\nresult: {json_path}", markup=False)
    if s["acl_leaks"]:
        from sovra.evals.runner import check_gates

        err.print(f"FAIL: {s['acl_leaks']} question(s) leaked restricted content", markup=False)
        check_gates(result)  # raises EvalGateError: one line and exit code 4 from the CLI
