"""The types that flow from connectors through ingestion into the index."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True)
class TableSpan:
    """A table found in a page's text: ``text[start:end]`` holds its header row and data rows (one
    line each, every cell labelled with its column), ``caption`` the title above it ("Consolidated
    Statement of Income ... (Millions)")."""

    start: int
    end: int
    caption: str
    columns: tuple[str, ...] = ()


@dataclass(frozen=True)
class Page:
    """One unit of citation: a PDF page, a whole DOCX/HTML document (page 1), or a ledger row.

    ``tables`` locates tables in ``text``. A page that could not be read has no text and says why in
    ``skipped`` ("no text layer; OCR not installed"); ingest reports it and indexes the other pages.
    A page without a text layer that OCR read has ``ocr`` set.
    """

    number: int
    text: str
    tables: tuple[TableSpan, ...] = ()
    skipped: str = ""
    ocr: bool = False  # the text was read by OCR (connectors.ocr): the page had no text layer


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
class Checkpoint:
    """Yielded by ``DeltaConnector.sync``: a position from which the source can resume.

    Ingest makes every change yielded before it durable in the index, then stores ``cursor`` for the
    source. The last checkpoint of a sync that ran to its end is where the next sync starts; a sync
    killed half-way resumes from the last stored one (changes after it are simply seen again).
    """

    cursor: str


@dataclass(frozen=True)
class FullListing:
    """Yielded by ``DeltaConnector.sync`` before a complete enumeration (first sync, or the source
    said the cursor expired): documents of the source not listed by the end of this sync are
    deleted, as with ``documents()``."""


# What a delta sync yields.
Change = Document | Deletion | Checkpoint | FullListing


@dataclass(frozen=True)
class Chunk:
    """A span of a document's page, the unit we embed, store and cite."""

    doc_id: str
    index: int  # position of the chunk within its document
    page: int
    char_start: int  # offsets into the page text
    char_end: int
    text: str
    occurrence: int = 0  # earlier chunks of the document with the same text (see number_occurrences)
    # What the text needs to be understood alone, embedded in front of it but not part of it: for a
    # chunk inside a table, the table's caption and column header (see sovra.chunking).
    context: str = ""

    @property
    def id(self) -> str:
        """Stable id keyed by content, not position: an edit elsewhere in the document leaves it as
        it is, so re-ingesting reuses the chunk's vectors and old citations still resolve."""
        suffix = f"~{self.occurrence}" if self.occurrence else ""
        return f"{self.doc_id}#{self.content_hash}{suffix}"

    @property
    def content_hash(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()[:16]


def number_occurrences(chunks: list[Chunk]) -> list[Chunk]:
    """Give repeated texts within one document distinct ids (a clause quoted twice, a footer)."""
    seen: dict[str, int] = {}
    out: list[Chunk] = []
    for c in chunks:
        n = seen.get(c.text, 0)
        seen[c.text] = n + 1
        out.append(c if n == c.occurrence else replace(c, occurrence=n))
    return out


@runtime_checkable
class Connector(Protocol):
    """What ingestion needs from a source (the SDK contract is documented in sovra.connectors.base)."""

    name: str

    def documents(self) -> Iterator[Document]:
        """Yield every document of the source; ``Document.load`` is called lazily."""
        ...


@runtime_checkable
class DeltaConnector(Connector, Protocol):
    """A connector that can list only what changed since a cursor (see sovra.connectors.base)."""

    def sync(self, cursor: str | None) -> Iterator[Change]:
        """Yield the changes since ``cursor`` (``None``: everything) and ``Checkpoint``s."""
        ...
