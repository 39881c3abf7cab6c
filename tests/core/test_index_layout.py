"""Qdrant server/cluster settings reach collection creation (qdrant-client's local mode).

Local mode keeps what it can honour (on-disk vectors) and drops cluster settings (shards,
replication, write consistency, quantization) it has no use for, so those are checked on the
request qdrant-client is asked to send, validated against qdrant-client's own API model.
"""

from __future__ import annotations

from typing import Any

from qdrant_client import QdrantClient
from qdrant_client import models as qm

from sovra.config import Settings
from sovra.index import open_index
from sovra.index.base import CollectionSettings, IndexInfo
from sovra.index.server import ServerIndex, ServerLayout


class RecordingClient(QdrantClient):
    def __init__(self) -> None:
        super().__init__(location=":memory:")
        self.created: list[dict[str, Any]] = []

    def create_collection(self, collection_name: str, **kwargs: Any) -> bool:  # type: ignore[override]
        self.created.append(kwargs)
        return super().create_collection(collection_name, **kwargs)


def test_settings_reach_create_collection(tmp_path) -> None:
    settings = Settings(
        data_dir=tmp_path,
        qdrant_shard_number=6,
        qdrant_replication_factor=2,
        qdrant_write_consistency_factor=2,
        qdrant_on_disk_vectors=True,
        qdrant_scalar_quantization=True,
    )
    client = RecordingClient()
    idx = ServerIndex(
        client,
        "c",
        "local",
        ServerLayout.from_settings(settings),
        CollectionSettings.from_settings(settings),
    )
    idx.ensure(IndexInfo("m", 384))
    (sent,) = client.created
    assert (sent["shard_number"], sent["replication_factor"], sent["write_consistency_factor"]) == (6, 2, 2)
    scalar = sent["quantization_config"].scalar
    assert scalar.type == qm.ScalarType.INT8 and scalar.always_ram is True
    # What a Qdrant server would be sent parses as its CreateCollection request.
    body = qm.CreateCollection(**{k: v for k, v in sent.items() if k in qm.CreateCollection.model_fields})
    assert body.shard_number == 6 and body.quantization_config is not None
    # Local mode honours on-disk vectors itself.
    params = client.get_collection("c").config.params
    assert params.vectors["dense"].on_disk is True  # type: ignore[index]
    # An existing collection keeps its layout: ensure() again creates nothing.
    idx.ensure(IndexInfo("m", 384))
    assert len(client.created) == 1


def test_defaults_leave_layout_to_the_server(tmp_path) -> None:
    client = RecordingClient()
    ServerIndex(client, "c", "local").ensure(IndexInfo("m", 384))
    (sent,) = client.created
    for key in ("shard_number", "replication_factor", "write_consistency_factor", "quantization_config"):
        assert key not in sent
    assert sent["vectors_config"]["dense"].on_disk is None


def test_open_index_passes_the_layout(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(QdrantClient, "__init__", lambda self, **kw: None)  # no server needed to build it
    idx = open_index(Settings(data_dir=tmp_path, qdrant_url="http://qdrant:6333", qdrant_shard_number=4))
    assert isinstance(idx, ServerIndex) and idx.layout == ServerLayout(shard_number=4)
