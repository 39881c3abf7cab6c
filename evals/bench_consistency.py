"""Consistency benchmark (issue 25): the consistency agent's compare and report steps on real
translated documents, half of them with one planted change.

    python -m sovra.evals.bench_consistency [--sets xquad,europarl] [--langs de,fr] [--limit N] [--seed N]
        [--show] [--out F]

Sets (both real, professionally translated text; provenance in each folder's README):

* ``xquad`` (``evals/datasets/xquad``, CC BY-SA 4.0): 240 Wikipedia paragraphs from 48 articles,
  five consecutive paragraphs each, in file order (checked at the pinned commit; the titles are
  below). One document = one article's five paragraphs; a pair = the English article and its German
  or Spanish translation (48 pairs per language). Romanian is in XQuAD too but the fact reader does
  not read Romanian dates and amounts (it reads en, fr, de, nl, it, es), so it is left out.
* ``europarl`` (``evals/datasets/europarl``): European Parliament speeches on budgets and the
  economy, as the Parliament published them in English, French, German, Spanish, Italian and Dutch.
  One document = one speech; a pair = the English speech and one of its five other versions.

``--seed`` draws other pairs and other changes (default 25): the pairs planted with one seed are the
ones checked for false alarms with another.

In half of the pairs (``random.Random(25)``, the same pairs for every language) ONE change is planted
in the translation, on top of the real text: a fact that the translation states with digits (an
amount, a percentage, a date, a period or a year: the kinds the agent compares), drawn at random, has
its first digit run changed (last digit + 1), so "7. Februar 2016" becomes "8. Februar 2016". A
translation without such a fact gets its first bare number (a count) changed instead (kind
``number``). Bare numbers, separately: every translation that states one (a count, a measure, outside
the kinds above) is also run once more with one of them, drawn at random, changed the same way; found
= the report lists the new number as a difference, "not verified" = it lists it as a number whose value
the other side does not state (no verdict either way). Party names: every translation that names
a party with a legal form ("Hearst Corporation") is also run once more with the first letter of the
word before the legal form changed ("Iearst Corporation"); found = the report lists the changed name
as a difference, "not verified" = it lists it as a name the other side states only in part. Names
without a legal form are not parties to the agent.

Each pair goes through the agent's own ``compare`` and ``report`` nodes (the documents are chunked
with the ingest chunker; only the search that finds the pair is skipped). Per language pair:

* planted changes found: the report lists the new value as a difference; "both sides": a citation
  in the translation quotes the new value and one in the English document quotes the original
  (the report cites, beside each difference, the other document's corresponding passage);
* real differences: a set's ``translation_errors.json`` lists differences that are in the published
  translation itself (checked by hand against the set's other translations, which keep the English
  value). A report of exactly those values on an unplanted pair counts as a real difference found;
* false alarms: pairs without a planted change whose report lists any other difference;
* "consistent" verdicts, those given to a pair that was not fully read (must be 0) and those given
  to a pair with a planted change (a change missed outright);
* pairs that could not be compared (a side with no fact the agent reads: no verdict);
* an empty translation (one per language pair), which must never be "consistent".
"""

from __future__ import annotations

import argparse
import json
import random
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from sovra.agents.consistency import compare, report
from sovra.chunking import chunk_pages
from sovra.documents import Page
from sovra.tools.contract_docs import ContractDocument, DocChunk
from sovra.tools.facts import _PARTY_NAME, _PCT, _number_counts, find_years, number_spans
from sovra.tools.terms.layout import passages
from sovra.tools.terms.normalize import find_dates, find_durations, find_money

