"""Tools by name: the built-ins below, the ``sovra.tools`` entry points of installed packages and the
``[tools]`` table of the settings (``SOVRA_TOOLS``), each ``NAME = "module:attribute"`` of a ``@tool``.

``define_agent(..., tools=["search_documents", "renewal_terms"])`` takes names as well as tools, so a
package can publish a tool once and agents (and configuration) name it. Names are unique across all
three (a clash is an error naming both), and a tool must be registered under its own name.
"""

from __future__ import annotations

import importlib
from typing import Any

from sovra.errors import ConfigError, DefinitionError, InputError
from sovra.plugins import merged
from sovra.tools.base import Tool

ENTRY_POINT_GROUP = "sovra.tools"

BUILTINS: dict[str, str] = {
    "search_documents": "sovra.tools.search:search_documents",
    "read_passage": "sovra.tools.passages:read_passage",
    "read_document": "sovra.tools.passages:read_document",
    "list_documents": "sovra.tools.passages:list_documents",
    "open_case": "sovra.tools.cases:open_case",
    "find_contract_documents": "sovra.tools.contract_docs:find_contract_documents",
    "extract_terms": "sovra.tools.extract:extract_terms",
    "ledger_lookup": "sovra.tools.ledger_tool:ledger_lookup",
    "translate_passage": "sovra.tools.translate_tool:translate_passage",
}


def registry(settings: Any = None) -> dict[str, str]:
    """Every tool name and its ``"module:attribute"``; raises ``ConfigError`` on a name clash."""
    from sovra.config import Settings

    return merged("tool", BUILTINS, ENTRY_POINT_GROUP, "[tools]", (settings or Settings()).tools)


def get_tool(name: str, settings: Any = None) -> Tool[Any, Any]:
    """The tool registered as ``name``."""
    targets = registry(settings)
    if name not in targets:
        raise InputError(
            f"unknown tool {name!r}",
            hint=f"available: {', '.join(sorted(targets))}; publish one under the {ENTRY_POINT_GROUP!r} entry "
            "point or in the [tools] table of sovra.toml",
        )
    target = targets[name]
    module, _, attr = target.partition(":")
    try:
        obj = getattr(importlib.import_module(module), attr)
    except Exception as exc:  # whatever a plugin's import raises, the user reads one line naming it
        raise ConfigError(f"tool {name!r}: cannot load {target} ({type(exc).__name__}: {exc})") from exc
    if not isinstance(obj, Tool):
        raise DefinitionError(
            f"tool {name!r}: {target} is a {type(obj).__name__}, not a tool", hint="decorate the function with @tool"
        )
    if obj.name != name:
        raise ConfigError(
            f"tool {target} is registered as {name!r} but is named {obj.name!r}", hint="register it under its own name"
        )
    return obj
