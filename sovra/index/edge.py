"""The embedded default: qdrant-edge, Qdrant's own engine in-process, on disk."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

import qdrant_edge as qe

from sovra.errors import IndexMissingError, SovraError
from sovra.index.base import (
    DENSE,
    KEYWORD_FIELDS,
    SPARSE,
    Hit,
    IndexInfo,
    IndexPoint,
    SearchFilter,
    SearchMode,
    Sparse,
    filter_terms,
    fuse_breakdown,
    point_id,
)

log = logging.getLogger(__name__)

_META = "sovra-index.json"
_PREFETCH_FACTOR = 4
_REBUILD_HINT = "rebuild it with `sovra ingest --rebuild` (or delete {path} and ingest again)"


def _filter(flt: SearchFilter) -> qe.Filter:
    return qe.Filter(must=[qe.FieldCondition(key=k, match=qe.MatchAny(any=v)) for k, v in filter_terms(flt)])


def _doc_filter(doc_id: str) -> qe.Filter:
    return qe.Filter(must=[qe.FieldCondition(key="doc_id", match=qe.MatchValue(value=doc_id))])


class EdgeIndex:
    """An ``Index`` stored in a folder, one shard per collection.

    Updates go through the shard's write-ahead log, which makes them durable when ``update``
    returns; segments are flushed on ``close``.
    """

    def __init__(self, root: Path, collection: str) -> None:
        self.path = root / collection
        self.location = f"embedded:{self.path}"
        self._shard: qe.EdgeShard | None = None

    # -- lifecycle -------------------------------------------------------------------------
    def _meta(self) -> IndexInfo | None:
        try:
            raw = json.loads((self.path / _META).read_text())
        except FileNotFoundError:
            return None
        return IndexInfo(model_id=raw["model_id"], dim=int(raw["dim"]))

    def _check_meta(self, info: IndexInfo, meta: IndexInfo) -> None:
        if meta != info:
            raise IndexMissingError(
                f"the index at {self.path} was built with embedding model {meta.model_id} "
                f"({meta.dim} dims) but Sovra is configured with {info.model_id} ({info.dim} dims)",
                hint=_REBUILD_HINT.format(path=self.path),
            )

    def ensure(self, info: IndexInfo) -> None:
        meta = self._meta()
        if meta is not None:
            self._check_meta(info, meta)
            self._open()
            return
        config = qe.EdgeConfig(
            vectors={DENSE: qe.EdgeVectorParams(size=info.dim, distance=qe.Distance.Cosine)},
            sparse_vectors={SPARSE: qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf)},
        )
        if self.path.exists():
            # A crash before the meta file was written leaves a partial shard: start it over.
            shutil.rmtree(self.path)
        self.path.mkdir(parents=True)
        self._shard = qe.EdgeShard.create(str(self.path), config)
        for name in KEYWORD_FIELDS:
            self._shard.update(qe.UpdateOperation.create_field_index(name, qe.PayloadSchemaType.Keyword))
        self._shard.flush()
        # The meta file is written last: its presence means "a complete, usable index".
        tmp = self.path / (_META + ".tmp")
        tmp.write_text(json.dumps({"model_id": info.model_id, "dim": info.dim}))
        tmp.replace(self.path / _META)

    def check(self, info: IndexInfo) -> None:
        meta = self._meta()
        if meta is None:
            raise IndexMissingError(f"no index at {self.path}", hint="run `sovra ingest PATH` or `sovra demo` first")
        self._check_meta(info, meta)
        self._open()

    def _open(self) -> qe.EdgeShard:
        if self._shard is None:
            try:
                self._shard = qe.EdgeShard.load(str(self.path))
            except Exception as exc:  # qdrant-edge raises a bare Exception with the cause in text
                if "WouldBlock" in str(exc):
                    raise SovraError(
                        f"the embedded index at {self.path} is in use by another Sovra process",
                        hint="wait for it to finish (the embedded engine allows one process at a time), "
                        "or run a Qdrant server and set SOVRA_QDRANT_URL for concurrent use",
                    ) from exc
                raise SovraError(f"cannot open the embedded index at {self.path}: {exc}") from exc
        return self._shard

    def optimize(self) -> None:
        # Without this, fresh segments are searched unindexed: at 100k chunks p95 of a broad
        # hybrid query measured 73 ms before and 5 ms after (evals/bench_retrieval.py).
        self._open().optimize()

    def close(self) -> None:
        if self._shard is not None:
            self._shard.flush()
            self._shard.close()
            self._shard = None

    # -- writes ----------------------------------------------------------------------------
    def upsert(self, points: list[IndexPoint]) -> None:
        if not points:
            return
        shard = self._open()
        shard.update(
            qe.UpdateOperation.upsert_points(
                [
                    qe.Point(
                        id=point_id(p.chunk.id),
                        vector={DENSE: p.dense, SPARSE: qe.SparseVector(p.sparse.indices, p.sparse.values)},
                        payload=p.payload(),
                    )
                    for p in points
                ]
            )
        )

    def _chunk_ids(self, doc_id: str) -> dict[str, Any]:
        shard = self._open()
        found: dict[str, Any] = {}
        offset = None
        while True:
            records, offset = shard.scroll(
                qe.ScrollRequest(filter=_doc_filter(doc_id), limit=256, offset=offset, with_payload=["chunk_id"])
            )
            for r in records:
                found[(r.payload or {})["chunk_id"]] = r.id
            if offset is None:
                return found

    def delete_stale(self, doc_id: str, keep_chunk_ids: set[str]) -> None:
        stale = [pid for cid, pid in self._chunk_ids(doc_id).items() if cid not in keep_chunk_ids]
        if stale:
            shard = self._open()
            shard.update(qe.UpdateOperation.delete_points(stale))

    def delete_document(self, doc_id: str) -> None:
        shard = self._open()
        shard.update(qe.UpdateOperation.delete_points_by_filter(_doc_filter(doc_id)))

    def set_acl(self, doc_id: str, acl: frozenset[str]) -> None:
        shard = self._open()
        shard.update(qe.UpdateOperation.set_payload_by_filter(_doc_filter(doc_id), {"acl": sorted(acl)}))

    # -- reads -----------------------------------------------------------------------------
    def search(
        self,
        dense: list[float],
        sparse: Sparse,
        flt: SearchFilter,
        limit: int,
        mode: SearchMode = "hybrid",
    ) -> list[Hit]:
        shard = self._open()
        qfilter = _filter(flt)
        wide = limit * _PREFETCH_FACTOR
        dense_q = qe.Query.Nearest(dense, using=DENSE)
        sparse_q = qe.Query.Nearest(qe.SparseVector(sparse.indices, sparse.values), using=SPARSE)
        legs = [
            qe.QueryRequest(limit=wide, query=dense_q, filter=qfilter, with_payload=False),
            qe.QueryRequest(limit=wide, query=sparse_q, filter=qfilter, with_payload=False),
        ]
        if mode == "hybrid":
            final = qe.QueryRequest(
                limit=limit,
                query=qe.Fusion.Rrf(k=60),  # type: ignore[arg-type]  # the stub types Rrf apart from Fusion
                prefetches=[
                    qe.Prefetch(limit=wide, query=dense_q, filter=qfilter),
                    qe.Prefetch(limit=wide, query=sparse_q, filter=qfilter),
                ],
                filter=qfilter,
                with_payload=True,
            )
        else:
            final = qe.QueryRequest(
                limit=limit, query=dense_q if mode == "dense" else sparse_q, filter=qfilter, with_payload=True
            )
        dense_res, sparse_res, final_res = shard.query_batch(qe.QueryBatchRequest([*legs, final]))
        breakdown = fuse_breakdown(
            [(str(p.id), p.score) for p in dense_res], [(str(p.id), p.score) for p in sparse_res]
        )
        return [
            Hit.from_payload(p.payload or {}, p.score, {**breakdown.get(str(p.id), {}), mode: round(p.score, 6)})
            for p in final_res
        ]

    def count(self, flt: SearchFilter | None = None) -> int:
        shard = self._open()
        return shard.count(qe.CountRequest(filter=_filter(flt) if flt else None, exact=True))
