"""The one small interface every Qdrant backend implements, and the types it speaks."""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property
from typing import Any, Literal, Protocol

from sovra.documents import Chunk
from sovra.language import detect_language

DENSE = "dense"
SPARSE = "sparse"
SearchMode = Literal["hybrid", "dense", "sparse"]

# Payload fields that get a keyword index: ACL filtering must never scan.
KEYWORD_FIELDS = ("acl", "doc_id", "source", "doc_type", "tenant", "counterparty", "language")
# Integer indexes: the version window (see sovra.index.versions) and the effective date (YYYYMMDD).
INTEGER_FIELDS = ("gen_from", "gen_to", "effective_day")
# gen_to of a point no version has retired yet; below 2**53 so every JSON reader keeps it exact.
LIVE = 2**52

_NAMESPACE = uuid.UUID("6f1c7c52-3c5e-4b8e-9d7a-2c0f5e1a9b33")


def point_id(key: str) -> str:
    """Qdrant wants an integer or UUID; derive a stable UUID from a string key."""
    return str(uuid.uuid5(_NAMESPACE, key))


def embed_key(text: str) -> str:
    """Names the exact text a vector was computed from: equal keys, reusable vectors."""
    return hashlib.sha256(text.encode()).hexdigest()[:24]


@dataclass(frozen=True)
class Sparse:
    indices: list[int]
    values: list[float]


def _day(value: Any) -> int | None:
    """An ISO date (or datetime) as YYYYMMDD, for range filters; None if it is not one."""
    if isinstance(value, date):
        return value.year * 10000 + value.month * 100 + value.day
    if isinstance(value, str) and len(value) >= 10:
        try:
            return _day(date.fromisoformat(value[:10]))
        except ValueError:
            return None
    return None


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

    def facets(self) -> dict[str, Any]:
        """Filterable fields taken from the connector's metadata (absent when the source has none)."""
        m = self.metadata
        out: dict[str, Any] = {}
        if m.get("tenant"):
            out["tenant"] = str(m["tenant"])
        parties = [str(m[k]).casefold() for k in ("counterparty", "counterparty_id") if m.get(k)]
        if parties:
            out["counterparty"] = parties
        day = _day(m.get("effective_date"))
        if day is not None:
            out["effective_day"] = day
        return out


@dataclass(frozen=True)
class IndexPoint:
    chunk: Chunk
    doc: DocInfo
    dense: list[float]
    sparse: Sparse
    embed_key: str = ""  # embed_key() of the text the vectors were computed from; "" = the chunk text

    @cached_property
    def language(self) -> str | None:
        """The chunk's language (ISO 639-1, :mod:`sovra.language`); None when too short to tell.
        A function of the chunk text, so it needs no place in ``variant``."""
        return detect_language(self.chunk.text)

    @property
    def variant(self) -> str:
        """Everything a point carries that is not versioned in place (see sovra.index.versions)."""
        d = self.doc
        fixed = [self.embed_key or self.chunk.content_hash, d.title, d.source, d.doc_type, d.facets()]
        return hashlib.sha256(json.dumps(fixed, sort_keys=True, default=str).encode()).hexdigest()[:16]

    @property
    def point_id(self) -> str:
        """From (document, content, occurrence) and the document fields: never from position."""
        return point_id(f"{self.chunk.id}|{self.variant}")

    def cite(self) -> dict[str, Any]:
        """Where the chunk sits in this version of its document, and the document's display
        metadata (a modification time changes with every edit): versioned in the payload."""
        c = self.chunk
        return {
            "chunk_index": c.index,
            "page": c.page,
            "char_start": c.char_start,
            "char_end": c.char_end,
            "url": self.doc.url,
            "doc_version": self.doc.version,
            "metadata": self.doc.metadata,
        }

    def payload(self, gen: int) -> dict[str, Any]:
        c, d = self.chunk, self.doc
        return {
            "chunk_id": c.id,
            "doc_id": d.doc_id,
            "title": d.title,
            "source": d.source,
            "doc_type": d.doc_type,
            "text": c.text,
            "content_hash": c.content_hash,
            "embed_key": self.embed_key,
            "acl": sorted(d.acl),
            **d.facets(),
            **({"language": self.language} if self.language else {}),
            "gen_from": gen,
            "gen_to": LIVE,
            "cite": {str(gen): self.cite()},
        }


@dataclass(frozen=True)
class SearchFilter:
    """Filters applied inside Qdrant. ``principals`` is mandatory: no ACL, no results.

    Every other field narrows the search; an empty one does not filter. ``tenants`` and
    ``counterparties`` match the metadata of the same name (counterparties also match
    ``counterparty_id``, case-insensitively); the effective-date bounds are inclusive and leave
    out documents that have no ``effective_date``.
    """

    principals: tuple[str, ...]
    sources: tuple[str, ...] = ()
    doc_types: tuple[str, ...] = ()
    doc_ids: tuple[str, ...] = ()
    # ISO 639-1 codes of the chunk's own language (detected at ingest); chunks indexed before
    # language detection existed, or too short to tell, have none and are left out by this filter.
    languages: tuple[str, ...] = ()
    tenants: tuple[str, ...] = ()
    counterparties: tuple[str, ...] = ()
    effective_from: date | None = None
    effective_to: date | None = None


