"""``ModelGateway``: typed completions, tool calls, streams and embeddings, routed by task."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from sovra.errors import ModelOutputError
from sovra.gateway import checks
from sovra.gateway.core import GatewayCore
from sovra.gateway.litellm_setup import _get_litellm
from sovra.gateway.records import M, Messages, ModelCall, ToolCall, _Ledger
from sovra.gateway.spans import _finish_span, _span
from sovra.gateway.streaming import TextStream
from sovra.gateway.structured import _short_errors, _structured_mode, _unmask, _validate, _with_schema_instruction
from sovra.routes import Route

if TYPE_CHECKING:
    import openai

log = logging.getLogger("sovra.gateway")


class ModelGateway(GatewayCore):
    """Typed completions, tool calls, streams and embeddings, routed by task. Connects lazily."""

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
        on_text: Callable[[str], None] | None = None,
    ) -> tuple[M, ModelCall]:
        """Ask for JSON constrained to ``schema``; validate it, retrying once with the error.

        ``on_text``: on a served route (a URL, not the bundled model), the reply is streamed and
        ``on_text`` is called with the JSON text received so far after each piece, so a caller can
        show a field as it is written. The value returned is validated as without it; a retry after
        invalid output is not streamed."""
        json_schema = schema.model_json_schema()
        served = self.routes.route(route)[1]
        params = {
            **self._params(route, max_tokens, temperature),
            "response_format": _structured_mode(served),
            "schema": schema.__name__,
        }
        send = self._chat_sender(max_tokens, temperature, _schema=(schema.__name__, json_schema))
        stream = None
        if on_text is not None and served.base_url is not None:
            stream = self._chat_sender(
                max_tokens,
                temperature,
                _schema=(schema.__name__, json_schema),
                stream=True,
                stream_options={"include_usage": True},
            )
        convo = _with_schema_instruction(messages, json_schema)
        ledger = _Ledger(route)
        error: ValidationError | None = None
        with _span("chat", route, self) as span:
            for _ in range(2):
                if stream is not None and on_text is not None:
                    result = self._run(route, ledger, stream, convo)
                    received: list[str] = []
                    for piece in TextStream(result, ledger, params):
                        received.append(piece)
                        # Unmasked whole again: a masked value may be split across two pieces.
                        on_text(_unmask(result, "".join(received)))
                    text, stream = _unmask(result, "".join(received)), None
                else:
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
        return checks.check_routes(self, include_local=include_local)

    def health(self) -> dict[str, bool]:
        """Each remote server's ``/health`` (vLLM serves it at the root, beside ``/v1``)."""
        return checks.health(self)
