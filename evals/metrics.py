"""Per-question metrics and the statistics over them.

Retrieval measures come from ``ir-measures`` (pytrec_eval underneath), not hand-written code.
Answer, citation, refusal and leakage measures are small and specific to our ``Answer`` shape.
Aggregates are means with seeded percentile-bootstrap confidence intervals; two runs are compared
per question with a paired sign-flip permutation test (``scipy.stats.permutation_test``).
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

RETRIEVAL_MEASURES = ("R@5", "R@10", "nDCG@10", "RR")
# Passage level (chunks holding a gold quote): only the retrieved chunks are judged, so we report
# only measures of the first relevant rank, which stay exact with partial judgements.
PASSAGE_MEASURES = ("passage_RR", "passage_P@1")

_NUMBER = re.compile(
    r"(?<![\w.])-?\d{1,3}(?:[,\u202f ]\d{3})+(?:\.\d+)?"  # grouped thousands: 93,500.00
    r"|-?\d+(?:\.\d+)?"
)
_STOP = frozenset(
    [
        "a",
        "an",
        "the",
        "of",
        "in",
        "on",
        "to",
        "for",
        "and",
        "or",
        "is",
        "are",
        "was",
        "were",
        "be",
        "by",
        "with",
        "at",
        "as",
        "it",
        "this",
        "that",
    ]
)


def retrieval_scores(qrels: dict[str, dict[str, int]], run: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    """Per-query recall@5/10, nDCG@10 and MRR (``RR``) via ir-measures; queries without judgements are skipped."""
    import ir_measures
    from ir_measures import parse_measure

    measures = [parse_measure(m) for m in RETRIEVAL_MEASURES]
    judged = {q: d for q, d in qrels.items() if any(r > 0 for r in d.values())}
    out: dict[str, dict[str, float]] = {q: {m: 0.0 for m in RETRIEVAL_MEASURES} for q in judged}
    # pytrec_eval drops queries with an empty ranking; they score 0 on every measure (the defaults above).
    ranked = {q: docs for q, docs in run.items() if q in judged and docs}
    if ranked:
        for m in ir_measures.iter_calc(measures, judged, ranked):
            out[m.query_id][str(m.measure)] = float(m.value)
    return out


def passage_scores(qrels: dict[str, dict[str, int]], run: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    """Per-query reciprocal rank and precision@1 of the first answer-bearing chunk."""
    import ir_measures
    from ir_measures import parse_measure

    names = {"RR": "passage_RR", "P@1": "passage_P@1"}
    out: dict[str, dict[str, float]] = {q: {v: 0.0 for v in names.values()} for q in qrels}
    judged = {q: d for q, d in qrels.items() if any(r > 0 for r in d.values())}
    if judged:
        for m in ir_measures.iter_calc([parse_measure(n) for n in names], judged, {q: run[q] for q in judged}):
            out[m.query_id][names[str(m.measure)]] = float(m.value)
    return out


# --- answers -------------------------------------------------------------------------------------


def normalize(text: str) -> str:
    text = text.lower().translate(str.maketrans("", "", string.punctuation.replace("%", "")))
    return " ".join(w for w in text.split() if w not in _STOP)


def exact_match(prediction: str, gold: str) -> float:
    return float(normalize(prediction) == normalize(gold))


def token_f1(prediction: str, gold: str) -> float:
    """SQuAD-style token F1 over normalized words."""
    p, g = normalize(prediction).split(), normalize(gold).split()
    common = sum((Counter(p) & Counter(g)).values())
    if not p or not g or common == 0:
        return 0.0
    precision, recall = common / len(p), common / len(g)
    return 2 * precision * recall / (precision + recall)


def numbers_in(text: str) -> list[float]:
    out = []
    for m in _NUMBER.findall(text):
        try:
            out.append(float(re.sub(r"[,\u202f ]", "", m)))
        except ValueError:
            continue
    return out


def numeric_match(prediction: str, expected: float, rel_tol: float) -> float:
    """1 if some number in the answer is within ``rel_tol`` (relative) of ``expected``."""
    tol = abs(expected) * rel_tol
    return float(any(abs(v - expected) <= tol for v in numbers_in(prediction)))


def contains_all(prediction: str, needles: Sequence[str]) -> float:
    low = prediction.lower()
    return float(all(n.lower() in low for n in needles))


def first_units_hold(prediction: str, needles: Sequence[str]) -> float:
    """Whether the answer's opening holds the asked facts: every needle is in its first n units
    (lines, else sentences), n the number of facts asked. A right fact buried under a ledger line
    or an unrelated quote does not count: an employee reads the first sentence."""
    units = [u for u in prediction.splitlines() if u.strip()]
    # A quoted passage is one unit (an extractive answer's line); free prose is cut into sentences.
    if len(units) <= 1 and not prediction.lstrip().startswith('"'):
        units = [u for u in re.split(r"(?<=[.!?])\s+(?=[A-Z\"\[])", prediction) if u.strip()]
    head = " ".join(" ".join(units[: max(1, len(needles))]).lower().split())
    return float(all(" ".join(n.lower().split()) in head for n in needles))


def leaked_phrases(text: str, phrases: Sequence[str]) -> list[str]:
    low = " ".join(text.lower().split())
    return [p for p in phrases if " ".join(p.lower().split()) in low]


# --- citations -----------------------------------------------------------------------------------

_CITE = re.compile(r"\[(\d{1,3})\]")


def _content_words(text: str) -> set[str]:
    return {w for w in normalize(_CITE.sub(" ", text)).split() if len(w) > 1}


def supports(sentence: str, passage: str, threshold: float = 0.6) -> bool:
    """Lexical support: most content words of the sentence occur in the cited passage.

    A cheap, deterministic stand-in for entailment; the LLM judge (``evals/judge.py``) is the
    semantic check for deployments with a capable model.
    """
    words = _content_words(sentence)
    if not words:
        return True
    return len(words & _content_words(passage)) / len(words) >= threshold


def cited_sentences(text: str) -> list[tuple[str, list[int]]]:
    """Answer lines/sentences with the citation numbers they carry."""
    parts = [p.strip() for p in re.split(r"(?<=[.!?])\s+(?!\[\d)|\n+", text) if p.strip()]
    return [(p, [int(n) for n in _CITE.findall(p)]) for p in parts]


def citation_precision(text: str, quotes: dict[int, str]) -> float | None:
    """Share of (sentence, citation) pairs whose cited passage supports the sentence; None if none."""
    pairs = [(s, n) for s, ns in cited_sentences(text) for n in ns]
    if not pairs:
        return None
    return sum(supports(s, quotes.get(n, "")) for s, n in pairs) / len(pairs)


# --- statistics ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Estimate:
    mean: float
    low: float
    high: float
    n: int

    def as_dict(self) -> dict[str, Any]:
        return {"mean": self.mean, "ci_low": self.low, "ci_high": self.high, "n": self.n}


def bootstrap_mean(values: Sequence[float], *, seed: int, resamples: int = 2000, level: float = 0.95) -> Estimate:
    """Mean with a seeded percentile-bootstrap confidence interval."""
    x = np.asarray([v for v in values if v is not None], dtype=float)
    if x.size == 0:
        return Estimate(float("nan"), float("nan"), float("nan"), 0)
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(resamples, x.size))].mean(axis=1)
    alpha = (1 - level) / 2
    return Estimate(
        float(x.mean()), float(np.quantile(means, alpha)), float(np.quantile(means, 1 - alpha)), int(x.size)
    )


@dataclass(frozen=True)
class PairedTest:
    mean_a: float
    mean_b: float
    diff: Estimate  # b - a with a bootstrap CI
    p_value: float
    n: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "mean_a": self.mean_a,
            "mean_b": self.mean_b,
            "diff": self.diff.as_dict(),
            "p_value": self.p_value,
            "n": self.n,
        }


def paired_test(a: Sequence[float], b: Sequence[float], *, seed: int, resamples: int = 9999) -> PairedTest:
    """Paired two-sided sign-flip permutation test on per-question values (same questions, same order).

    Chosen over Wilcoxon because eval scores are often 0/1 with many ties and zero differences,
    where the permutation test stays exact in spirit and assumes no symmetric distribution.
    """
    from scipy import stats

    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    d = y - x
    diff = bootstrap_mean(d.tolist(), seed=seed)
    if d.size == 0 or np.allclose(d, 0):
        return PairedTest(
            float(x.mean()) if x.size else float("nan"),
            float(y.mean()) if y.size else float("nan"),
            diff,
            1.0,
            int(d.size),
        )
    res = stats.permutation_test(
        (x, y),
        lambda u, v, axis: np.mean(v - u, axis=axis),
        permutation_type="samples",
        n_resamples=resamples,
        alternative="two-sided",
        vectorized=True,
        random_state=np.random.default_rng(seed),
    )
    return PairedTest(float(x.mean()), float(y.mean()), diff, float(res.pvalue), int(d.size))
