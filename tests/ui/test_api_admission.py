"""Admission control (issue 23 part 3), through a real uvicorn server on 127.0.0.1: a question whose
client left while it was queued is dropped before it runs, the queue is bounded per user and overall
(429 + Retry-After), and /health and /ready answer while questions hold the runtime."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fakes.chat_agent import CitedAgent, serve_asgi

from sovra.config import Settings
from sovra.evals.bench_api import EchoAgent
from sovra.ui.api import create_app

USERS = {u: {"name": u.title(), "groups": ["employees"]} for u in ("alice", "bob", "carol", "dave")}
TOKENS = {f"{u}-token-0123456789abcdef": u for u in USERS}
H = {u: {"Authorization": f"Bearer {t}"} for t, u in TOKENS.items()}
GATE = threading.Event()


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[tuple[httpx.Client, Any]]:
    data = tmp_path_factory.mktemp("api-admission")
    (data / "users.json").write_text(json.dumps(USERS))
    gated = CitedAgent(gate=GATE)
    gated.name = "gated"
    agents = {"echo": EchoAgent, "gated": lambda: gated}
    settings = Settings(data_dir=data, api_queue_max=2, api_queue_per_user=1, api_retry_after_s=7)
    app = create_app(settings, tokens=TOKENS, agents=agents)
    with serve_asgi(app) as url, httpx.Client(base_url=url, timeout=60) as client:
        yield client, app


def test_abandoned_questions_do_not_run_the_queue_is_bounded_and_health_answers(served):
    api, app = served
    GATE.clear()
    with api.stream("POST", "/v1/ask/stream", json={"question": "hotel?", "agent": "gated"}, headers=H["bob"]) as r:
        assert r.status_code == 200
        lines = r.iter_lines()
        next(ln for ln in lines if ln.startswith("data: "))  # bob's run holds the runtime now

        # bob already has a question in: his next one is refused at once, with Retry-After.
        again = api.post("/v1/ask", json={"question": "hi", "agent": "echo"}, headers=H["bob"])
        assert again.status_code == 429, again.text
        assert again.headers["retry-after"] == "7"

        # alice's question queues; her client gives up (the timeout closes the connection).
        with httpx.Client(base_url=str(api.base_url), timeout=0.5) as impatient, pytest.raises(httpx.ReadTimeout):
            impatient.post("/v1/ask", json={"question": "abandoned question", "agent": "echo"}, headers=H["alice"])

        # Two questions held (bob's running, alice's queued): the server is full for everyone.
        full = api.post("/v1/ask", json={"question": "hi", "agent": "echo"}, headers=H["carol"])
        assert full.status_code == 429, full.text
        assert full.headers["retry-after"] == "7" and "busy" in full.json()["error"]

        # Health and readiness do not queue behind questions (the old /ready waited for the gate).
        assert api.get("/health", timeout=10).json() == {"status": "ok"}
        ready = api.get("/ready", timeout=10)  # no index here: an honest 503, but an answer
        assert ready.status_code == 503 and "index" in ready.json()["error"], ready.text
        GATE.set()
        assert any(ln.startswith("event: answer") for ln in lines)

    # bob's run ends; alice's abandoned question gets its turn and is dropped, not run.
    state = app.state.api
    assert state.admission.wait_idle(30), state.admission.held
    ok = api.post("/v1/ask", json={"question": "after", "agent": "echo"}, headers=H["dave"])
    assert ok.status_code == 200, ok.text
    assert state.admission.dropped == 1
    questions = [r["question"] for r in state.runtime.runs._exec("SELECT question FROM sovra_runs")]
    assert "abandoned question" not in questions and "after" in questions
    assert not state.admission.held  # every admitted question left the count


def test_a_refused_approval_through_the_api_is_audited(served):
    """Run-state rules (issue 23 part 4) through the API: a decision on a run that waits for none is a
    409, and the attempt is on the audit record."""
    api, app = served
    done = api.post("/v1/ask", json={"question": "hi", "agent": "echo"}, headers=H["carol"]).json()
    r = api.post(f"/v1/runs/{done['run_id']}/approval", json={"approved": True}, headers=H["carol"])
    assert r.status_code == 409 and "not waiting for approval" in r.json()["error"], r.text
    records = app.state.api.runtime.services.audit.records(done["run_id"])
    [refused] = [rec.data for rec in records if rec.kind == "approval.refused"]
    assert refused["by"] == "carol" and refused["interface"] == "api"
