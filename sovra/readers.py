"""Who may read an answer. The rule every face applies: **an answer is shown only to people who may
read every source it quotes** (its citations and, when it cited nothing, the evidence it shows).

A document source is readable by a user when the index holds the cited document under an ACL that
names one of the user's principals (the same filter search uses). A ledger source is readable by a
user who holds one of ``ledger_readers`` (the ledger tool's required principals, passed by the
caller: the core does not import tools). A source we cannot resolve (no chunk id, unknown kind)
counts as readable by nobody but the asker: unknown means no.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sovra.identity import User
from sovra.index.base import SearchFilter

DEFAULT_LEDGER_READERS: frozenset[str] = frozenset({"group:finance"})


def answer_sources(answer: Any) -> list[Any]:
    """Every source an answer shows: its citations and its evidence."""
    return [*getattr(answer, "citations", ()), *getattr(answer, "evidence", ())]


def doc_id_of(chunk_id: str) -> str:
    """A chunk id is ``<doc_id>#<content hash>[~n]`` (sovra.documents.Chunk.id)."""
    return chunk_id.rpartition("#")[0] or chunk_id


class SourceAccess:
    """Answers "may this user read that source?" against the live index, memoised per call site."""

    def __init__(self, index: Any, ledger_readers: Iterable[str] = DEFAULT_LEDGER_READERS) -> None:
        self.index = index
        self.ledger_readers = frozenset(ledger_readers)
        self._seen: dict[tuple[str, tuple[str, ...]], bool] = {}

    def may_read(self, user: User, source: Any) -> bool:
        kind = getattr(source, "kind", "")
        principals = tuple(user.principals)
        if kind == "ledger":
            return bool(self.ledger_readers & set(principals))
        chunk_id = getattr(source, "chunk_id", None)
        if kind != "document" or not chunk_id:
            return False
        doc_id = doc_id_of(chunk_id)
        key = (doc_id, principals)
        if key not in self._seen:
            self._seen[key] = self.index.count(SearchFilter(principals=principals, doc_ids=(doc_id,))) > 0
        return self._seen[key]

    def may_read_all(self, user: User, sources: Sequence[Any]) -> bool:
        return all(self.may_read(user, s) for s in sources)

    def may_read_answer(self, user: User, answer: Any) -> bool:
        """True when ``user`` may read every source ``answer`` shows (an answer with none: True)."""
        return self.may_read_all(user, answer_sources(answer))

    def everyone_may_read(self, readers: Sequence[User | None], answer: Any) -> bool:
        """True when every one of ``readers`` may read every source; ``None`` stands for a person
        Sovra does not know (a guest, an external account): they may read no source."""
        sources = answer_sources(answer)
        if not sources:
            return True
        return all(r is not None and self.may_read_all(r, sources) for r in readers)
