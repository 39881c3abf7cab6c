"""Issue 23: connectors stay inside what they were given, one bad item never blocks a sync, source
names never take each other over. Real fastembed, real embedded Qdrant, real SQLite, the real CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sovra.connectors.filesystem import FilesystemConnector
from sovra.connectors.sharepoint_export import SharePointExportConnector
from sovra.errors import ParseError
from sovra.index import SearchFilter
from sovra.index.edge import EdgeIndex
from sovra.ingest import Ingestor

EVERYONE = '{"acl": ["group:everyone"]}'
SECRET = "sk-live-TOKENFILE alice:9f8e7d6c bob:1a2b3c4d office phone list"


@pytest.fixture
def index(tmp_path):
    idx = EdgeIndex(tmp_path / "q", "c")
    yield idx
    idx.close()


def texts(index, embedder, query: str, principals=("group:everyone",)) -> str:
    hits = index.search(embedder.embed_query(query), embedder.sparse_query(query), SearchFilter(principals), 10)
    return "\n".join(h.text for h in hits)


def test_a_file_symlink_out_of_the_folder_is_skipped_and_reported(tmp_path, index, embedder):
    outside = tmp_path / "secrets"
    outside.mkdir()
    (outside / "api-tokens.txt").write_text(SECRET)
    (outside / "wide.meta.json").write_text(EVERYONE)
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "canteen.md").write_text("The canteen opens at 11:30 on working days.")
    (folder / "canteen.md.meta.json").write_text(EVERYONE)
    (folder / "api-keys.txt").symlink_to(outside / "api-tokens.txt")
    (folder / "api-keys.txt.meta.json").write_text(EVERYONE)
    # A file inside whose sidecar is a link to a sidecar outside: the ACL must not come from there.
    (folder / "memo.md").write_text("Internal memo about the office move.")
    (folder / "memo.md.meta.json").symlink_to(outside / "wide.meta.json")
    # A link that stays inside the folder is fine.
    (folder / "canteen-link.md").symlink_to(folder / "canteen.md")
    (folder / "canteen-link.md.meta.json").write_text(EVERYONE)

    docs = {d.id: d for d in FilesystemConnector(folder, name="docs").documents()}
    assert docs["docs:api-keys.txt"].acl == frozenset()
    with pytest.raises(ParseError, match="outside the folder"):
        docs["docs:api-keys.txt"].load()
    assert docs["docs:memo.md"].acl == frozenset()
    assert docs["docs:canteen-link.md"].acl == frozenset({"group:everyone"})

    report = Ingestor(index, embedder, tmp_path / "state.sqlite").run([FilesystemConnector(folder, name="docs")])
    failed = dict(report.failed)
    assert "outside the folder" in failed["docs:api-keys.txt"]
    assert "outside the folder" in failed["docs:memo.md"]
    assert "docs:api-keys.txt" not in report.no_acl  # not "add a sidecar": it is not read at all
    assert "TOKENFILE" not in texts(index, embedder, "office phone list api tokens")
    assert "canteen" in texts(index, embedder, "when does the canteen open")


def test_a_sidecar_cannot_widen_what_the_connector_allows_nor_rewrite_its_path(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "pay.md").write_text("Salary bands 2026.")
    (folder / "pay.md.meta.json").write_text(
        json.dumps({"acl": ["group:everyone", "group:hr"], "path": "../../etc/passwd", "counterparty": "Acme"})
    )
    conn = FilesystemConnector(folder, name="docs", allowed_acl=["group:hr", "group:legal"])
    (doc,) = conn.documents()
    assert doc.acl == frozenset({"group:hr"})
    assert doc.metadata["path"] == "pay.md" and doc.metadata["counterparty"] == "Acme"


def test_one_bad_name_or_field_never_stops_a_sync_deletions_and_acl_changes_apply(tmp_path, index, embedder):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "travel.md").write_text("The hotel limit in London is EUR 250 per night.")
    (folder / "travel.md.meta.json").write_text(EVERYONE)
    (folder / "retired.md").write_text("The retired pension scheme pays a zebra bonus of 7 percent.")
    (folder / "retired.md.meta.json").write_text(EVERYONE)
    ingestor = Ingestor(index, embedder, tmp_path / "state.sqlite")
    first = ingestor.run([FilesystemConnector(folder, name="docs")])
    assert first.added == 2 and not first.failed

    (folder / "retired.md").unlink()
    (folder / "retired.md.meta.json").unlink()
    (folder / "travel.md.meta.json").write_text('{"acl": ["group:travel-desk"]}')  # made private
    bad_name = os.fsdecode(b"Vertrag_M\xfcller.txt")  # Latin-1 bytes: not valid UTF-8
    (folder / bad_name).write_text("Supply agreement with Mueller GmbH, notice period three months.")
    (folder / (bad_name + ".meta.json")).write_text(EVERYONE)
    (folder / "odd.md").write_text("A memo with an odd title.")
    (folder / "odd.md.meta.json").write_bytes(b'{"title": "Memo \\ud800", "acl": ["group:everyone"]}')

    report = ingestor.run([FilesystemConnector(folder, name="docs")])
    assert report.deleted == 1 and report.acl_changed == 1
    failed = dict(report.failed)
    assert "title" in failed["docs:odd.md"] and len(failed) == 1
    assert "zebra" not in texts(index, embedder, "retired pension scheme zebra bonus")
    assert "EUR 250" not in texts(index, embedder, "hotel limit London")
    assert "EUR 250" in texts(index, embedder, "hotel limit London", ("group:travel-desk",))
    hits = index.search(
        embedder.embed_query("Mueller notice period"), embedder.sparse_query("Mueller notice period"),
        SearchFilter(("group:everyone",)), 5,
    )  # fmt: skip
    assert "docs:Vertrag_M\\xfcller.txt" in {h.doc_id for h in hits}  # the bytes, escaped, are the identity
    again = ingestor.run([FilesystemConnector(folder, name="docs")])
    assert again.added == 0 and again.updated == 0 and again.deleted == 0


def test_sharepoint_export_ids_include_their_source(tmp_path):
    for name in ("hr", "legal"):
        root = tmp_path / name
        root.mkdir()
        (root / "a.txt").write_text(f"{name} handbook")
        manifest = {"items": [{"id": "01ABC", "name": "a.txt", "file": {"path": "a.txt"}, "permissions": []}]}
        (root / "manifest.json").write_text(json.dumps(manifest))
    ids = {d.id for n in ("hr", "legal") for d in SharePointExportConnector(tmp_path / n, name=n).documents()}
    assert ids == {"hr:01ABC", "legal:01ABC"}


def sovra(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SOVRA_DATA_DIR": str(data), "HF_HUB_OFFLINE": "1"}
    env.pop("SOVRA_DEBUG", None)
    return subprocess.run(
        [sys.executable, "-m", "sovra.ui.cli", *args], capture_output=True, text=True, env=env, timeout=300
    )


def test_a_folder_name_never_takes_over_another_source(tmp_path):
    for parent in ("a", "other"):
        folder = tmp_path / parent / "contracts"
        folder.mkdir(parents=True)
        (folder / f"{parent}.md").write_text(f"Contract {parent}: the notice period is three months.")
        (folder / f"{parent}.md.meta.json").write_text(EVERYONE)
    data = tmp_path / "data"
    assert sovra(data, "ingest", str(tmp_path / "a" / "contracts")).returncode == 0
    clash = sovra(data, "ingest", str(tmp_path / "other" / "contracts"))
    assert clash.returncode == 2, clash.stdout + clash.stderr
    assert "already reads" in clash.stderr and "--name" in clash.stderr
    sources = json.loads((data / "sources.json").read_text())
    assert sources["contracts"]["path"] == str((tmp_path / "a" / "contracts").resolve())
    named = sovra(data, "ingest", str(tmp_path / "other" / "contracts"), "--name", "other-contracts")
    assert named.returncode == 0 and "0 deleted" in named.stdout, named.stdout + named.stderr
    again = sovra(data, "ingest", "--source", "contracts")
    assert "1 unchanged" in again.stdout and "0 deleted" in again.stdout, again.stdout


def test_a_chunk_that_cannot_be_embedded_fails_alone(tmp_path, index, embedder):
    """A parser (or an SDK user's connector) that hands over text with a lone surrogate: that item
    is reported, the rest of the batch is indexed."""
    from sovra.documents import Document, Page

    class Odd:
        name = "odd"

        def documents(self):
            for doc_id, text in (("odd:good", "The canteen opens at 11:30."), ("odd:bad", "Vertrag M\udcfcller")):
                yield Document(
                    id=doc_id, title=doc_id, source="odd", url=f"mem://{doc_id}", version="1",
                    acl=frozenset({"group:everyone"}), load=lambda text=text: [Page(1, text)],
                )  # fmt: skip

    report = Ingestor(index, embedder, tmp_path / "state.sqlite").run([Odd()])
    assert report.added == 1 and [d for d, _ in report.failed] == ["odd:bad"], report.summary()
    assert "canteen" in texts(index, embedder, "when does the canteen open")


def test_a_directory_symlink_out_of_the_folder_is_never_read(tmp_path):
    outside = tmp_path / "secrets"
    outside.mkdir()
    (outside / "api-tokens.txt").write_text(SECRET)
    (outside / "api-tokens.txt.meta.json").write_text(EVERYONE)
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "canteen.md").write_text("The canteen opens at 11:30 on working days.")
    (folder / "linked").symlink_to(outside, target_is_directory=True)

    docs = {d.id: d for d in FilesystemConnector(folder, name="docs").documents()}
    assert "docs:canteen.md" in docs
    for doc in docs.values():
        if doc.id == "docs:canteen.md":
            continue
        # Either not listed at all or listed as a failure with no access: never the file's content.
        assert doc.acl == frozenset(), doc.id
        with pytest.raises(ParseError, match="outside the folder"):
            doc.load()
