"""Secrets and supply chain: planted credentials never reach logs, the audit store, checkpoints or
error messages; every dependency is pinned by a lock file.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
from pathlib import Path

import pytest
from conftest import copy_demo_data
from fakes.openai_server import FakeOpenAI

from sovra.config import Settings
from sovra.errors import SovraError

pytestmark = pytest.mark.reliability

ROOT = Path(__file__).resolve().parents[2]
PLANTED = {
    "llm_api_key": "sk-PLANTED-llm-7f3a9c1e5b",
    "qdrant_api_key": "qk-PLANTED-qdrant-2d8e4f6a",
    "slack_bot_token": "xoxb-PLANTED-slack-9b1c3d5e",
    "slack_signing_secret": "PLANTED-signing-4e6f8a0b",
    "teams_app_password": "PLANTED-teams-1a2b3c4d",
    "graph_client_secret": "PLANTED-graph-5e6f7a8b",
}


def _settable(settings_cls: type[Settings]) -> dict[str, str]:
    return {k: v for k, v in PLANTED.items() if k in settings_cls.model_fields}


def test_settings_never_print_their_credentials(tmp_path):
    s = Settings(data_dir=tmp_path, **_settable(Settings))
    for text in (repr(s), str(s), f"{s!r}"):
        for secret in PLANTED.values():
            assert secret not in text
    # The values themselves are intact for the code that needs them.
    assert s.llm_api_key == PLANTED["llm_api_key"]


@pytest.fixture(scope="module")
def data_dir(demo_settings, tmp_path_factory) -> Path:
    return copy_demo_data(demo_settings, tmp_path_factory.mktemp("secrets") / "data")


def _all_bytes(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in folder.rglob("*") if p.is_file() and p.stat().st_size < 200_000_000)


def test_planted_credentials_are_absent_from_logs_audit_and_checkpoints(data_dir, tmp_path):
    from sovra.agents import get_agent
    from sovra.runtime import Runtime

    plan = {"search_query": "hotel limit London", "ledger_lookup": False, "counterparty": None, "year": None}
    draft = {"answer": "The hotel limit in London is EUR 250 per night [1].", "citations": [1]}
    fake = FakeOpenAI([(200, json.dumps(plan)), (200, json.dumps(draft))] + [(200, json.dumps(draft))] * 4)
    data = tmp_path / "data"
    shutil.copytree(data_dir, data, ignore=shutil.ignore_patterns("*.lock"))
    settings = Settings(
        data_dir=data,
        llm_base_url=fake.base_url,
        llm_model="nordbank-chat",
        **{k: v for k, v in _settable(Settings).items() if k != "qdrant_api_key"},
    )
    log_file = tmp_path / "sovra.log"
    handler = logging.FileHandler(log_file)
    handler.setLevel(logging.DEBUG)
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    rt = Runtime(settings)
    try:
        answer = rt.ask(get_agent("assistant"), "What is the hotel limit per night in London?", "alice", "test")
        assert answer.run_id
    finally:
        rt.close()
        fake.close()
        root.removeHandler(handler)
        root.setLevel(old_level)
        handler.close()
    # The key did reach the model server, as it must (so the test can fail):
    assert any(h.get("authorization") == f"Bearer {PLANTED['llm_api_key']}" for h in fake.headers)
    haystack = log_file.read_bytes() + _all_bytes(data)
    assert len(haystack) > 100_000
    for name, secret in PLANTED.items():
        assert secret.encode() not in haystack, f"{name} leaked"


def test_an_error_about_a_server_does_not_print_its_credentials(tmp_path):
    from sovra.index import open_index

    settings = Settings(
        data_dir=tmp_path,
        qdrant_url="http://user:PLANTED-pw-in-url@127.0.0.1:9",
        qdrant_api_key=PLANTED["qdrant_api_key"],
    )
    with pytest.raises(SovraError) as info:
        index = open_index(settings)
        from sovra.index import IndexInfo

        index.check(IndexInfo(model_id="m", dim=384))
    text = f"{info.value} {info.value.hint}"
    assert PLANTED["qdrant_api_key"] not in text and "PLANTED-pw-in-url" not in text, text


def _lock_names(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        m = re.fullmatch(r"([A-Za-z0-9_.\-\[\],]+)==([^\s;]+)(\s*;.*)?", line)
        assert m, f"{path.name}: not pinned exactly: {line!r}"
        pins[re.sub(r"\[.*\]", "", m.group(1)).lower().replace("_", "-")] = m.group(2)
    return pins


@pytest.mark.parametrize("lock", ["requirements.lock", "requirements-dev.lock"])
def test_every_dependency_is_pinned_by_the_lock_files(lock):
    import tomllib

    pins = _lock_names(ROOT / lock)
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = list(project["dependencies"])
    if "dev" in lock:
        wanted += project["optional-dependencies"]["dev"]
    for req in wanted:
        name = re.split(r"[\[<>=!~ ;]", req, maxsplit=1)[0].lower().replace("_", "-")
        assert name in pins, f"{name} is in pyproject.toml but not pinned in {lock}: run `make lock`"
