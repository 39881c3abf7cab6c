"""`sovra models check` and the start-up check of `sovra serve`, against the vLLM fake."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fakes.vllm_server import FakeVLLM

from sovra.errors import ConfigError, ModelUnavailableError

SOVRA = [sys.executable, "-m", "sovra.ui.cli"]


@pytest.fixture
def vllm() -> Iterator[FakeVLLM]:
    f = FakeVLLM(adapters=("contracts-lora",), embedding_model="bge-small-en")
    yield f
    f.close()


def write_routes(tmp_path: Path, base_url: str, extraction_model: str = "contracts-lora") -> Path:
    path = tmp_path / "routes.toml"
    path.write_text(
        f"""
[routes.chat]
model = "meta-llama/Llama-3.1-8B-Instruct"
base_url = "{base_url}"

[routes.extraction]
model = "{extraction_model}"
base_url = "{base_url}"

[routes.embedding]
model = "bge-small-en"
base_url = "{base_url}"
kind = "embedding"

[routes.chat-local]
model = "local"
"""
    )
    return path


def run(tmp_path: Path, routes: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SOVRA_DATA_DIR": str(tmp_path / "data"), "SOVRA_ROUTES_FILE": str(routes)}
    env.pop("SOVRA_DEBUG", None)
    return subprocess.run([*SOVRA, *args], capture_output=True, text=True, env=env, timeout=120)


def test_models_check_lists_base_models_and_adapters(tmp_path: Path, vllm: FakeVLLM) -> None:
    p = run(tmp_path, write_routes(tmp_path, vllm.base_url), "models", "check")
    assert p.returncode == 0, p.stderr
    assert "extraction" in p.stdout and "LoRA adapter of meta-llama/Llama-3.1-8B-Instruct" in p.stdout
    assert "chat-local" in p.stdout and "not checked" in p.stdout
    assert "ok: 3 remote route(s) served" in p.stdout
    assert vllm.paths.count("/v1/models") == 1  # one listing per server, not per route


def test_models_check_names_the_missing_adapter(tmp_path: Path, vllm: FakeVLLM) -> None:
    p = run(tmp_path, write_routes(tmp_path, vllm.base_url, "kyc-lora"), "models", "check")
    assert p.returncode != 0
    assert "Traceback" not in p.stderr
    assert p.stderr.startswith("error: route 'extraction' wants 'kyc-lora'"), p.stderr
    assert "--lora-modules" in p.stderr  # the hint says how to serve it


def test_serve_refuses_to_start_with_a_missing_adapter(
    tmp_path: Path, vllm: FakeVLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uvicorn

    from sovra.ui.api import serve_command

    started: list[object] = []
    monkeypatch.setattr(uvicorn, "run", lambda *a, **kw: started.append(a))
    monkeypatch.setenv("SOVRA_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SOVRA_ROUTES_FILE", str(write_routes(tmp_path, vllm.base_url, "kyc-lora")))
    with pytest.raises(ConfigError, match=r"'kyc-lora', which .* does not serve"):
        serve_command()
    assert started == []
    # With every adapter served, the check passes and the server starts.
    monkeypatch.setenv("SOVRA_ROUTES_FILE", str(write_routes(tmp_path, vllm.base_url)))
    serve_command()
    assert len(started) == 1
    # A server that is down stops the start-up too, with its URL in the message...
    vllm.close()
    with pytest.raises(ModelUnavailableError, match=vllm.base_url):
        serve_command()
    # ... unless the check is switched off (e.g. the model server starts later).
    serve_command(check_models=False)
    assert len(started) == 2
