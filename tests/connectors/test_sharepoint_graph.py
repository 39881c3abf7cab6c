"""The SharePoint Graph connector, its real msal + httpx code, against a faithful local Graph fake."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from fakes.graph_server import CLIENT_ID, TENANT, FakeGraph, GraphServer, permission

from sovra.connectors.sharepoint_graph import SharePointGraphConnector, map_permissions
from sovra.documents import Checkpoint, Deletion, Document, FullListing
from sovra.errors import SourceError
from sovra.index import SearchFilter
from sovra.index.edge import EdgeIndex
from sovra.ingest import Ingestor, IngestState

N_ITEMS = 8  # a slice of the demo export keeps embedding cheap; page_size 3 still pages


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from sovra.evals.demo_corpus import write_sharepoint

    folder = tmp_path_factory.mktemp("sp-export")
    write_sharepoint(folder)
    return folder


@pytest.fixture
def server(export: Path):
    with GraphServer(FakeGraph.from_export(export, limit=N_ITEMS, page_size=3)) as srv:
        yield srv


def make(server: GraphServer, sleeps: list[float] | None = None, **kw) -> SharePointGraphConnector:
    opts = {**server.connector_options(), "timeout_s": 2.0, "max_retries": 2, **kw}
    return SharePointGraphConnector(
        name="sp", sleep=(sleeps.append if sleeps is not None else (lambda s: None)), **opts
    )


def _item_id(server: GraphServer, name: str) -> str:
    return next(i.id for i in server.fake.items.values() if i.name == name)


def _doc_id(server: GraphServer, name: str) -> str:
    return f"sp:b!policies-drive-0001:{_item_id(server, name)}"


# -- the feed itself -------------------------------------------------------------------------


def test_first_sync_lists_every_file_with_acl_and_pages_through_next_links(server: GraphServer) -> None:
    changes = list(make(server).sync(None))
    assert isinstance(changes[0], FullListing)
    docs = [c for c in changes if isinstance(c, Document)]
    assert len(docs) == N_ITEMS  # the root folder is not a document
    checkpoints = [c for c in changes if isinstance(c, Checkpoint)]
    assert len(checkpoints) == 3  # 9 entries (root + 8 files) in pages of 3
    assert (
        "$skiptoken" in checkpoints[0].cursor and "token=" in json.loads(checkpoints[-1].cursor)["drives"].popitem()[1]
    )
    remote = next(d for d in docs if d.metadata["name"] == "remote-work-policy.html")
    assert remote.acl == {"group:employees"}
    assert remote.url.endswith("/Shared%20Documents/remote-work-policy.html")
    assert "Remote" in remote.load()[0].text  # /content -> 302 -> pre-authenticated download
    delta_calls = [p for m, p in server.fake.requests if "/root/delta" in p]
    assert len(delta_calls) == 3


def test_delta_reports_only_changes_deletions_and_sharing(server: GraphServer) -> None:
    conn = make(server)
    cursor = [c for c in conn.sync(None) if isinstance(c, Checkpoint)][-1].cursor
    assert [c for c in conn.sync(cursor) if not isinstance(c, Checkpoint)] == []
    fake = server.fake
    fake.modify(_item_id(server, "code-of-conduct.html"), b"<h1>Code of conduct</h1><p>Version two.</p>")
    fake.delete(_item_id(server, "whistleblowing-policy.html"))
    fake.set_permissions(_item_id(server, "remote-work-policy.html"), [permission("user:carol")])
    changes = [c for c in conn.sync(cursor) if not isinstance(c, Checkpoint)]
    by_kind = {type(c).__name__: c for c in changes}
    assert len(changes) == 3
    assert by_kind["Deletion"] == Deletion(_doc_id(server, "whistleblowing-policy.html"))
    reshared = next(c for c in changes if isinstance(c, Document) and c.metadata["name"].startswith("remote"))
    assert reshared.acl == {"user:carol"}
    # Permission changes reach the feed only because the connector asks for them.
    assert server.fake.prefer and all("deltashowsharingchanges" in h for h in server.fake.prefer)


def test_permissions_map_to_principals_and_unknown_grants_nothing() -> None:
    perms = [
        {"roles": ["read"], "grantedToV2": {"group": {"id": "finance"}}},
        {"roles": ["write"], "grantedToIdentitiesV2": [{"user": {"id": "bob", "email": "Bob@x.example"}}]},
        {"roles": ["read"], "link": {"scope": "anonymous", "type": "view"}},
        {"roles": ["read"], "link": {"scope": "organization", "type": "view"}},
        {"roles": ["read"], "grantedToV2": {"siteGroup": {"id": "3", "displayName": "Site Members"}}},
        {"roles": [], "grantedToV2": {"user": {"id": "nobody"}}},
        "garbage",
    ]
    assert map_permissions(perms) == {"group:finance", "user:bob"}
    assert map_permissions(perms, organization_link_principal="group:everyone") >= {"group:everyone"}
    assert map_permissions(perms, principal_key="email") == {"group:finance", "user:bob@x.example"}
    assert map_permissions([{"roles": ["read"], "link": {"scope": "anonymous"}}]) == frozenset()


# -- faults ----------------------------------------------------------------------------------


def test_throttling_honours_retry_after_then_gives_up_clearly(server: GraphServer) -> None:
    sleeps: list[float] = []
    server.fake.inject("/root/delta", "429", retry_after=7)
    server.fake.inject("/permissions", "503", retry_after=3)
    docs = [c for c in make(server, sleeps).sync(None) if isinstance(c, Document)]
    assert len(docs) == N_ITEMS
    assert sleeps == [7.0, 3.0]

    server.fake.inject("/root/delta", "429", times=-1, retry_after=1)
    sleeps.clear()
    with pytest.raises(SourceError, match="HTTP 429"):
        list(make(server, sleeps).sync(None))
    assert sleeps == [1.0, 1.0]  # max_retries=2, then a clear error


def test_expired_token_is_refreshed_once(server: GraphServer) -> None:
    conn = make(server)
    cursor = [c for c in conn.sync(None) if isinstance(c, Checkpoint)][-1].cursor
    assert server.fake.token_requests == 1  # msal's cache serves every later request
    server.fake.expire_tokens()
    list(conn.sync(cursor))
    assert server.fake.token_requests == 2
    server.fake.inject("/v1.0/sites/", "401", times=-1)
    with pytest.raises(SourceError, match="HTTP 401"):
        list(conn.sync(cursor))
    assert server.fake.token_requests == 3  # one refresh, not a loop


def test_garbage_body_and_hang_are_clear_errors(server: GraphServer) -> None:
    server.fake.inject("/root/delta", "garbage")
    with pytest.raises(SourceError, match="not JSON"):
        list(make(server).sync(None))
    server.fake.inject("/_download/", "hang", times=-1)
    doc = next(c for c in make(server, timeout_s=0.3, max_retries=0).sync(None) if isinstance(c, Document))
    with pytest.raises(SourceError, match=r"did not answer within 0.3s"):
        doc.load()


def test_bad_secret_and_unreachable_authority(server: GraphServer) -> None:
    with pytest.raises(SourceError, match="invalid_client"):
        list(make(server, client_secret="wrong").sync(None))
    with pytest.raises(SourceError, match="cannot reach the Microsoft identity platform"):
        list(make(server, authority_host="https://127.0.0.1:9").sync(None))


def test_certificate_credential(server: GraphServer, tmp_path: Path) -> None:
    from fakes.graph_server import _self_signed

    cert, key = _self_signed(tmp_path, rsa=True)
    pem = tmp_path / "app.pem"
    pem.write_bytes(key.read_bytes() + cert.read_bytes())
    docs = [c for c in make(server, client_secret=None, certificate_path=pem).sync(None) if isinstance(c, Document)]
    assert len(docs) == N_ITEMS


# -- through ingestion, with the real index --------------------------------------------------


@pytest.fixture
def ingest(tmp_path: Path, embedder):
    index = EdgeIndex(tmp_path / "q", "c")
    yield index, Ingestor(index, embedder, tmp_path / "state.sqlite", chunk_chars=600, chunk_overlap=60)
    index.close()


def _found(index: EdgeIndex, embedder, query: str, user_principals: tuple[str, ...]) -> set[str]:
    hits = index.search(embedder.embed_query(query), embedder.sparse_query(query), SearchFilter(user_principals), 20)
    return {h.doc_id for h in hits}


ALICE = ("user:alice", "group:everyone", "group:employees")
CAROL = ("user:carol", "group:everyone", "group:employees", "group:risk-committee")


def test_incremental_sync_propagates_edits_deletions_and_permission_changes(
    server: GraphServer, ingest, embedder, tmp_path: Path
) -> None:
    index, ingestor = ingest
    conn = make(server)
    first = ingestor.run([conn])
    assert (first.added, first.failed) == (N_ITEMS, [])
    remote, whistle = _doc_id(server, "remote-work-policy.html"), _doc_id(server, "whistleblowing-policy.html")
    assert remote in _found(index, embedder, "work from home days per week", ALICE)
    assert whistle in _found(index, embedder, "whistleblowing report concerns", ALICE)
    downloads = server.fake.hits("/_download/")

    fake = server.fake
    fake.modify(_item_id(server, "code-of-conduct.html"), b"<h1>Code of Conduct</h1><p>Bribes are forbidden.</p>")
    fake.delete(_item_id(server, "whistleblowing-policy.html"))
    fake.set_permissions(_item_id(server, "remote-work-policy.html"), [permission("user:carol")])
    fake.add(
        "new-policy.html", b"<h1>Clean desk policy</h1><p>Desks are cleared daily.</p>", [permission("group:employees")]
    )
    second = ingestor.run([conn])
    assert (second.added, second.updated, second.deleted, second.acl_changed, second.failed) == (1, 1, 1, 1, [])
    assert server.fake.hits("/_download/") - downloads == 2  # only the new and the edited file

    # A document made private disappears for alice and stays for carol; a deleted one for everyone.
    assert remote not in _found(index, embedder, "work from home days per week", ALICE)
    assert remote in _found(index, embedder, "work from home days per week", CAROL)
    assert whistle not in _found(index, embedder, "whistleblowing report concerns", CAROL)
    state = IngestState(tmp_path / "state.sqlite")
    assert json.loads(state.cursor("sp") or "{}")["drives"]
    state.close()


def test_expired_delta_token_resyncs_and_reconciles_deletions(server: GraphServer, ingest) -> None:
    index, ingestor = ingest
    conn = make(server)
    ingestor.run([conn])
    before = index.count()
    server.fake.delete(_item_id(server, "code-of-conduct.html"))
    server.fake.expire_delta_tokens()
    server.fake.items = {k: v for k, v in server.fake.items.items() if not v.deleted}  # gone without a trace
    report = ingestor.run([conn])
    assert (report.deleted, report.failed) == (1, [])
    assert 0 < index.count() < before


def test_a_hung_download_holds_the_cursor_and_the_next_sync_recovers(server: GraphServer, ingest, tmp_path) -> None:
    _, ingestor = ingest
    server.fake.inject(f"/_download/b!policies-drive-0001/{_item_id(server, 'code-of-conduct.html')}", "hang")
    report = ingestor.run([make(server, timeout_s=0.3, max_retries=0)])
    assert report.added == N_ITEMS - 1
    assert len(report.failed) == 1 and "did not answer within" in report.failed[0][1]
    state = IngestState(tmp_path / "state.sqlite")
    held = state.cursor("sp")
    state.close()
    server.fake.release.set()
    again = ingestor.run([make(server)])
    assert (again.added, again.failed) == (1, [])
    assert held is None or "$skiptoken" in held  # never the final deltaLink while an item was missing


def test_unreadable_permissions_fail_closed_then_recover(server: GraphServer, ingest, embedder) -> None:
    index, ingestor = ingest
    conn = make(server, max_retries=0)
    ingestor.run([conn])
    remote = _doc_id(server, "remote-work-policy.html")
    item = _item_id(server, "remote-work-policy.html")
    server.fake.modify(item, server.fake.items[item].content + b"<p>Updated.</p>")
    server.fake.inject(f"/items/{item}/permissions", "503", times=-1)
    report = ingestor.run([conn])
    assert [d for d, _ in report.failed] == [remote] and "permissions could not be read" in report.failed[0][1]
    # Nobody may read what Sovra cannot check: the indexed version is hidden until permissions are known.
    assert remote not in _found(index, embedder, "work from home days per week", ALICE)
    server.fake.faults.clear()
    again = ingestor.run([conn])
    assert (again.updated, again.failed) == (1, [])
    assert remote in _found(index, embedder, "work from home days per week", ALICE)


# -- the command, killed half-way ------------------------------------------------------------


def _write_config(tmp_path: Path, server: GraphServer) -> dict[str, str]:
    opts = server.connector_options()
    toml = tmp_path / "sovra.toml"
    toml.write_text(
        f'graph_tenant_id = "{TENANT}"\ngraph_client_id = "{CLIENT_ID}"\n'
        f'graph_authority_host = "{opts["authority_host"]}"\ngraph_url = "{opts["graph_url"]}"\n'
        f'graph_ca_bundle = "{opts["ca_bundle"]}"\n'
        f'[sources.sp]\nkind = "sharepoint_graph"\nsites = {json.dumps(opts["sites"])}\n'
    )
    return {
        **os.environ,
        "SOVRA_CONFIG": str(toml),
        "SOVRA_DATA_DIR": str(tmp_path / "data"),
        "SOVRA_GRAPH_CLIENT_SECRET": opts["client_secret"],
        "HF_HUB_OFFLINE": "1",
    }


@pytest.mark.slow
def test_sync_killed_half_way_resumes_without_duplicates_or_losses(server: GraphServer, tmp_path: Path) -> None:
    env = _write_config(tmp_path, server)
    # Item 6 of 8 is on the third delta page: pages 1-2 are checkpointed before it hangs.
    victim = sorted(server.fake.items.values(), key=lambda i: i.seq)[6]
    server.fake.inject(f"/_download/b!policies-drive-0001/{victim.id}", "hang")
    cmd = [sys.executable, "-m", "sovra.ui.cli", "sync", "sp"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        assert server.fake.hang_started.wait(120), "the sync never reached the hanging download"
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    state = IngestState(tmp_path / "data" / "ingest-state.sqlite")
    cursor_after_kill = state.cursor("sp")
    indexed_after_kill = state.count()
    state.close()
    assert cursor_after_kill is not None and "$skiptoken" in cursor_after_kill  # resumes mid-enumeration
    assert 0 < indexed_after_kill < N_ITEMS

    server.fake.release.set()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "0 failed" in done.stdout

    state = IngestState(tmp_path / "data" / "ingest-state.sqlite")
    final_cursor = state.cursor("sp") or ""
    rows = state._db.execute("SELECT doc_id, chunks FROM documents").fetchall()
    state.close()
    assert "token=" in final_cursor and "$skiptoken" not in final_cursor  # advanced to the deltaLink
    assert len(rows) == N_ITEMS
    index = EdgeIndex(tmp_path / "data" / "qdrant", "sovra")
    try:
        index.check(index._meta())  # type: ignore[arg-type]
        # Every chunk exactly once: a duplicate would make the index larger, a loss smaller.
        assert all(n > 0 for _, n in rows)
        assert index.count() == sum(n for _, n in rows)
    finally:
        index.close()


def test_cli_errors_are_one_line(
    tmp_path: Path, server: GraphServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from sovra.ui.cli import main

    for key, value in _write_config(tmp_path, server).items():
        if key.startswith("SOVRA_"):
            monkeypatch.setenv(key, value)
    with pytest.raises(SystemExit) as unknown:
        main(["sync", "nope"])
    err = capsys.readouterr().err
    assert unknown.value.code == 2 and "unknown source 'nope'" in err and "Traceback" not in err
    (tmp_path / "sovra.toml").write_text((tmp_path / "sovra.toml").read_text() + 'client_secret = "oops"\n')
    with pytest.raises(SystemExit) as leaked:
        main(["sync", "sp"])
    assert leaked.value.code == 1 and "secret in its configuration" in capsys.readouterr().err


# -- principals as real Graph gives them (issue 17) --------------------------------------------------

ALICE_OID = "3f2a9c1e-5b7d-4e8f-9a0b-1c2d3e4f5a6b"
BOB_OID = "8e7d6c5b-4a39-4281-b0f1-e2d3c4b5a697"
OWEN_OID = "0b1c2d3e-4f50-4617-8293-a4b5c6d7e8f9"
FINANCE_OID = "6a5b4c3d-2e1f-4a0b-9c8d-7e6f5a4b3c2d"
SITE_GROUP_OID = "d4c3b2a1-0f9e-48d7-b6c5-a4b3c2d1e0f9"  # the policies site's Microsoft 365 group
PRINCIPALS = {
    "users": {ALICE_OID: "alice", "owen@nordbank.example": "owen"},
    "groups": {FINANCE_OID: "finance", SITE_GROUP_OID: "policies-site"},
}


def _real_shapes() -> dict[str, list[dict]]:
    from fakes.graph_server import (
        entra_group,
        entra_user,
        everyone_except_external_users,
        grant,
        site_group,
    )

    return {
        "entra.html": [
            grant({"user": entra_user(ALICE_OID, "Alice Martin", "alice@nordbank.example")}),
            grant({"group": entra_group(FINANCE_OID, "Finance")}),
            grant({"user": entra_user(BOB_OID, "Bob Schneider", "bob@nordbank.example")}, ("write",), False),
        ],
        "members.html": [grant(site_group(3, "Policies Members")), grant(site_group(5, "Policies Owners"))],
        "visitors.html": [grant(site_group(4, "Policies Visitors"))],
        "eeeu.html": [grant(everyone_except_external_users())],
        "orglink.html": [
            {"roles": ["read"], "link": {"scope": "organization", "type": "view", "webUrl": "https://x/:w:/s/p/E"}}
        ],
    }


EXPECTED = {
    "entra.html": {"user:alice", "group:finance", f"user:{BOB_OID}"},  # unmapped: the GUID, as OIDC gives it
    "members.html": {"group:policies-site", "user:alice", f"user:{BOB_OID}", "user:owen"},
    "visitors.html": set(),  # nobody said who the visitors are: nobody
    "eeeu.html": {"group:everyone"},
    "orglink.html": set(),  # an organization-wide link reaches those who hold it, not everyone
}


@pytest.fixture
def real_server():
    from fakes.graph_server import directory_user

    fake = FakeGraph(page_size=2, site_group_id=SITE_GROUP_OID)
    fake.group_owners = [directory_user(OWEN_OID, "Owen Owner", "owen@nordbank.example")]
    fake.group_members = [
        directory_user(ALICE_OID, "Alice Martin", "alice@nordbank.example"),
        directory_user(BOB_OID, "Bob Schneider", "bob@nordbank.example"),
        directory_user(OWEN_OID, "Owen Owner", "owen@nordbank.example"),
    ]  # two pages
    for name, perms in _real_shapes().items():
        fake.add(name, b"<p>Policy text.</p>", perms)
    with GraphServer(fake) as srv:
        yield srv


def test_entra_ids_site_groups_and_everyone_except_external_users_map_to_principals(real_server) -> None:
    docs = [c for c in make(real_server, **PRINCIPALS).sync(None) if isinstance(c, Document)]
    acls = {d.metadata["name"]: set(d.acl) for d in docs}
    assert acls == EXPECTED
    # The site group members came from Graph, every page of them.
    member_calls = [p for _, p in real_server.fake.requests if f"/groups/{SITE_GROUP_OID}/members" in p]
    assert len(member_calls) == 2


def test_configured_site_groups_and_organization_links(real_server) -> None:
    conn = make(
        real_server,
        **PRINCIPALS,
        site_groups={"Policies Visitors": ["group:auditor", {"user": {"id": BOB_OID}}]},
        organization_link_principal="group:employees",
        organization_principal="group:employees",
    )
    acls = {d.metadata["name"]: set(d.acl) for d in conn.sync(None) if isinstance(d, Document)}
    assert acls["visitors.html"] == {"group:auditor", f"user:{BOB_OID}"}
    assert acls["orglink.html"] == {"group:employees"} and acls["eeeu.html"] == {"group:employees"}


def test_the_export_connector_reads_the_same_permissions_the_same_way(tmp_path: Path) -> None:
    from fakes.graph_server import directory_user

    from sovra.connectors.sharepoint_export import SharePointExportConnector

    (tmp_path / "files").mkdir()
    members = [
        {"group": {"id": SITE_GROUP_OID}},
        *(
            {"user": {"id": u["id"], "email": u["mail"]}}
            for u in (
                directory_user(ALICE_OID, "Alice Martin", "alice@nordbank.example"),
                directory_user(BOB_OID, "Bob Schneider", "bob@nordbank.example"),
            )
        ),
    ]
    owners = [{"user": {"id": OWEN_OID, "email": "owen@nordbank.example"}}]
    items = []
    for n, (name, perms) in enumerate(_real_shapes().items()):
        (tmp_path / "files" / name).write_text("<p>Policy text.</p>")
        items.append({"id": f"01X{n}", "name": name, "file": {"path": f"files/{name}"}, "permissions": perms})
    manifest = {
        "site": {"id": "policies"},
        "siteGroups": {
            "3": {"displayName": "Policies Members", "members": members},
            "5": {"displayName": "Policies Owners", "members": owners},
        },
        "items": items,
    }
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    docs = SharePointExportConnector(tmp_path, **PRINCIPALS).documents()
    assert {d.metadata["name"]: set(d.acl) for d in docs} == EXPECTED
