"""Turning what litellm and the OpenAI client raise into retry decisions and clear messages."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from sovra.errors import ModelUnavailableError
from sovra.routes import HostNotAllowedError

if TYPE_CHECKING:
    import openai


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
