"""The model gateway: every model call goes through here, via litellm, to an OpenAI-compatible server.

Calls are routed by task (``chat``, ``planning``, ``extraction``...; see :mod:`sovra.routes`) to a
model or LoRA adapter on a server: vLLM in production, or, for a route with no ``base_url``, the
embedded llama.cpp server from :mod:`sovra.local_llm`. Both are reached through the same litellm
call, so the local default exercises the production code path.

Around each call: the host allow-list (checked by name before any connection, and again in the
HTTP transport), PII masking for routes marked external, a per-endpoint concurrency limit and
circuit breaker, bounded retries with backoff on connection errors / 429 / 5xx, fallbacks to other
routes, and one OpenTelemetry client span with GenAI semantic-convention attributes.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from pydantic import BaseModel, ValidationError

from sovra.config import Settings
from sovra.errors import ConfigError, ModelOutputError, ModelUnavailableError
from sovra.local_llm import LocalModelServer, default_model_path
from sovra.pii import Masker
from sovra.resilience import CircuitBreaker, ConcurrencyLimit, retry_delay
from sovra.routes import HostNotAllowedError, Route, RoutesConfig, check_host

if TYPE_CHECKING:
    import httpx
    import openai

log = logging.getLogger(__name__)

# litellm reads these at import time: without them ``import litellm`` fetches a model-cost map
# from the internet (and, lazily, tokenizers and other catalogs). A bank's server must never
# phone home, so we force them rather than defaulting them.
os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
os.environ["LITELLM_OFFLINE_MODE"] = "true"
# litellm attaches its own stream handler at DEBUG unless told otherwise.
os.environ.setdefault("LITELLM_LOG", "WARNING")

M = TypeVar("M", bound=BaseModel)
Messages = list[dict[str, Any]]
# Sends one request on a route: (route, base_url, client, messages) -> litellm response.
Sender = Callable[[Route, str, "openai.OpenAI", Messages], Any]

_litellm: ModuleType | None = None
_litellm_lock = threading.Lock()


def _get_litellm() -> ModuleType:
    """Import and configure litellm once, on first use (the import takes seconds)."""
    global _litellm
    with _litellm_lock:
        if _litellm is None:
            import litellm

            # Old litellm versions had an opt-out usage ping; in current ones ``litellm.telemetry``
            # is the proxy's (opt-in) subpackage, which we must not shadow.
            if isinstance(getattr(litellm, "telemetry", None), bool):
                litellm.telemetry = False
            litellm.callbacks = []
            litellm.success_callback = []
            litellm.failure_callback = []
            litellm.suppress_debug_info = True  # no "Give Feedback / Get Help" banners on errors
            for name in ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy"):
                lg = logging.getLogger(name)
                if lg.level == logging.NOTSET:  # per-call INFO lines would drown our own logs
                    lg.setLevel(logging.WARNING)
            _litellm = litellm
        return _litellm


@dataclass(frozen=True)
class ModelCall:
    """What the audit log records for one gateway call (all attempts together)."""

    route: str  # the task asked for
    model: str  # model or LoRA adapter id that answered
    base_url: str
    params: dict[str, Any]
    prompt_tokens: int | None
    completion_tokens: int | None
    latency_ms: float
    output: str  # the raw text of the last attempt (unmasked)
    attempts: int  # HTTP requests made, retries and fallbacks included
    served_route: str = ""  # the route config that answered (differs after a fallback)
    finish_reason: str | None = None
    pii_masked: int = 0  # values replaced by placeholders before the prompt left
    failures: tuple[str, ...] = ()  # what went wrong on the way (retried or fallen back from)


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: dict[str, Any]


@dataclass
class _Result:
    """One successful request on one route, after retries."""

    route_name: str
    route: Route
    base_url: str
    response: Any
    latency_ms: float
    requests: int
    masker: Masker | None


@dataclass
class _Ledger:
    """Attempts of one logical call, summed into a ModelCall."""

    task: str
    results: list[_Result] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    failed_requests: int = 0

    def call(self, params: dict[str, Any], output: str) -> ModelCall:
        last = self.results[-1]
        usages = [getattr(r.response, "usage", None) for r in self.results]

        def total(name: str) -> int | None:
            values = [getattr(u, name, None) for u in usages]
            return None if any(v is None for v in values) else sum(values)  # type: ignore[arg-type]

        choices = getattr(last.response, "choices", None)
        return ModelCall(
            route=self.task,
            model=last.route.model,
            base_url=last.base_url,
            params=params,
            prompt_tokens=total("prompt_tokens"),
            completion_tokens=total("completion_tokens"),
            latency_ms=sum(r.latency_ms for r in self.results),
            output=output,
            attempts=sum(r.requests for r in self.results) + self.failed_requests,
            served_route=last.route_name,
            finish_reason=getattr(choices[0], "finish_reason", None) if choices else None,
            pii_masked=sum(len(r.masker.table) for r in self.results if r.masker),
            failures=tuple(self.failures),
        )


def _validate(schema: type[M], text: str) -> M:
    """Validate JSON, tolerating raw control characters (newlines) inside strings.

    Grammar-constrained decoders (llama.cpp's ``[^"\\]`` string rule) let a model emit a literal
    newline inside a string, which strict JSON forbids; the content is still what the model meant.
    """
    try:
        data = json.loads(text, strict=False)
    except json.JSONDecodeError:
        return schema.model_validate_json(text)  # raises a ValidationError with the position
    return schema.model_validate(data)


def _guarded_http_client(allowed: frozenset[str], timeout_s: float) -> httpx.Client:
    """An httpx client whose transport refuses hosts outside the allow-list: a second line behind
    the check in ``_run``, covering any request the libraries might make on their own."""
    import httpx

    class GuardedTransport(httpx.HTTPTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            check_host(str(request.url), allowed)
            return super().handle_request(request)

    # trust_env=False: an HTTP(S)_PROXY from the environment must not silently reroute prompts.
    return httpx.Client(transport=GuardedTransport(), timeout=timeout_s, trust_env=False)


class ModelGateway:
    """Typed completions, tool calls, streams and embeddings, routed by task. Connects lazily."""

    def __init__(
        self,
        settings: Settings,
        routes: RoutesConfig | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings
        if routes is None:
            routes_file = getattr(settings, "routes_file", None)
            routes = RoutesConfig.load(routes_file) if routes_file else RoutesConfig.from_settings(settings)
        self.routes = routes
        self._allowed = routes.allowed()
        self._sleep = sleep
        self._clock = clock
        self._local: LocalModelServer | None = None
        self._lock = threading.Lock()
        self._breakers: dict[str, CircuitBreaker] = {}
        self._limits: dict[str, ConcurrencyLimit] = {}
        self._clients: dict[tuple[str, str], openai.OpenAI] = {}
        self._http: httpx.Client | None = None

    # ------------------------------------------------------------------ properties (old API)

    @property
    def is_local(self) -> bool:
        return self.routes.route(self.routes.default_route)[1].is_local

    @property
    def model_name(self) -> str:
        """The default route's model id (for the local model: the alias it serves)."""
        return self.routes.route(self.routes.default_route)[1].model

    # ------------------------------------------------------------------ endpoints

    def _endpoint(self, route: Route) -> tuple[str, str]:
        """Base URL and API key, starting the local server on first use."""
        if route.base_url is not None:
            key = os.environ.get(route.api_key_env) if route.api_key_env else self._settings.llm_api_key
            # Always pass a key: otherwise the OpenAI client falls back to $OPENAI_API_KEY and
            # would send that secret to our own server.
            return route.base_url.rstrip("/"), key or "no-key"
        with self._lock:
            if self._local is None:
                s = self._settings
                self._local = LocalModelServer(
                    s.local_model_path or default_model_path(),
                    log_dir=s.paths.root / "logs",
                    threads=s.local_model_threads,
                    ctx=s.local_model_ctx,
                    alias=route.model,
                    start_timeout_s=max(60.0, route.timeout_s),
                )
            local = self._local
        return local.start(), local.api_key

    def _client(self, base_url: str, api_key: str) -> openai.OpenAI:
        import openai

        with self._lock:
            client = self._clients.get((base_url, api_key))
            if client is None:
                if self._http is None:
                    self._http = _guarded_http_client(self._allowed, 120.0)
                # max_retries=0: retries are ours (bounded, with backoff, breaker-aware).
                # (openai types http_client against its own httpx fork; an httpx.Client is what it uses.)
                client = openai.OpenAI(base_url=base_url, api_key=api_key, max_retries=0, http_client=self._http)  # type: ignore[arg-type]
                self._clients[(base_url, api_key)] = client
            return client

    def _guards(self, base_url: str, route: Route) -> tuple[CircuitBreaker, ConcurrencyLimit]:
        with self._lock:
            breaker = self._breakers.get(base_url)
            if breaker is None:
                breaker = self._breakers[base_url] = CircuitBreaker(
                    base_url, self.routes.breaker_failures, self.routes.breaker_cooldown_s, self._clock
                )
            limit = self._limits.get(base_url)
            if limit is None:
                # Routes sharing a server share its limit; the strictest route's value wins.
                cap = min(r.max_concurrency for r in self.routes.routes.values() if r.base_url == route.base_url)
                limit = self._limits[base_url] = ConcurrencyLimit(base_url, cap)
            return breaker, limit

    # ------------------------------------------------------------------ the call path

    def _run(self, task: str, ledger: _Ledger, send: Sender, messages: Messages, kind: str = "chat") -> _Result:
        """Send on the task's route, then on its fallbacks, each with bounded retries."""
        first_name, first = self.routes.route(task)
        if first.kind != kind:
            raise ConfigError(f"route {first_name!r} is a {first.kind} route, not {kind}")
        chain = list(dict.fromkeys([first_name, *first.fallbacks]))
        last_error: ModelUnavailableError | None = None
        for name in chain:
            route = self.routes.routes[name]
            if route.base_url is not None:
                check_host(route.base_url, self._allowed)  # by name, before anything connects
            try:
                result = self._attempts(name, route, ledger, send, messages)
            except ModelUnavailableError as exc:
                last_error = exc
                ledger.failures.append(f"{name}: {exc.message}")
                if name != chain[-1]:
                    log.warning("route %r unavailable, falling back: %s", name, exc.message)
                continue
            ledger.results.append(result)
            return result
        assert last_error is not None
        if len(chain) > 1:
            raise ModelUnavailableError(
                f"{last_error.message} (after trying routes {', '.join(chain)})", hint=last_error.hint
            ) from last_error
        raise last_error

    def _attempts(self, name: str, route: Route, ledger: _Ledger, send: Sender, messages: Messages) -> _Result:
        import openai

        base_url, api_key = self._endpoint(route)
        check_host(base_url, self._allowed)
        breaker, limit = self._guards(base_url, route)
        masker = Masker() if route.external and self.routes.mask_pii else None
        outgoing = masker.mask_messages(messages) if masker else messages
        client = self._client(base_url, api_key)
        for n in range(1, route.max_retries + 2):
            breaker.before_call()
            limit.acquire(route.timeout_s)
            t0 = time.perf_counter()
            try:
                response = send(route, base_url, client, outgoing)
            except openai.APIError as exc:
                _reraise_policy(exc)
                error = _unavailable(exc, base_url, route.timeout_s)
                retryable, retry_after = _retry_info(exc)
                if retryable or _is_timeout(exc):
                    breaker.failure()  # 4xx are our request's fault, not the server's health
                ledger.failed_requests += 1
                if not retryable or n > route.max_retries:
                    raise error from exc
                ledger.failures.append(f"{name}: {error.message} (retrying)")
                delay = retry_delay(n, route.backoff_s, retry_after)
                log.info("retrying %s in %.2f s: %s", base_url, delay, error.message)
                self._sleep(delay)
                continue
            finally:
                limit.release()
            breaker.success()
            latency_ms = (time.perf_counter() - t0) * 1000.0
            return _Result(name, route, base_url, response, latency_ms, 1, masker)
        raise AssertionError("unreachable")

    def _chat_sender(self, max_tokens: int | None, temperature: float | None, **extra: Any) -> Sender:
        litellm = _get_litellm()

        def send(route: Route, base_url: str, client: openai.OpenAI, messages: Messages) -> Any:
            kwargs = dict(extra)
            fmt = kwargs.pop("_schema", None)
            if fmt is not None:
                kwargs.update(_structured_kwargs(route, fmt))
            return litellm.completion(
                model=f"openai/{route.model}",
                api_base=base_url,
                api_key=client.api_key,
                client=client,
                messages=messages,
                max_tokens=max_tokens or route.max_tokens,
                temperature=route.temperature if temperature is None else temperature,
                timeout=route.timeout_s,
                max_retries=0,
                num_retries=0,
                **kwargs,
            )

        return send

    def _params(self, task: str, max_tokens: int | None, temperature: float | None) -> dict[str, Any]:
        route = self.routes.route(task)[1]
        return {
            "max_tokens": max_tokens or route.max_tokens,
            "temperature": route.temperature if temperature is None else temperature,
        }

    # ------------------------------------------------------------------ public API

    def complete_text(
        self,
        messages: Messages,
        *,
        route: str = "chat",
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> tuple[str, ModelCall]:
        ledger = _Ledger(route)
        with _span("chat", route, self) as span:
            result = self._run(route, ledger, self._chat_sender(max_tokens, temperature), messages)
            text = _unmask(result, result.response.choices[0].message.content or "")
            call = ledger.call(self._params(route, max_tokens, temperature), text)
            _finish_span(span, call)
        return text, call

    def complete_json(
        self,
        messages: Messages,
        schema: type[M],
        *,
        route: str = "chat",
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> tuple[M, ModelCall]:
        """Ask for JSON constrained to ``schema``; validate it, retrying once with the error."""
        json_schema = schema.model_json_schema()
        served = self.routes.route(route)[1]
        params = {
            **self._params(route, max_tokens, temperature),
            "response_format": _structured_mode(served),
            "schema": schema.__name__,
        }
        send = self._chat_sender(max_tokens, temperature, _schema=(schema.__name__, json_schema))
        convo = _with_schema_instruction(messages, json_schema)
        ledger = _Ledger(route)
        error: ValidationError | None = None
        with _span("chat", route, self) as span:
            for _ in range(2):
                result = self._run(route, ledger, send, convo)
                text = _unmask(result, result.response.choices[0].message.content or "")
                try:
                    value = _validate(schema, text)
                except ValidationError as exc:
                    error = exc
                    log.info("model output did not match %s; asking again", schema.__name__)
                    convo = [
                        *convo,
                        {"role": "assistant", "content": text},
                        {
                            "role": "user",
                            "content": "That reply is not valid for the schema: "
                            f"{_short_errors(exc)}. Reply again with only the corrected JSON object.",
                        },
                    ]
                    continue
                call = ledger.call(params, text)
                _finish_span(span, call)
                return value, call
            assert error is not None
            call = ledger.call(params, text)
            _finish_span(span, call)
        cut = call.finish_reason == "length"
        raise ModelOutputError(
            f"model {call.model!r} answered twice with output that does not match "
            f"{schema.__name__}: {_short_errors(error)}"
            + (f" (the reply was cut off at max_tokens={params['max_tokens']})" if cut else ""),
            hint="use a larger model for the route, raise its max_tokens if the JSON was cut off, "
            "or make sure the server supports JSON-schema constrained decoding",
        )

    def complete_tools(
        self,
        messages: Messages,
        tools: list[dict[str, Any]],
        *,
        route: str = "chat",
        tool_choice: str | dict[str, Any] = "auto",
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> tuple[list[ToolCall], ModelCall]:
        """Offer OpenAI-shaped ``tools``; return the calls the model made (maybe none) with arguments parsed."""
        ledger = _Ledger(route)
        send = self._chat_sender(max_tokens, temperature, tools=tools, tool_choice=tool_choice)
        with _span("chat", route, self) as span:
            result = self._run(route, ledger, send, messages)
            message = result.response.choices[0].message
            calls: list[ToolCall] = []
            for tc in message.tool_calls or []:
                raw = _unmask(result, tc.function.arguments or "{}")
                try:
                    args = json.loads(raw, strict=False)
                except json.JSONDecodeError as exc:
                    raise ModelOutputError(
                        f"model {result.route.model!r} called tool {tc.function.name!r} with arguments "
                        f"that are not JSON: {raw[:200]!r}",
                        hint="use a server with a tool-call parser for this model (vLLM --tool-call-parser)",
                    ) from exc
                calls.append(ToolCall(id=tc.id or "", name=tc.function.name, arguments=args))
            output = (
                json.dumps([{"name": c.name, "arguments": c.arguments} for c in calls])
                if calls
                else (_unmask(result, message.content or ""))
            )
            params = {**self._params(route, max_tokens, temperature), "tools": [t["function"]["name"] for t in tools]}
            call = ledger.call(params, output)
            _finish_span(span, call)
        return calls, call

    def stream_text(
        self,
        messages: Messages,
        *,
        route: str = "chat",
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> TextStream:
        """Stream the reply's text pieces. Connection errors are retried and fall back before the
        first piece; a stream that breaks after it raises ModelUnavailableError."""
        ledger = _Ledger(route)
        send = self._chat_sender(max_tokens, temperature, stream=True, stream_options={"include_usage": True})
        result = self._run(route, ledger, send, messages)
        return TextStream(result, ledger, self._params(route, max_tokens, temperature))

    def embed(self, texts: list[str], *, route: str = "embedding") -> tuple[list[list[float]], ModelCall]:
        """Embed ``texts`` on an embedding route (a vLLM or TEI server's /v1/embeddings)."""
        litellm = _get_litellm()

        def send(r: Route, base_url: str, client: openai.OpenAI, _messages: Messages) -> Any:
            return litellm.embedding(
                model=f"openai/{r.model}", input=texts, api_base=base_url, api_key=client.api_key,
                client=client, timeout=r.timeout_s, max_retries=0,
            )  # fmt: skip

        ledger = _Ledger(route)
        with _span("embeddings", route, self) as span:
            result = self._run(route, ledger, send, [], kind="embedding")
            vectors = [list(map(float, d["embedding"])) for d in result.response.data]
            call = ledger.call({"inputs": len(texts)}, f"{len(vectors)} vectors")
            _finish_span(span, call)
        return vectors, call

    # ------------------------------------------------------------------ server checks

    def check_routes(self, *, include_local: bool = False) -> dict[str, dict[str, Any]]:
        """Ask every remote server's ``/v1/models`` and check each route's model is served.

        Returns route -> the server's model card (for a LoRA adapter ``parent`` is its base model).
        Raises ConfigError naming every missing model, ModelUnavailableError for a dead server.
        """
        import httpx

        listed: dict[str, dict[str, dict[str, Any]]] = {}
        found: dict[str, dict[str, Any]] = {}
        missing: list[str] = []
        for name, route in self.routes.routes.items():
            if route.is_local and not include_local:
                continue
            base_url, api_key = self._endpoint(route)
            check_host(base_url, self._allowed)
            if base_url not in listed:
                try:
                    resp = self._http_client().get(
                        f"{base_url}/models",
                        headers={"Authorization": f"Bearer {api_key}"},
                        timeout=min(route.timeout_s, 10.0),
                    )
                    resp.raise_for_status()
                    listed[base_url] = {m["id"]: m for m in resp.json()["data"]}
                except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
                    raise ModelUnavailableError(
                        f"model server at {base_url} is unreachable or did not list its models: {_brief(exc)}",
                        hint="check that the server is running and the route's base_url is right",
                    ) from exc
            card = listed[base_url].get(route.model)
            if card is None:
                missing.append(
                    f"route {name!r} wants {route.model!r}, which {base_url} does not serve "
                    f"(it lists {', '.join(sorted(listed[base_url])) or 'nothing'})"
                )
            else:
                found[name] = card
        if missing:
            raise ConfigError(
                "; ".join(missing),
                hint="fix the model ids in the routes file, or start vLLM with the adapter "
                "(--enable-lora --lora-modules NAME=PATH)",
            )
        return found

    def health(self) -> dict[str, bool]:
        """Each remote server's ``/health`` (vLLM serves it at the root, beside ``/v1``)."""
        import httpx

        status: dict[str, bool] = {}
        for route in self.routes.routes.values():
            if route.base_url is None or route.base_url in status:
                continue
            base = route.base_url.rstrip("/")
            root = base[: -len("/v1")] if base.endswith("/v1") else base
            check_host(root, self._allowed)
            try:
                ok = self._http_client().get(f"{root}/health", timeout=min(route.timeout_s, 5.0)).status_code == 200
            except httpx.HTTPError:
                ok = False
            status[route.base_url] = ok
        return status

    def _http_client(self) -> httpx.Client:
        with self._lock:
            if self._http is None:
                self._http = _guarded_http_client(self._allowed, 120.0)
            return self._http

    def _base_url_label(self) -> str:
        route = self.routes.route(self.routes.default_route)[1]
        if route.base_url is not None:
            return route.base_url.rstrip("/")
        return self._local.base_url if self._local is not None else "local"

    def close(self) -> None:
        """Close connections and stop the local model server if this gateway started one (idempotent)."""
        with self._lock:
            local, self._local = self._local, None
            http, self._http = self._http, None
            self._clients.clear()
        if http is not None:
            http.close()
        if local is not None:
            local.close()

    def __enter__(self) -> ModelGateway:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class TextStream(Iterator[str]):
    """The text pieces of a streamed reply; ``call`` is set once the stream has ended."""

    def __init__(self, result: _Result, ledger: _Ledger, params: dict[str, Any]) -> None:
        self._result = result
        self._ledger = ledger
        self._params = params
        self._chunks = iter(result.response)
        self._pieces: list[str] = []
        self._usage: Any = None
        self._finish: str | None = None
        self._t0 = time.perf_counter()
        self.call: ModelCall | None = None

    def __iter__(self) -> TextStream:
        return self

    def __next__(self) -> str:
        import openai

        while True:
            try:
                chunk = next(self._chunks)
            except StopIteration:
                self._end()
                raise
            except (openai.APIError, OSError, ValueError) as exc:
                got = len(self._pieces)
                raise ModelUnavailableError(
                    f"model server at {self._result.base_url} broke off the stream after {got} "
                    f"piece{'s' if got != 1 else ''}: {_brief(exc)}",
                    hint="the server may have crashed or restarted mid-answer; ask again",
                ) from exc
            usage = getattr(chunk, "usage", None)
            if usage is not None:
                self._usage = usage
            choices = getattr(chunk, "choices", None) or []
            if not choices:
                continue
            if choices[0].finish_reason:
                self._finish = choices[0].finish_reason
            piece = getattr(choices[0].delta, "content", None)
            if piece:
                piece = _unmask(self._result, piece)
                self._pieces.append(piece)
                return piece

    def _end(self) -> None:
        if self.call is not None:
            return
        r = self._result
        r.latency_ms += (time.perf_counter() - self._t0) * 1000.0
        r.response = _StreamSummary(self._usage, self._finish)
        self.call = self._ledger.call(self._params, "".join(self._pieces))


@dataclass
class _StreamSummary:
    usage: Any
    finish_reason: str | None

    @property
    def choices(self) -> list[Any]:
        return [self]


# ---------------------------------------------------------------------- helpers


def _structured_mode(route: Route) -> str:
    if route.structured_output != "auto":
        return route.structured_output
    # llama-cpp-python's server builds a grammar only from json_object+schema and rejects
    # type "json_schema" (HTTP 422); vLLM takes the OpenAI json_schema shape.
    return "json_object" if route.is_local else "json_schema"


def _structured_kwargs(route: Route, fmt: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    name, schema = fmt
    mode = _structured_mode(route)
    if mode == "json_object":
        return {"response_format": {"type": "json_object", "schema": schema}}
    if mode == "guided_json":
        # vLLM's own guided-decoding parameter, passed through litellm's extra_body.
        return {"extra_body": {"guided_json": schema}}
    return {"response_format": {"type": "json_schema", "json_schema": {"name": name, "schema": schema, "strict": True}}}


def _unmask(result: _Result, text: str) -> str:
    return result.masker.unmask(text) if result.masker else text


class _span:
    """One OTel client span per gateway call, named as the GenAI conventions say: ``{op} {model}``."""

    def __init__(self, operation: str, task: str, gateway: ModelGateway) -> None:
        from sovra.telemetry import get_tracer

        route = gateway.routes.route(task)[1]
        self._cm = get_tracer().start_as_current_span(
            f"{operation} {route.model}",
            kind=_client_kind(),
            attributes={
                "gen_ai.operation.name": operation,
                "gen_ai.request.model": route.model,
                "sovra.route": task,
            },
            record_exception=True,
        )

    def __enter__(self) -> Any:
        return self._cm.__enter__()

    def __exit__(self, *exc: Any) -> None:
        if exc[0] is not None:
            from opentelemetry import trace

            trace.get_current_span().set_attribute("error.type", exc[0].__name__)
        self._cm.__exit__(*exc)


def _client_kind() -> Any:
    from opentelemetry.trace import SpanKind

    return SpanKind.CLIENT


def _finish_span(span: Any, call: ModelCall) -> None:
    if not span.is_recording():
        return
    parts = urlsplit(call.base_url)
    attrs: dict[str, Any] = {
        "gen_ai.response.model": call.model,
        "sovra.route.served": call.served_route,
        "sovra.attempts": call.attempts,
        "server.address": parts.hostname or "",
    }
    if parts.port:
        attrs["server.port"] = parts.port
    for key in ("temperature", "max_tokens"):
        if key in call.params:
            attrs[f"gen_ai.request.{key}"] = call.params[key]
    if call.prompt_tokens is not None:
        attrs["gen_ai.usage.input_tokens"] = call.prompt_tokens
    if call.completion_tokens is not None:
        attrs["gen_ai.usage.output_tokens"] = call.completion_tokens
    if call.finish_reason:
        attrs["gen_ai.response.finish_reasons"] = (call.finish_reason,)
    span.set_attributes(attrs)


def _reraise_policy(exc: BaseException) -> None:
    """The transport's allow-list refusal arrives wrapped by the OpenAI client and litellm."""
    for e in _chain(exc):
        if isinstance(e, HostNotAllowedError):
            raise e


def _chain(exc: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and len(chain) < 10:
        chain.append(cur)
        cur = cur.__cause__ or cur.__context__
    return chain


def _is_timeout(exc: BaseException) -> bool:
    import openai

    return any(isinstance(e, openai.APITimeoutError) for e in _chain(exc))


def _retry_info(exc: BaseException) -> tuple[bool, str | None]:
    """Whether a failed request is worth repeating, and the server's Retry-After if it sent one.

    Timeouts are not retried: a server too slow once is likely slow again, and a retry would
    double the caller's wait; the route's fallback is the better next step.
    """
    import openai

    chain = _chain(exc)
    if any(isinstance(e, openai.APITimeoutError) for e in chain):
        return False, None
    status = getattr(exc, "status_code", None)
    response = getattr(exc, "response", None)
    retry_after = None
    if response is not None and hasattr(response, "headers"):
        retry_after = response.headers.get("retry-after")
    if any(isinstance(e, openai.APIConnectionError) for e in chain):
        return True, None
    return status in (429, 500, 502, 503, 504), retry_after


def _with_schema_instruction(messages: Messages, schema: dict[str, Any]) -> Messages:
    # Constrained decoding guarantees the shape; telling the model the schema too is what makes
    # the values sensible (small models otherwise fill fields with noise).
    note = "Reply with one JSON object that matches this JSON schema:\n" + json.dumps(schema, separators=(",", ":"))
    if messages and messages[0].get("role") == "system":
        first = {**messages[0], "content": f"{messages[0]['content']}\n\n{note}"}
        return [first, *messages[1:]]
    return [{"role": "system", "content": note}, *messages]


def _short_errors(exc: ValidationError, limit: int = 3) -> str:
    parts = []
    for err in exc.errors()[:limit]:
        loc = ".".join(str(p) for p in err["loc"]) or "(root)"
        parts.append(f"{loc}: {err['msg']}")
    more = exc.error_count() - limit
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def _unavailable(exc: openai.APIError, base_url: str, timeout_s: float) -> ModelUnavailableError:
    """Turn a litellm/OpenAI client error into one message for the person reading it."""
    import openai

    status = getattr(exc, "status_code", None)
    # litellm re-raises a refused connection as InternalServerError (status 500); the client's
    # own error is further down the cause chain.
    chain = _chain(exc)
    # litellm reports an unparseable 200 body as a synthetic HTTP 500 carrying the decode error.
    if any(isinstance(e, json.JSONDecodeError) for e in chain) or "Received response - <APIResponse [200" in str(exc):
        return ModelUnavailableError(
            f"model server at {base_url} answered with a body that is not valid JSON: {_brief(exc, 160)}",
            hint="a proxy between us and the server may be mangling responses, or the URL is not an "
            "OpenAI-compatible server",
        )
    if any(isinstance(e, openai.APITimeoutError) for e in chain):
        return ModelUnavailableError(
            f"model server at {base_url} is unreachable: no answer within {timeout_s:g} s",
            hint="check the server's load, or raise the route's timeout_s (SOVRA_LLM_TIMEOUT_S)",
        )
    if any(isinstance(e, openai.APIConnectionError) for e in chain):
        return ModelUnavailableError(
            f"model server at {base_url} is unreachable: {_brief(chain[-1])}",
            hint="check that the server is running and the route's base_url (SOVRA_LLM_BASE_URL) is right",
        )
    if status in (401, 403):
        return ModelUnavailableError(
            f"model server at {base_url} refused our credentials (HTTP {status})",
            hint="set the route's api_key_env variable (or SOVRA_LLM_API_KEY) to a key the server accepts",
        )
    if status == 404:
        return ModelUnavailableError(
            f"model server at {base_url} does not know the requested model (HTTP 404)",
            hint="set the route's model (SOVRA_LLM_MODEL) to a model or adapter id listed by the server's /v1/models",
        )
    if status == 429:
        return ModelUnavailableError(
            f"model server at {base_url} is overloaded (HTTP 429)",
            hint="retry later or add capacity",
        )
    if isinstance(status, int) and 400 <= status < 500:
        return ModelUnavailableError(
            f"model server at {base_url} rejected the request (HTTP {status}): {_brief(exc)}",
            hint="the prompt may exceed the model's context, or the server lacks a feature (e.g. JSON-schema output)",
        )
    return ModelUnavailableError(
        f"model server at {base_url} is unreachable or failing"
        + (f" (HTTP {status})" if status else "")
        + f": {_brief(exc)}",
        hint="check the model server's logs and health",
    )


def _brief(exc: BaseException, limit: int = 300) -> str:
    text = " ".join(str(getattr(exc, "message", None) or exc).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
