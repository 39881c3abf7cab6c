"""Qdrant access behind one small interface: embedded qdrant-edge by default, a server by URL."""

from __future__ import annotations

from sovra.config import Settings
from sovra.index.base import (
    CollectionSettings,
    DocInfo,
    Hit,
    Index,
    IndexInfo,
    IndexPoint,
    SearchFilter,
    SearchMode,
    Sparse,
    embed_key,
)


def open_index(settings: Settings) -> Index:
    tuning = CollectionSettings.from_settings(settings)
    if settings.qdrant_url:
        from sovra.index.server import ServerIndex, ServerLayout

        layout = ServerLayout.from_settings(settings)
        return ServerIndex.connect(settings.qdrant_url, settings.collection, settings.qdrant_api_key, layout, tuning)
    from sovra.index.shared import SharedEdgeIndex

    # The first process to open the shard serves it to the others on the same data dir.
    return SharedEdgeIndex(
        settings.paths.qdrant, settings.collection, tuning, call_timeout_s=settings.index_host_timeout_s
    )


__all__ = [
    "CollectionSettings",
    "DocInfo",
    "Hit",
    "Index",
    "IndexInfo",
    "IndexPoint",
    "SearchFilter",
    "SearchMode",
    "Sparse",
    "embed_key",
    "open_index",
]