DATASETS = Path(__file__).parent / "datasets"
XQUAD_DIR = DATASETS / "xquad"
LANGS = {"xquad": ("de", "es"), "europarl": ("fr", "de", "es", "it", "nl")}
PER_ARTICLE = 5
SEED = 25
# The 48 article titles of xquad.en.json at the pinned commit (evals/datasets/xquad/README.md).
ARTICLES = [
    "Super_Bowl_50", "Warsaw", "Normans", "Nikola_Tesla", "Computational_complexity_theory", "Teacher",
    "Martin_Luther", "Southern_California", "Sky_(United_Kingdom)", "Victoria_(Australia)", "Huguenot",
    "Steam_engine", "Oxygen", "1973_oil_crisis", "Apollo_program", "European_Union_law", "Amazon_rainforest",
    "Ctenophora", "Fresno,_California", "Packet_switching", "Black_Death", "Geology", "Newcastle_upon_Tyne",
    "Victoria_and_Albert_Museum", "American_Broadcasting_Company", "Genghis_Khan", "Pharmacy", "Immune_system",
    "Civil_disobedience", "Construction", "Private_school", "Harvard_University", "Jacksonville,_Florida",
    "Economic_inequality", "Doctor_Who", "University_of_Chicago", "Yuan_dynasty", "Kenya",
    "Intergovernmental_Panel_on_Climate_Change", "Chloroplast", "Prime_number", "Rhine", "Scottish_Parliament",
    "Islamism", "Imperialism", "United_Methodist_Church", "French_and_Indian_War", "Force",
]  # fmt: skip
_DIGITS = re.compile(r"\d+")
_BARE = re.compile(r"(?<![\w.,])\d+(?![\w])")


def articles(lang: str, limit: int | None = None) -> list[str]:
    rows = [json.loads(x) for x in (XQUAD_DIR / lang / "corpus.jsonl").read_text(encoding="utf-8").splitlines()]
    texts = [r["text"] for r in rows]
    docs = ["\n\n".join(texts[i : i + PER_ARTICLE]) for i in range(0, len(texts), PER_ARTICLE)]
    return docs[:limit]


def documents(name: str, lang: str, limit: int | None = None) -> list[tuple[str, str]]:
    """(title, text) of every document of a set in one language, in the set's order."""
    if name == "xquad":
        return list(zip(ARTICLES, articles(lang, limit), strict=False))
    rows = [json.loads(x) for x in (DATASETS / name / f"{lang}.jsonl").read_text(encoding="utf-8").splitlines()]
    return [(r["id"], r["text"]) for r in rows][:limit]


def known_errors(name: str, lang: str) -> dict[str, tuple[list[str], list[str]]]:
    """Differences in the published translation itself: title -> (values only in English, only in it)."""
    path = DATASETS / name / "translation_errors.json"
    if not path.exists():
        return {}
    errors = json.loads(path.read_text(encoding="utf-8"))["errors"]
    return {e["article"]: (sorted(e["only_en"]), sorted(e["only_tr"])) for e in errors if e["lang"] == lang}


def _bump(text: str, start: int, end: int) -> tuple[str, str, str] | None:
    """``text`` with the first digit run in ``[start, end)`` changed (last digit + 1); the old and
    new span text. None when the span has no digit."""
    m = _DIGITS.search(text, start, end)
    if m is None:
        return None
    raw = m.group(0)
    new = raw[:-1] + str((int(raw[-1]) + 1) % 10)
    out = text[: m.start()] + new + text[m.end() :]
    return out, text[start:end], out[start : end + len(new) - len(raw)]


def plant(text: str, rng: random.Random) -> dict[str, Any] | None:
    """One change in ``text``: a fact the agent compares where the text has one with digits, else
    the first bare number (a year or a count)."""
    spans = [("amount", f.start, f.end) for f in find_money(text)]
    spans += [("percentage", *m.span()) for m in _PCT.finditer(text)]
    spans += [("date", f.start, f.end) for f in find_dates(text)]
    spans += [("period", f.start, f.end) for f in find_durations(text)]
    spans += [("year", a, b) for key, a, b in find_years(text) if text[a:b] == key]  # not a decade or "-40"
    spans = [s for s in spans if _DIGITS.search(text, s[1], s[2])]
    if spans:
        kind, a, b = rng.choice(sorted(spans, key=lambda s: s[1]))
    else:
        m = _BARE.search(text)
        if m is None:
            return None
        kind, a, b = "number", m.start(), m.end()
    bumped = _bump(text, a, b)
    assert bumped is not None
    out, old, new = bumped
    return {"kind": kind, "text": out, "old": old, "new": new, "at": a}


