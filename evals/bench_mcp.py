"""MCP search overhead over the HTTP API's search (target: at most 20% more latency).

    python -m sovra.evals.bench_mcp [--data DIR] [--calls 200]

Serves the demo bank twice on 127.0.0.1, each from its own copy of the data dir (the embedded index
admits one handle): the HTTP API (``POST /v1/search``) and ``sovra mcp``'s streamable HTTP app (the
``search`` tool), both behind the same bearer-token check and doing the same server-side work (one
audited ``search_documents`` run, fsynced). One client process alternates the two on the same queries
(httpx for the API, the official MCP client for MCP, one connection/session each) and reports median
and p95 latency. ``--data``: an existing demo data dir (``sovra demo``); default: build one.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import socket
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

TOKENS = {"alice-bench-token-0123456789": "alice"}
TOKEN = next(iter(TOKENS))
QUERIES = [
    "hotel limit per night in London",
    "how many days per week may I work from home",
    "gifts and hospitality threshold",
    "notice period for early termination of the supply contract",
    "data retention for customer records",
    "who approves travel above the budget",
    "reporting a suspected fraud",
    "password rotation rules",
]


@contextmanager
def _serve(app: Any) -> Iterator[int]:
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        yield int(sock.getsockname()[1])
    finally:
        server.should_exit = True
        thread.join(timeout=60)
        sock.close()


def _copy(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns("logs", "*.lock", "audit.sqlite*", "run-catalog*"))
    sources = dest / "sources.json"
    if sources.exists():
        sources.write_text(sources.read_text().replace(str(src), str(dest)))
    return dest


def _stats(ms: list[float]) -> dict[str, float]:
    ms = sorted(ms)
    return {"median_ms": round(statistics.median(ms), 2), "p95_ms": round(ms[int(len(ms) * 0.95) - 1], 2)}


async def _measure(api_port: int, mcp_port: int, calls: int) -> dict[str, Any]:
    import httpx
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client

    headers = {"Authorization": f"Bearer {TOKEN}"}
    api_ms: list[float] = []
    mcp_ms: list[float] = []
    mcp_http = create_mcp_http_client(headers=headers)
    url = f"http://127.0.0.1:{mcp_port}/mcp"
    async with (
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{api_port}", headers=headers, timeout=120) as api,
        mcp_http,
        Client(streamable_http_client(url, http_client=mcp_http)) as mcp,
    ):
        for warm in QUERIES:  # model load, embedding cache, connections: not measured
            (await api.post("/v1/search", json={"query": warm, "limit": 6})).raise_for_status()
            assert not (await mcp.call_tool("search", {"query": warm, "limit": 6})).is_error
        for i in range(calls):
            query = {"query": f"{QUERIES[i % len(QUERIES)]} {i}", "limit": 6}  # a new query: no cache hit
            order = (0, 1) if i % 2 else (1, 0)
            for side in order:
                t = time.perf_counter()
                if side == 0:
                    r = await api.post("/v1/search", json=query)
                    r.raise_for_status()
                    n_api = len(r.json()["hits"])
                    api_ms.append((time.perf_counter() - t) * 1000)
                else:
                    res = await mcp.call_tool("search", query)
                    assert not res.is_error, res.content
                    n_mcp = len(res.structured_content["hits"])
                    mcp_ms.append((time.perf_counter() - t) * 1000)
            assert n_api == n_mcp
    api_s, mcp_s = _stats(api_ms), _stats(mcp_ms)
    return {
        "calls": calls,
        "api_search": api_s,
        "mcp_search": mcp_s,
        "overhead_median": round(mcp_s["median_ms"] / api_s["median_ms"] - 1, 3),
        "overhead_p95": round(mcp_s["p95_ms"] / api_s["p95_ms"] - 1, 3),
    }


def run(data: Path, calls: int, work: Path) -> dict[str, Any]:
    from sovra.config import Settings
    from sovra.ui.api import create_app
    from sovra.ui.mcp_server import McpState, http_app

    api_settings = Settings(data_dir=_copy(data, work / "api"))
    mcp_settings = Settings(data_dir=_copy(data, work / "mcp"))
    state = McpState(mcp_settings)
    try:
        with _serve(create_app(api_settings, tokens=TOKENS)) as api_port, _serve(http_app(state, TOKENS)) as mcp_port:
            return asyncio.run(_measure(api_port, mcp_port, calls))
    finally:
        state.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=None, help="A demo data dir (default: build one).")
    ap.add_argument("--calls", type=int, default=200)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = args.data
        if data is None:
            from sovra.config import Settings
            from sovra.evals.demo_corpus import AS_OF
            from sovra.ui.commands import setup_demo

            data = Path(tmp) / "demo"
            setup_demo(Settings(data_dir=data, as_of=AS_OF))
        result = run(data, args.calls, Path(tmp))
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    print(f"\nMCP search overhead over the API's: {result['overhead_median']:+.1%} (median), target <= +20%")


if __name__ == "__main__":
    main()
