"""SharePoint Online document libraries through Microsoft Graph, with delta sync.

Sites -> drives (document libraries) -> driveItems via ``/drives/{id}/root/delta``: the first
sync enumerates everything, later ones only what changed. The cursor holds one Graph link per
drive (an ``@odata.nextLink`` while a pass is under way, then its ``@odata.deltaLink``), so a
killed sync resumes at the page it had reached. Each changed file's permissions are read from
``/items/{id}/permissions`` and mapped to Sovra principals:

the rules of ``sharepoint_acl`` (shared with the export connector): Entra object ids (GUIDs) for
users and groups, translated by ``users`` / ``groups`` (``principal_key="email"`` names users by
email); "Everyone except external users" -> ``organization_principal``; organization-wide links ->
``organization_link_principal`` (default nothing); anonymous links never. SharePoint site groups
are expanded: ``site_groups`` when configured, else for a group-connected site (the library's
``owner.group``) ``<site> Owners`` -> the Microsoft 365 group's owners (``/groups/{id}/owners``) and
``<site> Members`` -> the group and its members (``/groups/{id}/members``); Visitors and anything
unknown grant nothing, so an item whose permissions cannot be mapped is readable by nobody.

Deleted items (``deleted`` facet) become deletions. Permission changes reach the delta feed thanks to
the ``deltashowsharingchanges`` preference; an ACL-only change is applied without re-embedding.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote

from sovra.connectors.graph_http import (
    DEFAULT_AUTHORITY_HOST,
    DEFAULT_GRAPH_URL,
    GraphAuth,
    GraphClient,
    ResyncRequired,
)
from sovra.connectors.parsers import DEFAULT_MAX_BYTES, is_supported, parse_bytes
from sovra.connectors.sharepoint_acl import Principals
from sovra.connectors.sharepoint_acl import map_permissions as _map_permissions
from sovra.documents import Change, Checkpoint, Deletion, Document, FullListing, Page
from sovra.errors import ConfigError, SourceError, SovraError
from sovra.identity import PUBLIC

log = logging.getLogger(__name__)

# Report permission changes and deletions in the delta feed (documented Graph preferences).
DELTA_PREFER = "deltashowremovedasdeleted, deltatraversepermissiongaps, deltashowsharingchanges, hierarchicalsharing"
_CURSOR_VERSION = 1


class SharePointGraphConnector:
    """A ``DeltaConnector`` over one or more SharePoint sites.

    ``sites``: site ids (``contoso.sharepoint.com,<guid>,<guid>``) or paths
    (``contoso.sharepoint.com:/sites/policies``). ``drives``: library names to keep (default all).
    """

    def __init__(
        self,
        tenant_id: str,
        client_id: str,
        sites: list[str] | str,
        name: str = "sharepoint",
        client_secret: str | None = None,
        certificate_path: Path | str | None = None,
        authority_host: str = DEFAULT_AUTHORITY_HOST,
        graph_url: str = DEFAULT_GRAPH_URL,
        drives: list[str] | None = None,
        organization_link_principal: str | None = None,
        principal_key: str = "id",
        users: dict[str, str] | None = None,
        groups: dict[str, str] | None = None,
        organization_principal: str | None = PUBLIC,
        site_groups: dict[str, list[Any]] | None = None,
        timeout_s: float = 30.0,
        max_retries: int = 4,
        max_bytes: int = DEFAULT_MAX_BYTES,
        ca_bundle: str | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self.name = name
        self.sites = [sites] if isinstance(sites, str) else list(sites)
        if not self.sites:
            raise ConfigError(
                f"connector {name!r}: no SharePoint site configured", hint="set sites = ['host:/sites/x']"
            )
        if principal_key not in ("id", "email"):
            raise ConfigError(f"connector {name!r}: principal_key must be 'id' or 'email'")
        self.drive_names = set(drives) if drives else None
        self.organization_link_principal = organization_link_principal
        self.principal_key = principal_key
        self.principals = Principals(
            users=users or {},
            groups=groups or {},
            organization_principal=organization_principal,
            organization_link_principal=organization_link_principal,
            site_groups=site_groups or {},
            principal_key=principal_key,
        )
        self._drive_groups: dict[str, str] = {}  # drive id -> its owner Microsoft 365 group id
        self._group_members: dict[tuple[str, str], list[Any]] = {}
        self.max_bytes = max_bytes
        self._auth_args: dict[str, Any] = {
            "tenant_id": tenant_id,
            "client_id": client_id,
            "client_secret": client_secret,
            "certificate_path": certificate_path,
            "authority_host": authority_host,
            "timeout_s": timeout_s,
            "ca_bundle": ca_bundle,
        }
        self._client_args: dict[str, Any] = {
            "base_url": graph_url,
            "timeout_s": timeout_s,
            "max_retries": max_retries,
            "ca_bundle": ca_bundle,
        }
        if sleep is not None:
            self._client_args["sleep"] = sleep
        self._client: GraphClient | None = None

    @property
    def client(self) -> GraphClient:
        # msal talks to the authority when it is built: do it on first use, not when configuring.
        if self._client is None:
            self._client = GraphClient(GraphAuth(**self._auth_args), **self._client_args)
        return self._client

    # -- the connector contract -------------------------------------------------------------
    def documents(self) -> Iterator[Document]:
        """The full listing (a delta pass from scratch), for callers that want no cursor."""
        for change in self.sync(None):
            if isinstance(change, Document):
                yield change

    def sync(self, cursor: str | None) -> Iterator[Change]:
        links = _parse_cursor(cursor, self.name)
        if links is None:
            yield FullListing()
            links = {}
        try:
            yield from self._sync_drives(links)
        except ResyncRequired as exc:
            log.warning("%s: %s; enumerating every drive again", self.name, exc.message)
            yield FullListing()
            yield from self._sync_drives({})

    def _sync_drives(self, links: dict[str, str]) -> Iterator[Change]:
        drives = self._drives()
        for drive_id, site in drives:
            link = links.get(drive_id) or f"/drives/{quote(drive_id)}/root/delta"
            while True:
                page = self.client.get_json(link, headers={"Prefer": DELTA_PREFER})
                items = page.get("value")
                if not isinstance(items, list):
                    raise SourceError(f"{self.name}: a delta page of drive {drive_id} has no 'value' list")
                for item in items:
                    change = self._change(item, drive_id, site)
                    if change is not None:
                        yield change
                next_link = page.get("@odata.nextLink")
                delta_link = page.get("@odata.deltaLink")
                link = str(next_link or delta_link or "")
                if not link:
                    raise SourceError(
                        f"{self.name}: a delta page of drive {drive_id} has neither nextLink nor deltaLink"
                    )
                links[drive_id] = link
                yield Checkpoint(_dump_cursor(links))
                if not next_link:
                    break

    def _drives(self) -> list[tuple[str, dict[str, Any]]]:
        found: list[tuple[str, dict[str, Any]]] = []
        for site_ref in self.sites:
            site = self.client.get_json(f"/sites/{_site_path(site_ref)}")
            site_id = site.get("id")
            if not site_id:
                raise SourceError(f"{self.name}: Graph returned site {site_ref!r} without an id")
            url: str | None = f"/sites/{quote(str(site_id), safe=',')}/drives"
            while url:
                page = self.client.get_json(url)
                for drive in page.get("value") or []:
                    if not isinstance(drive, dict) or not drive.get("id"):
                        continue
                    if self.drive_names is None or drive.get("name") in self.drive_names:
                        found.append((str(drive["id"]), site))
                        owner = (drive.get("owner") or {}).get("group") or {}
                        if isinstance(owner, dict) and owner.get("id"):
                            self._drive_groups[str(drive["id"])] = str(owner["id"])
                url = page.get("@odata.nextLink")
        return found

    # -- items ------------------------------------------------------------------------------
    def _change(self, item: Any, drive_id: str, site: dict[str, Any]) -> Document | Deletion | None:
        if not isinstance(item, dict) or not item.get("id"):
            log.warning("%s: skipping a delta item without an id", self.name)
            return None
        doc_id = f"{self.name}:{drive_id}:{item['id']}"
        if "deleted" in item:
            return Deletion(doc_id)
        if "file" not in item or "root" in item:
            return None  # folders, the root, OneNote packages
        name = str(item.get("name") or item["id"])
        if not is_supported(name):
            # Deleting covers an item renamed to a type we do not read; unknown ids are ignored.
            return Deletion(doc_id)
        return self._document(item, doc_id, drive_id, site, name)

    def _document(self, item: dict[str, Any], doc_id: str, drive_id: str, site: dict[str, Any], name: str) -> Document:
        item_path = f"/drives/{quote(drive_id)}/items/{quote(str(item['id']))}"
        version = str(item.get("cTag") or item.get("eTag") or item.get("lastModifiedDateTime") or "")
        try:
            acl = self._acl(item_path, doc_id, drive_id)
            load: Callable[[], list[Page]] = self._loader(item_path, name)
        except SovraError as exc:
            # ACL unknown: nobody may read the item until a later sync reads its permissions. The
            # version differs from any indexed one, so ingest tries load(), which reports the problem
            # as a SourceError and holds the cursor back: the next sync sees this item again.
            log.warning("%s: permissions unavailable: %s", doc_id, exc.message)
            acl, version = frozenset(), f"{version}#permissions-unavailable"
            load = _raiser(SourceError(f"{name}: permissions could not be read ({exc.message})", hint=exc.hint))
        file_info = item.get("file") or {}
        parent = item.get("parentReference") or {}
        metadata = {
            "name": name,
            "lastModifiedDateTime": item.get("lastModifiedDateTime"),
            "mimeType": file_info.get("mimeType"),
            "size": item.get("size"),
            "site": site.get("id"),
            "drive": drive_id,
            "path": parent.get("path"),
        }
        return Document(
            id=doc_id,
            title=PurePosixPath(name).stem,
            source=self.name,
            url=str(item.get("webUrl") or ""),
            version=version,
            acl=acl,
            load=load,
            metadata={k: v for k, v in metadata.items() if v is not None},
        )

    def _acl(self, item_path: str, doc_id: str, drive_id: str = "") -> frozenset[str]:
        perms: list[Any] = []
        url: str | None = f"{item_path}/permissions"
        while url:
            page = self.client.get_json(url)
            value = page.get("value")
            if not isinstance(value, list):
                raise SourceError(f"{doc_id}: the permissions answer has no 'value' list")
            perms += value
            url = page.get("@odata.nextLink")
        acl = _map_permissions(perms, doc_id, self.principals, self._site_group_expander(drive_id))
        if not acl:
            log.warning("%s has no permission Sovra can map: nobody can read it", doc_id)
        return acl

    def _site_group_expander(self, drive_id: str) -> Callable[[Any], list[Any] | None]:
        """Owners/Members site groups of a group-connected site, from its Microsoft 365 group."""
        group_id = self._drive_groups.get(drive_id)

        def expand(site_group: Any) -> list[Any] | None:
            name = str(site_group.get("displayName") or "")
            if group_id is None:
                return None
            if name.endswith(" Owners"):
                return self._members(group_id, "owners")
            if name.endswith(" Members"):
                return [{"group": {"id": group_id}}, *self._members(group_id, "members")]
            return None  # Visitors and custom groups: only what site_groups says

        return expand

    def _members(self, group_id: str, relation: str) -> list[Any]:
        """``/groups/{id}/owners`` or ``/members`` as identity sets (users, nested groups), all pages."""
        key = (group_id, relation)
        if key not in self._group_members:
            out: list[Any] = []
            url: str | None = f"/groups/{quote(group_id)}/{relation}"
            while url:
                page = self.client.get_json(url)
                for obj in page.get("value") or []:
                    if not isinstance(obj, dict) or not obj.get("id"):
                        continue
                    kind = str(obj.get("@odata.type") or "")
                    if kind.endswith(".group"):
                        out.append({"group": {"id": obj["id"]}})
                    elif kind.endswith(".user") or not kind:
                        email = obj.get("mail") or obj.get("userPrincipalName")
                        out.append({"user": {"id": obj["id"], "email": email}})
                url = page.get("@odata.nextLink")
            self._group_members[key] = out
        return self._group_members[key]

    def _loader(self, item_path: str, name: str) -> Callable[[], list[Page]]:
        def load() -> list[Page]:
            try:
                data = self.client.download(f"{item_path}/content", self.max_bytes)
            except SovraError as exc:
                exc.message = f"{name}: {exc.message}"
                raise
            return parse_bytes(data, name, self.max_bytes)

        return load


def map_permissions(
    permissions: list[Any],
    doc_id: str = "",
    organization_link_principal: str | None = None,
    principal_key: str = "id",
    principals: Principals | None = None,
) -> frozenset[str]:
    """Graph ``permission`` objects -> Sovra principals (``sharepoint_acl.map_permissions``)."""
    principals = principals or Principals(
        organization_link_principal=organization_link_principal, principal_key=principal_key
    )
    return _map_permissions(permissions, doc_id, principals)


def _site_path(ref: str) -> str:
    """``host:/sites/x`` keeps its ``:/`` form (Graph's path addressing); an id is quoted whole."""
    if ":/" in ref:
        host, _, path = ref.partition(":/")
        return f"{quote(host)}:/{quote(path.strip('/'))}"
    return quote(ref, safe=",")


def _parse_cursor(cursor: str | None, name: str) -> dict[str, str] | None:
    if cursor is None:
        return None
    try:
        data = json.loads(cursor)
        links = data["drives"]
        if data.get("v") != _CURSOR_VERSION or not isinstance(links, dict):
            raise ValueError("unknown cursor version")
        return {str(k): str(v) for k, v in links.items()}
    except (ValueError, KeyError, TypeError) as exc:
        log.warning("%s: the stored cursor is unreadable (%s); enumerating everything", name, exc)
        return None


def _dump_cursor(links: dict[str, str]) -> str:
    return json.dumps({"v": _CURSOR_VERSION, "drives": links}, sort_keys=True)


def _raiser(exc: SovraError) -> Callable[[], list[Page]]:
    def load() -> list[Page]:
        raise exc

    return load
