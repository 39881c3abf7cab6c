"""Pick the sentences of retrieved passages that best answer a question.

Used twice: to give the model short, focused sources (small models lose the thread in long
passages) and to quote the exact evidence next to each citation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sovra.guard import scan_for_injection
from sovra.retrieval import embed_query

# Evidence units are clauses and paragraphs: a unit ends at a blank line or before a line that
# starts a numbered clause or a list item (a plain line break is a PDF line wrap). Units longer
# than _MAX_UNIT are cut further at sentence ends. A clause quoted whole keeps its conditions
# ("... 90 days' notice. No termination fee is payable") together.
_UNIT_END = re.compile(r"\n\s*\n|\n(?=\s*(?:\d+(?:\.\d+)*\.?\s|[-*•]\s))")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"(])")
_MAX_UNIT = 420
_MIN_CHARS = 20
_MIN_WORDS = 6


@dataclass(frozen=True)
class Sentence:
    text: str
    start: int  # offset within the passage
    score: float  # fused rank score: only comparable within one call
    dense: float  # cosine similarity to the question
    overlap: int  # how many of the question's (stemmed, non-stopword) terms it contains
    needed: int  # the overlap that counts as lexical support: 2, or fewer for a one-term question


def _pieces(pattern: re.Pattern[str], text: str, offset: int) -> list[tuple[str, int]]:
    out: list[tuple[str, int]] = []
    pos = 0
    for m in [*pattern.finditer(text), None]:
        end = m.start() if m else len(text)
        piece = text[pos:end]
        if piece.strip():
            out.append((piece, offset + pos))
        if m:
            pos = m.end()
    return out


def split_sentences(text: str) -> list[tuple[str, int]]:
    """Clause/paragraph units of ``text`` with their start offsets, whitespace normalised."""
    out: list[tuple[str, int]] = []
    for unit, start in _pieces(_UNIT_END, text, 0):
        parts = [(unit, start)]
        if len(unit) > _MAX_UNIT:
            parts = []
            # Greedily pack sentences into pieces of at most _MAX_UNIT characters.
            for sent, s_start in _pieces(_SENTENCE_END, unit, start):
                if parts and len(parts[-1][0]) + len(sent) < _MAX_UNIT:
                    parts[-1] = (parts[-1][0] + " " + sent, parts[-1][1])
                else:
                    parts.append((sent, s_start))
        for piece, p_start in parts:
            norm = " ".join(piece.split())
            # Headings ("4. Equipment and allowances") name a topic; they do not state anything.
            if len(norm) >= _MIN_CHARS and len(norm.split()) >= _MIN_WORDS:
                out.append((norm, p_start))
    return out


def _dot(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def _ranks(values: list[float]) -> list[int]:
    order = sorted(range(len(values)), key=lambda i: -values[i])
    ranks = [0] * len(values)
    for r, i in enumerate(order, start=1):
        ranks[i] = r
    return ranks


def best_sentences(question: str, passages: list[str], embedder: Any, per_passage: int = 2) -> list[list[Sentence]]:
    """For each passage, its ``per_passage`` units that best answer ``question``, in reading order.

    Units are ranked like the retrieval itself: dense similarity and BM25-term overlap, fused by
    reciprocal rank, so a unit that shares the question's words ("days per week") is not beaten
    by one that is merely on the same topic ("days of annual leave").
    """
    # A sentence that tries to instruct the reader (sovra.guard) is never evidence, so an extractive
    # answer cannot quote an injected instruction or link back to the user.
    split = [[(s, at) for s, at in split_sentences(p) if not scan_for_injection(s)] for p in passages]
    flat = [s for sents in split for s, _ in sents]
    if not flat:
        return [[] for _ in passages]
    # The search embedded the question already; embed_query remembers it.
    q_vec, q_sparse = embed_query(embedder, question)
    q_terms = set(q_sparse.indices)
    dense = [_dot(q_vec, v) for v in embedder.embed_documents(flat)]
    lexical = [float(len(q_terms & set(sv.indices))) for sv in embedder.sparse_documents(flat)]
    fused = [1 / (60 + a) + 1 / (60 + b) for a, b in zip(_ranks(dense), _ranks(lexical), strict=True)]
    out: list[list[Sentence]] = []
    i = 0
    for sents in split:
        needed = min(2, len(q_terms))
        scored = [
            Sentence(text, start, fused[i + j], dense[i + j], int(lexical[i + j]), needed)
            for j, (text, start) in enumerate(sents)
        ]
        i += len(sents)
        top = sorted(scored, key=lambda s: -s.score)[:per_passage]
        out.append(sorted(top, key=lambda s: s.start))
    return out