def plant_party(text: str) -> dict[str, Any] | None:
    """The translation's first name with a legal form changed: the first letter of the word before
    the legal form moved one on ("Hearst Corporation" -> "Iearst Corporation"); None when the
    translation names no such party."""
    m = _PARTY_NAME.search(text)
    if m is None:
        return None
    old = m.group(0)
    words = old.split(" ")
    if len(words) < 2:
        return None
    w = words[-2]
    words[-2] = ("A" if w[0] == "Z" else chr(ord(w[0]) + 1)) + w[1:]
    new = " ".join(words)
    return {"kind": "party", "text": text[: m.start()] + new + text[m.end() :], "old": old, "new": new}


def plant_number(text: str, rng: random.Random) -> dict[str, Any] | None:
    """One of the translation's bare numbers (a count, a measure: not an amount, rate, date, period
    or year), drawn at random, changed (last digit + 1); None when it states none."""
    spans = [(p.start + a, p.start + b) for p in passages({1: text}) for a, b in number_spans(p.text)]
    spans = [(a, b) for a, b in spans if _DIGITS.search(text, a, b)]
    if not spans:
        return None
    a, b = rng.choice(spans)
    bumped = _bump(text, a, b)
    assert bumped is not None
    out, old, new = bumped
    return {"kind": "number", "text": out, "old": old, "new": new, "at": a}


def document(doc_id: str, title: str, text: str) -> ContractDocument:
    chunks = chunk_pages(doc_id, [Page(number=1, text=text)]) if text.strip() else []
    return ContractDocument(
        doc_id=doc_id,
        title=title,
        url=f"xquad://{doc_id}",
        doc_type="article",
        role="contract",
        chunks=[
            DocChunk(chunk_id=c.id, page=c.page, char_start=c.char_start, char_end=c.char_end, text=c.text)
            for c in chunks
        ],
    )


class _Recorder:
    def record(self, kind: str, data: dict[str, Any]) -> None:
        pass


def run_pair(left: ContractDocument, right: ContractDocument) -> dict[str, Any]:
    """The agent's compare and report nodes on one pair (no index, no search)."""
    config: Any = {"configurable": {"ctx": SimpleNamespace(recorder=_Recorder())}}
    state: Any = {"question": f"Is {right.title} consistent with {left.title}?", "docs": [], "one_way": False}
    state["docs"] = [left.model_dump(mode="json"), right.model_dump(mode="json")]
    state |= compare(state, config)
    state |= report(state, config)
    return state


def _cited(state: dict[str, Any], url: str, value: str) -> bool:
    """A citation of ``url`` quotes ``value`` (digits), also when it writes it with a thousands
    separator ("EUR 1 600 million" for 1600) or in words ("Eighty per cent" for 80)."""
    n = f"{float(value):.6g}" if value.isdigit() else None
    return any(
        c["url"] == url and (value in c["quote"] or (n is not None and _number_counts(c["quote"])[n] > 0))
        for c in state["citations"]
    )


