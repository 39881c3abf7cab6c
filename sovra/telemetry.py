"""OpenTelemetry tracing setup.

Spans go to an OTLP/HTTP collector when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set (the exporter
reads the standard ``OTEL_EXPORTER_OTLP_*`` variables itself); otherwise spans are created but
not exported, so tracing costs little and never needs a network. Tests ask for an in-memory
exporter. If the host application already installed an SDK tracer provider we use theirs.
"""

from __future__ import annotations

import logging
import os
import threading

from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

log = logging.getLogger(__name__)

TRACER_NAME = "sovra"

_lock = threading.Lock()
_provider: TracerProvider | None = None
_memory: InMemorySpanExporter | None = None


def configure_tracing(service_name: str = "sovra", *, in_memory: bool = False) -> TracerProvider:
    """Install (once) and return the global tracer provider.

    Calling it again returns the same provider; ``in_memory=True`` additionally attaches an
    :class:`InMemorySpanExporter` (see :func:`memory_exporter`) if none is attached yet.
    """
    global _provider, _memory
    with _lock:
        if _provider is None:
            existing = trace.get_tracer_provider()
            if isinstance(existing, TracerProvider):
                _provider = existing  # the host app owns tracing; add nothing to its pipeline
            else:
                name = os.environ.get("OTEL_SERVICE_NAME") or service_name
                _provider = TracerProvider(resource=Resource.create({SERVICE_NAME: name}))
                endpoint = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get(
                    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
                )
                if endpoint:
                    # Imported lazily: it pulls in protobuf and requests, which plain runs skip.
                    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

                    _provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
                    log.info("exporting traces over OTLP/HTTP to %s", endpoint)
                trace.set_tracer_provider(_provider)
        if in_memory and _memory is None:
            _memory = InMemorySpanExporter()
            _provider.add_span_processor(SimpleSpanProcessor(_memory))
        return _provider


def memory_exporter() -> InMemorySpanExporter | None:
    """The in-memory exporter attached by ``configure_tracing(in_memory=True)``, if any."""
    return _memory


def get_tracer() -> trace.Tracer:
    return trace.get_tracer(TRACER_NAME)


def trace_ids(span: trace.Span) -> tuple[str | None, str | None]:
    """(trace_id, span_id) as lowercase hex, or (None, None) for a non-recording no-op span."""
    ctx = span.get_span_context()
    if not ctx.is_valid:
        return None, None
    return format(ctx.trace_id, "032x"), format(ctx.span_id, "016x")


def gen_ai_attributes(
    *, model: str, input_tokens: int | None = None, output_tokens: int | None = None, operation: str = "chat"
) -> dict[str, str | int]:
    """Span attributes from the OpenTelemetry GenAI semantic conventions for one model call."""
    attrs: dict[str, str | int] = {"gen_ai.operation.name": operation, "gen_ai.request.model": model}
    if input_tokens is not None:
        attrs["gen_ai.usage.input_tokens"] = input_tokens
    if output_tokens is not None:
        attrs["gen_ai.usage.output_tokens"] = output_tokens
    return attrs
