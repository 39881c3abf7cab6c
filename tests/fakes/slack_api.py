"""A faithful local stand-in for the Slack Web API, and the Slack side of the Events API.

``FakeSlack`` is a stdlib HTTP server on 127.0.0.1 answering the methods the bot uses, with the
documented shapes (https://api.slack.com/methods): ``auth.test``, ``chat.postMessage``,
``chat.update``, ``users.info``, ``conversations.members`` (cursor-paginated, ``limit`` honoured)
and ``conversations.open`` (a direct message channel ``D...`` per user). Channels and their members
are ``channels``; a channel not listed there is ``channel_not_found``, as for a channel the bot is
not in. As Slack does, it answers HTTP 200 with ``{"ok": false, "error":
...}`` for API errors (``not_authed``, ``invalid_auth``, ``channel_not_found``, ``no_text``,
``message_not_found``, ``user_not_found``, ``invalid_blocks``, ``msg_too_long``, ``unknown_method``)
and HTTP 429 with ``Retry-After`` (seconds) and ``{"ok": false, "error": "ratelimited"}`` when a
method is rate limited (scripted with ``rate_limit``). The real ``slack_sdk.WebClient`` talks to it
through ``base_url``.

The Slack-to-app direction is helpers: ``signed_headers`` signs a request body with Slack's v0
algorithm (HMAC-SHA256 of ``v0:{timestamp}:{body}`` with the signing secret), ``event_envelope``
and ``block_actions_body`` build the payloads Slack posts.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

TEAM_ID = "T0SOVRA01"
BOT_USER_ID = "U0SOVRABOT"
BOT_ID = "B0SOVRABOT"
MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000
MAX_TEXT = 40_000


@dataclass
class SlackUser:
    id: str
    name: str
    email: str | None = None
    is_bot: bool = False


@dataclass
class Call:
    method: str
    args: dict[str, Any]
    token: str | None
    status: int
    response: dict[str, Any]


@dataclass
class FakeSlack:
    token: str = "xoxb-test-0000-sovra"
    users: dict[str, SlackUser] = field(default_factory=dict)
    channels: dict[str, list[str]] = field(default_factory=dict)  # channel id -> member ids

    def __post_init__(self) -> None:
        self.calls: list[Call] = []
        self.messages: dict[tuple[str, str], dict[str, Any]] = {}  # (channel, ts) -> message
        self._rate_limits: dict[str, list[int]] = {}  # method -> Retry-After of the next 429s
        self._cond = threading.Condition()
        self._ts = itertools.count(1)
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                url = urlparse(self.path)
                args = {k: v[0] for k, v in parse_qs(url.query).items()}
                self._answer(url.path, args)

            def do_POST(self) -> None:
                url = urlparse(self.path)
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                ctype = self.headers.get("Content-Type", "")
                if "json" in ctype:
                    args = json.loads(raw or b"{}")
                else:
                    args = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
                    for key in ("blocks", "attachments"):  # form-encoded: JSON strings
                        if isinstance(args.get(key), str):
                            args[key] = json.loads(args[key])
                args.update({k: v[0] for k, v in parse_qs(url.query).items()})
                self._answer(url.path, args)

            def _answer(self, path: str, args: dict[str, Any]) -> None:
                method = path.rsplit("/", 1)[-1]
                auth = self.headers.get("Authorization", "")
                token = auth[7:] if auth.startswith("Bearer ") else args.get("token")
                status, body, headers = fake._handle(method, args, token)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._serve_thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._serve_thread.start()

    # -- the API ---------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/api/"

    def rate_limit(self, method: str, retry_after: int = 1, times: int = 1) -> None:
        """The next ``times`` calls of ``method`` answer 429 with ``Retry-After: retry_after``."""
        self._rate_limits.setdefault(method, []).extend([retry_after] * times)

    def _handle(
        self, method: str, args: dict[str, Any], token: str | None
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        headers: dict[str, str] = {}
        pending = self._rate_limits.get(method)
        if pending:
            status, body = 429, {"ok": False, "error": "ratelimited"}
            headers["Retry-After"] = str(pending.pop(0))
        elif not token:
            status, body = 200, {"ok": False, "error": "not_authed"}
        elif token != self.token:
            status, body = 200, {"ok": False, "error": "invalid_auth"}
        else:
            handler: Callable[[dict[str, Any]], dict[str, Any]] | None = {
                "auth.test": self._auth_test,
                "chat.postMessage": self._post_message,
                "chat.update": self._update,
                "users.info": self._users_info,
                "conversations.members": self._members,
                "conversations.open": self._open,
            }.get(method)
            status, body = 200, (handler(args) if handler else {"ok": False, "error": "unknown_method"})
        with self._cond:
            self.calls.append(Call(method, args, token, status, body))
            self._cond.notify_all()
        return status, body, headers

    def _auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        return {
            "ok": True,
            "url": "https://sovra-test.slack.com/",
            "team": "Sovra Test",
            "user": "sovra",
            "team_id": TEAM_ID,
            "user_id": BOT_USER_ID,
            "bot_id": BOT_ID,
            "is_enterprise_install": False,
        }

    def _check_content(self, args: dict[str, Any]) -> str | None:
        text, blocks = args.get("text"), args.get("blocks")
        if not text and not blocks:
            return "no_text"
        if text and len(text) > MAX_TEXT:
            return "msg_too_long"
        if blocks is not None:
            if not isinstance(blocks, list) or len(blocks) > MAX_BLOCKS:
                return "invalid_blocks"
            for b in blocks:
                t = (b.get("text") or {}).get("text", "") if isinstance(b, dict) else ""
                if not isinstance(b, dict) or "type" not in b or len(t) > MAX_SECTION_TEXT:
                    return "invalid_blocks"
        return None

    def _message(self, args: dict[str, Any], ts: str) -> dict[str, Any]:
        msg: dict[str, Any] = {
            "type": "message",
            "user": BOT_USER_ID,
            "bot_id": BOT_ID,
            "app_id": "A0SOVRA01",
            "team": TEAM_ID,
            "text": args.get("text") or "",
            "ts": ts,
        }
        if args.get("blocks") is not None:
            msg["blocks"] = args["blocks"]
        if args.get("thread_ts"):
            msg["thread_ts"] = args["thread_ts"]
        return msg

    def _post_message(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = args.get("channel")
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        if problem := self._check_content(args):
            return {"ok": False, "error": problem}
        ts = f"{1_764_000_000 + next(self._ts)}.000100"
        msg = self._message(args, ts)
        self.messages[(channel, ts)] = msg
        return {"ok": True, "channel": channel, "ts": ts, "message": msg}

    def _update(self, args: dict[str, Any]) -> dict[str, Any]:
        channel, ts = args.get("channel"), args.get("ts")
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        old = self.messages.get((channel, ts or ""))
        if old is None:
            return {"ok": False, "error": "message_not_found"}
        if problem := self._check_content(args):
            return {"ok": False, "error": problem}
        msg = self._message(args, old["ts"])
        if "thread_ts" in old:
            msg["thread_ts"] = old["thread_ts"]
        msg["edited"] = {"user": BOT_USER_ID, "ts": f"{time.time():.6f}"}
        self.messages[(channel, old["ts"])] = msg
        return {"ok": True, "channel": channel, "ts": old["ts"], "text": msg["text"], "message": msg}

    def _users_info(self, args: dict[str, Any]) -> dict[str, Any]:
        u = self.users.get(args.get("user", ""))
        if u is None:
            return {"ok": False, "error": "user_not_found"}
        profile: dict[str, Any] = {"real_name": u.name, "display_name": u.name}
        if u.email:
            profile["email"] = u.email
        return {
            "ok": True,
            "user": {
                "id": u.id,
                "team_id": TEAM_ID,
                "name": u.name.lower().replace(" ", "."),
                "deleted": False,
                "real_name": u.name,
                "is_bot": u.is_bot,
                "profile": profile,
            },
        }

    def _members(self, args: dict[str, Any]) -> dict[str, Any]:
        members = self.channels.get(args.get("channel") or "")
        if members is None:
            return {"ok": False, "error": "channel_not_found"}
        limit = max(1, min(int(args.get("limit") or 100), 1000))
        start = int(args.get("cursor") or 0)  # Slack's cursors are opaque; an offset is one
        page = members[start : start + limit]
        following = str(start + limit) if start + limit < len(members) else ""
        return {"ok": True, "members": page, "response_metadata": {"next_cursor": following}}

    def _open(self, args: dict[str, Any]) -> dict[str, Any]:
        users = [u for u in str(args.get("users") or "").split(",") if u]
        if not users:
            return {"ok": False, "error": "users_list_not_supplied"}
        if len(users) > 1:
            return {"ok": True, "channel": {"id": "G0MPIM" + "".join(sorted(users))}}  # a group DM
        if not users[0].startswith("U") and not users[0].startswith("W"):
            return {"ok": False, "error": "user_not_found"}
        return {"ok": True, "channel": {"id": "D0" + users[0]}}

    def direct_messages(self, user: str) -> list[dict[str, Any]]:
        """The bot's messages in its direct message channel with ``user``, oldest first."""
        return sorted((m for (c, _), m in self.messages.items() if c == "D0" + user), key=lambda m: m["ts"])

    # -- for tests -------------------------------------------------------------------------------

    def wait_for(self, predicate: Callable[[FakeSlack], bool], timeout: float = 60) -> None:
        """Block until ``predicate(self)`` holds after some API call (or fail after ``timeout``)."""
        with self._cond:
            if not self._cond.wait_for(lambda: predicate(self), timeout=timeout):
                raise AssertionError(f"Slack fake: condition not met in {timeout} s; calls: {self.summary()}")

    def calls_of(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    def thread(self, channel: str, thread_ts: str) -> list[dict[str, Any]]:
        """The bot's current messages in a thread, oldest first."""
        return sorted(
            (m for (c, _), m in self.messages.items() if c == channel and m.get("thread_ts") == thread_ts),
            key=lambda m: m["ts"],
        )

    def summary(self) -> list[tuple[str, int, str]]:
        return [(c.method, c.status, str(c.response.get("error", "ok"))) for c in self.calls]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# -------------------------------------------------------------------------------------------------
# Slack -> app


def signed_headers(
    secret: str, body: bytes, timestamp: int | None = None, content_type: str = "application/json"
) -> dict[str, str]:
    """The headers Slack sends with a request: X-Slack-Request-Timestamp and X-Slack-Signature."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    base = b"v0:" + ts.encode() + b":" + body
    sig = "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return {"Content-Type": content_type, "X-Slack-Request-Timestamp": ts, "X-Slack-Signature": sig}


_event_ids = itertools.count(1)


def event_envelope(event: dict[str, Any], event_id: str | None = None) -> dict[str, Any]:
    """An Events API ``event_callback`` as Slack posts it."""
    return {
        "token": "deprecated-verification-token",
        "team_id": TEAM_ID,
        "api_app_id": "A0SOVRA01",
        "event": event,
        "type": "event_callback",
        "event_id": event_id or f"Ev0{next(_event_ids):08d}",
        "event_time": int(time.time()),
        "authorizations": [
            {"team_id": TEAM_ID, "user_id": BOT_USER_ID, "is_bot": True, "is_enterprise_install": False}
        ],
        "is_ext_shared_channel": False,
        "event_context": "4-eyJldCI6ImFwcF9tZW50aW9uIn0",
    }


def mention(
    user: str, text: str, channel: str = "C0GENERAL", ts: str | None = None, thread_ts: str | None = None
) -> dict[str, Any]:
    ev = {
        "type": "app_mention",
        "user": user,
        "text": f"<@{BOT_USER_ID}> {text}",
        "ts": ts or f"{time.time():.6f}",
        "channel": channel,
        "event_ts": ts or f"{time.time():.6f}",
    }
    if thread_ts:
        ev["thread_ts"] = thread_ts
    return ev


def direct_message(user: str, text: str, channel: str = "D0DIRECT1", ts: str | None = None) -> dict[str, Any]:
    ts = ts or f"{time.time():.6f}"
    return {
        "type": "message",
        "channel_type": "im",
        "user": user,
        "text": text,
        "ts": ts,
        "channel": channel,
        "event_ts": ts,
    }


def block_actions_body(user: str, action_id: str, value: str, message: dict[str, Any], channel: str) -> bytes:
    """What Slack posts when a button is clicked: form-encoded ``payload=<json>``."""
    from urllib.parse import urlencode

    payload = {
        "type": "block_actions",
        "user": {"id": user, "username": user.lower(), "team_id": TEAM_ID},
        "api_app_id": "A0SOVRA01",
        "token": "deprecated-verification-token",
        "container": {"type": "message", "message_ts": message["ts"], "channel_id": channel, "is_ephemeral": False},
        "trigger_id": "1234.5678.abcdef",
        "team": {"id": TEAM_ID, "domain": "sovra-test"},
        "channel": {"id": channel, "name": "general"},
        "message": message,
        "response_url": "https://hooks.slack.com/actions/T0SOVRA01/1/abc",
        "actions": [
            {
                "action_id": action_id,
                "block_id": "sovra_approval",
                "value": value,
                "type": "button",
                "action_ts": f"{time.time():.6f}",
            }
        ],
    }
    return urlencode({"payload": json.dumps(payload)}).encode()
