"""Pick the sentences of retrieved passages that best answer a question.

Used twice: to give the model short, focused sources (small models lose the thread in long
passages) and to quote the exact evidence next to each citation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"(])|\n+")
_MIN_CHARS = 20


@dataclass(frozen=True)
class Sentence:
    text: str
    start: int  # offset within the passage
    score: float


def split_sentences(text: str) -> list[tuple[str, int]]:
    out: list[tuple[str, int]] = []
    pos = 0
    for m in _SENTENCE_END.finditer(text):
        piece = text[pos : m.start()]
        if len(piece.strip()) >= _MIN_CHARS:
            out.append((piece.strip(), pos + len(piece) - len(piece.lstrip())))
        pos = m.end()
    tail = text[pos:]
    if len(tail.strip()) >= _MIN_CHARS:
        out.append((tail.strip(), pos + len(tail) - len(tail.lstrip())))
    return out


def _dot(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def best_sentences(
    query_vec: list[float], passages: list[str], embedder: Any, per_passage: int = 2
) -> list[list[Sentence]]:
    """For each passage, its ``per_passage`` sentences closest to the query, in reading order."""
    split = [split_sentences(p) for p in passages]
    flat = [s for sents in split for s, _ in sents]
    vecs = embedder.embed_documents(flat) if flat else []
    out: list[list[Sentence]] = []
    i = 0
    for sents in split:
        scored = [Sentence(s, start, _dot(query_vec, vecs[i + j])) for j, (s, start) in enumerate(sents)]
        i += len(sents)
        top = sorted(scored, key=lambda s: -s.score)[:per_passage]
        out.append(sorted(top, key=lambda s: s.start))
    return out
