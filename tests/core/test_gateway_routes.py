"""The gateway's routes, resilience and data protection against a faithful vLLM fake.

The real litellm and OpenAI client code run against ``tests/fakes/vllm_server.py`` (vLLM's
documented OpenAI-compatible API: LoRA adapters in /v1/models, json_schema output, tool calls,
SSE streams, vLLM's error shape, 429 + Retry-After).
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fakes.vllm_server import FakeVLLM, Reply
from pydantic import BaseModel, Field

from sovra.config import Settings
from sovra.errors import ConfigError, ModelOutputError, ModelUnavailableError
from sovra.gateway import ModelGateway, _get_litellm, _guarded_http_client
from sovra.pii import Masker
from sovra.resilience import CircuitBreaker
from sovra.routes import HostNotAllowedError, Route, RoutesConfig
from sovra.telemetry import configure_tracing, memory_exporter

MSG = [{"role": "user", "content": "What is the notice period in contract 17?"}]


class Terms(BaseModel):
    notice_days: int = Field(ge=1)
    party: str
    auto_renew: bool


LOOKUP_TOOL = {
    "type": "function",
    "function": {
        "name": "lookup_account",
        "description": "Look up an account by IBAN.",
        "parameters": {"type": "object", "properties": {"iban": {"type": "string"}}, "required": ["iban"]},
    },
}


@pytest.fixture
def vllm() -> Iterator[list[FakeVLLM]]:
    made: list[FakeVLLM] = []
    yield made
    for f in made:
        f.close()


def fake(made: list[FakeVLLM], *script: Reply, **kw: Any) -> FakeVLLM:
    f = FakeVLLM(script=list(script), **kw)
    made.append(f)
    return f


def gateway(tmp_path: Path, routes: dict[str, Route], **kw: Any) -> tuple[ModelGateway, list[float]]:
    delays: list[float] = []
    gw = ModelGateway(Settings(data_dir=tmp_path), RoutesConfig(routes=routes, **kw), sleep=delays.append)
    return gw, delays


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


# --------------------------------------------------------------------------- routes file


def test_routes_file_loads_and_validates(tmp_path: Path) -> None:
    path = tmp_path / "routes.toml"
    path.write_text(
        """
