"""The search pipeline above the index: embed once, retrieve, rerank, diversify.

1. The query is embedded once (dense + BM25 sparse); callers that need the vector again (the
   evidence picker) get it from :meth:`Retriever.embed`, which remembers the last queries.
2. The index returns candidates, filtered inside Qdrant (ACL, metadata, version window) and fused
   there (RRF); more than asked when a later stage needs room to choose.
3. Optional: a cross-encoder (:mod:`sovra.rerank`) rescores the top candidates.
4. Scope: when the question names a company (or another reporting entity) that documents among
   the candidates are about (:mod:`sovra.doc_profile`), those documents are searched again on their
   own and their chunks come first, the period the question names before other periods; chunks of
   other entities follow, never mixed in ahead of them.
5. Near-duplicates are dropped (the same clause in two versions of a template) and, when
   ``mmr_lambda < 1``, hits are picked by maximal marginal relevance over their dense vectors.

Stages 3 to 5 run here, once, so both index backends behave identically. Qdrant (server and
qdrant-edge) also has a native MMR query, but it scores relevance by one dense vector only, which
would throw away the fused hybrid ranking; here relevance is whatever the previous stage ranked by.
"""

from __future__ import annotations

import math
import re
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from sovra.doc_profile import (
    Scope,
    implied_statements,
    named_statements,
    names_entity,
    names_title,
    period_fit,
    question_scope,
    residual_question,
    statement_heading_rank,
)
from sovra.index.base import Hit, SearchFilter, SearchMode, Sparse
from sovra.language import detect_language, without_accents
from sovra.search_scope import narrow

_WORD = re.compile(r"\w+")
_CACHE_SIZE = 64


@dataclass(frozen=True)
class RetrievalConfig:
    mmr_lambda: float = 1.0  # 1 = relevance only
    dedup_threshold: float = 0.97  # word-shingle Jaccard at or above which a hit is a near-duplicate
    rerank_candidates: int = 24
    scope: bool = True  # entity- and period-aware ordering (stage 4)
    scope_candidates: int = 50  # candidates whose documents' entities are compared with the question

    @classmethod
    def from_settings(cls, settings: Any) -> RetrievalConfig:
        return cls(
            mmr_lambda=settings.mmr_lambda,
            dedup_threshold=settings.dedup_threshold,
            rerank_candidates=settings.rerank_candidates,
            scope=getattr(settings, "retrieval_scope", True),
        )

    @property
    def diversifies(self) -> bool:
        return self.mmr_lambda < 1.0 or self.dedup_threshold < 1.0


def _shingles(text: str) -> set[tuple[str, ...]]:
    words = _WORD.findall(text.casefold())
    return {tuple(words[i : i + 3]) for i in range(max(1, len(words) - 2))}


