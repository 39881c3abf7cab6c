"""Model routes: which model on which server serves which task, read from one TOML file.

A route names a task (``chat``, ``planning``, ``extraction``, ``summarise``, ``embedding``...) and
points it at a model id on an OpenAI-compatible server: a base model or a LoRA adapter served by
vLLM's multi-LoRA (the adapter name is the model id). Example::

    allowed_hosts = ["vllm.bank.internal"]   # default: loopback + the hosts the routes name
    mask_pii = true                          # mask prompts sent to routes marked external

    [routes.chat]
    model = "llama-3.1-8b-instruct"
    base_url = "http://vllm.bank.internal:8000/v1"
    api_key_env = "VLLM_API_KEY"
    fallbacks = ["chat-local"]

    [routes.extraction]
    model = "contracts-lora"                 # a LoRA adapter on the same vLLM server
    base_url = "http://vllm.bank.internal:8000/v1"
    temperature = 0.0
    max_tokens = 512

    [routes.chat-local]
    model = "local"                          # no base_url: the embedded llama.cpp server

    [routes.embedding]                       # optional: dense embeddings from a vLLM/TEI server
    model = "bge-small-en-v1.5"              # (ingestion and search use it; BM25 stays local)
    base_url = "http://tei.bank.internal:8080/v1"
    kind = "embedding"
    dimensions = 384

A task with no route of its own uses ``default_route``.
"""

from __future__ import annotations

import ipaddress
import tomllib
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from sovra.config import Settings
from sovra.errors import ConfigError

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})


class HostNotAllowedError(ConfigError):
    """A model call would go to a host outside the configured allow-list."""


class Route(BaseModel):
    """One task's model, server and call parameters."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = Field(description="Model or LoRA adapter id as the server lists it in /v1/models.")
    base_url: str | None = Field(default=None, description="OpenAI-compatible base URL; unset = embedded local model.")
    api_key_env: str | None = Field(default=None, description="Environment variable holding the server's API key.")
    kind: Literal["chat", "embedding"] = "chat"
    temperature: float = 0.0
    max_tokens: int = 384
    timeout_s: float = Field(default=120.0, gt=0)
    fallbacks: tuple[str, ...] = Field(default=(), description="Routes tried in order when this one is unavailable.")
    external: bool = Field(default=False, description="Outside the bank's control: prompts are PII-masked.")
    max_concurrency: int = Field(default=8, ge=1, description="Calls in flight to this route's server at once.")
    max_retries: int = Field(default=2, ge=0, description="Retries on connection errors, 429 and 5xx.")
    backoff_s: float = Field(default=0.5, ge=0, description="First retry delay; doubles per retry.")
    dimensions: int | None = Field(
        default=None, ge=1, description="Embedding routes: the vector size (unset: asked of the server once)."
    )
    structured_output: Literal["auto", "json_schema", "json_object", "guided_json"] = Field(
        default="auto",
        description="How JSON output is constrained: json_schema (OpenAI/vLLM response_format), "
        "guided_json (vLLM extra body), json_object (llama.cpp); auto picks by server.",
    )

    @property
    def is_local(self) -> bool:
        return self.base_url is None

    @property
    def host(self) -> str | None:
        return _host(self.base_url) if self.base_url else None


class RoutesConfig(BaseModel):
    """All routes plus the data-protection settings that apply to every call."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    routes: dict[str, Route]
    default_route: str = "chat"
    allowed_hosts: tuple[str, ...] | None = Field(
        default=None, description="Hosts model calls may reach; default: loopback + hosts named in routes."
    )
    mask_pii: bool = True
    breaker_failures: int = Field(default=5, ge=1, description="Consecutive failures that open an endpoint's circuit.")
    breaker_cooldown_s: float = Field(default=30.0, ge=0, description="How long an open circuit refuses calls.")

    @model_validator(mode="after")
    def _check_names(self) -> RoutesConfig:
        if self.default_route not in self.routes:
            raise ValueError(f"default_route {self.default_route!r} is not among the routes {sorted(self.routes)}")
        for name, route in self.routes.items():
            for fb in route.fallbacks:
                if fb not in self.routes:
                    raise ValueError(f"route {name!r} falls back to unknown route {fb!r}")
                if self.routes[fb].kind != route.kind:
                    raise ValueError(f"route {name!r} ({route.kind}) falls back to {fb!r} ({self.routes[fb].kind})")
        return self

    def allowed(self) -> frozenset[str]:
        """The host names calls may go to (lower case); loopback is always allowed (local model)."""
        if self.allowed_hosts is not None:
            named = set(self.allowed_hosts)
        else:
            named = {r.host for r in self.routes.values() if r.host}
        return frozenset({h.lower().strip("[]") for h in named} | LOOPBACK_HOSTS)

    def route(self, name: str) -> tuple[str, Route]:
        """The route serving task ``name`` (its own, else the default) with its config name."""
        if name in self.routes:
            return name, self.routes[name]
        return self.default_route, self.routes[self.default_route]

    @classmethod
    def from_settings(cls, settings: Settings) -> RoutesConfig:
        """One ``chat`` route from the ``SOVRA_LLM_*`` settings (what Sovra did before routes files)."""
        route = Route(
            model=settings.llm_model,
            base_url=settings.llm_base_url,
            max_tokens=settings.llm_max_tokens,
            timeout_s=settings.llm_timeout_s,
        )
        return cls(routes={"chat": route})

    @classmethod
    def load(cls, path: Path) -> RoutesConfig:
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"cannot read routes file {path}: {exc.strerror}", hint="check routes_file") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"routes file {path} is not valid TOML: {exc}") from exc
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "(top level)"
            raise ConfigError(
                f"routes file {path} is invalid at {where}: {first['msg']}",
                hint="see the example in sovra/routes.py",
            ) from exc


def _host(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()


def check_host(url: str, allowed: frozenset[str]) -> None:
    """Refuse ``url`` unless its host is allowed, by name: nothing is resolved or contacted."""
    host = _host(url)
    if host in allowed:
        return
    try:
        if ipaddress.ip_address(host).is_loopback:
            return
    except ValueError:
        pass
    raise HostNotAllowedError(
        f"refusing to send a model call to {host or url!r}: the host is not in the allow-list",
        hint="add the host to allowed_hosts in the routes file if it is meant to receive prompts",
    )
