"""The embedded default: qdrant-edge, Qdrant's own engine in-process, on disk."""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

import qdrant_edge as qe

from sovra.errors import IndexMissingError, SovraError
from sovra.index.base import (
    DENSE,
    INTEGER_FIELDS,
    KEYWORD_FIELDS,
    SPARSE,
    CollectionSettings,
    Cond,
    IndexInfo,
    SearchMode,
    Sparse,
)
from sovra.index.versions import META_ID, PREFETCH_FACTOR, Scored, Stored, VersionedIndex, Write

log = logging.getLogger(__name__)

_META = "sovra-index.json"
_REBUILD_HINT = "rebuild it with `sovra ingest --rebuild` (or delete {path} and ingest again)"


def _condition(c: Cond) -> qe.FieldCondition:
    if c.is_range:
        bounds = {k: float(v) for k, v in (("gte", c.gte), ("gt", c.gt), ("lte", c.lte)) if v is not None}
        return qe.FieldCondition(key=c.key, range=qe.RangeFloat(**bounds))
    return qe.FieldCondition(key=c.key, match=qe.MatchAny(any=list(c.values)))


def _filter(conds: list[Cond]) -> qe.Filter:
    return qe.Filter(must=[_condition(c) for c in conds])


def _sparse_of(v: Any) -> Sparse:
    return Sparse(list(v.indices), [float(x) for x in v.values])


def _edge_config(info: IndexInfo, tuning: CollectionSettings) -> qe.EdgeConfig:
    quant = (
        qe.ScalarQuantizationConfig(type=qe.ScalarType.Int8, quantile=0.99, always_ram=True)
        if tuning.scalar_quantization
        else None
    )
    hnsw = None
    if tuning.hnsw_m is not None or tuning.hnsw_ef_construct is not None:
        # qdrant-edge wants every field; 16/100/10000 are Qdrant's own defaults.
        hnsw = qe.HnswIndexConfig(
            m=tuning.hnsw_m if tuning.hnsw_m is not None else 16,
            ef_construct=tuning.hnsw_ef_construct or 100,
            full_scan_threshold=10000,
        )
    return qe.EdgeConfig(
        vectors={
            DENSE: qe.EdgeVectorParams(
                size=info.dim, distance=qe.Distance.Cosine, on_disk=tuning.on_disk_vectors or None
            )
        },
        sparse_vectors={SPARSE: qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf)},
        on_disk_payload=tuning.on_disk_payload,
        hnsw_config=hnsw,
        quantization_config=quant,
    )


class IndexInUseError(SovraError):
    """Another process (or another handle in this one) holds the shard's lock."""


def _in_use(path: Path) -> IndexInUseError:
    return IndexInUseError(
        f"the embedded index at {path} is in use by another Sovra process",
        hint="wait for it to finish (the embedded engine allows one process at a time), "
        "or run a Qdrant server and set SOVRA_QDRANT_URL for concurrent use",
    )


