"""`sovra sync`: how a source name becomes a connector, and the one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from sovra.config import Settings
from sovra.connectors.s3 import S3Connector
from sovra.connectors.sharepoint_graph import SharePointGraphConnector
from sovra.errors import ConfigError, InputError
from sovra.ingest import save_source
from sovra.ui.sync_cli import build_connector, source_config


def _settings(tmp_path: Path, **kw) -> Settings:
    return Settings(data_dir=tmp_path, **kw)


def test_sources_come_from_settings_tables_and_the_ingest_registry(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    save_source(tmp_path / "sources.json", "docs", "filesystem", folder)
    s = _settings(tmp_path, sources={"c": {"kind": "s3", "bucket": "contracts", "prefix": "x/"}})
    assert source_config(s, "c") == ("s3", {"bucket": "contracts", "prefix": "x/"})
    assert source_config(s, "docs") == ("filesystem", {"root": str(folder.resolve())})
    conn = build_connector(s, "c")
    assert isinstance(conn, S3Connector) and conn.name == "c" and conn.max_bytes == s.max_file_bytes


def test_graph_secrets_come_from_settings_never_from_the_table(tmp_path: Path) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text("s3cr3t\n")
    s = _settings(
        tmp_path,
        graph_tenant_id="t",
        graph_client_id="c",
        graph_client_secret_file=secret_file,
        sources={"sp": {"kind": "sharepoint_graph", "sites": ["h:/sites/p"]}},
    )
    conn = build_connector(s, "sp")
    assert isinstance(conn, SharePointGraphConnector)
    assert conn._auth_args["client_secret"] == "s3cr3t"
    leaky = _settings(tmp_path, sources={"sp": {"kind": "sharepoint_graph", "sites": ["x"], "client_secret": "no"}})
    with pytest.raises(ConfigError, match="secret in its configuration"):
        build_connector(leaky, "sp")
    pg = _settings(tmp_path, sources={"gl": {"kind": "ledger", "url": "postgresql://u:pw@db/gl"}})
    with pytest.raises(ConfigError, match="password in url"):
        build_connector(pg, "gl")


def test_unknown_source_and_bad_tables(tmp_path: Path) -> None:
    s = _settings(tmp_path, sources={"a": {"bucket": "x"}, "b": {"kind": "nope"}})
    with pytest.raises(InputError, match="unknown source 'zzz'") as info:
        source_config(s, "zzz")
    assert "a, b" in (info.value.hint or "")
    with pytest.raises(ConfigError, match="has no kind"):
        source_config(s, "a")
    with pytest.raises(ConfigError, match="unknown connector kind 'nope'"):
        build_connector(s, "b")
