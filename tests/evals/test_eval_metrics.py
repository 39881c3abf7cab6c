"""Eval metrics, statistics, dataset loaders and the LLM judge (against the OpenAI-shaped fake)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fakes.openai_server import FakeOpenAI

from sovra.config import Settings
from sovra.errors import InputError
from sovra.evals import metrics as M
from sovra.evals.dataset import EvalItem, load_beir, load_jsonl, save_jsonl
from sovra.evals.judge import judge_answer
from sovra.evals.report import compare, render_comparison_html, render_html
from sovra.evals.runner import EvalGateError, check_gates


def test_retrieval_scores_use_ir_measures_values() -> None:
    qrels = {"q1": {"a": 1}, "q2": {"b": 1, "c": 1}, "q3": {"z": 1}}
    run = {"q1": {"x": 3.0, "a": 2.0}, "q2": {"b": 2.0, "c": 1.0}, "q3": {}}
    s = M.retrieval_scores(qrels, run)
    assert s["q1"]["RR"] == pytest.approx(0.5)
    assert s["q1"]["nDCG@10"] == pytest.approx(1 / 1.5849625, rel=1e-6)  # 1/log2(3)
    assert s["q2"]["R@5"] == 1.0 and s["q2"]["nDCG@10"] == pytest.approx(1.0)
    assert s["q3"] == {"R@5": 0.0, "R@10": 0.0, "nDCG@10": 0.0, "RR": 0.0}  # empty ranking scores zero


def test_answer_metrics() -> None:
    assert M.token_f1("up to 3 days per week", "Up to 3 days per week.") == 1.0
    assert 0 < M.token_f1("3 days", "Up to 3 days per week.") < 1
    assert M.token_f1("", "x") == 0.0
    assert M.exact_match("EUR 250 per night", "EUR 250 per night.") == 1.0
    assert M.numeric_match("Total EUR 93,500.00 in 11 payments", 93500.0, 0.005) == 1.0
    assert M.numeric_match("Total EUR 93,000.00", 93500.0, 0.001) == 0.0
    assert M.contains_all("Within 72 Hours.", ["72 hours"]) == 1.0
    assert M.leaked_phrases("the CET1  floor of 13.2% applies", ["CET1 floor of 13.2%", "x9"]) == [
        "CET1 floor of 13.2%"
    ]


def test_citation_precision_checks_each_cited_sentence() -> None:
    quotes = {1: "Employees may work remotely for up to 3 days per week.", 2: "Hotels in London: EUR 250."}
    good = '"Employees may work remotely for up to 3 days per week." [1]'
    assert M.citation_precision(good, quotes) == 1.0
    mixed = good + "\nThe hotel limit in Paris is EUR 900 per night for executives. [1]"
    assert M.citation_precision(mixed, quotes) == 0.5
    assert M.citation_precision("no citations here", quotes) is None


def test_bootstrap_is_seeded_and_brackets_the_mean() -> None:
    values = [0, 1, 1, 0, 1, 1, 1, 0, 1, 1]
    a, b = M.bootstrap_mean(values, seed=7), M.bootstrap_mean(values, seed=7)
    assert a == b and a.low <= a.mean == 0.7 <= a.high and a.n == 10
    assert M.bootstrap_mean([], seed=1).n == 0


def test_paired_test_separates_real_differences_from_noise() -> None:
    a = [0.0] * 20
    assert M.paired_test(a, [1.0] * 20, seed=1).p_value < 0.001
    same = M.paired_test([0.5, 1.0, 0.0], [0.5, 1.0, 0.0], seed=1)
    assert same.p_value == 1.0 and same.diff.mean == 0.0
    noisy = M.paired_test([1, 0, 1, 0, 1, 0], [0, 1, 1, 0, 0, 1], seed=1)
    assert noisy.p_value > 0.5


def test_jsonl_round_trip_and_errors(tmp_path: Path) -> None:
    items = [
        EvalItem(id="a", user="alice", question="q?", expected_value=3.0),
        EvalItem(id="b", user="bob", question="r"),
    ]
    path = tmp_path / "d.jsonl"
    save_jsonl(items, path)
    assert load_jsonl(path) == items
    path.write_text(path.read_text() + '{"id": "a", "user": "x", "question": "dup"}\n')
    with pytest.raises(InputError, match="duplicate"):
        load_jsonl(path)
    path.write_text('{"id": "c"}\n')
    with pytest.raises(InputError, match="not a valid eval item"):
        load_jsonl(path)


def test_beir_loader_on_a_tiny_fixture(tmp_path: Path) -> None:
    ds_dir = tmp_path / "tiny"
    (ds_dir / "qrels").mkdir(parents=True)
    docs = [{"_id": "d1", "title": "Remote work", "text": "Three days at home."}, {"_id": "d2", "text": "Hotels."}]
    (ds_dir / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    (ds_dir / "queries.jsonl").write_text('{"_id": "q1", "text": "home days"}\n{"_id": "q2", "text": "unjudged"}\n')
    (ds_dir / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t2\nq1\td2\t0\n")
    ds = load_beir(ds_dir)
    assert ds.corpus["d2"] == {"title": "", "text": "Hotels."}
    assert ds.qrels == {"q1": {"d1": 2, "d2": 0}}
    [item] = ds.items()
    assert item.agent is None and [(e.doc, e.relevance) for e in item.evidence] == [("d1", 2)]
    (ds_dir / "qrels" / "test.tsv").unlink()
    with pytest.raises(InputError, match="qrels"):
        load_beir(ds_dir)


def _result(leak: bool, values: list[float]) -> dict:
    qs = [
        {
            "id": f"q{i}",
            "user": "alice",
            "kind": "policy",
            "question": "?",
            "expected": "x",
            "retrieved": [],
            "metrics": {"RR": v, "acl_leak": float(leak and i == 0)},
            "leaks": ["search returned x"] if leak and i == 0 else [],
            "citations": [],
            "audit": [],
            "answer": "a",
            "status": "extracted",
            "run_id": "r",
            "error": None,
        }
        for i, v in enumerate(values)
    ]
    from sovra.evals.runner import QuestionResult, summarize

    summary = summarize(
        [QuestionResult(**{k: q[k] for k in QuestionResult.__dataclass_fields__ if k in q}) for q in qs], 1
    )
    return {"config": {"suite": "t", "mode": "hybrid"}, "seconds": 1.0, "summary": summary, "questions": qs}


def test_gate_fails_on_any_leak_and_reports_render() -> None:
    clean, leaky = _result(False, [1.0, 0.5]), _result(True, [1.0, 0.5])
    check_gates(clean)
    with pytest.raises(EvalGateError, match="ACL leak in 1"):
        check_gates(leaky)
    assert "ACL LEAKS: 1" in render_html(leaky) and "No ACL leak" in render_html(clean)
    cmp = compare(clean, _result(False, [0.0, 0.5]))
    assert cmp["metrics"]["RR"]["mean_b"] == 0.25 and cmp["changed_questions"]["RR"] == ["q0"]
    assert "permutation" in render_comparison_html(cmp)


def test_judge_through_the_gateway_against_the_fake(tmp_path: Path) -> None:
    from sovra.gateway import ModelGateway

    verdict = {"correctness": 2, "faithfulness": 1, "refusal_ok": 1, "reason": "Same facts; one detail unsupported."}
    fake = FakeOpenAI([(200, "not json"), (200, json.dumps(verdict))])
    try:
        gw = ModelGateway(Settings(data_dir=tmp_path, llm_base_url=fake.base_url, llm_model="judge-model"))
        score = judge_answer(gw, "How many days?", "Up to 3 days.", "3 days [1]", ["up to 3 days per week"])
    finally:
        fake.close()
    assert score.verdict.correctness == 2 and score.model == "judge-model"
    assert score.score == pytest.approx((1 + 0.5 + 1) / 3)
    first = fake.requests[0]
    assert first["temperature"] == 0.0 and first["response_format"]["type"] == "json_schema"
    assert "You grade one answer" in first["messages"][0]["content"]
    assert "Up to 3 days." in first["messages"][1]["content"]
    assert len(fake.requests) == 2  # the invalid reply was retried once with the error
