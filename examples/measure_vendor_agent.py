"""Ten vendor questions on the model your settings name (the bundled one by default): five the notes
answer (the expected fact, cited) and five they do not (not found). Prints one line per question and
the totals; exits 1 unless every answer is right. See docs/sdk.md, "How well it answers".
``--supervisor``: the same questions through the tutorial's supervisor over the built-in policy agent
and the vendor agent ("Composing"), the model choosing whom to ask."""

import json
import statistics
import sys
import time
from pathlib import Path

from vendor_agent import agent as vendors  # this folder is on sys.path when run as a script
from vendor_agent import main

from sovra.agents import get_agent
from sovra.agents.sdk import supervisor
from sovra.runtime import Runtime

QUESTIONS = json.loads((Path(__file__).parent / "vendor_questions.json").read_text())


def measure(runtime: Runtime, user: str = "bob", agent=vendors) -> dict:
    """``agent``: who answers (the notes are ingested first in any case, as the tutorial does)."""
    rows = []
    for q in QUESTIONS:
        started = time.perf_counter()
        out = main(q["question"], user, runtime, agent)
        seconds = time.perf_counter() - started
        answer = runtime.runs.get(runtime.services.audit.last_run_id())
        cited = [line for line in out.splitlines() if line.startswith("[")]
        if q["expected"]:
            right = q["expected"].lower() in out.lower() and any(q["source"] in c for c in cited)
        else:
            right = answer.status == "not_found" and not cited
        rows.append({**q, "status": answer.status, "right": right, "seconds": round(seconds, 2)})
        print(f"{'ok ' if right else 'BAD'} {seconds:5.1f}s {answer.status:10} {q['question']}", flush=True)
    answerable = [r for r in rows if r["expected"]]
    return {
        "cited_answers": sum(r["right"] for r in answerable),
        "answerable": len(answerable),
        "not_found": sum(r["right"] for r in rows if not r["expected"]),
        "unanswerable": len(rows) - len(answerable),
        "median_seconds": statistics.median(r["seconds"] for r in rows),
        "rows": rows,
    }


if __name__ == "__main__":  # python examples/measure_vendor_agent.py [--supervisor] [user]
    args = sys.argv[1:]
    who = vendors
    if "--supervisor" in args:  # docs/sdk.md, "Composing": the model picks the policy and/or vendor agent
        args.remove("--supervisor")
        who = supervisor("front", [get_agent("policy"), vendors])
    result = measure(Runtime(), *args[:1], agent=who)
    print(
        f"correct cited answers {result['cited_answers']}/{result['answerable']}, correct not found "
        f"{result['not_found']}/{result['unanswerable']}, median {result['median_seconds']:.1f} s per answer"
    )
    sys.exit(0 if result["cited_answers"] + result["not_found"] == len(QUESTIONS) else 1)
