"""Streaming, approvals, cancellation, threads, run listing and bad input, through a real uvicorn
server on 127.0.0.1 with stub agents (real runtime, audit log and checkpoints; no index, no model)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import httpx
import pytest
from fakes.chat_agent import CitedAgent, index_cited_document, serve_asgi

from sovra.config import Settings
from sovra.evals.bench_api import EchoAgent
from sovra.runtime import Runtime
from sovra.ui.api import create_app

USERS = {
    "alice": {"name": "Alice Martin", "groups": ["employees"]},
    "bob": {"name": "Bob Schneider", "groups": ["employees", "finance"]},
    "erin": {"name": "Erin Auditor", "groups": ["employees", "auditor"]},
    "paula": {"name": "Paula Approver", "groups": ["employees", "approvers"]},
    "fiona": {"name": "Fiona Finance-Approver", "groups": ["employees", "finance", "approvers"]},
    "nogroups": {"name": "No Groups", "groups": []},
}
TOKENS = {f"{u}-token-0123456789abcdef": u for u in USERS}
H = {u: {"Authorization": f"Bearer {t}"} for t, u in TOKENS.items()}

GATE = threading.Event()
CANCELLED = threading.Event()


class SpyRuntime(Runtime):
    """The real runtime; notes that the API cancelled a run, so the test can open the gate after."""

    def cancel(self, run_id: str) -> None:
        super().cancel(run_id)
        CANCELLED.set()


@pytest.fixture(scope="module")
def api(tmp_path_factory) -> Iterator[httpx.Client]:
    data = tmp_path_factory.mktemp("api-runs")
    (data / "users.json").write_text(json.dumps(USERS))
    gated = CitedAgent(gate=GATE)
    gated.name = "gated"
    agents = {"echo": EchoAgent, "chat-test": CitedAgent, "gated": lambda: gated}  # keyed by agent.name
    index_cited_document(Settings(data_dir=data))  # the policy the chat-test agent cites: employees only
    # Ten questions of one user at once (test_concurrent_requests_of_one_user): above the default bound.
    settings = Settings(data_dir=data, api_queue_per_user=16)
    app = create_app(settings, tokens=TOKENS, agents=agents, runtime_factory=SpyRuntime)
    with serve_asgi(app) as url, httpx.Client(base_url=url, timeout=60) as client:
        yield client


def events(r: httpx.Response) -> list[tuple[str, dict]]:
    """Parse a text/event-stream body into (event, data) pairs (comments skipped)."""
    out = []
    for block in r.text.split("\n\n"):
        lines = [ln for ln in block.splitlines() if ln and not ln.startswith(":")]
        if not lines:
            continue
        fields = dict(ln.split(": ", 1) for ln in lines)
        out.append((fields["event"], json.loads(fields["data"])))
    return out


def assert_error(r: httpx.Response, status: int, text: str) -> dict:
    assert r.status_code == status, (r.status_code, r.text)
    body = r.json()
    err = body["error"]
    if isinstance(err, dict):  # the OpenAI-compatible routes answer errors in OpenAI's shape
        body = err
        err = err["message"]
    assert text in err, body
    assert "Traceback" not in r.text
    return body


# ---------------------------------------------------------------------------------------------
# Streaming


@pytest.mark.parametrize("path", ["/v1/ask/stream", "/v1/ask?stream=true"])
def test_stream_sends_steps_tokens_then_the_answer(api, path):
    r = api.post(path, json={"question": "hotel limit?", "agent": "echo"}, headers=H["alice"])
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/event-stream")
    evs = events(r)
    kinds = [k for k, _ in evs]
    assert kinds[-1] == "answer" and "step" in kinds and "token" in kinds
    assert kinds.index("token") < len(kinds) - 1
    steps = [d["name"] for k, d in evs if k == "step"]
    assert steps == ["plan", "answer"]
    answer = evs[-1][1]
    tokens = "".join(d["text"] for k, d in evs if k == "token")
    assert tokens.strip() == answer["answer"]
    assert answer["user"] == "alice" and answer["citations"][0]["title"] == "Echo policy"
    assert {d["run_id"] for _, d in evs} == {answer["run_id"]}


def test_stream_errors_before_the_first_event_are_plain_json(api):
    assert_error(api.post("/v1/ask/stream", json={"question": "  ", "agent": "echo"}, headers=H["alice"]), 400, "empty")
    assert_error(
        api.post("/v1/ask/stream", json={"question": "x", "agent": "nope"}, headers=H["alice"]), 400, "unknown"
    )
    assert_error(api.post("/v1/ask/stream", json={"question": "x"}), 401, "missing bearer token")


def test_closing_the_stream_cancels_the_run(api):
    GATE.clear()
    CANCELLED.clear()
    with api.stream("POST", "/v1/ask/stream", json={"question": "hotel?", "agent": "gated"}, headers=H["bob"]) as r:
        assert r.status_code == 200
        lines = r.iter_lines()
        first = next(ln for ln in lines if ln.startswith("data: "))
        run_id = json.loads(first[6:])["run_id"]
    # The client is gone; the server notices, cancels, and the run stops at its next step.
    assert CANCELLED.wait(30), "the API did not cancel the run when the client went away"
    GATE.set()
    # The next run waits for the cancelled one to leave the runtime (one run at a time).
    assert api.post("/v1/ask", json={"question": "hi", "agent": "echo"}, headers=H["bob"]).status_code == 200
    run = api.get(f"/v1/runs/{run_id}", headers=H["bob"]).json()
    assert run["status"] == "cancelled"
    kinds = [rec["kind"] for rec in run["records"]]
    assert "run.cancelled" in kinds and "run.end" in kinds


# ---------------------------------------------------------------------------------------------
# Approvals


@pytest.fixture
def paused(api) -> dict:
    r = api.post("/v1/ask", json={"question": "Please pay invoice INV-7", "agent": "chat-test"}, headers=H["alice"])
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "awaiting_approval" and body["approval"]["tool"] == "pay_invoice"
    return body


def test_an_approver_approves_and_the_run_finishes(api, paused):
    run_id = paused["run_id"]
    for who in ("alice", "paula", "erin"):  # owner, approver, auditor may look
        r = api.get(f"/v1/runs/{run_id}/approval", headers=H[who])
        assert r.status_code == 200 and r.json()["approval"]["description"].startswith("Pay invoice"), r.text
    assert_error(api.get(f"/v1/runs/{run_id}/approval", headers=H["bob"]), 403, "may not see")
    assert_error(api.post(f"/v1/runs/{run_id}/approval", json={"approved": True}, headers=H["bob"]), 403, "may not")
    assert_error(api.post(f"/v1/runs/{run_id}/approval", json={"approved": True}, headers=H["erin"]), 403, "may not")
    r = api.post(f"/v1/runs/{run_id}/approval", json={"approved": True, "reason": "ok"}, headers=H["paula"])
    assert r.status_code == 200, r.text
    # Paula may decide but may not read the ledger the answer quotes: she learns the run finished,
    # not what it says (issue 17). Alice, the owner, reads it in her run.
    body = r.json()
    assert body["status"] == "answered" and body["withheld"] is True, body
    assert body["answer"] is None and body["citations"] == [] and body["evidence"] == []
    assert "approved by paula" not in r.text and "JE-1001" not in r.text and "250 EUR" not in r.text
    trail = api.get(f"/v1/runs/{run_id}/audit", headers=H["alice"]).text
    assert "Invoice INV-7 payment approved by paula." in trail
    # The refused attempts of bob and erin are on the run's record too (issue 23: every attempt audited).
    assert trail.count("approval.refused") == 2 and '"by": "bob"' in trail.replace('":"', '": "'), trail[:2000]
    # Decided: a second decision conflicts; the approval is gone; the decision is on the record.
    again = api.post(f"/v1/runs/{run_id}/approval", json={"approved": False, "reason": "no"}, headers=H["alice"])
    assert_error(again, 409, "not waiting for approval")
    assert api.get(f"/v1/runs/{run_id}/approval", headers=H["alice"]).json()["approval"] is None
    audit = api.get(f"/v1/runs/{run_id}/audit", headers=H["erin"]).json()
    decision = next(s for s in audit["steps"] if s["kind"] == "approval.decision")
    assert decision["data"]["approver"] == "paula" and decision["data"]["approved"] is True


def test_an_approver_who_may_read_every_source_sees_the_answer(api, paused):
    r = api.post(f"/v1/runs/{paused['run_id']}/approval", json={"approved": True}, headers=H["fiona"])
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["answer"] == "Invoice INV-7 payment approved by fiona." and "withheld" not in body
    assert [c["kind"] for c in body["citations"]] == ["document", "ledger"]


def test_an_approver_sees_the_pending_action_they_decide_on(api, paused):
    r = api.get(f"/v1/runs/{paused['run_id']}/approval", headers=H["paula"])
    assert r.status_code == 200
    approval = r.json()["approval"]
    assert approval["tool"] == "pay_invoice" and approval["args"] == {"invoice": "INV-7", "amount_eur": 1200}
    assert api.get(f"/v1/runs/{paused['run_id']}", headers=H["paula"]).status_code == 403  # not the run itself


def test_a_refusal_needs_a_reason(api, paused):
    run_id = paused["run_id"]
    assert_error(api.post(f"/v1/runs/{run_id}/approval", json={"approved": False}, headers=H["alice"]), 422, "reason")
    r = api.post(f"/v1/runs/{run_id}/approval", json={"approved": False, "reason": "wrong IBAN"}, headers=H["alice"])
    assert r.status_code == 200 and "refused (wrong IBAN) by alice" in r.json()["answer"], r.text


def test_approval_of_an_unknown_or_finished_run(api):
    assert_error(api.get(f"/v1/runs/{'0' * 32}/approval", headers=H["alice"]), 404, "no run")
    assert_error(api.post(f"/v1/runs/{'0' * 32}/approval", json={"approved": True}, headers=H["alice"]), 404, "no run")
    done = api.post("/v1/ask", json={"question": "hotel?", "agent": "chat-test"}, headers=H["alice"]).json()
    r = api.post(f"/v1/runs/{done['run_id']}/approval", json={"approved": True}, headers=H["alice"])
    assert_error(r, 409, "not waiting for approval")
    bad = api.post(f"/v1/runs/{done['run_id']}/approval", json={"approved": "maybe"}, headers=H["alice"])
    assert_error(bad, 422, "invalid request")


def test_streaming_a_run_that_needs_approval(api):
    r = api.post("/v1/ask/stream", json={"question": "pay INV-7", "agent": "chat-test"}, headers=H["bob"])
    evs = events(r)
    assert [k for k, _ in evs][-2:] == ["approval", "answer"]
    assert evs[-1][1]["status"] == "awaiting_approval"
    run_id = evs[-1][1]["run_id"]
    r = api.post(f"/v1/runs/{run_id}/cancel", headers=H["bob"])
    assert r.status_code == 202 and r.json()["status"] == "cancelled"
    assert_error(api.post(f"/v1/runs/{run_id}/cancel", headers=H["alice"]), 403, "may not cancel")
    assert "run.cancel_refused" in api.get(f"/v1/runs/{run_id}/audit", headers=H["bob"]).text


# ---------------------------------------------------------------------------------------------
# Threads, runs, audit


def test_a_thread_keeps_the_conversation_and_belongs_to_its_user(api):
    first = api.post("/v1/ask", json={"question": "one", "agent": "echo"}, headers=H["alice"]).json()
    thread = first["run_id"]  # a new run starts a thread named after it
    second = api.post("/v1/ask", json={"question": "two", "agent": "echo", "thread_id": thread}, headers=H["alice"])
    assert second.status_code == 200 and "(turn 2," in second.json()["answer"], second.text
    assert second.json()["thread_id"] == thread
    stolen = api.post("/v1/ask", json={"question": "three", "agent": "echo", "thread_id": thread}, headers=H["bob"])
    assert_error(stolen, 403, "belongs to another user")
    stolen = api.post("/v1/ask/stream", json={"question": "3", "agent": "echo", "thread_id": thread}, headers=H["bob"])
    assert_error(stolen, 403, "belongs to another user")


def test_list_runs_mine_only_unless_auditor(api):
    api.post("/v1/ask", json={"question": "nogroups asks", "agent": "echo"}, headers=H["nogroups"])
    mine = api.get("/v1/runs", headers=H["nogroups"]).json()["runs"]
    assert mine and {r["user"] for r in mine} == {"nogroups"}
    assert mine[0]["question"] == "nogroups asks" and mine[0]["status"] == "answered"
    assert_error(api.get("/v1/runs?owner=alice", headers=H["bob"]), 403, "may not list")
    everyone = api.get("/v1/runs?owner=*&limit=200", headers=H["erin"]).json()["runs"]
    assert {"nogroups", "alice"} <= {r["user"] for r in everyone}
    assert {r["user"] for r in api.get("/v1/runs?owner=alice", headers=H["erin"]).json()["runs"]} == {"alice"}


def test_audit_steps_owner_or_auditor(api):
    run = api.post("/v1/ask", json={"question": "audit me", "agent": "echo"}, headers=H["alice"]).json()
    for who in ("alice", "erin"):
        r = api.get(f"/v1/runs/{run['run_id']}/audit", headers=H[who])
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["question"] == "audit me" and body["user"] == "alice" and body["groups"] == ["employees"]
        kinds = [s["kind"] for s in body["steps"]]
        assert kinds[0] == "run.start" and "echo.plan" in kinds and kinds[-1] == "run.end"
        assert body["sources"][0]["title"] == "Echo policy"
    verified = api.get(f"/v1/runs/{run['run_id']}/audit?verify=true", headers=H["erin"]).json()
    assert verified["chain"]["ok"] is True
    assert_error(api.get(f"/v1/runs/{run['run_id']}/audit", headers=H["bob"]), 403, "may not read run")
    assert_error(api.get(f"/v1/runs/{'0' * 32}/audit", headers=H["erin"]), 404, "no run")


def test_a_user_with_no_groups_can_ask(api):
    r = api.post("/v1/ask", json={"question": "what can I read?", "agent": "echo"}, headers=H["nogroups"])
    assert r.status_code == 200 and r.json()["user"] == "nogroups"


def test_concurrent_requests_of_one_user(api, tmp_path):
    """Ten asks at once from one user: every one answered, each its own run, one valid chain."""
    import asyncio

    async def many() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=str(api.base_url), timeout=60) as client:
            reqs = [
                client.post("/v1/ask", json={"question": f"q{i}", "agent": "echo"}, headers=H["bob"]) for i in range(10)
            ]
            return await asyncio.gather(*reqs)

    rs = asyncio.run(many())
    assert all(r.status_code == 200 for r in rs), [r.text for r in rs]
    assert sorted(r.json()["question"] for r in rs) == sorted(f"q{i}" for i in range(10))
    assert len({r.json()["run_id"] for r in rs}) == 10
    verified = api.get(f"/v1/runs/{rs[0].json()['run_id']}/audit?verify=true", headers=H["erin"]).json()
    assert verified["chain"]["ok"] is True


# ---------------------------------------------------------------------------------------------
# Bad input


@pytest.mark.parametrize(
    ("content", "ctype"),
    [
        (b'{"question": "unterminated', "application/json"),
        (b"question=hi", "application/x-www-form-urlencoded"),
        (b"[1, 2, 3]", "application/json"),
        (b'{"question": 42}', "application/json"),
        (b"\xff\xfe\x00garbage", "application/json"),
    ],
)
def test_malformed_bodies_are_422_json(api, content, ctype):
    for path in ("/v1/ask", "/v1/ask/stream", "/v1/chat/completions"):
        r = api.post(path, content=content, headers=H["alice"] | {"Content-Type": ctype})
        body = assert_error(r, 422, "invalid request")
        assert body["detail"]


def test_oversized_bodies_are_413_everywhere(api):
    big = "x" * (65 * 1024)
    for path, body in [
        ("/v1/ask/stream", {"question": big}),
        ("/v1/chat/completions", {"model": "sovra-echo", "messages": [{"role": "user", "content": big}]}),
        ("/v1/runs/x/approval", {"approved": False, "reason": big}),
    ]:
        assert_error(api.post(path, json=body, headers=H["alice"]), 413, "over 64 KB")


def test_unauthenticated_is_401_on_every_v1_route(api):
    routes = [
        ("GET", "/v1/runs"),
        ("GET", "/v1/runs/abc"),
        ("GET", "/v1/runs/abc/audit"),
        ("GET", "/v1/runs/abc/approval"),
        ("POST", "/v1/runs/abc/approval"),
        ("POST", "/v1/runs/abc/cancel"),
        ("POST", "/v1/sources/contracts/sync"),
        ("GET", "/v1/jobs/abc"),
        ("GET", "/v1/models"),
        ("POST", "/v1/chat/completions"),
        ("POST", "/v1/ask/stream"),
    ]
    for method, path in routes:
        for headers in ({}, {"Authorization": "Bearer forged-token-0123456789"}):
            r = api.request(method, path, headers=headers, json={})
            assert r.status_code in (401, 422), (method, path, r.status_code)
            if r.status_code == 422:  # body validation may run first; never a 200 or a 500
                assert "invalid request" in json.dumps(r.json())
            else:
                assert r.headers["www-authenticate"] == "Bearer"


def test_the_openapi_schema_names_every_endpoint(api):
    schema = api.get("/openapi.json").json()
    paths = schema["paths"]
    for path in (
        "/v1/ask",
        "/v1/ask/stream",
        "/v1/runs",
        "/v1/runs/{run_id}",
        "/v1/runs/{run_id}/audit",
        "/v1/runs/{run_id}/approval",
        "/v1/sources/{name}/sync",
        "/v1/jobs/{job_id}",
        "/v1/chat/completions",
        "/v1/models",
        "/health",
        "/ready",
    ):
        assert path in paths, path
    assert set(paths["/v1/runs/{run_id}/approval"]) == {"get", "post"}
    ask = paths["/v1/ask"]["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    props = schema["components"]["schemas"][ask.rsplit("/", 1)[-1]]["properties"]
    assert set(props) == {"question", "agent", "thread_id"}  # no "user": identity is the token's
    assert "text/event-stream" in paths["/v1/ask/stream"]["post"]["responses"]["200"]["content"]
