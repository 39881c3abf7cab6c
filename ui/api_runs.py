"""Asking (JSON or SSE), reading runs and their audit steps, and deciding approvals.

Access: a user reads and streams their own runs; members of the ``auditor`` group read anyone's
(issue 7); an approval is decided by the run's owner or an approver principal
(``SOVRA_APPROVER_GROUPS``), and its pending request is visible to those and to auditors. An
approver who is neither owner nor auditor gets the resumed run's answer only when they may read
every source it quotes; otherwise its status and next pending action alone (issue 17).
"""

from __future__ import annotations

import json
import threading
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, model_validator

from sovra.errors import ApprovalError, InputError
from sovra.identity import User
from sovra.privacy import can_read_run, is_auditor
from sovra.runtime import RunEvent, Runtime
from sovra.ui.api_auth import ApiError, CurrentUser, has_principal
from sovra.ui.api_state import answer_body, api_state, event_body, run_locked, stream_run

router = APIRouter(prefix="/v1", tags=["runs"])

MAX_THREAD_ID = 128


def valid_unicode(data: Any) -> Any:
    """Refuse (422) a body with a lone surrogate anywhere (JSON allows ``"\\ud800"``): such text
    cannot be stored, hashed into the audit log or written back, and must not become a 500."""

    def walk(v: Any) -> None:
        if isinstance(v, str):
            try:
                v.encode("utf-8")
            except UnicodeEncodeError:
                raise ValueError("the text is not valid Unicode (a lone surrogate escape)") from None
        elif isinstance(v, dict):
            for k, x in v.items():
                walk(k)
                walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)

    walk(data)
    return data


class AskRequest(BaseModel):
    # Forbidding extra fields makes a client that tries to pick the user ("user": "bob") fail
    # loudly with 422 instead of silently asking as the token's user.
    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def check_unicode(cls, data: Any) -> Any:
        return valid_unicode(data)

    question: str
    agent: str = "assistant"
    thread_id: str | None = Field(
        default=None,
        max_length=MAX_THREAD_ID,
        description="Continue a conversation: the thread of earlier runs (yours only). Unset: a new thread.",
    )


class ApprovalDecision(BaseModel):
    model_config = ConfigDict(extra="forbid")

    approved: bool
    reason: str = Field(default="", max_length=2000, description="Why; required to refuse.")


# ---------------------------------------------------------------------------------------------
# Helpers


def check_thread(rt: Runtime, thread_id: str | None, user: User) -> None:
    """A thread belongs to the user who started it: nobody continues (and so reads) another's."""
    if thread_id is None:
        return
    if any(r.user_id != user.id for r in rt.runs.thread_runs(thread_id)):
        raise ApiError(403, f"thread {thread_id!r} belongs to another user", hint="start a new thread")


def sse(event: str, data: Any) -> bytes:
    return f"event: {event}\ndata: {json.dumps(jsonable_encoder(data), ensure_ascii=False)}\n\n".encode()


async def sse_body(first: RunEvent, rest: AsyncGenerator[RunEvent | None, None]) -> AsyncIterator[bytes]:
    try:
        yield sse(first.kind, event_body(first))
        async for ev in rest:
            yield b": keep-alive\n\n" if ev is None else sse(ev.kind, event_body(ev))
    finally:
        await rest.aclose()  # client gone before the end: cancels the run


async def start_stream(events: AsyncGenerator[RunEvent | None, None]) -> RunEvent:
    """The first event, so that a request the runtime refuses up front (empty question, no index)
    gets a plain JSON error with its status instead of a 200 stream holding an error."""
    first = None
    while first is None:
        try:
            first = await anext(events)
        except StopAsyncIteration:  # the client left while its question waited its turn
            raise ApiError(499, "the client closed the connection before the run started") from None
    if first.kind == "error":
        await events.aclose()
        exc = first.data.get("exception")
        raise exc if isinstance(exc, Exception) else ApiError(500, str(first.data.get("message")))
    return first


SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


async def ask_stream(body: AskRequest, user: User, request: Request) -> StreamingResponse:
    st = api_state(request)
    agent = st.agent(body.agent)  # unknown agent: InputError -> 400, before the gate
    if body.thread_id is not None:
        check_thread(st.runtime, body.thread_id, user)

    events = stream_run(
        request,
        lambda rt: rt.stream(agent, body.question, user.id, interface="api", thread_id=body.thread_id),
        admit=user.id,
    )
    first = await start_stream(events)
    return StreamingResponse(sse_body(first, events), media_type="text/event-stream", headers=SSE_HEADERS)


def _run_owner(rt: Runtime, run_id: str) -> str:
    owner: str | None = rt.services.audit.run_owner(run_id)
    if owner is None:
        row = rt.runs.get(run_id)
        owner = row.user_id if row is not None else None
    if owner is None:
        raise ApiError(404, f"no run {run_id!r}", hint="GET /v1/runs lists your runs")
    return owner


def _may_approve(rt: Runtime, user: User, owner: str) -> bool:
    return user.id == owner or has_principal(user, list(rt.settings.approver_groups))


