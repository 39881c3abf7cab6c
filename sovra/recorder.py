"""RunRecorder: one object that writes a run to both the audit log and the trace.

Every audit record carries the hex trace id and span id of the span it describes, and every
span carries ``sovra.run_id`` (and ``sovra.audit.seq`` once its record is written), so an auditor
can go from a record to the trace and an engineer from a trace to the records.

::

    with RunRecorder(audit, user_id="alice", groups=["finance"], interface="cli", question=q) as rec:
        with rec.step("tool.search_documents", args={"query": q}) as step:
            hits = search(q)
            step.result = {"chunks": [h.id for h in hits], "scores": [h.score for h in hits]}
        rec.model_call(model="local", input_tokens=812, output_tokens=95, duration_ms=640.0)
        rec.finish(answer=text, citations=[h.id for h in hits])
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.util.types import AttributeValue

from sovra.audit import RUN_END, RUN_ERROR, RUN_START, AuditLog, AuditRecord, new_run_id
from sovra.telemetry import configure_tracing, gen_ai_attributes, get_tracer, trace_ids


@dataclass
class Step:
    """Handle for a running step: set ``result`` (JSON-able) before the block ends."""

    kind: str
    args: Any
    span: trace.Span
    result: Any = None
    attributes: dict[str, AttributeValue] = field(default_factory=dict)

    def set_attribute(self, key: str, value: AttributeValue) -> None:
        """Put an attribute on the step's span and keep it in the audit record too."""
        self.span.set_attribute(key, value)
        self.attributes[key] = value


def _error(exc: BaseException) -> dict[str, str]:
    return {"type": type(exc).__name__, "message": str(exc)}


