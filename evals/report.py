"""Eval reports: ``result.json`` and a self-contained ``report.html`` (plots inlined as base64 PNG).

Also the comparison of two result files: per-metric means, the paired difference with a bootstrap
CI and a paired permutation p-value (see ``metrics.paired_test``).
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from pathlib import Path
from typing import Any

from sovra.errors import InputError
from sovra.evals import metrics as M
from sovra.evals.runner import COST_METRICS, SUMMARY_METRICS

_CSS = """body{font-family:system-ui,sans-serif;margin:2rem;max-width:1200px;color:#222}
table{border-collapse:collapse;margin:1rem 0}td,th{border:1px solid #ccc;padding:.3rem .6rem;font-size:.9rem;
text-align:left;vertical-align:top}th{background:#f3f3f3}.bad{color:#b00020;font-weight:bold}.ok{color:#1b5e20}
details{margin:.3rem 0}pre{white-space:pre-wrap;font-size:.8rem;background:#fafafa;padding:.5rem}
.banner{padding:.8rem;border-radius:6px;margin:1rem 0}.banner.bad{background:#fde7ea}.banner.ok{background:#e8f5e9}"""


def load_result(path: Path) -> dict[str, Any]:
    p = Path(path)
    if p.is_dir():
        p = p / "result.json"
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"cannot read eval result {p}: {exc}", hint="pass a report folder or its result.json") from exc


def _fmt(v: Any, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    return f"{v:.{digits}f}" if isinstance(v, float) else html.escape(str(v))


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return f'<img alt="plot" src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}">'


def _have_matplotlib() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:  # plots are a nicety: the tables carry every number
        return False
    return True


def _summary_plot(summary: dict[str, Any]) -> str:
    if not _have_matplotlib():
        return "<p><i>(matplotlib is not installed: no plots)</i></p>"
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [n for n in SUMMARY_METRICS if n in summary]
    if not names:
        return ""
    means = [summary[n]["mean"] for n in names]
    err = [
        [m - summary[n]["ci_low"] for n, m in zip(names, means, strict=True)],
        [summary[n]["ci_high"] - m for n, m in zip(names, means, strict=True)],
    ]
    fig, ax = plt.subplots(figsize=(8, 0.35 * len(names) + 1))
    ax.barh(names, means, xerr=err, color="#4c72b0", capsize=3)
    ax.set_xlim(0, 1.05)
    ax.invert_yaxis()
    ax.set_xlabel("mean with 95% bootstrap CI")
    return _png(fig)


def _latency_plot(questions: list[dict[str, Any]]) -> str:
    if not _have_matplotlib():
        return ""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lat = [q["metrics"]["latency_s"] for q in questions if q["metrics"].get("latency_s") is not None]
    if not lat:
        return ""
    fig, ax = plt.subplots(figsize=(6, 2.5))
    ax.hist(lat, bins=min(20, max(5, len(lat))), color="#55a868")
    ax.set_xlabel("seconds per question (agent run)")
    return _png(fig)


def _summary_table(summary: dict[str, Any]) -> str:
    rows = "".join(
        f"<tr><td>{n}</td><td>{_fmt(summary[n]['mean'])}</td><td>[{_fmt(summary[n]['ci_low'])}, "
        f"{_fmt(summary[n]['ci_high'])}]</td><td>{summary[n]['n']}</td></tr>"
        for n in (*SUMMARY_METRICS, *COST_METRICS)
        if n in summary
    )
    return f"<table><tr><th>metric</th><th>mean</th><th>95% CI</th><th>n</th></tr>{rows}</table>"


def _by_kind(summary: dict[str, Any]) -> str:
    kinds = summary.get("by_kind", {})
    cols = [n for n in SUMMARY_METRICS if any(n in v for v in kinds.values())]
    head = "".join(f"<th>{c}</th>" for c in cols)
    body = "".join(
        f"<tr><td>{html.escape(k)}</td>" + "".join(f"<td>{_fmt(v.get(c))}</td>" for c in cols) + "</tr>"
        for k, v in kinds.items()
    )
    return f"<table><tr><th>kind</th>{head}</tr>{body}</table>"


def _question(q: dict[str, Any]) -> str:
    m = q["metrics"]
    flags = "".join(f'<div class="bad">LEAK: {html.escape(x)}</div>' for x in q["leaks"])
    if q.get("error"):
        flags += f'<div class="bad">error: {html.escape(q["error"])}</div>'
    run = q.get("run_id")
    audit = ""
    if run:
        steps = "\n".join(f"{s['seq']:>6} {s['kind']:<22} {s['data']}" for s in q.get("audit", []))
        audit = (
            f'<details><summary>audit run <code id="run-{run}">{run}</code> '
            f"(<code>sovra audit show {run}</code>)</summary><pre>{html.escape(steps)}</pre></details>"
        )
    cites = "".join(
        f"<li>[{c['n']}] {html.escape(c['title'])} {('p. ' + str(c['page'])) if c.get('page') else ''} "
        f"<small>{html.escape(c['url'])}</small><br><q>{html.escape(c['quote'][:300])}</q></li>"
        for c in q.get("citations", [])
    )
    metric_cells = ", ".join(f"{k}={_fmt(v, 2)}" for k, v in sorted(m.items()) if v is not None)
    return (
        f'<details id="q-{html.escape(q["id"])}"><summary><b>{html.escape(q["id"])}</b> '
        f"[{html.escape(q['kind'])}, as {html.escape(q['user'])}] {html.escape(q['question'])} "
        f"— <i>{html.escape(str(q.get('status') or 'retrieval only'))}</i>"
        f"{' <span class=bad>LEAK</span>' if q['leaks'] else ''}</summary>{flags}"
        f"<p><b>Expected:</b> {html.escape(q.get('expected') or '–')}</p>"
        f"<p><b>Answer:</b></p><pre>{html.escape(q.get('answer') or '–')}</pre>"
        f"<ol>{cites}</ol><p><b>Retrieved (top documents):</b> {html.escape(', '.join(q['retrieved'][:10]))}</p>"
        f"<p><small>{html.escape(metric_cells)}</small></p>{audit}</details>"
    )


def _section(title: str, result: dict[str, Any]) -> str:
    s = result["summary"]
    leaks = s.get("acl_leaks", 0)
    banner = (
        f'<div class="banner bad">ACL LEAKS: {leaks} question(s) exposed restricted content</div>'
        if leaks
        else '<div class="banner ok">No ACL leak: 0 questions exposed restricted content</div>'
    )
    cfg = html.escape(json.dumps(result["config"], indent=1))
    questions = "".join(_question(q) for q in result["questions"])
    return (
        f"<h2>{html.escape(title)}</h2>{banner}<p>{s['questions']} questions, {s.get('errors', 0)} errors, "
        f"{result['seconds']:.0f} s.</p><h3>Summary</h3>{_summary_table(s)}{_summary_plot(s)}"
        f"<h3>By kind (means)</h3>{_by_kind(s)}<h3>Latency</h3>{_latency_plot(result['questions'])}"
        f"<h3>Questions</h3>{questions}<details><summary>Recorded configuration</summary><pre>{cfg}</pre></details>"
    )


def render_html(result: dict[str, Any]) -> str:
    parts = [_section(f"Suite {result['config']['suite']} (retrieval mode {result['config']['mode']})", result)]
    for name, bench in result.get("benchmarks", {}).items():
        parts.append(_section(f"Benchmark {name}", bench))
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>Sovra eval</title><style>{_CSS}</style>"
        f"</head><body><h1>Sovra evaluation report</h1>{''.join(parts)}</body></html>"
    )


def write_report(result: dict[str, Any], out_dir: Path) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    j, h = out_dir / "result.json", out_dir / "report.html"
    j.write_text(json.dumps(result, indent=1, default=str, allow_nan=True), encoding="utf-8")
    h.write_text(render_html(result), encoding="utf-8")
    return j, h


# --- comparing two runs ---------------------------------------------------------------------------


def compare(a: dict[str, Any], b: dict[str, Any], seed: int = 20251127) -> dict[str, Any]:
    """Paired comparison on the questions both runs share (matched by id)."""
    qa = {q["id"]: q for q in a["questions"]}
    qb = {q["id"]: q for q in b["questions"]}
    shared = [i for i in qa if i in qb]
    out: dict[str, Any] = {"questions": len(shared), "metrics": {}}
    for name in (*SUMMARY_METRICS, *COST_METRICS):
        ids = [i for i in shared if qa[i]["metrics"].get(name) is not None and qb[i]["metrics"].get(name) is not None]
        if ids:
            out["metrics"][name] = M.paired_test(
                [qa[i]["metrics"][name] for i in ids], [qb[i]["metrics"][name] for i in ids], seed=seed
            ).as_dict()
    out["changed_questions"] = {
        name: [i for i in shared if qa[i]["metrics"].get(name) != qb[i]["metrics"].get(name)] for name in out["metrics"]
    }
    out["a"] = {k: a["config"].get(k) for k in ("suite", "mode", "llm_model", "embedding_model", "started_at")}
    out["b"] = {k: b["config"].get(k) for k in ("suite", "mode", "llm_model", "embedding_model", "started_at")}
    return out


def render_comparison_html(cmp: dict[str, Any]) -> str:
    rows = "".join(
        f"<tr><td>{n}</td><td>{_fmt(t['mean_a'])}</td><td>{_fmt(t['mean_b'])}</td><td>{_fmt(t['diff']['mean'])}</td>"
        f"<td>[{_fmt(t['diff']['ci_low'])}, {_fmt(t['diff']['ci_high'])}]</td>"
        f"<td class='{'bad' if t['p_value'] < 0.05 else ''}'>{_fmt(t['p_value'], 4)}</td><td>{t['n']}</td></tr>"
        for n, t in cmp["metrics"].items()
    )
    cfg = html.escape(json.dumps({"a": cmp["a"], "b": cmp["b"]}, indent=1))
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>Sovra eval comparison</title><style>{_CSS}</style>"
        f"</head><body><h1>Comparison: B vs A</h1><pre>{cfg}</pre><p>{cmp['questions']} shared questions. "
        "Paired two-sided sign-flip permutation test; difference B−A with 95% bootstrap CI.</p>"
        f"<table><tr><th>metric</th><th>A</th><th>B</th><th>B−A</th><th>95% CI</th><th>p</th><th>n</th></tr>"
        f"{rows}</table></body></html>"
    )
