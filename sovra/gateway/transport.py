"""The HTTP client every model request goes through: allow-listed hosts only, no proxies from env."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sovra.routes import check_host

if TYPE_CHECKING:
    import httpx
    import openai


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


def _no_retry_openai_client(base_url: str, api_key: str, http: httpx.Client) -> openai.OpenAI:
    """An OpenAI client that never retries: retries are ours (bounded, with backoff, breaker-aware).

    ``max_retries=0`` alone is not enough: litellm's embedding path turns a 0 into its default (2)
    and writes that onto the client it is given (``_set_dynamic_params_on_client``), which would
    silently add hidden retries to every later call on the shared client.
    """
    import openai

    class NoRetryOpenAI(openai.OpenAI):
        @property  # type: ignore[override]
        def max_retries(self) -> int:
            return 0

        @max_retries.setter
        def max_retries(self, value: int) -> None:
            pass

    # (openai types http_client against its own httpx fork; an httpx.Client is what it uses.)
    return NoRetryOpenAI(base_url=base_url, api_key=api_key, max_retries=0, http_client=http)  # type: ignore[arg-type]
