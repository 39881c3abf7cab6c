"""The CI quick eval suite on the embedded defaults: real index, real agent, real local model.

It must fail on an ACL leak; a planted leak and a planted retrieval regression must show.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from sovra.config import Settings
from sovra.evals.dataset import demo_items, load_jsonl
from sovra.evals.runner import EvalConfig, EvalGateError, check_gates, run_items
from sovra.evals.suites import DEMO_DATASET, QUICK_AGENT_ITEMS, run_suite, suite_items


def _retrieval(settings: Settings, **kw: object) -> dict:
    items, path = suite_items("demo")
    return run_items(settings, items, EvalConfig(suite="demo", dataset=str(path), ask_agents=False, **kw))


def test_committed_demo_dataset_matches_the_generated_corpus(module_demo_settings: Settings) -> None:
    assert demo_items(module_demo_settings.paths.corpus) == load_jsonl(DEMO_DATASET)
    items = load_jsonl(DEMO_DATASET)
    kinds = {i.kind for i in items}
    assert {"policy", "contract", "ledger", "consistency", "acl", "acl_probe", "refusal"} <= kinds
    assert all(i.forbidden_docs for i in items if i.user == "alice")


def test_hybrid_retrieval_is_clean_and_finds_the_gold_documents(module_demo_settings: Settings) -> None:
    result = _retrieval(module_demo_settings)
    check_gates(result)
    s = result["summary"]
    assert s["acl_leaks"] == 0 and s["errors"] == 0
    assert s["nDCG@10"]["mean"] >= 0.9 and s["R@10"]["mean"] >= 0.9
    assert s["nDCG@10"]["n"] == 15


def test_single_mode_retrieval_regressions_change_the_metrics(module_demo_settings: Settings) -> None:
    def per_question(result: dict) -> dict[str, tuple]:
        return {
            q["id"]: tuple(q["metrics"].get(m) for m in ("RR", "nDCG@10", "passage_RR", "passage_P@1"))
            for q in result["questions"]
        }

    hybrid = per_question(_retrieval(module_demo_settings))
    dense = per_question(_retrieval(module_demo_settings, mode="dense"))
    sparse = per_question(_retrieval(module_demo_settings, mode="sparse"))
    assert dense != hybrid  # turning the sparse vectors off moves passage ranks
    assert sparse != hybrid


def test_planted_acl_leak_fails_the_gate(module_demo_settings: Settings) -> None:
    result = _retrieval(module_demo_settings, plant_acl_leak=True)
    assert result["summary"]["acl_leaks"] >= 10
    leaked = {q["id"] for q in result["questions"] if q["leaks"]}
    assert "ACL-01-alice" in leaked
    with pytest.raises(EvalGateError):
        check_gates(result)


def test_cli_exits_non_zero_on_a_leak(
    module_demo_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sovra.ui.eval_cli import eval_command

    monkeypatch.setenv("SOVRA_DATA_DIR", str(module_demo_settings.data_dir))
    app = typer.Typer()
    app.command()(eval_command)
    runner = CliRunner()
    ok = runner.invoke(app, ["--suite", "quick", "--retrieval-only", "--out", str(tmp_path / "ok")])
    assert ok.exit_code == 0, ok.output
    assert (tmp_path / "ok" / "report.html").read_text().count("No ACL leak") == 1
    bad = runner.invoke(
        app, ["--suite", "quick", "--retrieval-only", "--plant-acl-leak", "--out", str(tmp_path / "bad")]
    )
    assert bad.exit_code != 0
    assert isinstance(bad.exception, EvalGateError)
    assert json.loads((tmp_path / "bad" / "result.json").read_text())["summary"]["acl_leaks"] > 0
    cmp = runner.invoke(app, ["--compare", str(tmp_path / "ok"), str(tmp_path / "bad"), "--out", str(tmp_path / "c")])
    assert cmp.exit_code == 0, cmp.output
    assert "acl_leak" in json.loads((tmp_path / "c" / "comparison.json").read_text())["metrics"]


@pytest.mark.slow
def test_quick_suite_with_the_agent(module_demo_settings: Settings, tmp_path: Path) -> None:
    """The CI gate: six agent questions plus every retrieval and ACL probe; no leak allowed."""
    result = run_suite(module_demo_settings, "quick", tmp_path)
    check_gates(result)
    asked = [q for q in result["questions"] if q["run_id"]]
    assert {q["id"] for q in asked} == set(QUICK_AGENT_ITEMS)
    assert all(q["metrics"]["latency_s"] > 0 and q["audit"] for q in asked)
    assert result["config"]["embedding_model"] and result["config"]["llm_model"]
    q1 = next(q for q in asked if q["id"] == "Q-001")
    assert q1["metrics"]["must_contain"] == 1.0  # "3 days" from the remote work policy


def test_beir_benchmark_is_ingested_and_scored(module_demo_settings: Settings, tmp_path: Path) -> None:
    from sovra.evals.suites import run_beir

    ds = tmp_path / "tiny"
    (ds / "qrels").mkdir(parents=True)
    docs = [
        ("d1", "Remote work", "Employees may work from home three days per week."),
        ("d2", "Hotels", "The London hotel limit is EUR 250 per night."),
        ("d3", "Gifts", "Gifts above EUR 50 need approval."),
    ]
    (ds / "corpus.jsonl").write_text("".join(json.dumps({"_id": i, "title": t, "text": x}) + "\n" for i, t, x in docs))
    queries = [("q1", "how many home office days"), ("q2", "hotel cost cap London")]
    (ds / "queries.jsonl").write_text("".join(json.dumps({"_id": i, "text": t}) + "\n" for i, t in queries))
    (ds / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\t1\n")
    result = run_beir(module_demo_settings, ds, tmp_path / "out", EvalConfig(suite="full", dataset=str(ds)))
    assert [q["retrieved"][0] for q in result["questions"]] == ["d1", "d2"]
    assert result["summary"]["nDCG@10"]["mean"] == 1.0 and result["config"]["suite"] == "beir:tiny"
