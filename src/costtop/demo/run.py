"""`costtop demo`: real servers in a temporary directory, a simulated gateway, and the app.

Everything it starts it stops: on `q`, on Ctrl-C, on SIGTERM or SIGHUP (a dropped SSH session),
the simulator and both servers are stopped and the directory is removed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from types import FrameType

import asyncpg
from redis.asyncio import Redis

from costtop.config import Settings
from costtop.demo.servers import ServerError, ServerPair
from costtop.demo.simulator import AGENTS, INCIDENT_AGENT
from costtop.sources.schema import init_db

GLOBAL_DAY_BUDGET = Decimal("200")
GLOBAL_MONTH_BUDGET = Decimal("3000")


def agent_budgets() -> dict[str, Decimal]:
    """Daily budgets for the demo fleet; one agent has none, to show a disabled budget."""
    budgets: dict[str, Decimal] = {}
    for i, profile in enumerate(AGENTS):
        if i == len(AGENTS) - 1:
            continue
        budgets[profile.name] = Decimal("40") if profile.name == INCIDENT_AGENT else Decimal(5 + 5 * (i % 5))
    return budgets


async def prepare(settings: Settings) -> None:
    """Schema and budgets, as an operator would have set them up."""
    conn = await asyncpg.connect(settings.database_url, timeout=10)
    try:
        await init_db(conn, settings.tables)
    finally:
        await conn.close()
    redis = Redis.from_url(settings.redis_url, socket_timeout=5)
    try:
        prefix = settings.keys.budget
        pipe = redis.pipeline(transaction=False)
        for agent, budget in agent_budgets().items():
            pipe.set(f"{prefix}:{agent}", str(budget))
        pipe.set(f"{prefix}:global:day", str(GLOBAL_DAY_BUDGET))
        pipe.set(f"{prefix}:global:month", str(GLOBAL_MONTH_BUDGET))
        await pipe.execute()
    finally:
        await redis.aclose()


def start_simulator(settings: Settings, rate: float, incident_after: float, log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "costtop.demo.simulator", "--redis-url", settings.redis_url,
             "--database-url", settings.database_url, "--rate", str(rate), "--incident-after", str(incident_after)],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )


def stop_process(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def run_demo(settings: Settings, rate: float = 40.0, incident_after: float = 30.0) -> int:
    from costtop.sources.feed import LiveFeed
    from costtop.ui.app import CosttopApp

    print("costtop demo: starting Redis and PostgreSQL in a temporary directory…", file=sys.stderr, flush=True)
    try:
        pair = ServerPair.start(prefix="costtop-demo-")
    except (ServerError, OSError) as exc:
        print(f"costtop: demo servers could not start: {exc}", file=sys.stderr)
        return 2
    simulator: subprocess.Popen[bytes] | None = None
    previous: dict[int, object] = {}
    try:
        demo = settings.model_copy(update={"redis_url": pair.redis.url, "database_url": pair.postgres.url})
        asyncio.run(prepare(demo))
        simulator = start_simulator(demo, rate, incident_after, pair.root / "simulator.log")
        app = CosttopApp(demo, LiveFeed(demo))

        def leave(signum: int, frame: FrameType | None) -> None:
            app.exit()

        for sig in (signal.SIGTERM, signal.SIGHUP):
            previous[sig] = signal.signal(sig, leave)
        app.run()
    except (OSError, asyncpg.PostgresError) as exc:
        print(f"costtop: demo failed: {exc}", file=sys.stderr)
        return 2
    finally:
        for sig, handler in previous.items():
            with contextlib.suppress(TypeError, ValueError):
                signal.signal(sig, handler)  # type: ignore[arg-type]
        stop_process(simulator)
        pair.stop()
    if os.environ.get("COSTTOP_DEMO_QUIET") is None:
        print("costtop demo: servers stopped, temporary files removed.", file=sys.stderr)
    return 0
