"""Issue 23: taking access away counts at the next request (no restart), expensive audit verification
is for auditors only and one at a time, odd input never gives a 500. A real uvicorn server on
127.0.0.1, real SQLite audit log, real files rewritten the way an administrator would."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fakes.chat_agent import serve_asgi

from sovra.config import Settings
from sovra.evals.bench_api import EchoAgent
from sovra.identity import Directory
from sovra.ui.api import create_app

USERS = {
    "alice": {"name": "Alice Martin", "groups": ["employees"]},
    "bob": {"name": "Bob Schneider", "groups": ["employees", "finance"]},
    "erin": {"name": "Erin Auditor", "groups": ["employees", "auditor"]},
}
TOKENS = {
    "alice-token-0123456789abcdef": "alice",
    "bob-token-0123456789abcdef": "bob",
    "erin-token-0123456789abc": "erin",
}


def replace_json(path: Path, data: object) -> None:
    """Write the way an administrator's tooling should: a new file moved into place."""
    tmp = path.with_suffix(".new")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Iterator[tuple[httpx.Client, Path, Path, object]]:
    data = tmp_path_factory.mktemp("revocation")
    users, tokens = data / "users.json", data / "tokens.json"
    replace_json(users, USERS)
    replace_json(tokens, TOKENS)
    app = create_app(Settings(data_dir=data, api_tokens_file=tokens), agents={"echo": EchoAgent})
    with serve_asgi(app) as url, httpx.Client(base_url=url, timeout=60) as client:
        yield client, users, tokens, app


def h(user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {next(t for t, u in TOKENS.items() if u == user)}"}


def ask(api: httpx.Client, user: str, question: str = "hotel limit?") -> httpx.Response:
    return api.post("/v1/ask", json={"question": question, "agent": "echo"}, headers=h(user))


def test_a_removed_token_group_or_user_stops_working_without_a_restart(world):
    api, users, tokens, _ = world
    first = ask(api, "bob")
    assert first.status_code == 200, first.text
    assert "finance" in api.get(f"/v1/runs/{first.json()['run_id']}/audit", headers=h("bob")).json()["groups"]

    replace_json(users, {**USERS, "bob": {"name": "Bob Schneider", "groups": ["employees"]}})
    second = ask(api, "bob")
    assert second.status_code == 200, second.text
    assert api.get(f"/v1/runs/{second.json()['run_id']}/audit", headers=h("bob")).json()["groups"] == ["employees"]

    replace_json(tokens, {t: u for t, u in TOKENS.items() if u != "bob"})
    assert ask(api, "bob").status_code == 401

    replace_json(users, {k: v for k, v in USERS.items() if k != "alice"})
    assert ask(api, "alice").status_code == 401  # her token is still in the file; she is not
    assert ask(api, "erin").status_code == 200

    replace_json(tokens, TOKENS)
    replace_json(users, USERS)
    assert ask(api, "bob").status_code == 200 and ask(api, "alice").status_code == 200


def test_a_broken_tokens_file_refuses_static_tokens_rather_than_keeping_old_ones(world):
    api, _, tokens, _ = world
    tokens.write_text("{ half written")
    try:
        assert ask(api, "erin").status_code == 401
    finally:
        replace_json(tokens, TOKENS)
    assert ask(api, "erin").status_code == 200


def test_directory_from_file_rereads_on_change(tmp_path):
    path = tmp_path / "users.json"
    replace_json(path, USERS)
    directory = Directory.from_file(path)
    assert directory.get("bob").groups == ("employees", "finance")
    replace_json(path, {"bob": {"name": "Bob", "groups": []}})
    assert directory.get("bob").groups == ()
    assert [u.id for u in directory] == ["bob"]


def test_full_chain_verification_is_for_auditors_only_and_one_at_a_time(world):
    api, _, _, app = world
    run_id = ask(api, "alice").json()["run_id"]
    own = api.get(f"/v1/runs/{run_id}/audit?verify=true", headers=h("alice"))
    assert own.status_code == 403 and "auditor" in own.json()["error"], own.text
    assert api.get(f"/v1/runs/{run_id}/audit", headers=h("alice")).status_code == 200  # the view stays hers
    ok = api.get(f"/v1/runs/{run_id}/audit?verify=true", headers=h("erin"))
    assert ok.status_code == 200 and ok.json()["chain"]["ok"] is True
    gate = app.state.audit_verify_gate
    assert gate.enter() is None  # another verification is running
    try:
        busy = api.get(f"/v1/runs/{run_id}/audit?verify=true", headers=h("erin"))
        assert busy.status_code == 429 and int(busy.headers["Retry-After"]) > 0, busy.text
    finally:
        gate.leave()
    assert api.get(f"/v1/runs/{run_id}/audit?verify=true", headers=h("erin")).status_code == 200


def test_a_question_with_a_lone_surrogate_is_a_client_error_or_answered_never_a_500(world):
    api = world[0]
    body = b'{"question": "Vertrag M\\udcfcller \\ud800 notice?", "agent": "echo"}'
    r = api.post("/v1/ask", content=body, headers={**h("erin"), "Content-Type": "application/json"})
    assert r.status_code < 500, r.text
    assert r.status_code in (200, 400, 422), r.text
    chat = b'{"model": "echo", "messages": [{"role": "user", "content": "M\\udcfcller?"}]}'
    r = api.post("/v1/chat/completions", content=chat, headers={**h("erin"), "Content-Type": "application/json"})
    assert r.status_code in (200, 400, 422), r.text


def test_bot_chat_identities_are_reread_on_change(tmp_path):
    from sovra.ui.bot_common import ChatIdentities

    idents, users = tmp_path / "chat-identities.json", tmp_path / "users.json"
    replace_json(idents, {"slack": {"U1": "alice", "U2": "bob"}})
    replace_json(users, {**USERS, "erin": {**USERS["erin"], "email": "erin@bank.example"}})
    chat = ChatIdentities.from_file(idents, users)
    assert chat.user_id("slack", "U2") == "bob" and chat.user_id("teams", "x", "Erin@bank.example") == "erin"
    replace_json(idents, {"slack": {"U1": "alice"}})
    replace_json(users, USERS)
    assert chat.user_id("slack", "U2") is None and not chat.knows_account("slack", "U2")
    assert chat.user_id("teams", "x", "erin@bank.example") is None
    assert chat.user_id("slack", "U1") == "alice"
