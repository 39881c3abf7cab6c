"""Atomic document replacement on Qdrant: a version window on every point and one switch.

Qdrant has no multi-operation transaction. A batch of updates in one request (the server's
``batch_update_points``) is applied operation by operation and segment by segment while searches
run, and qdrant-edge takes one operation per call; the only atomic switch both engines offer is
how a collection *alias* points, which swaps whole collections, not one document. So "upsert the
new chunks, then delete the old ones" leaves a window in which a search sees both versions, and
"delete, then upsert" one in which it sees neither.

Sovra versions the index instead (multi-version concurrency control in three payload fields):

- ``gen_from``/``gen_to``: a point belongs to the index as of version G when
  ``gen_from <= G < gen_to`` (integer payload indexes; ``LIVE`` = not retired). Every read
  (search, count, stored vectors) filters on this window, inside Qdrant, next to the ACL term.
- The committed version G is one number kept in a metadata point of the collection (no vectors,
  no ACL: no search or count can return it). Writing that point is a single-point upsert, which
  Qdrant applies atomically: that is the switch.
- Replacing documents at version G: (1) new chunks are written with ``gen_from = G+1``, invisible;
  (2) chunks the new versions no longer have get ``gen_to = G+1``, still visible; (3) the switch
  sets G+1. Before step 3 every reader sees the old versions exactly, after it the new ones.
- A chunk present in both versions keeps its point (id from document, content and occurrence) and
  its vectors. Its position may move (chunk index, page, character span, URL, document version,
  display metadata): those fields live in ``cite``, a map from the version that wrote them, and a
  reader takes the newest entry not after its G. Anything else that changes a point (the text that
  was embedded, title, type, the filter fields) changes its id, so it is replaced, never edited in
  place.
  Permissions are the exception by design: ``set_acl`` rewrites them in place on every version at
  once, so a document made private is private immediately, old version included.
- Retired points are deleted later (``_vacuum``, at the start of the next write), only once no
  reader can still need them: readers in this process register their version while they search;
  for readers in other processes (a server) one committed version of slack is kept. Writes left
  half-done by a crash are invisible (their version was never switched on) and are undone at the
  start of the next write.

One writer at a time per collection (ingestion already runs one at a time); any number of readers.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sovra.errors import IndexMissingError
from sovra.index.base import (
    LIVE,
    Cond,
    DocInfo,
    Hit,
    IndexPoint,
    SearchFilter,
    SearchMode,
    Sparse,
    conditions,
    doc_cond,
    fuse_breakdown,
    point_id,
    resolve_cite,
    visible,
)

# The metadata point that holds the committed version.
META_ID = point_id("sovra:index-version")
PREFETCH_FACTOR = 4


@dataclass(frozen=True)
class Stored:
    id: str
    payload: dict[str, Any]
    dense: list[float] | None = None
    sparse: Sparse | None = None


@dataclass(frozen=True)
class Scored:
    id: str
    score: float
    payload: dict[str, Any] | None = None
    vector: list[float] | None = None


Write = tuple[str, list[float], Sparse, dict[str, Any]]


def _prune(cite: dict[str, Any], horizon: int) -> dict[str, Any]:
    """Drop citation entries no reader at or after ``horizon`` can select."""
    keys = sorted(int(k) for k in cite)
    keep = [k for k in keys if k > horizon]
    older = [k for k in keys if k <= horizon]
    if older:
        keep.append(older[-1])
    return {str(k): cite[str(k)] for k in keep}


class VersionedIndex(ABC):
    """Search and versioned writes over five storage primitives each backend implements."""

    location: str
    # True when other processes may read the same collection (a server): vacuum keeps a version of slack.
    remote_readers = False

    def __init__(self) -> None:
        self._readers: Counter[int] = Counter()
        self._readers_lock = threading.Lock()
        self._write_lock = threading.Lock()

    # -- primitives ------------------------------------------------------------------------
    @abstractmethod
    def _write(self, points: list[Write]) -> None: ...

    @abstractmethod
    def _scroll(
        self, conds: list[Cond], with_vectors: bool = False, fields: list[str] | None = None
    ) -> list[Stored]: ...

    @abstractmethod
    def _set_payload(self, ids: list[str] | list[Cond], payload: dict[str, Any]) -> None:
        """Set payload keys on the given point ids, or on every point matching the conditions."""

    @abstractmethod
    def _delete(self, conds: list[Cond]) -> None: ...

    @abstractmethod
    def _query(
        self, dense: list[float], sparse: Sparse, conds: list[Cond], limit: int, mode: SearchMode, with_vectors: bool
    ) -> tuple[list[Scored], list[Scored], list[Scored]]:
        """(dense leg, sparse leg, final) for the same filter; only the final carries payloads. In a
        one-leg mode that leg is the final itself and the other is empty: one query, not three."""

    @abstractmethod
    def _count(self, conds: list[Cond]) -> int: ...

    @abstractmethod
    def _get_meta(self) -> dict[str, Any] | None: ...

    def _check_format(self) -> None:
        """Points without a version window would never be found: refuse an index from before it."""
        if self._get_meta() is None and self._count([]) > 0:
            raise IndexMissingError(
                f"the index at {self.location} was built by an older Sovra (chunks are not versioned)",
                hint="rebuild it with `sovra ingest --rebuild`",
            )

    # -- versions --------------------------------------------------------------------------
    def _current(self) -> int:
        """The committed version (backends may cache it when they are the only writer)."""
        meta = self._get_meta()
        return int((meta or {}).get("gen", 0))

    def _commit(self, gen: int) -> None:
        self._write([(META_ID, [], Sparse([], []), {"sovra_meta": True, "gen": gen})])

    @contextmanager
    def _snapshot(self) -> Iterator[int]:
        gen = self._current()
        with self._readers_lock:
            self._readers[gen] += 1
        try:
            yield gen
        finally:
            with self._readers_lock:
                self._readers[gen] -= 1
                if not self._readers[gen]:
                    del self._readers[gen]

    def _horizon(self, gen: int) -> int:
        """The oldest version a reader may still be searching at."""
        with self._readers_lock:
            oldest = min(self._readers, default=gen)
        return min(oldest, gen - 1 if self.remote_readers else gen)

    def _recover(self, gen: int) -> None:
        """Undo what a write that never reached its switch left behind (all of it invisible)."""
        self._delete([Cond("gen_from", gt=gen)])
        self._set_payload([Cond("gen_to", gt=gen), Cond("gen_to", lte=LIVE - 1)], {"gen_to": LIVE})

    def _vacuum(self, gen: int) -> None:
        self._delete([Cond("gen_to", lte=self._horizon(gen))])

    # -- writes ----------------------------------------------------------------------------
    def upsert(self, points: list[IndexPoint]) -> None:
        if not points:
            return
        gen = self._current()
        self._write([(p.point_id, p.dense, p.sparse, p.payload(gen)) for p in points])

    def replace(self, docs: list[tuple[DocInfo, list[IndexPoint]]]) -> None:
        if not docs:
            return
        with self._write_lock:
            gen = self._current()
            self._recover(gen)
            self._vacuum(gen)
            horizon, nxt = self._horizon(gen), gen + 1
            writes: list[Write] = []
            retire: list[str] = []
            for doc, points in docs:
                existing = {
                    s.id: s.payload
                    for s in self._scroll([doc_cond(doc.doc_id), *visible(gen)], fields=["gen_from", "cite", "acl"])
                }
                acl = sorted(doc.acl)
                if any(p.get("acl") != acl for p in existing.values()):
                    # Permissions follow the source at once, on every version (see the module doc).
                    self._set_payload([doc_cond(doc.doc_id)], {"acl": acl})
                keep: set[str] = set()
                for p in points:
                    pid = p.point_id
                    if pid in keep:
                        continue  # the same chunk twice in one document (possible only without occurrences)
                    keep.add(pid)
                    payload = p.payload(nxt)
                    old = existing.get(pid)
                    if old is not None:
                        cite = _prune(old.get("cite") or {}, horizon)
                        if resolve_cite(old, gen) == p.cite() and all(int(k) <= gen for k in cite):
                            continue  # unchanged and in the same place: nothing to write
                        payload["gen_from"] = old["gen_from"]
                        payload["cite"] = {**{k: v for k, v in cite.items() if int(k) <= gen}, **payload["cite"]}
                    writes.append((pid, p.dense, p.sparse, payload))
                retire += [pid for pid in existing if pid not in keep]
            self._write(writes)
            if retire:
                self._set_payload(retire, {"gen_to": nxt})
            self._commit(nxt)

    def delete_document(self, doc_id: str) -> None:
        with self._write_lock:
            gen = self._current()
            self._recover(gen)
            self._set_payload([doc_cond(doc_id), *visible(gen)], {"gen_to": gen + 1})
            self._commit(gen + 1)

    def set_acl(self, doc_id: str, acl: frozenset[str]) -> None:
        self._set_payload([doc_cond(doc_id)], {"acl": sorted(acl)})

    # -- reads -----------------------------------------------------------------------------
    def stored_vectors(self, doc_ids: list[str]) -> dict[str, tuple[list[float], Sparse]]:
        if not doc_ids:
            return {}
        with self._snapshot() as gen:
            found = self._scroll([doc_cond(*doc_ids), *visible(gen)], with_vectors=True, fields=["embed_key"])
        return {
            s.payload["embed_key"]: (s.dense, s.sparse)
            for s in found
            if s.payload.get("embed_key") and s.dense is not None and s.sparse is not None
        }

    def search(
        self,
        dense: list[float],
        sparse: Sparse,
        flt: SearchFilter,
        limit: int,
        mode: SearchMode = "hybrid",
        with_vectors: bool = False,
    ) -> list[Hit]:
        with self._snapshot() as gen:
            dense_res, sparse_res, final = self._query(dense, sparse, conditions(flt, gen), limit, mode, with_vectors)
        breakdown = fuse_breakdown([(p.id, p.score) for p in dense_res], [(p.id, p.score) for p in sparse_res])
        return [
            Hit.from_payload(
                p.payload or {}, p.score, {**breakdown.get(p.id, {}), mode: round(p.score, 6)}, gen, p.vector
            )
            for p in final
        ]

    def count(self, flt: SearchFilter | None = None) -> int:
        with self._snapshot() as gen:
            return self._count(conditions(flt, gen) if flt else visible(gen))

    def chunks(self, flt: SearchFilter, fields: list[str] | None = None) -> list[Hit]:
        """Every current chunk the filter admits (the ACL term first, as in a search), with no query:
        a cited passage by its document, the documents a user may read. ``fields`` narrows the payload
        read (the ``text`` of a hit is then empty unless listed)."""
        wanted = None if fields is None else sorted({*fields, "chunk_id", "doc_id", "title", "source", "cite"})
        with self._snapshot() as gen:
            found = self._scroll(conditions(flt, gen), fields=wanted)
        hits = [Hit.from_payload({"text": "", **s.payload}, 0.0, {}, gen) for s in found]
        return sorted(hits, key=lambda h: (h.doc_id, h.char_start, h.chunk_id))  # document order