def _jaccard(a: set[Any], b: set[Any]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def _cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0


def diversify(hits: list[Hit], limit: int, mmr_lambda: float = 1.0, dedup_threshold: float = 1.0) -> list[Hit]:
    """Drop near-duplicate texts, then pick ``limit`` hits by maximal marginal relevance.

    Relevance is the hits' order (min-max normalised ``score``); similarity is the cosine of
    their dense vectors (hits without vectors count as dissimilar). Each kept hit gets its MMR
    value in ``scores["mmr"]`` when MMR is on.
    """
    kept: list[Hit] = []
    seen: list[set[tuple[str, ...]]] = []
    for h in hits:
        sh = _shingles(h.text)
        if dedup_threshold < 1.0 and any(_jaccard(sh, s) >= dedup_threshold for s in seen):
            continue
        if dedup_threshold >= 1.0 and any(h.text == k.text for k in kept):
            continue
        kept.append(h)
        seen.append(sh)
    if mmr_lambda >= 1.0 or len(kept) <= 1:
        return kept[:limit]
    scores = [h.score for h in kept]
    lo, hi = min(scores), max(scores)
    rel = [(s - lo) / (hi - lo) if hi > lo else 1.0 for s in scores]
    chosen: list[int] = []
    max_sim = [0.0] * len(kept)
    out: list[Hit] = []
    while len(chosen) < min(limit, len(kept)):
        best, best_val = -1, -math.inf
        for i in range(len(kept)):
            if i in chosen:
                continue
            val = mmr_lambda * rel[i] - (1 - mmr_lambda) * max_sim[i]
            if val > best_val:
                best, best_val = i, val
        chosen.append(best)
        out.append(replace(kept[best], scores={**kept[best].scores, "mmr": round(best_val, 6)}))
        vb = kept[best].vector
        for i, h in enumerate(kept):
            if vb is not None and h.vector is not None and i not in chosen:
                max_sim[i] = max(max_sim[i], _cosine(vb, h.vector))
    return out


class Retriever:
    """One search as ``search_documents`` runs it. Thread-safe; cheap to create."""

    def __init__(self, index: Any, embedder: Any, reranker: Any = None, config: RetrievalConfig | None = None) -> None:
        self.index = index
        self.embedder = embedder
        self.reranker = reranker
        self.config = config or RetrievalConfig()

    def embed(self, query: str) -> tuple[list[float], Sparse]:
        return embed_query(self.embedder, query)

    def _across_languages(self, query: str, flt: SearchFilter) -> tuple[str, dict[str, int]] | None:
        """A question in a language no passage it may reach is written in ("What does the lease say
        about rent?" over French leases), with a multilingual embedder: its language, and how many
        reachable passages each language with a known mean vector has. BM25 can then only match
        names and numbers, which on XQuAD pulls cross-language nDCG@10 from 0.91-0.94 (dense) down
        to 0.65-0.84 (hybrid), so the dense leg alone answers. Same-language and mixed-language
        collections keep the hybrid search (None)."""
        if not getattr(self.embedder, "multilingual", False):
            return None
        lang = detect_language(query)
        if lang is None or self.index.count(replace(flt, languages=(lang,))) > 0:
            return None
        means = getattr(self.embedder, "language_means", {})
        return lang, {k: self.index.count(replace(flt, languages=(k,))) for k in sorted(means) if k != lang}

    def search(self, query: str, flt: SearchFilter, limit: int, mode: SearchMode = "hybrid") -> list[Hit]:
        flt = narrow(flt)  # the filters the asking person chose for the run (sovra.search_scope)
        cfg = self.config
        across = self._across_languages(query, flt) if mode == "hybrid" else None
        dense, sparse = self.embed(query)
        shift = None
        if across is not None:  # dense only, the question moved towards the passages' language
            mode = "dense"
            lang, targets = across
            if hasattr(self.embedder, "shift"):

                def shift(vector: list[float]) -> list[float]:
                    return self.embedder.shift(vector, lang, targets)  # type: ignore[no-any-return]

                dense = shift(dense)
        wide = limit if across is None else max(limit, NAMES_CANDIDATES)
        if self.reranker is not None:
            wide = max(wide, cfg.rerank_candidates)
        if cfg.diversifies:
            wide = max(wide, limit * 3)
        scope = question_scope(query) if cfg.scope else None
        if scope is not None:
            wide = max(wide, cfg.scope_candidates)
        hits = self.index.search(dense, sparse, flt, wide, mode=mode, with_vectors=cfg.mmr_lambda < 1.0)
        if across is not None:
            hits = shared_names_first(query, hits)
        if self.reranker is not None and hits:
            hits = rerank(self.reranker, query, hits, cfg.rerank_candidates)
        if scope is not None and hits:
            hits = self._scoped(query, scope, hits, dense, sparse, flt, wide, mode, shift)
        if cfg.diversifies:
            return diversify(hits, limit, cfg.mmr_lambda, cfg.dedup_threshold)
        return hits[:limit]

    def _scoped(
        self,
        query: str,
        scope: Scope,
        hits: list[Hit],
        dense: list[float],
        sparse: Sparse,
        flt: SearchFilter,
        wide: int,
        mode: SearchMode,
        shift: Callable[[list[float]], list[float]] | None = None,
    ) -> list[Hit]:
        """The named entity's documents first (searched again on their own), by period fit.
        ``shift``: how the question's vector was moved to the passages' language (a cross-language
        search), applied to the narrowed question too."""
        named_by: dict[str, list[str]] = {}
        for h in hits:
            if h.doc_id in named_by:
                continue
            if names_entity(scope, h.metadata):
                named_by[h.doc_id] = [str(h.metadata.get("entity") or ""), *h.metadata.get("entity_aliases", ())]
            elif names_title(scope, h.title):
                named_by[h.doc_id] = [h.title]
        if not named_by:
            return hits
        named = sorted(named_by)
        own = [h for h in hits if h.doc_id in named_by]
        pages: dict[tuple[str, int], int] = {}  # statement pages the question asks for: how plainly titled
        if not flt.doc_ids:
            # Within the named documents, the words that named them no longer tell passages apart.
            # The whole question still has the words the naming took away ("license" in "... the
            # License Agreement between ..."): its own ranking counts too, at half weight.
            rest = residual_question(query, [t for texts in named_by.values() for t in texts])
            narrowed = replace(flt, doc_ids=tuple(named))
            vectors = self.config.mmr_lambda < 1.0
            questions = [((dense, sparse), 1.0)]
            if rest != query:
                rest_dense, rest_sparse = self.embed(rest)
                rest_dense = shift(rest_dense) if shift else rest_dense
                questions = [((rest_dense, rest_sparse), 1.0), ((dense, sparse), WHOLE_QUESTION_WEIGHT)]
            rankings = [
                (self.index.search(d, sp, narrowed, wide, mode=leg, with_vectors=vectors), weight)
                for (d, sp), weight in questions
                for leg in _LEGS[mode]
            ]
            more = fuse_rankings(rankings)[:wide]
            if self.reranker is not None and more:
                more = rerank(self.reranker, query, more, self.config.rerank_candidates)
            seen = {h.chunk_id for h in more}
            own = more + [h for h in own if h.chunk_id not in seen]
            if statements := named_statements(query) or implied_statements(query):
                own, pages = self._statement_pages(statements, own, narrowed, mode)
        order = {h.chunk_id: i for i, h in enumerate(own)}
        own.sort(key=lambda h: (-period_fit(scope, h.metadata), -pages.get((h.doc_id, h.page), 0), order[h.chunk_id]))
        return own + [h for h in hits if h.doc_id not in named_by]

    def _statement_pages(
        self,
        statements: list[Any],
        own: list[Hit],
        narrowed: SearchFilter,
        mode: SearchMode,
    ) -> tuple[list[Hit], dict[tuple[str, int], int]]:
        """A question that names a primary financial statement ("... shown in the balance sheet")
        is answered from that statement's pages of the named documents: found by searching those
        documents (``narrowed``) for the statement's title and keeping the hits that open their page
        with it (a later chunk of a page that lists the statements, "40 Consolidated Balance
        Sheets", does not count). Their chunks come first (after the period fit), the group's
        statements before a table titled with other words ("Selected Income Statement Data"); a
        statement page that the question's own search missed is added."""
        pages: dict[tuple[str, int], int] = {}
        found: list[Hit] = []
        for _kind, pattern, title in statements:
            dense, sparse = self.embed(title)
            # Notes cite the statements by name ("... on the Consolidated Balance Sheets"): look past them.
            limit = min(60, 10 * len(narrowed.doc_ids) + 10)
            for h in self.index.search(dense, sparse, narrowed, limit, mode=mode):
                opens_page = h.char_start <= PAGE_OPENING  # a later chunk's first lines are mid-page
                rank = statement_heading_rank(h.text, pattern) if opens_page else 0
                if rank and (h.doc_id, h.page) not in pages:
                    pages[(h.doc_id, h.page)] = rank
                    found.append(h)
        seen = {(h.doc_id, h.page) for h in own}
        return own + [h for h in found if (h.doc_id, h.page) not in seen], pages


# Within the named documents (tens to a few hundred chunks), the residual question's and the whole
# question's dense and BM25 rankings are fused again by reciprocal rank, with a small k: the index's
# k=60, meant for long lists, all but ignores which chunk a leg put first among a few dozen (1/61 vs
# 1/62). cuad-dev, default pipeline, nDCG@10 by k (whole question at half weight): 60: 0.731,
# 20: 0.738, 5: 0.744, 2: 0.750, 1: 0.750; the residual question alone at k=2: 0.727, at the index's
# fusion: 0.718. docs/benchmarks.md has the table.
SCOPED_RRF_K = 2.0
WHOLE_QUESTION_WEIGHT = 0.5
_LEGS: dict[str, tuple[SearchMode, ...]] = {"hybrid": ("dense", "sparse"), "dense": ("dense",), "sparse": ("sparse",)}


def fuse_rankings(rankings: list[tuple[list[Hit], float]], k: float = SCOPED_RRF_K) -> list[Hit]:
    """Weighted reciprocal rank fusion: the hit at rank r (from 1) of a ranking of weight w gets
    ``w / (k + r)``; the sum is the hit's ``score`` (and ``scores["scoped"]``). A hit in several
    rankings keeps the first one's text; its score breakdown gathers every ranking's (a one-leg
    search reports only its own leg), the earlier ranking's value where two report the same key."""
    total: dict[str, float] = {}
    first: dict[str, Hit] = {}
    breakdown: dict[str, dict[str, float]] = {}
    for hits, weight in rankings:
        for rank, h in enumerate(hits, start=1):
            first.setdefault(h.chunk_id, h)
            breakdown[h.chunk_id] = {**h.scores, **breakdown.get(h.chunk_id, {})}
            total[h.chunk_id] = total.get(h.chunk_id, 0.0) + weight / (k + rank)
    ranked = sorted(first, key=lambda c: -total[c])
    return [
        replace(first[c], score=round(total[c], 6), scores={**breakdown[c], "scoped": round(total[c], 6)})
        for c in ranked
    ]


# A chunk whose text starts this close to its page's start opens the page (only leading whitespace
# or a running header before it); the next chunk starts at least chunk_chars/2 - overlap further on.
PAGE_OPENING = 40


# Across languages, names and numbers are what a question and its passage still share ("Broncos",
# "1998"; BM25 also matches everything else and costs 0.1-0.3 nDCG@10 there). Each one the question
# shares with a passage adds NAMES_BONUS to its dense score, for at most NAMES_CAP of them, among the
# first NAMES_CANDIDATES passages. multilingual-e5's cosines are compressed (a question and its
# passage ~0.87, unrelated pairs ~0.74), so 0.01 is a nudge between close candidates. XQuAD,
# cross-language: +0.002..+0.007 nDCG@10 on all six pairs, the same at 0.005 and 0.015
# (docs/benchmarks.md).
NAMES_BONUS = 0.01
NAMES_CAP = 3
NAMES_CANDIDATES = 50
_DIGITS = re.compile(r"\d+")
_LETTERS = re.compile(r"[^\W\d_]{3,}")


def question_names(query: str) -> set[str]:
    """The question's numbers and capitalised words after its first word (names, in most languages;
    German nouns too, which simply find no match in another language), without accents."""
    words = _LETTERS.findall(query)
    return set(_DIGITS.findall(query)) | {without_accents(w).casefold() for w in words[1:] if w[0].isupper()}


def passage_words(text: str) -> set[str]:
    return set(_DIGITS.findall(text)) | {without_accents(w).casefold() for w in _LETTERS.findall(text)}


def names_bonus(names: set[str], words: set[str]) -> float:
    return NAMES_BONUS * min(NAMES_CAP, len(names & words))


def shared_names_first(query: str, hits: list[Hit]) -> list[Hit]:
    """Hits re-ordered by dense score plus the shared-names bonus (``scores["names"]``)."""
    names = question_names(query)
    out = []
    for h in hits:
        bonus = names_bonus(names, passage_words(f"{h.title}\n{h.text}"))
        out.append(replace(h, score=h.score + bonus, scores={**h.scores, "names": bonus}))
    return sorted(out, key=lambda h: -h.score)


def rerank(reranker: Any, query: str, hits: list[Hit], top: int | None = None) -> list[Hit]:
    """Order the first ``top`` hits (all when None) by the cross-encoder's score, which becomes each
    one's ``score``; the rest keep their fused order after them. A wider pool fetched for a later
    stage (the entity scope, MMR) is not all rescored: the cross-encoder's cost is per pair."""
    head, tail = (hits, []) if top is None else (hits[:top], hits[top:])
    scores = reranker.score(query, [h.text for h in head])
    out = [
        replace(h, score=float(s), scores={**h.scores, "rerank": round(float(s), 6)})
        for h, s in zip(head, scores, strict=True)
    ]
    return sorted(out, key=lambda h: -h.score) + tail


# The question is embedded for the search and again to pick evidence sentences: each embedder
# remembers its last few query embeddings. Whitespace changes neither vector, so it is normalised.
_caches: weakref.WeakKeyDictionary[Any, OrderedDict[str, tuple[list[float], Sparse]]] = weakref.WeakKeyDictionary()
_cache_lock = threading.Lock()


def embed_query(embedder: Any, query: str) -> tuple[list[float], Sparse]:
    """The query's dense and sparse vectors, computed once per embedder for recent queries."""
    text = " ".join(query.split())
    with _cache_lock:
        try:
            cache = _caches.setdefault(embedder, OrderedDict())
        except TypeError:  # not weak-referenceable: no cache
            cache = OrderedDict()
        if text in cache:
            cache.move_to_end(text)
            return cache[text]
    dense = embedder.embed_query(text)
    sv = embedder.sparse_query(text)
    value = (list(dense), Sparse(list(sv.indices), list(sv.values)))
    with _cache_lock:
        cache[text] = value
        while len(cache) > _CACHE_SIZE:
            cache.popitem(last=False)
    return value
