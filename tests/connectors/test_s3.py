"""The S3 contract-store connector, with real boto3, against moto's S3 server on 127.0.0.1."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest

from sovra.connectors.base import create
from sovra.documents import Document
from sovra.errors import ConfigError, SourceError, SovraError
from sovra.index import SearchFilter
from sovra.index.edge import EdgeIndex
from sovra.ingest import Ingestor

moto_server = pytest.importorskip("moto.server")

BUCKET = "contracts"
N_CONTRACTS = 4


@pytest.fixture(scope="module")
def contracts(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict]]:
    from sovra.evals.demo_corpus_contracts import write_contracts

    folder = tmp_path_factory.mktemp("contracts")
    return folder, write_contracts(folder)


@pytest.fixture
def s3(contracts, monkeypatch: pytest.MonkeyPatch):
    import boto3

    for var, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "eu-central-1",
    }.items():
        monkeypatch.setenv(var, value)
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    # moto keeps its buckets per process: start every test from an empty server.
    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"), timeout=10).close()
    client = boto3.client("s3", endpoint_url=endpoint)
    client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-central-1"})
    folder, written = contracts
    for meta in written[:N_CONTRACTS]:
        for name in (meta["file"], meta["file"] + ".meta.json"):
            client.put_object(Bucket=BUCKET, Key=f"legal/{name}", Body=(folder / name).read_bytes())
    yield endpoint, client, written[:N_CONTRACTS]
    server.stop()


def _connector(endpoint: str, **kw):
    return create("s3", name="contracts", bucket=BUCKET, prefix="legal/", endpoint_url=endpoint, **kw)


def test_listing_reads_sidecars_and_uses_etags(s3) -> None:
    endpoint, client, written = s3
    docs = list(_connector(endpoint).documents())
    assert len(docs) == N_CONTRACTS
    first = next(d for d in docs if d.id == f"contracts:{written[0]['file']}")
    assert first.acl == frozenset(written[0]["acl"])
    assert first.metadata["counterparty"] == written[0]["counterparty"]
    assert first.url == f"s3://{BUCKET}/legal/{written[0]['file']}"
    head = client.head_object(Bucket=BUCKET, Key=f"legal/{written[0]['file']}")
    assert first.version.startswith(head["ETag"].strip('"'))
    pages = first.load()
    assert pages and pages[0].number == 1 and pages[0].text


@pytest.mark.slow
def test_sync_adds_updates_deletes_and_reports_bad_files(s3, tmp_path: Path, embedder) -> None:
    endpoint, client, written = s3
    downloads: list[str] = []
    conn = _connector(endpoint)
    conn.client.meta.events.register(
        "provide-client-params.s3.GetObject", lambda params, **_: downloads.append(params["Key"])
    )
    index = EdgeIndex(tmp_path / "q", "c")
    try:
        ingestor = Ingestor(index, embedder, tmp_path / "state.sqlite", chunk_chars=800, chunk_overlap=80)
        first = ingestor.run([conn])
        assert (first.added, first.failed) == (N_CONTRACTS, [])

        downloads.clear()
        again = ingestor.run([conn])
        assert (again.unchanged, again.added, again.updated) == (N_CONTRACTS, 0, 0)
        assert [k for k in downloads if not k.endswith(".meta.json")] == []  # ETags say nothing changed

        victim, private = written[0]["file"], written[1]["file"]
        client.delete_object(Bucket=BUCKET, Key=f"legal/{victim}")
        meta = {k: v for k, v in written[1].items() if k != "file"}
        client.put_object(
            Bucket=BUCKET, Key=f"legal/{private}.meta.json", Body=json.dumps({**meta, "acl": ["user:dave"]}).encode()
        )
        client.put_object(Bucket=BUCKET, Key="legal/broken.pdf", Body=b"%PDF-1.7\n garbage")
        client.put_object(Bucket=BUCKET, Key="legal/empty.docx", Body=b"")
        third = ingestor.run([conn])
        assert third.deleted == 1
        assert third.updated == 1  # the sidecar's ETag is part of the version
        failed = dict(third.failed)
        assert "corrupt" in failed["contracts:broken.pdf"] and "empty" in failed["contracts:empty.docx"]

        q = "termination notice period"
        hits = index.search(embedder.embed_query(q), embedder.sparse_query(q), SearchFilter(("group:finance",)), 50)
        assert f"contracts:{private}" not in {h.doc_id for h in hits}
        assert f"contracts:{victim}" not in {h.doc_id for h in hits}
    finally:
        index.close()


def test_missing_bucket_and_unreachable_endpoint_are_clear(s3) -> None:
    endpoint, _, _ = s3
    with pytest.raises(ConfigError, match="NoSuchBucket"):
        list(create("s3", bucket="nope", endpoint_url=endpoint).documents())
    with pytest.raises(SourceError, match="cannot reach the object store"):
        list(create("s3", bucket=BUCKET, endpoint_url="http://127.0.0.1:9", max_attempts=1, timeout_s=2).documents())


def test_oversized_object_is_reported_without_download(s3) -> None:
    endpoint, _, _ = s3
    docs: list[Document] = list(_connector(endpoint, max_bytes=1000).documents())
    with pytest.raises(SovraError, match="over the"):
        docs[0].load()
