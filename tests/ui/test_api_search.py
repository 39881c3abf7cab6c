"""POST /v1/search on a real uvicorn server over the demo bank: the token's user only, ACL inside the
index, one audited run per call."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import httpx
import pytest
import uvicorn
from conftest import copy_demo_data

from sovra.audit import AuditLog
from sovra.config import Settings
from sovra.evals.demo_corpus_restricted import RESTRICTED_PHRASES
from sovra.ui.api import create_app

TOKENS = {"alice-token-0123456789": "alice", "carol-token-0123456789": "carol"}
ALICE, CAROL = ({"Authorization": f"Bearer {t}"} for t in TOKENS)
PHRASE = RESTRICTED_PHRASES["risk-appetite-statement-2026"]


@pytest.fixture(scope="module")
def api(demo_settings, tmp_path_factory) -> Iterator[tuple[httpx.Client, Settings]]:
    settings = Settings(data_dir=copy_demo_data(demo_settings, tmp_path_factory.mktemp("api-search") / "data"))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    server = uvicorn.Server(uvicorn.Config(create_app(settings, tokens=TOKENS), log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{sock.getsockname()[1]}", timeout=300) as client:
            yield client, settings
    finally:
        server.should_exit = True
        thread.join(timeout=60)
        sock.close()
    assert not thread.is_alive()


def test_search_returns_only_what_the_token_user_may_read(api):
    client, settings = api
    r = client.post("/v1/search", json={"query": PHRASE, "limit": 10}, headers=CAROL)
    assert r.status_code == 200, r.text
    assert any(PHRASE in h["text"] for h in r.json()["hits"])
    r = client.post("/v1/search", json={"query": PHRASE, "limit": 10}, headers=ALICE)
    assert r.status_code == 200 and r.json()["hits"], r.text
    assert not any(PHRASE in h["text"] or h["title"] == "Risk Appetite Statement 2026" for h in r.json()["hits"])
    with AuditLog(settings.paths.audit_db) as log:
        run = log.records(r.json()["run_id"])
    assert run[0].user_id == "alice" and run[0].data["interface"] == "api"
    assert [x.kind for x in run] == ["run.start", "tool.search_documents", "run.end"]
    assert [h["chunk_id"] for h in run[1].data["result"]["hits"]] == [h["chunk_id"] for h in r.json()["hits"]]


def test_search_needs_a_token_and_the_body_cannot_name_a_user(api):
    client, _ = api
    assert client.post("/v1/search", json={"query": "hotel"}).status_code == 401
    r = client.post("/v1/search", json={"query": "hotel", "user": "carol"}, headers=ALICE)
    assert r.status_code == 422, r.text
