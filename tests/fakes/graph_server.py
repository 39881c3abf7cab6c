"""A faithful local stand-in for Microsoft Graph (SharePoint drives) and the Entra ID token endpoint.

An HTTPS server on 127.0.0.1 (a throw-away self-signed certificate: msal only accepts https
authorities) that serves the documented JSON shapes, data-driven from the demo corpus's
SharePoint export (``manifest.json`` + files):

- ``GET /{tenant}/v2.0/.well-known/openid-configuration`` and ``POST /{tenant}/oauth2/v2.0/token``
  (client_credentials with a secret or a certificate assertion; tokens expire);
- ``GET /v1.0/sites/{host}:/sites/{path}``, ``/v1.0/sites/{id}``, ``/v1.0/sites/{id}/drives``;
- ``GET /v1.0/drives/{id}/root/delta`` with ``@odata.nextLink`` pages and a final
  ``@odata.deltaLink``; later calls with the token return only what changed, deleted items with
  the ``deleted`` facet, and sharing changes when the client sends ``Prefer: deltashowsharingchanges``;
- ``GET /v1.0/drives/{id}/items/{id}/permissions`` and ``.../content`` (302 to a
  pre-authenticated download URL served by ``/_download/...``); permissions name users and groups
  by Entra object id (GUID) and SharePoint principals as ``siteUser`` / ``siteGroup`` (see
  ``entra_user``, ``entra_group``, ``site_group``, ``everyone_except_external_users``);
- a group-connected site: the library's ``owner.group`` is ``site_group_id`` and
  ``GET /v1.0/groups/{id}/owners`` / ``/members`` list ``group_owners`` / ``group_members``
  (directoryObjects with ``@odata.type``, paged by ``page_size``);
- injectable faults: 429/503 with ``Retry-After``, 401 for an expired token, a garbage body,
  a hang, a 410 for an expired delta token.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import json
import secrets
import ssl
import tempfile
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

TENANT = "contoso-tenant"
CLIENT_ID = "11111111-2222-3333-4444-555555555555"
CLIENT_SECRET = "fake-secret-value"
HOSTNAME = "nordbank.sharepoint.com"
SITE_PATH = "sites/policies"
SITE_ID = f"{HOSTNAME},7d6b1b4c-0000-4000-8000-000000000001,9a0e7f2d-0000-4000-8000-000000000002"
DRIVE_ID = "b!policies-drive-0001"


@dataclass
class Item:
    id: str
    name: str
    content: bytes
    permissions: list[dict[str, Any]]
    version: int = 1
    seq: int = 0  # change sequence number of the last change
    content_seq: int = 0  # ... of the last change that was not a sharing change
    deleted: bool = False
    modified: str = "2026-01-15T09:00:00Z"

    @property
    def ctag(self) -> str:
        return f'"c:{{{self.id}}},{self.version}"'


@dataclass
class Fault:
    """Answer requests whose path contains ``path`` with a fault, ``times`` times (-1: always)."""

    path: str
    kind: str  # "429", "503", "401", "garbage", "hang", "410"
    times: int = 1
    retry_after: int = 0


@dataclass
class FakeGraph:
    items: dict[str, Item] = field(default_factory=dict)
    page_size: int = 10
    token_lifetime_s: int = 3599
    seq: int = 0
    faults: list[Fault] = field(default_factory=list)
    requests: list[tuple[str, str]] = field(default_factory=list)  # (method, path with query)
    tokens: dict[str, float] = field(default_factory=dict)  # access token -> expiry (epoch s)
    token_requests: int = 0
    prefer: list[str] = field(default_factory=list)  # Prefer headers of delta requests
    min_delta_token: int = 0  # delta tokens older than this answer 410
    hang_started: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    base_url: str = ""
    ca_file: str = ""
    site_group_id: str | None = None  # the Microsoft 365 group of a group-connected site
    group_owners: list[dict[str, Any]] = field(default_factory=list)  # directoryObjects
    group_members: list[dict[str, Any]] = field(default_factory=list)

    # -- data ------------------------------------------------------------------------------
    @classmethod
    def from_export(cls, export_dir: Path, limit: int | None = None, **kwargs: Any) -> FakeGraph:
        manifest = json.loads((export_dir / "manifest.json").read_text(encoding="utf-8"))
        fake = cls(**kwargs)
        for raw in manifest["items"][:limit]:
            fake.add(raw["name"], (export_dir / raw["file"]["path"]).read_bytes(), raw["permissions"], raw["id"])
        return fake

    def _bump(self, item: Item, sharing: bool = False) -> None:
        self.seq += 1
        item.seq = self.seq
        if not sharing:
            item.content_seq = self.seq

    def add(self, name: str, content: bytes, permissions: list[dict[str, Any]], item_id: str | None = None) -> Item:
        with self.lock:
            item = Item(item_id or "01" + secrets.token_hex(16).upper(), name, content, permissions)
            self.items[item.id] = item
            self._bump(item)
            return item

    def modify(self, item_id: str, content: bytes) -> None:
        with self.lock:
            item = self.items[item_id]
            item.content, item.version = content, item.version + 1
            item.modified = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            self._bump(item)

    def delete(self, item_id: str) -> None:
        with self.lock:
            self.items[item_id].deleted = True
            self._bump(self.items[item_id])

    def set_permissions(self, item_id: str, permissions: list[dict[str, Any]]) -> None:
        """A sharing change: the content (cTag) stays, the item reappears in the delta feed."""
        with self.lock:
            self.items[item_id].permissions = permissions
            self._bump(self.items[item_id], sharing=True)

    def expire_tokens(self) -> None:
        with self.lock:
            self.tokens = dict.fromkeys(self.tokens, 0.0)

    def expire_delta_tokens(self) -> None:
        self.min_delta_token = self.seq + 1

    def inject(self, path: str, kind: str, times: int = 1, retry_after: int = 0) -> None:
        self.faults.append(Fault(path, kind, times, retry_after))

    def hits(self, fragment: str) -> int:
        return sum(1 for _, p in self.requests if fragment in p)

    # -- shapes ----------------------------------------------------------------------------
    def drive_item(self, item: Item) -> dict[str, Any]:
        if item.deleted:
            return {"id": item.id, "deleted": {"state": "deleted"}, "parentReference": {"driveId": DRIVE_ID}}
        return {
            "@odata.type": "#microsoft.graph.driveItem",
            "id": item.id,
            "name": item.name,
            "eTag": f'"{{{item.id}}},{item.version + item.seq}"',
            "cTag": item.ctag,
            "size": len(item.content),
            "createdDateTime": "2025-06-01T08:00:00Z",
            "lastModifiedDateTime": item.modified,
            "webUrl": f"https://{HOSTNAME}/{SITE_PATH}/Shared%20Documents/{item.name}",
            "parentReference": {"driveType": "documentLibrary", "driveId": DRIVE_ID, "path": "/drive/root:"},
            "file": {"mimeType": "application/octet-stream", "hashes": {"quickXorHash": "AAAA"}},
        }

    def root_item(self) -> dict[str, Any]:
        return {
            "id": "01ROOT",
            "name": "root",
            "root": {},
            "folder": {"childCount": sum(1 for i in self.items.values() if not i.deleted)},
            "parentReference": {"driveId": DRIVE_ID, "driveType": "documentLibrary"},
        }


def _token_b64(data: dict[str, int]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def _untoken(raw: str) -> dict[str, int]:
    return json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))


def _self_signed(tmp: Path, rsa: bool = False) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric import rsa as rsa_keys
    from cryptography.x509.oid import NameOID

    # Entra ID app certificates are RSA (msal signs the assertion with RS256/PS256).
    key: Any = rsa_keys.generate_private_key(65537, 2048) if rsa else ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp / "cert.pem", tmp / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_file, key_file


class GraphServer:
    """Runs a ``FakeGraph`` on https://127.0.0.1:<free port>. Use as a context manager."""

    def __init__(self, fake: FakeGraph) -> None:
        self.fake = fake
        self._tmp = tempfile.TemporaryDirectory(prefix="fake-graph-")
        cert, key = _self_signed(Path(self._tmp.name))
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
        self.httpd.daemon_threads = True
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        fake.base_url = f"https://127.0.0.1:{self.httpd.server_address[1]}"
        fake.ca_file = str(cert)
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return self.fake.base_url

    def connector_options(self) -> dict[str, Any]:
        return {
            "tenant_id": TENANT,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "authority_host": self.url,
            "graph_url": f"{self.url}/v1.0",
            "sites": [f"{HOSTNAME}:/{SITE_PATH}"],
            "ca_bundle": self.fake.ca_file,
        }

    def __enter__(self) -> GraphServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.fake.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self._tmp.cleanup()


