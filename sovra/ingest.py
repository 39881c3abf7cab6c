"""parse -> chunk -> embed -> upsert, incrementally.

A small SQLite state file remembers, per document, the version and ACL that are in the index.
An unchanged document costs nothing; an ACL-only change rewrites payloads without embedding; a
changed document is re-chunked, only chunks whose text the index does not hold yet are embedded,
and its chunks are replaced atomically (sovra.index.versions); a document the source no longer
lists is deleted. State is written only after the index holds the change, so a run killed half-way
is finished by the next run with nothing lost and nothing duplicated (point ids are derived from
document, chunk content and occurrence, so re-writing is idempotent).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import sqlite3
import time
from collections.abc import Iterable
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from sovra.chunking import chunk_pages
from sovra.doc_profile import profile
from sovra.documents import Checkpoint, Chunk, Connector, Deletion, DeltaConnector, Document, FullListing, Page
from sovra.errors import DefinitionError, ParseError, SourceError, SovraError
from sovra.index import DocInfo, Index, IndexInfo, IndexPoint, Sparse, embed_key

log = logging.getLogger(__name__)

UPLOADS_SOURCE = "uploads"  # the source of files uploaded in the chat (sovra.connectors.uploads)


class Embeds(Protocol):
    model_id: str
    dim: int

    def embed_documents(self, texts: list[str]) -> list[list[float]]: ...

    def sparse_documents(self, texts: list[str]) -> list[Sparse]: ...


class Progress(Protocol):
    def start(self, source: str, total: int) -> None: ...

    def advance(self, doc_id: str, status: str) -> None: ...


@dataclass
class IngestReport:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    acl_changed: int = 0
    deleted: int = 0
    chunks_embedded: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    no_acl: list[str] = field(default_factory=list)  # documents nobody may read (no sidecar, no default)
    pages: int = 0  # pages read from the documents indexed in this run
    tables: int = 0  # tables found in them (sovra.connectors.pdf_tables)
    ocr_pages: int = 0  # pages read by OCR (sovra.connectors.ocr)
    # Pages left out of documents that were indexed otherwise: (document, "page N: why").
    skipped_pages: list[tuple[str, str]] = field(default_factory=list)
    # A source that stopped on a mistake of its own (a connector's definition): what to fix, by source
    # name. Other stops resume from the last checkpoint on the next run.
    fix: dict[str, str] = field(default_factory=dict)

    def stopped(self, source: str, exc: SovraError) -> None:
        self.failed.append((source, exc.message))
        if isinstance(exc, DefinitionError):
            self.fix[source] = exc.hint or "fix the connector"

    def summary(self) -> str:
        return (
            f"{self.added} added, {self.updated} updated, {self.unchanged} unchanged, "
            f"{self.acl_changed} permission changes, {self.deleted} deleted, {len(self.failed)} failed; "
            f"{self.chunks_embedded} chunks embedded in {self.seconds:.1f}s"
            + (
                f"; {self.pages} pages, {self.tables} tables, {self.ocr_pages} OCRed, "
                f"{len(self.skipped_pages)} pages skipped"
                if self.pages
                else ""
            )
        )


def _acl_key(acl: Iterable[str]) -> str:
    return hashlib.sha256("\n".join(sorted(acl)).encode()).hexdigest()[:16]


class IngestState:
    """What the index holds, per document. One row per document, written after the index."""

    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(path)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS documents (doc_id TEXT PRIMARY KEY, source TEXT NOT NULL,"
            " version TEXT NOT NULL, acl TEXT NOT NULL, chunks INTEGER NOT NULL, updated REAL NOT NULL)"
        )
        # Where each delta source resumes (a delta token, a high-water mark), stored after the index.
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS cursors (source TEXT PRIMARY KEY, cursor TEXT NOT NULL, updated REAL NOT NULL)"
        )
        self._db.commit()

    def cursor(self, source: str) -> str | None:
        row = self._db.execute("SELECT cursor FROM cursors WHERE source=?", (source,)).fetchone()
        return str(row[0]) if row else None

    def set_cursor(self, source: str, cursor: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO cursors VALUES (?,?,?)", (source, cursor, time.time()))
        self._db.commit()

    def reset_cursor(self, source: str) -> None:
        self._db.execute("DELETE FROM cursors WHERE source=?", (source,))
        self._db.commit()

    def get(self, doc_id: str) -> tuple[str, str] | None:
        row = self._db.execute("SELECT version, acl FROM documents WHERE doc_id=?", (doc_id,)).fetchone()
        return (row[0], row[1]) if row else None

    def ids(self, source: str) -> set[str]:
        return {r[0] for r in self._db.execute("SELECT doc_id FROM documents WHERE source=?", (source,))}

    def put(self, doc: Document, chunks: int) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO documents VALUES (?,?,?,?,?,?)",
            (doc.id, doc.source, doc.version, _acl_key(doc.acl), chunks, time.time()),
        )
        self._db.commit()

    def set_acl(self, doc: Document) -> None:
        self._db.execute("UPDATE documents SET acl=? WHERE doc_id=?", (_acl_key(doc.acl), doc.id))
        self._db.commit()

    def delete(self, doc_id: str) -> None:
        self._db.execute("DELETE FROM documents WHERE doc_id=?", (doc_id,))
        self._db.commit()

    def clear(self) -> None:
        self._db.execute("DELETE FROM documents")
        self._db.execute("DELETE FROM cursors")
        self._db.commit()

    def count(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM documents").fetchone()[0])

    def close(self) -> None:
        self._db.close()


def with_profile(doc: Document, pages: list[Page]) -> Document:
    """The document with its entity, period and kind (:mod:`sovra.doc_profile`) in its metadata;
    what the connector says wins."""
    name = str(doc.metadata.get("path") or doc.url.rsplit("/", 1)[-1] or doc.title)
    found = profile(name, doc.title, [p.text for p in pages if p.text][:2])  # skipped pages are empty
    if not found:
        return doc
    return dataclasses.replace(doc, metadata={**found, **doc.metadata})


def _check_document(connector: Any, item: Any, method: str) -> None:
    """A connector that yields something else than a ``Document`` is a definition mistake: said in
    one line naming the connector and what it yielded, not an AttributeError deep in ingestion."""
    if not isinstance(item, Document):
        raise DefinitionError(
            f"connector {getattr(connector, 'name', '?')!r} ({type(connector).__qualname__}): {method} yielded "
            f"a {type(item).__qualname__}, not a sovra.documents.Document",
            hint="yield Document(id, title, source, url, version, acl, load) for each item (docs/sdk.md, section 1)",
        )


def _doc_info(doc: Document) -> DocInfo:
    return DocInfo(
        doc_id=doc.id,
        title=doc.title,
        url=doc.url,
        source=doc.source,
        doc_type=doc.doc_type,
        version=doc.version,
        acl=doc.acl,
        metadata=doc.metadata,
    )


class Ingestor:
    """Runs connectors into the index. Embeds in batches that span documents, for throughput."""

    def __init__(
        self,
        index: Index,
        embedder: Embeds,
        state_path: Path,
        chunk_chars: int = 1200,
        chunk_overlap: int = 150,
        batch_chunks: int = 256,
    ) -> None:
        self.index = index
        self.embedder = embedder
        self.state_path = state_path
        self.chunk_chars = chunk_chars
        self.chunk_overlap = chunk_overlap
        self.batch_chunks = batch_chunks

    def run(self, connectors: Iterable[Connector], progress: Progress | None = None) -> IngestReport:
        t0 = time.perf_counter()
        report = IngestReport()
        self.index.ensure(IndexInfo(model_id=self.embedder.model_id, dim=self.embedder.dim))
        with closing(IngestState(self.state_path)) as state:
            for connector in connectors:
                self._sync(connector, state, report, progress)
        if report.added or report.updated or report.deleted:
            self.index.optimize()
        report.seconds = time.perf_counter() - t0
        return report

    def apply(self, changes: Iterable[Document | Deletion]) -> IngestReport:
        """Apply single changes (one uploaded file, its new ACL, its removal) without listing a
        source: documents of the same source that ``changes`` does not name are left as they are."""
        t0 = time.perf_counter()
        report = IngestReport()
        self.index.ensure(IndexInfo(model_id=self.embedder.model_id, dim=self.embedder.dim))
        pending: list[tuple[Document, list[Chunk], bool]] = []
        with closing(IngestState(self.state_path)) as state:
            for change in changes:
                if isinstance(change, Deletion):
                    self._flush(pending, state, report, None)
                    pending.clear()
                    known = state.get(change.id) is not None
                    self.index.delete_document(change.id)  # also when the state lost it: gone means gone
                    state.delete(change.id)
                    report.deleted += known
                else:
                    self._apply(change, state, report, None, pending)
            self._flush(pending, state, report, None)
        if report.added or report.updated or report.deleted:
            self.index.optimize()
        report.seconds = time.perf_counter() - t0
        return report

    def _sync(self, connector: Connector, state: IngestState, report: IngestReport, progress: Progress | None) -> None:
        if connector.name == UPLOADS_SOURCE:
            # A synced source deletes what it does not list: under this name, every chat upload.
            report.stopped(
                connector.name,
                DefinitionError(
                    f"the source name {UPLOADS_SOURCE!r} is reserved for files uploaded in the chat",
                    hint="give the source another name",
                ),
            )
            return
        if isinstance(connector, DeltaConnector):
            self._sync_delta(connector, state, report, progress)
            return
        try:
            docs = list(connector.documents())
            for doc in docs:
                _check_document(connector, doc, "documents()")
        except SovraError as exc:
            report.stopped(connector.name, exc)
            return
        if progress:
            progress.start(connector.name, len(docs))
        pending: list[tuple[Document, list[Chunk], bool]] = []
        # Deletions first: one bad item later in the listing must never keep a removed document readable.
        self._delete_unlisted(connector.name, {doc.id for doc in docs}, state, report)
        for doc in docs:
            self._apply(doc, state, report, progress, pending)
        self._flush(pending, state, report, progress)

    def _sync_delta(
        self, connector: DeltaConnector, state: IngestState, report: IngestReport, progress: Progress | None
    ) -> None:
        """Apply a delta feed. A ``Checkpoint``'s cursor is stored only once every change before it is
        in the index, and never after an item that failed for a passing reason (``SourceError``): the
        next run then sees that item again. Unchanged re-seen items cost a state lookup."""
        cursor = state.cursor(connector.name)
        listed: set[str] | None = set() if cursor is None else None
        pending: list[tuple[Document, list[Chunk], bool]] = []
        held_back = False
        if progress:
            progress.start(connector.name, 0)  # 0: the number of changes is not known up front

        def flush() -> None:
            self._flush(list(pending), state, report, progress)
            pending.clear()

        try:
            for change in connector.sync(cursor):
                if isinstance(change, FullListing):
                    listed = set()
                elif isinstance(change, Checkpoint):
                    flush()
                    if not held_back:
                        state.set_cursor(connector.name, change.cursor)
                elif isinstance(change, Deletion):
                    if _unencodable_text(change.id) is not None:
                        report.failed.append((_shown(change.id), "a deletion whose id is not valid Unicode"))
                        continue
                    if any(d.id == change.id for d, _, _ in pending):
                        flush()
                    if listed is not None:
                        listed.discard(change.id)
                    if state.get(change.id) is not None:
                        self.index.delete_document(change.id)
                        state.delete(change.id)
                        report.deleted += 1
                        if progress:
                            progress.advance(change.id, "deleted")
                else:
                    _check_document(connector, change, "sync()")
                    if any(d.id == change.id for d, _, _ in pending):
                        flush()  # the same item twice in one feed: the later one wins
                    if listed is not None:
                        listed.add(change.id)
                    if self._apply(change, state, report, progress, pending) == "retry":
                        held_back = True
        except SovraError as exc:
            # What was applied stays applied; the cursor stays at the last checkpoint.
            flush()
            report.stopped(connector.name, exc)
            return
        flush()
        if listed is not None:
            self._delete_unlisted(connector.name, listed, state, report)

    def _apply(
        self,
        doc: Document,
        state: IngestState,
        report: IngestReport,
        progress: Progress | None,
        pending: list[tuple[Document, list[Chunk], bool]],
    ) -> str:
        """Queue ``doc`` for embedding unless its version is indexed already. Returns "ok", "failed"
        (a ``ParseError`` or other lasting problem) or "retry" (a ``SourceError``: may pass)."""
        bad = _unencodable(doc)
        if bad is not None:
            return self._fail_unencodable(doc, bad, state, report, progress)
        prior = state.get(doc.id)
        if prior and prior[0] == doc.version:
            if not doc.acl:
                report.no_acl.append(doc.id)
            if prior[1] != _acl_key(doc.acl):
                self.index.set_acl(doc.id, doc.acl)
                state.set_acl(doc)
                report.acl_changed += 1
            else:
                report.unchanged += 1
            if progress:
                progress.advance(doc.id, "unchanged")
            return "ok"
        try:
            try:
                pages = doc.load()
                chunks = chunk_pages(doc.id, pages, self.chunk_chars, self.chunk_overlap)
                doc = with_profile(doc, pages)
            except SovraError:
                raise
            except Exception as exc:  # a bug or odd input in one parser must not stop the sync
                log.exception("reading %s failed", doc.id)
                raise ParseError(f"{doc.id} cannot be read ({type(exc).__name__}: {exc})") from exc
            if not chunks:
                raise SovraError(f"{doc.url} has no text to index")
        except SovraError as exc:
            # The old version, if any, stays searchable: a bad new file must not erase it. Its ACL
            # still follows the source: a document made private must not stay readable.
            log.warning("skipping %s: %s", doc.id, exc.message)
            report.failed.append((doc.id, exc.message))
            if prior and prior[1] != _acl_key(doc.acl):
                self.index.set_acl(doc.id, doc.acl)
                state.set_acl(doc)
            if progress:
                progress.advance(doc.id, "failed")
            return "retry" if isinstance(exc, SourceError) else "failed"
        if not doc.acl:  # (an item that failed is not indexed: its empty ACL is not the news)
            report.no_acl.append(doc.id)
        report.pages += len(pages)
        report.tables += sum(len(p.tables) for p in pages)
        report.ocr_pages += sum(p.ocr for p in pages)
        for p in pages:
            if p.skipped:
                log.warning("%s page %d skipped: %s", doc.id, p.number, p.skipped)
                report.skipped_pages.append((doc.id, f"page {p.number}: {p.skipped}"))
        pending.append((doc, chunks, prior is not None))
        if sum(len(c) for _, c, _ in pending) >= self.batch_chunks:
            self._flush(list(pending), state, report, progress)
            pending.clear()
        return "ok"

    def _fail_unencodable(
        self, doc: Document, reason: str, state: IngestState, report: IngestReport, progress: Progress | None
    ) -> str:
        """An item whose id, title, metadata or ACL is not valid Unicode (a lone surrogate) cannot be
        stored; it is reported, and an earlier version under the same id takes the new ACL, or
        becomes readable by nobody when the ACL itself is the bad field."""
        shown = _shown(doc.id)
        log.warning("skipping %s: %s", shown, reason)
        report.failed.append((shown, reason))
        if _unencodable_text(doc.id) is None and (prior := state.get(doc.id)) is not None:
            acl = doc.acl if _unencodable_text("\n".join(doc.acl)) is None else frozenset()
            if prior[1] != _acl_key(acl):
                self.index.set_acl(doc.id, acl)
                state.set_acl(dataclasses.replace(doc, acl=acl))
        if progress:
            progress.advance(shown, "failed")
        return "failed"

    def _delete_unlisted(self, source: str, listed: set[str], state: IngestState, report: IngestReport) -> None:
        for gone in state.ids(source) - listed:
            self.index.delete_document(gone)
            state.delete(gone)
            report.deleted += 1

    def _flush(
        self,
        pending: list[tuple[Document, list[Chunk], bool]],
        state: IngestState,
        report: IngestReport,
        progress: Progress | None,
    ) -> None:
        if not pending:
            return
        try:
            self._store(pending, state, report, progress)
        except SovraError:
            raise  # the index or the embedding server: not one item's fault
        except Exception as exc:
            if len(pending) > 1:  # find the item that cannot be embedded or stored; the others go in one by one
                for one in pending:
                    self._flush([one], state, report, progress)
                return
            doc, _, existed = pending[0]
            log.exception("storing %s failed", doc.id)
            report.failed.append((_shown(doc.id), f"cannot be stored ({type(exc).__name__}: {exc})"))
            prior = state.get(doc.id) if existed else None
            if prior and prior[1] != _acl_key(doc.acl):  # the old version stays, under the new ACL
                self.index.set_acl(doc.id, doc.acl)
                state.set_acl(doc)
            if progress:
                progress.advance(_shown(doc.id), "failed")

    def _store(
        self,
        pending: list[tuple[Document, list[Chunk], bool]],
        state: IngestState,
        report: IngestReport,
        progress: Progress | None,
    ) -> None:
        # Each chunk is embedded with its document's title in front: a clause saying "the Supplier may
        # terminate" only matches "the Acme contract" if the vector knows which contract it is in.
        # A chunk inside a table also carries the table's caption and column header (its context).
        texts = {
            (doc.id, c.id): f"{doc.title}\n{c.context}\n{c.text}" if c.context else f"{doc.title}\n{c.text}"
            for doc, chunks, _ in pending
            for c in chunks
        }
        keys = {k: embed_key(t) for k, t in texts.items()}
        # Chunks whose exact text the index already holds for the document keep their vectors: a
        # one-clause edit re-embeds the chunks around that clause, not the whole document.
        vectors = self.index.stored_vectors([doc.id for doc, _, existed in pending if existed])
        todo = {keys[k]: t for k, t in texts.items() if keys[k] not in vectors}
        fresh = list(todo.values())
        dense = self.embedder.embed_documents(fresh)
        sparse = self.embedder.sparse_documents(fresh)
        for key, d, s in zip(todo, dense, sparse, strict=True):
            vectors[key] = (d, Sparse(list(s.indices), list(s.values)))
        batch: list[tuple[DocInfo, list[IndexPoint]]] = []
        for doc, chunks, _ in pending:
            info = _doc_info(doc)
            points = []
            for chunk in chunks:
                key = keys[(doc.id, chunk.id)]
                points.append(IndexPoint(chunk, info, *vectors[key], embed_key=key))
            batch.append((info, points))
        # One switch for the whole batch: searches see each document's old or new chunks, never a mix.
        self.index.replace(batch)
        for doc, chunks, existed in pending:
            if existed:
                report.updated += 1
            else:
                report.added += 1
            state.put(doc, len(chunks))
            if progress:
                progress.advance(doc.id, "updated" if existed else "added")
        report.chunks_embedded += len(fresh)


def _unencodable_text(text: str) -> str | None:
    try:
        text.encode("utf-8")
        return None
    except UnicodeEncodeError as exc:
        return f"not valid Unicode at position {exc.start}"


def _unencodable(doc: Document) -> str | None:
    """Why ``doc`` cannot be stored (a lone surrogate somewhere), or None."""
    fields = {"id": doc.id, "title": doc.title, "url": doc.url, "version": doc.version, "doc_type": doc.doc_type}
    for name, value in fields.items():
        if (why := _unencodable_text(str(value))) is not None:
            return f"its {name} is {why}"
    if _unencodable_text("\n".join(doc.acl)) is not None:
        return "its access list is not valid Unicode"
    if _unencodable_text(json.dumps(doc.metadata, ensure_ascii=False, default=str)) is not None:
        return "its metadata is not valid Unicode"
    return None


def _shown(text: str) -> str:
    """``text`` safe to print and store: invalid code points as backslash escapes."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def load_sources(path: Path) -> dict[str, dict[str, Any]]:
    """Known sources (name -> {"kind", "path"}), remembered so `sovra ingest --source NAME` works."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return {}


def save_source(path: Path, name: str, kind: str, location: Path, default_acl: list[str] | None = None) -> None:
    sources = load_sources(path)
    entry: dict[str, Any] = {"kind": kind, "path": str(location.resolve())}
    if default_acl is not None:  # who may read the source's files that have no sidecar
        entry["default_acl"] = sorted(default_acl)
    sources[name] = entry
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(sources, indent=2, sort_keys=True))
    tmp.replace(path)
