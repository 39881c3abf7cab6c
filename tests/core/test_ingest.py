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


CONTRACT = "\n\n".join(
    f"{n}. Clause {n}\n{n}.1 " + f"The parties agree on the terms of clause number {n}, which covers topic {n}. " * 4
    for n in range(1, 9)
)


class CountingEmbedder:
    def __init__(self, real):
        self.real, self.model_id, self.dim, self.embedded = real, real.model_id, real.dim, 0

    def embed_documents(self, texts):
        self.embedded += len(texts)
        return self.real.embed_documents(texts)

    def sparse_documents(self, texts):
        return self.real.sparse_documents(texts)


def test_a_one_clause_edit_reembeds_only_the_chunks_that_changed(tmp_path, embedder):
    counting = CountingEmbedder(embedder)
    index = EdgeIndex(tmp_path / "q", "c")
    ingestor = Ingestor(index, counting, tmp_path / "state.sqlite", chunk_chars=400, chunk_overlap=40)
    conn = ListConnector("mem", {"k": (CONTRACT, EVERYONE, "1")})
    first = ingestor.run([conn])
    old_chunks = chunk_pages("k", [Page(1, CONTRACT)], 400, 40)
    assert first.chunks_embedded == counting.embedded == len(old_chunks) > 6
    edited = CONTRACT.replace("covers topic 3.", "covers topic 3 and, from 2026, a longer notice period.", 1)
    conn.docs["k"] = (edited, EVERYONE, "2")
    second = ingestor.run([conn])
    new_chunks = chunk_pages("k", [Page(1, edited)], 400, 40)
    changed = {c.text for c in new_chunks} - {c.text for c in old_chunks}
    assert second.updated == 1 and 1 <= second.chunks_embedded == len(changed) <= 2
    # Unchanged chunks keep their ids; every citation points into the new text.
    hits = index.search(
        embedder.embed_query("clause"), embedder.sparse_query("clause"), SearchFilter(("group:everyone",)), 50
    )
    assert {h.chunk_id for h in hits} == {c.id for c in new_chunks}
    assert len({c.id for c in new_chunks} & {c.id for c in old_chunks}) == len(new_chunks) - len(changed)
    assert all(edited[h.char_start : h.char_end] == h.text for h in hits)
    assert any(h.char_start != o.char_start for h in hits for o in old_chunks if o.id == h.chunk_id)
    index.close()
