"""`sovra slack`: the Slack bot. Mention it in a channel or write to it directly; it answers in the
thread with numbered sources and the audit run id, and shows Approve/Reject buttons when a run waits
for a human decision.

A slack-bolt app, served over HTTP (Events API: ``POST /slack/events``, signatures checked by Bolt
against ``SOVRA_SLACK_SIGNING_SECRET``) or over Socket Mode (``SOVRA_SLACK_APP_TOKEN``). Bolt
acknowledges an event before its listener runs, and the listener runs in Bolt's worker threads, so
Slack gets its 200 within its 3 seconds however long the answer takes: the bot first posts
"Looking into it..." in the thread, then replaces it with the answer (``chat.update``).

Slack resends an event it thinks was lost (``X-Slack-Retry-Num``); each message is answered once,
remembered in ``<data_dir>/chat-events.sqlite`` (see ``bot_common.EventDedup``).
"""

from __future__ import annotations

import html
import logging
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
from fastapi import FastAPI, Request
from fastapi.responses import Response
from slack_bolt import App
from slack_bolt.adapter.starlette.handler import to_bolt_request, to_starlette_response
from slack_bolt.error import BoltError
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler

from sovra.config import Settings
from sovra.errors import ConfigError
from sovra.identity import User
from sovra.ui.bot_common import (
    MAX_CHAT_CHARS,
    PRIVATE_NOTE,
    WITHHELD_NOTE,
    ChatService,
    answer_parts,
    error_text,
    log_failure,
    too_long_text,
    unknown_user_text,
)
from sovra.ui.slack_blocks import (
    APPROVE_ACTION,
    REJECT_ACTION,
    answer_blocks,
    decided_blocks,
    escape,
    fallback_text,
)

log = logging.getLogger(__name__)

PLATFORM = "slack"
MAX_EVENT_BYTES = 256 * 1024  # Slack's own message limit is 40,000 characters
WORKING = "Looking into it..."
_MENTION = re.compile(r"<@[A-Z0-9]+(?:\|[^>]*)?>")
_LINK = re.compile(r"<((?:https?|mailto):[^|>]+)(?:\|([^>]*))?>")


def question_text(raw: str) -> str:
    """The question in a Slack message: mentions removed, links as their label, entities decoded."""
    text = _MENTION.sub(" ", raw)
    text = _LINK.sub(lambda m: m.group(2) or m.group(1), text)
    return html.unescape(text).strip()


def web_client(settings: Settings) -> WebClient:
    if not settings.slack_bot_token:
        raise ConfigError("SOVRA_SLACK_BOT_TOKEN is not set", hint="the bot token starts with xoxb-")
    client = WebClient(token=settings.slack_bot_token, base_url=settings.slack_api_url, timeout=30)
    # Slack answers 429 with Retry-After when a method's rate limit is hit; wait and retry.
    client.retry_handlers.extend([RateLimitErrorRetryHandler(max_retry_count=3), ConnectionErrorRetryHandler()])
    return client


