"""Key facts of a document, in any of the languages Sovra reads, and a comparison of two documents'
facts: a contract and its translation, a prospectus summary and its body.

A fact is a typed value read from a passage: an amount with its currency, a percentage or rate, a
date, a period, a jurisdiction. Values are normalised (``1 000 000,50 EUR`` = ``EUR 1,000,000.50``,
``15. März 2024`` = ``15 March 2024``, ``douze (12) mois`` = ``one year``), so two documents in
different languages compare on meaning. The comparison is a multiset match per kind of fact: what
both state, what only one states (with the passage), and, when either document could not be read,
no verdict at all: the same honesty rule as the contracts agent.
"""

from __future__ import annotations

import contextlib
import math
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Literal

from sovra.language import without_accents
from sovra.tools.terms.fields import _LAW_STRONG
from sovra.tools.terms.layout import Passage, passages
from sovra.tools.terms.normalize import (
    _MULT_WORDS,
    Duration,
    find_dates,
    find_durations,
    find_jurisdictions,
    find_money,
    merge_jurisdictions,
    number_word,
)

Kind = Literal["amount", "percentage", "date", "period", "jurisdiction", "year", "party", "number", "defined_term"]
KINDS: tuple[Kind, ...] = ("amount", "percentage", "date", "period", "jurisdiction")
# What the consistency agent compares: also the years a document names without a day ("in 1998",
# "the 1990s"), which a translation must keep as well. The translation checker compares those as
# numbers, so its default stays KINDS.
ALL_KINDS: tuple[Kind, ...] = (*KINDS, "year")
_PERCENT = r"(?:%|per\s*cent|percent|pour\s*cent|prozent|por\s*ciento|per\s*cento|percento|procent)"
_PCT = re.compile(rf"(?<![\w.,])(\d{{1,3}}(?:[.,]\d{{1,4}})?)\s?{_PERCENT}", re.I)
_PCT_RANGE = re.compile(
    rf"(?<![\w.,])(\d{{1,3}}(?:[.,]\d{{1,4}})?)\s?(?:[-–]|to|bis|à|a|al|tot|e|y|and|und|et|en)\s?"
    rf"(?:(?:el|un|le|il|the)\s)?(?=\d{{1,3}}(?:[.,]\d{{1,4}})?\s?{_PERCENT})",
    re.I,
)
# "one per cent", "l'un percento", "zwei Prozent": a number in words
_PCT_WORDS = re.compile(rf"\b([^\W\d_]+)\s+{_PERCENT}(?!\w)", re.I)


@dataclass(frozen=True)
class Fact:
    kind: Kind
    key: str  # what two documents compare on: "EUR 1000000.50", "3.5%", "2024-03-15", "12 months", "US-DE"
    show: str
    page: int
    char_start: int  # the passage's span on the page
    char_end: int
    quote: str


def _percent(raw: str) -> str:
    return f"{float(raw.replace(',', '.')):g}%"


def facts_of(pages: dict[int, str], kinds: tuple[Kind, ...] = KINDS) -> list[Fact]:
    """Every fact of these kinds the document states, with the passage it is in."""
    out: list[Fact] = []
    for p in passages(pages):
        out += [f for f in _facts_in(p, "year" in kinds) if f.kind in kinds]
    return out


