"""`sovra serve`: the HTTP API. Thin, like the CLI: authenticate, call the runtime, render JSON.

Endpoints: ``GET /health`` (liveness, no auth), ``GET /ready`` (the index exists and was built with
the configured embedding model), ``POST /v1/ask`` and ``GET /v1/runs/{run_id}`` (bearer token).

Identity comes only from the bearer token; a request body never names the asking user. Tokens are
static development tokens read from a JSON file ``{"<token>": "<user id>"}`` named by the
``SOVRA_API_TOKENS_FILE`` environment variable (or passed to :func:`create_app`). OIDC/JWT
validation is not implemented yet: do not expose this server beyond a trusted network.

One runtime per app, one run at a time: the embedded qdrant-edge index, the SQLite audit log and
the bundled llama.cpp model are single-process, single-writer resources, so requests run the
synchronous runtime in a worker thread behind one lock. Waiting requests wait on the event loop
(an async lock), not in a thread, so they hold no worker thread while queued.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any, TypeVar

import anyio
import typer
from fastapi import Depends, FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sovra.config import Settings
from sovra.errors import (
    ConfigError,
    IndexMissingError,
    InputError,
    ModelOutputError,
    ModelUnavailableError,
    SovraError,
)
from sovra.identity import User
from sovra.runtime import Runtime

log = logging.getLogger(__name__)

TOKENS_ENV = "SOVRA_API_TOKENS_FILE"
MAX_BODY_BYTES = 64 * 1024
MIN_TOKEN_CHARS = 16  # also rules out the empty token, which a blank header could otherwise match
T = TypeVar("T")


class ApiError(SovraError):
    """An error with an HTTP status of its own (authentication, access, unknown run)."""

    def __init__(self, status: int, message: str, hint: str | None = None, headers: dict[str, str] | None = None):
        super().__init__(message, hint)
        self.status = status
        self.headers = headers or {}


# ---------------------------------------------------------------------------------------------
# Request and response shapes


class AskRequest(BaseModel):
    # Forbidding extra fields makes a client that tries to pick the user ("user": "bob") fail
    # loudly with 422 instead of silently asking as the token's user.
    model_config = ConfigDict(extra="forbid")

    question: str
    agent: str = "assistant"


def _error_body(message: str, hint: str | None) -> dict[str, Any]:
    return {"error": message, "hint": hint}


def _status_for(exc: SovraError) -> int:
    if isinstance(exc, ApiError):
        return exc.status
    if isinstance(exc, InputError):
        return 400
    if isinstance(exc, ModelUnavailableError | IndexMissingError):
        return 503
    if isinstance(exc, ModelOutputError):
        return 502
    return 500  # ConfigError, AuditIntegrityError, ...: the operator's problem, not the caller's


# ---------------------------------------------------------------------------------------------
# Tokens


def load_tokens(path: Path) -> dict[str, str]:
    """Read ``{"<token>": "<user id>"}``."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"API tokens file {path} does not exist", hint=f"create it or unset {TOKENS_ENV}") from exc
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"API tokens file {path} is not valid JSON: {exc}") from exc
    if not isinstance(raw, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in raw.items()):
        raise ConfigError(f"API tokens file {path} must map token strings to user ids")
    return dict(raw)


def _match_token(tokens: Mapping[str, str], presented: str) -> str | None:
    """The user id of ``presented``; compares with every token in constant time, without early exit."""
    found: str | None = None
    given = presented.encode("utf-8")
    for token, user_id in tokens.items():
        if hmac.compare_digest(token.encode("utf-8"), given):
            found = user_id
    return found


def _unauthorized(message: str, hint: str | None = None) -> ApiError:
    return ApiError(401, message, hint, headers={"WWW-Authenticate": "Bearer"})


async def current_user(request: Request) -> User:
    """The user named by the request's bearer token (never by its body)."""
    scheme, _, presented = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not presented.strip():
        raise _unauthorized("missing bearer token", hint="send Authorization: Bearer <token>")
    user_id = _match_token(request.app.state.tokens, presented.strip())
    if user_id is None:
        raise _unauthorized("invalid token")
    try:
        return request.app.state.runtime.services.directory.get(user_id)  # type: ignore[no-any-return]
    except InputError as exc:  # the token names a user the directory no longer has
        raise _unauthorized("the token's user is not in the identity directory") from exc


# Module level: with postponed annotations FastAPI resolves a dependency's type in module globals.
CurrentUser = Annotated[User, Depends(current_user)]


# ---------------------------------------------------------------------------------------------
# Body size limit


class BodyLimit:
    """Answers 413 to a request body over ``limit`` bytes, declared or streamed (chunked).

    The body is read into memory up to the limit and replayed to the app: at 64 KB this is cheap and
    works the same whether or not the client sent Content-Length.
    """

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._too_large(send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.limit:
                await self._too_large(send)
                return
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, send: Send) -> None:
        body = json.dumps(_error_body(f"the request body is over {self.limit // 1024} KB", None)).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})


# ---------------------------------------------------------------------------------------------
# The app


