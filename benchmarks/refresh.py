"""One refresh, measured: the demo's write rate, and the time of each step of a refresh.

    python benchmarks/refresh.py [--seconds 30] [--rate 40]

Starts the real servers and the demo's simulated gateway, lets it write for a while, then runs the
app headless against them and reports: rows/s written, Postgres read time per refresh, engine time,
render time, and how long a switch set from outside takes to show on screen. The read, ingest and
snapshot steps run on a second session that is not started (the app's own session runs on its thread
meanwhile, and nothing but that thread touches its engine); the render step draws that snapshot with the
app's widgets. Not part of pytest.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
from redis.asyncio import Redis

from costtop.config import Settings
from costtop.demo.run import prepare, start_simulator, stop_process
from costtop.demo.servers import ServerPair
from costtop.engine.snapshot import AgentState
from costtop.session import Session
from costtop.sources.feed import LiveFeed
from costtop.ui.app import CosttopApp
from costtop.ui.screens.main import MainScreen


def ms(values: list[float]) -> str:
    values = sorted(values)
    return (f"median {statistics.median(values) * 1000:.2f} ms, p95 {values[int(0.95 * (len(values) - 1))] * 1000:.2f}"
            f" ms, max {values[-1] * 1000:.2f} ms (n={len(values)})")


def stats(values: list[float]) -> dict[str, float]:
    """The figures `ms` prints, for --out."""
    values = sorted(values)
    return {"median_ms": round(statistics.median(values) * 1000, 2),
            "p95_ms": round(values[int(0.95 * (len(values) - 1))] * 1000, 2), "max_ms": round(values[-1] * 1000, 2),
            "n": len(values)}


async def measure(settings: Settings, seconds: float) -> dict[str, Any]:
    conn = await asyncpg.connect(settings.database_url)
    first = await conn.fetchval("SELECT count(*) FROM tool_calls")
    t0 = time.monotonic()
    await asyncio.sleep(seconds)
    second = await conn.fetchval("SELECT count(*) FROM tool_calls")
    elapsed = time.monotonic() - t0
    total = second
    await conn.close()
    print(f"demo writes: {(second - first) / elapsed:.1f} rows/s over {elapsed:.0f} s ({total} rows in the table)")

    # The steps are timed on a second session of their own, never started: the app's session reads and
    # ingests on its own thread meanwhile, and its engine is touched only there. Same reader, same engine
    # code, same rows (both read everything committed since their baselines).
    steps = Session(settings, LiveFeed(settings))
    steps_feed, engine = steps.feed, steps.engine
    now = datetime.now(UTC)
    columns = await steps_feed.connect_postgres()
    engine.load(await steps_feed.baseline(now), columns, now)
    if engine.day_pending:
        engine.complete(await steps_feed.baseline_days())
    reads, ingests, snaps = [], [], []
    app = CosttopApp(settings, Session(settings, LiveFeed(settings)))
    async with app.run_test(size=(160, 50)) as pilot:
        while app.snapshot is None or not app.snapshot.agents:
            await pilot.pause(0.05)
        renders = []
        main = next(s for s in app.screen_stack if isinstance(s, MainScreen))
        for _ in range(30):
            start = time.perf_counter()
            rows = await steps_feed.new_rows()
            reads.append(time.perf_counter() - start)
            start = time.perf_counter()
            engine.ingest(rows)
            ingests.append(time.perf_counter() - start)
            start = time.perf_counter()
            snap = steps.build()  # what the session's thread does after each read
            snaps.append(time.perf_counter() - start)
            start = time.perf_counter()
            with app.batch_update():  # what the app's _show does on the UI loop
                main.show(snap, app.display)
            await pilot.pause()
            renders.append(time.perf_counter() - start)
            await asyncio.sleep(settings.refresh)
        await steps_feed.close()
        print(f"Postgres read per refresh ({settings.refresh:g} s of new rows): {ms(reads)}")
        print(f"engine ingest: {ms(ingests)}")
        print(f"engine snapshot (session.publish; on the session's thread in the app): {ms(snaps)}")
        print(f"render (widgets + one frame; on the UI loop in the app): {ms(renders)}")

        redis = Redis.from_url(settings.redis_url)
        agent = app.snapshot.agents[-1].agent_id
        latencies = []
        for i in range(10):
            start = time.perf_counter()
            await redis.set(f"kill:agent:{agent}", f"manual:bench:{i}")
            while not any(a.agent_id == agent and a.state is AgentState.KILLED for a in app.snapshot.agents):
                await pilot.pause(0.01)
            latencies.append(time.perf_counter() - start)
            await redis.delete(f"kill:agent:{agent}")
            while any(a.agent_id == agent and a.state is AgentState.KILLED for a in app.snapshot.agents):
                await pilot.pause(0.01)
        await redis.aclose()
        print(f"switch set by another client -> shown in the snapshot: {ms(latencies)}")
    return {"demo_rows_per_s": round((second - first) / elapsed, 1), "postgres_read": stats(reads),
            "engine_ingest": stats(ingests), "engine_snapshot": stats(snaps), "render": stats(renders),
            "switch_to_snapshot": stats(latencies)}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--rate", type=float, default=40)
    parser.add_argument("--out", type=Path, help="also write the figures as JSON to this file")
    args = parser.parse_args()
    pair = ServerPair.start(prefix="costtop-bench-")
    sim = None
    try:
        settings = Settings(redis_url=pair.redis.url, database_url=pair.postgres.url, refresh=1.0)
        asyncio.run(prepare(settings))
        sim = start_simulator(settings, args.rate, 5, pair.root / "sim.log")
        time.sleep(3)
        result = asyncio.run(measure(settings, args.seconds))
        if args.out:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(result, indent=2) + "\n")
    finally:
        stop_process(sim)
        pair.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
