"""What a question is about, read from its own words: the names it gives, the period it asks for,
whether it asks about money; and citations renumbered in the order the answer first uses them.

The planner is a small model that proposes a counterparty and a year; these checks keep an answer
to what the question actually says (a year the question does not name is not the period asked).
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
from typing import Any

# Payment questions: only these get ledger lines.
MONEY = re.compile(
    r"\b(paid|pay|payments?|spent|spend|spending|invoiced?|invoices|booked|charged|transferred|outflows?)\b", re.I
)
_YEAR = re.compile(r"\b(20\d\d)\b")
_RELATIVE_YEAR = {"this year": 0, "current year": 0, "last year": -1, "previous year": -1, "past year": -1}
# Capitalised words that start a question or are calendar words are not names of anything.
_NOT_NAMES = frozenset(
    """a an the and or but if of in on at to for from by with about as is are was were be been do does did
    can could may might must shall should will would what which who whom whose when where why how i we you
    our my your their its it this that these those there here please tell show give list find any all
    january february march april may june july august september october november december monday tuesday
    wednesday thursday friday saturday sunday yes no ok hello hi""".split()  # noqa: SIM905
)
_WORD = re.compile(r"[A-Za-z][\w&'.-]*")
# Words that say the question is about one party's document (its terms), not a general rule.
_ABOUT_DOCUMENT = re.compile(r"\b(contract|agreement|lease|licen[cs]e|terms?|sla|addendum|amendment)\b", re.I)


# A turn that opens with a connective continues the conversation's subject ("And how many days ...").
_FOLLOW_UP = re.compile(r"^\W*(and|but|also|so|then|what about|how about|same for|what if)\b", re.I)


def is_follow_up(question: str) -> bool:
    return bool(_FOLLOW_UP.match(question)) and not named_parties(question)


_AMOUNT = re.compile(r"(?:EUR|USD|GBP|CHF|€|\$|£)\s?(\d[\d,]*(?:\.\d+)?)", re.I)
# Words between two amounts that make them a band: "above EUR 50 and up to EUR 150", "EUR 1 to EUR 5".
_BAND = re.compile(r"^\s*(?:and\s+)?(?:up\s+to|to|and|until|below|under)\b|^\s*[-–]\s*$", re.I)


def _amounts(text: str) -> list[tuple[float, int, int]]:
    return [(float(m.group(1).replace(",", "")), m.start(), m.end()) for m in _AMOUNT.finditer(text)]


def asked_amount(question: str) -> float | None:
    """The money amount a question gives ("a gift worth EUR 120"), if exactly one."""
    found = _amounts(question)
    return found[0][0] if len(found) == 1 else None


def brackets(unit: str, amount: float) -> bool:
    """Whether ``unit`` states a band of amounts that holds ``amount`` (a threshold rule for it)."""
    found = _amounts(unit)
    for (lo, _, lo_end), (hi, hi_start, _) in itertools.pairwise(found):
        between = unit[lo_end:hi_start]
        if lo < amount <= hi and len(between.strip()) <= 10 and _BAND.search(between):
            return True
    return False


_HOW_MANY = re.compile(r"\bhow\s+many\s+([a-z]+)", re.I)


def states_quantity(question: str, unit: str) -> bool:
    """For "how many days ..." questions: whether ``unit`` gives a number of days ("3 days")."""
    m = _HOW_MANY.search(question)
    if not m:
        return False
    noun = m.group(1).lower().rstrip("s")
    return re.search(rf"\b\d[\d,.]*\s+(?:[a-z-]+\s+)?{re.escape(noun)}s?\b", unit, re.I) is not None


def asks_about_money(question: str) -> bool:
    return bool(MONEY.search(question))


def asked_year(question: str, today: dt.date) -> int | None:
    """The calendar year the question names (digits or 'this/last year'); None when it names none."""
    years = [int(y) for y in _YEAR.findall(question) if 2000 <= int(y) <= today.year]
    if years:
        return years[0]
    low = question.lower()
    for phrase, delta in _RELATIVE_YEAR.items():
        if phrase in low:
            return today.year + delta
    return None


def named_parties(question: str) -> list[str]:
    """Proper names in the question: runs of capitalised words (not all capitals, not function words).

    "Can we terminate the Acme Office Supplies contract?" -> ["Acme Office Supplies"]."""
    names: list[str] = []
    run: list[str] = []
    for m in _WORD.finditer(question):
        w = m.group(0).rstrip(".'")
        proper = w[:1].isupper() and not w.isupper() and w.lower() not in _NOT_NAMES
        # A run ends at punctuation between words as well as at a lowercase word.
        gap = question[m.start() - 1] if m.start() else " "
        if run and (not proper or gap not in " "):
            names.append(" ".join(run))
            run = []
        if proper:
            run.append(w)
    if run:
        names.append(" ".join(run))
    return names


def _key(name: str) -> str:
    # The first word is the distinctive one ("Acme" of "Acme Office Supplies GmbH").
    return name.split()[0].lower()


def mentions(source: dict[str, Any], name: str) -> bool:
    hay = f"{source.get('title', '')} {source.get('counterparty', '')} {source.get('text', '')}".lower()
    return re.search(rf"\b{re.escape(_key(name))}\b", hay) is not None


def scope_to_named(question: str, sources: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], str | None, str | None]:
    """Keep the sources about the party the question names; and the name when none is about it.

    Only names that some source mentions narrow the sources (a city or a product in a policy
    question need not be anywhere); a question about a named party's contract whose name no
    readable source mentions gets the name back, to say no document about it is available.
    Returns (sources, the name they were narrowed to, the name nothing readable is about)."""
    names = named_parties(question)
    for name in names:
        kept = [s for s in sources if mentions(s, name)]
        if kept:
            return kept, name, None
    if names and _ABOUT_DOCUMENT.search(question):
        return [], None, names[0]
    return sources, None, None


def renumber(
    text: str, sources: list[dict[str, Any]], cited: list[int] | None = None
) -> tuple[str, list[int], list[dict[str, Any]]]:
    """Number citations 1, 2, 3 in the order the text first uses them (then any other ``cited``);
    sources reordered to match."""
    order: list[int] = []
    for m in re.finditer(r"\[(\d{1,3})\]", text):
        n = int(m.group(1))
        if 1 <= n <= len(sources) and n not in order:
            order.append(n)
    order += [n for n in sorted(set(cited or [])) if 1 <= n <= len(sources) and n not in order]
    new = {old: i for i, old in enumerate(order, start=1)}
    rest = [i for i in range(1, len(sources) + 1) if i not in new]
    for i in rest:
        new[i] = len(new) + 1

    def sub(m: re.Match[str]) -> str:
        n = int(m.group(1))
        return f"[{new[n]}]" if n in new else m.group(0)

    text = re.sub(r"\[(\d{1,3})\]", sub, text)
    reordered = [sources[old - 1] for old in sorted(new, key=new.__getitem__)]
    return text, list(range(1, len(order) + 1)), reordered
