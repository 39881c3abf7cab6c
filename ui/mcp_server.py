"""`sovra mcp`: Sovra's knowledge as a Model Context Protocol server, for IDEs, desktop assistants and
other teams' agents (official MCP Python SDK, ``MCPServer``).

Tools: ``search`` (ACL-filtered hybrid search), ``fetch_passage`` (a cited passage by chunk id),
``ask_agent`` (a named agent answers with citations), ``list_agents``. Resources: the documents the
caller may read, ``sovra://documents/{doc_id}`` (listed per caller).

Who is calling: over streamable HTTP, the ``Authorization: Bearer`` token of every request, checked
exactly as the HTTP API checks it (:class:`sovra.ui.api_auth.Authenticator`: static tokens of
``SOVRA_API_TOKENS_FILE``, or OIDC JWTs with the same group rule); a request without a valid token is
answered 401 before it reaches MCP. Over stdio, the token given to the process (``SOVRA_MCP_TOKEN``),
checked once at start. Nothing in a tool's arguments names the user.

Every call is a run in the audit log with interface ``mcp``, like a question from any other face
(:mod:`sovra.tools.direct`); ``ask_agent`` is the agent's own run. A tool with side effects runs only
inside an agent, so it pauses for approval: ``ask_agent`` then answers ``awaiting_approval`` with the
pending action, which was not executed (decide it with ``sovra approve`` or the API, as for any run).
"""

from __future__ import annotations

import contextvars
import json
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from typing import Annotated, Any
from urllib.parse import quote

import anyio
from mcp.server.mcpserver import Context, MCPServer, ResourceSecurity
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import ListResourcesResult, Resource
from pydantic import Field

from sovra.config import Settings
from sovra.errors import ConfigError, SovraError
from sovra.identity import ActingUserDirectory, Directory, User

log = logging.getLogger(__name__)

INTERFACE = "mcp"
TOKEN_ENV = "SOVRA_MCP_TOKEN"
USER_KEY = "sovra.user"  # where the HTTP middleware leaves the caller in the ASGI scope
DOC_URI = "sovra://documents/{doc_id}"

_acting: contextvars.ContextVar[User | None] = contextvars.ContextVar("sovra_mcp_user", default=None)


class McpState:
    """One runtime per server process; calls take turns with it (the embedded index, the SQLite stores
    and a bundled model are single-process resources), as in the HTTP API and the chat."""

    def __init__(self, settings: Settings, runtime_factory: Callable[..., Any] | None = None) -> None:
        from sovra.runtime import Runtime

        self.settings = settings
        self.runtime = (runtime_factory or Runtime)(settings)
        base = self.runtime.services.directory if settings.resolved_users_file.is_file() else Directory({})
        self.directory = ActingUserDirectory(base, _acting)
        self.runtime.services.directory = self.directory
        self.lock = threading.Lock()
        self.stdio_user: User | None = None
        # The HTTP API's bounds (SOVRA_API_QUEUE_MAX, SOVRA_API_QUEUE_PER_USER): one caller cannot queue
        # up calls that starve everyone else; a refused call says when to retry.
        from sovra.ui.api_state import Admission

        self.admission = Admission(settings.api_queue_max, settings.api_queue_per_user, settings.api_retry_after_s)

    def close(self) -> None:
        audit = self.runtime.services.__dict__.pop("audit", None)  # Services.close leaves the audit log open
        self.runtime.close()
        if audit is not None:
            audit.close()

    async def run(self, user: User, fn: Callable[[], Any]) -> Any:
        """``fn()`` in a worker thread, holding the runtime, with ``user`` as the acting user. Raises
        ``ApiError`` (a ``SovraError``: a tool error for the caller) when ``user`` already holds as many
        calls as allowed, or the server as many as it queues."""
        self.admission.enter(user.id)
        try:
            return await self._run(user, fn)
        finally:
            self.admission.leave(user.id)

    async def _run(self, user: User, fn: Callable[[], Any]) -> Any:

        def call() -> Any:
            token = _acting.set(user)
            try:
                with self.lock:
                    return fn()
            except SovraError:
                raise
            except Exception:
                log.exception("MCP call of %s failed", user.id)  # a bug, or a store that failed: say which
                raise
            finally:
                _acting.reset(token)

        return await anyio.to_thread.run_sync(call)


def _tool_error(exc: SovraError) -> Exception:
    return ToolError(exc.message + (f" (hint: {exc.hint})" if exc.hint else ""))


