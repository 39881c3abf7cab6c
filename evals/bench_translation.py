"""Translation benchmark (issue 25): the fact checker on real human translations, and, where a served
``translation`` route is configured, the model's translations scored against them.

    python -m sovra.evals.bench_translation [--langs de,es] [--limit N] [--served] [--out results.json]

Set: XQuAD (``evals/datasets/xquad``, CC BY-SA 4.0): 240 English Wikipedia paragraphs and their
professional German and Spanish translations, aligned by id (no French: see that folder's README).

* ``checker`` (no model): each English paragraph against its human translation. A faithful
  translation should come out "preserved" (or "no facts"), so every "changed" is a false alarm of
  the checker, or a translator's liberty ("the 1990s" -> "die 90er"): both are counted as such.
  Then one planted change per paragraph: the first number of the translation that the checker
  compared is altered (its last digit + 1); it is found when the segment's changes name the new
  value.
* ``served`` (``--served``, needs ``SOVRA_ROUTES_FILE`` with a ``translation`` route): the English
  paragraphs translated by the model through ``translate_pages`` (one audited run per language),
  scored with chrF (character 6-grams, beta 2) and BLEU (4-grams, brevity penalty, word and
  punctuation tokens), both corpus-level and implemented here (sacrebleu is not a dependency; the
  figures follow the same definitions but are not digit-for-digit sacrebleu's), plus the checker's
  status counts and its preserved rate over the paragraphs that state facts.
"""

from __future__ import annotations

import argparse
import json
import math
import re
from collections import Counter
from pathlib import Path
from typing import Any

from sovra.tools.translation_check import _NUMBER, _spans, check_segment

XQUAD_DIR = Path(__file__).parent / "datasets" / "xquad"


def load(lang: str, limit: int | None = None) -> dict[str, str]:
    rows = [json.loads(line) for line in (XQUAD_DIR / lang / "corpus.jsonl").read_text(encoding="utf-8").splitlines()]
    return {r["_id"]: r["text"] for r in rows[:limit]}


def plant(text: str) -> tuple[str, str] | None:
    """``text`` with its first number outside dates and amounts changed (last digit + 1), and the
    new number; None when it has none."""
    spans = _spans(text)
    for m in _NUMBER.finditer(text):
        if any(a <= m.start() < b for a, b in spans) or not m.group(0)[-1].isdigit():
            continue
        raw = m.group(0)
        new = raw[:-1] + str((int(raw[-1]) + 1) % 10)
        return text[: m.start()] + new + text[m.end() :], new
    return None


def checker_scores(en: dict[str, str], tr: dict[str, str]) -> dict[str, Any]:
    statuses: Counter[str] = Counter()
    kinds: Counter[str] = Counter()
    planted = found = 0
    for k, src in en.items():
        check = check_segment(src, tr[k])
        statuses[check.status] += 1
        kinds.update(c.kind for c in check.changes)
        changed = plant(tr[k])
        if changed is None:
            continue
        planted += 1
        text, new = changed
        after = check_segment(src, text)
        if any(new in (c.translation or "") for c in after.changes):
            found += 1
    with_facts = len(en) - statuses["no_facts"]
    return {
        "paragraphs": len(en),
        "statuses": dict(statuses),
        "false_alarm_rate": round(statuses["changed"] / max(1, with_facts), 3),
        "false_alarm_kinds": dict(kinds),
        "planted": planted,
        "planted_found": found,
        "planted_recall": round(found / max(1, planted), 3),
    }


# --------------------------------------------------------------------------------- MT metrics


def _ngrams(seq: str | list[str], n: int) -> Counter[Any]:
    return Counter(tuple(seq[i : i + n]) for i in range(len(seq) - n + 1))


