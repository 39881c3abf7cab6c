"""Load: N concurrent users on the HTTP API for a bounded time, against loopback services.

The server is a separate process (``sovra.ui.api.serve`` = uvicorn, one worker) so its resident
memory can be read from ``/proc/PID/status``. Each simulated user has their own token and loops
over a realistic mix until the time is up: ask (JSON), ask (SSE), OpenAI completion (plain and
streamed), list their runs, read their run's audit view, and try to read another user's run (must
be 403). Figures: throughput, p50/p95 latency, errors, 5xx, and the server's RSS after a warm-up
and at the end. It holds when nothing answered 5xx or failed, every answer belonged to its asker,
the audit chain verifies afterwards, and RSS grew less than ``RELIABILITY_LOAD_RSS_MB`` after
warm-up (the leak check; ``make reliability`` runs it for 600 s).

- the long run serves the fixed-answer ``echo`` agent (real runtime, audit log, checkpoints; no
  index, no model) so the model is not the bottleneck: this measures the API and what it keeps;
- a short run (``llm`` + ``slow``) serves the real assistant with the local llama.cpp model on a
  copy of the demo bank, a few users for ``RELIABILITY_LOAD_LLM_SECONDS``.

Settings (environment): ``RELIABILITY_LOAD_SECONDS`` (30), ``RELIABILITY_LOAD_USERS`` (8),
``RELIABILITY_LOAD_RSS_MB`` (50), ``RELIABILITY_LOAD_LLM_SECONDS`` (60), ``RELIABILITY_LOAD_REPORT``
(also write the figures to this JSON file; they are always written under the server's data dir).
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.reliability

TESTS = Path(__file__).resolve().parents[1]
SECONDS = float(os.environ.get("RELIABILITY_LOAD_SECONDS", "30"))
USERS_N = int(os.environ.get("RELIABILITY_LOAD_USERS", "8"))
RSS_BOUND_MB = float(os.environ.get("RELIABILITY_LOAD_RSS_MB", "50"))
LLM_SECONDS = float(os.environ.get("RELIABILITY_LOAD_LLM_SECONDS", "60"))
AUDITOR = "erin"


def _users(n: int) -> dict[str, dict[str, Any]]:
    users: dict[str, dict[str, Any]] = {
        f"user{i:02d}": {"name": f"Load User {i}", "groups": ["employees"]} for i in range(n)
    }
    users[AUDITOR] = {"name": "Erin Auditor", "groups": ["employees", "auditor"]}
    return users


def _token(uid: str) -> str:
    return f"load-{uid}-token-0123456789abcdef"


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for pid {pid}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    url: str
    proc: subprocess.Popen[bytes]
    data: Path
    log: Path


@contextmanager
def api_server(data: Path, users: dict[str, dict[str, Any]], factory: str, env: dict[str, str]) -> Iterator[Server]:
    """``sovra serve``'s uvicorn (one worker) in a child process on a free loopback port."""
    tokens = {_token(u): u for u in users}
    (data / "tokens.json").write_text(json.dumps(tokens))
    port = _free_port()
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "SOVRA_DATA_DIR": str(data),
        "SOVRA_API_TOKENS_FILE": str(data / "tokens.json"),
        "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
        **env,
    }
    code = f"from sovra.ui.api import serve; serve(port={port}, workers=1, factory={factory!r})"
    log = data / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300  # the child imports the whole stack: slow on a busy machine
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.2)
        yield Server(url, proc, data, log)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# ---------------------------------------------------------------------------------------------
# The load


@dataclass
class Stats:
    latencies: list[float] = field(default_factory=list)
    by_op: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)  # unexpected status or transport error
    server_errors: int = 0
    wrong_owner: int = 0
    run_ids: int = 0
    last_run: dict[str, str] = field(default_factory=dict)  # user -> their latest run id
    rss_kb: list[tuple[float, int]] = field(default_factory=list)

    def ok(self, op: str, seconds: float) -> None:
        self.latencies.append(seconds)
        self.by_op[op] += 1


def _sse_last_data(text: str) -> dict[str, Any]:
    blocks = [b for b in text.split("\n\n") if b.startswith("event: ") or b.startswith("data: ")]
    last = next(ln for ln in blocks[-1].splitlines() if ln.startswith("data: "))
    return json.loads(last[6:])


