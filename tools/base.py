"""Typed tools: a decorator over a typed function, and the one path every agent calls tools through.

Two shapes, both with the docstring as the description the model sees::

    @tool(read_only=True)
    def search_documents(args: SearchArgs, ctx: ToolContext) -> SearchResult: ...

    @tool(read_only=False, needs_approval=True, requires=("group:finance",))
    def open_case(counterparty: str, summary: str, amount: float, ctx: ToolContext) -> CaseOpened: ...

In the second, the argument model is built from the signature (defaults and ``Annotated[..., Field()]``
work); a return type that is not a pydantic model is wrapped as ``{"result": value}``. The parameter
typed exactly ``ToolContext`` (any name; ``ToolContext | None`` or a ``ctx`` of another type is refused
when the tool is defined) is injected by the runtime and never part of the model's argument schema:
the calling user comes from the run, never from the model.

``run_tool`` is the runtime path: validate arguments, check permissions (a denial is recorded as
``tool.denied``), pause for a person's approval when the tool needs it (a LangGraph ``interrupt``
BEFORE the effect; a refusal is recorded as ``tool.refused``), then run it inside a ``tool.<name>``
audit step (arguments, result summary, duration, error).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, Generic, Literal, Protocol, TypeVar, get_args, get_origin, get_type_hints, overload

from pydantic import BaseModel, ValidationError, create_model

from sovra.errors import DefinitionError, SovraError
from sovra.identity import User

A = TypeVar("A", bound=BaseModel)
R = TypeVar("R", bound=BaseModel)

APPROVAL_INTERRUPT = "sovra.approval"  # same value as sovra.runtime.APPROVAL_INTERRUPT
_MAX_RESULT_CHARS = 4000


class ToolPermissionError(SovraError):
    """The calling user lacks a principal the tool requires."""


@dataclass
class ToolContext:
    """What the runtime hands every tool call: who is asking, and the shared services."""

    user: User
    services: Any  # sovra.runtime.Services; typed loosely to keep tools importable on their own
    extras: dict[str, Any] = field(default_factory=dict)
    run_id: str = ""
    recorder: Any = None  # sovra.recorder.RunRecorder of the run, when called through run_tool
    citations: list[dict[str, Any]] = field(default_factory=list)
    cite_offset: int = 0  # citations the run already has; cite() numbers after them

    def cite(
        self,
        *,
        kind: str,
        title: str,
        url: str,
        page: int | None = None,
        chunk_id: str | None = None,
        rows: tuple[str, ...] | list[str] = (),
        quote: str = "",
    ) -> int:
        """Add a citation (a document passage or ledger rows) and return its number for the answer."""
        n = self.cite_offset + len(self.citations) + 1
        self.citations.append(
            {
                "n": n,
                "kind": kind,
                "title": title,
                "url": url,
                "page": page,
                "chunk_id": chunk_id,
                "rows": list(rows),
                "quote": quote,
            }
        )
        return n


@dataclass(frozen=True)
class Tool(Generic[A, R]):
    name: str
    description: str
    args_model: type[A]
    result_model: type[R]
    fn: Callable[[A, ToolContext], R]
    read_only: bool = True
    requires: frozenset[str] = frozenset()  # the user needs at least one of these principals
    needs_approval: bool = False

    def allowed(self, user: User) -> bool:
        return not self.requires or bool(self.requires & set(user.principals))

    def __call__(self, args: A | dict[str, Any], ctx: ToolContext) -> R:
        if not self.allowed(ctx.user):
            raise ToolPermissionError(
                f"user {ctx.user.id!r} may not use tool {self.name!r}",
                hint=f"it requires one of: {', '.join(sorted(self.requires))}",
            )
        parsed = args if isinstance(args, self.args_model) else self.args_model.model_validate(args)
        return self.fn(parsed, ctx)

    def schema(self) -> dict[str, Any]:
        """OpenAI-style function description, for models that call tools natively."""
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.args_model.model_json_schema(),
            },
        }

    def describe(self, args: BaseModel | dict[str, Any]) -> str:
        """One line for an approver: what this call will do."""
        data = args.model_dump(mode="json") if isinstance(args, BaseModel) else args
        first = self.description.splitlines()[0] if self.description else self.name
        return f"{self.name}({', '.join(f'{k}={v!r}' for k, v in data.items())}): {first}"


def _camel(name: str) -> str:
    return "".join(p[:1].upper() + p[1:] for p in name.split("_"))


def _is_model(t: Any) -> bool:
    return inspect.isclass(t) and issubclass(t, BaseModel)


def _strip_annotated(t: Any) -> Any:
    return get_args(t)[0] if get_origin(t) is Annotated else t


def _mentions_context(t: Any) -> bool:
    """Whether ``t`` is or contains ToolContext (``ToolContext | None``, ``Annotated[...]``, ...)."""
    t = _strip_annotated(t)
    if inspect.isclass(t) and issubclass(t, ToolContext):
        return True
    return any(_mentions_context(a) for a in get_args(t))


def _fail(fn_name: str, problem: str, hint: str) -> DefinitionError:
    return DefinitionError(f"tool {fn_name}: {problem}", hint=hint)


def _context_param(tool_name: str, params: list[inspect.Parameter], hints: dict[str, Any]) -> str | None:
    """The parameter the runtime injects the ToolContext into; it is never part of the model's schema."""
    found: list[str] = []
    for p in params:
        t = hints.get(p.name)
        if t is not None and _mentions_context(t):
            if _strip_annotated(t) is not ToolContext:
                raise _fail(
                    tool_name,
                    f"parameter {p.name!r} is typed {t!r}; the context must be typed exactly ToolContext",
                    f"write `{p.name}: ToolContext` (no Optional, no default): the runtime always passes it, "
                    "and the model must never be able to supply it",
                )
            if p.default is not inspect.Parameter.empty:
                raise _fail(tool_name, f"parameter {p.name!r} (the ToolContext) has a default", "remove the default")
            found.append(p.name)
        elif p.name == "ctx":
            raise _fail(
                tool_name,
                "parameter 'ctx' is not typed ToolContext",
                "type it `ctx: ToolContext` (the runtime injects it), or rename the parameter",
            )
    if len(found) > 1:
        raise _fail(tool_name, f"parameters {found} are all ToolContext", "keep one")
    return found[0] if found else None


