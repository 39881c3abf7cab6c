"""An OpenAI-compatible face, so existing chat front ends (and the ``openai`` client) can talk to
Sovra agents: ``POST /v1/chat/completions`` and ``GET /v1/models``.

- ``model`` is an agent: ``sovra-assistant`` (or plain ``assistant``); ``GET /v1/models`` lists them.
- The last user message is the question. Earlier turns are the conversation's *thread*: Sovra keeps
  each thread's history in its checkpoints, so the earlier turns are not re-read from the request;
  the thread is the one named by ``thread_id`` (an extra body field), else the thread of the
  caller's most recent run that asked the previous user message, else a new thread. The response's
  ``sovra.thread_id`` names it for the next turn.
- The answer's content ends with a "Sources:" list; the citations are also in the extra top-level
  field ``citations`` (and run id, status, notes in ``sovra``). ``stream: true`` answers with
  ``chat.completion.chunk`` server-sent events and a final ``data: [DONE]``.
- Sampling parameters (temperature, max_tokens, ...) are accepted and ignored: the agent's model
  routes decide them. The caller is the bearer token's user; the ``user`` field is ignored.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Annotated, Any, Literal

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, model_validator

from sovra.errors import InputError
from sovra.identity import User
from sovra.runtime import Answer, RunEvent, Runtime
from sovra.ui.api_auth import CurrentUser
from sovra.ui.api_runs import MAX_THREAD_ID, SSE_HEADERS, check_thread, start_stream, valid_unicode
from sovra.ui.api_state import api_state, run_locked, stream_run

router = APIRouter(prefix="/v1", tags=["openai"])
PREFIX = "sovra-"


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: str
    content: str | list[dict[str, Any]] | None = None

    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        parts = self.content or []
        return "\n".join(str(p.get("text", "")) for p in parts if p.get("type") == "text")


class ChatRequest(BaseModel):
    # Clients send many sampling options; they are accepted and ignored (see the module docstring).
    model_config = ConfigDict(extra="allow")

    @model_validator(mode="before")
    @classmethod
    def check_unicode(cls, data: Any) -> Any:
        return valid_unicode(data)

    model: str
    messages: Annotated[list[ChatMessage], Field(min_length=1, max_length=500)]
    stream: bool = False
    thread_id: str | None = Field(default=None, max_length=MAX_THREAD_ID)


def agent_name(model: str) -> str:
    return model[len(PREFIX) :] if model.startswith(PREFIX) else model


def _question(messages: list[ChatMessage]) -> tuple[str, str | None]:
    """The last user message, and the user message before it (to find the thread)."""
    users = [m.text() for m in messages if m.role == "user"]
    if not users or messages[-1].role != "user":
        raise InputError("the last message must be the user's question", hint='end "messages" with a "user" message')
    return users[-1], users[-2] if len(users) > 1 else None


def _find_thread(rt: Runtime, user: User, previous: str | None) -> str | None:
    """The thread of the caller's latest run that asked ``previous`` (the conversation so far)."""
    if previous is None:
        return None
    for r in rt.services.audit.runs(user_id=user.id, limit=50):
        if (r.question or "").strip() == previous.strip():
            row = rt.runs.get(r.run_id)
            return row.thread_id if row is not None else r.run_id
    return None


def sources_text(a: Answer) -> str:
    if not a.citations:
        return ""
    return "\n\nSources:\n" + "\n".join(c.label() for c in a.citations)


def _citations(a: Answer) -> list[dict[str, Any]]:
    return [c.__dict__ | {"rows": list(c.rows)} for c in a.citations]


def _sovra(a: Answer, rt: Runtime) -> dict[str, Any]:
    row = rt.runs.get(a.run_id)
    return {
        "run_id": a.run_id,
        "trace_id": a.trace_id,
        "status": a.status,
        "notes": a.notes,
        "thread_id": row.thread_id if row is not None else a.thread_id,
        "approval": a.approval.__dict__ if a.approval is not None else None,
    }