@dataclass(frozen=True)
class Cond:
    """One filter condition in backend-neutral form: any-of ``values``, or an integer range."""

    key: str
    values: tuple[str, ...] = ()
    gte: int | None = None
    gt: int | None = None
    lte: int | None = None

    @property
    def is_range(self) -> bool:
        return not self.values


def visible(gen: int) -> list[Cond]:
    """Points that belong to the index as of version ``gen``."""
    return [Cond("gen_from", lte=gen), Cond("gen_to", gt=gen)]


def doc_cond(*doc_ids: str) -> Cond:
    return Cond("doc_id", values=tuple(doc_ids))


def conditions(flt: SearchFilter, gen: int) -> list[Cond]:
    """The filter as conditions, all required; the ACL term always comes first."""
    optional = (
        ("source", flt.sources),
        ("doc_type", flt.doc_types),
        ("doc_id", flt.doc_ids),
        ("tenant", flt.tenants),
        ("counterparty", tuple(c.casefold() for c in flt.counterparties)),
        ("language", tuple(lang.lower() for lang in flt.languages)),
    )
    out = [Cond("acl", values=tuple(flt.principals))]
    out += [Cond(key, values=tuple(values)) for key, values in optional if values]
    if flt.effective_from or flt.effective_to:
        out.append(Cond("effective_day", gte=_day(flt.effective_from), lte=_day(flt.effective_to)))
    return [*out, *visible(gen)]


def resolve_cite(payload: dict[str, Any], gen: int) -> dict[str, Any]:
    """The citation entry a reader at version ``gen`` sees: the newest one not after ``gen``."""
    cite: dict[str, Any] = payload.get("cite") or {}
    keys = [int(k) for k in cite]
    seen = [k for k in keys if k <= gen]
    return dict(cite[str(max(seen or keys))]) if keys else {}


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
    scores: dict[str, float]  # per-stage scores: dense, sparse, fused (hybrid), rerank, mmr
    metadata: dict[str, Any]
    # The hit's dense vector, when the search asked for it (diversification needs it).
    vector: list[float] | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_payload(
        cls,
        payload: dict[str, Any],
        score: float,
        scores: dict[str, float],
        gen: int,
        vector: list[float] | None = None,
    ) -> Hit:
        cite = resolve_cite(payload, gen)
        return cls(
            chunk_id=payload["chunk_id"],
            doc_id=payload["doc_id"],
            title=payload["title"],
            url=cite.get("url", ""),
            source=payload["source"],
            doc_type=payload.get("doc_type", "document"),
            page=int(cite.get("page", 1)),
            char_start=int(cite.get("char_start", 0)),
            char_end=int(cite.get("char_end", 0)),
            text=payload["text"],
            score=score,
            scores=scores,
            # The chunk's detected language joins the document's metadata (it is per chunk).
            metadata={
                **(cite.get("metadata") or {}),
                **({"language": payload["language"]} if "language" in payload else {}),
            },
            vector=vector,
        )


@dataclass(frozen=True)
class IndexInfo:
    model_id: str
    dim: int


@dataclass(frozen=True)
class CollectionSettings:
    """How a new collection is built (``SOVRA_INDEX_*`` / ``SOVRA_QDRANT_*``); ignored once it exists.

    ``None`` leaves a value to the engine's default.
    """

    hnsw_m: int | None = None
    hnsw_ef_construct: int | None = None
    on_disk_payload: bool | None = None
    on_disk_vectors: bool = False
    scalar_quantization: bool = False

    @classmethod
    def from_settings(cls, settings: Any) -> CollectionSettings:
        return cls(
            hnsw_m=settings.index_hnsw_m,
            hnsw_ef_construct=settings.index_hnsw_ef_construct,
            on_disk_payload=settings.index_on_disk_payload,
            on_disk_vectors=settings.qdrant_on_disk_vectors,
            scalar_quantization=settings.qdrant_scalar_quantization,
        )


class Index(Protocol):
    """Qdrant access for Sovra. Implemented by the embedded engine and by a Qdrant server.

    Writes that change what searches see (``replace``, ``delete_document``) are atomic per call:
    a search sees a document's chunks as they were before the call or as they are after it.
    """

    location: str

    def ensure(self, info: IndexInfo) -> None:
        """Create the collection, or check that it was built with the same embedding model."""

    def check(self, info: IndexInfo) -> None:
        """Raise IndexMissingError if the index is absent or was built with another model."""

    def upsert(self, points: list[IndexPoint]) -> None:
        """Bulk-load points of new documents, searchable at once (no replacement semantics)."""

    def replace(self, docs: list[tuple[DocInfo, list[IndexPoint]]]) -> None:
        """Make each document's chunks exactly ``points``, for all documents in one switch."""

    def stored_vectors(self, doc_ids: list[str]) -> dict[str, tuple[list[float], Sparse]]:
        """Vectors the documents' current chunks carry, by ``embed_key``: reused, not recomputed."""

    def delete_document(self, doc_id: str) -> None: ...

    def set_acl(self, doc_id: str, acl: frozenset[str]) -> None: ...

    def search(
        self,
        dense: list[float],
        sparse: Sparse,
        flt: SearchFilter,
        limit: int,
        mode: SearchMode = "hybrid",
        with_vectors: bool = False,
    ) -> list[Hit]: ...

    def count(self, flt: SearchFilter | None = None) -> int: ...

    def chunks(self, flt: SearchFilter, fields: list[str] | None = None) -> list[Hit]:
        """Every current chunk ``flt`` admits (ACL applied inside Qdrant), without a query."""

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
