"""The connector contract SDK users implement, and a small registry so config can name them.

A connector lists every document of its source, each with an access list and a lazy ``load``.
Rules of the contract:
- ``documents()`` is the full listing; ingest derives deletions from what is no longer listed,
  so a listing that cannot be produced must raise (never return a partial or empty one).
- A problem with one item (corrupt file, bad metadata) must not stop the listing: the item is
  still yielded and its ``load()`` raises ``ParseError``.
- When the access list of an item cannot be determined, the item gets an empty ACL (nobody
  may read it); never make a document public by default.

Incremental sync (optional). A connector whose source can say what changed (a delta token, a
high-water mark) also implements ``sync(cursor: str | None) -> Iterator[Change]`` (the
``DeltaConnector`` protocol in ``sovra.documents``); ingest then calls it instead of
``documents()``. It yields, in order:
- ``Document`` for an item added or changed (content or ACL: an ACL-only change is applied to the
  index without re-embedding), ``Deletion(id)`` for an item removed or no longer visible;
- ``Checkpoint(cursor)`` wherever the source could resume; at least one, last, with the cursor of
  the next sync. Ingest stores it after every change yielded before it is in the index, so a sync
  killed half-way resumes from the last stored checkpoint: re-seen items are skipped by version,
  nothing is duplicated or lost. An item whose ``load()`` raises ``SourceError`` (network,
  throttling: may pass) holds the cursor back so the next run sees it again; a ``ParseError``
  (the item itself is bad) does not;
- ``FullListing()`` before a complete enumeration (``cursor`` None, or the source said the cursor
  expired): documents of the source not yielded by the end of the sync are then deleted.
A sync that cannot go on raises ``SovraError``: what was applied stays, the cursor stays put.

Example::

    def sync(self, cursor: str | None) -> Iterator[Change]:
        since = int(cursor or 0)
        if cursor is None:
            yield FullListing()
        for row in self.rows_changed_after(since):
            yield Deletion(row.id) if row.deleted else self.document(row)
        yield Checkpoint(str(self.high_water_mark()))
"""

from __future__ import annotations

import importlib
import json
import logging
from collections.abc import Callable, Mapping
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
    "sharepoint_graph": "sovra.connectors.sharepoint_graph:SharePointGraphConnector",
    "s3": "sovra.connectors.s3:S3Connector",
}
_REGISTRY: dict[str, ConnectorFactory] = {}
_CONFIGURED: dict[str, str] = {}  # the settings' [connectors] table: kind -> "module:attribute"


def register(kind: str, factory: ConnectorFactory) -> None:
    """Make ``create(kind, **options)`` call ``factory(**options)``. Re-registering a kind
    replaces it (useful in tests and for overriding a built-in)."""
    if not kind or not kind.strip():
        raise ConfigError("a connector kind must be a non-empty name")
    _REGISTRY[kind] = factory


def configure(kinds: Mapping[str, str]) -> None:
    """Publish the kinds of the settings' ``[connectors]`` table (``KIND = "module:attribute"``, a
    connector class or factory). Kinds are unique: one taken by a built-in or by a package's
    ``sovra.connectors`` entry point is an error naming both."""
    published = {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}
    for kind, target in kinds.items():
        taken = _BUILTINS.get(kind) or published.get(kind)
        if taken is not None and taken != target:
            owner = "built-in connector" if kind in _BUILTINS else f"{ENTRY_POINT_GROUP} entry point"
            raise ConfigError(
                f"connector kind {kind!r} of the [connectors] setting ({target}) is taken by the {owner} ({taken})",
                hint="connector kinds are unique: rename one",
            )
        if ":" not in target:
            raise ConfigError(
                f"connector kind {kind!r} of the [connectors] setting: {target!r} is not 'module:attribute'"
            )
        if _CONFIGURED.get(kind) != target:
            _REGISTRY.pop(kind, None)
            _CONFIGURED[kind] = target


def registered_kinds() -> list[str]:
    return sorted({*_BUILTINS, *_REGISTRY, *_CONFIGURED, *(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))})


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
    target = _BUILTINS.get(kind) or _CONFIGURED.get(kind)
    if target is None:
        found = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == kind]
        if not found:
            raise ConfigError(
                f"unknown connector kind {kind!r}",
                hint="known kinds: "
                + ", ".join(registered_kinds())
                + f"; publish one under the {ENTRY_POINT_GROUP!r} entry point or in the [connectors] table",
            )
        target = found[0].value
    module_name, _, attr = target.partition(":")
    try:
        factory: ConnectorFactory = getattr(importlib.import_module(module_name), attr)
    except Exception as exc:  # whatever a plugin's import raises, the user reads one line naming it
        raise ConfigError(
            f"connector kind {kind!r}: cannot load {target} ({type(exc).__name__}: {exc})",
            hint="check the module and attribute",
        ) from exc
    _REGISTRY[kind] = factory
    return factory


SIDECAR_SUFFIX = ".meta.json"
_PRINCIPAL_PREFIXES = ("group:", "user:")


def parse_sidecar(raw: bytes, name: str) -> dict[str, Any]:
    """A ``<file>.meta.json`` sidecar: a JSON object with optional ``title``, ``acl`` (a list of
    principals such as ``group:finance``) and business metadata (counterparty, contract_id,
    effective_date, ...). Raises ``ParseError`` naming the sidecar when it is unusable."""
    hint = f"fix {name}: a JSON object with an 'acl' list such as [\"group:finance\"]"
    try:
        data = json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ParseError(f"sidecar {name} is not valid JSON ({exc})", hint=hint) from exc
    if not isinstance(data, dict):
        raise ParseError(f"sidecar {name} is not a JSON object", hint=hint)
    acl = data.get("acl", [])
    if not isinstance(acl, list) or not all(
        isinstance(p, str) and p.startswith(_PRINCIPAL_PREFIXES) and len(p.split(":", 1)[1]) > 0 for p in acl
    ):
        raise ParseError(
            f"sidecar {name} has an invalid acl {acl!r}",
            hint="principals are strings like 'group:finance' or 'user:bob'",
        )
    return data


def sidecar_acl(sidecar: dict[str, Any] | None, default_acl: frozenset[str] | None, doc_id: str) -> frozenset[str]:
    """Who may read an item: its sidecar's ``acl``, else the connector's ``default_acl``, else nobody
    (logged: an item without an access list must never become readable by default)."""
    if sidecar is not None and "acl" in sidecar:
        return frozenset(sidecar["acl"])
    if default_acl is not None:
        return default_acl
    log.warning("%s has no access list (no %s sidecar and no default_acl): nobody can read it", doc_id, SIDECAR_SUFFIX)
    return frozenset()


def failing_loader(message: str, hint: str | None = None) -> Callable[[], list[Page]]:
    """A ``load`` for an item that was listed but cannot be read: ingest reports the
    ``ParseError`` for this item and carries on with the others."""

    def load() -> list[Page]:
        raise ParseError(message, hint=hint)

    return load
