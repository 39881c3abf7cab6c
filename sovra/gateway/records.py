"""What one gateway call records (``ModelCall``), and the attempts that make it up."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel

from sovra.pii import Masker
from sovra.routes import Route

if TYPE_CHECKING:
    import openai

M = TypeVar("M", bound=BaseModel)
Messages = list[dict[str, Any]]
# Sends one request on a route: (route, base_url, client, messages) -> litellm response.
Sender = Callable[[Route, str, "openai.OpenAI", Messages], Any]


@dataclass(frozen=True)
class ModelCall:
    """What the audit log records for one gateway call (all attempts together)."""

    route: str  # the task asked for
    model: str  # model or LoRA adapter id that answered
    base_url: str
    params: dict[str, Any]
    prompt_tokens: int | None
    completion_tokens: int | None
    latency_ms: float
    output: str  # the raw text of the last attempt (unmasked)
    attempts: int  # HTTP requests made, retries and fallbacks included
    served_route: str = ""  # the route config that answered (differs after a fallback)
    finish_reason: str | None = None
    pii_masked: int = 0  # values replaced by placeholders before the prompt left
    failures: tuple[str, ...] = ()  # what went wrong on the way (retried or fallen back from)


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: dict[str, Any]


@dataclass
class _Result:
    """One successful request on one route, after retries."""

    route_name: str
    route: Route
    base_url: str
    response: Any
    latency_ms: float
    requests: int
    masker: Masker | None


@dataclass
class _Ledger:
    """Attempts of one logical call, summed into a ModelCall."""

    task: str
    results: list[_Result] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    failed_requests: int = 0

    def call(self, params: dict[str, Any], output: str) -> ModelCall:
        last = self.results[-1]
        usages = [getattr(r.response, "usage", None) for r in self.results]

        def total(name: str) -> int | None:
            values = [getattr(u, name, None) for u in usages]
            return None if any(v is None for v in values) else sum(values)  # type: ignore[arg-type]

        choices = getattr(last.response, "choices", None)
        return ModelCall(
            route=self.task,
            model=last.route.model,
            base_url=last.base_url,
            params=params,
            prompt_tokens=total("prompt_tokens"),
            completion_tokens=total("completion_tokens"),
            latency_ms=sum(r.latency_ms for r in self.results),
            output=output,
            attempts=sum(r.requests for r in self.results) + self.failed_requests,
            served_route=last.route_name,
            finish_reason=getattr(choices[0], "finish_reason", None) if choices else None,
            pii_masked=sum(len(r.masker.table) for r in self.results if r.masker),
            failures=tuple(self.failures),
        )