def chrf(hyps: list[str], refs: list[str], max_n: int = 6, beta: float = 2.0) -> float:
    """Corpus chrF (Popović 2015): character n-gram F-beta, spaces removed, averaged over n=1..6."""
    scores = []
    for n in range(1, max_n + 1):
        match = hyp_total = ref_total = 0
        for h, r in zip(hyps, refs, strict=True):
            hc, rc = _ngrams(re.sub(r"\s+", "", h), n), _ngrams(re.sub(r"\s+", "", r), n)
            match += sum((hc & rc).values())
            hyp_total += sum(hc.values())
            ref_total += sum(rc.values())
        p, r_ = match / max(1, hyp_total), match / max(1, ref_total)
        scores.append(0.0 if p + r_ == 0 else (1 + beta**2) * p * r_ / (beta**2 * p + r_))
    return round(100 * sum(scores) / len(scores), 2)


def bleu(hyps: list[str], refs: list[str], max_n: int = 4) -> float:
    """Corpus BLEU (Papineni et al. 2002): clipped n-gram precisions, geometric mean, brevity penalty."""

    def tok(s: str) -> list[str]:
        return re.findall(r"\w+|[^\w\s]", s.lower())

    matches, totals, hyp_len, ref_len = [0] * max_n, [0] * max_n, 0, 0
    for h, r in zip(hyps, refs, strict=True):
        ht, rt = tok(h), tok(r)
        hyp_len, ref_len = hyp_len + len(ht), ref_len + len(rt)
        for n in range(1, max_n + 1):
            hc, rc = _ngrams(ht, n), _ngrams(rt, n)
            matches[n - 1] += sum((hc & rc).values())
            totals[n - 1] += sum(hc.values())
    if min(matches) == 0:
        return 0.0
    log_p = sum(math.log(m / t) for m, t in zip(matches, totals, strict=True)) / max_n
    bp = 1.0 if hyp_len > ref_len else math.exp(1 - ref_len / max(1, hyp_len))
    return round(100 * bp * math.exp(log_p), 2)


def served_scores(en: dict[str, str], ref: dict[str, str], lang: str, settings: Any) -> dict[str, Any]:
    from sovra.tools.translate import translate_pages

    ids = list(en)
    pages = {i + 1: en[k] for i, k in enumerate(ids)}
    report = translate_pages(pages, settings, to=lang, source="en", user_id="bench", interface="bench",
                             title=f"xquad-en ({len(ids)} paragraphs)")  # fmt: skip
    by_page: dict[int, list[str]] = {}
    for s in report.segments:
        by_page.setdefault(s.page, []).append(s.translation)
    hyps = ["\n\n".join(by_page.get(i + 1, [])) for i in range(len(ids))]
    refs = [ref[k] for k in ids]
    statuses = Counter(s.check.status for s in report.segments)
    with_facts = len(report.segments) - statuses["no_facts"]
    return {
        "run_id": report.run_id,
        "models": sorted({s.model for s in report.segments}),
        "chrF": chrf(hyps, refs),
        "BLEU": bleu(hyps, refs),
        "statuses": dict(statuses),
        "preserved_rate": round(statuses["preserved"] / max(1, with_facts), 3),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--langs", default="de,es", help="Reference languages (XQuAD has de, es, ro).")
    ap.add_argument("--limit", type=int, default=None, help="First N paragraphs only.")
    ap.add_argument("--served", action="store_true", help="Also translate with the served translation route.")
    ap.add_argument("--out", type=Path, default=None, help="Write the results as JSON here.")
    args = ap.parse_args(argv)
    en = load("en", args.limit)
    results: dict[str, Any] = {"set": "xquad", "paragraphs": len(en), "checker": {}, "served": {}}
    settings = None
    if args.served:
        from sovra.config import Settings

        settings = Settings()
    for lang in args.langs.split(","):
        ref = load(lang, args.limit)
        results["checker"][f"en->{lang}"] = checker_scores(en, ref)
        if settings is not None:
            results["served"][f"en->{lang}"] = served_scores(en, ref, lang, settings)
    text = json.dumps(results, indent=2, ensure_ascii=False)
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
