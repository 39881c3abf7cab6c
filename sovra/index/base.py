"""The one small interface every Qdrant backend implements, and the types it speaks."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from sovra.documents import Chunk

DENSE = "dense"
SPARSE = "sparse"
SearchMode = Literal["hybrid", "dense", "sparse"]

# Payload fields that get a keyword index: ACL filtering must never scan.
KEYWORD_FIELDS = ("acl", "doc_id", "source", "doc_type")

_NAMESPACE = uuid.UUID("6f1c7c52-3c5e-4b8e-9d7a-2c0f5e1a9b33")


def point_id(chunk_id: str) -> str:
    """Qdrant wants an integer or UUID; derive a stable UUID from the chunk id."""
    return str(uuid.uuid5(_NAMESPACE, chunk_id))


@dataclass(frozen=True)
class Sparse:
    indices: list[int]
    values: list[float]


@dataclass(frozen=True)
class DocInfo:
    """What every chunk of a document carries for filtering and citations."""

    doc_id: str
    title: str
    url: str
    source: str
    doc_type: str
    version: str
    acl: frozenset[str]
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class IndexPoint:
    chunk: Chunk
    doc: DocInfo
    dense: list[float]
    sparse: Sparse

    def payload(self) -> dict[str, Any]:
        c, d = self.chunk, self.doc
        return {
            "chunk_id": c.id,
            "doc_id": d.doc_id,
            "chunk_index": c.index,
            "title": d.title,
            "url": d.url,
            "source": d.source,
            "doc_type": d.doc_type,
            "doc_version": d.version,
            "page": c.page,
            "char_start": c.char_start,
            "char_end": c.char_end,
            "text": c.text,
            "content_hash": c.content_hash,
            "acl": sorted(d.acl),
            "metadata": d.metadata,
        }


@dataclass(frozen=True)
class SearchFilter:
    """Filters applied inside Qdrant. ``principals`` is mandatory: no ACL, no results."""

    principals: tuple[str, ...]
    sources: tuple[str, ...] = ()
    doc_types: tuple[str, ...] = ()
    doc_ids: tuple[str, ...] = ()


def filter_terms(flt: SearchFilter) -> list[tuple[str, list[str]]]:
    """The filter as (payload key, any-of values) pairs; the ACL term always comes first."""
    optional = (("source", flt.sources), ("doc_type", flt.doc_types), ("doc_id", flt.doc_ids))
    return [("acl", list(flt.principals)), *((key, list(values)) for key, values in optional if values)]


@dataclass(frozen=True)
class Hit:
    chunk_id: str
    doc_id: str
    title: str
    url: str
    source: str
    doc_type: str
    page: int
    char_start: int
    char_end: int
    text: str
    score: float
    scores: dict[str, float]  # per-leg scores: dense, sparse, fused
    metadata: dict[str, Any]

    @classmethod
    def from_payload(cls, payload: dict[str, Any], score: float, scores: dict[str, float]) -> Hit:
        return cls(
            chunk_id=payload["chunk_id"],
            doc_id=payload["doc_id"],
            title=payload["title"],
            url=payload["url"],
            source=payload["source"],
            doc_type=payload.get("doc_type", "document"),
            page=int(payload["page"]),
            char_start=int(payload["char_start"]),
            char_end=int(payload["char_end"]),
            text=payload["text"],
            score=score,
            scores=scores,
            metadata=payload.get("metadata") or {},
        )


@dataclass(frozen=True)
class IndexInfo:
    model_id: str
    dim: int


class Index(Protocol):
    """Qdrant access for Sovra. Implemented by the embedded engine and by a Qdrant server."""

    location: str

    def ensure(self, info: IndexInfo) -> None:
        """Create the collection, or check that it was built with the same embedding model."""

    def check(self, info: IndexInfo) -> None:
        """Raise IndexMissingError if the index is absent or was built with another model."""

    def upsert(self, points: list[IndexPoint]) -> None: ...

    def delete_stale(self, doc_id: str, keep_chunk_ids: set[str]) -> None:
        """Delete the document's chunks whose ids are not in ``keep_chunk_ids``."""

    def delete_document(self, doc_id: str) -> None: ...

    def set_acl(self, doc_id: str, acl: frozenset[str]) -> None: ...

    def search(
        self,
        dense: list[float],
        sparse: Sparse,
        flt: SearchFilter,
        limit: int,
        mode: SearchMode = "hybrid",
    ) -> list[Hit]: ...

    def count(self, flt: SearchFilter | None = None) -> int: ...

    def optimize(self) -> None:
        """Build the search structures after a batch of writes (a server does this by itself)."""

    def close(self) -> None: ...


def fuse_breakdown(dense: list[tuple[str, float]], sparse: list[tuple[str, float]]) -> dict[str, dict[str, float]]:
    """Per-point score breakdown from the single-leg results of the same query."""
    out: dict[str, dict[str, float]] = {}
    for leg, pts in ((DENSE, dense), (SPARSE, sparse)):
        for rank, (pid, score) in enumerate(pts, start=1):
            out.setdefault(pid, {})[leg] = round(score, 6)
            out[pid][f"{leg}_rank"] = float(rank)
    return out