class RunRecorder:
    """Context manager around one agent run. ``run_id`` is a time-ordered UUIDv7 in hex.

    The audit record of a step is appended (and fsynced) before the step's ``with`` block
    returns, so nothing the step produced is visible before it is on record.
    """

    def __init__(
        self,
        audit: AuditLog,
        *,
        user_id: str,
        interface: str,
        question: str,
        groups: Sequence[str] = (),
        tracer: trace.Tracer | None = None,
        run_id: str | None = None,
    ) -> None:
        if tracer is None:
            configure_tracing()  # idempotent; without it spans would be no-ops with no ids
            tracer = get_tracer()
        self.audit = audit
        self.user_id = user_id
        self.interface = interface
        self.question = question
        self.groups = tuple(groups)
        self.run_id = run_id or new_run_id()
        self.trace_id: str | None = None
        self._tracer = tracer
        self._root: trace.Span | None = None
        self._root_cm: AbstractContextManager[trace.Span] | None = None
        self._finished = False

    # -- run lifecycle ---------------------------------------------------------------------

    def __enter__(self) -> RunRecorder:
        if self._root is not None:
            raise RuntimeError("a RunRecorder can be entered only once")
        self._root_cm = self._tracer.start_as_current_span(
            "sovra.run", attributes={"sovra.run_id": self.run_id, "sovra.interface": self.interface}
        )
        self._root = self._root_cm.__enter__()
        self.trace_id = trace_ids(self._root)[0]
        try:
            self._append(
                RUN_START,
                {
                    "user": self.user_id,
                    "groups": list(self.groups),
                    "interface": self.interface,
                    "question": self.question,
                },
                self._root,
            )
        except BaseException as exc:
            self._root_cm.__exit__(type(exc), exc, exc.__traceback__)
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._root is not None and self._root_cm is not None
        try:
            if exc is not None:
                self._append(RUN_ERROR, _error(exc), self._root)
            elif not self._finished:
                self._append(RUN_END, {"answer": None, "citations": [], "finished": False}, self._root)
        finally:
            self._root_cm.__exit__(exc_type, exc, tb)  # records the exception on the root span

    def finish(self, answer: Any = None, citations: Sequence[Any] = ()) -> AuditRecord:
        """Record the run's outcome (``run.end``). Call it once, inside the ``with`` block."""
        root = self._require_open()
        if self._finished:
            raise RuntimeError(f"run {self.run_id} was already finished")
        self._finished = True
        return self._append(RUN_END, {"answer": answer, "citations": list(citations)}, root)

    # -- steps and events ------------------------------------------------------------------

    @contextmanager
    def step(
        self, kind: str, args: Any = None, *, attributes: Mapping[str, AttributeValue] | None = None
    ) -> Iterator[Step]:
        """A child span named ``kind``; on exit ONE audit record of that kind with args, result,
        duration_ms and (if the block raised) the error, which is then re-raised."""
        self._require_open()
        with self._tracer.start_as_current_span(
            kind, context=self._parent_context(), attributes={"sovra.run_id": self.run_id, **(attributes or {})}
        ) as span:
            step = Step(kind=kind, args=args, span=span)
            started = time.perf_counter()
            failure: BaseException | None = None
            try:
                yield step
            except BaseException as exc:
                failure = exc
                raise
            finally:
                data: dict[str, Any] = {
                    "args": args,
                    "result": step.result,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 3),
                }
                if step.attributes:
                    data["attributes"] = step.attributes
                if failure is not None:
                    data["error"] = _error(failure)
                self._append(kind, data, span)

    def record(
        self,
        kind: str,
        data: Any = None,
        *,
        attributes: Mapping[str, AttributeValue] | None = None,
        duration_ms: float | None = None,
        span_name: str | None = None,
    ) -> AuditRecord:
        """A point event (a plan, a model call): a short child span plus one audit record.

        ``duration_ms``, when known, back-dates the span's start so the trace shows the real
        length of something that already happened.
        """
        self._require_open()
        end_ns = time.time_ns()
        start_ns = end_ns - int(duration_ms * 1e6) if duration_ms is not None else end_ns
        span = self._tracer.start_span(
            span_name or kind,
            context=self._parent_context(),
            attributes={"sovra.run_id": self.run_id, **(attributes or {})},
            start_time=start_ns,
        )
        try:
            return self._append(kind, data, span)
        finally:
            span.end(end_time=end_ns)

    def model_call(
        self,
        *,
        model: str,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        operation: str = "chat",
        duration_ms: float | None = None,
        **data: Any,
    ) -> AuditRecord:
        """Record a finished model call with OpenTelemetry GenAI attributes (``model.call``)."""
        attrs = gen_ai_attributes(
            model=model, input_tokens=input_tokens, output_tokens=output_tokens, operation=operation
        )
        payload = {
            "model": model,
            "operation": operation,
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "duration_ms": duration_ms,
            **data,
        }
        return self.record(
            "model.call", payload, attributes=attrs, duration_ms=duration_ms, span_name=f"{operation} {model}"
        )

    # -- internals -------------------------------------------------------------------------

    def _require_open(self) -> trace.Span:
        if self._root is None:
            raise RuntimeError("use the RunRecorder as a context manager: `with RunRecorder(...) as rec:`")
        return self._root

    def _parent_context(self) -> otel_context.Context | None:
        """Parent new spans on the current span when it belongs to this run, else on the root.

        Steps may run on worker threads that did not inherit the context; they must still land
        in this run's trace.
        """
        assert self._root is not None
        current = trace.get_current_span().get_span_context()
        if current.is_valid and current.trace_id == self._root.get_span_context().trace_id:
            return None
        return trace.set_span_in_context(self._root)

    def _append(self, kind: str, data: Any, span: trace.Span) -> AuditRecord:
        trace_id, span_id = trace_ids(span)
        rec = self.audit.append(
            kind, data, run_id=self.run_id, user_id=self.user_id, trace_id=trace_id, span_id=span_id
        )
        span.set_attribute("sovra.audit.seq", rec.seq)
        return rec