def _call_sync(fn: Callable[..., Any], kwargs: dict[str, Any]) -> Any:
    """Call ``fn``; an ``async def`` tool runs to completion on its own event loop (in a worker
    thread when this thread already runs one), since agents call tools from synchronous nodes."""
    if not inspect.iscoroutinefunction(fn):
        return fn(**kwargs)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(fn(**kwargs))
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, fn(**kwargs)).result()


def _build(
    fn: Callable[..., Any], read_only: bool, requires: tuple[str, ...], needs_approval: bool, name: str | None
) -> Tool[Any, Any]:
    if isinstance(fn, Tool):
        raise _fail(fn.name, "@tool is applied twice", "decorate the function once")
    if not callable(fn) or not hasattr(fn, "__name__"):
        raise DefinitionError(f"@tool needs a function, got {fn!r}")
    tool_name = name or fn.__name__
    if not tool_name.isidentifier():
        raise _fail(tool_name, "the name must be a Python identifier", "use letters, digits and _")
    if isinstance(requires, str):
        raise _fail(tool_name, f"requires={requires!r} is a string", f'write requires=("{requires}",)')
    if not inspect.cleandoc(fn.__doc__ or "").strip():
        raise _fail(tool_name, "has no docstring", "add one: it is the description the model reads to choose the tool")
    try:
        hints = get_type_hints(fn, include_extras=True)
    except NameError as exc:
        raise _fail(
            tool_name, f"an annotation cannot be resolved ({exc})", "import the type in the tool's module"
        ) from None
    params = list(inspect.signature(fn).parameters.values())
    for p in params:
        if p.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            raise _fail(tool_name, f"*{p.name} / **{p.name} cannot be described to a model", "name each parameter")
    if "return" not in hints:
        raise _fail(tool_name, "needs a return type", "annotate it, e.g. `-> str` or a pydantic model")
    ctx_name = _context_param(tool_name, params, hints)
    others = [p for p in params if p.name != ctx_name]
    for p in others:
        if p.name not in hints:
            raise _fail(
                tool_name,
                f"parameter {p.name!r} has no type",
                f"annotate it, e.g. `{p.name}: str`: the types become the argument schema the model fills",
            )
    ret = hints["return"]
    classic = len(others) == 1 and _is_model(hints[others[0].name])
    if classic:
        args_model = hints[others[0].name]
        arg_name = others[0].name
    else:
        fields: dict[str, Any] = {
            p.name: (hints[p.name], ... if p.default is inspect.Parameter.empty else p.default) for p in others
        }
        args_model = create_model(f"{_camel(tool_name)}Args", **fields)
    for field_name, info in args_model.model_fields.items():
        if _mentions_context(info.annotation):  # the model must never be able to pass a context
            raise _fail(tool_name, f"argument field {field_name!r} is a ToolContext", "take `ctx: ToolContext` instead")
    result_model = ret if _is_model(ret) else create_model(f"{_camel(tool_name)}Result", result=(ret, ...))

    def call(args: BaseModel, ctx: ToolContext) -> BaseModel:
        kwargs: dict[str, Any] = (
            {arg_name: args} if classic else {name: getattr(args, name) for name in type(args).model_fields}
        )
        if ctx_name:
            kwargs[ctx_name] = ctx
        out = _call_sync(fn, kwargs)
        return out if _is_model(ret) else result_model(result=out)

    return Tool(
        name=tool_name,
        description=inspect.cleandoc(fn.__doc__ or ""),
        args_model=args_model,
        result_model=result_model,
        fn=call,
        read_only=read_only,
        requires=frozenset(requires),
        needs_approval=needs_approval,
    )


