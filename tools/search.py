"""search_documents: hybrid retrieval over the index, filtered by the caller's permissions."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from sovra.errors import InputError
from sovra.index import SearchFilter
from sovra.tools.base import ToolContext, tool

MAX_QUERY_CHARS = 4000


class SearchArgs(BaseModel):
    query: str = Field(description="What to look for, in natural language or keywords.")
    limit: int = Field(default=6, ge=1, le=50)
    sources: list[str] = Field(default_factory=list, description="Only these sources (empty: all).")
    doc_types: list[str] = Field(default_factory=list, description="Only these document types.")
    mode: str = Field(default="hybrid", pattern="^(hybrid|dense|sparse)$")


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
    )
    hits = svc.index.search(
        svc.embedder.embed_query(query),
        svc.embedder.sparse_query(query),
        flt,
        limit=args.limit,
        mode=args.mode,  # type: ignore[arg-type]
    )
    return SearchResult(
        query=query,
        hits=[
            SearchHit(
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
            )
            for h in hits
        ],
    )
