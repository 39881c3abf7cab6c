"""Checks a translated segment against its source: facts, numbers, defined terms, party names and
the bank's glossary.

Facts (amounts with their currency, percentages, dates, periods, jurisdictions) are read on both
sides with :mod:`sovra.tools.facts`, which normalises locale formats (``1 000 000,50 EUR`` =
``EUR 1,000,000.50``, ``15 mars 2024`` = ``15 March 2024``). Numbers outside those facts (clause
numbers, counts) are compared as values, allowing either separator convention. Party names (a name
with a legal form: ``Acme Bank S.A.``) must appear verbatim. A defined term (``("the Borrower")``)
is checked through the glossary when the glossary has it, or when the term was kept as it is;
otherwise its rendering is shown and the segment is marked "could not check": the checker never
says "preserved" for what it did not verify.
"""

from __future__ import annotations

import csv
import hashlib
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from sovra.errors import InputError
from sovra.tools.facts import _PCT, DEFINED_TERM, Fact, compare_facts, facts_of
from sovra.tools.terms.normalize import find_dates, find_durations, find_money, number_word
from sovra.tools.terms.parties import _SUFFIX

Status = Literal["preserved", "changed", "could_not_check", "no_facts"]
LANGS = ("en", "fr", "de", "nl", "it", "es")

_DEFINED = DEFINED_TERM
_PARTY = re.compile(rf"\b(?:[A-Z][\w&'-]*\.?\s+){{1,5}}{_SUFFIX}")
_NUMBER = re.compile(r"(?<![\w.,])\d+(?:[ \u00a0\u202f.,']\d+)*")


# --------------------------------------------------------------------------------- the glossary


@dataclass(frozen=True)
class GlossaryTerm:
    source: str
    target: str
    source_lang: str | None = None  # None: any pair
    target_lang: str | None = None


@dataclass
class Glossary:
    """A bank's term pairs. Read from CSV: columns named by language codes (``en,fr,de``: one row per
    concept), or ``source,target[,source_lang,target_lang]``, or two unnamed columns."""

    terms: list[GlossaryTerm] = field(default_factory=list)
    name: str = ""

    @property
    def digest(self) -> str:
        text = "\n".join(f"{t.source}\t{t.target}\t{t.source_lang}\t{t.target_lang}" for t in self.terms)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def for_pair(self, source: str, target: str) -> list[GlossaryTerm]:
        return [t for t in self.terms if (t.source_lang in (None, source)) and (t.target_lang in (None, target))]

    @classmethod
    def load(cls, path: Path) -> Glossary:
        try:
            text = Path(path).read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"cannot read the glossary {path}: {exc}", hint="give a UTF-8 CSV file") from exc
        rows = [[c.strip() for c in r] for r in csv.reader(text.splitlines(), dialect=_dialect(text)) if any(r)]
        if not rows:
            raise InputError(f"the glossary {path} is empty", hint="one term pair per line: source,target")
        head = [c.lower() for c in rows[0]]
        terms: list[GlossaryTerm] = []
        if sum(h in LANGS for h in head) >= 2:  # en,fr,de: one concept per row
            cols = [(i, h) for i, h in enumerate(head) if h in LANGS]
            for r in rows[1:]:
                for i, a in cols:
                    for j, b in cols:
                        if i != j and i < len(r) and j < len(r) and r[i] and r[j]:
                            terms.append(GlossaryTerm(r[i], r[j], a, b))
        else:
            named = {"source", "target", "source_term", "target_term", "term", "translation"} & set(head)
            idx = {h: i for i, h in enumerate(head)}
            s = idx.get("source", idx.get("source_term", idx.get("term", 0)))
            t = idx.get("target", idx.get("target_term", idx.get("translation", 1)))
            sl = idx.get("source_lang", idx.get("from"))
            tl = idx.get("target_lang", idx.get("to"))
            if not named and len(head) >= 4:
                sl, tl = 2, 3
            for r in rows[1:] if named else rows:
                if max(s, t) >= len(r) or not r[s] or not r[t]:
                    continue

                def lang(k: int | None, row: list[str] = r) -> str | None:
                    return row[k].lower() if k is not None and k < len(row) and row[k] else None

                terms.append(GlossaryTerm(r[s], r[t], lang(sl), lang(tl)))
        if not terms:
            raise InputError(
                f"the glossary {path} has no term pair",
                hint="columns source,target[,source_lang,target_lang] or one column per language (en,fr,de)",
            )
        return cls(terms, str(path))


def _dialect(text: str) -> type[csv.Dialect] | csv.Dialect:
    try:
        return csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        return csv.excel


def _contains(text: str, term: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(term)}(?!\w)", text, re.I) is not None