def caller(state: McpState, ctx: Any) -> User:
    """The authenticated caller: the HTTP request's, else the stdio process's."""
    request = None
    try:
        request = ctx.request_context.request
    except (AttributeError, ValueError):
        request = None
    scope = getattr(request, "scope", None)
    user = scope.get(USER_KEY) if isinstance(scope, dict) else None
    user = user or state.stdio_user
    if user is None:
        raise ToolError("not authenticated: send Authorization: Bearer <token> (or start stdio with SOVRA_MCP_TOKEN)")
    return user  # type: ignore[no-any-return]


def _citation(c: Any) -> dict[str, Any]:
    d = asdict(c)
    d["rows"] = list(d.get("rows") or ())
    return d


def build_server(state: McpState) -> Any:
    """The MCPServer with Sovra's tools and resources, bound to ``state``."""
    from sovra.tools.direct import DirectResult, call_tool, search_summary
    from sovra.tools.passages import list_documents, read_document, read_passage
    from sovra.tools.search import search_documents

    class SovraMCP(MCPServer[Any]):
        async def _handle_list_resources(self, ctx: Any, params: Any) -> ListResourcesResult:
            # The documents are the caller's: the list is computed per request, not registered once.
            user = caller(state, _Ctx(ctx))
            listing = (await _call(user, list_documents, {})).result
            return ListResourcesResult(
                resources=[
                    Resource(
                        uri=DOC_URI.format(doc_id=quote(d.doc_id, safe="")),
                        name=d.doc_id,
                        title=d.title,
                        description=f"{d.doc_type} from {d.source}, {d.passages} passage(s): {d.url}",
                        mime_type="text/plain",
                    )
                    for d in listing.documents
                ]
            )

    server = SovraMCP(
        "sovra",
        title="Sovra",
        instructions="Search and read the documents you may read, with citations; ask Sovra's agents. "
        "Every call is recorded in Sovra's audit log under your identity.",
        log_level="WARNING",  # the SDK's INFO lines would repeat every request (and tool error) on stderr
    )

    async def _call(user: User, t: Any, args: Any, **kw: Any) -> DirectResult:
        """``t`` as one audited run of ``user`` (see sovra.tools.direct); errors as MCP tool errors."""
        services = state.runtime.services
        try:
            return await state.run(user, lambda: call_tool(t, args, user, services, interface=INTERFACE, **kw))  # type: ignore[no-any-return]
        except SovraError as exc:
            raise _tool_error(exc) from exc

    @server.tool()
    async def search(
        query: Annotated[str, Field(description="What to look for, in natural language or keywords.")],
        ctx: Context,
        limit: Annotated[int, Field(ge=1, le=50)] = 6,
        sources: Annotated[list[str] | None, Field(description="Only these sources.")] = None,
        doc_types: Annotated[list[str] | None, Field(description="Only these document types.")] = None,
    ) -> dict[str, Any]:
        """Search the documents you may read (hybrid retrieval, filtered by your permissions). Returns
        passages with their chunk id, document, page, link and score; cite them by chunk id."""
        user = caller(state, ctx)
        args = {"query": query, "limit": limit, "sources": sources or [], "doc_types": doc_types or []}
        done = await _call(user, search_documents, args, summarize=search_summary, found=lambda r: bool(r.hits))
        hits = [
            {k: v for k, v in h.model_dump(mode="json").items() if k not in ("char_start", "char_end", "metadata")}
            for h in done.result.hits
        ]
        return {"run_id": done.run_id, "query": done.result.query, "hits": hits}

    @server.tool()
    async def fetch_passage(
        chunk_id: Annotated[str, Field(description="A chunk id from a search hit or a citation.")], ctx: Context
    ) -> dict[str, Any]:
        """Read one cited passage by its chunk id, if you may read its document."""
        done = await _call(caller(state, ctx), read_passage, {"chunk_id": chunk_id})
        return {"run_id": done.run_id, **done.result.model_dump(mode="json")}

    @server.tool()
    async def ask_agent(
        question: Annotated[str, Field(description="The question, as you would ask a colleague.")],
        ctx: Context,
        agent: Annotated[str, Field(description="The agent's name (see list_agents).")] = "assistant",
        thread_id: Annotated[str | None, Field(max_length=128, description="Continue your earlier thread.")] = None,
    ) -> dict[str, Any]:
        """Ask a named Sovra agent. The answer comes with numbered citations. If the agent wants to do
        something that needs a person's approval, the run pauses: you get status awaiting_approval and
        the pending action, which has not been carried out."""
        user = caller(state, ctx)
        rt = state.runtime

        def ask() -> Any:
            from sovra.agents import get_agent

            return rt.ask(get_agent(agent, state.settings), question, user.id, INTERFACE, thread_id=thread_id)

        try:
            answer = await state.run(user, ask)
        except SovraError as exc:
            raise _tool_error(exc) from exc
        return {
            "run_id": answer.run_id,
            "agent": agent,
            "status": answer.status,
            "answer": answer.text,
            "citations": [_citation(c) for c in answer.citations],
            "notes": list(answer.notes),
            "thread_id": answer.thread_id,
            "approval": asdict(answer.approval) if answer.approval is not None else None,
        }

    @server.tool()
    async def list_agents(ctx: Context) -> dict[str, Any]:
        """The agents you can ask, with what each is for."""
        user = caller(state, ctx)
        from sovra.agents import list_agents as registered
        from sovra.recorder import RunRecorder

        def listed() -> list[dict[str, str]]:
            audit = state.runtime.services.audit
            with RunRecorder(audit, user_id=user.id, groups=list(user.groups), interface=INTERFACE,
                             question="list_agents") as rec:  # fmt: skip
                agents = [{"name": n, "description": d} for n, d in registered(state.settings)]
                rec.finish(answer={"status": "answered", "agents": [a["name"] for a in agents]})
            return agents

        try:
            return {"agents": await state.run(user, listed)}
        except SovraError as exc:
            raise _tool_error(exc) from exc

    @server.resource(
        DOC_URI, name="document", mime_type="text/plain", security=ResourceSecurity(exempt_params={"doc_id"})
    )
    async def document(doc_id: str, ctx: Context) -> str:
        """A document you may read: its indexed text."""
        user = caller(state, ctx)
        doc = (await _call(user, read_document, {"doc_id": doc_id})).result
        return f"{doc.title}\n{doc.url}\n\n{doc.text}"

    return server