class _ToolDecorator(Protocol):
    @overload
    def __call__(self, fn: Callable[[A, ToolContext], R], /) -> Tool[A, R]: ...
    @overload
    def __call__(self, fn: Callable[[A], R], /) -> Tool[A, R]: ...
    @overload
    def __call__(self, fn: Callable[..., R], /) -> Tool[BaseModel, R]: ...
    @overload
    def __call__(self, fn: Callable[..., Any], /) -> Tool[BaseModel, BaseModel]: ...


@overload
def tool(fn: Callable[[A, ToolContext], R], /) -> Tool[A, R]: ...
@overload
def tool(fn: Callable[[A], R], /) -> Tool[A, R]: ...
@overload
def tool(fn: Callable[..., R], /) -> Tool[BaseModel, R]: ...
@overload
def tool(fn: Callable[..., Any], /) -> Tool[BaseModel, BaseModel]: ...
@overload
def tool(
    *, name: str | None = None, read_only: bool = True, requires: tuple[str, ...] = (), needs_approval: bool = False
) -> _ToolDecorator: ...
def tool(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    read_only: bool = True,
    requires: tuple[str, ...] = (),
    needs_approval: bool = False,
) -> Any:
    """Make a ``Tool`` of a typed function (``@tool`` or ``@tool(name=..., read_only=False, ...)``).

    Mistakes are refused here, with the culprit named: no docstring, a parameter without a type, a
    context parameter typed anything but exactly ``ToolContext``, ``*args``. ``async def`` works: it
    runs to completion when the agent calls it. Typed: ``Tool[ArgsModel, ResultModel]`` for a tool
    that takes and returns pydantic models.
    """
    if needs_approval and read_only:
        raise DefinitionError(
            f"tool {name or getattr(fn, '__name__', '?')}: a tool that needs approval changes something",
            hint="set read_only=False",
        )
    if fn is not None:
        return _build(fn, read_only, requires, needs_approval, name)
    return lambda f: _build(f, read_only, requires, needs_approval, name)


# ---------------------------------------------------------------------- the runtime path


@dataclass
class ToolOutcome:
    """What came of one tool call; ``for_model()`` is what the model is shown."""

    tool: str
    call_id: str
    status: Literal["ok", "denied", "refused", "invalid", "error"]
    result: BaseModel | None = None
    message: str = ""
    citations: list[dict[str, Any]] = field(default_factory=list)
    duration_ms: float = 0.0

    def for_model(self) -> str:
        if self.result is not None:
            return _clip(self.result.model_dump_json())
        return f"{self.status}: {self.message}"


