"""SharePoint permissions -> Sovra principals, as Microsoft Graph gives them; shared by the export
and the Graph connectors so both read the same permission the same way (not a connector itself).

Graph ``permission`` objects name their grantees in ``grantedToV2`` / ``grantedToIdentitiesV2``
(and the older ``grantedTo`` / ``grantedToIdentities``), each a ``sharePointIdentitySet``:

- ``user`` / ``group``: Entra object ids (GUIDs). ``users`` / ``groups`` translate them to the
  identity directory's user ids and group names (a user also by email); an id with no entry is
  kept as it is (``user:<guid>``, ``group:<guid>``): what an OIDC login's ``oid`` and ``groups``
  claims carry.
- ``siteUser``: a SharePoint principal. ``Everyone except external users`` (login name
  ``c:0-.f|rolemanager|spo-grid-all-users/<tenant>``) and ``Everyone`` (``c:0(.s|true``) grant
  ``organization_principal``; a person (``i:0#.f|membership|<upn>``) is matched by email.
- ``siteGroup``: SharePoint's own groups (``<site> Owners``, ``Members``, ``Visitors``, by numeric
  id). ``site_groups`` (keyed by id or display name) lists their members as identity sets or
  principals; otherwise ``expand_site_group`` (the Graph connector reads the site's Microsoft 365
  group) may resolve them. A site group nobody could expand grants nothing.
- a sharing link with scope ``organization`` grants ``organization_link_principal`` (default
  nothing: a link reaches only those who hold it, while search would show the document to all);
  ``anonymous`` links never grant anything; ``users`` links grant the identities they list.
- ``application`` and anything unknown grant nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sovra.identity import PUBLIC

log = logging.getLogger(__name__)

# "Everyone except external users": login name c:0-.f|rolemanager|spo-grid-all-users/<tenant id>
EVERYONE_EXCEPT_EXTERNAL = "spo-grid-all-users"
EVERYONE_CLAIM = "c:0(.s|true"
MEMBERSHIP_PREFIX = "i:0#.f|membership|"


@dataclass(frozen=True)
class Principals:
    """How a SharePoint tenant's principals translate into Sovra's."""

    users: Mapping[str, str] = field(default_factory=dict)  # Entra object id or email -> Sovra user id
    groups: Mapping[str, str] = field(default_factory=dict)  # Entra object id -> Sovra group name
    organization_principal: str | None = PUBLIC  # "Everyone except external users", "Everyone"
    organization_link_principal: str | None = None  # organization-wide sharing links
    site_groups: Mapping[str, list[Any]] = field(default_factory=dict)  # id or display name -> members
    principal_key: str = "id"  # "email": users named by their email (lower case) instead

    def user(self, ident: Mapping[str, Any]) -> str | None:
        uid, email = ident.get("id"), ident.get("email") or ident.get("userPrincipalName") or ident.get("mail")
        for key in (uid, email.lower() if isinstance(email, str) else None):
            if key and key in self.users:
                return f"user:{self.users[key]}"
            if key and isinstance(key, str) and key.lower() in self.users:
                return f"user:{self.users[key.lower()]}"
        if self.principal_key == "email":
            return f"user:{email.lower()}" if isinstance(email, str) and email else None
        return f"user:{uid}" if uid else None

    def group(self, ident: Mapping[str, Any]) -> str | None:
        gid = ident.get("id")
        return f"group:{self.groups.get(gid, gid)}" if gid else None


SiteGroupExpander = Callable[[Mapping[str, Any]], Iterable[Any]]


def identity_principals(
    identity: Any, principals: Principals, expand_site_group: SiteGroupExpander | None = None, doc_id: str = ""
) -> set[str]:
    """The Sovra principals one ``sharePointIdentitySet`` (or a ready principal string) grants."""
    if isinstance(identity, str):  # a site_groups entry may list principals directly
        return {identity} if identity.startswith(("user:", "group:")) else set()
    if not isinstance(identity, dict):
        return set()
    out: set[str] = set()
    if isinstance(user := identity.get("user"), dict) and (p := principals.user(user)):
        out.add(p)
    if isinstance(group := identity.get("group"), dict) and (p := principals.group(group)):
        out.add(p)
    site_user = identity.get("siteUser")
    if isinstance(site_user, dict):
        login = str(site_user.get("loginName") or "")
        if EVERYONE_EXCEPT_EXTERNAL in login or login == EVERYONE_CLAIM:
            if principals.organization_principal:
                out.add(principals.organization_principal)
        elif login.lower().startswith(MEMBERSHIP_PREFIX):
            email = login[len(MEMBERSHIP_PREFIX) :]
            if p := principals.user({"email": site_user.get("email") or email}):
                out.add(p)
    site_group = identity.get("siteGroup")
    if isinstance(site_group, dict):
        members: Iterable[Any] | None = None
        for key in (str(site_group.get("id") or ""), str(site_group.get("displayName") or "")):
            if key and key in principals.site_groups:
                members = principals.site_groups[key]
                break
        if members is None and expand_site_group is not None:
            members = expand_site_group(site_group)
        if members is None:
            name = site_group.get("displayName")
            log.info("%s: site group %r could not be expanded: it grants nothing", doc_id, name)
        for m in members or ():
            out |= identity_principals(m, principals, None, doc_id)
    return out


def map_permissions(
    permissions: list[Any],
    doc_id: str = "",
    principals: Principals | None = None,
    expand_site_group: SiteGroupExpander | None = None,
) -> frozenset[str]:
    """Graph ``permission`` objects -> Sovra principals. Unknown shapes grant nothing."""
    principals = principals or Principals()
    acl: set[str] = set()
    for perm in permissions:
        if not isinstance(perm, dict) or not perm.get("roles"):
            continue
        link = perm.get("link")
        if isinstance(link, dict):
            scope = link.get("scope")
            if scope == "organization":
                if principals.organization_link_principal:
                    acl.add(principals.organization_link_principal)
                else:
                    log.info("%s: an organization-wide sharing link grants nothing (not configured)", doc_id)
            elif scope == "anonymous":
                log.warning("%s: ignoring an anonymous sharing link", doc_id)
        identities = [
            perm.get("grantedToV2"),
            perm.get("grantedTo"),
            *(perm.get("grantedToIdentitiesV2") or []),
            *(perm.get("grantedToIdentities") or []),
        ]
        for identity in identities:
            acl |= identity_principals(identity, principals, expand_site_group, doc_id)
    return frozenset(acl)
