"""Rebuild the tables of a PDF page from its text layer, so that a number keeps its row and column.

pypdf emits a financial statement as one cell per line ("Net sales", "$", "32,765", "$", "31,657")
or as a row per line ("Net sales $ 32,765 $ 31,657"). Both become one line per row, each value
labelled with its column when the table has a header of periods:

    (Millions, except per share amounts) | 2018 | 2017 | 2016
    Net sales | 2018: $32,765 | 2017: $31,657 | 2016: $30,109

A table is a header row (cells that are all years, optionally with a label such as the unit line)
followed by rows whose value count matches it, or a run of at least ``MIN_ROWS`` rows with the same
number of values (then the cells are unlabelled). Section lines without values ("Operating
expenses") stay inside the table. A page that opens with rows matching the previous page's header
(a table running onto the next page) gets that header again, marked "(continued)". Everything
that is not a table is left as it was. The rules read the text's shape only: no company, statement
or file is named anywhere.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from sovra.documents import TableSpan

MIN_ROWS = 3  # rows with values for a run without a period header to count as a table
MAX_LABEL_ONLY = 2  # consecutive value-less lines a table may hold (section headings) before it ends
MAX_SECTION_CHARS = 120  # a longer value-less line is prose: the table ends before it

_NUMBER = r"\(?-?\$?\s?\d(?:[\d,]*\d)?(?:\.\d+)?\)?%?"  # "30," (a date's day) is not one
_DASH = r"[—–-]"
_VALUE = re.compile(rf"^(?:{_NUMBER}|{_DASH}|\$|%)$")
_TOKEN = rf"(?:\$\s?)?(?:{_NUMBER}|{_DASH})"
_TRAILING_VALUES = re.compile(rf"^(?P<label>.*?[A-Za-z)].*?)\s+(?P<values>{_TOKEN}(?:\s+{_TOKEN})+)$")
_ALL_VALUES = re.compile(rf"^{_TOKEN}(?:\s+{_TOKEN})+$")
_VALUE_TOKEN = re.compile(rf"(?<!\S){_TOKEN}(?!\S)")
_MONTH = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)[a-z]*\.?"
_DATE = re.compile(rf"{_MONTH} \d{{1,2}}, (?:19|20)\d\d")
_SPANNING = re.compile(r"\b(?:\w+ (?:Months|Weeks|Quarters|Years)|Year|Quarter) Ended\b", re.IGNORECASE)
_SENTENCE_END = re.compile(r"\w{3}[.!?]$")
_YEAR = re.compile(r"^(?:19|20)\d\d$")
_FRAGMENT = re.compile(r"^[a-z]{1,2}$")  # a word's last letters put on a line of their own


@dataclass
class _Row:
    label: str
    values: list[str] = field(default_factory=list)
    raw: list[str] = field(default_factory=list)  # the lines it was read from

    @property
    def text(self) -> str:
        """The row as prose, for a row outside any table."""
        return " ".join(line for line in self.raw if line not in ("$", "%")) or self.label

    @property
    def is_header(self) -> bool:
        periods = all(_YEAR.match(v) or _DATE.fullmatch(v) for v in self.values)
        # repeated periods (three and six months ended on the same dates) only in a label-less header
        return len(self.values) >= 2 and periods and (len(set(self.values)) == len(self.values) or not self.label)


def _cells(line: str) -> _Row | None:
    """A line as a row: a label with trailing values, or None when it holds no values."""
    m = _TRAILING_VALUES.match(line)
    if not m:
        return None
    values = [v.replace(" ", "") for v in _VALUE_TOKEN.findall(m.group("values"))]
    return _Row(m.group("label").strip(), values)


def _logical_rows(lines: list[str]) -> list[tuple[_Row, int, int]]:
    """Group lines into rows: (row, first line, last line). A line of values alone is a cell of the
    row above; "$" and "%" on their own are dropped."""
    rows: list[tuple[_Row, int, int]] = []
    for i, line in enumerate(lines):
        if _VALUE.match(line):
            if rows:
                row, first, _ = rows[-1]
                if line not in ("$", "%"):
                    row.values.append(line.replace(" ", ""))
                row.raw.append(line)
                rows[-1] = (row, first, i)
            else:
                rows.append((_Row("", [line] if line not in ("$", "%") else [], [line]), i, i))
            continue
        if _FRAGMENT.match(line) and rows and not rows[-1][0].values and rows[-1][0].label[-1:].isalpha():
            row, first, _ = rows[-1]
            rows[-1] = (_Row(row.label + line, [], [row.label + line]), first, i)
            continue
        dates = _DATE.findall(line)
        if len(dates) >= 2 and not _DATE.sub("", line).strip():  # "July 29, 2023 July 30, 2022"
            rows.append((_Row("", dates, [line]), i, i))
            continue
        if _ALL_VALUES.match(line):  # a row of values without a label ("2022 2021")
            values = [v.replace(" ", "") for v in _VALUE_TOKEN.findall(line)]
            rows.append((_Row("", values, [line]), i, i))
            continue
        split = _cells(line)
        if split:
            split.raw = [line]
        rows.append((split or _Row(line, [], [line]), i, i))
    return rows


def _spanned(columns: tuple[str, ...], above: str) -> tuple[str, ...]:
    """Columns under spanning headings ("Three Months Ended  Six Months Ended" above dates repeated
    for each): each column named with its heading, so two "July 29, 2023" columns differ."""
    groups = _SPANNING.findall(above)
    if len(set(columns)) == len(columns) or len(groups) < 2 or len(columns) % len(groups):
        return columns
    per = len(columns) // len(groups)
    return tuple(f"{groups[k // per]} {c}" for k, c in enumerate(columns))


def _render(row: _Row, columns: tuple[str, ...]) -> str:
    if not row.values:
        return row.label
    if columns and len(row.values) == len(columns):
        cells = [f"{c}: {v}" for c, v in zip(columns, row.values, strict=True)]
    else:
        cells = row.values
    return " | ".join([row.label or "-", *cells])


def _caption(rows: list[tuple[_Row, int, int]], header_at: int, floor: int) -> str:
    """The value-less lines just above a table (its title, period and unit lines), at most three."""
    parts: list[str] = []
    j = header_at - 1
    while j >= floor and len(parts) < 3:
        row = rows[j][0]
        if len(row.values) > 1 or len(row.text) > MAX_SECTION_CHARS or _SENTENCE_END.search(row.text):
            break  # values, or prose: not a title line
        parts.insert(0, row.text)
        j -= 1
    return " ".join(parts)


def rebuild_tables(text: str, carry: TableSpan | None = None) -> tuple[str, list[TableSpan]]:
    """``text`` (one page, normalized) with its tables one row per line; their spans in the result.

    ``carry``: the last table of the previous page, whose header a table continuing on this page
    takes over."""
    lines = [line for line in text.split("\n") if line.strip()]
    rows = _logical_rows(lines)
    out: list[str] = []
    spans: list[TableSpan] = []
    pos = 0  # length of "\n".join(out) so far, plus the separator to come

    def emit(line: str) -> tuple[int, int]:
        nonlocal pos
        start = pos
        out.append(line)
        pos += len(line) + 1
        return start, start + len(line)

    i = 0
    floor = 0
    n = len(rows)
    while i < n:
        row = rows[i][0]
        columns: tuple[str, ...] = ()
        caption = ""
        body_from = i
        continued = False
        if row.is_header:
            columns = _spanned(tuple(row.values), rows[i - 1][0].text if i > floor else "")
            caption = _caption(rows, i, floor)
            body_from = i + 1
        elif carry and carry.columns and not spans and row.values and len(row.values) == len(carry.columns):
            columns, caption, continued = carry.columns, carry.caption, True
        elif len(row.values) < 2:
            emit(row.text)
            i += 1
            continue
        # Rows of the table: value rows of the header's width, section lines in between.
        width = len(columns) if columns else len(row.values)
        end = body_from
        last_value = body_from - 1
        quiet = 0
        while end < n:
            r = rows[end][0]
            if len(r.values) > width and not r.is_header and r.label:
                # a number in the label ("net of allowances of $95 and $103") read as a cell
                extra = r.values[: len(r.values) - width]
                r.label = " ".join([r.label, *extra])
                r.values = r.values[-width:]
            if r.values and len(r.values) == width and not r.is_header:
                last_value, quiet = end, 0
            elif quiet < MAX_LABEL_ONLY and not r.is_header and (len(r.values) > 1 or len(r.text) <= MAX_SECTION_CHARS):
                quiet += 1  # a section line, or a row of another width (shown without column labels)
            else:
                break
            end += 1
        body = rows[body_from : last_value + 1]
        value_rows = sum(1 for r, _, _ in body if r.values)
        if (not columns and value_rows < MIN_ROWS) or value_rows == 0:
            emit(row.text)
            i += 1
            continue
        if out and out[-1]:
            emit("")  # a blank line around a table: the chunker cuts there first
        first: int | None = None
        if columns:
            label = row.label if not continued else ""
            head = " | ".join([label or "Period", *columns]) + (" (continued)" if continued else "")
            first, _ = emit(head)
        for r, _, _ in body:
            s, e = emit(_render(r, columns))
            first = s if first is None else first
            last_end = e
        assert first is not None
        spans.append(TableSpan(first, last_end, caption, columns))
        emit("")
        i = last_value + 1
        floor = i
    if not spans:
        return text, []
    while out and not out[-1]:
        out.pop()
    return "\n".join(out), spans