# A decade: "the 1990s", "the '90s", "die 1990er", "90er Jahre", "los años 90", "la década de 1990",
# "les années 1990", "anii '90". Its key keeps the decade's two digits ("90s"): short forms have no
# century, and one document rarely names two decades of different centuries with the same digits.
_DECADE = re.compile(
    r"(?<![\w'’])(?:\d{2})?(?P<a>\d)0(?:s|er|ern)(?![\w])|['’](?P<b>\d)0s\b|"
    r"\b(?:años|décadas?\s+de(?:\s+los)?|decenni?o\s+de|années|anni|anii|jaren)\s+['’]?(?:\d{2})?(?P<c>\d)0(?![\w])"
    r"(?:\s+(?:y|e|et|and|und|și|en)\s+['’]?(?:\d{2})?(?P<d>\d)0(?![\w]))?|"
    r"\b(?:(?:los\s+)?años|anni|années|jaren)\s+(?P<w>quatre-vingt-dix|quatre-vingts?|soixante-dix|veinte|treinta|cuarenta|cincuenta|sesenta|setenta|ochenta|noventa|"
    r"venti|trenta|quaranta|cinquanta|sessanta|settanta|ottanta|novanta|vingt|trente|quarante|cinquante|soixante|"
    r"twintig|dertig|veertig|vijftig|zestig|zeventig|tachtig|negentig)\b|"
    r"\b(?P<x>twenties|thirties|forties|fifties|sixties|seventies|eighties|nineties|zwanziger|dreißiger|vierziger|"
    r"fünfziger|sechziger|siebziger|achtziger|neunziger)\b",
    re.I,
)
_DECADE_WORDS = {
    w: str(k + 2)
    for words in (
        "veinte treinta cuarenta cincuenta sesenta setenta ochenta noventa",
        "venti trenta quaranta cinquanta sessanta settanta ottanta novanta",
        "vingt trente quarante cinquante soixante soixante-dix quatre-vingt quatre-vingt-dix",
        "twenties thirties forties fifties sixties seventies eighties nineties",
        "zwanziger dreißiger vierziger fünfziger sechziger siebziger achtziger neunziger",
        "twintig dertig veertig vijftig zestig zeventig tachtig negentig",
    )
    for k, w in enumerate(words.split())
}
# A year: four digits, not part of a number ("1,998"), a fraction ("2019/20"), a measure or a count
# written with a unit ("1500-Meter-Lauf", "1600 mm").
_YEAR = re.compile(
    r"(?<![\w.,'’$€£¥/])(?:1[0-9]{3}|20[0-9]{2})(?![\w%/]|[.,]\d|-[^\W\d_]|\s?(?:mm|cm|km|kg|m|t|ha|km2|m2|GW|MW|kW)\b)"
)


_SHORT_END = re.compile(r"[–-](\d{2})(?![\w%/]|[.,]\d)")


def _typed_spans(text: str) -> list[tuple[int, int]]:
    """Where the text states an amount, a date, a period or a percentage."""
    spans = [(f.start, f.end) for f in find_money(text) + find_dates(text) + find_durations(text)]
    return spans + [m.span() for m in _PCT.finditer(text)]


def find_years(text: str) -> list[tuple[str, int, int]]:
    """Years named without a day (``1998``) and decades (``90s``), outside amounts, dates, periods
    and percentages: (key, start, end)."""
    spans = _typed_spans(text)
    out = []
    for m in _DECADE.finditer(text):
        word = (m["w"] or m["x"] or "").lower()
        word = word if word in _DECADE_WORDS or not word else word.removesuffix("s")  # "quatre-vingts"
        out.append((f"{m['a'] or m['b'] or m['c'] or _DECADE_WORDS[word]}0s", m.start(), m.end()))
        if m["d"]:  # "las décadas de 1960 y 1970": two decades
            out.append((f"{m['d']}0s", m.start("d"), m.end()))
    spans += [(a, b) for _, a, b in out]
    for m in _YEAR.finditer(text):
        if any(a <= m.start() < b for a, b in spans):
            continue
        out.append((m.group(0), m.start(), m.end()))
        if end := _SHORT_END.match(text, m.end()):  # "1038–40" is 1038 to 1040
            out.append((m.group(0)[:2] + end[1], m.end(), end.end()))
    return sorted(out, key=lambda x: x[1])


def _quote(text: str, at: int) -> str:
    """The passage, or for a long one the 299 characters around ``at``, so the quote a reader sees
    contains the value."""
    if len(text) <= 300:
        return text
    a = max(0, min(at - 120, len(text) - 299))
    return ("…" if a else "") + text[a : a + 299] + ("…" if a + 299 < len(text) else "")


def _facts_in(p: Passage, years: bool = False) -> list[Fact]:
    def fact(kind: Kind, key: str, show: str, at: int = 0) -> Fact:
        return Fact(kind, key, show, p.page, p.start, p.end, _quote(p.text, at))

    out = [
        fact("amount", f"{m.value.currency} {m.value.amount:.2f}", str(m.value), m.start) for m in find_money(p.text)
    ]  # type: ignore[attr-defined]
    out += [fact("percentage", _percent(m.group(1)), _percent(m.group(1)), m.start()) for m in _PCT.finditer(p.text)]
    for m in _PCT_RANGE.finditer(p.text):  # "30-40%", "10 to 30%": the first number is a percentage too
        out.append(fact("percentage", _percent(m.group(1)), _percent(m.group(1)), m.start()))
    for m in _PCT_WORDS.finditer(p.text):
        if (n := number_word(m.group(1))) is not None:
            out.append(fact("percentage", f"{n}%", f"{n}%", m.start()))
    out += [fact("date", d.value.isoformat(), d.value.isoformat(), d.start) for d in find_dates(p.text)]  # type: ignore[attr-defined]
    for f in find_durations(p.text):
        dur: Duration = f.value  # type: ignore[assignment]
        n, unit = dur.key
        out.append(fact("period", f"{n} {unit}", str(dur), f.start))
    if years:
        out += [fact("year", key, key, a) for key, a, _ in find_years(p.text)]
    if _chooses_law(p.text):  # a place is a fact where the law or courts are chosen, not "English version"
        j = merge_jurisdictions([f.value for f in find_jurisdictions(p.text)])  # type: ignore[misc]
        if j is not None:
            out.append(fact("jurisdiction", "GB-EW" if j.code in ("GB-ENG", "GB-EW") else j.code, str(j)))
    return out


