"""What costtop's LiteLLM callback adds to each call through a real LiteLLM proxy.

    python -m benchmarks.litellm_callback [--requests 1000]

Three proxies of the same release and config (mock_response models: no provider, no network), started
from `.venv-litellm-proxy` (scripts/litellm-proxy-env), one Redis of their own:
- `without`: no callback, the baseline;
- `with`: costtop's callback, the agent has no switch (the common path: one Redis round trip);
- `throttled`: costtop's callback, the agent throttled under its limit (that round trip plus the per-minute count).
Requests are sequential, one at a time, through one kept-alive httpx client per proxy, interleaved
(without, with, throttled, without, ...) so drift on the machine hits the three alike. The added latency
is the difference of the percentiles, and the median of the per-round differences. Then the hook alone,
in this process, against the same Redis: `async_pre_call_hook` timed N times.
Writes JSON to benchmarks/results/.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import httpx

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from tests.integration.litellm_proxy import Proxy, chat_body, start_proxy

from costtop.demo.servers import RedisServer

VARIANTS = ("without", "with", "throttled")
RESULTS = Path(__file__).with_name("results")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def summary(values: list[float]) -> dict[str, float]:
    return {"p50_ms": round(pct(values, 0.5), 3), "p99_ms": round(pct(values, 0.99), 3),
            "mean_ms": round(statistics.fmean(values), 3)}


async def run_requests(proxies: dict[str, Proxy], n: int, warmup: int) -> dict[str, list[float]]:
    timings: dict[str, list[float]] = {v: [] for v in proxies}
    agent = {"without": "bench-free", "with": "bench-free", "throttled": "bench-throttled"}
    clients = {v: httpx.AsyncClient(base_url=p.url, headers=p.headers(), timeout=30.0) for v, p in proxies.items()}
    try:
        for i in range(warmup + n):
            for variant, client in clients.items():
                body = chat_body("gpt-4o", agent[variant])
                start = time.perf_counter()
                response = await client.post("/v1/chat/completions", json=body)
                elapsed = (time.perf_counter() - start) * 1000
                if response.status_code != 200:
                    raise RuntimeError(f"{variant}: HTTP {response.status_code}: {response.text[:200]}")
                if i >= warmup:
                    timings[variant].append(elapsed)
    finally:
        for client in clients.values():
            await client.aclose()
    return timings


async def hook_alone(redis_url: str, n: int) -> dict[str, dict[str, float]]:
    """The pre-call hook's own time, no proxy around it: free agent, then throttled agent."""
    from litellm.proxy._types import UserAPIKeyAuth

    from costtop.config import LiteLLMSettings, Settings
    from costtop.integrations.litellm import CosttopCallback

    cb = CosttopCallback(Settings(redis_url=redis_url, litellm=LiteLLMSettings(throttle_per_minute=100_000)),
                         router=lambda: None)
    out: dict[str, dict[str, float]] = {}
    try:
        for name, agent in (("free", "bench-free"), ("throttled", "bench-throttled")):
            data = {"model": "gpt-4o", "metadata": {"agent_id": agent}}
            times = []
            for i in range(n + 100):
                start = time.perf_counter()
                await cb.async_pre_call_hook(UserAPIKeyAuth(), None, data, "acompletion")
                if i >= 100:
                    times.append((time.perf_counter() - start) * 1000)
            out[name] = summary(times)
    finally:
        await cb.aclose()
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=1000, help="timed requests per proxy")
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--out", type=Path, help="JSON path (default benchmarks/results/litellm_callback-<ts>.json)")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="costtop-bench-litellm-"))
    redis = RedisServer(root / "redis").start()
    proxies: dict[str, Proxy] = {}
    try:
        import redis as redis_sync

        client = redis_sync.Redis.from_url(redis.url, socket_timeout=5)
        client.set("throttle:agent:bench-throttled", "manual:bench:measure")
        client.close()
        toml = "[litellm]\nthrottle_per_minute = 100000\n"
        with ThreadPoolExecutor(3) as pool:
            futures = {v: pool.submit(start_proxy, root / v, redis.url, with_callback=v != "without",
                                      spend_rows=False, costtop_toml=toml) for v in VARIANTS}
            for variant, future in futures.items():
                proxies[variant] = future.result()
        timings = asyncio.run(run_requests(proxies, args.requests, args.warmup))
        hook = asyncio.run(hook_alone(redis.url, args.requests))
    finally:
        for p in proxies.values():
            p.stop()
        redis.stop()
    result: dict[str, object] = {"requests": args.requests, "warmup": args.warmup,
                                 "when": datetime.now(UTC).isoformat(timespec="seconds")}
    for variant in VARIANTS:
        result[variant] = summary(timings[variant])
    base = timings["without"]
    for variant in ("with", "throttled"):
        paired = [w - b for w, b in zip(timings[variant], base, strict=True)]
        result[f"added_{variant}"] = {
            "p50_ms": round(pct(timings[variant], 0.5) - pct(base, 0.5), 3),
            "p99_ms": round(pct(timings[variant], 0.99) - pct(base, 0.99), 3),
            "median_paired_ms": round(statistics.median(paired), 3),
        }
    result["hook_alone"] = hook
    out = args.out or RESULTS / f"litellm_callback-{datetime.now(UTC):%Y%m%d-%H%M%S}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    for variant in VARIANTS:
        s = result[variant]
        print(f"{variant:>10}: p50 {s['p50_ms']:.2f} ms  p99 {s['p99_ms']:.2f} ms  mean {s['mean_ms']:.2f} ms")  # type: ignore[index]
    for variant in ("with", "throttled"):
        a = result[f"added_{variant}"]
        print(f"added by the callback ({variant}): p50 {a['p50_ms']:+.2f} ms, p99 {a['p99_ms']:+.2f} ms, "  # type: ignore[index]
              f"median paired {a['median_paired_ms']:+.2f} ms")  # type: ignore[index]
    for name, s in hook.items():
        print(f"hook alone ({name}): p50 {s['p50_ms']:.3f} ms  p99 {s['p99_ms']:.3f} ms")
    print(f"-> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