def _handler(fake: FakeGraph) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        # -- plumbing ------------------------------------------------------------------
        def _send(
            self, status: int, body: bytes, ctype: str = "application/json", headers: dict[str, str] | None = None
        ):  # type: ignore[no-untyped-def]
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

        def _json(self, status: int, data: Any, headers: dict[str, str] | None = None) -> None:
            self._send(status, json.dumps(data).encode(), headers=headers)

        def _error(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
            self._json(
                status,
                {"error": {"code": code, "message": message, "innerError": {"request-id": secrets.token_hex(8)}}},
                headers,
            )

        def _fault(self) -> bool:
            for f in fake.faults:
                if f.path in self.path and f.times != 0:
                    f.times -= 1
                    if f.kind in ("429", "503"):
                        code = "TooManyRequests" if f.kind == "429" else "serviceNotAvailable"
                        self._error(int(f.kind), code, "Please retry later.", {"Retry-After": str(f.retry_after)})
                    elif f.kind == "401":
                        self._error(401, "InvalidAuthenticationToken", "Access token has expired or is not yet valid.")
                    elif f.kind == "garbage":
                        self._send(200, b"<html><body>Bad gateway \x00\xff", "application/json")
                    elif f.kind == "410":
                        self._error(
                            410, "resyncRequired", "Resync required. Replace any local items with the server's."
                        )
                    elif f.kind == "hang":
                        fake.hang_started.set()
                        fake.release.wait(60)
                        self.close_connection = True
                    return True
            return False

        def _authorized(self) -> bool:
            auth = self.headers.get("Authorization", "")
            token = auth.removeprefix("Bearer ").strip()
            expiry = fake.tokens.get(token)
            if not auth.startswith("Bearer ") or expiry is None:
                self._error(401, "InvalidAuthenticationToken", "Access token is empty.",
                            {"WWW-Authenticate": 'Bearer realm="", error="invalid_token"'})  # fmt: skip
                return False
            if expiry < time.time():
                expired = 'Bearer error="invalid_token", error_description="The token is expired"'
                self._error(401, "InvalidAuthenticationToken", "Lifetime validation failed, the token is expired.",
                            {"WWW-Authenticate": expired})  # fmt: skip
                return False
            return True

        # -- verbs ---------------------------------------------------------------------
        def do_POST(self) -> None:
            fake.requests.append(("POST", self.path))
            form = parse_qs(self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode())
            if self.path != f"/{TENANT}/oauth2/v2.0/token":
                self._error(404, "itemNotFound", "no such endpoint")
                return
            if self._fault():
                return
            fake.token_requests += 1
            ok_secret = form.get("client_secret") == [CLIENT_SECRET]
            assertion = form.get("client_assertion", [""])[0]
            ok_cert = (
                form.get("client_assertion_type") == ["urn:ietf:params:oauth:client-assertion-type:jwt-bearer"]
                and assertion.count(".") == 2
            )
            if form.get("grant_type") != ["client_credentials"] or form.get("client_id") != [CLIENT_ID]:
                self._json(400, {"error": "unauthorized_client", "error_description": "AADSTS700016: unknown app."})
                return
            if not (ok_secret or ok_cert):
                why = "AADSTS7000215: Invalid client secret provided."
                self._json(401, {"error": "invalid_client", "error_description": why})
                return
            token = "eyJ0eXAiOiJKV1QifQ." + secrets.token_urlsafe(24)
            fake.tokens[token] = time.time() + fake.token_lifetime_s
            self._json(200, {"token_type": "Bearer", "expires_in": fake.token_lifetime_s,
                             "ext_expires_in": fake.token_lifetime_s, "access_token": token})  # fmt: skip

        def do_GET(self) -> None:
            fake.requests.append(("GET", self.path))
            parts = urlsplit(self.path)
            path, query = unquote(parts.path), parse_qs(parts.query)
            if path == f"/{TENANT}/v2.0/.well-known/openid-configuration":
                base = f"{fake.base_url}/{TENANT}"
                self._json(200, {
                    "token_endpoint": f"{base}/oauth2/v2.0/token",
                    "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                    "issuer": f"{fake.base_url}/{TENANT}/v2.0",
                    "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt"],
                })  # fmt: skip
                return
            if path.startswith("/_download/"):
                self._download(path, query)
                return
            if self._fault() or not self._authorized():
                return
            if path in (f"/v1.0/sites/{HOSTNAME}:/{SITE_PATH}", f"/v1.0/sites/{SITE_ID}"):
                self._json(200, {"id": SITE_ID, "name": "policies", "displayName": "Policies",
                                 "webUrl": f"https://{HOSTNAME}/{SITE_PATH}"})  # fmt: skip
            elif path == f"/v1.0/sites/{SITE_ID}/drives":
                library = f"https://{HOSTNAME}/{SITE_PATH}/Shared%20Documents"
                drive = {"id": DRIVE_ID, "name": "Documents", "driveType": "documentLibrary", "webUrl": library}
                if fake.site_group_id:
                    drive["owner"] = {"group": {"id": fake.site_group_id, "displayName": "Policies"}}
                self._json(200, {"value": [drive]})
            elif fake.site_group_id and path in (
                f"/v1.0/groups/{fake.site_group_id}/owners",
                f"/v1.0/groups/{fake.site_group_id}/members",
            ):
                objs = fake.group_owners if path.endswith("/owners") else fake.group_members
                start = int(query.get("$skiptoken", ["0"])[0])
                body = {"@odata.context": "...#directoryObjects", "value": objs[start : start + fake.page_size]}
                if start + fake.page_size < len(objs):
                    body["@odata.nextLink"] = f"{fake.base_url}{path}?$skiptoken={start + fake.page_size}"
                self._json(200, body)
            elif path.startswith("/v1.0/groups/"):
                self._error(404, "Request_ResourceNotFound", "Resource does not exist.")
            elif path == f"/v1.0/drives/{DRIVE_ID}/root/delta":
                self._delta(query)
            elif path.startswith(f"/v1.0/drives/{DRIVE_ID}/items/"):
                self._item(path.removeprefix(f"/v1.0/drives/{DRIVE_ID}/items/"))
            elif path.startswith("/v1.0/sites/"):
                self._error(404, "itemNotFound", "The requested site was not found.")
            else:
                self._error(400, "invalidRequest", f"Invalid request {path}")

        def _delta(self, query: dict[str, list[str]]) -> None:
            fake.prefer.append(self.headers.get("Prefer", ""))
            sharing = "deltashowsharingchanges" in fake.prefer[-1]
            if "$skiptoken" in query:
                state = _untoken(query["$skiptoken"][0])
            else:
                since = _untoken(query["token"][0])["since"] if "token" in query else 0
                if "token" in query and since < fake.min_delta_token:
                    self._error(410, "resyncRequired", "Resync required. Replace any local items with the server's.")
                    return
                state = {"since": since, "upto": fake.seq, "offset": 0}
            with fake.lock:
                changed = sorted(
                    (i for i in fake.items.values() if state["since"] < i.seq <= state["upto"]), key=lambda i: i.seq
                )
                if state["since"] == 0:
                    changed = [i for i in changed if not i.deleted]  # a first pass lists what exists
                elif not sharing:
                    # Without the preference Graph leaves out items whose only change is their sharing.
                    changed = [i for i in changed if i.content_seq > state["since"]]
                entries = [fake.root_item()] if state["since"] == 0 else []
                entries += [fake.drive_item(i) for i in changed]
            page = entries[state["offset"] : state["offset"] + fake.page_size]
            body: dict[str, Any] = {
                "@odata.context": f"{fake.base_url}/v1.0/$metadata#Collection(driveItem)",
                "value": page,
            }
            link = f"{fake.base_url}/v1.0/drives/{DRIVE_ID}/root/delta"
            if state["offset"] + fake.page_size < len(entries):
                nxt = {**state, "offset": state["offset"] + fake.page_size}
                body["@odata.nextLink"] = f"{link}?$skiptoken={_token_b64(nxt)}"
            else:
                body["@odata.deltaLink"] = f"{link}?token={_token_b64({'since': state['upto']})}"
            self._json(200, body)

        def _item(self, rest: str) -> None:
            item_id, _, tail = rest.partition("/")
            item = fake.items.get(item_id)
            if item is None or item.deleted:
                self._error(404, "itemNotFound", "The resource could not be found.")
            elif tail == "permissions":
                value = [{"id": f"perm{n}", **p} for n, p in enumerate(item.permissions)]
                self._json(200, {"@odata.context": "...#permissions", "value": value})
            elif tail == "content":
                sig = base64.urlsafe_b64encode(f"{item.id}:{item.version}".encode()).decode()
                location = f"{fake.base_url}/_download/{DRIVE_ID}/{item.id}?tempauth={sig}"
                self._send(302, b"", "text/plain", {"Location": location})
            elif tail == "":
                self._json(200, fake.drive_item(item))
            else:
                self._error(400, "invalidRequest", "unsupported item path")

        def _download(self, path: str, query: dict[str, list[str]]) -> None:
            if self._fault():
                return
            if self.headers.get("Authorization"):
                # Pre-authenticated URLs reject a bearer token (as SharePoint's download host does).
                self._error(401, "InvalidAuthenticationToken", "download URLs take no Authorization header")
                return
            item = fake.items.get(path.rsplit("/", 1)[-1])
            if item is None or item.deleted:
                self._error(404, "itemNotFound", "gone")
                return
            sig = base64.urlsafe_b64encode(f"{item.id}:{item.version}".encode()).decode()
            if query.get("tempauth") != [sig]:
                self._error(401, "unauthenticated", "tempauth is invalid or stale")
                return
            self._send(200, item.content, "application/octet-stream")

    return Handler