class SlackBot:
    """The listeners: what to do with a mention, a direct message or a button click."""

    def __init__(self, service: ChatService) -> None:
        self.service = service
        # Called with (message key, outcome) when a message was handled: logs, metrics, tests.
        self.on_done: Callable[[str, str], None] | None = None
        self._bot_user_id: str | None = None

    # -- who may read an answer ----------------------------------------------------------------

    def bot_user_id(self, client: WebClient) -> str | None:
        if self._bot_user_id is None:
            try:
                self._bot_user_id = client.auth_test().get("user_id")
            except SlackApiError as exc:
                log.warning("auth.test failed: %s", exc.response.get("error"))
        return self._bot_user_id

    def channel_readers(self, client: WebClient, channel: str, skip: set[str]) -> list[User | None] | None:
        """Every current member of ``channel`` but ``skip`` and the bot, as Sovra users (``None``
        for a member nobody mapped: a guest, an external or another app's account); ``None`` when
        the members cannot be listed (``conversations.members``, paginated)."""
        members: list[str] = []
        cursor = None
        try:
            while True:
                page = client.conversations_members(channel=channel, limit=200, cursor=cursor)
                members += page.get("members") or []
                cursor = (page.get("response_metadata") or {}).get("next_cursor")
                if not cursor:
                    break
        except SlackApiError as exc:
            log.warning("conversations.members for %s failed: %s", channel, exc.response.get("error"))
            return None
        skip = skip | {self.bot_user_id(client) or ""}
        return [self.resolve(client, m) for m in members if m not in skip]

    def shareable(self, client: WebClient, channel: str, answer: Any, skip: set[str]) -> bool:
        """May ``answer`` be shown in ``channel``? A direct message is the asker's own; elsewhere
        every other current member must be allowed to read every source it quotes."""
        if channel.startswith("D") or not (answer.citations or answer.evidence):
            return True
        readers = self.channel_readers(client, channel, skip)
        return readers is not None and self.service.everyone_may_read(readers, answer)

    def send_private(self, client: WebClient, slack_user: str | None, parts: Any) -> bool:
        """The answer in a direct message to ``slack_user`` (``conversations.open``)."""
        if not slack_user:
            return False
        try:
            im = client.conversations_open(users=slack_user)
            client.chat_postMessage(channel=im["channel"]["id"], text=fallback_text(parts), blocks=answer_blocks(parts))
        except SlackApiError as exc:
            log.warning("direct message to %s failed: %s", slack_user, exc.response.get("error"))
            return False
        return True

    # -- identity ------------------------------------------------------------------------------

    def resolve(self, client: WebClient, slack_user: str) -> User | None:
        """The Sovra user of a Slack account: the mapping file, else the account's verified email
        (``users.info``, scope ``users:read.email``) looked up in the mapping and the directory."""
        user = self.service.user(PLATFORM, slack_user)
        if user is not None or self.service.identities.knows_account(PLATFORM, slack_user):
            return user
        try:
            info = client.users_info(user=slack_user)
        except SlackApiError as exc:
            log.warning("users.info for %s failed: %s", slack_user, exc.response.get("error"))
            return None
        profile = (info.get("user") or {}).get("profile") or {}
        email = profile.get("email")
        if not email or (info.get("user") or {}).get("is_bot"):
            return None
        return self.service.user(PLATFORM, slack_user, email=email)

    # -- questions -----------------------------------------------------------------------------

    def on_message(self, body: dict[str, Any], event: dict[str, Any], client: WebClient) -> str:
        """A mention (``app_mention``) or a direct message (``message`` with channel_type ``im``).
        Returns what was done ("answered", "private" (sent to the asker alone), "withheld", "duplicate",
        "ignored", "refused", "failed")."""
        outcome = "failed"
        try:
            outcome = self._answer(body, event, client)
        finally:
            if self.on_done is not None:
                self.on_done(f"{event.get('channel')}:{event.get('ts')}", outcome)
        return outcome

    def _answer(self, body: dict[str, Any], event: dict[str, Any], client: WebClient) -> str:
        if event.get("type") == "message" and event.get("channel_type") != "im":
            return "ignored"  # channel messages reach the bot as app_mention
        if event.get("bot_id") or event.get("subtype") or not event.get("user"):
            return "ignored"  # the bot's own replies, edits, joins...
        channel, ts = event["channel"], event["ts"]
        # One key per message, not per delivery: a retried event and a message that arrives as
        # both app_mention and message.im are answered once.
        if not self.service.dedup.first_time(PLATFORM, f"{channel}:{ts}"):
            log.info("slack event %s (retry %s) already taken", body.get("event_id"), body.get("retry_num", "-"))
            return "duplicate"
        thread_ts = event.get("thread_ts") or ts
        slack_user = event["user"]

        def say(text: str) -> str:
            client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=text)
            return "refused"

        question = question_text(event.get("text") or "")
        user = self.resolve(client, slack_user)
        if user is None:
            return say(unknown_user_text("Slack", slack_user))
        if not question:
            return say(
                "Ask me a question about the documents you can access, e.g. _How many days may I work from home?_"
            )
        if len(question) > MAX_CHAT_CHARS:
            return say(too_long_text(len(question)))
        placeholder = client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=WORKING)
        try:
            answer = self.service.ask(user, question)
        except Exception as exc:
            log_failure("answering a Slack message failed", exc)
            client.chat_update(channel=channel, ts=placeholder["ts"], text=escape(error_text(exc)), blocks=[])
            return "failed"
        parts = answer_parts(answer)
        if self.shareable(client, channel, answer, {slack_user}):
            client.chat_update(
                channel=channel, ts=placeholder["ts"], text=fallback_text(parts), blocks=answer_blocks(parts)
            )
            return "answered"
        sent = self.send_private(client, slack_user, parts)
        note = (PRIVATE_NOTE if sent else WITHHELD_NOTE).format(who=f"<@{slack_user}>", run_id=answer.run_id)
        client.chat_update(channel=channel, ts=placeholder["ts"], text=note, blocks=[])
        return "private" if sent else "withheld"

    # -- approvals -----------------------------------------------------------------------------

    def on_decision(self, body: dict[str, Any], client: WebClient, approved: bool) -> None:
        slack_user = body["user"]["id"]
        run_id = body["actions"][0]["value"]
        channel = body["channel"]["id"]
        message = body.get("message") or {}
        thread_ts = message.get("thread_ts") or message.get("ts")

        def say(text: str) -> None:
            client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=text)

        approver = self.resolve(client, slack_user)
        if approver is None:
            say(unknown_user_text("Slack", slack_user))
            return
        try:
            answer = self.service.resume(run_id, approver, approved, reason="decided in Slack")
        except Exception as exc:
            log_failure(f"resuming run {run_id} failed", exc)
            say(f"<@{slack_user}> " + escape(error_text(exc)))
            return
        if message.get("ts"):
            blocks = decided_blocks(message.get("blocks") or [], slack_user, approved)
            client.chat_update(channel=channel, ts=message["ts"], text=message.get("text") or "decided", blocks=blocks)
        # The resumed answer is the run owner's: shown in the channel only when every member but
        # the owner (the approver too) may read its sources, else sent to the owner alone.
        parts = answer_parts(answer)
        owner_account = self.service.identities.account_of(PLATFORM, answer.user)
        if self.shareable(client, channel, answer, {owner_account or ""}):
            client.chat_postMessage(
                channel=channel, thread_ts=thread_ts, text=fallback_text(parts), blocks=answer_blocks(parts)
            )
            return
        sent = self.send_private(client, owner_account, parts)
        who = f"<@{owner_account}>" if owner_account else answer.user
        say((PRIVATE_NOTE if sent else WITHHELD_NOTE).format(who=who, run_id=answer.run_id))