def _usage(rt: Runtime, run_id: str) -> dict[str, int]:
    row = rt.runs.get(run_id)
    total = row.tokens if row is not None else 0
    return {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": total}


def completion(a: Answer, model: str, rt: Runtime) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{a.run_id}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": a.text + sources_text(a)},
                "finish_reason": "stop",
            }
        ],
        "usage": _usage(rt, a.run_id),
        "citations": _citations(a),
        "sovra": _sovra(a, rt),
    }


def _chunk(run_id: str, model: str, created: int, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{run_id}",
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def _data(obj: Any) -> bytes:
    return b"data: " + json.dumps(obj, ensure_ascii=False, default=str).encode() + b"\n\n"


async def chunks(
    first: RunEvent, rest: AsyncGenerator[RunEvent | None, None], model: str, rt: Runtime
) -> AsyncIterator[bytes]:
    created = int(time.time())
    run_id = first.run_id
    streamed = False

    async def events() -> AsyncIterator[RunEvent | None]:
        yield first
        async for ev in rest:
            yield ev

    try:
        yield _data(_chunk(run_id, model, created, {"role": "assistant", "content": ""}))
        async for ev in events():
            if ev is None:
                yield b": keep-alive\n\n"
            elif ev.kind == "token":
                streamed = True
                yield _data(_chunk(run_id, model, created, {"content": ev.data["text"]}))
            elif ev.kind == "error":
                err = {"error": {"message": ev.data.get("message"), "type": "sovra_error", "hint": ev.data.get("hint")}}
                yield _data(err)
            elif ev.kind == "answer":
                a: Answer = ev.data["answer"]
                text = ("" if streamed else a.text) + sources_text(a)
                if text:
                    yield _data(_chunk(run_id, model, created, {"content": text}))
                final = _chunk(run_id, model, created, {}, finish="stop")
                sovra = await anyio.to_thread.run_sync(_sovra, a, rt)
                yield _data(final | {"citations": _citations(a), "sovra": sovra})
        yield b"data: [DONE]\n\n"
    finally:
        await rest.aclose()


@router.get("/models")
async def models(user: CurrentUser, request: Request) -> dict[str, Any]:
    """The agents, as OpenAI models (``sovra-<agent>``)."""
    names = await anyio.to_thread.run_sync(api_state(request).agent_names)
    return {
        "object": "list",
        "data": [
            {"id": PREFIX + n, "object": "model", "created": 0, "owned_by": "sovra", "description": d} for n, d in names
        ],
    }


class ChatCompletion(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str
    object: Literal["chat.completion"]
    created: int
    model: str
    choices: list[dict[str, Any]]


@router.post(
    "/chat/completions",
    response_model=ChatCompletion,
    responses={200: {"content": {"text/event-stream": {}}, "description": "With stream=true: chunks, then [DONE]"}},
)
async def chat_completions(body: ChatRequest, user: CurrentUser, request: Request) -> Any:
    """OpenAI Chat Completions: ask the agent named by ``model`` the last user message."""
    st = api_state(request)
    rt = st.runtime
    agent = st.agent(agent_name(body.model))
    question, previous = _question(body.messages)
    thread_id = body.thread_id or await anyio.to_thread.run_sync(_find_thread, rt, user, previous)
    if thread_id is not None:
        check_thread(rt, thread_id, user)
    if body.stream:
        events = stream_run(
            request, lambda r: r.stream(agent, question, user.id, interface="api", thread_id=thread_id), admit=user.id
        )
        first = await start_stream(events)
        return StreamingResponse(
            chunks(first, events, body.model, rt), media_type="text/event-stream", headers=SSE_HEADERS
        )
    answer = await run_locked(
        request, lambda r: r.ask(agent, question, user.id, interface="api", thread_id=thread_id), admit=user.id
    )
    return await anyio.to_thread.run_sync(completion, answer, body.model, rt)