_LAW_WORD = re.compile(
    r"\b(?:laws?|courts?|jurisdiction|rechts?|rechtswahl|gerichte?|gerichtsstand|droit|loi|tribunaux|derecho|ley|leyes|"
    r"tribunales|diritto|legge|tribunale|wet|rechtbank)\b",
    re.I,
)


def _chooses_law(text: str) -> bool:
    """A governing-law phrase about law: "governed by the laws of England", not "governed by a mayor"."""
    for m in _LAW_STRONG.finditer(text):
        a = max(text.rfind(".", 0, m.start()), text.rfind("\n", 0, m.start())) + 1
        b = min(x for x in (text.find(".", m.end()), text.find("\n", m.end()), len(text)) if x >= 0)
        if _LAW_WORD.search(text, a, b):
            return True
    return False


@dataclass
class FactComparison:
    """Facts both documents state, and those only one of them states (a difference to look at)."""

    matched: list[tuple[Fact, Fact]] = field(default_factory=list)
    only_left: list[Fact] = field(default_factory=list)
    only_right: list[Fact] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)  # "left" / "right": a side with no text or no fact
    # A period read on one side whose number the other side states without a unit ("unter 18 Jahren" /
    # "under the age of 18"): the same value, not a difference, but not verified as a period either.
    by_value: list[Fact] = field(default_factory=list)

    @property
    def consistent(self) -> bool:
        """Every fact of each side is found on the other, and both sides were read."""
        return (
            not self.unreadable
            and bool(self.matched)
            and not self.only_left
            and not self.only_right
            and not self.by_value
        )


def compare_facts(left: list[Fact], right: list[Fact], kinds: tuple[Kind, ...] = KINDS) -> FactComparison:
    """Match facts by kind and value, as many times as each side states them."""
    out = FactComparison()
    if not left:
        out.unreadable.append("left")
    if not right:
        out.unreadable.append("right")
    for kind in kinds:
        lk = [f for f in left if f.kind == kind]
        rk = [f for f in right if f.kind == kind]
        pool: dict[str, list[Fact]] = {}
        for f in rk:
            pool.setdefault(f.key, []).append(f)
        for f in lk:
            twins = pool.get(f.key)
            if twins:
                out.matched.append((f, twins.pop(0)))
            else:
                out.only_left.append(f)
        out.only_right += [f for fs in pool.values() for f in fs]
    return out


_WORD = re.compile(r"[^\W\d_]+")


def _bare_values(text: str) -> Counter[int]:
    """Whole numbers the text states outside amounts, dates, periods and percentages, in digits
    (``2,000``, ``2.000``, ``2 000``) or in words (``sixteen``, ``sechzehn``)."""
    spans = _typed_spans(text) + [(a, b) for _, a, b in find_years(text)]
    out: Counter[int] = Counter()
    for m in _BARE.finditer(text):
        if not any(a <= m.start() < b for a, b in spans):
            out[int(re.sub(r"\D", "", m.group(0)))] += 1
    out.update(_number_words(text))
    return out


def _number_words(text: str) -> Iterator[int]:
    """The numbers the text writes in words ("sixteen", "sechzehn"; not the article "a", "un")."""
    for w in _WORD.findall(text.lower()):
        n = number_word(w) if len(w) > 2 and w not in _ONE else None
        if n is not None:
            yield n


_ONE = frozenset({"a", "an", "un", "une", "uno", "una", "ein", "eine", "einen", "einem", "einer", "een"})


_BARE = re.compile(r"(?<![\w.,])(?:\d{1,3}(?:[,.\s\u00a0]\d{3})+|\d+)(?![\w%]|[.,]\d)")


