"""A SharePoint document library exported to disk as a Microsoft Graph-like ``manifest.json``.

Each item's permissions become its access list exactly as the Graph connector reads them (see
``sharepoint_acl``): Entra object ids translated by ``users`` / ``groups``, "Everyone except external
users" -> ``organization_principal``, organization-wide links -> ``organization_link_principal``
(default nothing), anonymous links never. SharePoint site groups are expanded from the manifest's
``siteGroups`` (``{"<id>": {"displayName": ..., "members": [identity sets]}}``, what an export
writes from ``/_api/web/sitegroups``) or from ``site_groups``.
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
from sovra.connectors.sharepoint_acl import Principals
from sovra.connectors.sharepoint_acl import map_permissions as _map_permissions
from sovra.documents import Document
from sovra.errors import ConfigError, ParseError
from sovra.identity import PUBLIC

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"


class SharePointExportConnector:
    def __init__(
        self,
        root: Path | str,
        name: str = "sharepoint",
        max_bytes: int = DEFAULT_MAX_BYTES,
        users: dict[str, str] | None = None,
        groups: dict[str, str] | None = None,
        organization_principal: str | None = PUBLIC,
        organization_link_principal: str | None = None,
        site_groups: dict[str, list[Any]] | None = None,
    ) -> None:
        self.root = Path(root)
        self.name = name
        self.max_bytes = max_bytes
        self.principals = Principals(
            users=users or {},
            groups=groups or {},
            organization_principal=organization_principal,
            organization_link_principal=organization_link_principal,
            site_groups=site_groups or {},
        )

    def documents(self) -> Iterator[Document]:
        manifest = self._manifest()
        site = manifest.get("site") or {}
        exported: dict[str, list[Any]] = {}
        for gid, g in (manifest.get("siteGroups") or {}).items():
            if isinstance(g, dict) and isinstance(g.get("members"), list):
                exported[str(gid)] = g["members"]
        principals = self.principals
        if exported:
            principals = Principals(**{**principals.__dict__, "site_groups": {**exported, **principals.site_groups}})
        for item in manifest.get("items") or []:
            if not isinstance(item, dict) or not item.get("id"):
                log.warning("%s: skipping a manifest item without an id", self.name)
                continue
            if "folder" in item and "file" not in item:
                continue
            yield self._document(item, site, principals)

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

    def _document(self, item: dict[str, Any], site: dict[str, Any], principals: Principals) -> Document:
        item_id = str(item["id"])
        doc_id = f"{self.name}:{item_id}"  # the source in the id: two exports never overwrite each other
        name = str(item.get("name") or item_id)
        file_info = item.get("file") or {}
        metadata = {
            "name": name,
            "lastModifiedDateTime": item.get("lastModifiedDateTime"),
            "mimeType": file_info.get("mimeType"),
            "site": site.get("id"),
        }
        acl = _map_permissions(item.get("permissions") or [], doc_id, principals)
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


def map_permissions(permissions: list[Any], doc_id: str = "", principals: Principals | None = None) -> frozenset[str]:
    """Graph ``permission`` objects -> principals (``sharepoint_acl.map_permissions``)."""
    return _map_permissions(permissions, doc_id, principals)