# ---------------------------------------------------------------------------------------------
# Endpoints

STREAM_DOC = (
    "Server-sent events: `step` {run_id, name, summary} as graph nodes finish, `token` {run_id, text} "
    "while a model writes the answer, `approval` {run_id, approval} when a tool call waits for a person, "
    "and last `answer` (the same JSON as POST /v1/ask) or `error` {run_id, error, hint}. "
    "Closing the connection cancels the run at its next step."
)


@router.post(
    "/ask",
    responses={200: {"content": {"text/event-stream": {}}, "description": "The answer, or with stream=true SSE"}},
)
async def ask(
    body: AskRequest,
    user: CurrentUser,
    request: Request,
    stream: Annotated[bool, Query(description="Answer as server-sent events (see /v1/ask/stream).")] = False,
) -> Any:
    """Ask an agent as the token's user; the answer with citations, its status and audit run id."""
    if stream:
        return await ask_stream(body, user, request)
    st = api_state(request)
    agent = st.agent(body.agent)
    if body.thread_id is not None:
        check_thread(st.runtime, body.thread_id, user)
    answer = await run_locked(
        request,
        lambda rt: rt.ask(agent, body.question, user.id, interface="api", thread_id=body.thread_id),
        admit=user.id,
    )
    return answer_body(answer)


@router.post(
    "/ask/stream",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": STREAM_DOC}},
)
async def ask_streaming(body: AskRequest, user: CurrentUser, request: Request) -> StreamingResponse:
    """Ask an agent and receive its steps, tokens, approval request and answer as server-sent events."""
    return await ask_stream(body, user, request)


@router.get("/runs")
async def list_runs(
    user: CurrentUser,
    request: Request,
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
    owner: Annotated[str | None, Query(description="Auditors only: another user's runs; '*' for all.")] = None,
) -> dict[str, Any]:
    """Your most recent runs, newest first (auditors may list any user's)."""
    rt = api_state(request).runtime
    if owner is not None and owner != user.id and not is_auditor(user):
        raise ApiError(403, f"{user.id} may not list the runs of {owner}", hint="only auditors list other users' runs")
    who = None if owner == "*" else (owner or user.id)
    import anyio

    def load() -> list[dict[str, Any]]:
        out = []
        for r in rt.services.audit.runs(user_id=who, limit=limit):
            row = rt.runs.get(r.run_id)
            out.append(
                {
                    "run_id": r.run_id,
                    "user": r.user_id,
                    "started": r.started.isoformat(),
                    "question": r.question,
                    "steps": r.steps,
                    "status": row.status if row is not None else r.status,
                    "thread_id": row.thread_id if row is not None else None,
                    "agent": row.agent if row is not None else None,
                }
            )
        return out

    return {"runs": await anyio.to_thread.run_sync(load)}


async def _records(request: Request, run_id: str, user: User) -> list[Any]:
    from sovra.ui.audit_report import AuditAccessError, load_run

    rt = api_state(request).runtime
    import anyio

    try:
        return await anyio.to_thread.run_sync(load_run, rt.services.audit, run_id, user)
    except AuditAccessError as exc:
        raise ApiError(403, exc.message, exc.hint) from exc
    except InputError as exc:  # load_run's only InputError: no such run
        raise ApiError(404, exc.message, exc.hint) from exc


@router.get("/runs/{run_id}")
async def run_records(run_id: str, user: CurrentUser, request: Request) -> dict[str, Any]:
    """A run's status and audit records: for the run's owner and members of the 'auditor' group only."""
    records = await _records(request, run_id, user)
    row = api_state(request).runtime.runs.get(run_id)
    steps = [{k: v for k, v in asdict(r).items() if k != "sealed"} for r in records]
    return {
        "run_id": run_id,
        "user": records[0].user_id,
        "status": row.status if row is not None else None,
        "thread_id": row.thread_id if row is not None else None,
        "records": jsonable_encoder(steps),
    }


VERIFY_RETRY_AFTER_S = 30


class _VerifyGate:
    """One full-chain verification at a time per server (the chain is the same for everyone): a
    second one asked meanwhile gets 429 with Retry-After instead of another core for a minute."""

    def __init__(self) -> None:
        self.lock = threading.Lock()

    def enter(self) -> int | None:
        """None when admitted (then call ``leave``), else the seconds to wait."""
        return None if self.lock.acquire(blocking=False) else VERIFY_RETRY_AFTER_S

    def leave(self) -> None:
        self.lock.release()


def _verify_gate(request: Request) -> _VerifyGate:
    state = request.app.state
    gate = getattr(state, "audit_verify_gate", None)
    if gate is None:
        gate = state.audit_verify_gate = _VerifyGate()
    return gate  # type: ignore[no-any-return]


