"""The Ray ingestion path builds the same index as the local one (a local Ray runtime, 2 CPUs)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from sovra.config import Settings
from sovra.documents import Document, Page
from sovra.errors import ParseError
from sovra.evals.bench_corpus import banking_text
from sovra.index.edge import EdgeIndex
from sovra.ingest import Ingestor

pytest.importorskip("ray")
pytestmark = pytest.mark.slow

EVERYONE = frozenset({"group:everyone"})


class MemConnector:
    """Documents whose loaders are closures (Ray sends them to its workers by value)."""

    def __init__(self, name: str, texts: dict[str, str], broken: frozenset[str] = frozenset()) -> None:
        self.name = name
        self.texts = texts
        self.broken = broken

    def documents(self):
        for doc_id, text in sorted(self.texts.items()):
            yield Document(
                id=doc_id,
                title=f"Title of {doc_id}",
                source=self.name,
                url=f"mem://{doc_id}",
                version=str(len(text)),
                acl=EVERYONE,
                load=_loader(doc_id, text, doc_id in self.broken),
            )


def _loader(doc_id: str, text: str, broken: bool):
    def load() -> list[Page]:
        if broken:
            raise ParseError(f"{doc_id} is corrupt")
        half = len(text) // 2
        return [Page(1, text[:half]), Page(2, text[half:])]

    return load


def corpus(n: int, seed: int = 7) -> dict[str, str]:
    rng = random.Random(seed)
    return {f"doc-{i:03d}": banking_text(rng, rng.randint(300, 4000)) for i in range(n)}


def points(index: EdgeIndex) -> dict[str, tuple[dict, list[float], object]]:
    stored = index._scroll([], with_vectors=True)
    return {p.payload["chunk_id"]: (p.payload, p.dense, p.sparse) for p in stored if "chunk_id" in p.payload}


def test_ray_path_builds_the_same_index_as_the_local_one(tmp_path: Path, embedder) -> None:
    from sovra.ingest_ray import run_ray_ingest

    texts = corpus(30)
    conn = MemConnector("mem", texts, broken=frozenset({"doc-005"}))
    settings = Settings(data_dir=tmp_path / "data")

    local_index = EdgeIndex(tmp_path / "local", "c")
    local = Ingestor(local_index, embedder, tmp_path / "local.sqlite", chunk_chars=600, chunk_overlap=60)
    local_report = local.run([conn])

    ray_index = EdgeIndex(tmp_path / "ray", "c")
    ingestor = Ingestor(ray_index, embedder, tmp_path / "ray.sqlite", chunk_chars=600, chunk_overlap=60)
    report, stats = run_ray_ingest(ingestor, [conn], settings, workers=2)

    assert (report.added, report.chunks_embedded) == (local_report.added, local_report.chunks_embedded)
    assert [d for d, _ in report.failed] == [d for d, _ in local_report.failed] == ["doc-005"]
    assert stats.documents_sent == 30 and stats.tasks >= 2
    assert stats.local_fallbacks == 0  # every vector came from a Ray task

    a, b = points(local_index), points(ray_index)
    assert a.keys() == b.keys() and len(a) == local_report.chunks_embedded
    for chunk_id, (payload, dense, sparse) in a.items():
        payload_b, dense_b, sparse_b = b[chunk_id]
        assert payload_b == payload
        assert dense_b == pytest.approx(dense, abs=1e-6)
        assert sparse_b == sparse

    # Incremental as the local path: nothing changed, nothing is sent to Ray or embedded.
    report2, stats2 = run_ray_ingest(ingestor, [conn], settings, workers=2)
    assert stats2.documents_sent == 1  # only the broken document, retried
    assert report2.unchanged == 29 and report2.chunks_embedded == 0
    local_index.close()
    ray_index.close()
