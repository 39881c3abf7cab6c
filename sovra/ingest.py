"""parse -> chunk -> embed -> upsert, incrementally.

A small SQLite state file remembers, per document, the version and ACL that are in the index.
An unchanged document costs nothing; an ACL-only change rewrites payloads without embedding; a
changed document is re-chunked and re-embedded, then its stale chunks are removed; a document the
source no longer lists is deleted. State is written only after the index holds the change, so a
run killed half-way is finished by the next run with nothing lost and nothing duplicated (point ids
are derived from chunk ids, so re-upserting is idempotent).
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
import time
from collections.abc import Iterable
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from sovra.chunking import chunk_pages
from sovra.documents import Chunk, Connector, Document
from sovra.errors import SovraError
from sovra.index import DocInfo, Index, IndexInfo, IndexPoint, Sparse

log = logging.getLogger(__name__)


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

    def summary(self) -> str:
        return (
            f"{self.added} added, {self.updated} updated, {self.unchanged} unchanged, "
            f"{self.acl_changed} permission changes, {self.deleted} deleted, {len(self.failed)} failed; "
            f"{self.chunks_embedded} chunks embedded in {self.seconds:.1f}s"
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
        self._db.commit()

    def count(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM documents").fetchone()[0])

    def close(self) -> None:
        self._db.close()


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

    def _sync(self, connector: Connector, state: IngestState, report: IngestReport, progress: Progress | None) -> None:
        try:
            docs = list(connector.documents())
        except SovraError as exc:
            report.failed.append((connector.name, exc.message))
            return
        if progress:
            progress.start(connector.name, len(docs))
        pending: list[tuple[Document, list[Chunk], bool]] = []
        listed: set[str] = set()
        for doc in docs:
            listed.add(doc.id)
            prior = state.get(doc.id)
            if prior and prior[0] == doc.version:
                if prior[1] != _acl_key(doc.acl):
                    self.index.set_acl(doc.id, doc.acl)
                    state.set_acl(doc)
                    report.acl_changed += 1
                else:
                    report.unchanged += 1
                if progress:
                    progress.advance(doc.id, "unchanged")
                continue
            try:
                pages = doc.load()
                chunks = chunk_pages(doc.id, pages, self.chunk_chars, self.chunk_overlap)
                if not chunks:
                    raise SovraError(f"{doc.url} has no text to index")
            except SovraError as exc:
                # The old version, if any, stays searchable: a bad new file must not erase it.
                log.warning("skipping %s: %s", doc.id, exc.message)
                report.failed.append((doc.id, exc.message))
                if progress:
                    progress.advance(doc.id, "failed")
                continue
            pending.append((doc, chunks, prior is not None))
            if sum(len(c) for _, c, _ in pending) >= self.batch_chunks:
                self._flush(pending, state, report, progress)
                pending = []
        self._flush(pending, state, report, progress)
        for gone in state.ids(connector.name) - listed:
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
        # Each chunk is embedded with its document's title in front: a clause saying "the Supplier may
        # terminate" only matches "the Acme contract" if the vector knows which contract it is in.
        texts = [f"{doc.title}\n{c.text}" for doc, chunks, _ in pending for c in chunks]
        dense = self.embedder.embed_documents(texts)
        sparse = self.embedder.sparse_documents(texts)
        points: list[IndexPoint] = []
        i = 0
        for doc, chunks, _ in pending:
            info = _doc_info(doc)
            for chunk in chunks:
                s = sparse[i]
                points.append(IndexPoint(chunk, info, dense[i], Sparse(list(s.indices), list(s.values))))
                i += 1
        self.index.upsert(points)
        for doc, chunks, existed in pending:
            if existed:
                self.index.delete_stale(doc.id, {c.id for c in chunks})
                report.updated += 1
            else:
                report.added += 1
            state.put(doc, len(chunks))
            if progress:
                progress.advance(doc.id, "updated" if existed else "added")
        report.chunks_embedded += len(texts)


def load_sources(path: Path) -> dict[str, dict[str, str]]:
    """Known sources (name -> {"kind", "path"}), remembered so `sovra ingest --source NAME` works."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return {}


def save_source(path: Path, name: str, kind: str, location: Path) -> None:
    sources = load_sources(path)
    sources[name] = {"kind": kind, "path": str(location.resolve())}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(sources, indent=2, sort_keys=True))
    tmp.replace(path)
