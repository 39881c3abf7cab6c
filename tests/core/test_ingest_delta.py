"""Delta sync through ingest: cursors stored after the index, held back on passing failures."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from sovra.documents import Change, Checkpoint, Deletion, DeltaConnector, Document, FullListing, Page
from sovra.errors import ParseError, SourceError
from sovra.index.edge import EdgeIndex
from sovra.ingest import Ingestor, IngestState

EVERYONE = frozenset({"group:everyone"})


@dataclass
class Feed:
    """A delta source over an in-memory log: the cursor is the log position."""

    name: str = "feed"
    log: list[tuple[str, str | None, frozenset[str]]] = field(default_factory=list)  # (id, text|None=deleted, acl)
    failing: dict[str, Exception] = field(default_factory=dict)
    page: int = 2
    seen_cursors: list[str | None] = field(default_factory=list)

    def documents(self) -> Iterator[Document]:  # pragma: no cover - sync() is used
        yield from ()

    def sync(self, cursor: str | None) -> Iterator[Change]:
        self.seen_cursors.append(cursor)
        start = int(cursor or 0)
        if cursor is None:
            yield FullListing()
        for pos in range(start, len(self.log)):
            doc_id, text, acl = self.log[pos]
            if text is None:
                yield Deletion(doc_id)
            else:
                yield Document(doc_id, doc_id, self.name, f"mem://{doc_id}", f"v{pos}", acl, self._load(doc_id, text))
            if (pos + 1) % self.page == 0:
                yield Checkpoint(str(pos + 1))
        yield Checkpoint(str(len(self.log)))

    def _load(self, doc_id: str, text: str):
        def load() -> list[Page]:
            if doc_id in self.failing:
                raise self.failing[doc_id]
            return [Page(1, text)]

        return load


@pytest.fixture
def env(tmp_path, embedder):
    index = EdgeIndex(tmp_path / "q", "c")
    yield index, Ingestor(index, embedder, tmp_path / "s.sqlite", chunk_chars=400, chunk_overlap=40), tmp_path
    index.close()


def _cursor(tmp_path) -> str | None:
    state = IngestState(tmp_path / "s.sqlite")
    try:
        return state.cursor("feed")
    finally:
        state.close()


def test_delta_connector_protocol_is_detected() -> None:
    assert isinstance(Feed(), DeltaConnector)


def test_cursor_advances_and_only_changes_are_applied(env) -> None:
    _, ingestor, tmp = env
    feed = Feed(log=[("a", "Alpha text.", EVERYONE), ("b", "Beta text.", EVERYONE), ("c", "Gamma.", EVERYONE)])
    r1 = ingestor.run([feed])
    assert (r1.added, r1.failed) == (3, [])
    assert _cursor(tmp) == "3"
    feed.log += [("b", None, EVERYONE), ("a", "Alpha text.", frozenset({"user:x"}))]
    r2 = ingestor.run([feed])
    assert feed.seen_cursors[-1] == "3"
    assert (r2.deleted, r2.updated, r2.added) == (1, 1, 0)  # a's version changed with its position
    assert _cursor(tmp) == "5"


def test_passing_failure_holds_the_cursor_and_parse_error_does_not(env) -> None:
    _, ingestor, tmp = env
    feed = Feed(log=[("a", "A.", EVERYONE), ("b", "B.", EVERYONE), ("c", "C.", EVERYONE), ("d", "D.", EVERYONE)])
    feed.failing["c"] = SourceError("c: Graph did not answer")
    r1 = ingestor.run([feed])
    assert r1.added == 3 and [d for d, _ in r1.failed] == ["c"]
    assert _cursor(tmp) == "2"  # the checkpoint before c, not after it
    del feed.failing["c"]
    r2 = ingestor.run([feed])
    assert (r2.added, r2.unchanged, r2.failed) == (1, 1, [])  # c added, d re-seen and skipped
    assert _cursor(tmp) == "4"

    feed.log.append(("e", "E.", EVERYONE))
    feed.failing["e"] = ParseError("e: corrupt")
    r3 = ingestor.run([feed])
    assert [d for d, _ in r3.failed] == ["e"]
    assert _cursor(tmp) == "5"  # a broken file does not block the feed forever


def test_a_full_listing_reconciles_what_the_source_forgot(env) -> None:
    index, ingestor, tmp = env
    feed = Feed(log=[("a", "A.", EVERYONE), ("b", "B.", EVERYONE)])
    ingestor.run([feed])
    state = IngestState(tmp / "s.sqlite")
    state.reset_cursor("feed")  # e.g. `sovra sync --full`, or the delta token expired
    state.close()
    feed.log = [("a", "A.", EVERYONE)]  # b vanished without a deletion record
    report = ingestor.run([feed])
    assert report.deleted == 1 and index.count() == 1


def test_a_source_error_mid_feed_keeps_what_was_applied(env) -> None:
    _, ingestor, tmp = env

    @dataclass
    class Broken(Feed):
        def sync(self, cursor: str | None) -> Iterator[Change]:
            yield from list(super().sync(cursor))[:3]  # FullListing, a, b ... then the network dies
            raise SourceError("Graph answered HTTP 503")

    feed = Broken(log=[("a", "A.", EVERYONE), ("b", "B.", EVERYONE), ("c", "C.", EVERYONE)])
    report = ingestor.run([feed])
    assert report.added == 2 and report.failed == [("feed", "Graph answered HTTP 503")]
    assert _cursor(tmp) is None  # the first checkpoint was never reached
