"""search_documents: hybrid retrieval over the index, filtered by the caller's permissions."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from pydantic import BaseModel, Field, model_validator

from sovra.errors import InputError
from sovra.guard import scan_for_injection
from sovra.index import SearchFilter
from sovra.retrieval import RetrievalConfig, Retriever
from sovra.tools.base import ToolContext, tool

MAX_QUERY_CHARS = 4000
_NAME = r"^[\w .:@/&'()-]{1,200}$"  # a source, type, tenant or counterparty name


class SearchArgs(BaseModel):
    query: str = Field(description="What to look for, in natural language or keywords.")
    limit: int = Field(default=6, ge=1, le=50)
    sources: list[str] = Field(default_factory=list, description="Only these sources (empty: all).", max_length=20)
    doc_types: list[str] = Field(
        default_factory=list, description="Only these document types (e.g. supply, loan).", max_length=20
    )
    tenants: list[str] = Field(default_factory=list, description="Only these tenants (legal entities).", max_length=20)
    counterparties: list[str] = Field(
        default_factory=list, description="Only documents about these counterparties (name or id).", max_length=20
    )
    languages: list[str] = Field(
        default_factory=list,
        description="Only passages written in these languages, as ISO 639-1 codes (e.g. en, fr, de).",
        max_length=10,
    )
    effective_from: date | None = Field(default=None, description="Only documents effective on or after this date.")
    effective_to: date | None = Field(default=None, description="Only documents effective on or before this date.")
    mode: str = Field(default="hybrid", pattern="^(hybrid|dense|sparse)$")

    @model_validator(mode="after")
    def _check_filters(self) -> SearchArgs:
        for name in ("sources", "doc_types", "tenants", "counterparties"):
            for value in getattr(self, name):
                if not re.match(_NAME, value):
                    raise ValueError(f"{name}: unsupported value {value[:40]!r}")
        for value in self.languages:
            if not re.match(r"^[A-Za-z]{2}$", value):
                raise ValueError(f"languages: {value[:40]!r} is not a two-letter ISO 639-1 code")
        if self.effective_from and self.effective_to and self.effective_from > self.effective_to:
            raise ValueError("effective_from is after effective_to")
        return self


class SearchHit(BaseModel):
    chunk_id: str
    doc_id: str
    title: str
    url: str
    source: str
    page: int
    char_start: int
    char_end: int
    text: str
    score: float
    scores: dict[str, float]
    metadata: dict[str, Any] = Field(default_factory=dict)
    # Kinds of instruction-like text found in the passage (sovra.guard): it is still data, but the
    # run records the attempt and agents never quote those sentences.
    injection: list[str] = Field(default_factory=list)


class SearchResult(BaseModel):
    query: str
    hits: list[SearchHit]


@tool(read_only=True)
def search_documents(args: SearchArgs, ctx: ToolContext) -> SearchResult:
    """Search the documents the asking user may read (policies, contracts, ledger descriptions).

    Returns the best matching passages with their document, page and character span.
    """
    query = " ".join(args.query.split())
    if not query:
        raise InputError("the search query is empty")
    # Long pastes are cut rather than refused: the head of a query carries its meaning.
    query = query[:MAX_QUERY_CHARS]
    svc = ctx.services
    flt = SearchFilter(
        principals=tuple(ctx.user.principals),  # from the runtime, never from the model
        sources=tuple(args.sources),
        doc_types=tuple(args.doc_types),
        tenants=tuple(args.tenants),
        counterparties=tuple(args.counterparties),
        languages=tuple(v.lower() for v in args.languages),
        effective_from=args.effective_from,
        effective_to=args.effective_to,
    )
    settings = getattr(svc, "settings", None)
    retriever = Retriever(
        svc.index,
        svc.embedder,
        reranker=getattr(svc, "reranker", None),
        config=RetrievalConfig.from_settings(settings) if settings is not None else None,
    )
    hits = retriever.search(query, flt, limit=args.limit, mode=args.mode)  # type: ignore[arg-type]
    findings = {h.chunk_id: scan_for_injection(h.text) for h in hits}
    for h in hits:
        if findings[h.chunk_id] and ctx.recorder is not None:
            ctx.recorder.record(
                "security.injection_suspected",
                {
                    "chunk_id": h.chunk_id,
                    "doc_id": h.doc_id,
                    "title": h.title,
                    "findings": [{"kind": f.kind, "excerpt": f.excerpt} for f in findings[h.chunk_id]],
                },
            )
    return SearchResult(query=query, hits=[search_hit(h, [f.kind for f in findings[h.chunk_id]]) for h in hits])


def search_hit(h: Any, injection: list[str] | None = None) -> SearchHit:
    """An index hit as the tool returns it (``injection``: what sovra.guard found in it)."""
    return SearchHit(
        chunk_id=h.chunk_id,
        doc_id=h.doc_id,
        title=h.title,
        url=h.url,
        source=h.source,
        page=h.page,
        char_start=h.char_start,
        char_end=h.char_end,
        text=h.text,
        score=h.score,
        scores=h.scores,
        metadata=h.metadata,
        injection=injection or [],
    )


def cited_passages(result: SearchResult, ctx: ToolContext) -> list[str]:
    """The hits of a search as numbered passages (``"[n] text"``), each cited on the run, for a tool
    to return: the model then cites ``[n]`` and the answer keeps the document, page and quote."""
    return [
        f"[{ctx.cite(kind='document', title=h.title, url=h.url, page=h.page, chunk_id=h.chunk_id, quote=h.text)}] "
        + h.text
        for h in result.hits
    ]
