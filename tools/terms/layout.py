"""A document's layout for extraction: passages (sentences, table rows, list items) with their
section heading, page and character span.

Field extractors read passages, not raw pages: a clause is usually one sentence, and its heading
("12. Governing Law", "| Notice period |", "- Renewal:") says what it is about even when the
sentence does not. Spans are offsets into the page text, so every value keeps its evidence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Words after which a period does not end a sentence ("Acme Inc. and ...", "Sec. 4", "U.S. law").
_ABBREV = re.compile(
    r"(?:\b(?:inc|corp|co|ltd|llc|l\.l\.c|l\.p|lp|plc|no|nos|mr|mrs|ms|dr|st|sec|art|para|e\.g|i\.e|etc|vs|"
    r"approx|dept|jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec|u\.s|s\.a|n\.v|b\.v|s\.p\.a|a\.g|s\.a\.s|"
    r"ag|gmbh|se|bzw|ca|nr|abs|mio|mrd|tsd|z\.b|u\.a|ff|cf|al|mfg|assn|bros|intl|natl|govt)|\b[A-Z]|(?<![\w,.])\d{1,3}(?:\.\d{1,3})*)\.$",
    re.I,
)
_SENT_END = re.compile(r"(?<=[.!?;])[\"”')\]]*\s+(?=[\"“(\[]?[A-Z0-9])|\n\s*\n+")
_NUMBERED = re.compile(
    r"^\s*(?:(?:section|article|clause|§)\s*)?(\(?\d{1,3}(?:\.\d{1,3})*\.?\)?|\([a-z]{1,4}\))\s+", re.I
)
_INLINE_HEADING = re.compile(
    r"^\s*(?:(?:section|article|clause|§)\s*)?\d{1,3}(?:\.\d{1,3})*\.?\s+(?P<h>[A-Z][A-Za-z ,&/'’()-]{2,60}?)[.:]\s"
)
_TABLE_ROW = re.compile(r"^\s*\|(.+)\|\s*$")
_LABELLED = re.compile(
    r"^\s*(?:[-*•]\s+)?(?:\*\*)?(?P<label>[A-Z][A-Za-z /&()'’-]{1,50}?)(?:\*\*)?\s*:\s*(?:\*\*)?\s+(?P<v>\S.*)$"
)
_MAX = 1500


@dataclass(frozen=True)
class Passage:
    """One sentence, table row or list item. ``label`` is a table row's or list item's first cell."""

    index: int
    page: int
    start: int  # offsets into the page text
    end: int
    text: str
    heading: str = ""
    label: str = ""

    def about(self) -> str:
        """The heading and label, lower-cased: what the passage is about."""
        return f"{self.heading} {self.label}".lower()


def _is_heading_line(line: str) -> str:
    s = line.strip().strip("#*").strip()
    if not s or len(s) > 80 or s.endswith((",", ";")):
        return ""
    body = _NUMBERED.sub("", s).strip().rstrip(".:")
    if not body or not re.search(r"[A-Za-z]{3}", body) or len(body.split()) > 8:
        return ""
    words = [w for w in re.findall(r"[A-Za-z][\w'’-]*", body) if len(w) > 3]
    titled = words and all(w[0].isupper() for w in words)
    if body.isupper() or line.lstrip().startswith("#") or (titled and not s.endswith(".")):
        return body
    if _NUMBERED.match(s) and titled:
        return body
    return ""


def _sentences(text: str, base: int) -> list[tuple[int, int]]:
    """Sentence spans in ``text`` (offsets shifted by ``base``); abbreviations do not end one."""
    spans: list[tuple[int, int]] = []
    start = 0
    for m in _SENT_END.finditer(text):
        head = text[start : m.start()].rstrip("\"”')] ")
        if "\n\n" not in m.group(0) and _ABBREV.search(head[-12:]):
            continue
        spans.append((start, m.start()))
        start = m.end()
    spans.append((start, len(text)))
    out: list[tuple[int, int]] = []
    for s, e in spans:
        while e - s > _MAX:  # very long run-ons: cut at a semicolon or comma near the limit
            cut = max(text.rfind(";", s, s + _MAX), text.rfind(",", s, s + _MAX))
            cut = cut + 1 if cut > s + 200 else s + _MAX
            out.append((s, cut))
            s = cut
        out.append((s, e))
    return [(base + s, base + e) for s, e in out if text[s:e].strip()]


def _flush(text: str, page: int, block: list[tuple[int, int]], heading: str, out: list[Passage]) -> str:
    """Cut the running prose lines in ``block`` into sentences; returns the heading in force after them."""
    if not block:
        return heading
    s, e = block[0][0], block[-1][1]
    for a, b in _sentences(text[s:e], s):
        raw = text[a:b]
        a += len(raw) - len(raw.lstrip())
        m = _INLINE_HEADING.match(raw.lstrip() + " ")
        if m:
            heading = m["h"].strip()
        out.append(Passage(len(out), page, a, b, " ".join(text[a:b].split()), heading))
    block.clear()
    return heading


def passages(pages: dict[int, str]) -> list[Passage]:
    """Every passage of a document in reading order."""
    out: list[Passage] = []
    heading = ""
    for page in sorted(pages):
        text = pages[page]
        pos = 0
        block: list[tuple[int, int]] = []  # running prose lines, flushed into sentences

        lines = text.splitlines(keepends=True)
        for k, line in enumerate(lines):
            start, end = pos, pos + len(line.rstrip("\n"))
            pos += len(line)
            stripped = line.strip()
            if not stripped:
                heading = _flush(text, page, block, heading, out)
                continue
            row = _TABLE_ROW.match(line)
            if row:
                heading = _flush(text, page, block, heading, out)
                cells = [c.strip() for c in row.group(1).split("|")]
                if all(re.fullmatch(r":?-{2,}:?", c) or not c for c in cells):
                    continue
                nxt = lines[k + 1] if k + 1 < len(lines) else ""
                if re.fullmatch(r"\s*\|?(?:\s*:?-{2,}:?\s*\|)+\s*:?-*:?\s*", nxt.rstrip("\n")):
                    continue  # a header row names the columns, not a term
                label = cells[0] if len(cells) > 1 else ""
                body = " | ".join(cells)
                out.append(Passage(len(out), page, start, end, body, heading, label.strip("*")))
                continue
            lab = _LABELLED.match(line)
            if lab and len(stripped) < 400:
                heading = _flush(text, page, block, heading, out)
                out.append(Passage(len(out), page, start, end, " ".join(stripped.split()), heading, lab["label"]))
                continue
            h = _is_heading_line(line)
            if h:
                heading = _flush(text, page, block, heading, out)
                heading = h
                out.append(Passage(len(out), page, start, end, " ".join(stripped.split()), heading))
                continue
            block.append((start, end))
        heading = _flush(text, page, block, heading, out)
    return out
