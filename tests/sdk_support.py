"""Helpers for the SDK and runtime tests: a data dir with users, and a runtime on the fake vLLM."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sovra.config import Settings

USERS = {
    "alice": {"name": "Alice", "groups": ["employees"]},
    "bob": {"name": "Bob", "groups": ["employees", "finance"]},
    "erin": {"name": "Erin", "groups": ["employees", "finance-managers"]},
    "mallory": {"name": "Mallory", "groups": ["employees"]},
}


def sdk_settings(data_dir: Path, base_url: str, **kw: Any) -> Settings:
    """Settings for a run against a fake OpenAI-compatible server (no index needed)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "users.json").write_text(json.dumps(USERS))
    return Settings(
        data_dir=data_dir,
        llm_base_url=base_url,
        llm_model="meta-llama/Llama-3.1-8B-Instruct",
        **kw,
    )


def tool_reply(name: str, **arguments: Any) -> Any:
    from fakes.vllm_server import Reply

    return Reply(tool_calls=[{"name": name, "arguments": arguments}])


def json_reply(obj: Any) -> Any:
    from fakes.vllm_server import Reply

    return Reply(content=json.dumps(obj))


def text_reply(text: str) -> Any:
    from fakes.vllm_server import Reply

    return Reply(content=text)


def make_runtime(tmp_path: Path, fake: Any, agent: Any = None, **kw: Any) -> Any:
    """A Runtime on the fake server; ``agent`` is what ``resume`` rebuilds by name."""
    from sovra.runtime import Runtime

    settings = sdk_settings(tmp_path / "data", fake.base_url, **kw)
    return Runtime(settings, agents=(lambda _name: agent) if agent is not None else None)


def kinds(runtime: Any, run_id: str) -> list[str]:
    return [r.kind for r in runtime.services.audit.records(run_id)]


# -- the crash test's agent: the child process and the test build the same one ---------------

BLOCK_FILE = "SOVRA_TEST_BLOCK_FILE"


def crash_agent() -> Any:
    import os
    import sys
    import threading

    from sovra.agents.sdk import define_agent
    from sovra.tools.base import tool

    @tool
    def slow_lookup(account: str) -> str:
        """Look up an account's balance (slowly)."""
        flag = os.environ.get(BLOCK_FILE)
        if flag and Path(flag).exists():
            print("READY", flush=True)
            sys.stdout.flush()
            threading.Event().wait()  # hangs here until the test kills the process
        return f"balance of {account}: 42.00"

    # grounded=False: the balance tool cites no source, and this agent's answers are taken as they are.
    return define_agent("crashy", "Looks up balances.", tools=[slow_lookup], tool_mode="native", grounded=False)