class EdgeIndex(VersionedIndex):
    """An ``Index`` stored in a folder, one shard per collection.

    Updates go through the shard's write-ahead log, which makes them durable when ``update``
    returns; segments are flushed on ``close``. Versioned writes: see :mod:`sovra.index.versions`.
    """

    def __init__(self, root: Path, collection: str, tuning: CollectionSettings | None = None) -> None:
        super().__init__()
        self.path = root / collection
        self.location = f"embedded:{self.path}"
        self.tuning = tuning or CollectionSettings()
        self._shard: qe.EdgeShard | None = None
        self._lock_fd: int | None = None

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
            self._check_format()
            return
        self.lock()
        if self.path.exists():
            # A crash before the meta file was written leaves a partial shard: start it over.
            shutil.rmtree(self.path)
        self.path.mkdir(parents=True)
        self._shard = qe.EdgeShard.create(str(self.path), _edge_config(info, self.tuning))
        for name in KEYWORD_FIELDS:
            self._shard.update(qe.UpdateOperation.create_field_index(name, qe.PayloadSchemaType.Keyword))
        for name in INTEGER_FIELDS:
            self._shard.update(qe.UpdateOperation.create_field_index(name, qe.PayloadSchemaType.Integer))
        self._commit(0)
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
        self._check_format()

    def _open(self) -> qe.EdgeShard:
        if self._shard is None:
            if not self.path.exists():
                raise IndexMissingError(
                    f"no index at {self.path}", hint="run `sovra ingest PATH` or `sovra demo` first"
                )
            self.lock()
            try:
                self._shard = qe.EdgeShard.load(str(self.path))
            except Exception as exc:  # qdrant-edge raises a bare Exception with the cause in text
                self.unlock()
                if "WouldBlock" in str(exc):
                    raise _in_use(self.path) from exc
                raise SovraError(f"cannot open the embedded index at {self.path}: {exc}") from exc
        return self._shard

    def lock(self) -> None:
        """Hold ``.<collection>.lock`` beside the shard until ``close``/``unlock`` (taken before the
        shard is created or loaded). qdrant-edge has a lock of its own, but a load that fails on it
        has already touched the holder's files (a sparse-vector journal the holder then cannot
        flush): the second handle must not get that far."""
        if self._lock_fd is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path.parent / f".{self.path.name}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise _in_use(self.path) from None
        self._lock_fd = fd

    def unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing the descriptor drops the flock
            self._lock_fd = None

    def optimize(self) -> None:
        # Without this, fresh segments are searched unindexed: at 100k chunks p95 of a broad
        # hybrid query measured 73 ms before and 5 ms after (evals/bench_retrieval.py).
        self._open().optimize()

    def close(self) -> None:
        try:
            if self._shard is not None:
                self._shard.flush()
                self._shard.close()
                self._shard = None
        finally:
            if self._shard is None:
                self.unlock()

    # -- primitives (see VersionedIndex) ---------------------------------------------------
    def _write(self, points: list[Write]) -> None:
        if not points:
            return
        self._open().update(
            qe.UpdateOperation.upsert_points(
                [
                    qe.Point(
                        id=pid,
                        vector={DENSE: dense, SPARSE: qe.SparseVector(sparse.indices, sparse.values)} if dense else {},
                        payload=payload,
                    )
                    for pid, dense, sparse, payload in points
                ]
            )
        )

    def _scroll(self, conds: list[Cond], with_vectors: bool = False, fields: list[str] | None = None) -> list[Stored]:
        shard = self._open()
        found: list[Stored] = []
        offset = None
        while True:
            records, offset = shard.scroll(
                qe.ScrollRequest(
                    filter=_filter(conds),
                    limit=256,
                    offset=offset,
                    with_payload=fields if fields is not None else True,
                    with_vector=with_vectors,
                )
            )
            for r in records:
                vec: Any = r.vector or {}
                sparse = vec.get(SPARSE)
                found.append(Stored(str(r.id), r.payload or {}, vec.get(DENSE), _sparse_of(sparse) if sparse else None))
            if offset is None:
                return found

    def _set_payload(self, ids: list[str] | list[Cond], payload: dict[str, Any]) -> None:
        if not ids:
            return
        if isinstance(ids[0], Cond):
            op = qe.UpdateOperation.set_payload_by_filter(_filter(ids), payload)  # type: ignore[arg-type]
        else:
            op = qe.UpdateOperation.set_payload(list(ids), payload)  # type: ignore[arg-type]
        self._open().update(op)

    def _delete(self, conds: list[Cond]) -> None:
        self._open().update(qe.UpdateOperation.delete_points_by_filter(_filter(conds)))

    def _get_meta(self) -> dict[str, Any] | None:
        records = self._open().retrieve([META_ID], True, False)
        return (records[0].payload or {}) if records else None

    def _query(
        self, dense: list[float], sparse: Sparse, conds: list[Cond], limit: int, mode: SearchMode, with_vectors: bool
    ) -> tuple[list[Scored], list[Scored], list[Scored]]:
        shard = self._open()
        qfilter = _filter(conds)
        wide = limit * PREFETCH_FACTOR
        dense_q = qe.Query.Nearest(dense, using=DENSE)
        sparse_q = qe.Query.Nearest(qe.SparseVector(sparse.indices, sparse.values), using=SPARSE)
        vectors = [DENSE] if with_vectors else False
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
                with_vector=vectors,
            )
        else:
            final = qe.QueryRequest(
                limit=limit,
                query=dense_q if mode == "dense" else sparse_q,
                filter=qfilter,
                with_payload=True,
                with_vector=vectors,
            )

        def scored(points: list[Any]) -> list[Scored]:
            return [
                Scored(str(p.id), p.score, p.payload, (p.vector or {}).get(DENSE) if with_vectors else None)  # type: ignore[union-attr]
                for p in points
            ]

        if mode != "hybrid":  # one leg: its own ranking is the breakdown
            (final_res,) = shard.query_batch(qe.QueryBatchRequest([final]))
            one = scored(final_res)
            return (one, [], one) if mode == "dense" else ([], one, one)
        # Hybrid: each leg on its own too, for the hits' score breakdown.
        legs = [
            qe.QueryRequest(limit=wide, query=dense_q, filter=qfilter, with_payload=False),
            qe.QueryRequest(limit=wide, query=sparse_q, filter=qfilter, with_payload=False),
        ]
        dense_res, sparse_res, final_res = shard.query_batch(qe.QueryBatchRequest([*legs, final]))
        return scored(dense_res), scored(sparse_res), scored(final_res)

    def _count(self, conds: list[Cond]) -> int:
        return self._open().count(qe.CountRequest(filter=_filter(conds), exact=True))
