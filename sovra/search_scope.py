"""Filters a person picks for a whole question (the chat's source, type and date filters).

The runtime sets the scope around a run (``Runtime.stream(..., scope=...)``); every retrieval the
run makes (``Retriever.search``, the contract finder) narrows its own filter by it, so an agent
honours the person's choice without knowing about it. The scope only ever narrows: an agent that
searches one source is still limited to it, and a scope that leaves nothing finds nothing (never
"no filter"). Reading a cited passage by id is not a search and is not narrowed.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

from sovra.errors import InputError
from sovra.index.base import SearchFilter

# A value no document carries: an empty intersection must match nothing, and () means "all".
NOTHING = "\x00none"


@dataclass(frozen=True)
class SearchScope:
    sources: tuple[str, ...] = ()
    doc_types: tuple[str, ...] = ()
    effective_from: date | None = None
    effective_to: date | None = None

    def __post_init__(self) -> None:
        if self.effective_from and self.effective_to and self.effective_from > self.effective_to:
            raise InputError(
                f"the date filter starts after it ends ({self.effective_from} > {self.effective_to})",
                hint="pick a start date on or before the end date",
            )

    @property
    def empty(self) -> bool:
        return not (self.sources or self.doc_types or self.effective_from or self.effective_to)

    def record(self) -> dict[str, Any]:
        """The scope as an audit record's data."""
        return {
            "sources": list(self.sources),
            "doc_types": list(self.doc_types),
            "effective_from": self.effective_from.isoformat() if self.effective_from else None,
            "effective_to": self.effective_to.isoformat() if self.effective_to else None,
        }


_current: ContextVar[SearchScope | None] = ContextVar("sovra_search_scope", default=None)


@contextmanager
def scoped(scope: SearchScope | None) -> Iterator[None]:
    token = _current.set(scope if scope is not None and not scope.empty else None)
    try:
        yield
    finally:
        _current.reset(token)


def current() -> SearchScope | None:
    return _current.get()


def _both(mine: tuple[str, ...], chosen: tuple[str, ...]) -> tuple[str, ...]:
    if not chosen:
        return mine
    if not mine:
        return chosen
    return tuple(v for v in mine if v in chosen) or (NOTHING,)


def narrow(flt: SearchFilter, scope: SearchScope | None = None) -> SearchFilter:
    """``flt`` limited to the scope (the current one by default): the intersection of both."""
    scope = scope if scope is not None else current()
    if scope is None or scope.empty:
        return flt
    lo = max((d for d in (flt.effective_from, scope.effective_from) if d), default=None)
    hi = min((d for d in (flt.effective_to, scope.effective_to) if d), default=None)
    return replace(
        flt,
        sources=_both(flt.sources, scope.sources),
        doc_types=_both(flt.doc_types, scope.doc_types),
        effective_from=lo,
        effective_to=hi,
    )