class _Ctx:
    """Adapts a low-level request context to what :func:`caller` reads."""

    def __init__(self, request_context: Any) -> None:
        self.request_context = request_context


# ---------------------------------------------------------------------------------------------
# Streamable HTTP: bearer authentication in front of the MCP app


class BearerAuth:
    """ASGI middleware: every HTTP request needs a valid bearer token (as the HTTP API checks it);
    the caller goes into the scope for the tools. ``/health`` answers without a token."""

    def __init__(self, app: Any, authenticator: Any, directory: Directory) -> None:
        self.app = app
        self.authenticator = authenticator
        self.directory = directory

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"] == "/health":
            await _json(send, 200, {"status": "ok"})
            return
        from sovra.ui.api_auth import ApiError

        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        kind, _, presented = headers.get("authorization", "").partition(" ")
        try:
            if kind.lower() != "bearer" or not presented.strip():
                raise ApiError(401, "missing bearer token", hint="send Authorization: Bearer <token>")
            user = await self.authenticator.authenticate(presented.strip(), self.directory)
        except ApiError as exc:
            extra = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else {}
            await _json(send, exc.status, {"error": exc.message, "hint": exc.hint}, {**exc.headers, **extra})
            return
        scope[USER_KEY] = user
        await self.app(scope, receive, send)


async def _json(send: Any, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
    data = json.dumps(body).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": data})


def http_app(state: McpState, tokens: Any = None, *, host: str = "127.0.0.1", path: str = "/mcp") -> Any:
    """The streamable-HTTP ASGI app (MCP at ``path``) behind bearer authentication."""
    from sovra.ui.api_auth import Authenticator

    server = build_server(state)
    app = server.streamable_http_app(streamable_http_path=path, stateless_http=True, json_response=True, host=host)
    return BearerAuth(app, Authenticator(state.settings, tokens), state.directory.base)


@contextmanager
def opened(settings: Settings, runtime_factory: Callable[..., Any] | None = None) -> Iterator[McpState]:
    state = McpState(settings, runtime_factory)
    try:
        yield state
    finally:
        state.close()


async def stdio_user(state: McpState, token: str | None) -> User:
    """The stdio caller: the token given to the process, checked like an API token."""
    from sovra.ui.api_auth import ApiError, Authenticator

    if not token:
        raise ConfigError(f"stdio needs the caller's token in {TOKEN_ENV}", hint="an API token or an OIDC bearer token")
    try:
        return await Authenticator(state.settings).authenticate(token.strip(), state.directory.base)  # type: ignore[no-any-return]
    except ApiError as exc:
        raise ConfigError(f"the {TOKEN_ENV} token is refused: {exc.message}", hint=exc.hint) from exc
