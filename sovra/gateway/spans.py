"""One OpenTelemetry client span per gateway call, with GenAI semantic-convention attributes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from sovra.gateway.records import ModelCall

if TYPE_CHECKING:
    from sovra.gateway.core import GatewayCore


class _span:
    """One OTel client span per gateway call, named as the GenAI conventions say: ``{op} {model}``."""

    def __init__(self, operation: str, task: str, gateway: GatewayCore) -> None:
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
