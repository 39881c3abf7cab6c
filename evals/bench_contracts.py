"""Contract intelligence on real contracts: key-term extraction against CUAD gold terms, and the
consistency check on contract / term-sheet pairs.

    sovra bench contracts [--data ../shared/eval-data] [--json out.json]
    python -m sovra.evals.bench_contracts --data ../shared/eval-data

Extraction (``cuad-dev-qa``): every contract is parsed the way ingestion parses it, its fields are
extracted with no model, and each gold term that CUAD's annotators also found verbatim in the text
(``checked_in_text``) is scored: correct, wrong (a different value), not stated, or could not
determine. Consistency (``cuad-dev-consistency``): each pair is compared the way the contracts agent
compares (``agents/contracts.compare_fields``); a changed term must be reported with quotes on both
sides, a consistent pair must get the clean report, and a clean report where a compared term was not
read on both sides is counted (it must stay 0). Seconds per contract pair are reported too.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from sovra.connectors.parsers import parse_file
from sovra.errors import SovraError
from sovra.tools.terms import FieldResult, extract_fields
from sovra.tools.terms.normalize import Duration, parse_duration, same_jurisdiction
from sovra.tools.terms.parties import same_party

GOLD_FIELDS = {  # eval field -> (gold key in terms.jsonl, extracted field)
    "parties": ("parties", "parties"),
    "governing_law": ("governing_law", "governing_law"),
    "agreement_date": ("agreement_date", "agreement_date"),
    "effective_date": ("effective_date", "effective_date"),
    "expiration_date": ("expiration_date", "expiration_date"),
    "renewal_term": ("renewal_term", "renewal_term"),
    "notice_period": ("notice_period_to_terminate_renewal", "notice_period"),
}


def _pages(path: Path) -> dict[int, str]:
    return {p.number: p.text for p in parse_file(path)}


def _dur(text: str) -> Duration | None:
    return parse_duration(text.replace("1 year", "one year")) if text else None


def is_correct(field: str, gold: Any, got: FieldResult) -> bool:
    """Whether an extracted value means the same as CUAD's gold value."""
    if field == "parties":
        names = [str(n[0]) for n in got.value or []]
        roles = {str(n[1]).casefold() for n in got.value or [] if len(n) > 1 and n[1]}

        def covered(g: str) -> bool:
            # CUAD sometimes lists the collective name ("Company and AGI") as a party: it names
            # parties already found by their defined roles.
            words = [w for w in re.split(r"\s+(?:and|&)\s+|;", g.casefold()) if w.strip()]
            return bool(words) and all(w.strip() in roles for w in words)

        return all(any(same_party(g, n) for n in names) or covered(g) for g in gold)
    if field == "governing_law":
        return same_jurisdiction(str(gold), str(got.show or got.value))
    if field in ("agreement_date", "effective_date", "expiration_date"):
        return str(got.value) == str(gold)
    gd, vd = _dur(str(gold)), _dur(str(got.value))
    return gd is not None and vd is not None and gd.key == vd.key


def bench_extraction(folder: Path) -> dict[str, Any]:
    rows = [json.loads(line) for line in (folder / "terms.jsonl").read_text().splitlines() if line.strip()]
    per: dict[str, Counter[str]] = defaultdict(Counter)
    wrong: list[dict[str, Any]] = []
    seconds: list[float] = []
    for row in rows:
        t0 = time.perf_counter()
        try:
            fields = extract_fields(_pages(folder / "docs" / row["doc"]))
        except SovraError as exc:
            print(f"  {row['doc']}: {exc}", file=sys.stderr)
            continue
        seconds.append(time.perf_counter() - t0)
        for name in row.get("checked_in_text", []):
            gold_key, ours = GOLD_FIELDS[name]
            gold, got = row.get(gold_key), fields[ours]
            if gold in (None, "", []):
                continue
            if got.state != "found":
                per[name][got.state] += 1
            elif is_correct(name, gold, got):
                per[name]["correct"] += 1
            else:
                per[name]["wrong"] += 1
                wrong.append({"doc": row["doc"], "field": name, "gold": gold, "got": got.show})
    total = Counter[str]()
    for c in per.values():
        total.update(c)
    n = sum(total.values())
    return {
        "contracts": len(rows),
        "terms": n,
        "per_field": {k: dict(v) for k, v in sorted(per.items())},
        "correct_pct": round(100 * total["correct"] / n, 1) if n else 0.0,
        "wrong_pct": round(100 * total["wrong"] / n, 1) if n else 0.0,
        "seconds_per_contract": round(statistics.median(seconds), 3) if seconds else None,
        "wrong": wrong,
    }