def settle_by_value(cmp: FactComparison, left_text: str, right_text: str) -> FactComparison:
    """Move to ``by_value`` each period, year or amount read on one side only whose number the other
    side states as a bare number (once per time it states it): a translator who writes "under the age
    of 18" for "unter 18 Jahren", "1388 parejas" for "1,388 couples" or "900 miljoen" for "EUR 900
    million" changed the wording, not the value. One whose number the other side does not state stays
    a difference."""
    for facts, other in ((cmp.only_left, right_text), (cmp.only_right, left_text)):
        values = _bare_values(other) if any(f.kind in ("period", "year") for f in facts) else Counter()
        numbers = _number_counts(other) if any(f.kind == "amount" for f in facts) else Counter()
        keep = []
        for f in facts:  # each bare number settles one period, as many times as the other side states it
            n = _period_number(f)
            if n is not None and values[n] > 0:
                values[n] -= 1
                cmp.by_value.append(f)
            elif f.kind == "amount" and numbers[v := f"{float(f.key.split()[1]):.6g}"] > 0:
                numbers[v] -= 1  # "EUR 900 million" / "900 miljoen": the currency left out
                cmp.by_value.append(f)
            else:
                keep.append(f)
        facts[:] = keep
    return cmp


def _period_number(f: Fact) -> int | None:
    if f.kind not in ("period", "year"):
        return None
    m = re.fullmatch(r"(\d+)(?: \w+)?", f.show)
    return int(m.group(1)) if m else None


_ANCHOR_WORD = re.compile(r"[^\W\d_]{3,}")
_ANCHOR_NUMBER = re.compile(r"\d+")


@lru_cache(maxsize=16384)
def _anchors(text: str) -> frozenset[str]:
    """What a passage and its translation share whatever the language: digit runs and capitalised
    words (names: "Elway", "Broncos", "Kenvue"; German's capitalised nouns rarely match English)."""
    words = {w for w in _ANCHOR_WORD.findall(text) if w[0].isupper()}
    return frozenset(_ANCHOR_NUMBER.findall(text)) | {without_accents(w) for w in words}


def counterpart(fact: Fact, own: list[Passage], other: list[Passage], window: float | None = 0.2) -> Passage | None:
    """The passage of the other document that says what ``fact``'s passage says: among the passages
    at about the same place in the document (``window``: a share of its length, and one passage more,
    as a heading may be a passage of its own in one language and not the other; None: anywhere), the
    one sharing most numbers and names with it; None when none shares any. A translation keeps the
    order of its source, so a changed value's counterpart is where the original value is stated."""
    at = _index(own).get((fact.page, fact.char_start))
    if at is None:
        return None
    j = _counterpart_at(at, own, other, window)
    return None if j is None else other[j]


def _index(ps: list[Passage]) -> dict[tuple[int, int], int]:
    """Each passage's position in ``ps`` by (page, start): where a fact's passage is."""
    return {(p.page, p.start): i for i, p in enumerate(ps)}


def _aligned(at: int, own: list[Passage], other: list[Passage], window: float | None) -> int | None:
    """``counterpart``'s passage for own[at], or, within a window, the one at the same place when
    none shares a number or a name with it (the changed value was the only one)."""
    j = _counterpart_at(at, own, other, window)
    if j is None and window is not None and other:
        j = round(at / max(1, len(own) - 1) * (len(other) - 1))
    return j


def _counterpart_at(at: int, own: list[Passage], other: list[Passage], window: float | None) -> int | None:
    if not other:
        return None
    mine = _anchors(own[at].text)
    n = len(other)
    where = at / max(1, len(own) - 1) * (n - 1)  # the same place, as an index into ``other``
    lo, hi = 0, n - 1
    if window is not None:  # a share of the length, and one passage more (a short text)
        reach = window * (n - 1) + 1
        lo, hi = max(0, math.floor(where - reach)), min(n - 1, math.ceil(where + reach))
    best: tuple[int, float, int] | None = None
    for j in range(lo, hi + 1):
        shared = len(mine & _anchors(other[j].text))
        dist = abs(j - where)
        if shared and (best is None or (shared, -dist) > (best[0], best[1])):
            best = (shared, -dist, j)
    return best[2] if best else None


