"""A small, faithful stand-in for vLLM's OpenAI-compatible server, at the HTTP boundary.

Follows vLLM's documented API (docs.vllm.ai, "OpenAI-Compatible Server"):
- ``GET /v1/models`` lists the base model and every LoRA adapter started with ``--lora-modules``;
  an adapter's ``parent`` (and ``root``) is the base model, the base model's ``parent`` is null.
- ``GET /health`` answers 200 with an empty body.
- ``POST /v1/chat/completions``: the adapter name is the model id; ``response_format`` of type
  ``json_schema`` (and the ``guided_json`` extra parameter) constrain the output to the schema;
  ``tools`` + ``tool_choice`` give ``message.tool_calls`` in the OpenAI shape (arguments as a
  JSON string, ``finish_reason: "tool_calls"``); ``stream: true`` sends server-sent events ending
  in ``data: [DONE]``, with a usage chunk when ``stream_options.include_usage`` is set.
- ``POST /v1/embeddings`` for an embedding model (``input`` a string or a list of strings;
  ``encoding_format`` ``float`` or ``base64``, the latter little-endian float32, which is what the
  OpenAI client asks for by default); vectors are L2-normalised, ``embedding_dim`` long.
- Errors use vLLM's ``ErrorResponse``: ``{"object": "error", "message", "type", "param", "code"}``;
  an unknown model is a 404 ``NotFoundError``; an overloaded server may answer 429 with Retry-After.

Scripted faults (one ``Reply`` per request, in order; with the script empty it asks ``responder``, if set,
for a reply chosen from the request body, else behaves normally):
status 0 hangs until ``close()``; ``raw_body`` sends bytes as they are (invalid JSON);
``cut_after`` closes the socket mid-stream after that many content chunks.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    status: int = 200
    content: str | None = None  # None: make one up (schema-valid under response_format)
    tool_calls: list[dict[str, Any]] | None = None  # [{"name":..., "arguments": {...} or raw str}]
    retry_after: str | None = None
    raw_body: bytes | None = None
    cut_after: int | None = None
    message: str = "scripted error"


def sample_from_schema(schema: dict[str, Any], defs: dict[str, Any] | None = None) -> Any:
    """A minimal instance of a JSON schema: what guided decoding guarantees, shape-wise."""
    defs = defs if defs is not None else schema.get("$defs", {})
    if "$ref" in schema:
        return sample_from_schema(defs[schema["$ref"].rsplit("/", 1)[-1]], defs)
    if "enum" in schema:
        return schema["enum"][0]
    if "anyOf" in schema:
        return sample_from_schema(schema["anyOf"][0], defs)
    kind = schema.get("type", "object")
    if kind == "object":
        props = schema.get("properties", {})
        return {k: sample_from_schema(v, defs) for k, v in props.items()}
    if kind == "array":
        return [sample_from_schema(schema.get("items", {}), defs)] * max(1, schema.get("minItems", 1))
    if kind == "string":
        return "x" * max(1, schema.get("minLength", 1))
    if kind == "boolean":
        return True
    if kind == "integer":
        return int(schema.get("minimum", 1))
    if kind == "number":
        return float(schema.get("minimum", 1.0))
    return None


def fake_embedding(text: str, dim: int) -> list[float]:
    """A deterministic stand-in for a sentence embedding: the normalised sum of one pseudo-random
    vector per lowercased word, so texts sharing words are close (search over it makes sense)."""
    total = [0.0] * dim
    for word in re.findall(r"\w+", text.lower()) or [""]:
        seed = hashlib.sha256(word.encode()).digest()
        while len(seed) < dim:
            seed += hashlib.sha256(seed).digest()
        for j in range(dim):
            total[j] += seed[j] / 127.5 - 1.0
    norm = math.sqrt(sum(v * v for v in total)) or 1.0
    return [v / norm for v in total]


def _error(message: str, err_type: str, code: int) -> dict[str, Any]:
    return {"object": "error", "message": message, "type": err_type, "param": None, "code": code}


class FakeVLLM:
    """vLLM serving ``base_model`` with LoRA ``adapters`` (and optionally an embedding model)."""

    def __init__(
        self,
        base_model: str = "meta-llama/Llama-3.1-8B-Instruct",
        adapters: tuple[str, ...] = ("contracts-lora", "kyc-lora"),
        embedding_model: str | None = None,
        script: list[Reply] | None = None,
        api_key: str | None = None,
        embedding_dim: int = 8,
    ) -> None:
        self.base_model = base_model
        self.embedding_dim = embedding_dim
        self.embedded: list[str] = []  # every text sent to /v1/embeddings, in order
        self.adapters = adapters
        self.embedding_model = embedding_model
        self.script = list(script or [])
        # With the script empty: a reply chosen from the request body (None: the default reply), for
        # requests whose order is not fixed (several in flight at once).
        self.responder: Callable[[dict[str, Any]], Reply | None] | None = None
        self.api_key = api_key
        self.requests: list[dict[str, Any]] = []
        self.paths: list[str] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.release = threading.Event()
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive and chunked streaming, as uvicorn does
            disable_nagle_algorithm = True  # headers and body go out in separate writes

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                fake.paths.append(self.path)
                if self.path == "/health":
                    self._send(200, b"", "application/json")
                elif self.path == "/v1/models":
                    self._json(200, fake.models_payload())
                else:
                    self._json(404, {"detail": "Not Found"})

            def do_POST(self) -> None:
                fake.paths.append(self.path)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with fake._lock:
                    fake.requests.append({"path": self.path, "headers": dict(self.headers.items()), "body": body})
                    fake.in_flight += 1
                    fake.max_in_flight = max(fake.max_in_flight, fake.in_flight)
                    scripted = fake.script.pop(0) if fake.script else None
                try:
                    # The responder runs outside the lock: it may wait for other requests to arrive.
                    reply = scripted or (fake.responder(body) if fake.responder else None) or Reply()
                    self._handle(body, reply)
                finally:
                    with fake._lock:
                        fake.in_flight -= 1

            def _handle(self, body: dict[str, Any], reply: Reply) -> None:
                if fake.api_key and self.headers.get("Authorization") != f"Bearer {fake.api_key}":
                    self._json(401, {"error": "Unauthorized"})  # vLLM's --api-key middleware shape
                    return
                if reply.status == 0:
                    fake.release.wait()
                    self.close_connection = True
                    return
                if reply.raw_body is not None:
                    self._send(reply.status, reply.raw_body, "application/json")
                    return
                if reply.status != 200:
                    extra = {"Retry-After": reply.retry_after} if reply.retry_after else {}
                    kind = {429: "TooManyRequests", 400: "BadRequestError"}.get(reply.status, "InternalServerError")
                    self._json(reply.status, _error(reply.message, kind, reply.status), extra)
                    return
                if self.path == "/v1/embeddings":
                    self._embeddings(body)
                elif self.path == "/v1/chat/completions":
                    self._chat(body, reply)
                else:
                    self._json(404, {"detail": "Not Found"})

            def _chat(self, body: dict[str, Any], reply: Reply) -> None:
                model = body.get("model")
                if model not in (fake.base_model, *fake.adapters):
                    self._json(404, _error(f"The model `{model}` does not exist.", "NotFoundError", 404))
                    return
                schema, err = _requested_schema(body)
                if err:
                    self._json(400, _error(err, "BadRequestError", 400))
                    return
                tool_calls = reply.tool_calls
                tools = body.get("tools") or []
                choice = body.get("tool_choice", "auto" if tools else "none")
                if tool_calls is None and tools and choice != "none" and choice != "auto":
                    name = choice["function"]["name"] if isinstance(choice, dict) else tools[0]["function"]["name"]
                    params = next(t["function"].get("parameters", {}) for t in tools if t["function"]["name"] == name)
                    tool_calls = [{"name": name, "arguments": sample_from_schema(params)}]
                content = reply.content
                if content is None and not tool_calls:
                    content = json.dumps(sample_from_schema(schema)) if schema is not None else "ok"
                message: dict[str, Any] = {"role": "assistant", "content": content if not tool_calls else None}
                if tool_calls:
                    message["tool_calls"] = [
                        {
                            "id": f"chatcmpl-tool-{i}",
                            "type": "function",
                            "function": {"name": tc["name"], "arguments": _args(tc["arguments"])},
                        }
                        for i, tc in enumerate(tool_calls)
                    ]
                finish = "tool_calls" if tool_calls else "stop"
                prompt_tokens = sum(len(str(m.get("content") or "").split()) for m in body["messages"]) + 3
                completion_tokens = max(1, len((content or json.dumps(message.get("tool_calls"))).split()))
                usage = {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                }
                if body.get("stream"):
                    self._stream(model, content or "", usage, body, reply.cut_after)
                    return
                self._json(
                    200,
                    {
                        "id": f"chatcmpl-{len(fake.requests)}",
                        "object": "chat.completion",
                        "created": int(time.time()),
                        "model": model,
                        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
                        "usage": usage,
                    },
                )

            def _stream(
                self, model: str, content: str, usage: dict[str, int], body: dict[str, Any], cut: int | None
            ) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream; charset=utf-8")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                base = {
                    "id": "chatcmpl-s",
                    "object": "chat.completion.chunk",
                    "created": int(time.time()),
                    "model": model,
                }

                def event(payload: Any) -> None:
                    data = ("data: " + (payload if isinstance(payload, str) else json.dumps(payload)) + "\n\n").encode()
                    self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                    self.wfile.flush()

                pieces = [w + " " for w in content.split(" ")]
                pieces[-1] = pieces[-1][:-1]
                event(
                    {
                        **base,
                        "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}],
                    }
                )
                for i, piece in enumerate(pieces):
                    if cut is not None and i >= cut:
                        # The process died mid-answer: no terminating chunk, no [DONE].
                        self.connection.shutdown(socket.SHUT_RDWR)
                        self.close_connection = True
                        return
                    event({**base, "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]})
                event({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
                if (body.get("stream_options") or {}).get("include_usage"):
                    event({**base, "choices": [], "usage": usage})
                event("[DONE]")
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()

            def _embeddings(self, body: dict[str, Any]) -> None:
                if body.get("model") != fake.embedding_model:
                    self._json(404, _error(f"The model `{body.get('model')}` does not exist.", "NotFoundError", 404))
                    return
                inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
                fmt = body.get("encoding_format") or "float"
                if fmt not in ("float", "base64"):
                    self._json(400, _error(f"unknown encoding_format {fmt!r}", "BadRequestError", 400))
                    return
                data = []
                for i, text in enumerate(inputs):
                    vec = fake_embedding(str(text), fake.embedding_dim)
                    # base64 is what the OpenAI client asks for by default: little-endian float32.
                    emb: Any = base64.b64encode(struct.pack(f"<{len(vec)}f", *vec)).decode() if fmt == "base64" else vec
                    data.append({"object": "embedding", "index": i, "embedding": emb})
                tokens = sum(len(str(t).split()) for t in inputs)
                with fake._lock:
                    fake.embedded.extend(str(t) for t in inputs)
                self._json(
                    200,
                    {
                        "id": f"embd-{len(fake.requests)}",
                        "object": "list",
                        "created": int(time.time()),
                        "model": body["model"],
                        "data": data,
                        "usage": {"prompt_tokens": tokens, "total_tokens": tokens, "completion_tokens": 0},
                    },
                )

            def _json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
                self._send(status, json.dumps(payload).encode(), "application/json", headers)

            def _send(self, status: int, data: bytes, ctype: str, headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def models_payload(self) -> dict[str, Any]:
        created = int(time.time())
        card = {"object": "model", "created": created, "owned_by": "vllm", "max_model_len": 8192, "permission": []}
        data = [{**card, "id": self.base_model, "root": self.base_model, "parent": None}]
        data += [{**card, "id": a, "root": self.base_model, "parent": self.base_model} for a in self.adapters]
        if self.embedding_model:
            data.append({**card, "id": self.embedding_model, "root": self.embedding_model, "parent": None})
        return {"object": "list", "data": data}

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def chat_bodies(self) -> list[dict[str, Any]]:
        return [r["body"] for r in self.requests if r["path"] == "/v1/chat/completions"]

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def _args(arguments: Any) -> str:
    # A str is sent as is: how a server without a proper tool-call parser leaks broken arguments.
    return arguments if isinstance(arguments, str) else json.dumps(arguments)


def _requested_schema(body: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
    """The JSON schema the request constrains output to, or a 400 message as vLLM would give."""
    if "guided_json" in body:
        g = body["guided_json"]
        return (json.loads(g) if isinstance(g, str) else g), None
    rf = body.get("response_format")
    if not rf or rf.get("type") == "text":
        return None, None
    if rf.get("type") == "json_schema":
        js = rf.get("json_schema") or {}
        if "schema" not in js:
            return None, "response_format.json_schema.schema is required"
        return js["schema"], None
    if rf.get("type") == "json_object":
        return {"type": "object", "properties": {}}, None
    return None, f"unknown response_format type {rf.get('type')!r}"
