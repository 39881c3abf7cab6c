"""The shared index suite, run against both backends: embedded qdrant-edge and qdrant-client
(local mode, which speaks the server's API and models)."""

import random
import warnings
from datetime import date

import pytest
import qdrant_edge as qe
from qdrant_client import QdrantClient

from sovra.documents import Chunk
from sovra.errors import IndexMissingError
from sovra.index import DocInfo, IndexInfo, IndexPoint, SearchFilter, Sparse, embed_key
from sovra.index.edge import EdgeIndex
from sovra.index.server import ServerIndex

DIM = 16
BM25 = qe.Bm25(qe.Bm25Config(language="english"))
INFO = IndexInfo(model_id="test-model@1", dim=DIM)
EVERYONE = {"group:everyone"}

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


@pytest.fixture(params=["edge", "client", "guest"])
def index(request, tmp_path):
    host = None
    if request.param == "edge":
        idx = EdgeIndex(tmp_path, "test")
    elif request.param == "guest":  # another process's handle: every call goes through the host's server
        from sovra.index.shared import SharedEdgeIndex

        host = SharedEdgeIndex(tmp_path, "test")
        host.ensure(INFO)
        idx = SharedEdgeIndex(tmp_path, "test")
    else:
        warnings.filterwarnings("ignore", message=".*Payload indexes have no effect.*")
        idx = ServerIndex(QdrantClient(path=str(tmp_path / "local")), "test", "local")
    idx.ensure(INFO)
    for doc_id, (acl, text) in DOCS.items():
        idx.upsert(_points(doc_id, acl, text, source="risk" if doc_id.startswith("risk") else "policies"))
    assert host is None or (host.role, idx.role) == ("host", "guest")
    yield idx
    idx.close()
    if host is not None:
        host.close()


def _needs_backend(idx) -> None:
    """Tests that patch a backend's storage primitives run on the backends (a guest forwards whole calls
    to its host's backend, which the "edge" parameter covers)."""
    if type(idx).__name__ == "SharedEdgeIndex":
        pytest.skip("patches storage primitives, which live in the host process")


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


@pytest.mark.parametrize("mode", ["dense", "sparse"])
def test_a_one_leg_search_is_one_query_and_its_breakdown_is_that_leg(index, mode, monkeypatch):
    batches: list[int] = []  # how many queries each batch sent to Qdrant
    if isinstance(index, ServerIndex):
        real = index._client.query_batch_points

        def spy(collection, requests, **kw):
            batches.append(len(requests))
            return real(collection, requests, **kw)

        monkeypatch.setattr(index._client, "query_batch_points", spy)
    hits = _search(index, "remote work days per week", ["group:everyone"], mode)
    assert hits
    other = "sparse" if mode == "dense" else "dense"
    for rank, h in enumerate(hits, start=1):
        assert h.scores[f"{mode}_rank"] == rank and h.scores[mode] == round(h.score, 6)
        assert other not in h.scores and f"{other}_rank" not in h.scores
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert batches in ([], [1])  # one query, not the final plus both legs
    both = _search(index, "remote work days per week", ["group:everyone"])[0].scores
    assert {"dense", "sparse", "dense_rank", "sparse_rank", "hybrid"} <= set(both)  # hybrid keeps both legs


def test_source_filter(index):
    hits = _search(index, "CET1 floor", ["group:everyone", "group:risk-committee"], sources=("policies",))
    assert hits and all(h.source == "policies" for h in hits)


def test_set_acl_makes_a_document_private(index):
    index.set_acl("pub-2", frozenset({"group:finance"}))
    hits = _search(index, "travel expenses approval", ["group:everyone"])
    assert all(h.doc_id != "pub-2" for h in hits)
    assert any(h.doc_id == "pub-2" for h in _search(index, "travel expenses", ["group:finance"]))


def test_replace_and_delete_document(index):
    before = index.count()
    points = _points("pub-1", *DOCS["pub-1"])
    index.replace([(points[0].doc, points[:1])])
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


# -- versioned replacement ------------------------------------------------------------------------

TEMPLATE_V1 = ["1. Scope of the services.", "2. Fees are due in 30 days.", "3. Either party may terminate."]
TEMPLATE_V2 = ["0. Definitions added.", "2. Fees are due in 30 days.", "3. Either party may terminate.", "4. New."]