# A number stated with digits, outside the facts above: a count ("27 Mitgliedstaaten"), a measure, a
# number of a text ("Änderungsantrag 12"). Thousands and decimal separators of any locale, and a
# scale word after it ("1,5 Milliarden", "1.500 millones").
_NUMERAL = re.compile(
    r"(?<![\w.,/])(?:\d{1,3}(?:[,.\u00a0\u202f ]\d{3})+(?:[.,]\d+)?|\d+(?:[.,]\d+)?)(?![\w%/]|[.,]\d)"
)
_ANY_DIGITS = re.compile(r"\d{1,3}(?:[,.\u00a0\u202f ]\d{3})+(?:[.,]\d+)?|\d+(?:[.,]\d+)?")
_SCALE_AFTER = re.compile(r"\s*(?P<w>mil\s+millones|[^\W\d_]+)\.?", re.I)


_RANGE_SCALE = re.compile(r"\s?(?:[-–]|to|bis|à|a|al|tot|e|and|und|et|y|en)\s?\d[\d.,]*\s*(?P<w>[^\W\d_]+)\.?", re.I)


def _number_values(raw: str, after: str = "") -> set[str]:
    """The values a numeral may mean: "1,388" is 1388 in English and 1.388 in German; with a scale
    word after it ("1,5 Milliarden" = "1.5 billion")."""
    s = re.sub(r"[\u00a0\u202f ]", "", raw)
    out = {float(re.sub(r"\D", "", s))}
    for dec, thou in ((".", ","), (",", ".")):
        head, _, tail = s.rpartition(dec) if dec in s else (s, "", "")
        if head and thou not in tail:
            with contextlib.suppress(ValueError):
                out.add(float(head.replace(thou, "").replace(dec, "") + "." + tail))
    scale = None
    for pattern in (_SCALE_AFTER, _RANGE_SCALE):  # "1,5 Milliarden"; "30 to 50 thousand": 30 thousand
        if (m := pattern.match(after)) and (scale := _MULT_WORDS.get(" ".join(m["w"].lower().split()))):
            break
    if scale:
        out |= {v * scale for v in out}
    keys = {f"{v:.6g}" for v in out}
    if u := _UNIT_AFTER.match(after):  # "20 miles" = "32 km": a translator converts measures
        unit = _unit_of(u["u"])
        to = _OTHER_UNIT[unit]
        for v in out:
            w = _UNITS[unit](v)
            keys.add(f"{v:.6g}@{unit}")  # as stated, and as converted ("~"): one matches only the other
            keys |= {f"{x:.6g}@{to}~" for x in (round(w), round(w, 1))}
    return keys


def _across(key: str) -> str:
    """The key under which the other document states the same measure: "32@km~" (converted from 20
    miles) is matched by a stated "32@km", and the other way round; a plain value by itself."""
    return key[:-1] if key.endswith("~") else key + "~" if "@" in key else key


# Measures a translation may restate in the other system of units, as the factor to it.
_UNIT_WORDS = {
    "mile": ("miles", "mile", "mi", "meilen", "meile", "milles", "millas", "milla", "miglia", "miglio",
             "mijl"),
    "km": ("km", "kilometres", "kilometers", "kilometre", "kilometer", "kilometern", "kilomètres", "kilomètre",
           "kilómetros", "kilómetro", "chilometri", "chilometro"),
    "ft": ("feet", "foot", "ft", "fuß", "fuss", "pieds", "pies", "piedi", "voet"),
    "m": ("m", "metres", "meters", "metre", "meter", "metern", "mètres", "mètre", "metros", "metro", "metri"),
    "in": ("inches", "inch", "zoll", "pouces", "pulgadas", "pollici", "duim"),
    "cm": ("cm", "centimetres", "centimeters", "zentimeter", "centimètres", "centímetros", "centimetri"),
    "lb": ("lb", "lbs"),
    "kg": ("kg", "kilograms", "kilogrammes", "kilogramm", "kilogramos", "chilogrammi", "kilo", "kilos"),
    "acre": ("acres", "acre"),
    "ha": ("ha", "hectares", "hektar", "hectáreas", "ettari"),
    "sqmi": ("square miles", "sq mi", "quadratmeilen", "milles carrés", "millas cuadradas", "miglia quadrate"),
    "km2": ("km2", "km²", "square kilometres", "square kilometers", "quadratkilometer", "quadratkilometern",
            "kilomètres carrés", "kilómetros cuadrados", "chilometri quadrati"),
    "F": ("°f", "degrees fahrenheit", "grad fahrenheit"),
    "C": ("°c", "degrees celsius", "grad celsius", "degrés celsius", "grados celsius", "gradi celsius"),
    "gal": ("gallons", "gallon", "gallonen", "galones"),
    "l": ("litres", "liters", "litre", "liter", "litern", "litros", "litri"),
}  # fmt: skip
_UNITS: dict[str, Callable[[float], float]] = {
    "mile": lambda v: v * 1.609344, "km": lambda v: v / 1.609344, "ft": lambda v: v * 0.3048,
    "m": lambda v: v / 0.3048, "in": lambda v: v * 2.54, "cm": lambda v: v / 2.54, "lb": lambda v: v * 0.45359237,
    "kg": lambda v: v / 0.45359237, "acre": lambda v: v * 0.40468564, "ha": lambda v: v / 0.40468564,
    "sqmi": lambda v: v * 2.58998811, "km2": lambda v: v / 2.58998811, "F": lambda v: (v - 32) * 5 / 9,
    "C": lambda v: v * 9 / 5 + 32, "gal": lambda v: v * 3.78541178, "l": lambda v: v / 3.78541178,
}  # fmt: skip
_PAIRS = (("mile", "km"), ("ft", "m"), ("in", "cm"), ("lb", "kg"), ("acre", "ha"), ("sqmi", "km2"), ("F", "C"),
          ("gal", "l"))  # fmt: skip