async def user_loop(
    http: httpx.AsyncClient, uid: str, other: str, agent: str, question: str, until: float, stats: Stats
) -> None:
    """One user: the request mix, one request after another, until ``until``."""
    h = {"Authorization": f"Bearer {_token(uid)}"}
    mine: list[str] = []
    i = 0
    while time.monotonic() < until:
        op = ("ask", "stream", "openai", "openai-stream", "runs", "audit", "cross-read")[i % 7]
        i += 1
        t0 = time.perf_counter()
        try:
            expect = 200
            if op == "ask":
                r = await http.post("/v1/ask", json={"question": f"{question} #{i}", "agent": agent}, headers=h)
                body = r.json() if r.status_code == 200 else {}
            elif op == "stream":
                r = await http.post("/v1/ask/stream", json={"question": f"{question} #{i}", "agent": agent}, headers=h)
                body = _sse_last_data(r.text) if r.status_code == 200 else {}
            elif op in ("openai", "openai-stream"):
                req = {"model": f"sovra-{agent}", "messages": [{"role": "user", "content": f"{question} #{i}"}]}
                req["stream"] = op == "openai-stream"
                r = await http.post("/v1/chat/completions", json=req, headers=h)
                if r.status_code == 200 and op == "openai":
                    body = {"run_id": r.json()["sovra"]["run_id"], "user": uid}
                elif r.status_code == 200:
                    final = [ln for ln in r.text.splitlines() if ln.startswith("data: {") and '"sovra"' in ln]
                    assert r.text.rstrip().endswith("data: [DONE]") and final, r.text[-500:]
                    body = {"run_id": json.loads(final[-1][6:])["sovra"]["run_id"], "user": uid}
                else:
                    body = {}
            elif op == "runs":
                r = await http.get("/v1/runs?limit=20", headers=h)
                if r.status_code == 200 and any(run["user"] != uid for run in r.json()["runs"]):
                    stats.wrong_owner += 1
                body = {}
            elif op == "audit":
                r = await http.get(f"/v1/runs/{mine[-1]}/audit", headers=h) if mine else await http.get("/health")
                if mine and r.status_code == 200 and r.json()["user"] != uid:
                    stats.wrong_owner += 1
                body = {}
            else:  # another user's run: must be refused
                target = stats.last_run.get(other)
                if target is None:
                    r = await http.get("/health")
                else:
                    expect = 403
                    r = await http.get(f"/v1/runs/{target}", headers=h)
                body = {}
        except (httpx.HTTPError, json.JSONDecodeError, KeyError, IndexError, AssertionError) as exc:
            stats.errors[f"{op}: {type(exc).__name__}"] += 1
            continue
        elapsed = time.perf_counter() - t0
        if r.status_code >= 500:
            stats.server_errors += 1
        if r.status_code != expect:
            stats.errors[f"{op}: HTTP {r.status_code}"] += 1
            continue
        if "run_id" in body:
            if body.get("user") != uid:
                stats.wrong_owner += 1
            mine.append(body["run_id"])
            stats.last_run[uid] = body["run_id"]
            stats.run_ids += 1
        stats.ok(op, elapsed)


async def sample_rss(pid: int, until: float, every: float, stats: Stats) -> None:
    start = time.monotonic()
    while time.monotonic() < until:
        stats.rss_kb.append((round(time.monotonic() - start, 1), rss_kb(pid)))
        await asyncio.sleep(every)  # a sampling interval, not a wait for some condition


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(q * (len(ordered) - 1))))] if ordered else float("nan")


async def run_load(
    server: Server, uids: list[str], agent: str, question: str, warmup_s: float, seconds: float, timeout: float
) -> dict[str, Any]:
    stats = Stats()
    limits = httpx.Limits(max_connections=len(uids) + 2, max_keepalive_connections=len(uids) + 2)
    async with httpx.AsyncClient(base_url=server.url, timeout=timeout, limits=limits) as http:

        async def phase(length: float) -> None:
            until = time.monotonic() + length
            others = uids[1:] + uids[:1]
            loops = [user_loop(http, u, o, agent, question, until, stats) for u, o in zip(uids, others, strict=True)]
            await asyncio.gather(sample_rss(server.proc.pid, until, max(1.0, length / 60), stats), *loops)

        await phase(warmup_s)
        rss_warm = rss_kb(server.proc.pid)
        warm_requests = len(stats.latencies)
        stats.latencies.clear()
        stats.rss_kb.clear()
        t0 = time.monotonic()
        await phase(seconds)
        wall = time.monotonic() - t0
        rss_end = rss_kb(server.proc.pid)
        # Afterwards: the audit chain that all of this wrote still verifies.
        any_run = next(iter(stats.last_run.values()), None)
        chain: dict[str, Any] = {}
        if any_run is not None:
            h = {"Authorization": f"Bearer {_token(AUDITOR)}"}
            r = await http.get(f"/v1/runs/{any_run}/audit?verify=true", headers=h, timeout=600)
            assert r.status_code == 200, r.text
            chain = r.json()["chain"]
    lat = stats.latencies
    return {
        "agent": agent,
        "users": len(uids),
        "warmup_s": warmup_s,
        "seconds": round(wall, 1),
        "warmup_requests": warm_requests,
        "requests_ok": len(lat),
        "requests_per_s": round(len(lat) / wall, 2) if wall else 0.0,
        "latency_s": {
            "p50": round(_pct(lat, 0.50), 4),
            "p95": round(_pct(lat, 0.95), 4),
            "max": round(max(lat), 4) if lat else None,
            "mean": round(statistics.fmean(lat), 4) if lat else None,
        },
        "by_op": dict(stats.by_op),
        "errors": dict(stats.errors),
        "error_count": sum(stats.errors.values()),
        "server_5xx": stats.server_errors,
        "wrong_owner": stats.wrong_owner,
        "runs_created": stats.run_ids,
        "rss_mb": {
            "after_warmup": round(rss_warm / 1024, 1),
            "end": round(rss_end / 1024, 1),
            "growth": round((rss_end - rss_warm) / 1024, 1),
            "max": round(max([kb for _, kb in stats.rss_kb] + [rss_end]) / 1024, 1),
            "samples": [(t, round(kb / 1024, 1)) for t, kb in stats.rss_kb],
        },
        "audit_chain": chain,
        "machine": {"cpus": os.cpu_count(), "load_avg_end": round(os.getloadavg()[0], 2)},
    }


