"""Agents: LangGraph graphs built from tools and prompts, and the registry every face asks by name.

An agent is found by its name in, in this order: the built-ins below, the ``sovra.agents`` entry
points of installed packages, and the ``[agents]`` table of the settings (``SOVRA_AGENTS``). Each maps
a name to ``"module:attribute"``: an agent object, a class (instantiated with no arguments) or a
factory function returning an agent. Names are unique across all three (a clash is an error naming
both), and an agent's own ``name`` must be the name it is registered under: a paused run is found
again by that name when someone approves it. Modules are imported only when their agent is asked for.
"""

from __future__ import annotations

import functools
import importlib
from typing import Any

from sovra.errors import ConfigError, InputError
from sovra.plugins import merged

ENTRY_POINT_GROUP = "sovra.agents"

AGENTS: dict[str, str] = {
    "assistant": "sovra.agents.assistant:Assistant",
    "followup": "sovra.agents.followup:followup",
    "policy": "sovra.agents.policy:PolicyAssistant",
    "contracts": "sovra.agents.contracts:ContractChecker",
    "consistency": "sovra.agents.consistency:ConsistencyChecker",
    "reconcile": "sovra.agents.reconcile:Reconciler",
    "reconcile-cases": "sovra.agents.reconcile:reconciler_with_cases",
    "supervisor": "sovra.agents.supervisor:Supervisor",
    "translate": "sovra.agents.translator:Translator",
}


def registry(settings: Any = None) -> dict[str, str]:
    """Every agent name and its ``"module:attribute"``; raises ``ConfigError`` on a name clash."""
    from sovra.config import Settings

    return merged("agent", AGENTS, ENTRY_POINT_GROUP, "[agents]", (settings or Settings()).agents)


def get_agent(name: str, settings: Any = None) -> Any:
    """The agent registered as ``name`` (a ``sovra.runtime.Agent``). Agents hold no run state, so
    one instance per name is shared: the runtime then compiles its graph once, not once per run."""
    targets = registry(settings)
    if name not in targets:
        raise InputError(
            f"unknown agent {name!r}",
            hint=f"available: {', '.join(targets)}; publish one under the {ENTRY_POINT_GROUP!r} entry point "
            "or in the [agents] table of sovra.toml",
        )
    agent = _instance(name, targets[name])
    if getattr(agent, "name", None) != name:
        raise ConfigError(
            f"agent {targets[name]} is registered as {name!r} but is named {getattr(agent, 'name', None)!r}",
            hint="register it under its own name: a paused run is found again by that name",
        )
    return agent


@functools.cache
def _instance(name: str, target: str) -> Any:
    module, _, attr = target.partition(":")
    try:
        obj = getattr(importlib.import_module(module), attr)
    except Exception as exc:  # whatever a plugin's import raises, the user reads one line naming it
        raise ConfigError(
            f"agent {name!r}: cannot load {target} ({exc})", hint="check the module and attribute"
        ) from exc
    is_agent = not isinstance(obj, type) and callable(getattr(obj, "graph", None))
    return obj if is_agent else obj()


def list_agents(settings: Any = None) -> list[tuple[str, str]]:
    """(name, description) of every registered agent."""
    return [(name, get_agent(name, settings).description) for name in registry(settings)]
