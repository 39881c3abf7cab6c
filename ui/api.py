"""`sovra serve`: the HTTP API. Thin, like the CLI: authenticate, call the runtime, render JSON.

Endpoints (the OpenAPI schema is at ``/openapi.json``, the docs at ``/docs``):

- ``GET /health`` (liveness, no auth), ``GET /ready`` (the index exists, built with the configured
  embedding model);
- ``POST /v1/ask`` (``?stream=true`` or ``POST /v1/ask/stream``: server-sent events), ``GET /v1/runs``,
  ``GET /v1/runs/{id}``, ``GET /v1/runs/{id}/audit``, ``GET|POST /v1/runs/{id}/approval``,
  ``POST /v1/runs/{id}/cancel`` (:mod:`sovra.ui.api_runs`);
- ``POST /v1/search``: the caller's documents, searched without an agent (:mod:`sovra.ui.api_search`);
- ``POST /v1/sources/{name}/sync``, ``GET /v1/jobs/{id}`` (:mod:`sovra.ui.api_jobs`);
- ``POST /v1/chat/completions``, ``GET /v1/models``: OpenAI-compatible (:mod:`sovra.ui.api_openai`).

Identity comes only from the bearer token (:mod:`sovra.ui.api_auth`: static development tokens, or
OIDC JWTs from a configured issuer); a request body never names the asking user. Errors are JSON
``{"error", "hint"}`` with the HTTP status that fits, never a traceback.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sovra.config import Settings
from sovra.errors import (
    ApprovalError,
    BudgetExceeded,
    ConfigError,
    IndexMissingError,
    InputError,
    ModelOutputError,
    ModelUnavailableError,
    SovraError,
)
from sovra.identity import Directory
from sovra.runtime import Runtime
from sovra.ui.api_auth import (  # re-exported: older imports name them here
    MIN_TOKEN_CHARS,
    TOKENS_ENV,
    ApiError,
    Authenticator,
    RequestDirectory,
    load_tokens,
)
from sovra.ui.api_state import ApiState, ClientGone, api_state, run_locked

__all__ = ["MAX_BODY_BYTES", "MIN_TOKEN_CHARS", "TOKENS_ENV", "ApiError", "BodyLimit", "create_app", "load_tokens"]

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024


def _error_body(message: str, hint: str | None) -> dict[str, Any]:
    return {"error": message, "hint": hint}


_OPENAI_PATHS = ("/v1/chat/completions", "/v1/models")
_OPENAI_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
}


def _error(request: Request, status: int, message: str, hint: str | None, **extra: Any) -> JSONResponse:
    """A JSON error; on the OpenAI-compatible routes in OpenAI's shape, so its clients show it."""
    headers = extra.pop("headers", None)
    if request.url.path in _OPENAI_PATHS:
        err = {"message": message, "type": _OPENAI_TYPES.get(status, "api_error"), "param": None, "code": None}
        body: dict[str, Any] = {"error": err | {"hint": hint} | extra}
    else:
        body = _error_body(message, hint) | extra
    return JSONResponse(body, status_code=status, headers=headers)


def _status_for(exc: SovraError) -> int:
    if isinstance(exc, ApiError):
        return exc.status
    if isinstance(exc, ApprovalError):
        return 409
    if isinstance(exc, InputError):
        return 400
    if isinstance(exc, BudgetExceeded):
        return 429
    if isinstance(exc, ModelUnavailableError | IndexMissingError):
        return 503
    if isinstance(exc, ModelOutputError):
        return 502
    return 500  # ConfigError, AuditIntegrityError, ...: the operator's problem, not the caller's


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


