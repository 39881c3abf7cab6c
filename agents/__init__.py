"""Agents: LangGraph graphs built from tools and prompts.

The registry maps a name to ``"module:attribute"``; the attribute is a class (instantiated with no
arguments) or a factory function returning an agent. Add a line to register an agent; modules are
imported only when their agent is asked for.
"""

from __future__ import annotations

import functools
import importlib
from typing import Any

from sovra.errors import InputError

AGENTS: dict[str, str] = {
    "assistant": "sovra.agents.assistant:Assistant",
    "followup": "sovra.agents.followup:followup",
    "policy": "sovra.agents.policy:PolicyAssistant",
    "contracts": "sovra.agents.contracts:ContractChecker",
    "consistency": "sovra.agents.consistency:ConsistencyChecker",
    "reconcile": "sovra.agents.reconcile:Reconciler",
    "reconcile-cases": "sovra.agents.reconcile:reconciler_with_cases",
    "supervisor": "sovra.agents.supervisor:Supervisor",
}


def get_agent(name: str) -> Any:
    """The agent registered as ``name`` (a ``sovra.runtime.Agent``). Agents hold no run state, so
    one instance per name is shared: the runtime then compiles its graph once, not once per run."""
    if name not in AGENTS:
        raise InputError(f"unknown agent {name!r}", hint=f"available: {', '.join(AGENTS)}")
    return _instance(name, AGENTS[name])


@functools.cache
def _instance(name: str, target: str) -> Any:
    module, attr = target.split(":")
    return getattr(importlib.import_module(module), attr)()


def list_agents() -> list[tuple[str, str]]:
    """(name, description) of every registered agent."""
    return [(name, get_agent(name).description) for name in AGENTS]
