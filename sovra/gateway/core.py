"""The gateway's call path: routes to endpoints, clients, retries with backoff, fallbacks, guards.

``GatewayCore`` sends one logical request on a task's route: the host allow-list (checked by name
before any connection, and again in the HTTP transport), PII masking for routes marked external,
a per-endpoint concurrency limit and circuit breaker, bounded retries with backoff on connection
errors / 429 / 5xx, then the route's fallbacks. :class:`sovra.gateway.ModelGateway` builds the
typed public calls on top of it.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Self

from sovra.config import Settings
from sovra.errors import ConfigError, ModelUnavailableError
from sovra.gateway.failures import _is_timeout, _reraise_policy, _retry_info, _unavailable
from sovra.gateway.litellm_setup import _get_litellm
from sovra.gateway.records import Messages, Sender, _Ledger, _Result
from sovra.gateway.structured import _structured_kwargs
from sovra.gateway.transport import _guarded_http_client, _no_retry_openai_client
from sovra.local_llm import LocalModelServer, default_model_path
from sovra.pii import Masker
from sovra.resilience import CircuitBreaker, ConcurrencyLimit, retry_delay
from sovra.routes import Route, RoutesConfig, check_host

if TYPE_CHECKING:
    import httpx
    import openai

log = logging.getLogger("sovra.gateway")


class GatewayCore:
    """Routing, endpoints and the resilient request loop. Connects lazily."""

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
        with self._lock:
            client = self._clients.get((base_url, api_key))
            if client is None:
                if self._http is None:
                    self._http = _guarded_http_client(self._allowed, 120.0)
                client = _no_retry_openai_client(base_url, api_key, self._http)
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

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