def bench_consistency(folder: Path) -> dict[str, Any]:
    from sovra.agents.contracts import compare_fields

    pairs = [json.loads(line) for line in (folder / "pairs.jsonl").read_text().splitlines() if line.strip()]
    out: dict[str, Any] = {"pairs": len(pairs), "changed_found": 0, "changed_total": 0, "false_alarms": 0,
                           "clean_correct": 0, "consistent_total": 0, "unclear": 0, "clean_but_unread": 0,
                           "details": []}  # fmt: skip
    seconds: list[float] = []
    for pair in pairs:
        t0 = time.perf_counter()
        contract = extract_fields(_pages(folder / pair["contract"]))
        sheet = extract_fields(_pages(folder / pair["term_sheet"]))
        report = compare_fields(contract, sheet)
        seconds.append(time.perf_counter() - t0)
        differ = [c.name for c in report.differ]
        unclear = [c.name for c in report.unchecked]
        clean = report.clean
        if clean and any(c.left.state != "found" or c.right.state != "found" for c in report.compared):
            out["clean_but_unread"] += 1
        detail = {"id": pair["id"], "changed": pair.get("changed_field"), "differ": differ, "unchecked": unclear}
        if pair["consistent"]:
            out["consistent_total"] += 1
            out["clean_correct"] += int(clean)
            out["false_alarms"] += int(bool(differ))
            out["unclear"] += int(not clean and not differ)
        else:
            out["changed_total"] += 1
            hit = next((c for c in report.differ if c.name == pair["changed_field"]), None)
            cited = hit is not None and hit.left.evidence is not None and hit.right.evidence is not None
            out["changed_found"] += int(cited)
            out["false_alarms"] += len([d for d in differ if d != pair["changed_field"]])
        out["details"].append(detail)
    out["seconds_per_pair"] = round(statistics.median(seconds), 3) if seconds else None
    out["max_seconds_per_pair"] = round(max(seconds), 3) if seconds else None
    return out


def bench_agent(folder: Path, work: Path) -> dict[str, Any]:
    """The contracts agent end to end: the pairs ingested as a user would (no sidecars, ``--acl``),
    each pair's question asked; seconds per question, changed values named, clean reports."""
    from sovra.agents import get_agent
    from sovra.config import Settings
    from sovra.runtime import Runtime
    from sovra.ui.commands import run_ingest

    docs = work / "docs"
    docs.mkdir(parents=True, exist_ok=True)
    for sub in ("contracts", "term_sheets"):
        for f in (folder / sub).iterdir():
            (docs / f.name).write_bytes(f.read_bytes())
    data = work / "data"
    data.mkdir(exist_ok=True)
    (data / "users.json").write_text(json.dumps({"eval": {"name": "Eval", "groups": ["legal"]}}))
    settings = Settings(data_dir=data)
    t0 = time.perf_counter()
    run_ingest(settings, path=docs, name="contracts", default_acl=["group:legal"])
    ingest_s = time.perf_counter() - t0
    pairs = [json.loads(line) for line in (folder / "pairs.jsonl").read_text().splitlines() if line.strip()]
    out: dict[str, Any] = {"pairs": len(pairs), "ingest_seconds": round(ingest_s, 1), "changed_named": 0,
                           "changed_total": 0, "clean_correct": 0, "consistent_total": 0,
                           "false_clean": 0, "false_alarms": 0, "answers": []}  # fmt: skip
    seconds: list[float] = []
    rt = Runtime(settings)
    try:
        for pair in pairs:
            t0 = time.perf_counter()
            a = rt.ask(get_agent("contracts"), pair["question"], "eval")
            seconds.append(time.perf_counter() - t0)
            clean = "No inconsistency found" in a.text
            if pair["consistent"]:
                out["consistent_total"] += 1
                out["clean_correct"] += int(clean)
                out["false_alarms"] += int(bool(re.search(r"\d+ inconsistenc(?:y|ies) found", a.text)))
            else:
                out["changed_total"] += 1
                out["false_clean"] += int(clean)
                values = [str(pair["contract_value"]), str(pair["sheet_value"])]
                named = all(_mentions(a.text, v) for v in values) and len(a.citations) >= 2
                out["changed_named"] += int(named)
            out["answers"].append({"id": pair["id"], "status": a.status, "text": a.text})
    finally:
        rt.close()
    out["seconds_per_pair"] = round(statistics.median(seconds), 2)
    out["max_seconds_per_pair"] = round(max(seconds), 2)
    return out