def report(name: str, figures: dict[str, Any], server: Server, record_property: Any) -> None:
    """Print the figures, write them as JSON under the data dir (and RELIABILITY_LOAD_REPORT)."""
    out = {name: figures}
    (server.data / f"load-{name}.json").write_text(json.dumps(out, indent=2))
    extra = os.environ.get("RELIABILITY_LOAD_REPORT")
    if extra:
        path = Path(extra)
        old = json.loads(path.read_text()) if path.is_file() else {}
        path.write_text(json.dumps(old | out, indent=2))
    short = {k: v for k, v in figures.items() if k != "rss_mb"} | {
        "rss_mb": {k: v for k, v in figures["rss_mb"].items() if k != "samples"}
    }
    print(f"\nLOAD {name}: {json.dumps(short)}")
    record_property(f"load_{name}", json.dumps(short))  # lands in the runner's JUnit XML


def check(figures: dict[str, Any], server: Server) -> None:
    log = server.log.read_text()[-3000:]
    assert figures["server_5xx"] == 0, (figures["errors"], log)
    assert figures["error_count"] == 0, (figures["errors"], log)
    assert figures["wrong_owner"] == 0, figures
    assert figures["requests_ok"] > 0 and figures["runs_created"] > 0, figures
    assert figures["audit_chain"].get("ok") is True, figures["audit_chain"]
    assert server.proc.poll() is None, log  # still serving


# ---------------------------------------------------------------------------------------------
# Tests


@pytest.mark.slow
@pytest.mark.timeout(int(SECONDS * 1.2 + 600))
def test_concurrent_users_on_the_api_without_errors_or_leaks(tmp_path, record_property):
    users = _users(USERS_N)
    data = tmp_path / "data"
    data.mkdir()
    (data / "users.json").write_text(json.dumps(users))
    uids = [u for u in users if u != AUDITOR]
    warmup = max(5.0, min(60.0, SECONDS * 0.1))
    with api_server(data, users, "fakes.api_workers_app:create", {}) as server:
        figures = asyncio.run(run_load(server, uids, "echo", "What is the hotel limit?", warmup, SECONDS, 120))
        report("echo", figures, server, record_property)
        check(figures, server)
        # Enough work to mean something: at least one answered request a second on average.
        assert figures["requests_ok"] >= SECONDS, figures
        assert figures["audit_chain"]["checked"] >= 3 * figures["runs_created"], figures["audit_chain"]
        assert figures["rss_mb"]["growth"] < RSS_BOUND_MB, figures["rss_mb"]


@pytest.mark.llm
@pytest.mark.slow
@pytest.mark.timeout(int(LLM_SECONDS * 3 + 1200))
def test_a_few_users_on_the_real_assistant(demo_settings, tmp_path, record_property):
    from conftest import copy_demo_data

    data = copy_demo_data(demo_settings, tmp_path / "data")
    users = {u: d for u, d in json.loads((data / "users.json").read_text()).items()}
    uids = [u for u in ("alice", "bob", "carol") if u in users]
    assert AUDITOR in users and uids
    env = {"SOVRA_AS_OF": str(demo_settings.as_of)}
    with api_server(data, users, "sovra.ui.api:create_app", env) as server:
        # Warm-up: one question per user (the model server starts on the first one).
        q = "What is the hotel limit per night in London?"
        figures = asyncio.run(run_load(server, uids, "assistant", q, 1.0, LLM_SECONDS, 900))
        report("assistant", figures, server, record_property)
        check(figures, server)
