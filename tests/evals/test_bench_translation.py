"""The translation benchmark: the checker on XQuAD's human translations (false alarms counted,
planted changes found), chrF/BLEU, and the served leg against the fake vLLM over HTTP."""

from __future__ import annotations

from pathlib import Path

from fakes.vllm_server import FakeVLLM, Reply

from sovra.config import Settings
from sovra.evals.bench_translation import bleu, checker_scores, chrf, load, main, plant, served_scores


def test_metrics_and_planting() -> None:
    ref = ["Die Verteidigung gab nur 308 Punkte ab."]
    assert chrf(ref, ref) == 100.0 and bleu(ref, ref) == 100.0
    assert 0 < chrf(["Die Abwehr gab 308 Punkte ab."], ref) < 100 and bleu(["völlig anders"], ref) == 0.0
    assert plant("Am 15. März 2024 gab sie 308 Punkte ab.") == ("Am 15. März 2024 gab sie 309 Punkte ab.", "309")
    assert plant("keine Zahl") is None


def test_checker_on_human_translations_finds_planted_changes() -> None:
    scores = checker_scores(load("en", 20), load("de", 20))
    assert scores["paragraphs"] == 20 and scores["planted"] >= 10
    assert scores["planted_recall"] >= 0.9 and scores["false_alarm_rate"] <= 0.4
    assert main(["--langs", "es", "--limit", "3"]) == 0


def test_served_leg_scores_the_model_translations(tmp_path: Path) -> None:
    en, de = load("en", 3), load("de", 3)
    fake = FakeVLLM()
    answer = dict(zip(en.values(), de.values(), strict=True))
    fake.responder = lambda body: Reply(content=answer[body["messages"][1]["content"]])  # answers the reference
    try:
        routes = tmp_path / "routes.toml"
        routes.write_text(f'[routes.chat]\nmodel = "local"\n[routes.translation]\nmodel = "{fake.base_model}"\n'
                          f'base_url = "{fake.base_url}"\n')  # fmt: skip
        settings = Settings(data_dir=tmp_path / "data", routes_file=routes)  # type: ignore[call-arg]
        scores = served_scores(en, de, "de", settings)
    finally:
        fake.close()
    assert scores["chrF"] == 100.0 and scores["BLEU"] == 100.0 and scores["models"] == [fake.base_model]
    assert len(fake.chat_bodies()) == 3 and scores["run_id"]
