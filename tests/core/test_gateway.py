"""The model gateway against the real embedded llama.cpp server and a local OpenAI-shaped fake.

The fake is a stdlib HTTP server speaking the documented /v1/chat/completions shape; the real
litellm and OpenAI client code run against it.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fakes.openai_server import FakeOpenAI
from pydantic import BaseModel, Field

from sovra.config import Settings
from sovra.errors import ModelOutputError, ModelUnavailableError
from sovra.gateway import ModelGateway, _get_litellm
from sovra.local_llm import LocalModelServer, default_model_path
from sovra.routes import Route, RoutesConfig

os.environ.setdefault("HF_HUB_OFFLINE", "1")


class SearchPlan(BaseModel):
    # A bound on the string is part of a good schema: the grammar then closes the string in
    # time, where a 135M model left to itself can ramble until max_tokens cuts the JSON.
    search_query: str = Field(max_length=80)
    use_ledger: bool


@pytest.fixture
def fake_openai() -> Iterator[type[FakeOpenAI]]:
    made: list[FakeOpenAI] = []

    class Tracked(FakeOpenAI):
        def __init__(self, replies: list[tuple[int, str]]) -> None:
            super().__init__(replies)
            made.append(self)

    yield Tracked
    for f in made:
        f.close()


def remote_settings(tmp_path: Path, base_url: str, **kw: Any) -> Settings:
    return Settings(data_dir=tmp_path, llm_base_url=base_url, llm_model="bank-lora", **kw)


# --------------------------------------------------------------------------- real local model


@pytest.fixture(scope="session")
def local_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModelGateway]:
    # One thread: on a shared 2-core CI box llama.cpp's second thread costs more than it gives.
    settings = Settings(data_dir=tmp_path_factory.mktemp("sovra"), llm_base_url=None, local_model_threads=1)
    gw = ModelGateway(settings)
    yield gw
    gw.close()


def test_local_complete_text(local_gateway: ModelGateway) -> None:
    text, call = local_gateway.complete_text(
        [{"role": "user", "content": "Name one colour. Answer with one word."}], max_tokens=16
    )
    assert text.strip()
    assert call.attempts == 1
    assert call.prompt_tokens and call.prompt_tokens > 5
    assert call.completion_tokens and 0 < call.completion_tokens <= 16
    assert call.base_url.startswith("http://127.0.0.1:")
    assert call.model == "local" and call.latency_ms > 0 and call.output == text


def test_local_complete_json_is_schema_valid_three_times(local_gateway: ModelGateway) -> None:
    questions = [
        "What was the total of invoice 4411 in the ledger?",
        "Find our policy on remote work.",
        "How much did we pay Acme Corp in March?",
    ]
    for q in questions:
        plan, call = local_gateway.complete_json(
            [
                {"role": "system", "content": "You plan a search for a bank assistant."},
                {"role": "user", "content": q},
            ],
            SearchPlan,
            route="plan",
            max_tokens=96,
        )
        assert isinstance(plan, SearchPlan)
        # The grammar, not a lucky model, is what makes this hold on the first attempt.
        assert call.attempts == 1, call.output
        assert json.loads(call.output) == plan.model_dump()
        assert call.route == "plan" and call.params["response_format"] == "json_object"
        assert call.prompt_tokens and call.completion_tokens


def test_local_stream_text(local_gateway: ModelGateway) -> None:
    stream = local_gateway.stream_text([{"role": "user", "content": "Count from one to five."}], max_tokens=24)
    pieces = list(stream)
    assert len(pieces) > 1 and "".join(pieces).strip()
    assert stream.call is not None and stream.call.output == "".join(pieces)
    assert stream.call.completion_tokens and stream.call.finish_reason in ("stop", "length")


def test_local_tool_call_with_function_calling_chat_format(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """llama-cpp-python's ``chatml-function-calling`` format (SmolLM2 speaks ChatML) produces
    OpenAI-shaped tool calls; with a named tool_choice the arguments are grammar-constrained."""
    server = LocalModelServer(
        default_model_path(), log_dir=tmp_path, threads=1, ctx=1024, chat_format="chatml-function-calling"
    )
    try:
        url = server.start()
        monkeypatch.setenv("SOVRA_TEST_LOCAL_KEY", server.api_key)
        route = Route(model="local", base_url=url, api_key_env="SOVRA_TEST_LOCAL_KEY", max_tokens=48)
        gw = ModelGateway(Settings(data_dir=tmp_path), RoutesConfig(routes={"chat": route}))
        tool = {
            "type": "function",
            "function": {
                "name": "lookup_invoice",
                "description": "Look up an invoice by its number.",
                "parameters": {
                    "type": "object",
                    "properties": {"invoice_number": {"type": "integer"}},
                    "required": ["invoice_number"],
                },
            },
        }
        calls, call = gw.complete_tools(
            [{"role": "user", "content": "What was the total of invoice 4411?"}],
            [tool],
            tool_choice={"type": "function", "function": {"name": "lookup_invoice"}},
        )
        assert [c.name for c in calls] == ["lookup_invoice"]
        assert isinstance(calls[0].arguments["invoice_number"], int)
        assert call.completion_tokens and call.params["tools"] == ["lookup_invoice"]
        gw.close()
    finally:
        server.close()


def test_local_server_bad_model_file_fails_with_log_tail(tmp_path: Path) -> None:
    bogus = tmp_path / "broken.gguf"
    bogus.write_bytes(b"this is not a gguf file")
    server = LocalModelServer(bogus, log_dir=tmp_path / "logs", threads=1, ctx=256)
    try:
        with pytest.raises(ModelUnavailableError) as info:
            server.start()
    finally:
        server.close()
    assert "exited at start" in info.value.message
    assert "log tail" in info.value.message and "broken.gguf" in info.value.message
    assert not server.running


def test_local_server_close_kills_process(tmp_path: Path) -> None:
    server = LocalModelServer(default_model_path(), log_dir=tmp_path, threads=1, ctx=512)
    server.start()
    pid, url = server.pid, server.base_url
    assert pid is not None and server.running
    server.close()
    assert not server.running
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    port = int(url.split(":")[2].split("/")[0])
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0


def test_local_server_dies_with_its_parent(tmp_path: Path) -> None:
    """Even when the parent is SIGKILLed (no atexit, no finalizers) the server goes away."""
    script = (
        "import sys; from pathlib import Path\n"
        "from sovra.local_llm import LocalModelServer, default_model_path\n"
        f"s = LocalModelServer(default_model_path(), log_dir=Path({str(tmp_path)!r}), "
        "threads=1, ctx=256)\n"
        "s.start(); print(s.pid, flush=True); sys.stdin.read()\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        pidfd = os.pidfd_open(child)
    finally:
        parent.kill()
        parent.wait()
    try:
        # Wait for the orphan to exit without sleeping: a pidfd becomes readable at exit.
        readable, _, _ = select.select([pidfd], [], [], 15)
        if not readable:
            os.killpg(child, signal.SIGKILL)  # do not leave it behind when the test fails
    finally:
        os.close(pidfd)
    assert readable, "local model server outlived its killed parent"


# --------------------------------------------------------------------------- errors and retries


def test_closed_port_raises_unavailable_quickly(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # Nothing listens on `port` now.
    # A refused connection must fail at once, not after the (long) timeout or any retries.
    gw = ModelGateway(remote_settings(tmp_path, f"http://127.0.0.1:{port}/v1", llm_timeout_s=60))
    _get_litellm()
    t0 = time.perf_counter()
    with pytest.raises(ModelUnavailableError) as info:
        gw.complete_text([{"role": "user", "content": "hi"}])
    assert time.perf_counter() - t0 < 30
    assert f"127.0.0.1:{port}" in info.value.message and "unreachable" in info.value.message
    assert "HTTP" not in info.value.message  # litellm's "500" for a refused connection is not shown
    assert info.value.hint


def test_silent_server_times_out(tmp_path: Path, fake_openai: type[FakeOpenAI]) -> None:
    fake = fake_openai([(0, "")])
    gw = ModelGateway(remote_settings(tmp_path, fake.base_url, llm_timeout_s=0.5))
    _get_litellm()  # importing litellm takes seconds on a busy box; it is not what is measured
    t0 = time.perf_counter()
    with pytest.raises(ModelUnavailableError) as info:
        gw.complete_text([{"role": "user", "content": "hi"}])
    assert time.perf_counter() - t0 < 30  # the fake never answers: only the timeout ends this
    assert "no answer within 0.5 s" in info.value.message
    assert len(fake.requests) == 1


def test_server_error_maps_to_unavailable(
    tmp_path: Path, fake_openai: type[FakeOpenAI], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-must-not-leak")
    fake = fake_openai([(503, "overloaded")] * 3)
    delays: list[float] = []
    gw = ModelGateway(remote_settings(tmp_path, fake.base_url), sleep=delays.append)
    with pytest.raises(ModelUnavailableError) as info:
        gw.complete_text([{"role": "user", "content": "hi"}])
    assert "503" in info.value.message
    # Our own bounded retries with backoff (default 2), and no hidden client retries beyond them.
    assert len(fake.requests) == 3 and delays == [0.5, 1.0]
    assert "sk-must-not-leak" not in fake.headers[0]["authorization"]


def test_invalid_json_twice_raises_output_error(tmp_path: Path, fake_openai: type[FakeOpenAI]) -> None:
    fake = fake_openai([(200, "not json at all"), (200, '{"search_query": 3}')])
    gw = ModelGateway(remote_settings(tmp_path, fake.base_url))
    with pytest.raises(ModelOutputError) as info:
        gw.complete_json([{"role": "user", "content": "plan"}], SearchPlan)
    assert "SearchPlan" in info.value.message
    assert len(fake.requests) == 2
    retry_msgs = fake.requests[1]["messages"]
    assert retry_msgs[-2] == {"role": "assistant", "content": "not json at all"}
    assert "not valid for the schema" in retry_msgs[-1]["content"]


def test_valid_json_on_second_attempt(tmp_path: Path, fake_openai: type[FakeOpenAI]) -> None:
    good = '{"search_query": "invoice 4411 total", "use_ledger": true}'
    fake = fake_openai([(200, '{"search_query": "x"}'), (200, good)])
    gw = ModelGateway(remote_settings(tmp_path, fake.base_url, llm_api_key="s3cret"))
    plan, call = gw.complete_json([{"role": "user", "content": "plan"}], SearchPlan, route="plan")
    assert plan == SearchPlan(search_query="invoice 4411 total", use_ledger=True)
    assert call.attempts == 2 and call.output == good
    assert call.prompt_tokens == 22 and call.completion_tokens == 14  # summed over attempts
    assert call.model == "bank-lora" and call.base_url == fake.base_url

    # What went over the wire: litellm passed the model id and the vLLM/OpenAI
    # json_schema response_format through unchanged, with our key (not $OPENAI_API_KEY).
    body = fake.requests[0]
    assert body["model"] == "bank-lora"
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {
            "name": "SearchPlan",
            "schema": SearchPlan.model_json_schema(),
            "strict": True,
        },
    }
    assert fake.headers[0]["authorization"] == "Bearer s3cret"
