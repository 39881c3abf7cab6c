"""Qdrant access behind one small interface: embedded qdrant-edge by default, a server by URL."""

from __future__ import annotations

from sovra.config import Settings
from sovra.index.base import DocInfo, Hit, Index, IndexInfo, IndexPoint, SearchFilter, SearchMode, Sparse


def open_index(settings: Settings) -> Index:
    if settings.qdrant_url:
        from sovra.index.server import ServerIndex

        return ServerIndex.connect(settings.qdrant_url, settings.collection, settings.qdrant_api_key)
    from sovra.index.edge import EdgeIndex

    return EdgeIndex(settings.paths.qdrant, settings.collection)


__all__ = [
    "DocInfo",
    "Hit",
    "Index",
    "IndexInfo",
    "IndexPoint",
    "SearchFilter",
    "SearchMode",
    "Sparse",
    "open_index",
]
