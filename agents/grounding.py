"""What an SDK agent's answer may rest on: the citations its tools made, and nothing else.

Two jobs, both without a model:

- ``extract``: an answer quoted from the passages the tools cited (``ctx.cite(..., quote=...)``),
  for the bundled model (which plans under a JSON grammar but cannot write reliable prose) and for
  a run whose model stopped making progress. A sentence is evidence when it is close in meaning to
  the question AND shares its content words; when the question names a document (words of its
  title: "Orbit Payments"), only the documents it names are quoted, so a question about one
  vendor is never answered from another's note.
- ``check_citations``: keep the ``[n]`` of a written answer that point at a citation the tools
  made; the others are removed from the text (and the caller records them).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sovra.guard import scan_for_injection
from sovra.retrieval import embed_query
from sovra.tools.evidence import split_sentences

_SENTENCE_END = re.compile(r"(?<=[.!?;])\s+(?=[A-Z0-9\"(])")
_CITE = re.compile(r"\s?\[(\d{1,3})\]")
_MIN_WORDS = 5


@dataclass(frozen=True)
class Picked:
    n: int  # the citation the sentence is quoted from
    text: str
    dense: float
    overlap: int


@dataclass(frozen=True)
class Extracted:
    text: str  # quoted sentences, each followed by its citation number; "" when nothing answers
    cited: list[int]
    considered: int  # sentences looked at
    named: list[int]  # the citations whose document the question names (empty: it names none)


def _sentences(quote: str) -> list[str]:
    out: list[str] = []
    for unit, _ in split_sentences(quote):
        for s in _SENTENCE_END.split(unit):
            s = s.strip().lstrip("#*- ").strip()
            if len(s.split()) >= _MIN_WORDS and not scan_for_injection(s):
                out.append(s)
    return out


def _dot(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def extract(
    question: str, citations: list[dict[str, Any]], embedder: Any, min_dense: float, max_units: int = 2
) -> Extracted:
    """Quote the sentences of the cited passages that answer ``question`` (see the module doc)."""
    units: list[tuple[int, str]] = []
    seen: set[str] = set()
    for c in citations:
        for s in _sentences(c.get("quote") or ""):
            if s not in seen:
                seen.add(s)
                units.append((c["n"], s))
    if not units:
        return Extracted("", [], 0, [])
    q_vec, q_sparse = embed_query(embedder, question)
    q_terms = set(q_sparse.indices)
    titled = [c for c in citations if c.get("title")]
    title_terms = {
        c["n"]: set(v.indices)
        for c, v in zip(titled, embedder.sparse_documents([c["title"] for c in titled]), strict=True)
    }
    named = sorted(n for n, terms in title_terms.items() if terms & q_terms)
    if named:
        units = [(n, s) for n, s in units if n in named]
    # Words of the named documents' titles say which document, not what is asked about it.
    naming = set().union(*(title_terms[n] for n in named)) if named else set()
    content = q_terms - naming
    needed = 0 if not content else (1 if len(content) <= 2 else 2)
    texts = [s for _, s in units]
    dense = [_dot(q_vec, v) for v in embedder.embed_documents(texts)]
    overlap = [len(content & set(v.indices)) for v in embedder.sparse_documents(texts)]
    ok = [
        Picked(n, s, d, o)
        for (n, s), d, o in zip(units, dense, overlap, strict=True)
        if d >= min_dense and o >= needed and (o > 0 or not content)
    ]
    ranked = sorted(ok, key=lambda p: (-p.overlap, -p.dense))
    picked: list[Picked] = []
    for p in ranked:
        if len(picked) == max_units:
            break
        # A second sentence must hold its own: as many question words as the best one.
        if picked and p.overlap < picked[0].overlap:
            break
        picked.append(p)
    text = "\n".join(f'"{p.text}" [{p.n}]' for p in picked)
    return Extracted(text, sorted({p.n for p in picked}), len(units), named)


def check_citations(text: str, citations: list[dict[str, Any]]) -> tuple[str, list[int], list[int]]:
    """(text without dangling ``[n]``, the valid numbers used, the dangling numbers removed)."""
    valid_ns = {c["n"] for c in citations}
    used = [int(m) for m in re.findall(r"\[(\d{1,3})\]", text)]
    valid = sorted({n for n in used if n in valid_ns})
    dangling = sorted({n for n in used if n not in valid_ns})
    if dangling:
        text = _CITE.sub(lambda m: "" if int(m.group(1)) in dangling else m.group(0), text).strip()
    return text, valid, dangling
