"""The model gateway: every model call goes through here, via litellm, to an OpenAI-compatible server.

In production that server is vLLM (``SOVRA_LLM_BASE_URL``); with no URL it is the embedded
llama.cpp server from :mod:`sovra.local_llm`. Both are reached through the same litellm call, so
the local default exercises the production code path.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ValidationError

from sovra.config import Settings
from sovra.errors import ModelOutputError, ModelUnavailableError
from sovra.local_llm import LocalModelServer, default_model_path

if TYPE_CHECKING:
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

    route: str
    model: str
    base_url: str
    params: dict[str, Any]
    prompt_tokens: int | None
    completion_tokens: int | None
    latency_ms: float
    output: str  # the raw text of the last attempt
    attempts: int


@dataclass
class _Attempt:
    text: str
    prompt_tokens: int | None
    completion_tokens: int | None
    latency_ms: float
    finish_reason: str | None = None


@dataclass
class _Totals:
    attempts: list[_Attempt] = field(default_factory=list)

    def call(self, route: str, model: str, base_url: str, params: dict[str, Any]) -> ModelCall:
        def total(values: list[int | None]) -> int | None:
            return None if any(v is None for v in values) else sum(v or 0 for v in values)

        return ModelCall(
            route=route,
            model=model,
            base_url=base_url,
            params=params,
            prompt_tokens=total([a.prompt_tokens for a in self.attempts]),
            completion_tokens=total([a.completion_tokens for a in self.attempts]),
            latency_ms=sum(a.latency_ms for a in self.attempts),
            output=self.attempts[-1].text if self.attempts else "",
            attempts=len(self.attempts),
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


class ModelGateway:
    """Typed completions from the configured model. Cheap to construct; connects lazily."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._local: LocalModelServer | None = None
        self._lock = threading.Lock()

    @property
    def is_local(self) -> bool:
        return self._settings.llm_base_url is None

    @property
    def model_name(self) -> str:
        """The model id sent to the server (for the local model: the same alias it serves)."""
        return self._settings.llm_model

    def _endpoint(self) -> tuple[str, str]:
        """Base URL and API key, starting the local server on first use."""
        s = self._settings
        if s.llm_base_url is not None:
            # Always pass a key: otherwise the OpenAI client falls back to $OPENAI_API_KEY and
            # would send that secret to our own server.
            return s.llm_base_url.rstrip("/"), s.llm_api_key or "no-key"
        with self._lock:
            if self._local is None:
                self._local = LocalModelServer(
                    s.local_model_path or default_model_path(),
                    log_dir=s.paths.root / "logs",
                    threads=s.local_model_threads,
                    ctx=s.local_model_ctx,
                    alias=s.llm_model,
                    start_timeout_s=max(60.0, s.llm_timeout_s),
                )
            local = self._local
        return local.start(), local.api_key

    def _response_format(self, schema: type[BaseModel]) -> dict[str, Any]:
        json_schema = schema.model_json_schema()
        if self.is_local:
            # llama-cpp-python's server only builds a grammar from this (Anyscale-style) shape;
            # it rejects type "json_schema" with HTTP 422 (its request type is a Literal).
            return {"type": "json_object", "schema": json_schema}
        # The OpenAI shape, which vLLM turns into guided decoding.
        return {
            "type": "json_schema",
            "json_schema": {"name": schema.__name__, "schema": json_schema, "strict": True},
        }

    def _complete(
        self,
        messages: list[dict[str, str]],
        *,
        max_tokens: int,
        temperature: float,
        response_format: dict[str, Any] | None,
    ) -> _Attempt:
        litellm = _get_litellm()
        import openai  # already loaded by litellm; kept out of module import time

        base_url, api_key = self._endpoint()
        kwargs: dict[str, Any] = {}
        if response_format is not None:
            kwargs["response_format"] = response_format
        t0 = time.perf_counter()
        try:
            resp = litellm.completion(
                model=f"openai/{self.model_name}",
                api_base=base_url,
                api_key=api_key,
                messages=messages,
                max_tokens=max_tokens,
                temperature=temperature,
                timeout=self._settings.llm_timeout_s,
                max_retries=0,  # the caller decides about retries; a dead server must fail fast
                num_retries=0,
                **kwargs,
            )
        except openai.APIError as exc:
            raise _unavailable(exc, base_url, self._settings.llm_timeout_s) from exc
        latency_ms = (time.perf_counter() - t0) * 1000.0
        choice = resp.choices[0]
        text = choice.message.content or ""
        usage = getattr(resp, "usage", None)
        return _Attempt(
            text=text,
            prompt_tokens=getattr(usage, "prompt_tokens", None),
            completion_tokens=getattr(usage, "completion_tokens", None),
            latency_ms=latency_ms,
            finish_reason=getattr(choice, "finish_reason", None),
        )

    def complete_text(
        self,
        messages: list[dict[str, str]],
        *,
        route: str = "chat",
        max_tokens: int | None = None,
        temperature: float = 0.0,
    ) -> tuple[str, ModelCall]:
        max_tokens = max_tokens or self._settings.llm_max_tokens
        attempt = self._complete(messages, max_tokens=max_tokens, temperature=temperature, response_format=None)
        params = {"max_tokens": max_tokens, "temperature": temperature}
        call = _Totals([attempt]).call(route, self.model_name, self._base_url_label(), params)
        return attempt.text, call

    def complete_json(
        self,
        messages: list[dict[str, str]],
        schema: type[M],
        *,
        route: str = "chat",
        max_tokens: int | None = None,
        temperature: float = 0.0,
    ) -> tuple[M, ModelCall]:
        """Ask for JSON constrained to ``schema``; validate it, retrying once with the error."""
        max_tokens = max_tokens or self._settings.llm_max_tokens
        response_format = self._response_format(schema)
        params = {
            "max_tokens": max_tokens,
            "temperature": temperature,
            "response_format": response_format["type"],
            "schema": schema.__name__,
        }
        convo = _with_schema_instruction(messages, response_format)
        totals = _Totals()
        error: ValidationError | None = None
        for _ in range(2):
            attempt = self._complete(
                convo,
                max_tokens=max_tokens,
                temperature=temperature,
                response_format=response_format,
            )
            totals.attempts.append(attempt)
            try:
                value = _validate(schema, attempt.text)
            except ValidationError as exc:
                error = exc
                log.info("model output did not match %s; asking again", schema.__name__)
                convo = [
                    *convo,
                    {"role": "assistant", "content": attempt.text},
                    {
                        "role": "user",
                        "content": "That reply is not valid for the schema: "
                        f"{_short_errors(exc)}. Reply again with only the corrected JSON object.",
                    },
                ]
                continue
            return value, totals.call(route, self.model_name, self._base_url_label(), params)
        assert error is not None
        cut = totals.attempts[-1].finish_reason == "length"
        raise ModelOutputError(
            f"model {self.model_name!r} answered twice with output that does not match "
            f"{schema.__name__}: {_short_errors(error)}"
            + (f" (the reply was cut off at max_tokens={max_tokens})" if cut else ""),
            hint="use a larger model (SOVRA_LLM_MODEL), raise SOVRA_LLM_MAX_TOKENS if the JSON "
            "was cut off, or make sure the server supports JSON-schema constrained decoding",
        )

    def _base_url_label(self) -> str:
        if self._settings.llm_base_url is not None:
            return self._settings.llm_base_url.rstrip("/")
        return self._local.base_url if self._local is not None else "local"

    def close(self) -> None:
        """Stop the local model server if this gateway started one (idempotent)."""
        with self._lock:
            local, self._local = self._local, None
        if local is not None:
            local.close()

    def __enter__(self) -> ModelGateway:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _with_schema_instruction(messages: list[dict[str, str]], response_format: dict[str, Any]) -> list[dict[str, str]]:
    # Constrained decoding guarantees the shape; telling the model the schema too is what makes
    # the values sensible (small models otherwise fill fields with noise).
    schema = response_format.get("schema") or response_format["json_schema"]["schema"]
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
    chain: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and len(chain) < 10:
        chain.append(cur)
        cur = cur.__cause__ or cur.__context__
    if any(isinstance(e, openai.APITimeoutError) for e in chain):
        return ModelUnavailableError(
            f"model server at {base_url} is unreachable: no answer within {timeout_s:g} s",
            hint="check the server's load, or raise SOVRA_LLM_TIMEOUT_S",
        )
    if any(isinstance(e, openai.APIConnectionError) for e in chain):
        return ModelUnavailableError(
            f"model server at {base_url} is unreachable: {_brief(chain[-1])}",
            hint="check that the server is running and SOVRA_LLM_BASE_URL is right",
        )
    if status in (401, 403):
        return ModelUnavailableError(
            f"model server at {base_url} refused our credentials (HTTP {status})",
            hint="set SOVRA_LLM_API_KEY to a key the server accepts",
        )
    if status == 404:
        return ModelUnavailableError(
            f"model server at {base_url} does not know the requested model (HTTP 404)",
            hint="set SOVRA_LLM_MODEL to a model or adapter id listed by the server's /v1/models",
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