def glossary_violations(source: str, translation: str, terms: list[GlossaryTerm]) -> list[dict[str, str]]:
    """Each glossary term the source uses whose required rendering is missing from the translation."""
    return [
        {"source_term": t.source, "expected": t.target}
        for t in terms
        if _contains(source, t.source) and not _contains(translation, t.target)
    ]


def relevant_terms(source: str, terms: list[GlossaryTerm]) -> list[GlossaryTerm]:
    return [t for t in terms if _contains(source, t.source)]


# --------------------------------------------------------------------------------- the checker


@dataclass
class Change:
    kind: str  # amount | percentage | date | period | jurisdiction | number | party | defined_term
    source: str | None  # the value in the source (None: only in the translation)
    translation: str | None  # the value in the translation (None: missing from it)


@dataclass
class SegmentCheck:
    status: Status
    checked: int = 0  # facts, numbers, names and terms verified on both sides
    changes: list[Change] = field(default_factory=list)
    unchecked: list[str] = field(default_factory=list)  # what could not be verified, and why
    glossary: list[dict[str, str]] = field(default_factory=list)  # violations

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _spans(text: str) -> list[tuple[int, int]]:
    found = [(f.start, f.end) for f in find_money(text) + find_dates(text) + find_durations(text)]
    return found + [m.span() for m in _PCT.finditer(text)]


def _numbers(text: str) -> list[tuple[str, set[str]]]:
    """Numbers outside the typed facts, each with the values it can mean under EN or EU separators."""
    return _numbers_raw(text, _spans(text))


def _numbers_raw(text: str, spans: list[tuple[int, int]] = ()) -> list[tuple[str, set[str]]]:  # type: ignore[assignment]
    out = []
    for m in _NUMBER.finditer(text):
        if any(a <= m.start() < b for a, b in spans):
            continue
        raw = m.group(0)
        seps = re.findall(r"\D", raw)
        values = {re.sub(r"\D", "", raw).lstrip("0") or "0"}  # every separator groups thousands
        if seps and seps[-1] in ".,":
            whole, frac = raw.rsplit(seps[-1], 1)
            if len(frac) != 3 or len(seps) == 1:  # ... or the last one is a decimal point or comma
                whole = re.sub(r"\D", "", whole)
                values.add(f"{int(whole)}.{frac}".rstrip("0").rstrip("."))
        out.append((raw, values))
    return out


def _number_changes(source: str, translation: str) -> tuple[int, list[Change]]:
    pool = _numbers(translation)
    src_words, tr_words = _word_numbers(source), _word_numbers(translation)
    matched, changes = 0, []
    for raw, values in _numbers(source):
        k = next((i for i, (_, v) in enumerate(pool) if v & values), None)
        if k is not None:
            pool.pop(k)
            matched += 1
        elif values & tr_words:  # "3" rendered as "three": the same value
            matched += 1
        else:
            changes.append(Change("number", raw, None))
    for raw, values in pool:
        if values & src_words:
            matched += 1
        else:
            changes.append(Change("number", None, raw))
    return matched, changes


_WORD = re.compile(r"[^\W\d_]+(?:-[^\W\d_]+)*")
_ARTICLES = frozenset({"a", "an", "one", "un", "une", "ein", "eine", "einen", "einem", "einer", "uno", "una", "een"})


def _word_numbers(text: str) -> set[str]:
    """Numbers a text writes in words ("three", "drei", "douze"), as digit strings; articles that
    also mean "one" are left out, or every 1 would match."""
    out = set()
    for w in set(_WORD.findall(text.lower())) - _ARTICLES:
        n = number_word(w)
        if n is not None:
            out.add(str(n))
    return out


def _reconcile(changes: list[Change]) -> tuple[int, list[Change]]:
    """A value read as a bare number on one side and as a fact on the other ("39-year-old" / "39
    Jahre" read as a period): the same value, not a change."""
    out = list(changes)
    paired = 0
    for a in changes:
        if a not in out or a.translation is not None:
            continue
        for b in out:
            if b.source is not None or (a.kind == b.kind) or "number" not in (a.kind, b.kind):
                continue
            if _values(a.source or "") & _values(b.translation or ""):
                out.remove(a)
                out.remove(b)
                paired += 1
                break
    return paired, out


def _values(text: str) -> set[str]:
    return {v for _, vs in _numbers_raw(text) for v in vs}


# Capitalised words that start a sentence or a phrase, not a name: "Under Acme Bank S.A." is "Acme Bank S.A.".
_NOT_NAME = frozenset({
    "the", "this", "that", "these", "those", "a", "an", "under", "to", "from", "by", "with", "for", "and", "or",
    "of", "in", "on", "at", "as", "between", "among", "pursuant", "le", "la", "les", "l", "un", "une", "du",
    "des", "de", "entre", "par", "pour", "avec", "sous", "et", "ou", "au", "aux", "der", "die", "das", "dem",
    "den", "ein", "eine", "zwischen", "von", "mit", "für", "und", "oder", "het", "een", "van", "tussen", "met",
    "voor", "en", "il", "lo", "gli", "i", "una", "della", "del", "tra", "con", "per", "e", "o", "el", "los",
    "las", "y", "unter", "durch",
})  # fmt: skip