def _mentions(text: str, value: str) -> bool:
    """'5 years' / '2019-11-12' / 'New York' as the agent writes them."""
    d = _dur(value)
    if d is not None and re.fullmatch(r"\d+ \w+", value):
        return str(d) in text or f"{d.key[0]} {d.key[1]}" in text
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        import datetime as dt

        day = dt.date.fromisoformat(value)
        return f"{day.strftime('%B')} {day.day}, {day.year}" in text
    return value.casefold() in text.casefold()


def _print(extraction: dict[str, Any] | None, consistency: dict[str, Any] | None) -> None:
    if extraction:
        print(f"Extraction: {extraction['contracts']} contracts, {extraction['terms']} gold terms")
        print(f"{'field':<18}{'correct':>8}{'wrong':>7}{'not stated':>12}{'undetermined':>14}")
        for name, c in extraction["per_field"].items():
            counts = [c.get(k, 0) for k in ("correct", "wrong", "not_stated", "undetermined")]
            print(f"{name:<18}{counts[0]:>8}{counts[1]:>7}{counts[2]:>12}{counts[3]:>14}")
        print(f"correct {extraction['correct_pct']}%  wrong {extraction['wrong_pct']}%  "
              f"median {extraction['seconds_per_contract']} s per contract")  # fmt: skip
    if consistency:
        c = consistency
        print(f"Consistency: {c['pairs']} pairs; changed terms found with quotes on both sides "
              f"{c['changed_found']}/{c['changed_total']}; clean reports on consistent pairs "
              f"{c['clean_correct']}/{c['consistent_total']}; false alarms {c['false_alarms']}; "
              f"'could not confirm' {c['unclear']}; clean reports with an unread term {c['clean_but_unread']}; "
              f"median {c['seconds_per_pair']} s per pair (max {c['max_seconds_per_pair']})")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = os.environ.get("SOVRA_EVAL_DATA") or str(
        Path(__file__).resolve().parents[1].parent / "shared" / "eval-data"
    )
    ap.add_argument("--data", default=default, help="folder with cuad-dev-qa/ and cuad-dev-consistency/")
    ap.add_argument("--json", help="write the figures (and every wrong value) to this file")
    ap.add_argument("--show-wrong", action="store_true")
    ap.add_argument("--agent", action="store_true", help="also run the contracts agent end to end on the pairs")
    args = ap.parse_args(argv)
    data = Path(args.data)
    qa, cons = data / "cuad-dev-qa", data / "cuad-dev-consistency"
    if not qa.is_dir() and not cons.is_dir():
        print(f"error: no cuad-dev-qa/ or cuad-dev-consistency/ under {data}", file=sys.stderr)
        return 2
    extraction = bench_extraction(qa) if qa.is_dir() else None
    consistency = bench_consistency(cons) if cons.is_dir() else None
    _print(extraction, consistency)
    agent = None
    if args.agent and cons.is_dir():
        import tempfile

        with tempfile.TemporaryDirectory() as work:
            agent = bench_agent(cons, Path(work))
        print(f"Agent: ingest {agent['ingest_seconds']} s; changed terms named with both values and citations "
              f"{agent['changed_named']}/{agent['changed_total']}; clean reports on consistent pairs "
              f"{agent['clean_correct']}/{agent['consistent_total']}; false alarms {agent['false_alarms']}; "
              f"all-clear on a changed pair "
              f"{agent['false_clean']}; median {agent['seconds_per_pair']} s per pair "
              f"(max {agent['max_seconds_per_pair']})")  # fmt: skip
    if args.show_wrong and extraction:
        for w in extraction["wrong"]:
            print(f"  WRONG {w['field']}: gold={w['gold']!r} got={w['got']!r}  ({w['doc'][:60]})")
    if args.json:
        figures = {"extraction": extraction, "consistency": consistency, "agent": agent}
        Path(args.json).write_text(json.dumps(figures, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
