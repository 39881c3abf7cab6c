"""Bulk ingestion on Ray: parse, chunk and embed in Ray tasks; the driver writes the index.

The driver runs the ordinary :class:`sovra.ingest.Ingestor` over the ordinary connectors, so the
incremental rules (unchanged documents skipped, ACL-only changes, deletions, state written after
the index, point ids from chunk ids) are the local pipeline's own, and it stays the one writer of
the index and the state file. Only the expensive part moves to Ray: for each new or changed
document, a task calls the same ``Document.load``, the same :func:`sovra.chunking.chunk_pages` and
the same embedder (built from the same settings, so an ``embedding`` route works too) and sends
back the pages and vectors. The driver then hands the Ingestor documents whose ``load`` returns
those pages and an embedder that answers from those vectors; a text it was not sent (which would
mean the two paths disagree) is embedded locally and counted in ``RayStats.local_fallbacks``.

Tasks are submitted a bounded window ahead of what the Ingestor consumes, so memory stays flat on
a large corpus. Delta connectors (``sync(cursor)``) are ingested locally: their changes arrive as a
stream that must be applied in order. Works with a local Ray runtime (``ray.init(num_cpus=N)``)
or a cluster (``RAY_ADDRESS``).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from typing import Any

from sovra.chunking import chunk_pages
from sovra.config import Settings
from sovra.documents import Connector, DeltaConnector, Document, Page
from sovra.errors import ConfigError, SovraError
from sovra.ingest import Ingestor, IngestReport, IngestState, Progress

log = logging.getLogger(__name__)

DOCS_PER_TASK = 8


def embedding_text(doc: Document, text: str) -> str:
    """What the Ingestor embeds for a chunk (title in front); kept in step with ``Ingestor._flush``,
    and a test fails (``local_fallbacks`` > 0) if the two ever differ."""
    return f"{doc.title}\n{text}"


@dataclass
class _Prepared:
    """One document's work done in a Ray task."""

    doc_id: str
    pages: list[Page] | None  # None: loading or chunking failed; the driver redoes it to report why
    texts: list[str] = field(default_factory=list)
    dense: list[list[float]] = field(default_factory=list)
    sparse: list[Any] = field(default_factory=list)


@dataclass
class RayStats:
    workers: int
    documents_sent: int = 0
    tasks: int = 0
    local_fallbacks: int = 0
    startup_s: float = 0.0  # starting the local Ray runtime (0 when one was running already)
    seconds: float = 0.0


# ---------------------------------------------------------------------------------- worker side

_WORKER_EMBEDDER: dict[str, Any] = {}


def _worker_embedder(settings: Settings) -> Any:
    """One embedder per Ray worker process, loaded on its first task and reused after."""
    key = settings.model_dump_json()
    emb = _WORKER_EMBEDDER.get(key)
    if emb is None:
        from sovra.runtime import Services

        emb = _WORKER_EMBEDDER[key] = Services(settings).embedder
        if hasattr(emb, "threads"):
            emb.threads = 1  # a Ray task holds one CPU; more threads would fight the other workers
    return emb


def prepare_documents(
    docs: Sequence[Document], settings: Settings, chunk_chars: int, chunk_overlap: int
) -> list[_Prepared]:
    """Load, chunk and embed ``docs`` with the local pipeline's functions (runs inside a Ray task)."""
    out: list[_Prepared] = []
    texts: list[str] = []
    for doc in docs:
        try:
            pages = doc.load()
            chunks = chunk_pages(doc.id, pages, chunk_chars, chunk_overlap)
        except Exception:  # the driver loads it again and reports the error the local way
            out.append(_Prepared(doc.id, None))
            continue
        item = _Prepared(doc.id, pages, [embedding_text(doc, c.text) for c in chunks])
        texts.extend(item.texts)
        out.append(item)
    if texts:
        emb = _worker_embedder(settings)
        dense = emb.embed_documents(texts)
        sparse = emb.sparse_documents(texts)
        i = 0
        for item in out:
            n = len(item.texts)
            item.dense, item.sparse = dense[i : i + n], sparse[i : i + n]
            i += n
    return out


# ---------------------------------------------------------------------------------- driver side


class _Precomputed:
    """The ``Embeds`` the driver's Ingestor uses: vectors computed by Ray tasks, looked up by text."""

    def __init__(self, embedder: Any, stats: RayStats) -> None:
        self._embedder = embedder
        self._stats = stats
        self.model_id: str = embedder.model_id
        self.dim: int = embedder.dim
        self._dense: dict[str, list[float]] = {}
        self._sparse: dict[str, Any] = {}
        self._lock = threading.Lock()

    def add(self, item: _Prepared) -> None:
        with self._lock:
            for text, d, sp in zip(item.texts, item.dense, item.sparse, strict=True):
                self._dense[text], self._sparse[text] = d, sp

    def _take(self, table: dict[str, Any], texts: Sequence[str], compute: Any) -> list[Any]:
        # Each vector is handed out once (the Ingestor embeds a text once per batch), then dropped:
        # memory holds only what the window of tasks ahead has produced.
        with self._lock:
            found = [table.pop(t, None) for t in texts]
        missing = [t for t, v in zip(texts, found, strict=True) if v is None]
        if missing:
            self._stats.local_fallbacks += len(missing)
            log.warning("%d chunk texts were not embedded by Ray; embedding them locally", len(missing))
            extra = iter(compute(missing))
            found = [v if v is not None else next(extra) for v in found]
        return found

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self._take(self._dense, texts, self._embedder.embed_documents)

    def sparse_documents(self, texts: list[str]) -> list[Any]:
        return self._take(self._sparse, texts, self._embedder.sparse_documents)


