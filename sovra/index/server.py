"""A Qdrant server (or cluster) through qdrant-client: the production backend.

The same class also drives qdrant-client's local mode (``location=":memory:"`` or a path), which
the tests use to run the shared index suite against this code path without a server binary.
"""

from __future__ import annotations

import logging
from typing import Any

from qdrant_client import QdrantClient
from qdrant_client import models as qm
from qdrant_client.http.exceptions import UnexpectedResponse

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

_PREFETCH_FACTOR = 4
# Collection-level metadata lives in the collection itself, so every client sees the same.
_META_KEY = "sovra"


def _filter(flt: SearchFilter) -> qm.Filter:
    return qm.Filter(must=[qm.FieldCondition(key=k, match=qm.MatchAny(any=v)) for k, v in filter_terms(flt)])


def _doc_filter(doc_id: str) -> qm.Filter:
    return qm.Filter(must=[qm.FieldCondition(key="doc_id", match=qm.MatchValue(value=doc_id))])


class ServerIndex:
    def __init__(self, client: QdrantClient, collection: str, location: str) -> None:
        self._client = client
        self.collection = collection
        self.location = location

    @classmethod
    def connect(cls, url: str, collection: str, api_key: str | None = None) -> ServerIndex:
        return cls(QdrantClient(url=url, api_key=api_key, timeout=30), collection, url)

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except UnexpectedResponse as exc:
            raise SovraError(f"Qdrant at {self.location} answered {exc.status_code}: {exc.reason_phrase}") from exc
        except (ConnectionError, OSError) as exc:
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
            return
        kwargs: dict[str, Any] = {}
        if "metadata" in qm.CreateCollection.model_fields:
            kwargs["metadata"] = {_META_KEY: {"model_id": info.model_id, "dim": info.dim}}
        self._call(
            self._client.create_collection,
            self.collection,
            vectors_config={DENSE: qm.VectorParams(size=info.dim, distance=qm.Distance.COSINE)},
            sparse_vectors_config={SPARSE: qm.SparseVectorParams(modifier=qm.Modifier.IDF)},
            **kwargs,
        )
        for name in KEYWORD_FIELDS:
            self._call(
                self._client.create_payload_index,
                self.collection,
                field_name=name,
                field_schema=qm.PayloadSchemaType.KEYWORD,
            )

    def check(self, info: IndexInfo) -> None:
        meta = self._meta()
        if meta is None:
            raise IndexMissingError(
                f"no collection {self.collection!r} at {self.location}",
                hint="run `sovra ingest PATH` first",
            )
        self._check_meta(info, meta)

    def optimize(self) -> None:
        """Qdrant's server runs its optimizers in the background."""

    def close(self) -> None:
        self._client.close()

    def upsert(self, points: list[IndexPoint]) -> None:
        if not points:
            return
        self._call(
            self._client.upsert,
            self.collection,
            points=[
                qm.PointStruct(
                    id=point_id(p.chunk.id),
                    vector={
                        DENSE: p.dense,
                        SPARSE: qm.SparseVector(indices=p.sparse.indices, values=p.sparse.values),
                    },
                    payload=p.payload(),
                )
                for p in points
            ],
            wait=True,
        )

    def delete_stale(self, doc_id: str, keep_chunk_ids: set[str]) -> None:
        stale: list[Any] = []
        offset = None
        while True:
            records, offset = self._call(
                self._client.scroll,
                self.collection,
                scroll_filter=_doc_filter(doc_id),
                limit=256,
                offset=offset,
                with_payload=["chunk_id"],
            )
            stale.extend(r.id for r in records if (r.payload or {}).get("chunk_id") not in keep_chunk_ids)
            if offset is None:
                break
        if stale:
            self._call(self._client.delete, self.collection, points_selector=qm.PointIdsList(points=stale), wait=True)

    def delete_document(self, doc_id: str) -> None:
        self._call(
            self._client.delete,
            self.collection,
            points_selector=qm.FilterSelector(filter=_doc_filter(doc_id)),
            wait=True,
        )

    def set_acl(self, doc_id: str, acl: frozenset[str]) -> None:
        self._call(
            self._client.set_payload,
            self.collection,
            payload={"acl": sorted(acl)},
            points=_doc_filter(doc_id),
            wait=True,
        )

    def search(
        self,
        dense: list[float],
        sparse: Sparse,
        flt: SearchFilter,
        limit: int,
        mode: SearchMode = "hybrid",
    ) -> list[Hit]:
        qfilter = _filter(flt)
        wide = limit * _PREFETCH_FACTOR
        sparse_vec = qm.SparseVector(indices=sparse.indices, values=sparse.values)
        legs = [
            qm.QueryRequest(query=dense, using=DENSE, limit=wide, filter=qfilter, with_payload=False),
            qm.QueryRequest(query=sparse_vec, using=SPARSE, limit=wide, filter=qfilter, with_payload=False),
        ]
        if mode == "hybrid":
            final = qm.QueryRequest(
                prefetch=[
                    qm.Prefetch(query=dense, using=DENSE, limit=wide, filter=qfilter),
                    qm.Prefetch(query=sparse_vec, using=SPARSE, limit=wide, filter=qfilter),
                ],
                query=qm.FusionQuery(fusion=qm.Fusion.RRF),
                filter=qfilter,
                limit=limit,
                with_payload=True,
            )
        elif mode == "dense":
            final = qm.QueryRequest(query=dense, using=DENSE, limit=limit, filter=qfilter, with_payload=True)
        else:
            final = qm.QueryRequest(query=sparse_vec, using=SPARSE, limit=limit, filter=qfilter, with_payload=True)
        dense_res, sparse_res, final_res = self._call(
            self._client.query_batch_points, self.collection, requests=[*legs, final]
        )
        breakdown = fuse_breakdown(
            [(str(p.id), p.score) for p in dense_res.points], [(str(p.id), p.score) for p in sparse_res.points]
        )
        return [
            Hit.from_payload(p.payload or {}, p.score, {**breakdown.get(str(p.id), {}), mode: round(p.score, 6)})
            for p in final_res.points
        ]

    def count(self, flt: SearchFilter | None = None) -> int:
        res = self._call(self._client.count, self.collection, count_filter=_filter(flt) if flt else None, exact=True)
        return int(res.count)
