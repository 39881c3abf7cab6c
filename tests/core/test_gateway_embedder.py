"""An `embedding` route sends dense embedding to a served model (vLLM/TEI), through the gateway.

The server is the vLLM fake at the HTTP boundary; litellm and the OpenAI client run for real
(including the OpenAI client's default base64 encoding of vectors).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fakes.vllm_server import FakeVLLM, Reply, fake_embedding

from sovra.config import Settings
from sovra.documents import Document, Page
from sovra.errors import IndexMissingError, ModelOutputError
from sovra.gateway.embedder import GatewayEmbedder
from sovra.index import IndexInfo, SearchFilter
from sovra.index.edge import EdgeIndex
from sovra.ingest import Ingestor
from sovra.runtime import Services

EVERYONE = frozenset({"group:everyone"})
DIM = 64


@pytest.fixture
def server() -> Iterator[FakeVLLM]:
    f = FakeVLLM(embedding_model="bge-small-en", embedding_dim=DIM)
    yield f
    f.close()


def routes_file(tmp_path: Path, base_url: str, dimensions: int | None = None) -> Path:
    extra = f"dimensions = {dimensions}\n" if dimensions else ""
    path = tmp_path / "routes.toml"
    path.write_text(
        f"""
[routes.chat]
model = "local"

[routes.embedding]
model = "bge-small-en"
base_url = "{base_url}"
kind = "embedding"
max_retries = 1
backoff_s = 0
{extra}"""
    )
    return path


def services(tmp_path: Path, base_url: str, **kw: object) -> Services:
    dims = kw.pop("dimensions", None)
    settings = Settings(data_dir=tmp_path / "data", routes_file=routes_file(tmp_path, base_url, dims), **kw)  # type: ignore[arg-type]
    return Services(settings)


def test_services_embed_through_the_embedding_route(tmp_path: Path, server: FakeVLLM, embedder) -> None:
    svc = services(tmp_path, server.base_url, embed_batch_size=2)
    try:
        emb = svc.embedder
        assert isinstance(emb, GatewayEmbedder)
        assert emb.model_id == "openai-compatible/bge-small-en"
        assert emb.dim == DIM  # asked of the server once
        texts = ["Remote work three days", "Hotel limit in London", "Acme termination", "CET1 floor", "x"]
        vectors = emb.embed_documents(texts)
        # Batches of embed_batch_size, each one request to /v1/embeddings.
        bodies = [r["body"] for r in server.requests if r["path"] == "/v1/embeddings"]
        assert [len(b["input"]) for b in bodies] == [1, 2, 2, 1]  # the probe, then 5 texts by 2
        # The OpenAI client asked for base64 (float32) and decoded it: same numbers to float32 precision.
        assert bodies[-1].get("encoding_format") in (None, "float", "base64")
        for text, vec in zip(texts, vectors, strict=True):
            assert vec == pytest.approx(fake_embedding(text, DIM), abs=1e-6)
        assert emb.embed_query("CET1 floor") == pytest.approx(vectors[3], abs=1e-6)
        # Sparse stays in process: exactly the bundled embedder's BM25.
        assert emb.sparse_documents(texts) == embedder.sparse_documents(texts)
        assert emb.sparse_query("hotel London") == embedder.sparse_query("hotel London")
    finally:
        svc.close()


def test_ingest_and_search_with_the_served_embedder(tmp_path: Path, server: FakeVLLM) -> None:
    svc = services(tmp_path, server.base_url, dimensions=DIM)
    try:
        emb = svc.embedder
        index = EdgeIndex(tmp_path / "q", "c")
        docs = {
            "travel": "Hotel limit per night in London is EUR 250 for all employees.",
            "remote": "Employees may work from home up to three days per week.",
            "acme": "Either party may terminate the Acme supply contract with ninety days notice.",
        }

        class Conn:
            name = "mem"

            def documents(self) -> Iterator[Document]:
                for doc_id, text in docs.items():
                    yield Document(doc_id, doc_id, "mem", f"mem://{doc_id}", "1", EVERYONE, lambda t=text: [Page(1, t)])

        report = Ingestor(index, emb, tmp_path / "state.sqlite").run([Conn()])
        assert report.added == 3 and not report.failed
        assert server.embedded[: len(docs)] == [f"{d}\n{t}" for d, t in docs.items()]  # no dim probe: configured
        query = "terminate the Acme supply contract"
        hits = index.search(
            emb.embed_query(query), emb.sparse_query(query), SearchFilter(("group:everyone",)), 3, "dense"
        )
        assert hits[0].doc_id == "acme"
        # The index remembers the served model: the bundled one may not search it.
        with pytest.raises(IndexMissingError, match="openai-compatible/bge-small-en"):
            index.check(IndexInfo(model_id="sentence-transformers/all-MiniLM-L6-v2@53aa51172d14", dim=384))
        index.close()
    finally:
        svc.close()


def test_index_built_with_the_bundled_model_refuses_the_served_one(tmp_path: Path, server: FakeVLLM) -> None:
    index = EdgeIndex(tmp_path / "q", "c")
    index.ensure(IndexInfo(model_id="sentence-transformers/all-MiniLM-L6-v2@53aa51172d14", dim=384))
    svc = services(tmp_path, server.base_url)
    try:
        emb = svc.embedder
        with pytest.raises(IndexMissingError, match="rebuild"):
            index.check(IndexInfo(model_id=emb.model_id, dim=emb.dim))
    finally:
        index.close()
        svc.close()


def test_wrong_dimension_and_server_errors_are_clear(tmp_path: Path, server: FakeVLLM) -> None:
    svc = services(tmp_path, server.base_url, dimensions=DIM * 2)
    try:
        with pytest.raises(ModelOutputError, match=f"returned {DIM}-dimensional vectors; the index expects {DIM * 2}"):
            svc.embedder.embed_documents(["a"])
        server.script = [Reply(status=500), Reply(status=500)]
        from sovra.errors import ModelUnavailableError

        before = len(server.requests)
        with pytest.raises(ModelUnavailableError, match="HTTP 500"):
            svc.embedder.embed_query("a")
        # Exactly the route's retries (1): litellm's embedding path must not add the client's own.
        assert len(server.requests) - before == 2
        # ... nor leave them behind on the client the chat calls share.
        client = svc.gateway._client(server.base_url, "no-key")
        assert client.max_retries == 0
    finally:
        svc.close()


def test_no_embedding_route_keeps_the_bundled_embedder(tmp_path: Path) -> None:
    from sovra.embeddings import Embedder

    svc = Services(Settings(data_dir=tmp_path))
    assert isinstance(svc.embedder, Embedder)
