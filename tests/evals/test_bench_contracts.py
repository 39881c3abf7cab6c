"""`sovra bench contracts` on a two-contract slice shaped like the CUAD dev sets: the figures it prints
are computed from real extraction and comparison, and a wrong value is counted as wrong."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from sovra.evals.bench_contracts import bench_consistency, bench_extraction, main

CUAD = Path(__file__).resolve().parents[1] / "fixtures" / "cuad"
WATERNOW = "WaterNowInc_20191120_10-Q_EX-10.12_11900227_EX-10.12_Distributor_Agreement"
MARTIN = "MARTINMIDSTREAMPARTNERSLP_01_23_2004-EX-10.3-TRANSPORTATION_SERVICES_AGREEMENT"
GOLD = {
    WATERNOW: {"parties": ["WATER NOW, INC.", "Hydraspin USA, Inc.", "BESTEV MANAGEMENT, LLC"],
               "governing_law": "Texas", "renewal_term": "5 years", "notice_period_to_terminate_renewal": "120 days",
               "agreement_date": "2019-11-12"},
    MARTIN: {"parties": ["Martin Operating Partnership L.P.", "Midstream Fuel Service LLC"], "governing_law": "Texas",
             "renewal_term": "1 year", "notice_period_to_terminate_renewal": "30 days", "agreement_date": "2003-12-23"},
}  # fmt: skip
CHECKED = ["parties", "governing_law", "renewal_term", "notice_period", "agreement_date"]


def _data(root: Path, wrong_law: bool = False) -> Path:
    qa, cons = root / "cuad-dev-qa", root / "cuad-dev-consistency"
    for d in (qa / "docs", cons / "contracts", cons / "term_sheets"):
        d.mkdir(parents=True)
    rows, pairs = [], []
    for stem, gold in GOLD.items():
        shutil.copy(CUAD / f"{stem}.txt", qa / "docs" / f"{stem}.txt")
        shutil.copy(CUAD / f"{stem}.txt", cons / "contracts" / f"{stem}.txt")
        shutil.copy(CUAD / f"{stem}.term-sheet.md", cons / "term_sheets" / f"{stem}.term-sheet.md")
        law = "Delaware" if wrong_law and stem == MARTIN else gold["governing_law"]
        rows.append({"doc": f"{stem}.txt", **gold, "governing_law": law, "checked_in_text": CHECKED})
        changed = stem == WATERNOW
        pairs.append(
            {
                "id": stem[:10],
                "question": "Check it",
                "consistent": not changed,
                "changed_field": "renewal_term" if changed else None,
                "contract": f"contracts/{stem}.txt",
                "term_sheet": f"term_sheets/{stem}.term-sheet.md",
            }
        )
    (qa / "terms.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    (cons / "pairs.jsonl").write_text("\n".join(json.dumps(p) for p in pairs))
    return root


def test_extraction_figures_per_field_and_a_wrong_value_counts_as_wrong(tmp_path):
    right = bench_extraction(_data(tmp_path / "a") / "cuad-dev-qa")
    assert right["terms"] == 10 and right["correct_pct"] == 100.0, right["wrong"]
    bad = bench_extraction(_data(tmp_path / "b", wrong_law=True) / "cuad-dev-qa")
    assert bad["per_field"]["governing_law"] == {"correct": 1, "wrong": 1}
    assert bad["wrong"][0]["gold"] == "Delaware" and bad["wrong"][0]["got"].startswith("Texas")


def test_consistency_figures_and_the_command(tmp_path, capsys):
    data = _data(tmp_path)
    res = bench_consistency(data / "cuad-dev-consistency")
    assert (res["changed_found"], res["changed_total"]) == (1, 1)
    assert (res["clean_correct"], res["consistent_total"], res["false_alarms"]) == (1, 1, 0)
    assert res["clean_but_unread"] == 0
    assert main(["--data", str(data), "--json", str(tmp_path / "out.json")]) == 0
    printed = capsys.readouterr().out
    assert "correct 100.0%" in printed and "changed terms found with quotes on both sides 1/1" in printed
    assert json.loads((tmp_path / "out.json").read_text())["consistency"]["pairs"] == 2