def _party_names(text: str) -> list[str]:
    """Names with a legal form ("Acme Bank S.A.", "Beta Industries GmbH"), without the words before
    them that only start the sentence; a bare generic ("The Bank") is no name."""
    out = []
    for m in _PARTY.finditer(text):
        words = m.group(0).split()
        cut = max((i + 1 for i, w in enumerate(words[:-1]) if w.lower().strip(".") in _NOT_NAME), default=0)
        words = words[cut:]
        if len(words) >= 2:
            if words[-1].endswith(".") and "." not in words[-1][:-1]:  # "AG." ends the sentence; "S.A." keeps it
                words[-1] = words[-1][:-1]
            out.append(" ".join(words))
    return list(dict.fromkeys(out))


def check_segment(
    source: str,
    translation: str,
    terms: Sequence[GlossaryTerm] = (),
    *,
    complete: bool = True,
    learned: dict[str, str] | None = None,
) -> SegmentCheck:
    """Compare one source segment with its translation. ``complete`` False: the model's reply was
    cut off, so nothing missing from it can be called a change. ``learned``: defined terms and how the
    translation rendered them where they are defined (:func:`learn_defined_terms`); a later use of
    the term without that rendering is reported as not checked (a pronoun may stand for it)."""
    out = SegmentCheck("no_facts", glossary=glossary_violations(source, translation, list(terms)))
    if not translation.strip() or not complete:
        out.status = "could_not_check"
        out.unchecked.append("the translation is empty" if not translation.strip() else "the reply was cut off")
        return out
    sf, tf = facts_of({1: source}), facts_of({1: translation})
    res = compare_facts(sf, tf)
    out.checked += len(res.matched)
    out.changes += _fact_changes(res.only_left, res.only_right)
    n, changes = _number_changes(source, translation)
    out.checked += n
    paired, out.changes = _reconcile(out.changes + changes)
    out.checked += paired
    for name in _party_names(source):
        if name.rstrip(".") in translation:
            out.checked += 1
        else:
            out.changes.append(Change("party", name, None))
    glossed = {t.source.lower(): t.target for t in terms}
    rendered = [m.group("term") for m in _DEFINED.finditer(translation)]
    for i, m in enumerate(_DEFINED.finditer(source)):
        term = m.group("term")
        target = glossed.get(term.lower())
        if target is not None:
            if _contains(translation, target):
                out.checked += 1
            else:
                out.changes.append(Change("defined_term", term, rendered[i] if i < len(rendered) else None))
        elif _contains(translation, term):
            out.checked += 1
        else:
            shown = rendered[i] if i < len(rendered) else "not found"
            out.unchecked.append(f"defined term {term!r} rendered as {shown!r} (not in the glossary)")
    defined_here = {m.group("term").lower() for m in _DEFINED.finditer(source)}
    for term, rendering in (learned or {}).items():
        if term.lower() in defined_here or term.lower() in glossed or not _contains(source, term):
            continue
        if re.search(rf"(?<!\w){re.escape(rendering)}", translation, re.I):  # a prefix: "Darlehensnehmers"
            out.checked += 1
        else:
            out.unchecked.append(f"defined term {term!r} is not rendered as {rendering!r} here, as where it is defined")
    if out.changes or out.glossary:
        out.status = "changed"
    elif out.unchecked:
        out.status = "could_not_check"
    elif out.checked:
        out.status = "preserved"
    return out


def learn_defined_terms(pairs: Sequence[tuple[str, str]]) -> dict[str, str]:
    """How a translation rendered each term a source defines ("(the "Borrower")" -> "(l'« Emprunteur »)"),
    paired by position where both sides define as many terms; the first definition wins."""
    out: dict[str, str] = {}
    for source, translation in pairs:
        src = [m.group("term") for m in _DEFINED.finditer(source)]
        tr = [m.group("term") for m in _DEFINED.finditer(translation)]
        if len(src) == len(tr):
            for a, b in zip(src, tr, strict=True):
                out.setdefault(a, b)
    return out


def _fact_changes(only_source: list[Fact], only_translation: list[Fact]) -> list[Change]:
    """Pair what only one side states, by kind, so a changed value shows both sides."""
    changes = []
    rest = list(only_translation)
    for f in only_source:
        twin = next((g for g in rest if g.kind == f.kind), None)
        if twin is not None:
            rest.remove(twin)
        changes.append(Change(f.kind, f.show, twin.show if twin else None))
    return changes + [Change(g.kind, None, g.show) for g in rest]