_OTHER_UNIT = {a: b for a, b in _PAIRS} | {b: a for a, b in _PAIRS}
_UNIT_OF = {w: unit for unit, words in _UNIT_WORDS.items() for w in words}
_UNIT_AFTER = re.compile(
    r"\s?(?P<u>" + "|".join(sorted(map(re.escape, _UNIT_OF), key=len, reverse=True)) + r")(?![\w²])", re.I
)


def _unit_of(word: str) -> str:
    return _UNIT_OF[" ".join(word.lower().split())]


def _number_counts(text: str) -> Counter[str]:
    """How many times the text states each value, in digits or in words (a numeral that may mean
    two values counts for both)."""
    out: Counter[str] = Counter()
    for m in _ANY_DIGITS.finditer(text):
        out.update(_number_values(m.group(0), text[m.end() : m.end() + 20]))
    out.update(f"{float(n):.6g}" for n in _number_words(text))
    for m in _ROMAN.finditer(text):  # "Category I" = "rubriek 1", "Titel IV" = "Title 4"
        before = text[max(0, m.start() - 40) : m.start()].split()
        if len(m.group(1)) > 1 or (before and before[-1][0].isupper()):  # not the pronoun in "and I think"
            out[f"{float(_roman(m.group(1))):.6g}"] += 1
    return out


# A Roman numeral after a word ("Category II", "Annex IV", "siglo XIX"); one letter only after a
# capitalised word ("Category I", "Title V")
_ROMAN = re.compile(
    r"(?<=[^\W\d_]\s)(?=[MDCLXVI])(M{0,3}(?:CM|CD|D?C{0,3})(?:XC|XL|L?X{0,3})(?:IX|IV|V?I{0,3}))(?![\w'’])"
)


def _roman(numeral: str) -> int:
    values = {"I": 1, "V": 5, "X": 10, "L": 50, "C": 100, "D": 500, "M": 1000}
    total = 0
    for a, b in zip(numeral, numeral[1:] + " ", strict=True):
        total += -values[a] if b != " " and values[b] > values[a] else values[a]
    return total


def number_spans(text: str) -> list[tuple[int, int]]:
    """Where the text states a number with digits outside amounts, percentages, dates, periods and
    years."""
    spans = _typed_spans(text) + [m.span() for m in _PCT_RANGE.finditer(text)]
    spans += [(a, b) for _, a, b in find_years(text)]
    return [m.span() for m in _NUMERAL.finditer(text) if not any(a <= m.start() < b for a, b in spans)]


def number_facts(pages: dict[int, str]) -> list[Fact]:
    """Every number the document states with digits outside the other kinds of fact, with its passage."""
    out = []
    for p in passages(pages):
        t = p.text
        for a, b in number_spans(t):
            key = "|".join(sorted(_number_values(t[a:b], t[b : b + 20])))
            out.append(Fact("number", key, t[a:b], p.page, p.start, p.end, _quote(t, a)))
    return out


