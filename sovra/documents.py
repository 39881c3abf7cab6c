"""The types that flow from connectors through ingestion into the index."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True)
class Page:
    """One unit of citation: a PDF page, a whole DOCX/HTML document (page 1), or a ledger row."""

    number: int
    text: str


@dataclass
class Document:
    """A source item with its access list. ``load`` returns its pages; it is called lazily."""

    id: str
    title: str
    source: str  # connector name, e.g. "contracts"
    url: str  # link or path a person can open
    version: str  # etag / content hash / mtime: changes when the content changes
    acl: frozenset[str]  # principals allowed to read, e.g. {"group:finance", "user:bob"}
    load: Callable[[], list[Page]]
    metadata: dict[str, Any] = field(default_factory=dict)
    doc_type: str = "document"


@dataclass(frozen=True)
class Deletion:
    """The source no longer has this document."""

    id: str


@dataclass(frozen=True)
class Chunk:
    """A span of a document's page, the unit we embed, store and cite."""

    doc_id: str
    index: int  # position of the chunk within its document
    page: int
    char_start: int  # offsets into the page text
    char_end: int
    text: str

    @property
    def id(self) -> str:
        """Stable id: the same document position always maps to the same point."""
        return f"{self.doc_id}#{self.index}"

    @property
    def content_hash(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()[:16]


@runtime_checkable
class Connector(Protocol):
    """What ingestion needs from a source (the SDK contract is documented in sovra.connectors.base)."""

    name: str

    def documents(self) -> Iterator[Document]:
        """Yield every document of the source; ``Document.load`` is called lazily."""
        ...