def permission(principal: str) -> dict[str, Any]:
    """A Graph permission granting read to ``user:x`` or ``group:y`` (the demo export's shape)."""
    kind, _, ident = principal.partition(":")
    return {"roles": ["read"], "grantedToV2": {kind: {"id": ident, "displayName": ident}}}


# -- principals as Graph gives them ----------------------------------------------------------------


def entra_user(oid: str, name: str, email: str) -> dict[str, Any]:
    """A user in a sharePointIdentitySet / a directoryObject from /groups/{id}/members."""
    return {"id": oid, "displayName": name, "email": email}


def entra_group(oid: str, name: str) -> dict[str, Any]:
    return {"id": oid, "displayName": name, "email": f"{name.lower().replace(' ', '')}@nordbank.example"}


def directory_user(oid: str, name: str, email: str) -> dict[str, Any]:
    return {"@odata.type": "#microsoft.graph.user", "id": oid, "displayName": name, "mail": email,
            "userPrincipalName": email}  # fmt: skip


def site_group(sp_id: int, name: str) -> dict[str, Any]:
    """A SharePoint site group (numeric id) in grantedToV2."""
    return {"siteGroup": {"id": str(sp_id), "displayName": name, "loginName": name}}


def everyone_except_external_users(tenant_id: str = "72f988bf-86f1-41af-91ab-2d7cd011db47") -> dict[str, Any]:
    return {"siteUser": {"id": "11", "displayName": "Everyone except external users",
                         "loginName": f"c:0-.f|rolemanager|spo-grid-all-users/{tenant_id}"}}  # fmt: skip


def grant(identity: dict[str, Any], roles: tuple[str, ...] = ("read",), inherited: bool = True) -> dict[str, Any]:
    """A permission granting ``identity`` (a sharePointIdentitySet), as /permissions lists it."""
    perm: dict[str, Any] = {"roles": list(roles), "grantedToV2": identity}
    if inherited:
        perm["inheritedFrom"] = {"driveId": DRIVE_ID, "id": "01ROOT", "path": "/drives/" + DRIVE_ID + "/root:"}
    return perm
