"""Split page text into overlapping chunks that keep their page and character offsets.

Boundaries are chosen in this order of preference: a numbered clause or heading line, a blank
line (paragraph), a sentence end, any whitespace. Clause-aware cuts keep a contract clause in one
chunk where it fits, which makes citations point at the clause a reader expects.

Tables (``Page.tables``, one row per line) are cut before the table where the table then fits in
the next chunk, otherwise between rows, never inside one; a chunk that starts inside a table gets
the table's caption and column header as its ``context``, which ingest embeds in front of it, so
"2018: 5,020" is still read as a 2018 figure of that statement.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from sovra.documents import Chunk, Page, TableSpan, number_occurrences

# A top-level clause heading line ("4. Termination", "Clause 7 Fees", "Schedule 2 - Prices").
_HEADING = re.compile(r"\n(?=(?:\d+\.|(?:Clause|Section|Article|Schedule|Annex)\s+\d+\.?)\s+[A-Z][^\n]{0,80}\n)")
# A line that starts a numbered sub-clause ("4.2 Either party ...").
_CLAUSE_START = re.compile(r"\n(?=\d+(?:\.\d+)+\.?\s+\S)")
_PARAGRAPH = re.compile(r"\n\s*\n")
_SENTENCE = re.compile(r"(?<=[.!?;:])\s+")
_SPACE = re.compile(r"\s+")


def _best_cut(text: str, start: int, hard_end: int, min_end: int) -> int:
    """Return the offset in (min_end, hard_end] where the chunk starting at ``start`` should end."""
    window = text[min_end:hard_end]
    for pattern in (_HEADING, _CLAUSE_START, _PARAGRAPH, _SENTENCE, _SPACE):
        cuts = [m.start() for m in pattern.finditer(window)]
        if cuts:
            return min_end + cuts[-1]
    return hard_end


def _table_cut(text: str, tables: tuple[TableSpan, ...], start: int, hard_end: int, min_end: int) -> int | None:
    """Where to end a chunk whose window ends inside a table: before the table if it starts in
    the window's second half, else at the last row end in the window. None: not in a table."""
    for t in tables:
        if t.start < hard_end < t.end:
            if t.start > min_end:
                return t.start
            row_end = text.rfind("\n", max(start + 1, min_end), hard_end)
            return row_end if row_end > start else None
    return None


def _context(text: str, tables: tuple[TableSpan, ...], start: int, end: int) -> str:
    """Caption and header row of the table a chunk lies in, when the chunk does not show them."""
    for t in tables:
        if t.start <= start < t.end or start < t.start < end:
            header = text[t.start : text.find("\n", t.start) if "\n" in text[t.start : t.end] else t.end]
            parts = [t.caption] if t.caption else []
            if start > t.start:
                parts.append(header)
            return "\n".join(parts)
    return ""


def chunk_page(doc_id: str, page: Page, size: int, overlap: int, first_index: int) -> list[Chunk]:
    text = page.text
    chunks: list[Chunk] = []
    start = 0
    n = len(text)
    while start < n:
        # Skip leading whitespace so offsets point at real text.
        while start < n and text[start].isspace():
            start += 1
        if start >= n:
            break
        hard_end = min(n, start + size)
        cut = _table_cut(text, page.tables, start, hard_end, start + size // 2) if page.tables else None
        end = hard_end if hard_end == n else cut or _best_cut(text, start, hard_end, start + size // 2)
        body = text[start:end].rstrip()
        if body:
            chunks.append(
                Chunk(
                    doc_id=doc_id,
                    index=first_index + len(chunks),
                    page=page.number,
                    char_start=start,
                    char_end=start + len(body),
                    text=body,
                    context=_context(text, page.tables, start, start + len(body)) if page.tables else "",
                )
            )
        if end >= n:
            break
        # Step back by the overlap, but always move forward, and start on a word boundary.
        next_start = max(end - overlap, start + 1)
        while 0 < next_start < end and not text[next_start - 1].isspace():
            next_start += 1
        if page.tables and any(t.start < next_start < t.end for t in page.tables):
            row_start = text.rfind("\n", 0, next_start) + 1  # a table chunk starts at a row
            next_start = row_start if row_start > start else next_start
        start = next_start
    return chunks


def chunk_pages(doc_id: str, pages: Iterable[Page], size: int = 1200, overlap: int = 150) -> list[Chunk]:
    """Chunk every page of a document; chunk indexes run across pages."""
    if overlap >= size:
        raise ValueError("chunk overlap must be smaller than the chunk size")
    out: list[Chunk] = []
    for page in pages:
        out.extend(chunk_page(doc_id, page, size, overlap, first_index=len(out)))
    return number_occurrences(out)
