"""Name -> ``"module:attribute"`` registries of pluggable pieces (agents, tools): the built-ins, the
entry points of installed packages, and a settings table, merged with unique names."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from importlib.metadata import entry_points

from sovra.errors import ConfigError


@functools.cache
def published(group: str) -> tuple[tuple[str, str, str], ...]:
    """(name, target, package) of every entry point of ``group``; installed packages do not change
    while a process runs."""
    return tuple((ep.name, ep.value, ep.dist.name if ep.dist is not None else "?") for ep in entry_points(group=group))


def merged(
    noun: str, builtins: Mapping[str, str], group: str, table: str, configured: Mapping[str, str]
) -> dict[str, str]:
    """``builtins``, then ``group``'s entry points, then the ``table`` setting ``configured``; raises
    ``ConfigError`` naming both sides on a name clash, or on a target that is not module:attribute."""
    found = dict(builtins)
    where = dict.fromkeys(builtins, f"built-in {noun}")
    extra = [(n, t, f"entry point of package {pkg}") for n, t, pkg in published(group)]
    extra += [(n, t, f"{table} setting") for n, t in configured.items()]
    for name, target, origin in extra:
        if name in found:
            raise ConfigError(
                f"{noun} name {name!r} of the {origin} ({target}) is taken by the {where[name]} ({found[name]})",
                hint=f"{noun} names are unique: rename one",
            )
        if ":" not in target:
            raise ConfigError(f"{noun} {name!r} of the {origin}: {target!r} is not 'module:attribute'")
        found[name], where[name] = target, origin
    return found
