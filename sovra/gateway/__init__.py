"""The model gateway: every model call goes through here, via litellm, to an OpenAI-compatible server.

Calls are routed by task (``chat``, ``planning``, ``extraction``...; see :mod:`sovra.routes`) to a
model or LoRA adapter on a server: vLLM in production, or, for a route with no ``base_url``, the
embedded llama.cpp server from :mod:`sovra.local_llm`. Both are reached through the same litellm
call, so the local default exercises the production code path.

Around each call: the host allow-list (checked by name before any connection, and again in the
HTTP transport), PII masking for routes marked external, a per-endpoint concurrency limit and
circuit breaker, bounded retries with backoff on connection errors / 429 / 5xx, fallbacks to other
routes, and one OpenTelemetry client span with GenAI semantic-convention attributes.

Modules: ``client`` (ModelGateway, the typed calls), ``core`` (routing, retries, fallbacks,
guards), ``streaming``, ``structured`` (JSON-schema output), ``checks`` (``/v1/models``,
``/health``), ``embedder`` (a gateway-backed ``Embeds`` for ingestion and search), ``failures``
(error classification and messages), ``spans``, ``transport`` (the allow-listed HTTP client),
``litellm_setup``. Everything importable from ``sovra.gateway`` before the split still is.
"""

from __future__ import annotations

from sovra.gateway.client import ModelGateway
from sovra.gateway.core import GatewayCore
from sovra.gateway.failures import _brief, _chain, _is_timeout, _reraise_policy, _retry_info, _unavailable
from sovra.gateway.litellm_setup import _get_litellm
from sovra.gateway.records import M, Messages, ModelCall, Sender, ToolCall, _Ledger, _Result
from sovra.gateway.spans import _client_kind, _finish_span, _span
from sovra.gateway.streaming import TextStream, _StreamSummary
from sovra.gateway.structured import (
    _short_errors,
    _structured_kwargs,
    _structured_mode,
    _unmask,
    _validate,
    _with_schema_instruction,
)
from sovra.gateway.transport import _guarded_http_client

# The private helpers stay importable from here as they were before the split (tests, benchmarks).
__all__ = [
    "GatewayCore",
    "M",
    "Messages",
    "ModelCall",
    "ModelGateway",
    "Sender",
    "TextStream",
    "ToolCall",
    "_Ledger",
    "_Result",
    "_StreamSummary",
    "_brief",
    "_chain",
    "_client_kind",
    "_finish_span",
    "_get_litellm",
    "_guarded_http_client",
    "_is_timeout",
    "_reraise_policy",
    "_retry_info",
    "_short_errors",
    "_span",
    "_structured_kwargs",
    "_structured_mode",
    "_unavailable",
    "_unmask",
    "_validate",
    "_with_schema_instruction",
]
