"""Time to first visible answer in the chat, measured in a real browser.

    python -m sovra.evals.bench_chat [--modes bundled,served] [--questions 12] [--out chat-latency.json]

`sovra ui` over a fresh demo bank (built into a temporary directory), driven by Playwright in
Debian's headless Chromium through the browser-test harness (``tests/browser_harness.py``: needs
the source checkout). Each question of ``evals/datasets/answers.jsonl`` is asked by its user in a
new conversation, as a person would: typed into the chat box and sent with Enter. The clock starts
at Enter and stops when the browser shows

- ``ack``: the first sign of work (the "Working…" status in the assistant's message);
- ``first_text``: the first visible text of the answer (the first streamed token, or the whole
  answer when the agent does not stream);
- ``done``: the answer with its citation chips and the feedback widget (the run is over).

The page is polled every 25 ms, so figures carry that much resolution. Modes:

- ``bundled``: the defaults, no model server configured: the bundled llama.cpp model plans, the
  answer is extracted from the sources. The first question includes starting that model.
- ``served``: an OpenAI-compatible server on 127.0.0.1 (the vLLM fake from ``tests/fakes``, in a
  child process) that answers at once: what remains is Sovra's own time (retrieval, audit, checks,
  drawing the page). A real model's generation time adds to it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
TESTS = REPO / "tests"
DATASET = Path(__file__).with_name("datasets") / "answers.jsonl"
POLL_MS = 25
_FAKE = (
    "import sys; sys.path.insert(0, sys.argv[1])\n"
    "from fakes.vllm_server import FakeVLLM\n"
    "f = FakeVLLM(); print(f.base_url, f.base_model, flush=True); sys.stdin.read(); f.close()\n"
)

# The assistant's message is the last chat message; its answer is markdown outside the status box.
_ACK = """(n) => { const m = document.querySelectorAll('[data-testid=stChatMessage]');
  return m.length >= n && !!m[n - 1].querySelector('[data-testid=stExpander]'); }"""
_FIRST_TEXT = """(n) => { const m = document.querySelectorAll('[data-testid=stChatMessage]');
  if (m.length < n) return false;
  return [...m[n - 1].querySelectorAll('[data-testid=stMarkdown]')]
    .some(e => !e.closest('[data-testid=stExpander]') && e.innerText.trim().length > 0); }"""
_EMPTY = """() => document.querySelectorAll('[data-testid=stChatMessage]').length === 0"""
_DONE = """(n) => { const m = document.querySelectorAll('[data-testid=stChatMessage]');
  return m.length >= n && !!m[n - 1].querySelector('[data-testid=stFeedback], [data-testid=stAlert]'); }"""


def _questions(limit: int) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in DATASET.read_text().splitlines() if line.strip()]
    return rows[:limit]


def _demo_bank(root: Path) -> Path:
    from sovra.config import Settings
    from sovra.evals.demo_corpus import AS_OF
    from sovra.ui.commands import setup_demo

    data = root / "data"
    report = setup_demo(Settings(data_dir=data, as_of=AS_OF))
    if report.failed:
        raise SystemExit(f"the demo bank did not ingest: {report.failed}")
    return data


def _copy(data: Path, dest: Path) -> Path:
    """A private copy for one server (the embedded index admits one process at a time)."""
    shutil.copytree(data, dest, ignore=shutil.ignore_patterns("logs", "*.lock"))
    (dest / "sources.json").write_text((dest / "sources.json").read_text().replace(str(data), str(dest)))
    return dest


def _measure(page: Any, question: str, timeout_ms: int) -> dict[str, float]:
    from browser_harness import QUESTION_BOX, idle

    box = page.get_by_placeholder(QUESTION_BOX)
    box.wait_for(timeout=60_000)
    box.fill(question)
    t0 = time.perf_counter()
    box.press("Enter")
    out: dict[str, float] = {}
    for name, js in (("ack", _ACK), ("first_text", _FIRST_TEXT), ("done", _DONE)):
        page.wait_for_function(js, arg=2, polling=POLL_MS, timeout=timeout_ms)
        out[name] = round(time.perf_counter() - t0, 3)
    out["cited"] = float(page.get_by_role("button", name="[1] ", exact=False).count() > 0)
    idle(page)
    return out


def _run_mode(mode: str, data: Path, work: Path, questions: list[dict[str, Any]], timeout_ms: int) -> list[dict]:
    from browser_harness import chat_server, chromium, idle, sign_in

    from sovra.evals.demo_corpus import AS_OF

    env = {"SOVRA_AS_OF": str(AS_OF)}
    fake = None
    if mode == "served":
        fake = subprocess.Popen(
            [sys.executable, "-c", _FAKE, str(TESTS)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert fake.stdout is not None
        base_url, model = fake.stdout.readline().split()
        env |= {"SOVRA_LLM_BASE_URL": base_url, "SOVRA_LLM_MODEL": model}
    results: list[dict[str, Any]] = []
    try:
        with chat_server(_copy(data, work / f"data-{mode}"), work, env) as url, chromium() as browser:
            by_user: dict[str, Any] = {}
            for q in questions:
                page = by_user.get(q["user"])
                if page is None:
                    page = by_user[q["user"]] = browser.new_page(viewport={"width": 1400, "height": 1000})
                    sign_in(page, url, q["user"])
                else:  # a new conversation: the measured message is the second on the page
                    page.get_by_role("button", name="New conversation").click()
                    page.wait_for_function(_EMPTY, polling=POLL_MS, timeout=60_000)
                    idle(page)
                r = _measure(page, q["question"], timeout_ms)
                results.append({"mode": mode, "id": q["id"], "user": q["user"], **r})
                shown = "  ".join(f"{k} {v:.2f}" for k, v in r.items())
                print(f"{mode:8} {q['id']} {q['user']:6} {shown}", flush=True)
    finally:
        if fake is not None:
            assert fake.stdin is not None
            fake.stdin.close()
            fake.wait(timeout=30)
    return results


def _summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {"questions": len(rows), "first_question": rows[0] if rows else None}
    rest = rows[1:] or rows
    for key in ("ack", "first_text", "done"):
        values = sorted(r[key] for r in rest)
        if values:
            p95 = values[min(len(values) - 1, round(0.95 * (len(values) - 1)))]
            out[key] = {"median": round(statistics.median(values), 2), "p95": p95, "max": values[-1]}
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--modes", default="bundled,served", help="comma-separated: bundled, served")
    parser.add_argument("--questions", type=int, default=12)
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per answer")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    if not (TESTS / "browser_harness.py").is_file():
        raise SystemExit(f"needs the source checkout: {TESTS}/browser_harness.py not found")
    sys.path.insert(0, str(TESTS))
    from browser_harness import CHROMIUM

    if not Path(CHROMIUM).is_file():
        raise SystemExit("needs Debian's chromium (apt-get install chromium)")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    questions = _questions(args.questions)
    report: dict[str, Any] = {"poll_ms": POLL_MS, "load_before": os.getloadavg(), "modes": {}}
    with tempfile.TemporaryDirectory(prefix="sovra-bench-chat-") as tmp:
        work = Path(tmp)
        t = time.perf_counter()
        data = _demo_bank(work)
        print(f"demo bank built in {time.perf_counter() - t:.0f} s", flush=True)
        for mode in [m.strip() for m in args.modes.split(",") if m.strip()]:
            rows = _run_mode(mode, data, work, questions, int(args.timeout * 1000))
            report["modes"][mode] = {"summary": _summary(rows), "rows": rows}
    report["load_after"] = os.getloadavg()
    for mode, r in report["modes"].items():
        s = r["summary"]
        first = s["first_question"] or {}
        print(
            f"{mode}: first question (cold) first_text {first.get('first_text')} s, done {first.get('done')} s; "
            + "; ".join(f"{k} median {s[k]['median']} s p95 {s[k]['p95']} s" for k in ("ack", "first_text", "done"))
        )
    if args.out:
        args.out.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