def create_app(settings: Settings | None = None, tokens: Mapping[str, str] | Path | None = None) -> FastAPI:
    """The API app. ``tokens``: a token -> user id mapping, a JSON file, or ``None`` to read the file
    named by ``SOVRA_API_TOKENS_FILE`` (unset: no token is accepted, every /v1 call answers 401)."""
    settings = settings or Settings()
    if tokens is None:
        # SOVRA_API_TOKENS_FILE, through the settings like every other option.
        tokens = load_tokens(settings.api_tokens_file) if settings.api_tokens_file else {}
    elif isinstance(tokens, Path):
        tokens = load_tokens(tokens)
    token_map: dict[str, str] = dict(tokens)
    if any(len(t) < MIN_TOKEN_CHARS for t in token_map):
        raise ConfigError(f"an API token is shorter than {MIN_TOKEN_CHARS} characters", hint="use long random tokens")
    if not token_map:
        log.warning("no API tokens configured (%s): every authenticated request will be refused", TOKENS_ENV)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.runtime = Runtime(settings)
        app.state.lock = anyio.Lock()
        try:
            yield
        finally:
            rt: Runtime = app.state.runtime
            audit = rt.services.__dict__.pop("audit", None)  # Services.close leaves the audit log open
            rt.close()
            if audit is not None:
                audit.close()

    app = FastAPI(
        title="Sovra",
        description="Retrieval-augmented agents with citations and a tamper-evident audit log.",
        lifespan=lifespan,
    )
    app.state.tokens = token_map
    app.add_middleware(BodyLimit, limit=MAX_BODY_BYTES)

    async def run_locked(request: Request, fn: Callable[[Runtime], T]) -> T:
        """Run ``fn(runtime)`` in a worker thread, one at a time (see the module docstring)."""
        rt: Runtime = request.app.state.runtime
        async with request.app.state.lock:
            return await anyio.to_thread.run_sync(fn, rt)

    @app.exception_handler(SovraError)
    async def _sovra_error(request: Request, exc: SovraError) -> JSONResponse:
        status = _status_for(exc)
        if status >= 500:
            log.warning("%s %s: %s", request.method, request.url.path, exc)
        headers = exc.headers if isinstance(exc, ApiError) else None
        return JSONResponse(_error_body(exc.message, exc.hint), status_code=status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")} for e in exc.errors()
        ]
        body = _error_body("invalid request", "see 'detail'; the asking user comes from the token, not the body")
        return JSONResponse(body | {"detail": problems}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(_error_body(str(exc.detail), None), status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return JSONResponse(_error_body("internal error", "this is a bug in Sovra; see the server log"), 500)

    @app.get("/health")
    async def health() -> dict[str, str]:
        """Liveness: the process answers. Touches nothing."""
        return {"status": "ok"}

    @app.get("/ready")
    async def ready(request: Request) -> JSONResponse:
        """Readiness: the index exists and was built with the configured embedding model."""
        from sovra.index import IndexInfo

        def check(rt: Runtime) -> None:
            emb = rt.services.embedder
            rt.services.index.check(IndexInfo(model_id=emb.model_id, dim=emb.dim))

        try:
            await run_locked(request, check)
        except SovraError as exc:
            return JSONResponse(_error_body(exc.message, exc.hint), status_code=503)
        return JSONResponse({"status": "ready"})

    @app.post("/v1/ask")
    async def ask(body: AskRequest, user: CurrentUser, request: Request) -> dict[str, Any]:
        """Ask an agent as the token's user; the answer with citations and its audit run id."""
        from sovra.agents import get_agent
        from sovra.ui.render import answer_json

        agent = get_agent(body.agent)  # unknown agent: InputError -> 400, before taking the lock
        answer = await run_locked(request, lambda rt: rt.ask(agent, body.question, user.id, interface="api"))
        return answer_json(answer)

    @app.get("/v1/runs/{run_id}")
    async def run_records(run_id: str, user: CurrentUser, request: Request) -> dict[str, Any]:
        """A run's audit records: for the run's owner and members of the 'auditor' group only."""
        from sovra.ui.audit_report import AuditAccessError, load_run

        def load(rt: Runtime) -> list[Any]:
            return load_run(rt.services.audit, run_id, user)

        try:
            records = await run_locked(request, load)
        except AuditAccessError as exc:
            raise ApiError(403, exc.message, exc.hint) from exc
        except InputError as exc:  # load_run's only InputError: no such run
            raise ApiError(404, exc.message, exc.hint) from exc
        steps = [{k: v for k, v in asdict(r).items() if k != "sealed"} for r in records]
        return {"run_id": run_id, "user": records[0].user_id, "records": jsonable_encoder(steps)}

    return app


# ---------------------------------------------------------------------------------------------
# CLI


def serve_command(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
) -> None:
    """Serve the HTTP API (one process, one worker).

    The embedded qdrant-edge index admits one process at a time, so this runs a single uvicorn
    worker and answers one question at a time. For several workers or replicas, use a Qdrant server
    (SOVRA_QDRANT_URL) and a PostgreSQL audit log (SOVRA_AUDIT_URL). Tokens: SOVRA_API_TOKENS_FILE.
    """
    import uvicorn

    app = create_app()
    uvicorn.run(app, host=host, port=port, workers=1, proxy_headers=False, server_header=False)
