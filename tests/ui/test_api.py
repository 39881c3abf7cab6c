"""The HTTP API as a client sees it: a real uvicorn server on a local port, real data, httpx."""

from __future__ import annotations

import json
import shutil
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from conftest import copy_demo_data

from sovra.config import Settings
from sovra.ui.api import create_app

TOKENS = {
    "alice-token-0123456789": "alice",
    "bob-token-0123456789ab": "bob",
    "erin-token-0123456789a": "erin",
    "ann-admin-token-0123456": "ann",
}
ALICE, BOB, ERIN, ANN = ({"Authorization": f"Bearer {t}"} for t in TOKENS)


@pytest.fixture(scope="module")
def data_dir(demo_settings, tmp_path_factory) -> Path:
    data = copy_demo_data(demo_settings, tmp_path_factory.mktemp("api") / "data")
    users = json.loads((data / "users.json").read_text())
    users["ann"] = {"name": "Ann Admin", "groups": ["employees", "admins"]}  # may trigger ingestion
    (data / "users.json").write_text(json.dumps(users))
    return data


def _serve(settings: Settings, tokens: dict[str, str] | Path) -> Iterator[httpx.Client]:
    # Bound and listening before the server thread starts: the first request waits in the backlog
    # until uvicorn accepts it, so no polling or sleeping for startup.
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(settings, tokens=tokens), log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=300) as client:
            yield client
    finally:
        server.should_exit = True
        thread.join(timeout=60)
        sock.close()
    assert not thread.is_alive(), "server did not shut down"


@pytest.fixture(scope="module")
def api(data_dir: Path, tmp_path_factory) -> Iterator[httpx.Client]:
    tokens_file = tmp_path_factory.mktemp("tokens") / "tokens.json"
    tokens_file.write_text(json.dumps(TOKENS))
    yield from _serve(Settings(data_dir=data_dir), tokens_file)


@pytest.fixture(scope="module")
def alice_answer(api: httpx.Client) -> dict:
    r = api.post("/v1/ask", json={"question": "What is the hotel limit per night in London?"}, headers=ALICE)
    assert r.status_code == 200, r.text
    return r.json()


def assert_error(r: httpx.Response, status: int, text: str) -> dict:
    assert r.status_code == status, (r.status_code, r.text)
    body = r.json()
    assert text in body["error"], body
    assert "hint" in body and "Traceback" not in r.text
    return body


def test_health_needs_no_token(api):
    r = api.get("/health")
    assert r.status_code == 200 and r.json() == {"status": "ok"}


def test_ready_when_the_index_exists(api):
    r = api.get("/ready")
    assert r.status_code == 200, r.text
    assert r.json() == {"status": "ready"}