def compare_numbers(
    left: list[Fact],
    right: list[Fact],
    left_pages: dict[int, str],
    right_pages: dict[int, str],
    window: float | None = 0.2,
) -> tuple[FactComparison, list[Fact]]:
    """Numbers of one document looked up where the other says the same thing, whatever the locale or
    wording (digits, words, Roman numerals, converted units). The passages are aligned first: each is
    joined to its counterpart in the other document (``counterpart``; the one at the same place when
    none shares a number or a name with it), and passages joined directly or through others form one
    block (one sentence in English may be three passages in Dutch). A number is matched when the
    other document's side of its block states its value at least as often as its own side does
    ("20–18 ... 17 seconds" / "20 a 18 ... 18 segundos": one 18 too many). Not matched on both sides
    of one block: a *difference* on both sides (a number was changed: "27 Member States" / "28
    Mitgliedstaaten"). Otherwise *not verified*: the other side words it in a way not read, or leaves
    it out; the same value stated elsewhere in the other document does not count, as a changed
    number may equal another one. ``window``: as for ``counterpart``."""
    lp, rp = passages(left_pages), passages(right_pages)
    parent: dict[tuple[str, int], tuple[str, int]] = {}

    def find(x: tuple[str, int]) -> tuple[str, int]:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for side, own, other, there in (("L", lp, rp, "R"), ("R", rp, lp, "L")):
        for i in range(len(own)):
            if (j := _aligned(i, own, other, window)) is not None:
                parent[find((side, i))] = find((there, j))
    counts: dict[tuple[str, tuple[str, int]], Counter[str]] = {}
    for side, ps in (("L", lp), ("R", rp)):
        for i, p in enumerate(ps):
            key = (side, find((side, i)))
            counts[key] = counts.get(key, Counter()) + _number_counts(p.text)

    def lost(facts: list[Fact], side: str, ps: list[Passage], there: str) -> dict[int, tuple[str, int] | None]:
        where = _index(ps)
        out: dict[int, tuple[str, int] | None] = {}
        for n, f in enumerate(facts):
            if (i := where.get((f.page, f.char_start))) is None:
                continue
            b = find((side, i))
            mine, theirs = counts.get((side, b), Counter()), counts.get((there, b), Counter())
            if not any(theirs[_across(v)] >= mine[v] for v in f.key.split("|")):
                out[n] = b
        return out

    lost_l, lost_r = lost(left, "L", lp, "R"), lost(right, "R", rp, "L")
    out = FactComparison()
    out.matched = [(f, f) for n, f in enumerate(left) if n not in lost_l]
    blocks_l, blocks_r = set(lost_l.values()), set(lost_r.values())
    out.only_left = [left[n] for n, b in lost_l.items() if b in blocks_r]
    out.only_right = [right[n] for n, b in lost_r.items() if b in blocks_l]
    unverified = [left[n] for n, b in lost_l.items() if b not in blocks_r]
    unverified += [right[n] for n, b in lost_r.items() if b not in blocks_l]
    return out, unverified


# A defined term: ("the Borrower"), (le « Prêteur »), (die „Darlehensnehmerin"), (hereinafter "Bank").
_QUOTES = "\"“”«»„‘’'"
# The term starts with a capital letter: (el "extremo del muro") is a gloss, not a definition.
DEFINED_TERM = re.compile(
    rf"\(\s*(?:(?i:the|hereinafter|ci-après|le|la|les|der|die|das|de|het|il|lo|gli|el|los)\s+|(?i:l)['’]\s*)?"
    rf"[{_QUOTES}]\s*(?P<term>[A-ZÀ-Ý][^{_QUOTES}()]{{0,60}}?)\s*[{_QUOTES}]\s*\)"
)


def defined_term_facts(pages: dict[int, str]) -> list[Fact]:
    """Every term the document defines, with its passage (the first definition of each term)."""
    out, seen = [], set()
    for p in passages(pages):
        for m in DEFINED_TERM.finditer(p.text):
            key = " ".join(m["term"].casefold().split())
            if key not in seen:
                seen.add(key)
                out.append(Fact("defined_term", key, m["term"], p.page, p.start, p.end, _quote(p.text, m.start())))
    return out


