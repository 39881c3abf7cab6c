"""LLM-as-judge: a fixed rubric scored by a model through the gateway, with a JSON-schema reply.

Off by default: the bundled 135M model is not a judge. Point ``SOVRA_LLM_BASE_URL`` at a capable
served model (or a separate judge route) and pass ``--judge`` to ``sovra eval``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field

RUBRIC_VERSION = "sovra-judge-v1"
RUBRIC = """You grade one answer of a bank's document assistant against a reference answer.
Score each criterion as an integer:
- correctness (0-2): 2 = states the same facts as the reference; 1 = partly right or incomplete;
  0 = wrong or missing.
- faithfulness (0-2): 2 = every claim is backed by the quoted sources; 1 = minor unsupported detail;
  0 = claims not in the sources.
- refusal_ok (0-1): if the reference says the answer is unavailable to this user or not in the documents,
  1 = the answer declines; otherwise 1 = it answers. 0 in the other cases.
Give a one-sentence reason. Judge only what is written; do not reward length."""


class JudgeVerdict(BaseModel):
    correctness: int = Field(ge=0, le=2)
    faithfulness: int = Field(ge=0, le=2)
    refusal_ok: int = Field(ge=0, le=1)
    reason: str = Field(max_length=300)


@dataclass(frozen=True)
class JudgeScore:
    verdict: JudgeVerdict
    model: str
    prompt_tokens: int | None
    completion_tokens: int | None

    @property
    def score(self) -> float:
        """Normalized to 0..1: the mean of the three criteria scaled by their maxima."""
        v = self.verdict
        return (v.correctness / 2 + v.faithfulness / 2 + v.refusal_ok) / 3

    def as_dict(self) -> dict[str, Any]:
        return {"score": self.score, "model": self.model, **self.verdict.model_dump()}


def judge_messages(question: str, reference: str, answer: str, sources: list[str]) -> list[dict[str, str]]:
    src = "\n".join(f"[{i}] {s[:600]}" for i, s in enumerate(sources, start=1)) or "(none)"
    user = (
        f"Question: {question}\n\nReference answer: {reference}\n\nSources quoted:\n{src}\n\nAnswer to grade:\n{answer}"
    )
    return [{"role": "system", "content": RUBRIC}, {"role": "user", "content": user}]


def judge_answer(gateway: Any, question: str, reference: str, answer: str, sources: list[str]) -> JudgeScore:
    """Grade one answer with ``gateway.complete_json`` (temperature 0, route ``judge``)."""
    messages = judge_messages(question, reference, answer, sources)
    verdict, call = gateway.complete_json(messages, JudgeVerdict, route="judge", max_tokens=200, temperature=0.0)
    return JudgeScore(verdict, call.model, call.prompt_tokens, call.completion_tokens)