def _version(texts: list[str], version: str, acl: str = "group:everyone", **meta) -> tuple[DocInfo, list[IndexPoint]]:
    """A document whose chunks are ``texts`` laid out one after another on page 1."""
    info = DocInfo("tpl", "Template", f"file:///tpl?{version}", "contracts", "supply", version, frozenset({acl}), meta)
    points, pos = [], 0
    for i, t in enumerate(texts):
        points.append(IndexPoint(Chunk("tpl", i, 1, pos, pos + len(t), t), info, _vec(t), _sparse(t), embed_key(t)))
        pos += len(t) + 2
    return info, points


def _expected(texts: list[str], version: str) -> set[tuple[str, int, str]]:
    _, points = _version(texts, version)
    return {(p.chunk.text, p.chunk.char_start, p.doc.url) for p in points}


def _observe(index) -> set[tuple[str, int, str]]:
    hits = _search(index, "fees terminate scope", ["group:everyone"], mode="dense", doc_ids=("tpl",))
    return {(h.text, h.char_start, h.url) for h in hits}


def test_replace_keeps_unchanged_chunks_and_moves_their_citations(index):
    index.replace([_version(TEMPLATE_V1, "v1")])
    before = {h.chunk_id: h for h in _search(index, "fees", ["group:everyone"], mode="dense", doc_ids=("tpl",))}
    stored = index.stored_vectors(["tpl"])
    assert set(stored) == {embed_key(t) for t in TEMPLATE_V1}
    index.replace([_version(TEMPLATE_V2, "v2")])
    assert _observe(index) == _expected(TEMPLATE_V2, "v2")
    after = {h.chunk_id: h for h in _search(index, "fees", ["group:everyone"], mode="dense", doc_ids=("tpl",))}
    kept = set(before) & set(after)
    assert len(kept) == 2  # clauses 2 and 3: same ids, new positions
    assert all(after[c].char_start != before[c].char_start for c in kept)
    assert index.count(SearchFilter(("group:everyone",), doc_ids=("tpl",))) == 4
    index.replace([_version(TEMPLATE_V2, "v2")])  # the same version again writes nothing new
    assert _observe(index) == _expected(TEMPLATE_V2, "v2")


def test_every_intermediate_state_of_a_replace_shows_exactly_one_version(index, monkeypatch):
    index.replace([_version(TEMPLATE_V1, "v1")])
    seen: list[set[tuple[str, int, str]]] = []
    _needs_backend(index)
    for name in ("_write", "_set_payload", "_delete"):
        original = getattr(index, name)

        def probed(*args, _original=original, **kwargs):
            _original(*args, **kwargs)
            seen.append(_observe(index))  # a search right after each storage operation

        monkeypatch.setattr(index, name, probed)
    index.replace([_version(TEMPLATE_V2, "v2")])
    old, new = _expected(TEMPLATE_V1, "v1"), _expected(TEMPLATE_V2, "v2")
    assert len(seen) >= 3 and old in seen and seen[-1] == new
    assert all(s in (old, new) for s in seen), [s for s in seen if s not in (old, new)]
    seen.clear()
    index.delete_document("tpl")
    assert all(s in (new, set()) for s in seen) and seen[-1] == set()


def test_concurrent_searches_see_one_version_while_a_document_is_replaced(index):
    import threading

    versions = [(TEMPLATE_V1, "v1"), (TEMPLATE_V2, "v2")]
    allowed = [_expected(t, v) for t, v in versions]
    index.replace([_version(*versions[0])])
    seen: list[set[tuple[str, int, str]]] = []
    done = threading.Event()
    progress = threading.Condition()

    errors: list[BaseException] = []

    def reader() -> None:
        try:
            while not done.is_set():
                got = _observe(index)
                with progress:
                    seen.append(got)
                    progress.notify_all()
        except BaseException as exc:  # reported below, not lost in the thread
            errors.append(exc)
            done.set()

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for i in range(1, 21):
            index.replace([_version(*versions[i % 2])])
            with progress:  # let the reader search at least once between replacements
                n = len(seen)
                progress.wait_for(lambda n=n: len(seen) > n or done.is_set(), timeout=30)
            if done.is_set():
                break
    finally:
        done.set()
        thread.join()
    assert not errors, errors[0]
    assert len(seen) >= 20
    bad = [s for s in seen if s not in allowed]
    assert not bad, bad[:3]
    assert allowed[0] in seen and allowed[1] in seen


