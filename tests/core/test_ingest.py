"""Incremental ingestion with the real embedding model and the embedded Qdrant engine."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from sovra.chunking import chunk_pages
from sovra.documents import Document, Page
from sovra.errors import ParseError
from sovra.index import IndexInfo, SearchFilter
from sovra.index.edge import EdgeIndex
from sovra.ingest import Ingestor

EVERYONE = frozenset({"group:everyone"})


@dataclass
class ListConnector:
    """The smallest connector an SDK user can write: a name and a listing of documents."""

    name: str
    docs: dict[str, tuple[str, frozenset[str], str]] = field(default_factory=dict)  # id -> (text, acl, version)
    broken: set[str] = field(default_factory=set)
    loads: list[str] = field(default_factory=list)

    def documents(self):
        for doc_id, (text, acl, version) in sorted(self.docs.items()):
            yield Document(
                id=doc_id,
                title=f"Doc {doc_id}",
                source=self.name,
                url=f"mem://{doc_id}",
                version=version,
                acl=acl,
                load=self._loader(doc_id, text),
            )

    def _loader(self, doc_id, text):
        def load():
            self.loads.append(doc_id)
            if doc_id in self.broken:
                raise ParseError(f"{doc_id} is corrupt")
            return [Page(1, text)]

        return load


LONG = "The travel policy allows economy class for flights under six hours. " * 30


@pytest.fixture
def setup(tmp_path, embedder):
    index = EdgeIndex(tmp_path / "q", "c")
    ingestor = Ingestor(index, embedder, tmp_path / "state.sqlite", chunk_chars=400, chunk_overlap=40)
    conn = ListConnector(
        "mem",
        {
            "a": ("Remote work is allowed three days per week.", EVERYONE, "1"),
            "b": (LONG, EVERYONE, "1"),
            "c": ("The CET1 floor is 13.2 percent.", frozenset({"group:risk"}), "1"),
        },
    )
    yield index, ingestor, conn
    index.close()


def _ids(index, query, embedder, principals=("group:everyone",)):
    hits = index.search(embedder.embed_query(query), embedder.sparse_query(query), SearchFilter(principals), 10)
    return [h.doc_id for h in hits]


def test_first_run_adds_second_run_embeds_nothing(setup, embedder):
    index, ingestor, conn = setup
    r1 = ingestor.run([conn])
    assert (r1.added, r1.failed) == (3, [])
    n = index.count()
    assert n > 3  # the long document has several chunks
    conn.loads.clear()
    r2 = ingestor.run([conn])
    assert (r2.added, r2.updated, r2.unchanged, r2.chunks_embedded) == (0, 0, 3, 0)
    assert conn.loads == []  # not even parsed again
    assert index.count() == n


def test_changed_document_replaces_its_chunks(setup, embedder):
    index, ingestor, conn = setup
    ingestor.run([conn])
    conn.docs["b"] = ("Short new travel policy: rail for trips under four hours.", EVERYONE, "2")
    r = ingestor.run([conn])
    assert (r.updated, r.unchanged) == (1, 2)
    hits = index.search(
        embedder.embed_query("travel rail"), embedder.sparse_query("travel rail"), SearchFilter(("group:everyone",)), 10
    )
    b_chunks = [h for h in hits if h.doc_id == "b"]
    assert len(b_chunks) == 1 and "rail" in b_chunks[0].text


def test_permission_change_and_deletion_propagate(setup, embedder):
    index, ingestor, conn = setup
    ingestor.run([conn])
    assert "a" in _ids(index, "remote work", embedder)
    conn.docs["a"] = (conn.docs["a"][0], frozenset({"group:hr"}), "1")  # same content, now private
    del conn.docs["b"]
    r = ingestor.run([conn])
    assert (r.acl_changed, r.deleted, r.chunks_embedded) == (1, 1, 0)
    assert "a" not in _ids(index, "remote work", embedder)
    assert "a" in _ids(index, "remote work", embedder, ("group:hr",))
    assert "b" not in _ids(index, "travel policy economy", embedder)


def test_a_bad_file_is_reported_and_the_rest_is_ingested(setup, embedder):
    index, ingestor, conn = setup
    ingestor.run([conn])
    conn.docs["a"] = ("Remote work: now four days per week.", EVERYONE, "2")
    conn.broken.add("a")
    conn.docs["d"] = ("Gifts above EUR 50 must be declared.", EVERYONE, "1")
    r = ingestor.run([conn])
    assert r.failed == [("a", "a is corrupt")]
    assert r.added == 1
    # The last good version of "a" is still searchable.
    assert "a" in _ids(index, "remote work days", embedder)


def test_an_interrupted_run_is_finished_by_the_next(setup, embedder, tmp_path):
    index, ingestor, conn = setup
    ingestor.batch_chunks = 1  # flush after every document

    class Crash(BaseException):
        pass

    original = conn._loader

    def crashing_loader(doc_id, text):
        inner = original(doc_id, text)

        def load():
            if doc_id == "c":
                raise Crash()
            return inner()

        return load

    conn._loader = crashing_loader
    with pytest.raises(Crash):
        ingestor.run([conn])
    conn._loader = original
    r = ingestor.run([conn])
    assert r.added == 1 and r.unchanged == 2  # only the missing document is done again
    ids = [
        h.doc_id
        for h in index.search(
            embedder.embed_query("policy"),
            embedder.sparse_query("policy"),
            SearchFilter(("group:everyone", "group:risk")),
            50,
        )
    ]
    assert sorted(set(ids)) == ["a", "b", "c"]
    # Nothing duplicated, nothing lost: exactly the chunks of the three documents.
    expected = sum(len(chunk_pages(d, [Page(1, t)], 400, 40)) for d, (t, _, _) in conn.docs.items())
    assert index.count() == expected
    assert index.count(SearchFilter(("group:risk",))) == 1


def test_model_mismatch_on_existing_index(setup, embedder):
    index, ingestor, conn = setup
    ingestor.run([conn])
    from sovra.errors import IndexMissingError

    with pytest.raises(IndexMissingError):
        index.check(IndexInfo(model_id="another", dim=embedder.dim))
