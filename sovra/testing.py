"""Test your own agents, tools and connectors the way Sovra tests its own (see docs/sdk.md, "Testing").

::

    from sovra.runtime import Runtime
    from sovra.testing import Doc, ScriptedModel, assert_audited, assert_cited, call, say, temp_data_dir

    def test_vendor_agent_cites_the_note():
        script = [call("vendor_notes", question="Nimbus SOC 2"), say("Keller & Partner issues it [1].")]
        docs = [Doc("Nimbus Cloud", "Its SOC 2 report is issued by Keller & Partner.", acl={"group:finance"})]
        with ScriptedModel(script) as model, temp_data_dir({"bob": ["finance"]}, docs, model=model) as settings:
            runtime = Runtime(settings)
            answer = runtime.ask(agent, "Who issues the SOC 2 report of Nimbus Cloud?", "bob")
            assert_cited(answer, "Keller & Partner", source="Nimbus Cloud")
            assert_audited(runtime, answer, "tool.vendor_notes", "run.end")
            runtime.close()

- ``ScriptedModel``: an OpenAI-compatible server on localhost that answers each chat request with the
  next scripted reply, so the real gateway code (litellm, retries, JSON validation) runs as in
  production. ``call(tool, **args)`` is a tool call (a native ``tool_calls`` reply, or the JSON
  decision of an agent in ``tool_mode="json"``), ``say(text)`` a written reply (streamed when asked),
  ``finish()`` the end of the tool calls, ``reply_json(obj)`` a structured reply. A request past the
  end of the script fails with a message saying so. ``requests`` holds every request body.
- ``temp_data_dir(users, documents, model=...)``: a data dir with users and groups, documents with
  access lists ingested into the real index (the bundled embedding model), and settings pointing at
  the scripted model (or, with ``model=None``, at the bundled local model).
- ``assert_cited``, ``assert_not_found``, ``assert_audited``: what a good answer and its audit trail
  look like.

Part of the core: it imports nothing from agents/ or ui/.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import re
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from sovra.config import Settings
from sovra.documents import Document, Page

MODEL_ID = "sovra-scripted"


# ---------------------------------------------------------------------- the scripted model


@dataclass(frozen=True)
class Scripted:
    """One reply of a ``ScriptedModel``; make them with ``call``, ``say``, ``finish``, ``reply_json``."""

    kind: str  # "call" | "say" | "finish" | "json"
    name: str = ""
    arguments: dict[str, Any] = field(default_factory=dict)
    text: str = ""


def call(tool: str, /, **arguments: Any) -> Scripted:
    """The model calls ``tool`` with ``arguments``."""
    return Scripted("call", name=tool, arguments=arguments)


def say(text: str) -> Scripted:
    """The model writes ``text`` (the answer, or prose instead of a tool call)."""
    return Scripted("say", text=text)


def finish() -> Scripted:
    """The model calls no more tools (``{"tool": "final_answer"}`` in JSON mode)."""
    return Scripted("finish")


def reply_json(value: Any) -> Scripted:
    """The model replies with this JSON (an agent's ``output=`` schema, a supervisor's routing)."""
    return Scripted("json", text=json.dumps(value))


class ScriptedModel:
    """An OpenAI-compatible chat server that replies from a script; use as a context manager."""

    def __init__(self, script: Sequence[Scripted] = ()) -> None:
        self.script: list[Scripted] = list(script)
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def settings(self, data_dir: Path, **overrides: Any) -> Settings:
        """Settings for a data dir whose every model route is this server."""
        return Settings(data_dir=data_dir, llm_base_url=self.base_url, llm_model=MODEL_ID, **overrides)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> ScriptedModel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _next(self, body: dict[str, Any]) -> Scripted | None:
        with self._lock:
            self.requests.append(body)
            return self.script.pop(0) if self.script else None


def _message(reply: Scripted, body: dict[str, Any]) -> dict[str, Any]:
    native = bool(body.get("tools"))
    if reply.kind == "call" and native:
        args = json.dumps(reply.arguments)
        fn = {"id": f"call-{hashlib.sha1(args.encode()).hexdigest()[:8]}", "type": "function"}
        return {
            "role": "assistant",
            "content": None,
            "tool_calls": [{**fn, "function": {"name": reply.name, "arguments": args}}],
        }
    if reply.kind == "call":
        return {"role": "assistant", "content": json.dumps({"tool": reply.name, "args": reply.arguments})}
    if reply.kind == "finish":
        return {"role": "assistant", "content": "" if native else json.dumps({"tool": "final_answer"})}
    return {"role": "assistant", "content": reply.text}


def _handler(model: ScriptedModel) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            if self.path.rstrip("/").endswith("/models"):
                card = {"object": "model", "created": 0, "owned_by": "sovra", "root": MODEL_ID, "parent": None}
                self._json(200, {"object": "list", "data": [{**card, "id": MODEL_ID}]})
            else:
                self._json(200 if self.path == "/health" else 404, {})

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
            if not self.path.endswith("/chat/completions"):
                self._json(404, {"error": {"message": f"{self.path} is not served by ScriptedModel"}})
                return
            reply = model._next(body)
            if reply is None:
                message = f"ScriptedModel: request {len(model.requests)} came after the last scripted reply"
                self._json(400, {"object": "error", "message": message, "type": "BadRequestError", "code": 400})
                return
            msg = _message(reply, body)
            words = sum(len(str(m.get("content") or "").split()) for m in body.get("messages", []))
            usage = {"prompt_tokens": words + 3, "completion_tokens": len(str(msg).split())}
            usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
            finish_reason = "tool_calls" if msg.get("tool_calls") else "stop"
            if body.get("stream"):
                self._stream(msg.get("content") or "", usage, body)
                return
            choice = {"index": 0, "message": msg, "finish_reason": finish_reason}
            out = {"id": "chatcmpl", "object": "chat.completion", "created": int(time.time()), "model": MODEL_ID}
            self._json(200, {**out, "choices": [choice], "usage": usage})

        def _stream(self, content: str, usage: dict[str, int], body: dict[str, Any]) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            base = {"id": "chatcmpl", "object": "chat.completion.chunk", "created": int(time.time()), "model": MODEL_ID}

            def event(payload: Any) -> None:
                data = f"data: {payload if isinstance(payload, str) else json.dumps(payload)}\n\n".encode()
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")

            for piece in re.findall(r"\S+\s*|\s+", content) or [""]:
                event({**base, "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]})
            event({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
            if (body.get("stream_options") or {}).get("include_usage"):
                event({**base, "choices": [], "usage": usage})
            event("[DONE]")
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()

        def _json(self, status: int, payload: Any) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler


# ---------------------------------------------------------------------- a data dir


@dataclass(frozen=True)
class Doc:
    """A document for ``temp_data_dir``: readable by ``acl`` (principals like ``group:finance``)."""

    title: str
    text: str
    acl: frozenset[str] | set[str] = frozenset({"group:employees"})
    source: str = "test-docs"
    metadata: Mapping[str, Any] = field(default_factory=dict)
    doc_type: str = "document"


class _Docs:
    def __init__(self, name: str, docs: list[Doc]) -> None:
        self.name, self.docs = name, docs

    def documents(self) -> Iterator[Document]:
        for d in self.docs:
            slug = re.sub(r"\W+", "-", d.title.lower()).strip("-")
            yield Document(
                id=f"{self.name}:{slug}",
                title=d.title,
                source=self.name,
                url=f"https://docs.example/{self.name}/{slug}",
                version=hashlib.sha256(d.text.encode()).hexdigest(),
                acl=frozenset(d.acl),
                load=functools.partial(_pages, d.text),
                metadata=dict(d.metadata),
                doc_type=d.doc_type,
            )


def _pages(text: str) -> list[Page]:
    return [Page(1, text)]


@contextlib.contextmanager
def temp_data_dir(
    users: Mapping[str, Sequence[str]],
    documents: Sequence[Doc] = (),
    *,
    model: ScriptedModel | None = None,
    models_cache: Path | None = None,
    **overrides: Any,
) -> Iterator[Settings]:
    """Settings on a fresh data dir, removed afterwards.

    ``users`` maps a user id to their groups (``{"bob": ["finance"]}``: bob holds ``group:finance``
    and ``user:bob``). ``documents`` are ingested with their ACLs. ``model=None`` uses the bundled
    local model. ``models_cache``: a folder kept between tests for the converted embedding model.
    """
    with tempfile.TemporaryDirectory(prefix="sovra-test-") as tmp:
        data = Path(tmp) / "data"
        data.mkdir()
        (data / "users.json").write_text(
            json.dumps({uid: {"name": uid.title(), "groups": list(groups)} for uid, groups in users.items()})
        )
        if models_cache is not None:
            models_cache.mkdir(parents=True, exist_ok=True)
            (data / "models").symlink_to(models_cache)
        settings = (
            model.settings(data, **overrides) if model else Settings(data_dir=data, llm_base_url=None, **overrides)
        )
        if documents:
            ingest(settings, documents)
        yield settings


def ingest(settings: Settings, documents: Sequence[Doc]) -> None:
    """Ingest ``documents`` (grouped by their ``source``) into the data dir of ``settings``."""
    from sovra.ingest import Ingestor
    from sovra.runtime import Services

    services = Services(settings)
    try:
        by_source: dict[str, list[Doc]] = {}
        for d in documents:
            by_source.setdefault(d.source, []).append(d)
        connectors = [_Docs(name, docs) for name, docs in by_source.items()]
        report = Ingestor(services.index, services.embedder, settings.paths.state_db).run(connectors)
        if report.failed:
            raise AssertionError(f"ingesting the test documents failed: {report.failed}")
    finally:
        services.close()


# ---------------------------------------------------------------------- assertions


def assert_cited(answer: Any, *facts: str, source: str | None = None) -> None:
    """The answer states every fact (case-insensitive), cites at least one source (``source``: a
    citation with that title), and every ``[n]`` in its text is one of its citations."""
    if answer.status not in ("answered", "extracted"):
        raise AssertionError(f"the answer is {answer.status!r}, not answered: {answer.text!r}")
    missing = [f for f in facts if f.lower() not in answer.text.lower()]
    if missing:
        raise AssertionError(f"the answer does not say {missing}: {answer.text!r}")
    if not answer.citations:
        raise AssertionError(f"the answer cites nothing: {answer.text!r}")
    numbers = {c.n for c in answer.citations}
    dangling = sorted({int(n) for n in re.findall(r"\[(\d{1,3})\]", answer.text)} - numbers)
    if dangling:
        raise AssertionError(f"the answer refers to {dangling}, which are not among its citations {sorted(numbers)}")
    if source is not None and not any(c.title == source for c in answer.citations):
        raise AssertionError(f"no citation of {source!r}: {[c.title for c in answer.citations]}")


def assert_not_found(answer: Any) -> None:
    """The answer says it found nothing, and cites nothing."""
    if answer.status != "not_found" or answer.citations:
        raise AssertionError(f"expected not_found without citations, got {answer.status!r}: {answer.text!r}")


def assert_audited(runtime: Any, answer: Any, *kinds: str) -> list[Any]:
    """The run's audit records include ``kinds`` in this order, as the answer's user, and the log's
    hash chain verifies. Returns the run's records."""
    records = list(runtime.services.audit.records(answer.run_id))
    seen = [r.kind for r in records]
    it = iter(seen)
    missing = [k for k in kinds if k not in it]  # `in` on the iterator: each kind after the previous
    if missing:
        raise AssertionError(f"audit records of run {answer.run_id} lack {missing} in order: {seen}")
    others = sorted({r.user_id for r in records} - {answer.user})
    if others:
        raise AssertionError(f"run {answer.run_id} has records of other users: {others}")
    check = runtime.services.audit.verify()
    if not check.ok:
        raise AssertionError(f"the audit log does not verify: {check}")
    return records