def test_an_interrupted_replace_stays_invisible_and_is_undone(index, monkeypatch):
    _needs_backend(index)
    index.replace([_version(TEMPLATE_V1, "v1")])

    class Crash(Exception):
        pass

    def crash(*args, **kwargs):
        raise Crash()

    monkeypatch.setattr(index, "_commit", crash)
    with pytest.raises(Crash):
        index.replace([_version(TEMPLATE_V2, "v2")])
    assert _observe(index) == _expected(TEMPLATE_V1, "v1")
    monkeypatch.undo()
    index.replace([_version([*TEMPLATE_V1, "9. Annex."], "v3")])
    assert _observe(index) == _expected([*TEMPLATE_V1, "9. Annex."], "v3")
    assert index.count(SearchFilter(("group:everyone",), doc_ids=("tpl",))) == 4


def test_permission_change_in_a_new_version_applies_to_the_old_one_at_once(index):
    index.replace([_version(TEMPLATE_V1, "v1")])
    info, points = _version(TEMPLATE_V2, "v2", acl="group:legal")
    index.replace([(info, points)])
    assert _observe(index) == set()
    hits = _search(index, "fees", ["group:legal"], mode="dense", doc_ids=("tpl",))
    assert {h.text for h in hits} == set(TEMPLATE_V2)


# -- metadata filters -----------------------------------------------------------------------------


def test_metadata_filters(index):
    acme = {"tenant": "bank-de", "counterparty": "Acme GmbH", "counterparty_id": "CP-1", "effective_date": "2024-01-01"}
    blau = {"tenant": "bank-nl", "counterparty": "Blauwal B.V.", "effective_date": "2025-07-01"}
    for doc_id, meta in {"c-acme": acme, "c-blau": blau}.items():
        info = DocInfo(doc_id, doc_id, f"file:///{doc_id}", "contracts", "supply", "1", frozenset(EVERYONE), meta)
        text = f"{doc_id}: the supplier may terminate with 90 days notice."
        index.replace([(info, [IndexPoint(Chunk(doc_id, 0, 1, 0, len(text), text), info, _vec(text), _sparse(text))])])

    def ids(**flt):
        return sorted({h.doc_id for h in _search(index, "terminate notice", ["group:everyone"], **flt)})

    assert ids(tenants=("bank-de",)) == ["c-acme"]
    assert ids(counterparties=("acme gmbh",)) == ["c-acme"]
    assert ids(counterparties=("CP-1", "Blauwal B.V.")) == ["c-acme", "c-blau"]
    assert ids(effective_from=date(2025, 1, 1)) == ["c-blau"]
    assert ids(effective_to=date(2024, 12, 31)) == ["c-acme"]
    assert ids(effective_from=date(2024, 1, 1), effective_to=date(2024, 1, 1)) == ["c-acme"]
    assert ids(doc_types=("supply",), sources=("contracts",)) == ["c-acme", "c-blau"]
    assert ids(doc_types=("loan",)) == []
    assert ids(tenants=("bank-de",), counterparties=("Blauwal B.V.",)) == []


def test_chunks_lists_only_what_the_principals_may_read_in_document_order(index):
    alice = SearchFilter(("group:everyone", "user:alice"))
    assert {h.doc_id for h in index.chunks(alice)} == {"pub-1", "pub-2"}
    risk = index.chunks(SearchFilter(("group:risk-committee",), doc_ids=("risk-1",)))
    assert len(risk) == 2 and all(h.doc_id == "risk-1" and "CET1" in h.text for h in risk)
    assert index.chunks(SearchFilter(("group:everyone",), doc_ids=("risk-1",))) == []
    assert index.chunks(SearchFilter(())) == []
    light = index.chunks(SearchFilter(("group:finance",)), fields=["doc_type"])
    assert {h.doc_id for h in light} == {"fin-1"} and all(h.text == "" and h.title for h in light)
    index.delete_document("pub-2")  # a retired version is not listed
    assert {h.doc_id for h in index.chunks(alice)} == {"pub-1"}
