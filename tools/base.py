"""Typed tools: a decorator over a function ``fn(args: ArgsModel, ctx: ToolContext) -> ResultModel``.

The docstring becomes the description the model sees; the argument model's JSON schema becomes the
parameters. A tool declares whether it only reads, which principals it requires, and whether a
person must approve each call. The runtime injects the calling user into ``ctx``: a tool never
trusts an identity passed by the model.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar, get_type_hints

from pydantic import BaseModel

from sovra.errors import SovraError
from sovra.identity import User

A = TypeVar("A", bound=BaseModel)
R = TypeVar("R", bound=BaseModel)


class ToolPermissionError(SovraError):
    """The calling user lacks a principal the tool requires."""


@dataclass
class ToolContext:
    """What the runtime hands every tool call: who is asking, and the shared services."""

    user: User
    services: Any  # sovra.runtime.Services; typed loosely to keep tools importable on their own
    extras: dict[str, Any] = field(default_factory=dict)


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


def tool(
    *, read_only: bool = True, requires: tuple[str, ...] = (), needs_approval: bool = False
) -> Callable[[Callable[[A, ToolContext], R]], Tool[A, R]]:
    def wrap(fn: Callable[[A, ToolContext], R]) -> Tool[A, R]:
        hints = get_type_hints(fn)
        params = list(inspect.signature(fn).parameters)
        if not params or "return" not in hints:
            raise TypeError(f"tool {fn.__name__} needs a typed first argument and a return type")
        return Tool(
            name=fn.__name__,
            description=inspect.cleandoc(fn.__doc__ or fn.__name__),
            args_model=hints[params[0]],
            result_model=hints["return"],
            fn=fn,
            read_only=read_only,
            requires=frozenset(requires),
            needs_approval=needs_approval,
        )

    return wrap