@router.get("/runs/{run_id}/audit")
async def run_audit(
    run_id: str,
    user: CurrentUser,
    request: Request,
    verify: Annotated[bool, Query(description="Also verify the whole audit chain (slow on a large log).")] = False,
) -> dict[str, Any]:
    """The auditor's view of a run: question, answer, every step with its hash, sources quoted."""
    from sovra.audit import RUN_END, RUN_ERROR, RUN_START

    if verify and not is_auditor(user):
        # Verifying reads the whole chain (about 45 s of CPU at a million records): auditors only.
        raise ApiError(403, "only auditors may verify the audit chain", hint="ask without ?verify=true")
    records = await _records(request, run_id, user)
    log = api_state(request).runtime.services.audit
    if verify:
        import anyio

        from sovra.ui.audit_report import report_json

        gate = _verify_gate(request)
        wait = gate.enter()
        if wait is not None:
            raise ApiError(
                429, "the audit chain is being verified for another request",
                hint=f"retry in {wait} s, or run `sovra audit verify` on the server",
                headers={"Retry-After": str(wait)},
            )  # fmt: skip
        try:
            return jsonable_encoder(await anyio.to_thread.run_sync(report_json, log, records))
        finally:
            gate.leave()
    start = next((r for r in records if r.kind == RUN_START), records[0])
    end = next((r for r in reversed(records) if r.kind in (RUN_END, RUN_ERROR)), None)
    end_data = end.data if end is not None and isinstance(end.data, dict) else {}
    return jsonable_encoder(
        {
            "run_id": run_id,
            "trace_id": start.trace_id,
            "user": start.user_id,
            "groups": start.data.get("groups", []) if isinstance(start.data, dict) else [],
            "question": start.data.get("question") if isinstance(start.data, dict) else None,
            "answer": end_data.get("answer"),
            "sources": end_data.get("citations", []),
            "steps": [
                {"seq": r.seq, "ts": r.ts, "kind": r.kind, "span_id": r.span_id, "hash": r.hash, "data": r.data}
                for r in records
            ],
        }
    )


@router.get("/runs/{run_id}/approval")
async def get_approval(run_id: str, user: CurrentUser, request: Request) -> dict[str, Any]:
    """The tool call a run waits on (``approval`` null when it waits on nothing)."""
    rt = api_state(request).runtime
    owner = _run_owner(rt, run_id)
    if not (_may_approve(rt, user, owner) or can_read_run(user, owner)):
        raise ApiError(403, f"{user.id} may not see run {run_id}", hint="the owner, approvers and auditors may")
    row = rt.runs.get(run_id)
    pending = rt.pending_approval(run_id)
    return {
        "run_id": run_id,
        "user": owner,
        "status": row.status if row is not None else None,
        "approval": asdict(pending) if pending is not None else None,
    }


def _audit_refusal(rt: Any, kind: str, run_id: str, owner: str | None, by: str, why: str) -> None:
    """A refused attempt on someone else's run is part of that run's record (who tried, and why not)."""
    rt.services.audit.append(kind, {"by": by, "interface": "api", "error": why}, run_id=run_id, user_id=owner)


@router.post("/runs/{run_id}/approval")
async def decide_approval(run_id: str, decision: ApprovalDecision, user: CurrentUser, request: Request) -> Any:
    """Approve or refuse the tool call a run waits on, as the token's user; the run then continues
    and this returns its answer (or its next approval request)."""
    rt = api_state(request).runtime
    owner = _run_owner(rt, run_id)
    if not _may_approve(rt, user, owner):
        await run_locked(
            request, lambda r: _audit_refusal(r, "approval.refused", run_id, owner, user.id, "not an approver")
        )
        raise ApiError(
            403,
            f"{user.id} may not decide run {run_id} of {owner}",
            hint=f"the run's owner or one of: {', '.join(rt.settings.approver_groups)}",
        )
    if not decision.approved and not decision.reason.strip():
        raise ApiError(422, "a refusal needs a reason", hint='send {"approved": false, "reason": "..."}')
    try:  # the runtime checks the run waits, and audits a refused attempt too (approval.refused)
        answer = await run_locked(
            request, lambda r: r.resume(run_id, user.id, decision.approved, decision.reason, interface="api")
        )
    except ApprovalError as exc:  # not waiting, decided by someone else meanwhile, owner not in the directory
        raise ApiError(409, exc.message, exc.hint) from exc
    from sovra.ui.answer_access import may_see_answer, withheld_body

    if await run_locked(request, lambda r: may_see_answer(r, user, answer)):
        return answer_body(answer)
    return withheld_body(answer)


@router.post("/runs/{run_id}/cancel", status_code=202)
async def cancel_run(run_id: str, user: CurrentUser, request: Request) -> dict[str, Any]:
    """Cancel your run: a running one stops at its next step, a paused one at once."""
    rt = api_state(request).runtime
    owner = _run_owner(rt, run_id)
    if owner != user.id:
        await run_locked(
            request, lambda r: _audit_refusal(r, "run.cancel_refused", run_id, owner, user.id, "not the owner")
        )
        raise ApiError(403, f"{user.id} may not cancel run {run_id} of {owner}")
    import anyio

    await anyio.to_thread.run_sync(rt.cancel, run_id)
    row = rt.runs.get(run_id)
    return {"run_id": run_id, "status": row.status if row is not None else None}