def _clip(text: str) -> str:
    return text if len(text) <= _MAX_RESULT_CHARS else text[: _MAX_RESULT_CHARS - 3] + "..."


def _summary(result: BaseModel) -> Any:
    data = result.model_dump(mode="json")
    text = json.dumps(data, default=str)
    return data if len(text) <= _MAX_RESULT_CHARS else {"summary": text[:_MAX_RESULT_CHARS], "chars": len(text)}


def approval_request(t: Tool[Any, Any], args: BaseModel, user: User, call_id: str = "") -> dict[str, Any]:
    """The interrupt payload the runtime turns into an ``Approval``."""
    return {
        "type": APPROVAL_INTERRUPT,
        "tool": t.name,
        "args": args.model_dump(mode="json"),
        "description": t.describe(args),
        "requested_for": user.id,
        "call_id": call_id,
    }


def run_tool(
    t: Tool[Any, Any],
    args: BaseModel | dict[str, Any],
    ctx: Any,
    *,
    call_id: str = "",
    decision: dict[str, Any] | None = None,
) -> ToolOutcome:
    """Call ``t`` for the run ``ctx`` (a ``sovra.runtime.RunContext``) through permissions, approval
    and the audit log. Never raises for a tool's own failure: the outcome says what happened.

    Must run inside a LangGraph node when ``t.needs_approval`` and no ``decision`` is given: the
    node is paused by ``interrupt`` and, once resumed, runs again from its start; so call tools
    that need approval first in a node (or pass ``decision`` from an earlier interrupt).
    """
    rec = ctx.recorder
    try:
        parsed = args if isinstance(args, t.args_model) else t.args_model.model_validate(args)
    except ValidationError as exc:
        msg = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'args'}: {e['msg']}" for e in exc.errors()[:5])
        rec.record(f"tool.{t.name}", {"args": args, "error": {"type": "InvalidArguments", "message": msg}})
        return ToolOutcome(t.name, call_id, "invalid", message=f"invalid arguments: {msg}")
    data = parsed.model_dump(mode="json")
    if not t.allowed(ctx.user):
        rec.record("tool.denied", {"tool": t.name, "args": data, "requires": sorted(t.requires)})
        return ToolOutcome(
            t.name, call_id, "denied", message=f"user {ctx.user.id} lacks {' or '.join(sorted(t.requires))}"
        )
    approved_by: dict[str, Any] = {}
    if t.needs_approval:
        if decision is None:
            from langgraph.types import interrupt

            decision = interrupt(approval_request(t, parsed, ctx.user, call_id))
        assert decision is not None
        approved_by = {k: decision.get(k) for k in ("approver", "reason", "at")}
        if not decision.get("approved"):
            rec.record("tool.refused", {"tool": t.name, "args": data, **approved_by})
            return ToolOutcome(
                t.name, call_id, "refused", message=f"{decision.get('approver')} refused: {decision.get('reason')}"
            )
    tctx = ToolContext(
        user=ctx.user,
        services=ctx.services,
        run_id=getattr(ctx, "run_id", ""),
        recorder=rec,
        cite_offset=int(getattr(ctx, "cite_offset", 0)),
    )
    started = time.perf_counter()
    try:
        with rec.step(f"tool.{t.name}", args=data) as step:
            if approved_by:
                step.set_attribute("sovra.approved_by", str(approved_by["approver"]))
            result = t.fn(parsed, tctx)
            step.result = _summary(result)
    except SovraError as exc:
        return ToolOutcome(t.name, call_id, "error", message=str(exc), duration_ms=_ms(started))
    except Exception as exc:  # a tool's bug must not end the run; it is recorded and shown to the model
        return ToolOutcome(t.name, call_id, "error", message=f"{type(exc).__name__}: {exc}", duration_ms=_ms(started))
    return ToolOutcome(t.name, call_id, "ok", result=result, citations=tctx.citations, duration_ms=_ms(started))


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000.0
