"""A SharePoint document library exported to disk as a Microsoft Graph-like ``manifest.json``.

Each item's permissions become its access list:
- ``grantedToV2`` / ``grantedToIdentitiesV2`` group -> ``group:<id>``, user -> ``user:<id>``
- a sharing link with scope ``organization`` -> ``group:everyone``
- a sharing link with scope ``anonymous`` is ignored (with a warning): an "anyone with the
  link" share must not make a bank document readable to every user of the assistant.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

from sovra.connectors.base import failing_loader
from sovra.connectors.parsers import DEFAULT_MAX_BYTES, parse_file
from sovra.documents import Document
from sovra.errors import ConfigError, ParseError
from sovra.identity import PUBLIC

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"


class SharePointExportConnector:
    def __init__(self, root: Path | str, name: str = "sharepoint", max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.root = Path(root)
        self.name = name
        self.max_bytes = max_bytes

    def documents(self) -> Iterator[Document]:
        manifest = self._manifest()
        site = manifest.get("site") or {}
        for item in manifest.get("items") or []:
            if not isinstance(item, dict) or not item.get("id"):
                log.warning("%s: skipping a manifest item without an id", self.name)
                continue
            if "folder" in item and "file" not in item:
                continue
            yield self._document(item, site)

    def _manifest(self) -> dict[str, Any]:
        path = self.root / MANIFEST
        if not path.is_file():
            raise ConfigError(
                f"connector {self.name!r}: {path} does not exist",
                hint="point the connector at the folder that holds the export's manifest.json",
            )
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            # The whole listing is unknown: raising (rather than listing nothing) keeps ingest
            # from deleting every document of this source.
            raise ParseError(f"{path} is not valid JSON ({exc})", hint="re-run the export") from exc
        if not isinstance(data, dict) or not isinstance(data.get("items", []), list):
            raise ParseError(f"{path} has no 'items' list", hint="re-run the export")
        return data

    def _document(self, item: dict[str, Any], site: dict[str, Any]) -> Document:
        item_id = str(item["id"])
        doc_id = f"sharepoint:{item_id}"
        name = str(item.get("name") or item_id)
        file_info = item.get("file") or {}
        metadata = {
            "name": name,
            "lastModifiedDateTime": item.get("lastModifiedDateTime"),
            "mimeType": file_info.get("mimeType"),
            "site": site.get("id"),
        }
        acl = map_permissions(item.get("permissions") or [], doc_id)
        if not acl:
            log.warning("%s has no readable permissions: nobody can read it", doc_id)
        return Document(
            id=doc_id,
            title=str(item.get("title") or PurePosixPath(name).stem),
            source=self.name,
            url=str(item.get("webUrl") or ""),
            version=str(item.get("eTag") or item.get("cTag") or item.get("lastModifiedDateTime") or ""),
            acl=acl,
            load=self._loader(file_info.get("path"), doc_id),
            metadata={k: v for k, v in metadata.items() if v is not None},
        )

    def _loader(self, rel_path: object, doc_id: str):  # type: ignore[no-untyped-def]
        if not isinstance(rel_path, str) or not rel_path:
            return failing_loader(f"{doc_id}: the manifest gives no file path")
        root = self.root.resolve()
        path = (root / rel_path).resolve()
        if not path.is_relative_to(root):
            # A manifest must not make us read files outside the export.
            return failing_loader(f"{doc_id}: file path {rel_path!r} points outside the export")
        return functools.partial(parse_file, path, max_bytes=self.max_bytes)


def map_permissions(permissions: list[Any], doc_id: str = "") -> frozenset[str]:
    """Graph ``permission`` objects -> principals. Unknown shapes grant nothing."""
    acl: set[str] = set()
    for perm in permissions:
        if not isinstance(perm, dict):
            continue
        link = perm.get("link")
        if isinstance(link, dict):
            scope = link.get("scope")
            if scope == "organization":
                acl.add(PUBLIC)
            elif scope == "anonymous":
                log.warning("%s: ignoring an anonymous sharing link", doc_id)
            # "users" links are for specific people, listed in grantedToIdentitiesV2 below.
        identities = [perm.get("grantedToV2"), *(perm.get("grantedToIdentitiesV2") or [])]
        for identity in identities:
            if not isinstance(identity, dict):
                continue
            # siteGroup (SharePoint's numbered Owners/Members groups) has no directory
            # counterpart, so it grants nothing here.
            for key, prefix in (("group", "group:"), ("user", "user:")):
                principal = identity.get(key)
                if isinstance(principal, dict) and principal.get("id"):
                    acl.add(f"{prefix}{principal['id']}")
    return frozenset(acl)