def compare_defined_terms(
    left: list[Fact],
    right: list[Fact],
    left_pages: dict[int, str],
    right_pages: dict[int, str],
    same_language: bool,
    window: float | None = 0.2,
) -> FactComparison:
    """Defined terms of two documents. In one language, a term is found when the other defines the
    same term. Across languages a term is translated, so it is paired with the term the other
    document defines in the corresponding passage (``counterpart``; the one at the same place when
    none shares a number or a name), in order: a definition with no counterpart definition is a
    difference. The pairs are shown, as a glossary would: that "Emprunteur" renders "Borrower" is
    the reader's to judge."""
    out = FactComparison()
    if same_language:
        keys = ({f.key for f in left}, {f.key for f in right})
        out.matched = [(f, next(g for g in right if g.key == f.key)) for f in left if f.key in keys[1]]
        out.only_left = [f for f in left if f.key not in keys[1]]
        out.only_right = [g for g in right if g.key not in keys[0]]
        return out
    lp, rp = passages(left_pages), passages(right_pages)
    where = _index(lp)
    used: set[int] = set()
    for f in left:
        i = where.get((f.page, f.char_start))
        j = None if i is None else _aligned(i, lp, rp, window)
        twin = next(
            (n for n, g in enumerate(right) if n not in used and j is not None and g.page == rp[j].page
             and g.char_start == rp[j].start),
            None,
        )  # fmt: skip
        if twin is None:
            out.only_left.append(f)
        else:
            used.add(twin)
            out.matched.append((f, right[twin]))
    out.only_right = [g for n, g in enumerate(right) if n not in used]
    return out


# A party is a name with a legal form: "Nordbank Luxembourg S.A.", "Rheintal Logistik SE". Words that
# also end ordinary names ("Company", "Bank", "Trust": "the World Bank") are left out, and so are the
# capitalised words before the name that only start the sentence or, in German, are nouns.
_LEGAL_FORM = (
    r"(?:Inc|Incorporated|Corp|Corporation|LLC|L\.L\.C|Ltd|Limited|LP|L\.P|LLP|L\.L\.P|PLC|plc|GmbH|AG|SE|"
    r"S\.A|SA|N\.V|NV|B\.V|BV|S\.p\.A|SpA|SAS|SARL|S\.à\s?r\.l|Pte|Pty|KG|KGaA|AB|ASA|A/S|Oy|S\.L|S\.R\.L)\b\.?"
)
# Name words: capitalised, an initial may end with a point ("Arley D."), a long word may not (it ends a sentence).
_PARTY_NAME = re.compile(rf"\b(?:[A-Z][\w&'-]*\s+|[A-Z][\w&'-]{{0,2}}\.\s+){{1,5}}{_LEGAL_FORM}")
_CORE_WORDS = 3  # "Nordbank Luxembourg S.A.": a changed first word is a different party


def _norm_name(text: str) -> str:
    # "L.P." = "LP", "S.A." = "SA"; other punctuation separates words ("Bloomberg L.P., CEO")
    return " ".join(re.sub(r"[^\w&/]+", " ", text.replace(".", "")).casefold().split())


def party_core(name: str, words: int = _CORE_WORDS) -> str:
    """What two documents compare a party on: its last words with the legal form, normalised."""
    return " ".join(_norm_name(name).split()[-words:])


def party_facts(pages: dict[int, str]) -> list[Fact]:
    """Every name with a legal form the document states, with its passage."""
    out = []
    for p in passages(pages):
        for m in _PARTY_NAME.finditer(p.text):
            name = m.group(0).rstrip(".") if m.group(0).endswith(".") and "." not in m.group(0)[:-1] else m.group(0)
            quote = p.text if len(p.text) <= 300 else p.text[:299] + "…"
            out.append(Fact("party", party_core(name), name, p.page, p.start, p.end, quote))
    return out


def compare_parties(
    left: list[Fact], right: list[Fact], left_text: str, right_text: str
) -> tuple[FactComparison, list[Fact]]:
    """Each party of one document looked up by name in the other, wherever and however it is
    introduced there: found when its last three words are (name and legal form), a difference when
    not even its last two are, and *not verified* in between: "Die Firma Energiprojekt AB" against
    "Energiprojekt AB" (a German noun before the name) cannot be told from a changed first word."""
    out, unverified = FactComparison(), []
    texts = (f" {_norm_name(left_text)} ", f" {_norm_name(right_text)} ")
    for facts, other, other_facts, only in (
        (left, texts[1], right, out.only_left),
        (right, texts[0], left, out.only_right),
    ):
        seen: set[str] = set()
        for f in facts:
            if f.key in seen:  # each party once
                continue
            seen.add(f.key)
            if f" {f.key} " in other:
                if only is out.only_left:
                    out.matched.append((f, next((g for g in other_facts if f.key in g.key or g.key in f.key), f)))
            elif f" {party_core(f.key, 2)} " in other:
                unverified.append(f)
            else:
                only.append(f)
    return out, unverified


def fact_counts(facts: list[Fact]) -> Counter[Kind]:
    return Counter(f.kind for f in facts)
