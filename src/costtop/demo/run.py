"""`costtop demo`: real servers in a temporary directory, a simulated gateway, and the app.

Everything it starts it stops: on `q`, on Ctrl-C, on SIGTERM or SIGHUP (a dropped SSH session),
the simulator and both servers are stopped and the directory is removed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from types import FrameType

import asyncpg
from redis.asyncio import Redis

from costtop.config import Settings
from costtop.demo.servers import ServerError, ServerPair
from costtop.demo.simulator import AGENTS, INCIDENT_AGENT, PRICES, AgentProfile, Ids, task_calls
from costtop.gateway import Call, Gateway
from costtop.rollup.plan import floor
from costtop.rollup.schema import source_name, sources_table
from costtop.sources.schema import init_db, qident, qualified

PAST_DAYS = 7
INCIDENT_BUDGET = Decimal("40")  # the runaway agent's, small: its loop runs through it within the demo
BUDGET_HEADROOM = (Decimal("1.5"), Decimal("2"), Decimal("1.25"), Decimal("3"))  # times the usual day
FLAT_RATE_BUDGET = Decimal("50")  # agents on a flat-rate plan spend nothing per call


def usual_day(profile: AgentProfile, rate: float, rng: random.Random) -> Decimal:
    """What the agent spends in a day at the fleet's `rate` calls per second: its mean cost per call
    over 2,000 simulated calls, times its share of a day's calls."""
    ids, calls, spent = Ids("past0000"), 0, Decimal(0)
    while calls < 2000:
        for call in task_calls(profile, rng, ids):
            calls += 1
            spent += call.cost_usd or Decimal(0)
    share = profile.weight / sum(p.weight for p in AGENTS)
    return spent / calls * Decimal(str(rate * share * 86_400))


def usual_days(rate: float, seed: int = 7) -> dict[str, Decimal]:
    rng = random.Random(seed)
    return {profile.name: usual_day(profile, rate, rng) for profile in AGENTS}


def round_up(amount: Decimal, step: int) -> Decimal:
    return max(Decimal(step), (amount / step).to_integral_value(rounding="ROUND_CEILING") * step)


def agent_budgets(usual: dict[str, Decimal]) -> dict[str, Decimal]:
    """Daily budgets with headroom over each agent's usual day, as a team would set them, so that in
    the demo only the runaway agent runs out; the last agent has none, to show a disabled budget."""
    budgets: dict[str, Decimal] = {}
    for i, profile in enumerate(AGENTS[:-1]):
        if profile.name == INCIDENT_AGENT:
            budgets[profile.name] = INCIDENT_BUDGET
        elif usual[profile.name] <= 0:
            budgets[profile.name] = FLAT_RATE_BUDGET
        else:
            budgets[profile.name] = round_up(usual[profile.name] * BUDGET_HEADROOM[i % len(BUDGET_HEADROOM)], 50)
    return budgets


def day_budget(usual: dict[str, Decimal]) -> Decimal:
    """The fleet's day: its usual day and a quarter, in hundreds."""
    return round_up(sum(usual.values(), Decimal(0)) * Decimal("1.25"), 100)


def past_week(now: datetime, usual: dict[str, Decimal], seed: int = 7) -> list[tuple[object, ...]]:
    """The week before today as hourly rows per agent (its usual day, give or take 15 %), so the day
    anomaly has a history to judge by: the runaway agent's day soon looks unusual."""
    rng = random.Random(seed)
    today = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    rows: list[tuple[object, ...]] = []
    for profile in AGENTS:
        model = profile.models[0][0]
        share = usual[profile.name]
        for day in range(PAST_DAYS, 0, -1):
            hour_cost = share * Decimal(str(rng.uniform(0.85, 1.15))) / 24
            for hour in range(24):
                at = today - timedelta(days=day, hours=-hour, seconds=-rng.randrange(3600))
                provider = PRICES[model].provider
                cost = None if provider in profile.flat_rate else hour_cost.quantize(Decimal("0.000001"))
                rows.append((at, profile.name, "llm", rng.randrange(400, 4000), provider, model, cost, "success"))
    return rows


