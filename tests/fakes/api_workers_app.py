"""The API app for multi-worker tests: `sovra serve`'s app with stub agents that need no index.

uvicorn imports this factory in each worker process (``serve(factory="fakes.api_workers_app:create")``);
settings and tokens come from the environment, as with ``sovra serve``.
"""

from __future__ import annotations

from fakes.chat_agent import CitedAgent
from fastapi import FastAPI

from sovra.evals.bench_api import EchoAgent
from sovra.ui.api import create_app


def create() -> FastAPI:
    return create_app(agents={"echo": EchoAgent, "chat-test": CitedAgent})