def test_ready_is_503_without_an_index(data_dir, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    shutil.copy(data_dir / "users.json", empty / "users.json")
    # The embedding model was converted once into the demo data dir; reuse it instead of rebuilding.
    shutil.copytree(data_dir / "models", empty / "models")
    for client in _serve(Settings(data_dir=empty), dict(TOKENS)):
        assert_error(client.get("/ready"), 503, "no index")
        assert_error(client.post("/v1/ask", json={"question": "hotel limit?"}, headers=ALICE), 503, "no index")


def test_alice_asks_with_her_token(alice_answer):
    assert alice_answer["user"] == "alice"
    assert alice_answer["run_id"] and alice_answer["citations"]
    assert "250" in alice_answer["answer"]


def test_the_body_cannot_choose_the_user(api):
    r = api.post("/v1/ask", json={"question": "What is the hotel limit?", "user": "bob"}, headers=ALICE)
    body = assert_error(r, 422, "invalid request")
    assert any(p["loc"][-1] == "user" for p in body["detail"])


@pytest.mark.parametrize(
    ("headers", "text"),
    [
        ({}, "missing bearer token"),
        ({"Authorization": "Bearer not-a-real-token-at-all"}, "invalid token"),
        ({"Authorization": "Bearer"}, "missing bearer token"),
        ({"Authorization": f"Basic {next(iter(TOKENS))}"}, "missing bearer token"),
    ],
)
def test_without_a_valid_token_is_401(api, headers, text):
    for r in (
        api.post("/v1/ask", json={"question": "What is the hotel limit?"}, headers=headers),
        api.get(f"/v1/runs/{'0' * 32}", headers=headers),
    ):
        assert_error(r, 401, text)
        assert r.headers["www-authenticate"] == "Bearer"


def test_bob_may_not_read_alices_run(api, alice_answer):
    assert_error(api.get(f"/v1/runs/{alice_answer['run_id']}", headers=BOB), 403, "may not read run")


def test_owner_and_auditor_read_the_run(api, alice_answer):
    for headers in (ALICE, ERIN):
        r = api.get(f"/v1/runs/{alice_answer['run_id']}", headers=headers)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["user"] == "alice"
        kinds = [rec["kind"] for rec in body["records"]]
        assert kinds[0] == "run.start" and kinds[-1] == "run.end"
        start = body["records"][0]["data"]
        assert start["interface"] == "api" and "hotel" in start["question"]


def test_unknown_run_is_404(api):
    assert_error(api.get(f"/v1/runs/{'0' * 32}", headers=ERIN), 404, "no run")


def test_empty_question_is_400(api):
    body = assert_error(api.post("/v1/ask", json={"question": "   "}, headers=ALICE), 400, "the question is empty")
    assert body["hint"]


def test_unknown_agent_is_400(api):
    assert_error(api.post("/v1/ask", json={"question": "hi", "agent": "nope"}, headers=ALICE), 400, "unknown agent")


def test_oversized_body_is_413(api):
    big = {"question": "x" * (70 * 1024)}
    assert_error(api.post("/v1/ask", json=big, headers=ALICE), 413, "over 64 KB")

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit must hold for streamed bodies too
        yield b'{"question": "'
        for _ in range(70):
            yield b"y" * 1024
        yield b'"}'

    r = api.post("/v1/ask", content=chunks(), headers=ALICE | {"Content-Type": "application/json"})
    assert_error(r, 413, "over 64 KB")


def test_token_configuration_mistakes_are_config_errors(tmp_path, monkeypatch):
    from sovra.errors import ConfigError
    from sovra.ui.api import TOKENS_ENV

    settings = Settings(data_dir=tmp_path)
    with pytest.raises(ConfigError, match="shorter than"):
        create_app(settings, tokens={"short": "alice"})
    # The file comes from SOVRA_API_TOKENS_FILE through the settings.
    monkeypatch.setenv(TOKENS_ENV, str(tmp_path / "missing.json"))
    with pytest.raises(ConfigError, match="does not exist"):
        create_app(Settings(data_dir=tmp_path))
    (tmp_path / "bad.json").write_text('["not", "a", "mapping"]')
    monkeypatch.setenv(TOKENS_ENV, str(tmp_path / "bad.json"))
    with pytest.raises(ConfigError, match="must map"):
        create_app(Settings(data_dir=tmp_path))


def test_streaming_the_assistant(api):
    r = api.post("/v1/ask/stream", json={"question": "What is the hotel limit per night in London?"}, headers=ALICE)
    assert r.status_code == 200, r.text
    events = [b for b in r.text.split("\n\n") if b.startswith("event: ")]
    kinds = [b.split("\n", 1)[0].removeprefix("event: ") for b in events]
    assert kinds.count("step") >= 3 and kinds[-1] == "answer", kinds
    answer = json.loads(events[-1].split("data: ", 1)[1])
    assert "250" in answer["answer"] and answer["citations"] and answer["user"] == "alice"


def test_openai_client_asks_the_assistant(api):
    import openai

    with openai.OpenAI(
        base_url=f"{str(api.base_url).rstrip('/')}/v1", api_key=next(iter(TOKENS)), max_retries=0, timeout=300
    ) as oai:
        resp = oai.chat.completions.create(
            model="sovra-assistant",
            messages=[{"role": "user", "content": "What is the hotel limit per night in London?"}],
        )
    content = resp.choices[0].message.content
    assert "250" in content and "\n\nSources:\n[1] " in content
    assert resp.model_extra["citations"] and resp.model_extra["sovra"]["run_id"]


def test_an_admin_resyncs_a_source_in_the_background(api):
    r = api.post("/v1/sources/contracts/sync", headers=ANN)
    assert r.status_code == 202, r.text
    job = r.json()
    assert job["status"] == "running" and job["source"] == "contracts"
    # The job runs behind the same one-at-a-time gate as runs: /ready (which takes it) waits for it.
    assert api.get("/ready").status_code == 200
    done = api.get(f"/v1/jobs/{job['job_id']}", headers=ANN).json()
    assert done["status"] == "done" and done["by"] == "ann", done
    assert done["summary"].startswith("0 added, 0 updated"), done  # nothing changed since the demo ingest
    assert api.get(f"/v1/jobs/{job['job_id']}", headers=ERIN).status_code == 200  # auditors read jobs
    assert_error(api.get(f"/v1/jobs/{job['job_id']}", headers=ALICE), 403, "may not trigger")


def test_only_admins_trigger_ingestion(api):
    assert_error(api.post("/v1/sources/contracts/sync", headers=BOB), 403, "may not trigger ingestion")
    assert_error(api.post("/v1/sources/contracts/sync", headers=ERIN), 403, "may not trigger ingestion")
    assert_error(api.post("/v1/sources/nope/sync", headers=ANN), 404, "unknown source")
    assert_error(api.get(f"/v1/jobs/{'0' * 32}", headers=ANN), 404, "no job")