class _Prefetcher:
    """Submits Ray tasks a bounded window ahead of the document the Ingestor is loading."""

    def __init__(
        self, ray: Any, task: Any, docs: list[Document], args: tuple[Any, ...], window: int, sink: _Precomputed
    ):
        self._ray = ray
        self._task = task
        self._args = args
        self._batches = [docs[i : i + DOCS_PER_TASK] for i in range(0, len(docs), DOCS_PER_TASK)]
        self._batch_of = {d.id: n for n, batch in enumerate(self._batches) for d in batch}
        self._futures: dict[int, Any] = {}
        self._results: dict[str, _Prepared] = {}
        self._next = 0
        self._window = window
        self._sink = sink
        self.tasks = 0

    def _submit_until(self, batch: int) -> None:
        while self._next < len(self._batches) and self._next <= batch + self._window:
            self._futures[self._next] = self._task.remote(self._batches[self._next], *self._args)
            self._next += 1
            self.tasks += 1

    def get(self, doc_id: str) -> _Prepared:
        if doc_id not in self._results:
            n = self._batch_of[doc_id]
            self._submit_until(n)
            for item in self._ray.get(self._futures.pop(n)):
                self._results[item.doc_id] = item
                if item.pages is not None:
                    self._sink.add(item)
        return self._results.pop(doc_id)


class _RayConnector:
    """The connector as the Ingestor sees it: same documents, ``load`` answered from Ray results."""

    def __init__(self, connector: Connector, docs: list[Document]) -> None:
        self.name = connector.name
        self._docs = docs

    def documents(self) -> Iterator[Document]:
        return iter(self._docs)


def _with_prefetched_load(doc: Document, prefetch: _Prefetcher) -> Document:
    original = doc.load

    def load() -> list[Page]:
        pages = prefetch.get(doc.id).pages
        return pages if pages is not None else original()  # the failure is reported as locally

    return dataclasses.replace(doc, load=load)


def _import_ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise ConfigError(
            "Ray is not installed",
            hint="install the extra: uv pip install 'sovra[ray]' (or pip install 'ray[default]')",
        ) from exc
    return ray


def run_ray_ingest(
    ingestor: Ingestor,
    connectors: Iterable[Connector],
    settings: Settings,
    workers: int = 2,
    progress: Progress | None = None,
) -> tuple[IngestReport, RayStats]:
    """Ingest ``connectors`` with parse/chunk/embed on ``workers`` Ray tasks at a time."""
    ray = _import_ray()
    if workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {workers}")
    t0 = time.perf_counter()
    stats = RayStats(workers=workers)
    started = False
    if not ray.is_initialized():
        # A local runtime unless RAY_ADDRESS names a cluster; no dashboard, nothing listening outside.
        ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False, configure_logging=False)
        started = True
        stats.startup_s = time.perf_counter() - t0
    try:
        task = ray.remote(num_cpus=1, max_retries=1)(prepare_documents)
        sink = _Precomputed(ingestor.embedder, stats)
        wrapped: list[Connector] = []
        prefetchers: list[_Prefetcher] = []
        with closing(IngestState(ingestor.state_path)) as state:
            for connector in connectors:
                if isinstance(connector, DeltaConnector):
                    wrapped.append(connector)  # applied in feed order, locally
                    continue
                try:
                    docs = list(connector.documents())
                except SovraError:
                    wrapped.append(connector)  # the Ingestor lists it again and reports the error
                    continue
                todo = [d for d in docs if (state.get(d.id) or ("",))[0] != d.version]
                stats.documents_sent += len(todo)
                args = (settings, ingestor.chunk_chars, ingestor.chunk_overlap)
                prefetch = _Prefetcher(ray, task, todo, args, window=2 * workers, sink=sink)
                prefetchers.append(prefetch)
                todo_ids = {d.id for d in todo}
                docs = [_with_prefetched_load(d, prefetch) if d.id in todo_ids else d for d in docs]
                wrapped.append(_RayConnector(connector, docs))
        local = Ingestor(
            ingestor.index,
            sink,
            ingestor.state_path,
            ingestor.chunk_chars,
            ingestor.chunk_overlap,
            ingestor.batch_chunks,
        )
        report = local.run(wrapped, progress)
        stats.tasks = sum(p.tasks for p in prefetchers)
    finally:
        if started:
            ray.shutdown()
    stats.seconds = time.perf_counter() - t0
    return report, stats