def evaluate(
    lang: str, limit: int | None = None, show: bool = False, name: str = "xquad", seed: int = SEED
) -> dict[str, Any]:
    en_docs, tr_docs = documents(name, "en", limit), documents(name, lang, limit)
    assert [t for t, _ in en_docs] == [t for t, _ in tr_docs], f"{name}: en and {lang} list different documents"
    titles, en, tr = [t for t, _ in en_docs], [x for _, x in en_docs], [x for _, x in tr_docs]
    errors = known_errors(name, lang)
    n = len(en)
    planted_ids = set(random.Random(seed).sample(range(n), n // 2))
    rng, nrng = random.Random(seed), random.Random(seed)
    res: dict[str, Any] = {
        "pairs": n, "planted": 0, "planted_compared_kind": 0, "found": 0, "found_both_sides": 0,
        "planted_number": 0, "found_number": 0, "false_alarms": 0, "consistent": 0,
        "consistent_not_fully_read": 0, "consistent_with_planted_change": 0, "could_not_compare": 0,
        # listed differences of the published translation, on the pairs left unchanged
        "real_differences": sum(t in errors for i, t in enumerate(titles) if i not in planted_ids),
        "real_differences_found": 0,
        "party_planted": 0, "party_found": 0, "party_not_verified": 0,
        "number_planted": 0, "number_found": 0, "number_found_both_sides": 0, "number_not_verified": 0,
        "numbers_not_verified_unplanted": 0,
        "by_kind": {}, "missed": [], "alarms": [],
    }  # fmt: skip
    for i in range(n):
        text = tr[i]
        # Party names, separately: every translation that names a party gets one changed, in a copy.
        if (pp := plant_party(text)) is not None:
            left = document(f"en-{i:02d}", f"{titles[i]} (en)", en[i])
            st = run_pair(left, document(f"{lang}-{i:02d}", f"{titles[i]} ({lang})", pp["text"]))
            res["party_planted"] += 1
            changed = " ".join(pp["new"].split()[-2:])
            res["party_found"] += any(f["kind"] == "party" and changed in f["show"] for f in st["result"]["only_right"])
            res["party_not_verified"] += any(changed in f["show"] for f in st["result"]["parties_unverified"])
            res["consistent_with_planted_change"] += "Consistent:" in st["answer"]
        # Bare numbers, separately: every translation that states one gets one changed, in a copy.
        if (pn := plant_number(text, nrng)) is not None:
            left = document(f"en-{i:02d}", f"{titles[i]} (en)", en[i])
            right = document(f"{lang}-{i:02d}", f"{titles[i]} ({lang})", pn["text"])
            st = run_pair(left, right)
            new_facts = [f for f in st["result"]["only_right"] if f["kind"] == "number" and f["show"] == pn["new"]]
            res["number_planted"] += 1
            res["number_found"] += bool(new_facts) and "Consistent:" not in st["answer"]
            res["number_found_both_sides"] += (
                bool(new_facts)
                and _cited(st, right.url, pn["new"])
                and _cited(st, left.url, _DIGITS.findall(pn["old"])[0])
            )
            res["number_not_verified"] += any(f["show"] == pn["new"] for f in st["result"]["numbers_unverified"])
            res["consistent_with_planted_change"] += "Consistent:" in st["answer"]
            if not new_facts:
                res["missed"].append({"article": titles[i], "kind": "number (all)", "old": pn["old"], "new": pn["new"]})
        p = plant(text, rng) if i in planted_ids else None
        if p:
            text = p["text"]
        left = document(f"en-{i:02d}", f"{titles[i]} (en)", en[i])
        right = document(f"{lang}-{i:02d}", f"{titles[i]} ({lang})", text)
        st = run_pair(left, right)
        r = st["result"]
        diffs = len(r["only_left"]) + len(r["only_right"])
        verdict = "Consistent:" in st["answer"]
        res["consistent"] += verdict
        res["consistent_not_fully_read"] += verdict and bool(r["unreadable"])
        res["could_not_compare"] += bool(r["unreadable"])
        if p is None:
            res["numbers_not_verified_unplanted"] += bool(r["numbers_unverified"])
            seen = (sorted(f["show"] for f in r["only_left"]), sorted(f["show"] for f in r["only_right"]))
            if diffs and errors.get(titles[i]) == seen:
                res["real_differences_found"] += 1
            elif diffs:
                res["false_alarms"] += 1
                res["alarms"].append({"article": titles[i], "only_en": seen[0], "only_tr": seen[1]})
            continue
        res["planted"] += 1
        res["consistent_with_planted_change"] += verdict
        k = res["by_kind"].setdefault(p["kind"], {"planted": 0, "found": 0})
        k["planted"] += 1
        # Found: a difference read in the changed span of the translation, cited there, and the
        # English value it replaced cited in the English article.
        digits = _DIGITS.findall(p["new"])
        new_facts = [
            f
            for f in r["only_right"]
            if f["char_start"] <= p["at"] < f["char_end"] or (f["kind"] == p["kind"] and digits[0] in f["show"])
        ]
        found = bool(new_facts) and verdict is False
        old = _DIGITS.findall(p["old"])[0]  # the English states the original value with the same digits
        both = found and _cited(st, right.url, p["new"]) and _cited(st, left.url, old)
        if p["kind"] == "number":
            res["planted_number"] += 1
            res["found_number"] += found
        else:
            res["planted_compared_kind"] += 1
        res["found"] += found
        res["found_both_sides"] += both
        k["found"] += found
        if not found:
            res["missed"].append({"article": titles[i], "kind": p["kind"], "old": p["old"], "new": p["new"]})
    empty = run_pair(document("en-x", "en", en[0]), document(f"{lang}-x", f"empty ({lang})", ""))
    res["set"] = name
    res["empty_side_consistent"] = "Consistent:" in empty["answer"]
    if show:
        for a in res["alarms"]:
            print(f"  {lang} alarm {a['article']}: en {a['only_en']} / {lang} {a['only_tr']}")
        for m in res["missed"]:
            print(f"  {lang} missed {m['article']}: {m['kind']} {m['old']!r} -> {m['new']!r}")
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--sets", default="xquad,europarl", help="Sets: xquad (en/de/es), europarl (en/fr/de).")
    ap.add_argument("--langs", default=None, help="Translation languages (default: xquad de,es; europarl fr,de).")
    ap.add_argument("--limit", type=int, default=None, help="First N documents only.")
    ap.add_argument("--show", action="store_true", help="Print every false alarm and missed change.")
    ap.add_argument("--seed", type=int, default=SEED, help="Which pairs get a change, and which change.")
    ap.add_argument("--out", type=Path, default=None, help="Write the results as JSON here.")
    args = ap.parse_args(argv)
    out: dict[str, Any] = {}
    print("set/pair     pairs planted found(both sides) [bare numbers] real_diffs false_alarms"
          " consistent(not read, planted) no_verdict")  # fmt: skip
    for name in args.sets.split(","):
        if name not in LANGS:
            ap.error(f"unknown set {name!r}: choose from {', '.join(LANGS)}")
        for lang in args.langs.split(",") if args.langs else LANGS[name]:
            r = evaluate(lang, args.limit, args.show, name, args.seed)
            out[f"{name}/{lang}"] = r
            print(
                f"{name}/en-{lang:3s} {r['pairs']:5d} {r['planted']:7d} {r['found']:5d}({r['found_both_sides']})"
                f" [{r['found_number']}/{r['planted_number']}] {r['real_differences_found']:5d}/{r['real_differences']}"
                f" {r['false_alarms']:12d}"
                f" {r['consistent']:10d}({r['consistent_not_fully_read']}, {r['consistent_with_planted_change']})"
                f" {r['could_not_compare']:10d}"
                f"  parties changed: {r['party_found']}/{r['party_planted']} found"
                f" ({r['party_not_verified']} not verified)"
                f"  numbers changed: {r['number_found']}/{r['number_planted']} found"
                f" ({r['number_found_both_sides']} both sides, {r['number_not_verified']} not verified);"
                f" unplanted pairs with a number not verified: {r['numbers_not_verified_unplanted']}"
                f"  empty side consistent: {r['empty_side_consistent']}"
            )
    if args.out:
        args.out.write_text(json.dumps(out, indent=2, ensure_ascii=False), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
