"""Calling a tool directly, not through an agent: for faces that expose tools themselves (the MCP server,
the HTTP API's search). Each call is a run of its own in the audit log, like any question: ``run.start``
(who, their groups, the interface, what they asked for), one ``tool.<name>`` step (arguments, result
summary, duration, error), ``run.end``. A denied call is recorded as ``tool.denied``.

Only read-only tools are called this way. A tool with side effects runs inside an agent's run, where it
pauses for a person's approval before it acts (:func:`sovra.tools.base.run_tool`): calling it directly
would skip that, so it is refused here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from sovra.errors import ApprovalError, InputError
from sovra.identity import User
from sovra.recorder import RunRecorder
from sovra.tools.base import Tool, ToolContext, ToolPermissionError, _summary


@dataclass(frozen=True)
class DirectResult:
    run_id: str
    result: BaseModel


def call_tool(
    t: Tool[Any, Any],
    args: BaseModel | dict[str, Any],
    user: User,
    services: Any,
    *,
    interface: str,
    summarize: Callable[[BaseModel], Any] | None = None,
    found: Callable[[BaseModel], bool] | None = None,
) -> DirectResult:
    """Run ``t`` for ``user`` as one audited run. ``summarize``: what of the result goes on record
    (default: the result, clipped); ``found``: whether the result counts as found (status ``answered``)
    or not (``not_found``). Raises InputError (invalid arguments), ToolPermissionError, ApprovalError."""
    if t.needs_approval or not t.read_only:
        raise ApprovalError(
            f"{t.name} changes something, so it runs only inside an agent's run, after a person approves it",
            hint="ask an agent that uses it; the run pauses for approval before the tool acts",
        )
    try:
        parsed = args if isinstance(args, t.args_model) else t.args_model.model_validate(args)
    except ValidationError as exc:
        msg = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'args'}: {e['msg']}" for e in exc.errors()[:5])
        raise InputError(f"invalid arguments for {t.name}: {msg}") from exc
    data = parsed.model_dump(mode="json")
    asked = f"{t.name} {data}"
    with RunRecorder(
        services.audit, user_id=user.id, groups=list(user.groups), interface=interface, question=asked
    ) as rec:
        if not t.allowed(user):
            rec.record("tool.denied", {"tool": t.name, "args": data, "requires": sorted(t.requires)})
            rec.finish(answer={"status": "refused"})
            raise ToolPermissionError(
                f"user {user.id!r} may not use tool {t.name!r}",
                hint=f"it requires one of: {', '.join(sorted(t.requires))}",
            )
        ctx = ToolContext(user=user, services=services, run_id=rec.run_id, recorder=rec)
        with rec.step(f"tool.{t.name}", args=data) as step:
            result = t.fn(parsed, ctx)
            step.result = summarize(result) if summarize is not None else _summary(result)
        status = "answered" if found is None or found(result) else "not_found"
        rec.finish(answer={"status": status})
    return DirectResult(rec.run_id, result)


def search_summary(result: Any) -> dict[str, Any]:
    """What a search puts on record: which passages, how they scored; never their text."""
    return {
        "hits": [
            {"chunk_id": h.chunk_id, "doc_id": h.doc_id, "title": h.title, "page": h.page, "score": h.score}
            for h in result.hits
        ]
    }
