"""`sovra mcp` driven by the official MCP client library over both transports: streamable HTTP (a real
uvicorn server on 127.0.0.1, bearer tokens checked as the HTTP API checks them) and stdio (`sovra mcp`
as a subprocess). Demo bank data: real index, ACLs, audit log. The model is the faithful vLLM fake.

The ACL probe: for every restricted demo document and every demo user outside its ACL, searching its
distinctive phrase never returns a passage of it, its chunk cannot be fetched by id, and it is neither
listed nor readable as a resource."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import uvicorn
from conftest import copy_demo_data
from fakes.vllm_server import FakeVLLM
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.exceptions import MCPError
from sdk_support import tool_reply

from sovra.audit import AuditLog
from sovra.config import Settings
from sovra.evals.demo_corpus import USERS, readers
from sovra.evals.demo_corpus_restricted import RESTRICTED_PHRASES, RESTRICTED_POLICIES
from sovra.tools.cases import list_cases
from sovra.ui.mcp_server import McpState, http_app

TOKENS = {f"{u}-mcp-token-0123456789": u for u in USERS}
TOKEN = {u: t for t, u in TOKENS.items()}
RISK_TITLE = "Risk Appetite Statement 2026"
STATES: dict[Path, McpState] = {}  # the HTTP server's state, by data dir


@pytest.fixture(scope="module")
def model() -> Iterator[FakeVLLM]:
    fake = FakeVLLM()
    yield fake
    fake.close()


def _settings(data: Path, model: FakeVLLM, tokens_file: Path) -> Settings:
    return Settings(data_dir=data, llm_base_url=model.base_url, llm_model=model.base_model, api_tokens_file=tokens_file)


@pytest.fixture(scope="module")
def tokens_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("mcp-tokens") / "tokens.json"
    path.write_text(json.dumps(TOKENS))
    return path


@pytest.fixture(scope="module")
def http_server(demo_settings, model, tokens_file, tmp_path_factory) -> Iterator[tuple[str, Settings]]:
    settings = _settings(
        copy_demo_data(demo_settings, tmp_path_factory.mktemp("mcp-http") / "data"), model, tokens_file
    )
    settings = settings.model_copy(update={"as_of": demo_settings.as_of})
    state = McpState(settings)
    STATES[settings.data_dir] = state
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    server = uvicorn.Server(uvicorn.Config(http_app(state), log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/mcp", settings
    finally:
        server.should_exit = True
        thread.join(timeout=60)
        sock.close()
        state.close()
    assert not thread.is_alive(), "server did not shut down"


def over_http(url: str, user: str, fn: Any) -> Any:
    """Run ``fn(client)`` in an MCP client session over streamable HTTP as ``user``."""

    async def main() -> Any:
        http = create_mcp_http_client(headers={"Authorization": f"Bearer {TOKEN[user]}"})
        async with http, Client(streamable_http_client(url, http_client=http)) as client:
            return await fn(client)

    return anyio.run(main)


async def probe(client: Client, user: str) -> dict[str, Any]:
    """What ``user`` gets for every restricted phrase: hits, passages by id, resources."""
    out: dict[str, Any] = {"hits": {}, "resources": [], "texts": []}
    for slug, phrase in RESTRICTED_PHRASES.items():
        r = await client.call_tool("search", {"query": phrase, "limit": 10})
        assert not r.is_error, r.content
        out["hits"][slug] = r.structured_content["hits"]
    listed = await client.list_resources()
    out["resources"] = [(res.title, str(res.uri)) for res in listed.resources]
    return out


def restricted_docs(result: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    titles = {p.slug: p.title for p in RESTRICTED_POLICIES}
    return {slug: [h for h in hits if h["title"] == titles[slug]] for slug, hits in result["hits"].items()}


def test_http_refuses_a_request_without_a_valid_token(http_server):
    url, _ = http_server
    for headers in ({}, {"Authorization": "Bearer not-a-real-token-at-all"}, {"Authorization": "Basic x"}):
        r = httpx.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, headers=headers)
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer", r.text
        assert "token" in r.json()["error"]


@pytest.mark.timeout(900)
def test_acl_probe_over_http_no_user_gets_another_groups_passage(http_server):
    url, _ = http_server
    seen: dict[str, dict[str, Any]] = {}
    for user in USERS:
        seen[user] = over_http(url, user, lambda c, u=user: probe(c, u))
    for policy in RESTRICTED_POLICIES:
        allowed = set(readers(policy.acl))
        phrase = RESTRICTED_PHRASES[policy.slug]
        for user, result in seen.items():
            mine = restricted_docs(result)[policy.slug]
            texts = " ".join(h["text"] for hits in result["hits"].values() for h in hits)
            listed = {title for title, _ in result["resources"]}
            if user in allowed:
                assert mine, f"{user} may read {policy.slug} but search did not find it"
                assert policy.title in listed
            else:
                assert not mine and phrase not in texts, f"{user} got a passage of {policy.slug}"
                assert policy.title not in listed
    # The risk committee's passage by id and as a resource: carol reads it, alice gets the same
    # answer as for a passage that does not exist.
    carol_hit = restricted_docs(seen["carol"])["risk-appetite-statement-2026"][0]
    uri = next(u for t, u in seen["carol"]["resources"] if t == RISK_TITLE)

    async def fetch(client: Client) -> tuple[Any, Any, str]:
        passage = await client.call_tool("fetch_passage", {"chunk_id": carol_hit["chunk_id"]})
        missing = await client.call_tool("fetch_passage", {"chunk_id": carol_hit["doc_id"] + "#nope"})
        try:
            doc = (await client.read_resource(uri)).contents[0].text
        except MCPError as exc:
            doc = f"refused: {exc}"
        return passage, missing, doc

    passage, _, doc = over_http(url, "carol", fetch)
    assert not passage.is_error and "CET1 floor of 13.2%" in passage.structured_content["text"]
    assert RISK_TITLE in doc and "CET1 floor of 13.2%" in doc
    passage, missing, doc = over_http(url, "alice", fetch)
    assert passage.is_error and "CET1" not in passage.content[0].text
    assert passage.content[0].text.replace(carol_hit["chunk_id"], "X") == missing.content[0].text.replace(
        carol_hit["doc_id"] + "#nope", "X"
    )  # refused exactly like a chunk that does not exist
    assert doc.startswith("refused") and "CET1" not in doc


def test_every_call_is_an_audited_run_of_the_caller(http_server):
    url, settings = http_server

    async def calls(client: Client) -> tuple[dict[str, Any], Any]:
        found = await client.call_tool("search", {"query": "hotel limit per night in London", "limit": 3})
        hit = found.structured_content["hits"][0]
        passage = await client.call_tool("fetch_passage", {"chunk_id": hit["chunk_id"]})
        return found.structured_content, passage.structured_content

    found, passage = over_http(url, "alice", calls)
    with AuditLog(settings.paths.audit_db) as log:
        search_run = log.records(found["run_id"])
        fetch_run = log.records(passage["run_id"])
        assert log.verify().ok
    start = search_run[0]
    assert start.kind == "run.start" and start.user_id == "alice"
    assert start.data["interface"] == "mcp" and start.data["groups"] == ["employees"]
    step = next(r for r in search_run if r.kind == "tool.search_documents")
    assert step.data["args"]["query"] == "hotel limit per night in London"
    assert [h["chunk_id"] for h in step.data["result"]["hits"]] == [h["chunk_id"] for h in found["hits"]]
    assert "text" not in step.data["result"]["hits"][0]  # what was found is on record, not the passages
    assert search_run[-1].kind == "run.end" and search_run[-1].data["answer"]["status"] == "answered"
    assert [r.kind for r in fetch_run] == ["run.start", "tool.read_passage", "run.end"]


def test_a_caller_cannot_queue_more_calls_than_the_api_allows(http_server):
    """The HTTP API's per-user bound holds over MCP too: a caller holding as many calls as allowed is
    refused with a retry hint (a tool error, nothing run), and others are still served."""
    url, settings = http_server
    admission = STATES[settings.data_dir].admission
    for _ in range(settings.api_queue_per_user):
        admission.enter("carol")  # carol's calls still running
    try:
        refused = over_http(url, "carol", lambda c: c.call_tool("search", {"query": "hotel limit"}))
        assert (
            refused.is_error and "already has" in refused.content[0].text and "retry after" in refused.content[0].text
        )
        served = over_http(url, "alice", lambda c: c.call_tool("search", {"query": "hotel limit"}))
        assert not served.is_error
    finally:
        for _ in range(settings.api_queue_per_user):
            admission.leave("carol")
    again = over_http(url, "carol", lambda c: c.call_tool("search", {"query": "hotel limit"}))
    assert not again.is_error, again.content


def test_ask_agent_answers_and_a_side_effect_waits_for_approval(http_server, model):
    url, settings = http_server
    model.script = [tool_reply("open_case", counterparty="Acme", summary="paid twice", amount=8500)]
    question = "Acme was paid twice in March (8,500); open a follow-up case"
    r = over_http(url, "bob", lambda c: c.call_tool("ask_agent", {"question": question, "agent": "followup"}))
    assert not r.is_error, r.content
    answer = r.structured_content
    assert answer["status"] == "awaiting_approval" and answer["approval"]["tool"] == "open_case"
    assert answer["approval"]["args"]["counterparty"] == "Acme" and answer["approval"]["requested_for"] == "bob"
    assert list_cases(settings) == []  # paused before the tool acted
    with AuditLog(settings.paths.audit_db) as log:
        kinds = [r.kind for r in log.records(answer["run_id"])]
    assert kinds[0] == "run.start" and kinds[-1] == "run.paused" and "tool.open_case" not in kinds
    # alice lacks the group the tool requires: the agent's run records the denial, nothing waits.
    model.script = [tool_reply("open_case", counterparty="Acme", summary="x", amount=1)]
    r = over_http(url, "alice", lambda c: c.call_tool("ask_agent", {"question": question, "agent": "followup"}))
    assert r.structured_content["approval"] is None and list_cases(settings) == []
    bad = over_http(url, "alice", lambda c: c.call_tool("ask_agent", {"question": "hi", "agent": "no-such-agent"}))
    assert bad.is_error and "no-such-agent" in bad.content[0].text


@pytest.mark.timeout(900)
def test_stdio_transport_with_the_callers_token(demo_settings, model, tokens_file, tmp_path):
    data = copy_demo_data(demo_settings, tmp_path / "data")
    sovra = Path(sys.executable).with_name("sovra")
    env = {
        "SOVRA_DATA_DIR": str(data),
        "SOVRA_AS_OF": str(demo_settings.as_of),
        "SOVRA_API_TOKENS_FILE": str(tokens_file),
        "SOVRA_MCP_TOKEN": TOKEN["alice"],
        "HF_HUB_OFFLINE": "1",
    }

    async def main() -> tuple[dict[str, Any], list[str], Any]:
        async with Client(StdioServerParameters(command=str(sovra), args=["mcp"], env=env)) as client:
            tools = sorted(t.name for t in (await client.list_tools()).tools)
            result = await probe(client, "alice")
            return result, tools, await client.call_tool("list_agents", {})

    result, tools, agents = anyio.run(main)
    assert tools == ["ask_agent", "fetch_passage", "list_agents", "search"]
    assert "assistant" in {a["name"] for a in agents.structured_content["agents"]}
    assert not any(restricted_docs(result).values())  # alice: no restricted passage over stdio either
    assert not {p.title for p in RESTRICTED_POLICIES} & {t for t, _ in result["resources"]}
    assert result["resources"], "alice may read the public policies"
    with AuditLog(data / "audit.sqlite") as log:
        runs = log.runs(limit=100)
    assert runs and {r.user_id for r in runs} == {"alice"}
    assert runs[0].question == "list_agents"  # the last call: every call is a run, listing agents too
    assert all(log_run.question.startswith(("search_documents", "list_documents", "list_agents")) for log_run in runs)

    env["SOVRA_MCP_TOKEN"] = "not-a-real-token-at-all"  # refused before the server speaks MCP at all
    p = subprocess.run([str(sovra), "mcp"], env={**os.environ, **env}, input="", capture_output=True, text=True)
    assert p.returncode != 0 and "SOVRA_MCP_TOKEN token is refused: invalid token" in p.stderr, p.stderr
    assert p.stdout == ""
