"""Read the figure a question asks for from a financial table: the row (line item), the column
(period) and the table's unit, quoted with its labels so a number is never shown without them.

Tables come from the PDF parser (:mod:`sovra.connectors.pdf_tables`) as one line per row, each value
labelled with its period column, under a header that names the unit::

    (Millions) | 2018 | 2017 | 2016
    Purchases of property, plant and equipment (PP&E) | 2018: (1,577) | 2017: (1,373) | 2016: (1,420)

A question names a line item in analyst's words ("capital expenditure", "net PP&E", "EPS"); the
statement names it in reporting words ("Purchases of property, plant and equipment"). The glossary
below maps the common analyst terms and abbreviations of US GAAP and IFRS statements to the line
item wordings they stand for: general accounting vocabulary, no company's or filing's wording. A row
is picked only when its label's words are (nearly) all in the question or its glossary expansion,
so a question about something no row names gets nothing from here, never a neighbouring figure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Analyst term (regex over the lower-cased question) -> the line-item words it stands for, and among
# them the ones that tell its row from its neighbours' (capex is a purchase of PP&E, not PP&E).
GLOSSARY: tuple[tuple[str, str, str], ...] = (
    (r"\bcapex\b|\bcapital (?:expenditures?|spending)\b",
     "capital expenditures purchases payments additions property plant equipment",
     "capital expenditures purchases payments additions"),
    (r"\bpp&?e\b|\bppne\b|\bfixed assets\b", "property plant equipment", "property"),
    (r"\bcogs\b", "cost of goods sold sales revenue", "cost"),
    (r"\bsg&a\b", "selling general administrative expenses", "selling administrative"),
    (r"\bd&a\b", "depreciation amortization", "depreciation amortization"),
    (r"\br&d\b", "research development", "research"),
    (r"\beps\b", "earnings per share", "per share"),
    (r"\bebit\b", "operating income earnings before interest taxes", "operating before"),
    (r"\b(?:top line|turnover)\b", "revenue revenues sales", "revenue revenues sales"),
    (r"\brevenues?\b", "revenue revenues sales", "revenue revenues sales"),
    (r"\bnet (?:profit|earnings|income)\b", "net income earnings profit", "income earnings profit"),
    (r"\b(?:operating cash flows?|cash from operations)\b", "net cash provided operating activities", "operating"),
    (r"\b(?:receivables|a/r)\b", "accounts receivable", "receivable"),
    (r"\b(?:payables|a/p)\b", "accounts payable", "payable"),
    (r"\bshareholders'? equity\b|\bstockholders'? equity\b|\bbook value\b",
     "total shareholders stockholders equity", "equity"),
    (r"\bdividends?\b", "dividends paid cash", "dividends"),
    (r"\bbuybacks?\b|\bshare repurchases?\b", "purchases repurchases treasury stock common",
     "purchases repurchases treasury"),
)  # fmt: skip
_STOP = frozenset({
    "a", "an", "and", "the", "of", "for", "to", "in", "on", "at", "by", "from", "with", "as", "or", "per", "its",
    "their", "our", "this", "that", "than", "what", "which", "is", "was", "were", "be", "including", "less", "total",
    "other",
})  # fmt: skip
_SCALE = {"thousand": 1e3, "thousands": 1e3, "million": 1e6, "millions": 1e6, "billion": 1e9, "billions": 1e9}
_UNIT_IN_HEADER = re.compile(r"\b(thousands?|millions?|billions?)\b", re.I)
_ASKED_UNIT = re.compile(
    r"\bin (?:(?:usd|us\$|\$|eur|€|gbp|£|dollars?|euros?)\s+)?(thousands?|millions?|billions?)\b", re.I
)
_YEAR = re.compile(r"(?<!\d)(?:fy\s?|fiscal (?:year )?)?((?:19|20)\d\d)(?!\d)", re.I)
_HEADER = re.compile(r"^(?P<label>[^|]*)\|(?P<cells>(?:\s*(?:19|20)\d\d\s*\|?)+)$")
_CELL = re.compile(r"^\s*(?P<period>(?:19|20)\d\d)(?: \(continued\))?:\s*(?P<value>.+?)\s*$")
_WORD = re.compile(r"[a-z&]+")
_MAX_UNIT_LINE = 80  # "(In millions, except per share data)": a longer line is prose


@dataclass(frozen=True)
class Cell:
    label: str  # the row's line item
    period: str  # the column
    value: str  # as printed: "(1,577)", "$8,738"
    unit: str  # the header's unit line: "(Millions)", "(Dollars in millions, except per share amount)"
    row: str  # the whole row, as the table gives it
    start: int  # the row's offset in the text it was read from

    def number(self) -> float | None:
        raw = self.value.replace("$", "").replace(",", "").strip()
        m = re.fullmatch(r"\(?(-?\d+(?:\.\d+)?)\)?%?", raw)
        if m is None:
            return None
        return -float(m.group(1)) if raw.startswith("(") else float(m.group(1))


def _words(text: str) -> set[str]:
    out = set()
    for w in _WORD.findall(text.lower().replace("’", "'")):
        w = w.strip("&")
        if len(w) > 1 and w not in _STOP:
            out.add(w[:-1] if w.endswith("s") and len(w) > 3 and not w.endswith("ss") else w)
    return out


def asked_terms(question: str) -> set[str]:
    """The question's words, with the line-item words its analyst terms stand for."""
    low = question.lower()
    extra = " ".join(words for pattern, words, _ in GLOSSARY if re.search(pattern, low))
    return _words(f"{question} {extra}")


