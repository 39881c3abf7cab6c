"""Gateway overhead per call: ModelGateway (litellm) against raw httpx, same server, same request.

The server is the vLLM fake from ``tests/fakes`` run in a child process (its own interpreter, so
its work does not share our GIL); it answers at once, so what differs between the two clients is
the gateway's own cost: routing, allow-list, breaker, concurrency limit, span, litellm, parsing.

    python -m sovra.evals.bench_gateway [--calls 300]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

_FAKE = (
    "import sys; sys.path.insert(0, sys.argv[1])\n"
    "from fakes.vllm_server import FakeVLLM\n"
    "f = FakeVLLM(); print(f.base_url, flush=True); sys.stdin.read(); f.close()\n"
)


def _measure(fns: dict[str, Callable[[], object]], calls: int) -> dict[str, tuple[list[float], float]]:
    """Wall milliseconds per call, and this process's CPU milliseconds per call, for each client.

    Calls are interleaved (one of each per round) so drift on a shared machine hits all alike.
    """
    for fn in fns.values():
        for _ in range(10):  # warm connections, caches, lazy imports
            fn()
    walls: dict[str, list[float]] = {name: [] for name in fns}
    cpu: dict[str, float] = dict.fromkeys(fns, 0.0)
    for _ in range(calls):
        for name, fn in fns.items():
            c0, t0 = time.process_time(), time.perf_counter()
            fn()
            walls[name].append((time.perf_counter() - t0) * 1000.0)
            cpu[name] += (time.process_time() - c0) * 1000.0
    return {name: (walls[name], cpu[name] / calls) for name in fns}


def _p(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args(argv)

    import httpx

    from sovra.config import Settings
    from sovra.gateway import ModelGateway, _get_litellm
    from sovra.routes import Route, RoutesConfig

    tests_dir = Path(__file__).resolve().parents[1] / "tests"
    if not (tests_dir / "fakes" / "vllm_server.py").is_file():
        sys.exit(f"needs the source checkout: {tests_dir}/fakes/vllm_server.py not found")
    server = subprocess.Popen(
        [sys.executable, "-c", _FAKE, str(tests_dir)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        base_url = server.stdout.readline().strip()
        _get_litellm()
        messages = [{"role": "user", "content": "What is the notice period in contract 17?"}]
        routes = RoutesConfig(routes={"chat": Route(model="contracts-lora", base_url=base_url, max_tokens=64)})
        gateway = ModelGateway(Settings(), routes)
        raw = httpx.Client(trust_env=False)
        body = {"model": "contracts-lora", "messages": messages, "max_tokens": 64, "temperature": 0.0}

        def via_raw() -> object:
            r = raw.post(f"{base_url}/chat/completions", json=body, headers={"Authorization": "Bearer no-key"})
            r.raise_for_status()
            return r.json()["choices"][0]["message"]["content"]

        def via_gateway() -> object:
            return gateway.complete_text(messages, route="chat")[0]

        import openai

        litellm = _get_litellm()
        client = openai.OpenAI(
            base_url=base_url, api_key="no-key", max_retries=0, http_client=httpx.Client(trust_env=False)
        )

        def via_litellm() -> object:
            resp = litellm.completion(
                model="openai/contracts-lora", api_base=base_url, api_key="no-key", client=client, messages=messages,
                max_tokens=64, temperature=0.0, timeout=120, max_retries=0, num_retries=0,
            )  # fmt: skip
            return resp.choices[0].message.content

        results = _measure({"raw httpx": via_raw, "litellm": via_litellm, "gateway": via_gateway}, args.calls)
        raw_walls, raw_cpu = results["raw httpx"]
        gw_walls, gw_cpu = results["gateway"]
        print(f"{args.calls} calls each, fake vLLM in a child process, Python {sys.version.split()[0]}")
        print(f"{'client':<12}{'median ms':>11}{'p90 ms':>9}{'cpu ms/call':>13}")
        ll_walls, ll_cpu = results["litellm"]
        rows = (("raw httpx", raw_walls, raw_cpu), ("litellm", ll_walls, ll_cpu), ("gateway", gw_walls, gw_cpu))
        for name, walls, cpu in rows:
            print(f"{name:<12}{statistics.median(walls):>11.2f}{_p(walls, 90):>9.2f}{cpu:>13.2f}")
        med = statistics.median
        print(
            f"gateway overhead per call vs raw httpx: {med(gw_walls) - med(raw_walls):.2f} ms wall (median), "
            f"{gw_cpu - raw_cpu:.2f} ms CPU\n"
            f"  of which litellm + OpenAI client: {med(ll_walls) - med(raw_walls):.2f} ms wall, "
            f"Sovra's own layer: {med(gw_walls) - med(ll_walls):.2f} ms wall, {gw_cpu - ll_cpu:.2f} ms CPU"
        )
        gateway.close()
        raw.close()
    finally:
        if server.stdin is not None:
            server.stdin.close()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
