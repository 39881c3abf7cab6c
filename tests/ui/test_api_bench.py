"""`sovra bench api`'s load generator against a real server: counts, rates and percentiles add up."""

from __future__ import annotations

import asyncio
import json

from fakes.chat_agent import serve_asgi

from sovra.config import Settings
from sovra.evals.bench_api import TOKEN, EchoAgent, load
from sovra.ui.api import create_app


def test_load_counts_every_request(tmp_path):
    (tmp_path / "users.json").write_text(json.dumps({"alice": {"name": "Alice", "groups": []}}))
    app = create_app(Settings(data_dir=tmp_path), tokens={TOKEN: "alice"}, agents={"echo": EchoAgent})
    with serve_asgi(app) as url:
        r = asyncio.run(load(url, "echo", ["a", "b"], clients=3, per_client=2))
        h = asyncio.run(load(url, None, ["a"], clients=3, per_client=5))
    assert r["requests"] == r["ok"] == 6 and not r["errors"] and r["requests_per_s"] > 0
    assert 0 < r["latency_s"]["p50"] <= r["latency_s"]["p95"] <= r["latency_s"]["max"]
    assert h["agent"] == "GET /health" and h["ok"] == 15
