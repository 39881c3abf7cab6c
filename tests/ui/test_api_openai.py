"""The OpenAI-compatible face, driven by the real ``openai`` client against uvicorn on 127.0.0.1."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import openai
import pytest
from fakes.chat_agent import CitedAgent, serve_asgi

from sovra.config import Settings
from sovra.evals.bench_api import EchoAgent
from sovra.ui.api import create_app

USERS = {"alice": {"name": "Alice", "groups": ["employees"]}, "bob": {"name": "Bob", "groups": ["finance"]}}
TOKENS = {"alice-token-0123456789abcdef": "alice", "bob-token-0123456789abcdef00": "bob"}
ALICE, BOB = TOKENS


@pytest.fixture(scope="module")
def base_url(tmp_path_factory) -> Iterator[str]:
    data = tmp_path_factory.mktemp("api-openai")
    (data / "users.json").write_text(json.dumps(USERS))
    app = create_app(Settings(data_dir=data), tokens=TOKENS, agents={"echo": EchoAgent, "chat-test": CitedAgent})
    with serve_asgi(app) as url:
        yield url


@pytest.fixture
def client(base_url) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{base_url}/v1", api_key=ALICE, max_retries=0) as c:
        yield c


def test_models_lists_the_agents(client):
    ids = [m.id for m in client.models.list()]
    assert ids == ["sovra-echo", "sovra-chat-test"]


def test_a_completion_with_sources(client):
    resp = client.chat.completions.create(
        model="sovra-chat-test", messages=[{"role": "user", "content": "What is the hotel limit in London?"}]
    )
    content = resp.choices[0].message.content
    assert resp.choices[0].finish_reason == "stop" and resp.object == "chat.completion"
    assert content.startswith("Hotel nights in London are capped at 250 EUR [1]")
    assert "\n\nSources:\n[1] Travel & Expenses Policy, p. 3 <https://intranet" in content
    assert "[2] General ledger, rows JE-1001, JE-1002" in content
    extra = resp.model_extra
    assert [c["n"] for c in extra["citations"]] == [1, 2] and extra["citations"][0]["page"] == 3
    assert extra["sovra"]["status"] == "answered" and resp.id == f"chatcmpl-{extra['sovra']['run_id']}"
    assert "(asked by alice)" in content  # the token's user, not the body's "user" field


def test_the_body_user_field_is_ignored(client):
    resp = client.chat.completions.create(
        model="sovra-chat-test", messages=[{"role": "user", "content": "hi"}], user="bob", temperature=0.2
    )
    assert "(asked by alice)" in resp.choices[0].message.content


def test_streaming_chunks_then_done(client, base_url):
    stream = client.chat.completions.create(
        model="sovra-echo", messages=[{"role": "user", "content": "hotel limit?"}], stream=True
    )
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert text.startswith("You asked: hotel limit? (turn 1,") and "\n\nSources:\n[1] Echo policy, p. 1" in text
    assert len([c for c in chunks if c.choices[0].delta.content]) > 5  # token by token, not one blob
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert chunks[-1].model_extra["citations"][0]["title"] == "Echo policy"
    assert {c.id for c in chunks} == {chunks[0].id}
    # On the wire the stream ends with the OpenAI sentinel.
    raw = httpx.post(
        f"{base_url}/v1/chat/completions",
        json={"model": "sovra-echo", "messages": [{"role": "user", "content": "x"}], "stream": True},
        headers={"Authorization": f"Bearer {ALICE}"},
        timeout=60,
    )
    assert raw.text.rstrip().endswith("data: [DONE]")


def test_earlier_turns_continue_the_thread(client):
    first = client.chat.completions.create(model="sovra-echo", messages=[{"role": "user", "content": "one"}])
    a1 = first.choices[0].message.content
    assert "(turn 1," in a1
    second = client.chat.completions.create(
        model="sovra-echo",
        messages=[
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "one"},
            {"role": "assistant", "content": a1},
            {"role": "user", "content": [{"type": "text", "text": "two"}]},
        ],
    )
    assert "You asked: two (turn 2," in second.choices[0].message.content
    assert second.model_extra["sovra"]["thread_id"] == first.model_extra["sovra"]["thread_id"]
    # An explicit thread_id (extra body field) names the thread directly.
    third = client.chat.completions.create(
        model="sovra-echo",
        messages=[{"role": "user", "content": "three"}],
        extra_body={"thread_id": first.model_extra["sovra"]["thread_id"]},
    )
    assert "(turn 3," in third.choices[0].message.content


def test_another_users_thread_is_refused(client, base_url):
    first = client.chat.completions.create(model="sovra-echo", messages=[{"role": "user", "content": "secret"}])
    with openai.OpenAI(base_url=f"{base_url}/v1", api_key=BOB, max_retries=0) as bob:
        with pytest.raises(openai.PermissionDeniedError):
            bob.chat.completions.create(
                model="sovra-echo",
                messages=[{"role": "user", "content": "what did alice ask?"}],
                extra_body={"thread_id": first.model_extra["sovra"]["thread_id"]},
            )
        # The same history without a thread id does not find alice's thread: bob gets his own.
        resp = bob.chat.completions.create(
            model="sovra-echo",
            messages=[
                {"role": "user", "content": "secret"},
                {"role": "assistant", "content": first.choices[0].message.content},
                {"role": "user", "content": "and then?"},
            ],
        )
        assert "(turn 1," in resp.choices[0].message.content


def test_an_approval_request_is_the_answer(client):
    resp = client.chat.completions.create(model="sovra-chat-test", messages=[{"role": "user", "content": "pay INV-7"}])
    assert resp.choices[0].message.content.startswith("Waiting for approval: Pay invoice INV-7")
    assert resp.model_extra["sovra"]["status"] == "awaiting_approval"
    assert resp.model_extra["sovra"]["approval"]["tool"] == "pay_invoice"


def test_errors_reach_the_client_as_openai_errors(client, base_url):
    with pytest.raises(openai.BadRequestError, match="unknown agent"):
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(openai.BadRequestError, match="last message must be the user"):
        client.chat.completions.create(model="sovra-echo", messages=[{"role": "assistant", "content": "hi"}])
    with pytest.raises(openai.UnprocessableEntityError):
        client.chat.completions.create(model="sovra-echo", messages=[])
    bad = openai.OpenAI(base_url=f"{base_url}/v1", api_key="sk-forged-0123456789abcdef", max_retries=0)
    with bad, pytest.raises(openai.AuthenticationError, match="invalid token"):
        bad.models.list()
