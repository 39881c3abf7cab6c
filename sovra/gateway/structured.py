"""JSON output constrained to a schema: request parameters per server, validation, error text."""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from sovra.gateway.records import M, Messages, _Result
from sovra.routes import Route


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


def _unmask(result: _Result, text: str) -> str:
    return result.masker.unmask(text) if result.masker else text
