"""The connector contract SDK users implement, and a small registry so config can name them.

A connector lists every document of its source, each with an access list and a lazy ``load``.
Rules of the contract:
- ``documents()`` is the full listing; ingest derives deletions from what is no longer listed,
  so a listing that cannot be produced must raise (never return a partial or empty one).
- A problem with one item (corrupt file, bad metadata) must not stop the listing: the item is
  still yielded and its ``load()`` raises ``ParseError``.
- When the access list of an item cannot be determined, the item gets an empty ACL (nobody
  may read it); never make a document public by default.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any

from sovra.documents import Connector, Page
from sovra.errors import ConfigError, ParseError

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "sovra.connectors"


ConnectorFactory = Callable[..., Connector]

# Built-ins are named by import path so that using one connector does not import the others.
_BUILTINS: dict[str, str] = {
    "filesystem": "sovra.connectors.filesystem:FilesystemConnector",
    "sharepoint_export": "sovra.connectors.sharepoint_export:SharePointExportConnector",
    "ledger": "sovra.connectors.ledger:LedgerConnector",
}
_REGISTRY: dict[str, ConnectorFactory] = {}


def register(kind: str, factory: ConnectorFactory) -> None:
    """Make ``create(kind, **options)`` call ``factory(**options)``. Re-registering a kind
    replaces it (useful in tests and for overriding a built-in)."""
    if not kind or not kind.strip():
        raise ConfigError("a connector kind must be a non-empty name")
    _REGISTRY[kind] = factory


def registered_kinds() -> list[str]:
    return sorted({*_BUILTINS, *_REGISTRY, *(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))})


def create(kind: str, **options: Any) -> Connector:
    """Build the connector registered as ``kind`` (registered here, built in, or published
    by a package under the ``sovra.connectors`` entry point group)."""
    factory = _resolve(kind)
    try:
        connector = factory(**options)
    except TypeError as exc:
        raise ConfigError(
            f"connector {kind!r} does not accept these options: {exc}",
            hint=f"given options: {', '.join(sorted(options)) or 'none'}",
        ) from exc
    if not isinstance(connector, Connector):
        raise ConfigError(f"connector {kind!r} does not implement documents() and name")
    return connector


def _resolve(kind: str) -> ConnectorFactory:
    if kind in _REGISTRY:
        return _REGISTRY[kind]
    target = _BUILTINS.get(kind)
    if target is None:
        found = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == kind]
        if not found:
            raise ConfigError(
                f"unknown connector kind {kind!r}",
                hint="known kinds: " + ", ".join(registered_kinds()),
            )
        factory: ConnectorFactory = found[0].load()
    else:
        module_name, _, attr = target.partition(":")
        factory = getattr(importlib.import_module(module_name), attr)
    _REGISTRY[kind] = factory
    return factory


def failing_loader(message: str, hint: str | None = None) -> Callable[[], list[Page]]:
    """A ``load`` for an item that was listed but cannot be read: ingest reports the
    ``ParseError`` for this item and carries on with the others."""

    def load() -> list[Page]:
        raise ParseError(message, hint=hint)

    return load
