"""A faithful local stand-in for the Microsoft side of a Teams bot: the Bot Connector service, its
token issuer, and the Entra token endpoint.

One stdlib HTTP server on 127.0.0.1 plays three documented roles:

* **Issuer of incoming tokens** (Bot Framework): ``GET /v1/.well-known/openidconfiguration`` (the
  OpenID metadata; its ``jwks_uri`` points at) ``GET /v1/.well-known/keys`` (RSA keys with ``kid``
  and ``endorsements``, the channel ids a key may sign for). ``mint`` signs a JWT the way the
  connector does (RS256; ``iss`` https://api.botframework.com, ``aud`` the bot's app id,
  ``serviceurl``, ``nbf``/``exp``). ``forge`` signs with a key the metadata does not publish.
* **Entra token endpoint** (outgoing tokens): ``POST /{tenant}/oauth2/v2.0/token`` with the OAuth 2.0
  client-credentials form; wrong credentials answer 401 ``invalid_client`` (AADSTS7000215).
* **Bot Connector REST API** at the activity's ``serviceUrl``: ``POST /v3/conversations/{id}/
  activities/{activityId}`` (reply), ``POST /v3/conversations/{id}/activities`` (send), ``PUT
  /v3/conversations/{id}/activities/{activityId}`` (update), ``GET /v3/conversations/{id}/
  pagedmembers`` (the roster, ``rosters``; guests carry ``userRole: "guest"``) and ``POST
  /v3/conversations`` (open a 1:1 chat with a member), each answering its documented shape and 401
  ``{"error": {"code": "Unauthorized", ...}}`` without the token the endpoint above issued.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

ISSUER = "https://api.botframework.com"
TENANT_ID = "72f988bf-86f1-41af-91ab-2d7cd011db47"


def _b64(n: int) -> str:
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@dataclass
class Posted:
    method: str
    path: str
    conversation_id: str
    reply_to: str | None
    activity: dict[str, Any]
    authorization: str
    id: str  # the id the connector gave the posted activity


class FakeBotFramework:
    def __init__(self, app_id: str, app_password: str, endorsements: tuple[str, ...] = ("msteams", "webchat")) -> None:
        self.app_id = app_id
        self.app_password = app_password
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = "sovra-test-key-1"
        self.endorsements = list(endorsements)
        self.attacker_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.issued: set[str] = set()
        self.token_requests: list[dict[str, str]] = []
        self.posted: list[Posted] = []
        self.rejected: list[tuple[str, int]] = []
        self.rosters: dict[str, list[dict[str, Any]]] = {}  # conversation id -> TeamsChannelAccount
        self.created: list[dict[str, Any]] = []  # conversations the bot created (request bodies)
        self.roster_reads: list[tuple[str, str | None]] = []  # (conversation, continuationToken)
        self._cond = threading.Condition()
        self._ids = itertools.count(1)
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _send(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def do_GET(self) -> None:
                url = urlparse(self.path)
                path = url.path
                if path == "/v1/.well-known/openidconfiguration":
                    self._send(200, fake.metadata())
                elif path == "/v1/.well-known/keys":
                    self._send(200, fake.jwks())
                elif path.endswith("/pagedmembers") and "/v3/conversations/" in path:
                    if not self._authorized(path):
                        return
                    conv = unquote(path.split("/v3/conversations/", 1)[1].rsplit("/", 1)[0])
                    query = {k: v[0] for k, v in parse_qs(url.query).items()}
                    status, body = fake._paged_members(conv, query)
                    self._send(status, body)
                else:
                    self._send(404, {"error": {"code": "NotFound", "message": path}})

            def _authorized(self, path: str) -> bool:
                auth = self.headers.get("Authorization", "")
                if auth.startswith("Bearer ") and auth[7:] in fake.issued:
                    return True
                with fake._cond:
                    fake.rejected.append((path, 401))
                    fake._cond.notify_all()
                self._send(401, {"error": {"code": "Unauthorized", "message": "Authorization has been denied"}})
                return False

            def do_POST(self) -> None:
                path = urlparse(self.path).path
                if path.endswith("/oauth2/v2.0/token"):
                    form = {k: v[0] for k, v in parse_qs(self._body().decode()).items()}
                    status, body = fake._token(form)
                    self._send(status, body)
                    return
                self._connector("POST", path)

            def do_PUT(self) -> None:
                self._connector("PUT", urlparse(self.path).path)

            def _connector(self, method: str, path: str) -> None:
                parts = path.strip("/").split("/")
                # A serviceUrl has a path of its own (https://smba.trafficmanager.net/emea/).
                parts = parts[parts.index("v3") :] if "v3" in parts else parts
                if method == "POST" and parts == ["v3", "conversations"]:  # create a conversation
                    if not self._authorized(path):
                        return
                    status, created = fake._create_conversation(json.loads(self._body() or b"{}"))
                    self._send(status, created)
                    return
                if len(parts) < 4 or parts[:2] != ["v3", "conversations"] or parts[3] != "activities":
                    self._send(404, {"error": {"code": "NotFound", "message": path}})
                    return
                auth = self.headers.get("Authorization", "")
                body = self._body()
                if not auth.startswith("Bearer ") or auth[7:] not in fake.issued:
                    with fake._cond:
                        fake.rejected.append((path, 401))
                        fake._cond.notify_all()
                    self._send(401, {"error": {"code": "Unauthorized", "message": "Authorization has been denied"}})
                    return
                activity = json.loads(body)
                if not activity.get("type"):
                    self._send(400, {"error": {"code": "BadArgument", "message": "Activity type is required"}})
                    return
                reply_to = unquote(parts[4]) if len(parts) > 4 else None
                new_id = reply_to if method == "PUT" and reply_to else f"1{next(fake._ids):012d}"
                posted = Posted(method, path, unquote(parts[2]), reply_to, activity, auth, new_id)
                with fake._cond:
                    fake.posted.append(posted)
                    fake._cond.notify_all()
                self._send(200 if method == "PUT" else 201, {"id": new_id})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._serve_thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._serve_thread.start()

    # -- the documents -------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    @property
    def metadata_url(self) -> str:
        return self.url + "/v1/.well-known/openidconfiguration"

    @property
    def token_url(self) -> str:
        return self.url + "/botframework.com/oauth2/v2.0/token"

    @property
    def service_url(self) -> str:
        return self.url + "/teams/"

    def metadata(self) -> dict[str, Any]:
        return {
            "issuer": ISSUER,
            "authorization_endpoint": "https://invalid.botframework.com",
            "jwks_uri": self.url + "/v1/.well-known/keys",
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        }

    def jwks(self) -> dict[str, Any]:
        pub = self.key.public_key().public_numbers()
        x5t = base64.urlsafe_b64encode(hashlib.sha1(self.kid.encode()).digest()).rstrip(b"=").decode()
        key = {"kty": "RSA", "use": "sig", "kid": self.kid, "x5t": x5t, "n": _b64(pub.n), "e": _b64(pub.e)}
        return {"keys": [key | {"endorsements": self.endorsements}]}

    def _token(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        self.token_requests.append(form)
        if form.get("grant_type") != "client_credentials":
            return 400, {"error": "unsupported_grant_type", "error_description": "AADSTS70003"}
        if form.get("client_id") != self.app_id or form.get("client_secret") != self.app_password:
            return 401, {
                "error": "invalid_client",
                "error_description": "AADSTS7000215: Invalid client secret provided.",
                "error_codes": [7000215],
            }
        token = secrets.token_urlsafe(32)
        self.issued.add(token)
        return 200, {"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": token}

    # -- conversations ---------------------------------------------------------------------------

    def _paged_members(self, conv: str, query: dict[str, str]) -> tuple[int, dict[str, Any]]:
        """``GET /v3/conversations/{id}/pagedmembers``: ``{"members": [...], "continuationToken"}``
        (absent on the last page); ``pageSize`` below 50 is raised to 50, as Teams does."""
        self.roster_reads.append((conv, query.get("continuationToken")))
        members = self.rosters.get(conv)
        if members is None:
            return 404, {"error": {"code": "ConversationNotFound", "message": "Conversation not found."}}
        size = min(max(int(query.get("pageSize") or 200), 50), 500)
        start = int(query.get("continuationToken") or 0)  # opaque to the bot; an offset here
        body: dict[str, Any] = {"members": members[start : start + size]}
        if start + size < len(members):
            body["continuationToken"] = str(start + size)
        return 200, body

    def _create_conversation(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """``POST /v3/conversations`` (ConversationParameters) -> ConversationResourceResponse. A 1:1
        with one member is the member's personal chat with the bot: the same id every time."""
        members = body.get("members") or []
        if body.get("isGroup") or len(members) != 1 or not members[0].get("id"):
            return 400, {"error": {"code": "BadArgument", "message": "Only 1:1 conversations can be created."}}
        if not (body.get("tenantId") or (body.get("channelData") or {}).get("tenant", {}).get("id")):
            return 400, {"error": {"code": "BadArgument", "message": "Tenant id is required."}}
        with self._cond:
            self.created.append(body)
        return 201, {"id": f"a:personal-{members[0]['id']}", "serviceUrl": self.service_url, "activityId": ""}

    def personal_chat(self, account_id: str) -> list[Posted]:
        """What the bot posted in its personal chat with ``account_id`` (a ``29:`` id)."""
        return [p for p in self.posted if p.conversation_id == f"a:personal-{account_id}"]

    # -- tokens for incoming requests ------------------------------------------------------------

    def claims(self, service_url: str | None = None, **overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        base = {
            "serviceurl": service_url or self.service_url,
            "nbf": now - 5,
            "exp": now + 3600,
            "iss": ISSUER,
            "aud": self.app_id,
        }
        return {k: v for k, v in (base | overrides).items() if v is not None}

    def mint(self, service_url: str | None = None, **overrides: Any) -> str:
        return jwt.encode(self.claims(service_url, **overrides), self.key, algorithm="RS256", headers={"kid": self.kid})

    def forge(self, service_url: str | None = None, **overrides: Any) -> str:
        """A token signed with a key the issuer does not publish, under the real key's kid."""
        return jwt.encode(
            self.claims(service_url, **overrides), self.attacker_key, algorithm="RS256", headers={"kid": self.kid}
        )

    # -- for tests -------------------------------------------------------------------------------

    def wait_for(self, predicate: Callable[[FakeBotFramework], bool], timeout: float = 60) -> None:
        with self._cond:
            if not self._cond.wait_for(lambda: predicate(self), timeout=timeout):
                raise AssertionError(f"connector fake: condition not met in {timeout} s; posted {self.posted}")

    def replies_to(self, activity_id: str, kind: str = "message") -> list[Posted]:
        return [p for p in self.posted if p.reply_to == activity_id and p.activity.get("type") == kind]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# -------------------------------------------------------------------------------------------------
# Activities as Teams sends them

_activity_ids = itertools.count(1)
BOT_ACCOUNT = "28:sovra-bot"


def _base(
    fake: FakeBotFramework, sender: dict[str, Any], conversation_id: str, conversation_type: str = "personal"
) -> dict[str, Any]:
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    conversation = {"conversationType": conversation_type, "tenantId": TENANT_ID, "id": conversation_id}
    if conversation_type != "personal":
        conversation["isGroup"] = True
    return {
        "id": f"17{int(time.time()):010d}{next(_activity_ids):04d}",
        "timestamp": now,
        "localTimestamp": now,
        "serviceUrl": fake.service_url,
        "channelId": "msteams",
        "from": sender,
        "conversation": conversation,
        "recipient": {"id": BOT_ACCOUNT, "name": "Sovra"},
        "locale": "en-US",
        "channelData": {"tenant": {"id": TENANT_ID}},
    }


def person(aad_object_id: str, name: str = "Test User") -> dict[str, Any]:
    return {"id": f"29:1{aad_object_id}", "name": name, "aadObjectId": aad_object_id}


def member(aad_object_id: str, name: str = "Test User", email: str | None = None, role: str = "user") -> dict[str, Any]:
    """A roster entry as ``pagedmembers`` returns it (TeamsChannelAccount); ``role`` "guest" for a
    guest account."""
    email = email or f"{aad_object_id}@nordbank.example"
    return person(aad_object_id, name) | {
        "email": email,
        "userPrincipalName": email if role != "guest" else email.replace("@", "_") + "#EXT#@nordbank.onmicrosoft.com",
        "userRole": role,
        "tenantId": TENANT_ID,
    }


def message(
    fake: FakeBotFramework, sender: dict[str, Any], text: str, conversation_id: str, conversation_type: str = "personal"
) -> dict[str, Any]:
    """A user's message that @mentions the bot (``<at>Sovra</at>`` plus a mention entity), in a
    ``personal``, ``groupChat`` or ``channel`` conversation."""
    a = _base(fake, sender, conversation_id, conversation_type)
    a |= {
        "type": "message",
        "textFormat": "plain",
        "text": f"<at>Sovra</at> {text}",
        "entities": [
            {"type": "mention", "text": "<at>Sovra</at>", "mentioned": {"id": BOT_ACCOUNT, "name": "Sovra"}},
            {"type": "clientInfo", "locale": "en-US", "country": "US", "platform": "Web", "timezone": "Europe/Berlin"},
        ],
    }
    return a


def card_action(
    fake: FakeBotFramework, sender: dict[str, Any], conversation_id: str, card_message_id: str, data: dict[str, Any]
) -> dict[str, Any]:
    """What Teams sends when an ``Action.Execute`` button is clicked: an ``adaptiveCard/action`` invoke."""
    a = _base(fake, sender, conversation_id)
    a |= {
        "type": "invoke",
        "name": "adaptiveCard/action",
        "replyToId": card_message_id,
        "value": {
            "action": {"type": "Action.Execute", "verb": data.get("sovra_action"), "data": data},
            "trigger": "manual",
        },
    }
    return a
