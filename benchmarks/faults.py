"""How fast costtop notices a dead or frozen source, and how fast it is whole again.

    python -m benchmarks.faults [--runs 5]

Real servers of its own and costtop headless in this process (Textual's test driver): for each run,
Postgres SIGKILLed, then Redis SIGKILLed, then Postgres frozen (SIGSTOP); each time the seconds from
the fault to the app's first failed read, and from that read to a STALE badge on the screen; then the
server back, and the seconds until the screen shows the exact totals again. Timeouts at costtop's
default (3 s) unless --timeout says otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import asyncpg
from redis.asyncio import Redis

from costtop.config import Settings, TableNames
from costtop.demo.servers import ServerPair
from costtop.gateway import Call, Gateway
from costtop.session import Session
from costtop.sources.feed import LiveFeed
from costtop.sources.schema import init_db
from costtop.ui.app import CosttopApp


def screen(app: CosttopApp) -> str:
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


async def until(condition: Callable[[], bool], timeout: float = 120, what: str = "") -> float:
    start = time.perf_counter()
    while not condition():
        if time.perf_counter() - start > timeout:
            raise SystemExit(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)
    return time.perf_counter()


async def record(pair: ServerPair, cost: str) -> None:
    redis = Redis.from_url(pair.redis.url)
    pool = await asyncpg.create_pool(pair.postgres.url, min_size=1, max_size=1)
    try:
        await Gateway(redis, pool).record([Call("a", "llm", 100, cost_usd=Decimal(cost), created_at=datetime.now(UTC))])
        await pool.execute("CHECKPOINT")
    finally:
        await pool.close()
        await redis.aclose()


async def run(runs: int, timeout: float) -> dict[str, object]:
    pair = ServerPair.start(prefix="costtop-faults-bench-")
    figures: dict[str, list[float]] = {}
    try:
        conn = await asyncpg.connect(pair.postgres.url)
        await init_db(conn, TableNames())
        await conn.close()
        await record(pair, "1")
        settings = Settings(redis_url=pair.redis.url, database_url=pair.postgres.url, timeout_seconds=timeout)
        app = CosttopApp(settings, Session(settings, LiveFeed(settings)))
        async with app.run_test(size=(160, 50)):
            spent = Decimal(1)
            engine, status = app.session.engine, app.session.status
            await until(lambda: app.snapshot is not None and bool(app.snapshot.agents) and not engine.day_pending)
            for _ in range(runs):
                for name, server, how in (("postgres_kill", pair.postgres, "kill"), ("redis_kill", pair.redis, "kill"),
                                          ("postgres_freeze", pair.postgres, "stop")):
                    source = "Postgres" if server is pair.postgres else "Redis"
                    t0 = time.perf_counter()
                    if how == "kill":
                        await asyncio.to_thread(server.kill)
                    else:
                        pair.postgres.signal_all(signal.SIGSTOP)
                    failed = await until(lambda s=source: not status[s].connected, what=f"{name}: failed read")
                    stale = await until(lambda s=source: f"{s} STALE" in screen(app), what=f"{name}: badge")
                    if how == "kill":
                        await asyncio.to_thread(server.start)
                    else:
                        pair.postgres.signal_all(signal.SIGCONT)
                    back = time.perf_counter()
                    await record(pair, "1")
                    spent += 1
                    whole = await until(lambda s=source, want=spent: app.session.status[s].connected
                                        and f"{s} STALE" not in screen(app) and app.snapshot is not None
                                        and not app.session.engine.day_pending and bool(app.snapshot.agents)
                                        and app.snapshot.agents[0].spend_today == want, what=f"{name}: back")
                    figures.setdefault(f"{name}_to_failed_read_s", []).append(failed - t0)
                    figures.setdefault(f"{name}_failed_read_to_stale_badge_s", []).append(stale - failed)
                    figures.setdefault(f"{name}_back_to_exact_totals_s", []).append(whole - back)
    finally:
        pair.stop()
    return {key: {"median": round(statistics.median(v), 3), "max": round(max(v), 3), "n": len(v)}
            for key, v in figures.items()} | {"timeout_s": timeout}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--timeout", type=float, default=3.0)
    parser.add_argument("--out", type=Path, help="also write the JSON to this file")
    args = parser.parse_args()
    result = asyncio.run(run(args.runs, args.timeout))
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
