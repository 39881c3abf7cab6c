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
    args = ap.parse_args(argv)
    data = Path(args.data)
    qa, cons = data / "cuad-dev-qa", data / "cuad-dev-consistency"
    if not qa.is_dir() and not cons.is_dir():
        print(f"error: no cuad-dev-qa/ or cuad-dev-consistency/ under {data}", file=sys.stderr)
        return 2
    extraction = bench_extraction(qa) if qa.is_dir() else None
    consistency = bench_consistency(cons) if cons.is_dir() else None
    _print(extraction, consistency)
    if args.show_wrong and extraction:
        for w in extraction["wrong"]:
            print(f"  WRONG {w['field']}: gold={w['gold']!r} got={w['got']!r}  ({w['doc'][:60]})")
    if args.json:
        Path(args.json).write_text(
            json.dumps({"extraction": extraction, "consistency": consistency}, indent=2, default=str)
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