def month_budget(usual: dict[str, Decimal]) -> Decimal:
    """A month of the fleet's usual days, in thousands: the week already spent is a quarter of it."""
    return round_up(sum(usual.values(), Decimal(0)) * 31, 1000)


async def prepare(settings: Settings, rate: float = 40.0, rollup: bool = False) -> None:
    """Schema, budgets and a past week, as an operator's fleet would have them. With `rollup` (the demo:
    its gateway keeps costtop's rollup, gateway.py) the week was written by that gateway all along: its
    rows go in through it and its hours are summed up to this one, so that start-up reads buckets as
    it would in production. Without (the benchmarks, whose load generators write rows of their own
    and keep no rollup) the week is plain rows: a rollup claimed here would leave theirs out."""
    now = datetime.now(UTC)
    usual = usual_days(rate)
    week = past_week(now, usual)
    conn = await asyncpg.connect(settings.database_url, timeout=10)
    try:
        await init_db(conn, settings.tables)
        if rollup:
            await conn.execute(
                f"INSERT INTO {sources_table(settings.tables)} (name, kept_by, covered_from, hours_to) "
                "VALUES ($1, 'gateway', $2, $3) ON CONFLICT (name) DO NOTHING",
                source_name(settings.tables), min(row[0] for row in week), floor(now, "hour"))
        else:
            c, t = settings.tables.column, qualified(settings.tables, settings.tables.calls)
            columns = ", ".join(qident(c(n)) for n in ("created_at", "agent_id", "tool_name", "latency_ms",
                                                           "provider", "model", "cost_usd", "status"))
            await conn.executemany(f"INSERT INTO {t} ({columns}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)", week)
    finally:
        await conn.close()
    if rollup:
        pool = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=1, timeout=10)
        redis = Redis.from_url(settings.redis_url, socket_timeout=5)
        try:
            gateway = Gateway(redis, pool, keys=settings.keys, tables=settings.tables, rollup=True, timeout=30)
            await gateway.record([Call(agent, tool, latency, provider=provider, model=model, cost_usd=cost,
                                       status=status, created_at=at)
                                  for at, agent, tool, latency, provider, model, cost, status in week], counters=False)
        finally:
            await pool.close()
            await redis.aclose()
    redis = Redis.from_url(settings.redis_url, socket_timeout=5)
    try:
        prefix = settings.keys.budget
        pipe = redis.pipeline(transaction=False)
        for agent, budget in agent_budgets(usual).items():
            pipe.set(f"{prefix}:{agent}", str(budget))
        pipe.set(f"{prefix}:global:day", str(day_budget(usual)))
        pipe.set(f"{prefix}:global:month", str(month_budget(usual)))
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


def servers_line(redis_url: str, database_url: str) -> str:
    """Where the demo's servers listen, for other commands to read them while it runs: printed before
    the screen starts (so it stays in the terminal's scrollback after exit) and said on the screen."""
    return (f"costtop demo: Redis {redis_url}, PostgreSQL {database_url}\n"
            f"  e.g. costtop snapshot --redis-url {redis_url} --database-url {database_url}")


def run_demo(settings: Settings, rate: float = 40.0, incident_after: float = 30.0) -> int:
    from costtop.session import Session
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
        # The demo's audit rows, if Postgres ever refuses them, wait in its own directory and go with it.
        demo = settings.model_copy(update={"redis_url": pair.redis.url, "database_url": pair.postgres.url,
                                           "audit_spool": str(pair.root / "audit-pending.jsonl")})
        where = servers_line(pair.redis.url, pair.postgres.url)
        print(where, file=sys.stderr, flush=True)
        asyncio.run(prepare(demo, rate, rollup=True))
        simulator = start_simulator(demo, rate, incident_after, pair.root / "simulator.log")
        app = CosttopApp(demo, Session(demo, LiveFeed(demo)), greeting=where)

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
