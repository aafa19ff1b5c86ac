"""Floods: 100,000 distinct agents in a day, or 50,000 switch keys; do keys still answer, badges stay true,
`q` quit in time, and how much memory?

    python -m benchmarks.floods [--agents 100000] [--switches 50000] [--million] [--rate 2000]
                                [--rounds 20] [--keep-logs DIR] [--out FILE]

Each scenario against fresh real servers (`ServerPair`), with the load generator (benchmarks/load.py)
writing `--rate` calls/s for 200 ordinary agents through the gateway module meanwhile, and costtop
headless (benchmarks/headless_app.py: the real app, its session thread, refresh 1 s, 160x50) in a child
process:

- agents: `--agents` rows in Postgres, one per distinct agent (`flood-0000000`...), spread evenly over
  the UTC day so far (so the day's sums hold every one of them, and those of the last 5 minutes are in
  the window too), written by one INSERT ... SELECT before costtop starts;
- switches: `--switches` kill keys in Redis (`kill:agent:flood-x<i>` = `manual:bench:x`), which costtop
  reads every 0.5 s (SCAN and one pipeline of GETs), set before costtop starts;
- `--million`: the agents scenario again with 1,000,000 agents.

For each, once a drawn snapshot holds the flood (every agent, or every switch) and has live rows:
`--rounds` rounds of `down`, `up`, `?`, `escape`, `s` (key post -> end of the painted frame showing its
effect, as benchmarks/keys.py measures it; bound 200 ms), every snapshot drawn checked for a source not
connected or a header badge reading STALE while the servers are healthy (bound: none), costtop's CPU
and RSS from /proc over the key phase plus its peak RSS (VmHWM), then `q`: from its post to the app's
`run()` returning and to the process's exit (bound 2 s). Results in benchmarks/results/floods-*.json.
The two cores are shared with the servers and the load generator: noisy figures. Not part of pytest.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import textual
from redis.asyncio import Redis

from benchmarks import frozen
from benchmarks.keys import Meter, Rig, key_trials, quit_time, rig, stale_renders
from benchmarks.live import fmt
from benchmarks.load import Fleet, set_budgets
from costtop.config import Settings
from costtop.demo.run import prepare
from costtop.sources.schema import qident, qualified

RESULTS = Path(__file__).with_name("results")
ROUND = ("down", "up", "question_mark", "escape", "s")


async def flood_agents(settings: Settings, agents: int) -> None:
    """One row per distinct agent, evenly over the UTC day so far."""
    tables = settings.tables
    c = tables.column
    names = ["created_at", "agent_id", "tool_name", "latency_ms", "provider", "model", "tokens_in", "tokens_out",
             "cached_tokens", "cost_usd", "status"]
    now = datetime.now(UTC)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    sql = (f"INSERT INTO {qualified(tables, tables.calls)} ({', '.join(qident(c(n)) for n in names)}) "
           "SELECT $1::timestamptz + ($2::timestamptz - $1::timestamptz) * (g::float8 / $3::float8), "
           "'flood-' || lpad(g::text, 7, '0'), 'llm', 500, 'openai', 'openai-model-00', 1000, 100, 0, 0.0125, "
           "'success' FROM generate_series(0, $3::bigint - 1) AS g")
    conn = await asyncpg.connect(settings.database_url)
    try:
        await conn.execute(sql, midnight, now, agents, timeout=600)
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


async def flood_switches(settings: Settings, switches: int) -> None:
    redis = Redis.from_url(settings.redis_url)
    try:
        for start in range(0, switches, 5_000):
            async with redis.pipeline(transaction=False) as pipe:
                for i in range(start, min(switches, start + 5_000)):
                    pipe.set(f"{settings.keys.kill}:agent:flood-x{i}", "manual:bench:x")
                await pipe.execute()
    finally:
        await redis.aclose()


def scenario(name: str, args: argparse.Namespace, logs: Path, agents: int = 0, switches: int = 0) -> dict[str, Any]:
    print(f"\n== {name}: {agents:,} flood agents, {switches:,} switch keys, load {args.rate:g} calls/s ==",
          flush=True)
    result: dict[str, Any] = {"scenario": name, "flood_agents": agents, "switch_keys": switches,
                              "rate": args.rate}
    with rig(logs / name) as r:
        settings = r.settings
        fleet = Fleet(200, 20)

        async def setup() -> None:
            await prepare(settings)
            await set_budgets(settings, fleet)
            if agents:
                await flood_agents(settings, agents)
            if switches:
                await flood_switches(settings, switches)

        t = time.monotonic()
        asyncio.run(setup())
        result["setup_s"] = round(time.monotonic() - t, 1)
        print(f"flood written in {result['setup_s']} s", flush=True)
        bound = args.start_timeout + args.rounds * len(ROUND) * 3 + 300
        r.start_load(args.rate, 200, 20, "executemany", bound)
        started = r.start_app(1.0, bound, args.costtop_timeout)
        assert r.tail is not None
        result.update(r.wait_live(started, args.start_timeout, None))
        want_agents = agents + 1  # the flood and at least one agent of the load
        whole = r.tail.wait_for(lambda e: e["ev"] == "render" and e.get("max_id") is not None
                                and e.get("agents", 0) >= want_agents
                                and (not switches or "Redis" not in e.get("stale", ["Redis"])),
                                args.start_timeout, alive=r.alive)
        if whole is None:
            raise RuntimeError(f"{name}: the flood was not on screen within {args.start_timeout:g} s")
        result["startup_to_flood_drawn_s"] = round(whole["t"] - started, 2)
        result["agents_drawn"] = whole["agents"]
        print(f"flood drawn {result['startup_to_flood_drawn_s']} s after start ({whole['agents']:,} agents)",
              flush=True)
        time.sleep(3)
        assert r.app is not None
        meter = Meter(r.app.pid)
        since = time.time()
        meter.start()
        result["keys"] = key_trials(r.app, r.tail, args.rounds, args.key_timeout, sequence=ROUND, alive=r.alive)
        result["keys_phase"] = meter.stop()
        until = time.time()
        result["over_200ms"] = {k: sum(1 for x in v if x > 0.2) for k, v in _latencies(r, since, until).items()}
        result["stale"] = stale_renders(r.tail, started + result["startup_to_flood_drawn_s"], until)
        renders = [e for e in r.tail.of("render") if since <= e["t"] < until]
        result["snapshot_build_ms_max"] = round(1000 * max((e["snapshot_s"] for e in renders), default=0), 1)
        result["draw_ms_max"] = round(1000 * max((e["render_s"] for e in renders), default=0), 1)
        result["renders_in_key_phase"] = len(renders)
        pauses = [e["s"] for e in r.tail.of("gc") if since <= e["t"] < until]
        result["gc_pauses_over_5ms"] = {"count": len(pauses), "max_ms": round(1000 * max(pauses, default=0), 1)}
        result["quit"] = quit_time(r.app, r.tail)
    return result


def _latencies(r: Rig, since: float, until: float) -> dict[str, list[float]]:
    assert r.tail is not None
    out: dict[str, list[float]] = {}
    for e in r.tail.of("key_painted"):
        if since <= e["t_post"] < until:
            out.setdefault(e["key"], []).append(e["t"] - e["t_post"])
    return out


def lines(r: dict[str, Any]) -> list[str]:
    if "error" in r:
        return [f"[{r['scenario']}] FAILED: {r['error']}"]
    name, k, m = r["scenario"], r["keys"], r["keys_phase"]
    out = [f"[{name}] flood drawn after {r['startup_to_flood_drawn_s']} s ({r['agents_drawn']:,} agents)"]
    for kind, d in k["by_kind_ms"].items():
        out.append(f"[{name}] key -> painted frame, {kind}: {fmt(d)}")
    out.append(f"[{name}] presses over 200 ms: {r['over_200ms']}; never painted: {k['never_painted']}")
    out.append(f"[{name}] stale: {r['stale']}")
    out.append(f"[{name}] costtop CPU {m['costtop_cpu_percent']} %, RSS {m['costtop_rss_mb']} MB, peak "
               f"{m['costtop_rss_mb_peak_hwm']} MB; snapshot build max {r['snapshot_build_ms_max']} ms, "
               f"draw max {r['draw_ms_max']} ms; garbage collections over 5 ms: {r.get('gc_pauses_over_5ms')}")
    out.append(f"[{name}] quit: {r['quit']}")
    return out


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agents", type=int, default=100_000)
    parser.add_argument("--switches", type=int, default=50_000)
    parser.add_argument("--million", action="store_true", help="also 1,000,000 agents")
    parser.add_argument("--only", choices=("agents", "switches", "million"), nargs="+")
    parser.add_argument("--rate", type=float, default=2000)
    parser.add_argument("--costtop-timeout", type=float, help="costtop's query timeout (default its own, 3 s)")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--key-timeout", type=float, default=30)
    parser.add_argument("--start-timeout", type=float, default=600)
    parser.add_argument("--no-freeze", action="store_true", help="import costtop from src/ as it is")
    parser.add_argument("--keep-logs", type=Path)
    parser.add_argument("--out", type=Path)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return frozen.run("benchmarks.floods", args, _main)


def _main(args: argparse.Namespace, source: dict[str, Any]) -> int:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    logs = args.keep_logs or Path(tempfile.mkdtemp(prefix="costtop-floods-logs-"))
    plan = [("agents", {"agents": args.agents}), ("switches", {"switches": args.switches})]
    if args.million:
        plan.append(("million", {"agents": 1_000_000}))
    if args.only:
        plan = [p for p in plan if p[0] in args.only] + (
            [("million", {"agents": 1_000_000})] if "million" in args.only and not args.million else [])
    results = []
    try:
        for name, sizes in plan:
            try:
                results.append(scenario(name, args, logs, **sizes))
            except RuntimeError as exc:
                results.append({"scenario": name, "error": str(exc)})
            print("\n".join(lines(results[-1])), flush=True)
    finally:
        if args.keep_logs is None:
            shutil.rmtree(logs, ignore_errors=True)
    print("\n== results ==")
    for r in results:
        print("\n".join(lines(r)))
    out = args.out or RESULTS / f"floods-{stamp}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "timestamp": stamp, "command": " ".join(sys.argv),
        "machine": {"cores": os.cpu_count(), "python": platform.python_version(), "textual": textual.__version__,
                    "platform": platform.platform()},
        "source": source, "results": results}, indent=2) + "\n", encoding="utf-8")
    print(f"\nJSON: {out}")
    return 0 if all("error" not in r for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
