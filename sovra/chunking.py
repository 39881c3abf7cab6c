"""Split page text into overlapping chunks that keep their page and character offsets.

Boundaries are chosen in this order of preference: a numbered clause or heading line, a blank
line (paragraph), a sentence end, any whitespace. Clause-aware cuts keep a contract clause in one
chunk where it fits, which makes citations point at the clause a reader expects.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from sovra.documents import Chunk, Page, number_occurrences

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
        end = hard_end if hard_end == n else _best_cut(text, start, hard_end, start + size // 2)
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
                )
            )
        if end >= n:
            break
        # Step back by the overlap, but always move forward, and start on a word boundary.
        next_start = max(end - overlap, start + 1)
        while 0 < next_start < end and not text[next_start - 1].isspace():
            next_start += 1
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
