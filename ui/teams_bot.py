"""`sovra teams`: the Microsoft Teams bot, on the Microsoft 365 Agents SDK (the maintained successor
of the Bot Framework SDK; PyPI ``microsoft-agents-hosting-fastapi``).

The Bot Connector posts activities to ``POST /api/messages``. Each request's JWT is validated
(``teams_auth.BotConnectorTokenValidator``) before the SDK's ``CloudAdapter`` parses the activity and
runs the turn. A question is acknowledged at once (a typing indicator, then HTTP 202) and answered
when the run ends, as a reply to the user's message (``POST {serviceUrl}/v3/conversations/{id}/
activities/{activityId}``) carrying an Adaptive Card: the answer, numbered sources with links and
pages, the audit run id, and Approve/Reject actions when the run waits for a human decision.

Outside a personal chat (a group chat or a channel) an answer is posted in the conversation only when
every other member of its roster (``GET /v3/conversations/{id}/pagedmembers``, all pages, guests
included) maps to a Sovra user who may read every source it quotes; otherwise it goes to the asker
in a personal chat the bot opens (``POST /v3/conversations``) and the conversation gets a short note
(issue 17). An approval's resumed answer follows the same rule for the run's owner.

A redelivered activity (same conversation and activity id) is answered once: see
``bot_common.EventDedup``. The Teams user is ``from.aadObjectId`` (else ``from.id``), mapped to a
Sovra user by ``chat-identities.json`` (``"teams"`` section).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import quote

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from microsoft_agents.activity import (
    Activity,
    ActivityTypes,
    AdaptiveCardInvokeResponse,
    AdaptiveCardInvokeValue,
    Attachment,
    ChannelAccount,
    ConversationReference,
)
from microsoft_agents.hosting.core import ActivityHandler, AgentAuthConfiguration, TurnContext
from microsoft_agents.hosting.fastapi import CloudAdapter

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
from sovra.ui.teams_auth import (
    AuthFailure,
    BotConnectorTokenValidator,
    ClientCredentialsTokenProvider,
    SingleConnection,
)
from sovra.ui.teams_cards import (
    ACTION_KEY,
    CARD_CONTENT_TYPE,
    answer_card,
    approval_actions,
    approval_body,
    card,
    notice_card,
)

log = logging.getLogger(__name__)

PLATFORM = "teams"
MAX_ACTIVITY_BYTES = 256 * 1024
CONNECTOR_SCOPES = ["https://api.botframework.com/.default"]
ROSTER_PAGE = 500  # the connector's largest page
INVOKE_WAIT_S = 5.0  # an Action.Execute must be answered within Teams' invoke timeout


def card_activity(content: dict[str, Any], summary: str) -> Activity:
    return Activity(
        type=ActivityTypes.message,
        summary=summary[:300],
        attachments=[Attachment(content_type=CARD_CONTENT_TYPE, content=content)],
    )


class TeamsBot(ActivityHandler):
    def __init__(self, service: ChatService, adapter: CloudAdapter, app_id: str, provider: Any = None) -> None:
        self.service = service
        self.adapter = adapter
        self.app_id = app_id
        self.provider = provider  # tokens for the Bot Connector REST calls (roster, new chats)
        self._tasks: set[asyncio.Task[Any]] = set()
        # Called with (activity key, outcome) when a message was handled: logs, metrics, tests.
        self.on_done: Callable[[str, str], None] | None = None

    def _done(self, key: str, outcome: str) -> None:
        if self.on_done is not None:
            self.on_done(key, outcome)

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def user(self, account: ChannelAccount | None) -> User | None:
        if account is None:
            return None
        for key in (account.aad_object_id, account.id):
            if key and (user := self.service.user(PLATFORM, key)) is not None:
                return user
        return None

    @staticmethod
    def account_name(account: ChannelAccount | None) -> str:
        return (account.aad_object_id or account.id or "?") if account else "?"

    # -- questions -----------------------------------------------------------------------------

    async def on_message_activity(self, turn_context: TurnContext) -> None:  # type: ignore[override]
        a = turn_context.activity
        if isinstance(a.value, dict) and a.value.get(ACTION_KEY):  # Action.Submit from an older client
            reply = await self.decide(a, str(a.value[ACTION_KEY]), a.value)
            await turn_context.send_activity(card_activity(reply, "decision"))
            return
        key = f"{a.conversation.id}:{a.id}"
        if not self.service.dedup.first_time(PLATFORM, key):
            log.info("teams activity %s already taken", key)
            self._done(key, "duplicate")
            return
        question = (a.remove_recipient_mention() if a.recipient else a.text) or ""
        question = question.strip()
        user = self.user(a.from_property)
        refusal = None
        if user is None:
            refusal = unknown_user_text("Teams", self.account_name(a.from_property))
        elif not question:
            refusal = "Ask me a question about the documents you can access, e.g. How many days may I work from home?"
        elif len(question) > MAX_CHAT_CHARS:
            refusal = too_long_text(len(question))
        if refusal is not None or user is None:
            await turn_context.send_activity(refusal or "")
            self._done(key, "refused")
            return
        await turn_context.send_activity(Activity(type=ActivityTypes.typing))
        self._spawn(self._answer(a.get_conversation_reference(), a.id or "", key, user, question))

    async def _answer(self, ref: ConversationReference, reply_to: str, key: str, user: User, question: str) -> None:
        outcome = "answered"
        try:
            answer = await asyncio.to_thread(self.service.ask, user, question)
            parts = answer_parts(answer)
            content, summary = answer_card(parts), parts.text
            asker = ref.user.id if ref.user is not None else ""
            if not await self.shareable(ref, answer, owner=user, viewers=[]):
                sent = await self.send_private(ref, asker, card_activity(content, summary))
                note = (PRIVATE_NOTE if sent else WITHHELD_NOTE).format(who=user.name, run_id=answer.run_id)
                content, summary, outcome = notice_card(note, answer.run_id), note, "private" if sent else "withheld"
        except Exception as exc:
            log_failure("answering a Teams message failed", exc)
            content, summary, outcome = notice_card(error_text(exc)), error_text(exc), "failed"
        try:
            await self.reply(ref, reply_to, card_activity(content, summary))
        except Exception:
            log.exception("could not deliver the answer to Teams")
            outcome = "undelivered"
        self._done(key, outcome)

    # -- who may read an answer ----------------------------------------------------------------

    async def _connector(self, method: str, ref: ConversationReference, path: str, **kw: Any) -> Any:
        if self.provider is None:
            raise RuntimeError("no token provider for the Bot Connector")
        token = await self.provider.get_access_token("https://api.botframework.com", CONNECTOR_SCOPES)
        url = (ref.service_url or "").rstrip("/") + path
        async with httpx.AsyncClient(timeout=30) as http:
            resp = await http.request(method, url, headers={"Authorization": f"Bearer {token}"}, **kw)
        resp.raise_for_status()
        return resp.json()

    async def roster(self, ref: ConversationReference) -> list[dict[str, Any]]:
        """Every member of the conversation (TeamsChannelAccount objects), all pages."""
        conv = quote(ref.conversation.id, safe="")
        members: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            params: dict[str, Any] = {"pageSize": ROSTER_PAGE} | ({"continuationToken": token} if token else {})
            page = await self._connector("GET", ref, f"/v3/conversations/{conv}/pagedmembers", params=params)
            members += page.get("members") or []
            token = page.get("continuationToken")
            if not token:
                return members

    def member_user(self, m: dict[str, Any]) -> User | None:
        """The Sovra user of a roster member: by Entra object id, account id, then email/UPN."""
        for key in (m.get("aadObjectId"), m.get("id")):
            if key and (user := self.service.user(PLATFORM, str(key))) is not None:
                return user
        email = m.get("email") or m.get("userPrincipalName")
        return self.service.user(PLATFORM, str(m.get("id") or ""), email=email) if email else None

    async def shareable(self, ref: ConversationReference, answer: Any, owner: User, viewers: list[User]) -> bool:
        """May ``answer`` (``owner``'s) be shown in this conversation? A personal chat holds the
        clicking ``viewers`` besides the owner; a group chat or channel its whole roster, each of
        whom but the owner must be allowed to read every source. A roster that cannot be read: no."""
        if not (answer.citations or answer.evidence):
            return True
        if (ref.conversation.conversation_type or "personal") == "personal":
            readers: list[User | None] = [v for v in viewers if v.id != owner.id]
        else:
            try:
                members = await self.roster(ref)
            except Exception as exc:
                log.warning("reading the roster of %s failed (answer kept private): %s", ref.conversation.id, exc)
                return False
            readers = [u for u in (self.member_user(m) for m in members) if u is None or u.id != owner.id]
        if not readers:
            return True
        return await asyncio.to_thread(self.service.everyone_may_read, readers, answer)

    async def send_private(self, ref: ConversationReference, member_id: str, activity: Activity) -> bool:
        """Open (or reuse) the personal chat with ``member_id`` and post ``activity`` there."""
        if not member_id:
            return False
        tenant = ref.conversation.tenant_id
        try:
            conv = await self._connector(
                "POST",
                ref,
                "/v3/conversations",
                json={
                    "isGroup": False,
                    "bot": {"id": ref.agent.id if ref.agent else self.app_id},
                    "members": [{"id": member_id}],
                    "tenantId": tenant,
                    "channelData": {"tenant": {"id": tenant}},
                },
            )
            body = activity.model_dump(mode="json", by_alias=True, exclude_none=True)
            await self._connector("POST", ref, f"/v3/conversations/{quote(conv['id'], safe='')}/activities", json=body)
        except Exception as exc:
            log.warning("could not open a personal chat with %s: %s", member_id, exc)
            return False
        return True

    async def owner_account(self, ref: ConversationReference, owner: User) -> str:
        """The run owner's account id: from this conversation's roster, else a ``29:`` id mapped."""
        try:
            members = await self.roster(ref)
        except Exception:
            members = []
        for m in members:
            if (u := self.member_user(m)) is not None and u.id == owner.id:
                return str(m.get("id") or "")
        account = self.service.identities.account_of(PLATFORM, owner.id) or ""
        return account if account.startswith(("29:", "8:")) else ""

    async def reply(self, ref: ConversationReference, reply_to: str, activity: Activity) -> None:
        """Send ``activity`` as a reply to message ``reply_to``, after the turn has ended."""
        continuation = ref.get_continuation_activity()
        continuation.id = reply_to  # the SDK replies to the continuation's id

        async def send(ctx: TurnContext) -> None:
            await ctx.send_activity(activity)

        await self.adapter.continue_conversation(self.app_id, continuation, send)

    # -- approvals -----------------------------------------------------------------------------

    async def on_adaptive_card_invoke(  # type: ignore[override]
        self, turn_context: TurnContext, invoke_value: AdaptiveCardInvokeValue
    ) -> AdaptiveCardInvokeResponse:
        action = invoke_value.action
        verb = action.verb or str(action.data.get(ACTION_KEY, ""))
        content = await self.decide(turn_context.activity, verb, dict(action.data))
        return AdaptiveCardInvokeResponse(status_code=200, type=CARD_CONTENT_TYPE, value=content)

    async def decide(self, a: Activity, verb: str, data: dict[str, Any]) -> dict[str, Any]:
        """Resume a paused run with the clicking user's decision. Returns the card that replaces the
        approval card; the run's answer follows as a reply when the run ends."""
        run_id = str(data.get("run_id") or "")
        approver = self.user(a.from_property)
        if approver is None:
            return notice_card(unknown_user_text("Teams", self.account_name(a.from_property)))
        if verb not in ("approve", "reject") or not run_id:
            return notice_card("Sorry, I don't know this action.")
        approved = verb == "approve"
        reason = str(data.get("reason") or "").strip()
        task = asyncio.ensure_future(asyncio.to_thread(self.service.resume, run_id, approver, approved, reason))
        done, _ = await asyncio.wait({task}, timeout=INVOKE_WAIT_S)
        if task in done and task.exception() is not None:
            exc = task.exception()
            pending = self.service.runtime.pending_approval(run_id)
            body = [{"type": "TextBlock", "text": error_text(exc), "wrap": True, "color": "Attention"}]
            if pending is None:
                return card(body)
            return card(body + approval_body(pending), approval_actions(run_id))  # still waiting: keep buttons
        ref = a.get_conversation_reference()
        self._spawn(self._after_decision(task, ref, a.reply_to_id or a.id or "", run_id, approver))
        verdict = "Approved" if approved else "Rejected"
        why = f": {reason}" if reason else ""
        return notice_card(f"{verdict} by {approver.name}{why}. The run continues; its answer follows.", run_id)

    async def _after_decision(
        self, task: asyncio.Future[Any], ref: ConversationReference, reply_to: str, run_id: str, approver: User
    ) -> None:
        try:
            answer = await task
            parts = answer_parts(answer)
            activity = card_activity(answer_card(parts), parts.text)
            outcome = "answered"
            # The resumed answer is the owner's: here only if everyone else here may read it.
            owner = await asyncio.to_thread(self.service.runtime.services.directory.get, answer.user)
            if not await self.shareable(ref, answer, owner=owner, viewers=[approver]):
                sent = await self.send_private(ref, await self.owner_account(ref, owner), activity)
                note = (PRIVATE_NOTE if sent else WITHHELD_NOTE).format(who=owner.name, run_id=answer.run_id)
                activity, outcome = card_activity(notice_card(note, run_id), note), "private" if sent else "withheld"
        except Exception as exc:
            log_failure(f"resuming run {run_id} failed", exc)
            activity, outcome = card_activity(notice_card(error_text(exc), run_id), error_text(exc)), "failed"
        try:
            await self.reply(ref, reply_to, activity)
        except Exception:
            log.exception("could not deliver the answer to Teams")
            outcome = "undelivered"
        self._done(f"decision:{run_id}", outcome)

    async def drain(self) -> None:
        """Wait for answers still being worked on (shutdown)."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


def _token_url(settings: Settings) -> str:
    if settings.teams_token_url:
        return settings.teams_token_url
    tenant = settings.teams_tenant_id or "botframework.com"
    return f"https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token"


def create_app(settings: Settings | None = None, *, service: ChatService | None = None) -> FastAPI:
    """``POST /api/messages`` (the bot endpoint) and ``GET /health``."""
    from sovra.ui.api import BodyLimit

    settings = settings or Settings()
    if not settings.teams_app_id or not settings.teams_app_password:
        raise ConfigError(
            "SOVRA_TEAMS_APP_ID and SOVRA_TEAMS_APP_PASSWORD must be set",
            hint="the bot's Entra app registration: its client id and a client secret",
        )
    validator = BotConnectorTokenValidator(
        settings.teams_app_id, settings.teams_openid_metadata_url, settings.teams_token_issuers
    )
    config = AgentAuthConfiguration(
        client_id=settings.teams_app_id,
        tenant_id=settings.teams_tenant_id,
        client_secret=settings.teams_app_password,
    )
    provider = ClientCredentialsTokenProvider(config, _token_url(settings), settings.teams_app_password)
    adapter = CloudAdapter(connection_manager=SingleConnection(provider))

    async def on_turn_error(context: TurnContext, error: Exception) -> None:
        # The SDK's default sends the exception text to the user; log it and say sorry instead.
        log.error("Teams turn failed", exc_info=error)
        await context.send_activity(error_text(error))

    adapter.on_turn_error = on_turn_error
    service = service or ChatService(settings, interface="teams")
    bot = TeamsBot(service, adapter, settings.teams_app_id, provider)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await bot.drain()
            await validator.aclose()
            service.close()

    api = FastAPI(title="Sovra Teams bot", lifespan=lifespan, openapi_url=None)
    api.add_middleware(BodyLimit, limit=MAX_ACTIVITY_BYTES)
    api.state.bot = bot
    api.state.service = service

    @api.post("/api/messages")
    async def messages(request: Request) -> Response:
        raw = await request.body()
        try:
            activity = json.loads(raw)
        except ValueError:
            activity = None
        if not isinstance(activity, dict):  # says nothing a caller could use; the token is checked next
            return JSONResponse({"error": "the body is not a JSON activity"}, status_code=400)
        try:
            claims = await validator.validate(request.headers.get("authorization"), activity)
        except AuthFailure as exc:
            log.warning("refused a Teams request: %s", exc.message)
            return JSONResponse({"error": "unauthorized"}, status_code=401, headers={"WWW-Authenticate": "Bearer"})
        request.state.claims_identity = claims
        response = await adapter.process(request, bot)
        return response or Response(status_code=202)

    @api.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return api
