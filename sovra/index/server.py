"""A Qdrant server (or cluster) through qdrant-client: the production backend.

The same class also drives qdrant-client's local mode (``location=":memory:"`` or a path), which
the tests use to run the shared index suite against this code path without a server binary.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from dataclasses import dataclass
from typing import Any

from qdrant_client import QdrantClient
from qdrant_client import models as qm
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from sovra.errors import IndexMissingError, SovraError, redact_url
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

# Collection-level metadata lives in the collection itself, so every client sees the same.
_META_KEY = "sovra"


def _condition(c: Cond) -> qm.FieldCondition:
    if c.is_range:
        return qm.FieldCondition(key=c.key, range=qm.Range(gte=c.gte, gt=c.gt, lte=c.lte))
    return qm.FieldCondition(key=c.key, match=qm.MatchAny(any=list(c.values)))


def _filter(conds: list[Cond]) -> qm.Filter:
    return qm.Filter(must=[_condition(c) for c in conds])


def _sparse_of(v: Any) -> Sparse:
    return Sparse(list(v.indices), [float(x) for x in v.values])


@dataclass(frozen=True)
class ServerLayout:
    """How a new collection is spread over a Qdrant cluster (``SOVRA_QDRANT_*`` settings).

    ``None`` leaves a value to the server's default. Applied only when Sovra creates the collection.
    Vector storage (on disk, scalar quantization) is in :class:`CollectionSettings`, shared with the
    embedded engine.
    """

    shard_number: int | None = None
    replication_factor: int | None = None
    write_consistency_factor: int | None = None

    @classmethod
    def from_settings(cls, settings: Any) -> ServerLayout:
        return cls(
            shard_number=settings.qdrant_shard_number,
            replication_factor=settings.qdrant_replication_factor,
            write_consistency_factor=settings.qdrant_write_consistency_factor,
        )

    def collection_kwargs(self, tuning: CollectionSettings) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            k: v
            for k, v in (
                ("shard_number", self.shard_number),
                ("replication_factor", self.replication_factor),
                ("write_consistency_factor", self.write_consistency_factor),
            )
            if v is not None
        }
        if tuning.scalar_quantization:
            # always_ram: the int8 copy is what HNSW walks; originals (maybe on disk) rescore the top.
            kwargs["quantization_config"] = qm.ScalarQuantization(
                scalar=qm.ScalarQuantizationConfig(type=qm.ScalarType.INT8, quantile=0.99, always_ram=True)
            )
        return kwargs


class ServerIndex(VersionedIndex):
    """Versioned writes: see :mod:`sovra.index.versions`."""

    remote_readers = True  # other processes may search the same collection

    def __init__(
        self,
        client: QdrantClient,
        collection: str,
        location: str,
        layout: ServerLayout | None = None,
        tuning: CollectionSettings | None = None,
    ) -> None:
        super().__init__()
        self.tuning = tuning or CollectionSettings()
        self._client = client
        # qdrant-client's local mode (tests) is not thread-safe; a server serves calls concurrently.
        local = type(getattr(client, "_client", None)).__name__ == "QdrantLocal"
        self._serial: Any = threading.Lock() if local else contextlib.nullcontext()
        self.collection = collection
        self.location = location
        self.layout = layout or ServerLayout()

    @classmethod
    def connect(
        cls,
        url: str,
        collection: str,
        api_key: str | None = None,
        layout: ServerLayout | None = None,
        tuning: CollectionSettings | None = None,
    ) -> ServerIndex:
        client = QdrantClient(url=url, api_key=api_key, timeout=30)
        return cls(client, collection, redact_url(url), layout, tuning)

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            with self._serial:
                return fn(*args, **kwargs)
        except UnexpectedResponse as exc:
            raise SovraError(f"Qdrant at {self.location} answered {exc.status_code}: {exc.reason_phrase}") from exc
        except (ConnectionError, OSError, ResponseHandlingException) as exc:
            # qdrant-client wraps transport errors (refused, reset, timeout) in ResponseHandlingException.
            raise SovraError(
                f"Qdrant at {self.location} is unreachable: {exc}",
                hint="check SOVRA_QDRANT_URL and that the server is running",
            ) from exc

    def _meta(self) -> IndexInfo | None:
        if not self._call(self._client.collection_exists, self.collection):
            return None
        info = self._call(self._client.get_collection, self.collection)
        meta = (info.config.metadata or {}).get(_META_KEY) if hasattr(info.config, "metadata") else None
        vectors = info.config.params.vectors
        dim = vectors[DENSE].size if isinstance(vectors, dict) else vectors.size  # type: ignore[union-attr]
        return IndexInfo(model_id=(meta or {}).get("model_id", "unknown"), dim=int(dim))

    def _check_meta(self, info: IndexInfo, meta: IndexInfo) -> None:
        if meta.dim != info.dim or meta.model_id not in (info.model_id, "unknown"):
            raise IndexMissingError(
                f"collection {self.collection!r} at {self.location} was built with embedding model "
                f"{meta.model_id} ({meta.dim} dims) but Sovra is configured with {info.model_id} ({info.dim} dims)",
                hint="rebuild it with `sovra ingest --rebuild`",
            )

    def ensure(self, info: IndexInfo) -> None:
        meta = self._meta()
        if meta is not None:
            self._check_meta(info, meta)
            self._check_format()
            return
        kwargs: dict[str, Any] = {}
        if "metadata" in qm.CreateCollection.model_fields:
            kwargs["metadata"] = {_META_KEY: {"model_id": info.model_id, "dim": info.dim}}
        t = self.tuning
        if t.hnsw_m is not None or t.hnsw_ef_construct is not None:
            kwargs["hnsw_config"] = qm.HnswConfigDiff(m=t.hnsw_m, ef_construct=t.hnsw_ef_construct)
        if t.on_disk_payload is not None:
            kwargs["on_disk_payload"] = t.on_disk_payload
        self._call(
            self._client.create_collection,
            self.collection,
            vectors_config={
                DENSE: qm.VectorParams(
                    size=info.dim, distance=qm.Distance.COSINE, on_disk=self.tuning.on_disk_vectors or None
                )
            },
            sparse_vectors_config={SPARSE: qm.SparseVectorParams(modifier=qm.Modifier.IDF)},
            **self.layout.collection_kwargs(self.tuning),
            **kwargs,
        )
        for name, schema in (
            *((n, qm.PayloadSchemaType.KEYWORD) for n in KEYWORD_FIELDS),
            *((n, qm.PayloadSchemaType.INTEGER) for n in INTEGER_FIELDS),
        ):
            self._call(self._client.create_payload_index, self.collection, field_name=name, field_schema=schema)
        self._commit(0)

    def check(self, info: IndexInfo) -> None:
        meta = self._meta()
        if meta is None:
            raise IndexMissingError(
                f"no collection {self.collection!r} at {self.location}",
                hint="run `sovra ingest PATH` first",
            )
        self._check_meta(info, meta)
        self._check_format()

    def optimize(self) -> None:
        """Qdrant's server runs its optimizers in the background."""

    def close(self) -> None:
        self._client.close()

    # -- primitives (see VersionedIndex) ---------------------------------------------------
    def _write(self, points: list[Write]) -> None:
        if not points:
            return
        self._call(
            self._client.upsert,
            self.collection,
            points=[
                qm.PointStruct(
                    id=pid,
                    vector={DENSE: dense, SPARSE: qm.SparseVector(indices=sparse.indices, values=sparse.values)}
                    if dense
                    else {},
                    payload=payload,
                )
                for pid, dense, sparse, payload in points
            ],
            wait=True,
        )

    def _scroll(self, conds: list[Cond], with_vectors: bool = False, fields: list[str] | None = None) -> list[Stored]:
        found: list[Stored] = []
        offset = None
        while True:
            records, offset = self._call(
                self._client.scroll,
                self.collection,
                scroll_filter=_filter(conds),
                limit=256,
                offset=offset,
                with_payload=fields if fields is not None else True,
                with_vectors=with_vectors,
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
        selector: Any = _filter(ids) if isinstance(ids[0], Cond) else list(ids)  # type: ignore[arg-type]
        self._call(self._client.set_payload, self.collection, payload=payload, points=selector, wait=True)

    def _delete(self, conds: list[Cond]) -> None:
        self._call(
            self._client.delete, self.collection, points_selector=qm.FilterSelector(filter=_filter(conds)), wait=True
        )

    def _get_meta(self) -> dict[str, Any] | None:
        records = self._call(self._client.retrieve, self.collection, [META_ID], with_payload=True)
        return (records[0].payload or {}) if records else None

    def _query(
        self, dense: list[float], sparse: Sparse, conds: list[Cond], limit: int, mode: SearchMode, with_vectors: bool
    ) -> tuple[list[Scored], list[Scored], list[Scored]]:
        qfilter = _filter(conds)
        wide = limit * PREFETCH_FACTOR
        sparse_vec = qm.SparseVector(indices=sparse.indices, values=sparse.values)
        vectors: Any = [DENSE] if with_vectors else False
        common: dict[str, Any] = {"limit": limit, "filter": qfilter, "with_payload": True, "with_vector": vectors}
        if mode == "hybrid":
            final = qm.QueryRequest(
                prefetch=[
                    qm.Prefetch(query=dense, using=DENSE, limit=wide, filter=qfilter),
                    qm.Prefetch(query=sparse_vec, using=SPARSE, limit=wide, filter=qfilter),
                ],
                query=qm.FusionQuery(fusion=qm.Fusion.RRF),
                **common,
            )
        elif mode == "dense":
            final = qm.QueryRequest(query=dense, using=DENSE, **common)
        else:
            final = qm.QueryRequest(query=sparse_vec, using=SPARSE, **common)

        def scored(points: list[Any]) -> list[Scored]:
            return [
                Scored(str(p.id), p.score, p.payload, (p.vector or {}).get(DENSE) if with_vectors else None)
                for p in points
            ]

        if mode != "hybrid":  # one leg: its own ranking is the breakdown
            (final_res,) = self._call(self._client.query_batch_points, self.collection, requests=[final])
            one = scored(final_res.points)
            return (one, [], one) if mode == "dense" else ([], one, one)
        # Hybrid: each leg on its own too, for the hits' score breakdown.
        legs = [
            qm.QueryRequest(query=dense, using=DENSE, limit=wide, filter=qfilter, with_payload=False),
            qm.QueryRequest(query=sparse_vec, using=SPARSE, limit=wide, filter=qfilter, with_payload=False),
        ]
        dense_res, sparse_res, final_res = self._call(
            self._client.query_batch_points, self.collection, requests=[*legs, final]
        )
        return scored(dense_res.points), scored(sparse_res.points), scored(final_res.points)

    def _count(self, conds: list[Cond]) -> int:
        res = self._call(self._client.count, self.collection, count_filter=_filter(conds), exact=True)
        return int(res.count)
