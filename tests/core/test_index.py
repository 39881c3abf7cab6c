"""The shared index suite, run against both backends: embedded qdrant-edge and qdrant-client
(local mode, which speaks the server's API and models)."""

import random
import warnings

import pytest
import qdrant_edge as qe
from qdrant_client import QdrantClient

from sovra.documents import Chunk
from sovra.errors import IndexMissingError
from sovra.index import DocInfo, IndexInfo, IndexPoint, SearchFilter, Sparse
from sovra.index.edge import EdgeIndex
from sovra.index.server import ServerIndex

DIM = 16
BM25 = qe.Bm25(qe.Bm25Config(language="english"))
INFO = IndexInfo(model_id="test-model@1", dim=DIM)

DOCS = {
    "pub-1": ("group:everyone", "Remote work is allowed up to three days per week with manager approval."),
    "pub-2": ("group:everyone", "Travel expenses above EUR 500 need prior approval by the cost centre owner."),
    "fin-1": ("group:finance", "Supplier payments above EUR 100,000 require dual signature by treasury."),
    "risk-1": ("group:risk-committee", "The risk appetite sets a CET1 floor of 13.2 percent for the group."),
}


def _vec(text: str) -> list[float]:
    rnd = random.Random(text)
    return [rnd.uniform(-1, 1) for _ in range(DIM)]


def _sparse(text: str, query: bool = False) -> Sparse:
    v = BM25.embed_query(text) if query else BM25.embed_document(text)
    return Sparse(list(v.indices), list(v.values))


def _points(doc_id: str, acl: str, text: str, version: str = "v1", source: str = "policies") -> list[IndexPoint]:
    info = DocInfo(doc_id, f"Title {doc_id}", f"file:///{doc_id}", source, "policy", version, frozenset({acl}))
    parts = [text, f"{text} (continued)"]
    return [IndexPoint(Chunk(doc_id, i, 1, 0, len(t), t), info, _vec(t), _sparse(t)) for i, t in enumerate(parts)]


@pytest.fixture(params=["edge", "client"])
def index(request, tmp_path):
    if request.param == "edge":
        idx = EdgeIndex(tmp_path, "test")
    else:
        warnings.filterwarnings("ignore", message=".*Payload indexes have no effect.*")
        idx = ServerIndex(QdrantClient(path=str(tmp_path / "local")), "test", "local")
    idx.ensure(INFO)
    for doc_id, (acl, text) in DOCS.items():
        idx.upsert(_points(doc_id, acl, text, source="risk" if doc_id.startswith("risk") else "policies"))
    yield idx
    idx.close()


def _search(idx, query, principals, mode="hybrid", **flt):
    return idx.search(_vec(query), _sparse(query, query=True), SearchFilter(tuple(principals), **flt), 10, mode)


@pytest.mark.parametrize("mode", ["hybrid", "dense", "sparse"])
def test_acl_filter_hides_restricted_chunks_even_for_verbatim_quotes(index, mode):
    quote = DOCS["risk-1"][1]
    hits = _search(index, quote, ["group:everyone", "user:alice", "group:employees"], mode)
    if mode != "sparse":  # no public text shares a term with the quote
        assert hits, "public documents should still match"
    assert all(h.doc_id.startswith("pub") for h in hits)
    hits = _search(index, quote, ["group:everyone", "group:risk-committee"], mode)
    assert hits[0].doc_id == "risk-1" if mode != "dense" else any(h.doc_id == "risk-1" for h in hits)


def test_no_principals_no_results(index):
    assert _search(index, "remote work", []) == []


def test_hybrid_hits_carry_citation_fields_and_score_breakdown(index):
    hits = _search(index, "remote work days per week", ["group:everyone"])
    top = hits[0]
    assert top.doc_id == "pub-1"
    assert top.title == "Title pub-1" and top.url == "file:///pub-1" and top.page == 1
    assert top.text[top.char_start : top.char_end] or top.char_end > top.char_start
    assert {"sparse", "hybrid"} <= set(top.scores)


def test_source_filter(index):
    hits = _search(index, "CET1 floor", ["group:everyone", "group:risk-committee"], sources=("policies",))
    assert hits and all(h.source == "policies" for h in hits)


def test_set_acl_makes_a_document_private(index):
    index.set_acl("pub-2", frozenset({"group:finance"}))
    hits = _search(index, "travel expenses approval", ["group:everyone"])
    assert all(h.doc_id != "pub-2" for h in hits)
    assert any(h.doc_id == "pub-2" for h in _search(index, "travel expenses", ["group:finance"]))


def test_delete_stale_and_delete_document(index):
    before = index.count()
    keep = {"pub-1#0"}
    index.delete_stale("pub-1", keep)
    assert index.count() == before - 1
    index.delete_document("fin-1")
    assert index.count() == before - 3
    assert _search(index, "supplier payments dual signature", ["group:finance"]) == []


def test_upsert_is_idempotent(index):
    before = index.count()
    index.upsert(_points("pub-1", *DOCS["pub-1"]))
    assert index.count() == before


def test_model_mismatch_is_explained(index):
    with pytest.raises(IndexMissingError, match="rebuild"):
        index.check(IndexInfo(model_id="other-model@2", dim=DIM * 2))


def test_missing_index(tmp_path):
    with pytest.raises(IndexMissingError, match="no index"):
        EdgeIndex(tmp_path, "absent").check(INFO)


def test_edge_index_persists_across_reopen(tmp_path):
    idx = EdgeIndex(tmp_path, "p")
    idx.ensure(INFO)
    idx.upsert(_points("pub-1", *DOCS["pub-1"]))
    idx.close()
    again = EdgeIndex(tmp_path, "p")
    again.check(INFO)
    assert again.count() == 2
    again.close()


def test_second_open_handle_gets_a_clear_error(tmp_path):
    from sovra.errors import SovraError

    first = EdgeIndex(tmp_path, "busy")
    first.ensure(INFO)
    second = EdgeIndex(tmp_path, "busy")
    with pytest.raises(SovraError, match="in use by another Sovra process"):
        second.check(INFO)
    first.close()
    second.check(INFO)  # free again once the first handle is closed
    second.close()