def create_bolt_app(service: ChatService, *, client: WebClient | None = None, socket_mode: bool = False) -> App:
    """The Bolt app with Sovra's listeners. HTTP mode requires the signing secret."""
    settings = service.settings
    if not socket_mode and not settings.slack_signing_secret:
        raise ConfigError(
            "SOVRA_SLACK_SIGNING_SECRET is not set",
            hint="HTTP events mode verifies every request's signature; use Socket Mode (--socket-mode) without one",
        )
    client = client or web_client(settings)
    try:  # Bolt checks the token with auth.test here: an unreachable API or a bad token is a setup error
        app = App(
            client=client,
            signing_secret=settings.slack_signing_secret or "",
            request_verification_enabled=not socket_mode,
            process_before_response=False,
            logger=logging.getLogger("sovra.ui.slack_bot.bolt"),
        )
    except (BoltError, SlackApiError, OSError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise ConfigError(
            f"the Slack bot could not check its token at {settings.slack_api_url}: {reason}",
            hint="check SOVRA_SLACK_BOT_TOKEN and that this host reaches Slack (SOVRA_SLACK_API_URL for a proxy)",
        ) from exc
    bot = SlackBot(service)
    app.sovra_bot = bot  # type: ignore[attr-defined]  # for observers (on_done)

    @app.event("app_mention")
    def _mention(body: dict[str, Any], event: dict[str, Any], client: WebClient) -> None:
        bot.on_message(body, event, client)

    @app.event("message")
    def _message(body: dict[str, Any], event: dict[str, Any], client: WebClient) -> None:
        bot.on_message(body, event, client)

    @app.action(APPROVE_ACTION)
    def _approve(ack: Any, body: dict[str, Any], client: WebClient) -> None:
        ack()
        bot.on_decision(body, client, approved=True)

    @app.action(REJECT_ACTION)
    def _reject(ack: Any, body: dict[str, Any], client: WebClient) -> None:
        ack()
        bot.on_decision(body, client, approved=False)

    return app


def create_http_app(
    settings: Settings | None = None,
    *,
    service: ChatService | None = None,
    client: WebClient | None = None,
) -> FastAPI:
    """``POST /slack/events`` (Events API and interactivity) and ``GET /health``."""
    from sovra.ui.api import BodyLimit

    settings = settings or Settings()
    service = service or ChatService(settings, interface="slack")
    bolt = create_bolt_app(service, client=client)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            service.close()

    api = FastAPI(title="Sovra Slack bot", lifespan=lifespan, openapi_url=None)
    api.add_middleware(BodyLimit, limit=MAX_EVENT_BYTES)
    api.state.bolt = bolt
    api.state.service = service

    @api.post("/slack/events")
    async def events(request: Request) -> Response:
        body = await request.body()
        # dispatch may call auth.test once (Bolt's authorization): keep it off the event loop.
        bolt_response = await anyio.to_thread.run_sync(bolt.dispatch, to_bolt_request(request, body))
        return to_starlette_response(bolt_response)

    @api.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return api


def socket_handler(settings: Settings, service: ChatService | None = None) -> Any:
    """A Socket Mode handler for the bot (``.start()`` blocks, ``.connect()`` does not)."""
    from slack_bolt.adapter.socket_mode import SocketModeHandler

    if not settings.slack_app_token:
        raise ConfigError("SOVRA_SLACK_APP_TOKEN is not set", hint="Socket Mode needs an app-level token (xapp-...)")
    service = service or ChatService(settings, interface="slack")
    return SocketModeHandler(create_bolt_app(service, socket_mode=True), app_token=settings.slack_app_token)
