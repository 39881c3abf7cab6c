"""Agents: LangGraph graphs built from tools and prompts."""

from __future__ import annotations

from sovra.errors import InputError


def get_agent(name: str):  # type: ignore[no-untyped-def]
    from sovra.agents.assistant import Assistant

    agents = {Assistant.name: Assistant}
    if name not in agents:
        raise InputError(f"unknown agent {name!r}", hint=f"available: {', '.join(agents)}")
    return agents[name]()