def create_app(
    settings: Settings | None = None,
    tokens: Mapping[str, str] | Path | None = None,
    *,
    agents: Mapping[str, Callable[[], Any]] | None = None,
    runtime_factory: Callable[..., Runtime] = Runtime,
) -> FastAPI:
    """The API app.

    ``tokens``: static token -> user id mapping, a JSON file, or ``None`` to read the file named by
    ``SOVRA_API_TOKENS_FILE`` (unset and no OIDC issuer: every /v1 call answers 401). ``agents``:
    name -> agent factory to serve instead of the installed agents (tests, benchmarks).
    ``runtime_factory(settings, agents=...)`` builds the runtime (default :class:`Runtime`).
    """
    settings = settings or Settings()
    authenticator = Authenticator(settings, tokens)

    def lookup(name: str) -> Any:
        return state_ref["api"].agent(name)

    state_ref: dict[str, ApiState] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        rt = runtime_factory(settings, agents=lookup)
        # OIDC users may be unknown to the directory or hold fewer groups there: during a request
        # the runtime sees the caller as their token established (see api_auth.RequestDirectory).
        if settings.resolved_users_file.is_file():
            base = rt.services.directory
        else:
            log.warning("no identity directory at %s: only OIDC users can be served", settings.resolved_users_file)
            base = Directory({})
        directory = RequestDirectory(base)
        rt.services.directory = directory
        # Built now, once: first use from several threads at a time would open them twice.
        rt.services.audit  # noqa: B018
        rt.runs  # noqa: B018
        app.state.api = state_ref["api"] = ApiState(settings=settings, runtime=rt, agents=agents)
        app.state.directory = directory
        try:  # the first readiness answer, so /ready need not queue behind the first questions
            from sovra.index import IndexInfo

            emb = rt.services.embedder
            rt.services.index.check(IndexInfo(model_id=emb.model_id, dim=emb.dim))
            app.state.api.ready_cache = (200, {"status": "ready"})
        except SovraError as exc:
            app.state.api.ready_cache = (503, _error_body(exc.message, exc.hint))
        try:
            yield
        finally:
            audit = rt.services.__dict__.pop("audit", None)  # Services.close leaves the audit log open
            rt.close()
            if audit is not None:
                audit.close()

    app = FastAPI(
        title="Sovra",
        version="0.1.0",
        description="Retrieval-augmented agents with citations and a tamper-evident audit log. "
        "Authenticate with `Authorization: Bearer <token>` (a static development token or an OIDC JWT).",
        lifespan=lifespan,
    )
    app.state.authenticator = authenticator
    app.add_middleware(BodyLimit, limit=MAX_BODY_BYTES)

    @app.exception_handler(SovraError)
    async def _sovra_error(request: Request, exc: SovraError) -> JSONResponse:
        status = _status_for(exc)
        if status >= 500:
            log.warning("%s %s: %s", request.method, request.url.path, exc)
        headers = exc.headers if isinstance(exc, ApiError) else None
        return _error(request, status, exc.message, exc.hint, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")} for e in exc.errors()
        ]
        hint = "see 'detail'; the asking user comes from the token, not the body"
        return _error(request, 422, "invalid request", hint, detail=problems)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(request, exc.status_code, str(exc.detail), None, headers=exc.headers)

    @app.exception_handler(ClientGone)
    async def _gone(request: Request, exc: ClientGone) -> JSONResponse:
        return _error(request, 499, "the client closed the request before its question ran", None)

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return _error(request, 500, "internal error", "this is a bug in Sovra; see the server log")

    @app.get("/health", tags=["service"])
    async def health() -> dict[str, str]:
        """Liveness: the process answers. Touches nothing."""
        return {"status": "ok"}

    @app.get("/ready", tags=["service"])
    async def ready(request: Request) -> JSONResponse:
        """Readiness: the index exists and was built with the configured embedding model.

        Never waits behind questions: while a question holds the runtime, the last result answers
        (checked once at start-up, then whenever the runtime is free)."""
        from sovra.index import IndexInfo

        def check(rt: Runtime) -> None:
            emb = rt.services.embedder
            rt.services.index.check(IndexInfo(model_id=emb.model_id, dim=emb.dim))

        st = api_state(request)
        if not st.gate.locked() or st.ready_cache is None:
            try:
                await run_locked(request, check)
                st.ready_cache = (200, {"status": "ready"})
            except SovraError as exc:
                st.ready_cache = (503, _error_body(exc.message, exc.hint))
        status, body = st.ready_cache
        return JSONResponse(body, status_code=status)

    from sovra.ui import api_jobs, api_openai, api_runs, api_search

    app.include_router(api_runs.router)
    app.include_router(api_search.router)
    app.include_router(api_jobs.router)
    app.include_router(api_openai.router)
    return app


# ---------------------------------------------------------------------------------------------
# Serving


def check_workers(settings: Settings, workers: int) -> None:
    """Several workers share nothing in memory: each needs the index, audit and checkpoints that
    live outside the process. The embedded qdrant-edge index admits one process at a time."""
    if workers > 1 and not settings.qdrant_url:
        raise ConfigError(
            f"--workers {workers} needs a Qdrant server: the embedded index admits one process at a time",
            hint="set SOVRA_QDRANT_URL (and SOVRA_AUDIT_URL to PostgreSQL), or serve with --workers 1",
        )
    if workers > 1 and not (settings.audit_url or "").startswith("postgres"):
        log.warning("%d workers share the SQLite audit log and checkpoints: use PostgreSQL in production", workers)


def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    factory: str = "sovra.ui.api:create_app",
    settings: Settings | None = None,
) -> None:
    """Run uvicorn; each worker process builds its app with ``factory()`` (an import string), so
    settings and tokens come from the environment there (``settings`` only checks the workers)."""
    import uvicorn

    check_workers(settings or Settings(), workers)
    uvicorn.run(factory, factory=True, workers=workers, host=host, port=port, proxy_headers=False, server_header=False)


def serve_command(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    workers: Annotated[
        int, typer.Option(min=1, help="Worker processes; more than 1 needs SOVRA_QDRANT_URL (and PostgreSQL).")
    ] = 1,
    check_models: Annotated[
        bool, typer.Option(help="Check at start-up that every model route's model/adapter is served.")
    ] = True,
) -> None:
    """Serve the HTTP API (docs at /docs, schema at /openapi.json).

    Each worker answers one question at a time. The embedded qdrant-edge index admits one process,
    so several workers need a Qdrant server (SOVRA_QDRANT_URL) and should share a PostgreSQL audit log
    and checkpoints (SOVRA_AUDIT_URL). Tokens: SOVRA_API_TOKENS_FILE and/or SOVRA_OIDC_ISSUER.
    """
    settings = Settings()
    check_workers(settings, workers)  # before the model check: the cheaper mistake first
    if check_models:
        from sovra.ui.models_cli import check_model_routes

        check_model_routes(settings)  # a missing LoRA adapter fails here, not on the first question
    serve(host, port, workers, settings=settings)