def key_terms(question: str) -> set[str]:
    """The words that single out the row of each analyst term the question uses."""
    low = question.lower()
    return _words(" ".join(key for pattern, _, key in GLOSSARY if re.search(pattern, low)))


def asked_periods(question: str) -> list[str]:
    return list(dict.fromkeys(m.group(1) for m in _YEAR.finditer(question)))


def cells(text: str) -> list[Cell]:
    """Every labelled cell of the tables in ``text`` (rows under a period header)."""
    out: list[Cell] = []
    unit = unit_line = ""
    pos = 0
    for line in text.splitlines(keepends=True):
        start, pos = pos, pos + len(line)
        line = line.strip()
        h = _HEADER.match(line)
        if h:
            # The unit is the header's label ("(Millions) | 2018 | 2017") or a line above it ("(In millions)").
            label = h.group("label").strip()
            unit = label if _UNIT_IN_HEADER.search(label) else (unit_line or label)
            continue
        if "|" not in line and len(line) <= _MAX_UNIT_LINE and _UNIT_IN_HEADER.search(line):
            unit_line = line
        parts = [p.strip() for p in line.split("|")]
        if len(parts) < 2:
            continue
        for part in parts[1:]:
            m = _CELL.match(part)
            if m:
                out.append(Cell(parts[0], m.group("period"), m.group("value"), unit, line, start))
    return out


def last_header(text: str) -> str:
    """The last period header line of ``text`` ("(Millions) | 2018 | 2017"), after the unit line
    above it where it has one ("(In millions)"), or ""."""
    found, unit_line = "", ""
    for line in (x.strip() for x in text.splitlines()):
        if _HEADER.match(line):
            found = f"{unit_line}\n{line}" if unit_line and not _UNIT_IN_HEADER.search(line) else line
        elif "|" not in line and len(line) <= _MAX_UNIT_LINE and _UNIT_IN_HEADER.search(line):
            unit_line = line
    return found


def _scale(unit: str) -> float | None:
    m = _UNIT_IN_HEADER.search(unit)
    return _SCALE[m.group(1).lower()] if m else None


def asked_scale(question: str) -> tuple[str, float] | None:
    m = _ASKED_UNIT.search(question)
    return (m.group(1).lower(), _SCALE[m.group(1).lower()]) if m else None


def match_score(question_terms: set[str], label: str) -> tuple[int, float]:
    """(label words the question asks for, share of the label's words it asks for)."""
    words = _words(label)
    if not words:
        return 0, 0.0
    shared = len(words & question_terms)
    return shared, shared / len(words)


# A question asks for a figure ("what is/was", "how much", "amount", "in USD millions"), not for a
# choice or a yes/no ("which segment ...", "is 3M ...?"): only the first gets a table cell.
_ASKS_FIGURE = re.compile(
    r"\bhow (?:much|many)\b|\bamount\b|\bvalue\b|\bwhat (?:is|was|were|are)\b|"
    r"\bin (?:(?:usd|us\$|\$|eur|€|gbp|£)\s*)?(?:thousands|millions|billions)\b",
    re.I,
)
_ASKS_OTHER = re.compile(
    r"^\s*(?:which|who|why|whether|is|are|does|do|did|was|were|has|have|can|could|will|would|should)\b|\bwhich\b",
    re.I,
)


def asks_figure(question: str) -> bool:
    return bool(_ASKS_FIGURE.search(question)) and not _ASKS_OTHER.search(question)


def asks_one_figure(question: str) -> bool:
    """The question asks for a figure of exactly one period ("FY2015 - FY2017 average" is arithmetic)."""
    return len(asked_periods(question)) == 1 and asks_figure(question)


MIN_SHARED = 2
MIN_COVERAGE = 0.66  # two of a three-word label


def best_cell(question: str, texts: list[str]) -> tuple[int, Cell, str] | None:
    """The cell of ``texts`` (in rank order) that answers ``question``: the row whose line item the
    question names (most of its analyst terms' distinguishing words, then most label words asked,
    then the larger share, then the earlier text), the
    column of the one period it asks for. Returns (text index, cell, the figure in the asked unit
    when the question asks for another scale than the table's, else ""). None when the question
    names no single period or no row's label is (nearly) all asked for."""
    if not asks_one_figure(question):
        return None
    periods = asked_periods(question)
    terms = asked_terms(question) - {periods[0]}
    keys = key_terms(question)
    best: tuple[tuple[int, int, float, int], int, Cell] | None = None
    for i, text in enumerate(texts):
        for c in cells(text):
            if c.period != periods[0]:
                continue
            shared, coverage = match_score(terms, c.label)
            # a one-word line item ("Goodwill") is enough when the question names it
            if (shared < MIN_SHARED and coverage < 1.0) or not shared or coverage < MIN_COVERAGE:
                continue
            key = (len(_words(c.label) & keys), shared, coverage, -i)
            if best is None or key > best[0]:
                best = (key, i, c)
    if best is None:
        return None
    _, i, c = best
    converted = ""
    asked, table = asked_scale(question), _scale(c.unit)
    n = c.number()
    if asked and table and n is not None and asked[1] != table:
        converted = f"{abs(n) * table / asked[1]:.3g} {asked[0].rstrip('s')}"
    return i, c, converted


def cell_line(cell: Cell, converted: str, page: int | None) -> str:
    """The figure with its row and column labels, the table's unit and page: what an extractive
    answer leads with."""
    unit = f" {cell.unit}" if _UNIT_IN_HEADER.search(cell.unit) or re.search(r"[$€£%]|dollars|euros", cell.unit) else ""
    where = f", table on page {page}" if page else ""
    conv = f" = {converted}" if converted else ""
    return f"{cell.label}, {cell.period}: {cell.value}{unit}{conv}{where}"