allowed_hosts = ["vllm.bank.internal"]
[routes.chat]
model = "llama-3.1-8b"
base_url = "http://vllm.bank.internal:8000/v1"
fallbacks = ["local"]
[routes.extraction]
model = "contracts-lora"
base_url = "http://vllm.bank.internal:8000/v1"
max_tokens = 512
[routes.local]
model = "local"
"""
    )
    cfg = RoutesConfig.load(path)
    assert cfg.route("extraction") == ("extraction", cfg.routes["extraction"])
    assert cfg.route("summarise")[0] == "chat"  # no own route: the default
    assert cfg.allowed() >= {"vllm.bank.internal", "127.0.0.1"}
    path.write_text('[routes.chat]\nmodel = "m"\nfallbacks = ["nope"]\n')
    with pytest.raises(ConfigError, match="unknown route 'nope'"):
        RoutesConfig.load(path)
    path.write_text('[routes.chat]\nmodel = "m"\ntemprature = 0.3\n')
    with pytest.raises(ConfigError, match="temprature"):
        RoutesConfig.load(path)


def test_default_routes_come_from_settings(tmp_path: Path) -> None:
    s = Settings(data_dir=tmp_path, llm_base_url="http://10.0.0.5:8000/v1", llm_model="m", llm_max_tokens=99)
    gw = ModelGateway(s)
    assert gw.model_name == "m" and not gw.is_local
    assert gw.routes.routes["chat"].max_tokens == 99
    assert "10.0.0.5" in gw.routes.allowed()


# --------------------------------------------------------------------------- vLLM features


def test_lora_routes_json_schema_and_discovery(tmp_path: Path, vllm: list[FakeVLLM]) -> None:
    f = fake(vllm)
    gw, _ = gateway(
        tmp_path,
        {
            "chat": Route(model=f.base_model, base_url=f.base_url, temperature=0.7),
            "extraction": Route(model="contracts-lora", base_url=f.base_url, max_tokens=200),
        },
    )
    cards = gw.check_routes()
    assert cards["extraction"]["parent"] == f.base_model and cards["chat"]["parent"] is None
    assert gw.health() == {f.base_url: True}

    terms, call = gw.complete_json(MSG, Terms, route="extraction")
    assert isinstance(terms, Terms)
    body = f.chat_bodies()[-1]
    assert body["model"] == "contracts-lora" and body["max_tokens"] == 200 and body["temperature"] == 0.0
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["schema"] == Terms.model_json_schema()
    assert call.model == "contracts-lora" and call.served_route == "extraction" and call.route == "extraction"
    assert call.prompt_tokens and call.completion_tokens and call.finish_reason == "stop"

    gw.complete_text(MSG)  # the chat route's own temperature
    assert f.chat_bodies()[-1]["temperature"] == 0.7 and f.chat_bodies()[-1]["model"] == f.base_model


def test_guided_json_goes_in_the_extra_body(tmp_path: Path, vllm: list[FakeVLLM]) -> None:
    f = fake(vllm)
    gw, _ = gateway(tmp_path, {"chat": Route(model="kyc-lora", base_url=f.base_url, structured_output="guided_json")})
    gw.complete_json(MSG, Terms)
    body = f.chat_bodies()[-1]
    assert body["guided_json"] == Terms.model_json_schema() and "response_format" not in body


def test_startup_check_names_missing_adapter(tmp_path: Path, vllm: list[FakeVLLM]) -> None:
    f = fake(vllm)
    gw, _ = gateway(tmp_path, {"chat": Route(model="loans-lora", base_url=f.base_url)})
    with pytest.raises(ConfigError) as info:
        gw.check_routes()
    assert "'loans-lora'" in info.value.message and "contracts-lora" in info.value.message
    assert "--lora-modules" in (info.value.hint or "")
    # And a call to it gets vLLM's 404 NotFoundError, mapped to a clear message.
    with pytest.raises(ModelUnavailableError, match="does not know the requested model"):
        gw.complete_text(MSG)


def test_tool_calls_in_openai_shape(tmp_path: Path, vllm: list[FakeVLLM]) -> None:
    f = fake(vllm, Reply(tool_calls=[{"name": "lookup_account", "arguments": {"iban": "CH93 0076 2011 6238 5295 7"}}]))
    gw, _ = gateway(tmp_path, {"chat": Route(model="kyc-lora", base_url=f.base_url)})
    calls, call = gw.complete_tools(MSG, [LOOKUP_TOOL])
    assert [(c.name, c.arguments) for c in calls] == [("lookup_account", {"iban": "CH93 0076 2011 6238 5295 7"})]
    assert call.finish_reason == "tool_calls" and call.params["tools"] == ["lookup_account"]
    assert f.chat_bodies()[-1]["tools"] == [LOOKUP_TOOL]
    # A forced tool choice is passed through as given.
    choice = {"type": "function", "function": {"name": "lookup_account"}}
    calls, _ = gw.complete_tools(MSG, [LOOKUP_TOOL], tool_choice=choice)
    assert calls[0].name == "lookup_account" and f.chat_bodies()[-1]["tool_choice"] == choice


def test_embedding_route(tmp_path: Path, vllm: list[FakeVLLM]) -> None:
    f = fake(vllm, embedding_model="bge-m3")
    gw, _ = gateway(tmp_path, {"chat": Route(model="kyc-lora", base_url=f.base_url),
                               "embedding": Route(model="bge-m3", base_url=f.base_url, kind="embedding")})  # fmt: skip
    vectors, call = gw.embed(["alpha", "beta"])
    assert len(vectors) == 2 and len(vectors[0]) == 8 and vectors[0] != vectors[1]
    assert call.model == "bge-m3" and call.prompt_tokens == 2
    with pytest.raises(ConfigError, match="not embedding"):
        gw.embed(["x"], route="chat")


# --------------------------------------------------------------------------- streaming


def test_stream_text_and_usage(tmp_path: Path, vllm: list[FakeVLLM]) -> None:
    f = fake(vllm, Reply(content="ninety days written notice"))
    gw, _ = gateway(tmp_path, {"chat": Route(model="contracts-lora", base_url=f.base_url)})
    stream = gw.stream_text(MSG)
    pieces = list(stream)
    assert "".join(pieces) == "ninety days written notice" and len(pieces) == 4
    assert stream.call is not None and stream.call.completion_tokens == 4 and stream.call.finish_reason == "stop"
    assert f.chat_bodies()[-1]["stream"] is True


def test_stream_cut_midway_is_a_clear_error(tmp_path: Path, vllm: list[FakeVLLM]) -> None:
    f = fake(vllm, Reply(content="one two three four five", cut_after=2))
    gw, _ = gateway(tmp_path, {"chat": Route(model="contracts-lora", base_url=f.base_url)})
    got: list[str] = []
    with pytest.raises(ModelUnavailableError) as info:
        for piece in gw.stream_text(MSG):
            got.append(piece)
    assert got == ["one ", "two "]
    assert f"{f.base_url} broke off the stream after 2 pieces" in info.value.message


# --------------------------------------------------------------------------- faults


def test_server_down_falls_back_to_another_server(tmp_path: Path, vllm: list[FakeVLLM]) -> None:
    f = fake(vllm)
    dead = closed_port_url()
    gw, delays = gateway(
        tmp_path,
        {
            "chat": Route(model="m", base_url=dead, fallbacks=("backup",), max_retries=1, backoff_s=0.25),
            "backup": Route(model="kyc-lora", base_url=f.base_url),
        },
    )
    text, call = gw.complete_text(MSG, route="chat")
    assert text == "ok" and call.served_route == "backup" and call.model == "kyc-lora"
    assert call.attempts == 3 and delays == [0.25]  # 2 refused + 1 answered
    assert any("unreachable" in failure for failure in call.failures)


def test_all_routes_down_names_them(tmp_path: Path) -> None:
    gw, _ = gateway(
        tmp_path,
        {"chat": Route(model="m", base_url=closed_port_url(), fallbacks=("b",), max_retries=0),
         "b": Route(model="m", base_url=closed_port_url(), max_retries=0)},
    )  # fmt: skip
    with pytest.raises(ModelUnavailableError) as info:
        gw.complete_text(MSG)
    assert "unreachable" in info.value.message and "after trying routes chat, b" in info.value.message


def test_slow_server_times_out_without_retry(tmp_path: Path, vllm: list[FakeVLLM]) -> None:
    f = fake(vllm, Reply(status=0))
    gw, delays = gateway(tmp_path, {"chat": Route(model="kyc-lora", base_url=f.base_url, timeout_s=0.3)})
    _get_litellm()
    with pytest.raises(ModelUnavailableError, match=r"no answer within 0\.3 s"):
        gw.complete_text(MSG)
    assert len(f.chat_bodies()) == 1 and delays == []


def test_429_honours_retry_after_then_succeeds(tmp_path: Path, vllm: list[FakeVLLM]) -> None:
    f = fake(vllm, Reply(status=429, retry_after="3", message="too many"), Reply(status=500))
    gw, delays = gateway(tmp_path, {"chat": Route(model="kyc-lora", base_url=f.base_url, backoff_s=0.1)})
    text, call = gw.complete_text(MSG)
    assert text == "ok" and call.attempts == 3
    assert delays == [3.0, 0.2]  # the server's Retry-After, then our backoff (0.1 * 2)


def test_500_exhausts_bounded_retries(tmp_path: Path, vllm: list[FakeVLLM]) -> None:
    f = fake(vllm, *[Reply(status=500, message="CUDA out of memory")] * 3)
    gw, delays = gateway(tmp_path, {"chat": Route(model="kyc-lora", base_url=f.base_url, backoff_s=0.1)})
    with pytest.raises(ModelUnavailableError) as info:
        gw.complete_text(MSG)
    assert "HTTP 500" in info.value.message and "CUDA out of memory" in info.value.message
    assert len(f.chat_bodies()) == 3 and delays == [0.1, 0.2]


def test_400_is_not_retried(tmp_path: Path, vllm: list[FakeVLLM]) -> None:
    f = fake(vllm, Reply(status=400, message="maximum context length is 8192 tokens"))
    gw, delays = gateway(tmp_path, {"chat": Route(model="kyc-lora", base_url=f.base_url)})
    with pytest.raises(ModelUnavailableError, match=r"rejected the request .*maximum context length"):
        gw.complete_text(MSG)
    assert len(f.chat_bodies()) == 1 and delays == []


def test_invalid_json_body_is_reported(tmp_path: Path, vllm: list[FakeVLLM]) -> None:
    f = fake(vllm, *[Reply(raw_body=b'{"choices": [')] * 3)
    gw, _ = gateway(tmp_path, {"chat": Route(model="kyc-lora", base_url=f.base_url, max_retries=0)})
    with pytest.raises(ModelUnavailableError, match="not valid JSON"):
        gw.complete_text(MSG)


def test_invalid_tool_arguments_are_an_output_error(tmp_path: Path, vllm: list[FakeVLLM]) -> None:
    f = fake(vllm, Reply(tool_calls=[{"name": "lookup_account", "arguments": '{"iban": "CH93'}]))
    gw, _ = gateway(tmp_path, {"chat": Route(model="kyc-lora", base_url=f.base_url)})
    with pytest.raises(ModelOutputError, match="'lookup_account' with arguments that are not JSON"):
        gw.complete_tools(MSG, [LOOKUP_TOOL])


def test_circuit_breaker_opens_and_recovers(tmp_path: Path, vllm: list[FakeVLLM]) -> None:
    now = [0.0]
    f = fake(vllm, *[Reply(status=503)] * 2)
    routes = RoutesConfig(
        routes={"chat": Route(model="kyc-lora", base_url=f.base_url, max_retries=0)},
        breaker_failures=2,
        breaker_cooldown_s=10,
    )
    gw = ModelGateway(Settings(data_dir=tmp_path), routes, sleep=lambda s: None, clock=lambda: now[0])
    for _ in range(2):
        with pytest.raises(ModelUnavailableError, match="HTTP 503"):
            gw.complete_text(MSG)
    with pytest.raises(ModelUnavailableError, match="circuit open"):
        gw.complete_text(MSG)
    assert len(f.chat_bodies()) == 2  # the open circuit sent nothing
    now[0] = 10.0  # cooldown over: one trial goes through and closes the circuit
    assert gw.complete_text(MSG)[0] == "ok"
    assert gw._breakers[f.base_url.rstrip("/")].state == "closed"


def test_breaker_half_open_failure_reopens() -> None:
    now = [0.0]
    b = CircuitBreaker("http://x", failures=1, cooldown_s=5, clock=lambda: now[0])
    b.failure()
    assert b.state == "open"
    now[0] = 5.0
    b.before_call()  # the trial
    with pytest.raises(ModelUnavailableError):
        b.before_call()  # only one trial at a time
    b.failure()
    assert b.state == "open"


def test_concurrency_limit_per_endpoint(tmp_path: Path, vllm: list[FakeVLLM]) -> None:
    f = fake(vllm, Reply(status=0))
    # Two routes on one server share its one slot. The first call hangs until the test releases it;
    # the second, on a route with a 1 s timeout, waits that long for the slot and is refused. (With
    # one route, the first call's own timeout freed the slot about when the second gave up waiting:
    # on a loaded CI machine the second sometimes got it.)
    gw, _ = gateway(
        tmp_path,
        {"chat": Route(model="kyc-lora", base_url=f.base_url, max_concurrency=1, timeout_s=60),
         "quick": Route(model="kyc-lora", base_url=f.base_url, max_concurrency=1, timeout_s=1)},
    )  # fmt: skip
    _get_litellm()

    def hold() -> None:
        with contextlib.suppress(ModelUnavailableError):  # released: its connection closes unanswered
            gw.complete_text(MSG)

    first = threading.Thread(target=hold)
    first.start()
    try:
        while not f.chat_bodies():  # the first call is now in flight and holds the only slot
            threading.Event().wait(0.005)
        with pytest.raises(ModelUnavailableError, match="busy: 1 calls already in flight"):
            gw.complete_text(MSG, route="quick")
        assert len(f.chat_bodies()) == 1  # refused before any request was sent
    finally:
        f.release.set()
        first.join(timeout=120)
    assert not first.is_alive()
    assert f.max_in_flight == 1


# --------------------------------------------------------------------------- data protection


def test_non_allowed_host_is_refused_before_any_connection(tmp_path: Path, vllm: list[FakeVLLM]) -> None:
    f = fake(vllm)
    gw, _ = gateway(
        tmp_path,
        {"chat": Route(model="gpt-4o", base_url="https://api.openai.example/v1", fallbacks=("onprem",)),
         "onprem": Route(model="kyc-lora", base_url=f.base_url)},
        allowed_hosts=("vllm.bank.internal",),
    )  # fmt: skip
    # A hostname that does not resolve: a refusal by name must come before any lookup.
    with pytest.raises(HostNotAllowedError, match=r"api\.openai\.example"):
        gw.complete_text(MSG)
    assert f.requests == []  # a policy refusal does not quietly fall back either
    with pytest.raises(HostNotAllowedError):
        gw.check_routes()


def test_transport_refuses_non_allowed_host_too() -> None:
    client = _guarded_http_client(frozenset({"127.0.0.1"}), 1.0)
    with pytest.raises(HostNotAllowedError):
        client.get("http://models.example.invalid/v1/models")
    client.close()


def test_pii_masked_for_external_route_and_unmasked_in_reply(tmp_path: Path, vllm: list[FakeVLLM]) -> None:
    f = fake(vllm, Reply(content="I will write to <EMAIL_1> about <IBAN_1>."), Reply(content="ok"))
    gw, _ = gateway(
        tmp_path,
        {"chat": Route(model="kyc-lora", base_url=f.base_url, external=True),
         "internal": Route(model="kyc-lora", base_url=f.base_url)},
    )  # fmt: skip
    prompt = [{"role": "user", "content": "Email anna.muster@example.ch about IBAN CH93 0076 2011 6238 5295 7."}]
    text, call = gw.complete_text(prompt)
    sent = json.dumps(f.chat_bodies()[-1]["messages"])
    assert "anna.muster@example.ch" not in sent and "CH93" not in sent
    assert "<EMAIL_1>" in sent and "<IBAN_1>" in sent
    assert text == "I will write to anna.muster@example.ch about CH93 0076 2011 6238 5295 7."
    assert call.pii_masked == 2
    gw.complete_text(prompt, route="internal")  # not external: sent as is
    assert "anna.muster@example.ch" in json.dumps(f.chat_bodies()[-1]["messages"])


def test_masker_patterns() -> None:
    m = Masker()
    out = m.mask("card 4111 1111 1111 1111, ref 1234 5678 9012 3456, call +41 44 668 18 00, a@b.ch, a@b.ch")
    assert "4111" not in out and "1234 5678 9012 3456" in out  # Luhn-invalid reference kept
    assert "<PHONE_1>" in out and out.count("<EMAIL_1>") == 2
    assert m.unmask(out).startswith("card 4111 1111 1111 1111")


# --------------------------------------------------------------------------- accounting


def test_span_has_gen_ai_attributes(tmp_path: Path, vllm: list[FakeVLLM]) -> None:
    configure_tracing(in_memory=True)
    exporter = memory_exporter()
    assert exporter is not None
    exporter.clear()
    f = fake(vllm)
    gw, _ = gateway(tmp_path, {"extraction": Route(model="contracts-lora", base_url=f.base_url)},
                    default_route="extraction")  # fmt: skip
    _, call = gw.complete_json(MSG, Terms, route="extraction")
    spans = [s for s in exporter.get_finished_spans() if s.name == "chat contracts-lora"]
    assert len(spans) == 1
    a = spans[0].attributes or {}
    assert a["gen_ai.operation.name"] == "chat" and a["gen_ai.request.model"] == "contracts-lora"
    assert a["gen_ai.usage.input_tokens"] == call.prompt_tokens
    assert a["gen_ai.usage.output_tokens"] == call.completion_tokens
    assert a["server.address"] == "127.0.0.1" and a["sovra.route"] == "extraction"
    assert a["gen_ai.response.finish_reasons"] == ("stop",)


def test_output_error_after_two_bad_answers(tmp_path: Path, vllm: list[FakeVLLM]) -> None:
    f = fake(vllm, Reply(content='{"notice_days": 0}'), Reply(content="nope"))
    gw, _ = gateway(tmp_path, {"chat": Route(model="kyc-lora", base_url=f.base_url)})
    with pytest.raises(ModelOutputError, match="Terms"):
        gw.complete_json(MSG, Terms)
    assert len(f.chat_bodies()) == 2
