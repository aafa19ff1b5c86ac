"""No number crashes or freezes the app (issue 13, point 3), against real Redis and PostgreSQL.

Budgets, counters and costs such as `1e999999`, `1e-999999`, `1e99999999`, NaN, Infinity and negative
values: each read as a figure within `numbers.MIN_USD`..`MAX_USD` or as unknown, shown as `?`, the app
still answering keys, `costtop snapshot` without a traceback. Unusable costs in Postgres are left out
and never taken for flat-rate calls; negative ones are summed as SQL sums them; both name their agents
in the snapshot's data-quality lines.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import asyncpg
import pytest
from redis.asyncio import Redis

from appkit import screen_text, wait_for_data, wait_until
from costtop.config import Settings, TableNames
from costtop.engine.engine import Engine
from costtop.engine.snapshot import BudgetState, Snapshot
from costtop.gateway import Call, Gateway
from costtop.money import usd
from costtop.oneshot import render
from costtop.session import Session
from costtop.sources.feed import LiveFeed
from costtop.sources.postgres import PostgresReader
from costtop.sources.records import Baseline, CallRecord, Unparsed
from costtop.sources.redis_state import RedisReader
from costtop.ui.app import CosttopApp
from costtop.ui.widgets.agent_table import AgentTable
from costtop.ui.widgets.alert_panel import alerts_text
from costtop.ui.widgets.summary import summary_text

# Each hostile value, and the budget it must read as: a Decimal, or None for unknown (`?`).
HOSTILE: dict[str, Decimal | None] = {
    "1e999999": None, "1e-999999": None, "1e5000": None, "1e99999999": None, "-1e999999": None,
    "NaN": None, "Infinity": None, "-Infinity": None, "sNaN": None, "0.1e400": None, "1e15": None,
    "99999999999999999999999999999": None, "1e-30": None, "1_000": None, "0x10": None,
    "-5": Decimal(-5), "-0": Decimal(0), " 12 ": Decimal(12), "1e-18": Decimal("1e-18"),
    "999999999999999.99": Decimal("999999999999999.99"),
}


def today() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d")


async def set_everywhere(redis: Redis, value: str, agent: str = "alpha") -> None:
    await redis.set(f"budget:{agent}", value)
    await redis.set("budget:global:day", value)
    await redis.set("budget:global:month", value)
    await redis.set(f"spent:{agent}:{today()}", value)
    await redis.set(f"calls:{today()}", value)


@pytest.mark.parametrize("raw", list(HOSTILE))
async def test_redis_budgets_and_counters_are_figures_in_range_or_unknown(redis, redis_url, raw: str) -> None:
    await set_everywhere(redis, raw)
    reader = RedisReader(Settings(redis_url=redis_url))
    try:
        state = await reader.read()
        counters = await reader.read_counters(today())
    finally:
        await reader.close()
    expected = HOSTILE[raw]
    for got in (state.budgets["alpha"], state.global_day_budget, state.global_month_budget, counters.spent["alpha"]):
        if expected is None:
            assert isinstance(got, Unparsed), f"{raw!r} read as {got!r}"
        else:
            assert got == expected and isinstance(got, Decimal)
    assert isinstance(counters.calls, Unparsed) or counters.calls in (0, 12)

    # Through the engine and every text that shows a budget: `?` for unknown, never a crash.
    engine = Engine(columns=("agent_id", "tool_name", "latency_ms", "created_at", "cost_usd"))
    now = datetime.now(UTC)
    engine.load(Baseline(today(), (), Decimal(0), today()[:7], (), ()))
    engine.ingest([CallRecord(1, now - timedelta(seconds=5), "alpha", "llm", 100, cost_usd=Decimal("2"))])
    engine.note_counters(counters)
    snap = engine.snapshot(now, state)
    agent = snap.agents[0]
    if expected is None:
        assert agent.budget.state is BudgetState.UNKNOWN and snap.header.day_budget.state is BudgetState.UNKNOWN
        assert snap.header.month_budget.state is BudgetState.UNKNOWN
        assert snap.reconciliation is not None and snap.reconciliation.agents[0].flagged
    elif expected <= 0:  # the documented meaning of a zero or negative budget: none
        assert agent.budget.state is BudgetState.DISABLED
    else:
        assert agent.budget.limit == expected
    header = summary_text(snap, width=200).plain
    assert "Day budget ?" in header if expected is None else "Day budget ?" not in header
    alerts_text(snap)
    table = render(snap, "table")
    assert "Traceback" not in table
    budget_cell = table.splitlines()[-1 - len(snap.alerts) - len(snap.data_quality)].split()[-1]
    assert budget_cell == ("?" if expected is None else "none" if expected <= 0 else usd(expected))
    data = json.loads(render(snap, "json"))
    assert data["agents"][0]["budget_state"] == agent.budget.state.value
    render(snap, "csv")


def test_parsing_huge_exponents_takes_no_time_at_all() -> None:
    """In a child process with a deadline: a freeze is a failure, not a hung test run."""
    code = ("from costtop.sources.numbers import parse_count, parse_usd\n"
            "from costtop.engine.reconcile import reconcile\n"
            "from costtop.sources.records import GatewayCounters\n"
            "from decimal import Decimal\n"
            "for raw in ('1e99999999', '-1e99999999', '9' * 399 + 'e99999999', '1e-99999999'):\n"
            "    assert not isinstance(parse_usd(raw), Decimal), raw\n"
            "    assert not isinstance(parse_count(raw), int), raw\n"
            "    check = reconcile(GatewayCounters('d', {'a': Decimal(raw)}, Decimal(raw)), {}, 3)\n"
            "    assert check.gateway_calls is None and check.calls_flagged and check.agents[0].flagged\n"
            "print('ok')\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env={"PYTHONPATH": ":".join(sys.path)})
    assert done.returncode == 0 and done.stdout == "ok\n", done.stderr


def snapshot_cli(db_url: str, redis_url: str, fmt: str) -> subprocess.CompletedProcess[str]:
    """`costtop snapshot` as a user runs it, under a deadline that a freeze would pass."""
    return subprocess.run([sys.executable, "-m", "costtop", "snapshot", "--format", fmt, "--redis-url", redis_url,
                           "--database-url", db_url], capture_output=True, text=True, timeout=90,
                          env={"PYTHONPATH": ":".join(sys.path), "PATH": "/usr/bin:/bin"})


@pytest.mark.parametrize("raw", ["1e99999999", "1e999999", "1e-999999", "1e5000", "NaN", "-Infinity", "-5"])
async def test_costtop_snapshot_prints_unknown_not_a_traceback(pg, redis, db_url, redis_url, raw: str) -> None:
    await Gateway(redis, pg).record([Call("alpha", "llm", 100, cost_usd=Decimal("1.25"))])
    await set_everywhere(redis, raw)
    done = await asyncio.to_thread(snapshot_cli, db_url, redis_url, "json")
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    data = json.loads(done.stdout)
    alpha = next(a for a in data["agents"] if a["agent"] == "alpha")
    if raw == "-5":  # a negative budget is none, as documented
        assert alpha["budget_state"] == "disabled" and data["header"]["day_budget"] is None
    else:
        assert alpha["budget"] is None and alpha["budget_state"] == "unknown"
        assert data["header"]["day_budget"] is None and data["header"]["month_budget"] is None
    assert alpha["spend_today"] == "1.25"
    done = await asyncio.to_thread(snapshot_cli, db_url, redis_url, "table")
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    row = next(line for line in done.stdout.splitlines() if line.startswith("alpha "))
    assert row.split()[-1] == ("none" if raw == "-5" else "?")


async def test_the_app_shows_unknown_and_keeps_answering_keys(pg, redis, db_url, redis_url) -> None:
    """Hostile budgets and counters in real Redis, the real app: `?` on screen, and `s` still sorts."""
    gw = Gateway(redis, pg)
    await gw.record([Call(f"agent-{i}", "llm", 100, cost_usd=Decimal("0.25") * (i + 1)) for i in range(3)])
    await insert(pg, "tool_calls", [("nan-bot", "NaN")], datetime.now(UTC) - timedelta(seconds=5))
    await redis.set("budget:global:day", "1e999999")
    await redis.set("budget:global:month", "NaN")
    await redis.set("budget:agent-0", "1e-999999")
    await redis.set("budget:agent-1", "1e99999999")
    await redis.set(f"spent:agent-2:{today()}", "1e5000")
    await redis.set(f"calls:{today()}", "1e5000")
    settings = Settings(redis_url=redis_url, database_url=db_url, refresh=0.2)
    app = CosttopApp(settings, Session(settings, LiveFeed(settings)))
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_for_data(pilot)
        snap = app.snapshot
        assert snap is not None
        budgets = {a.agent_id: a.budget.state for a in snap.agents}
        assert budgets["agent-0"] is BudgetState.UNKNOWN and budgets["agent-1"] is BudgetState.UNKNOWN
        text = screen_text(app)
        assert "Day budget ?" in text and "Month budget ?" in text
        # The data-quality line names the agent whose cost was left out, on the main screen.
        assert any("left out" in line and "nan-bot" in line for line in text.splitlines())
        table = app.screen.query_one(AgentTable)
        assert table.is_mounted
        before = app.session.engine.sort
        await pilot.press("s")
        await wait_until(pilot, lambda: app.session.engine.sort is not before)
        assert app.is_running


COSTS = [("nan-bot", "NaN"), ("inf-bot", "Infinity"), ("ninf-bot", "-Infinity"), ("huge-bot", "1e20"),
         ("tiny-bot", "1e-30"), ("neg-bot", "-2.5")]


async def insert(pool: asyncpg.Pool, table: str, rows: list[tuple[str, str | None]], at: datetime) -> None:
    await pool.executemany(
        f"INSERT INTO {table} (agent_id, tool_name, latency_ms, created_at, cost_usd, tokens_in, tokens_out, "
        "cached_tokens) VALUES ($1, 'llm', 100, $2, $3::text::numeric, 10, 5, 0)",
        [(agent, at, cost) for agent, cost in rows])


def check_costs(snap: Snapshot) -> None:
    """Each agent has one bad row and one of $1: the bad one is not $0, not flat-rate, and named."""
    agents = {a.agent_id: a for a in snap.agents}
    for agent, raw in COSTS:
        row = agents[agent]
        assert row.calls_today == 2 and row.flat_calls_today == 0, (agent, row.flat_calls_today)
        if raw == "-2.5":
            assert row.spend_today == Decimal("-1.5")  # as SQL's sum() counts it
        else:
            assert row.spend_today == Decimal(1)  # left out, and said so below
    unusable = next(line for line in snap.data_quality if "left out" in line)
    negative = next(line for line in snap.data_quality if "negative" in line)
    assert all(agent in unusable for agent, raw in COSTS if raw != "-2.5") and "neg-bot" not in unusable
    assert "neg-bot" in negative and "nan-bot" not in negative
    assert snap.header.spend_today == Decimal(len(COSTS)) - Decimal("2.5")
    models = {m.model: m for m in snap.models}
    assert sum(m.flat_calls or 0 for m in models.values()) == 0
    assert "left out" in alerts_text(snap).plain
    assert "left out" in render(snap, "table") and json.loads(render(snap, "json"))["data_quality"] == list(
        snap.data_quality)


@pytest.mark.parametrize("column_type", ["numeric", "double precision"])
async def test_unusable_and_negative_costs_in_postgres_are_never_flat_rate_or_zero(
        pg, db_url, column_type: str) -> None:
    """At start-up (the baseline's sums) and live (rows read one by one), in both column types."""
    table = "tool_calls"
    if column_type != "numeric":
        table = "calls_float"
        await pg.execute(f"CREATE TABLE {table} (LIKE tool_calls INCLUDING ALL)")
        await pg.execute(f"ALTER TABLE {table} ALTER COLUMN cost_usd TYPE double precision")
    now = datetime.now(UTC).replace(microsecond=0)
    if (now - timedelta(seconds=20)).date() != now.date():
        pytest.skip("too close to midnight UTC")
    settings = Settings(database_url=db_url, tables=TableNames(calls=table))
    rows = [row for agent, raw in COSTS for row in ((agent, raw), (agent, "1"))]
    if column_type != "numeric":
        rows = [(a, c) for a, c in rows if c != "1e-30"] + [("tiny-bot", "1e-30")]
    reader = PostgresReader(settings)
    try:
        await reader.connect()
        assert reader.columns is not None
        live = Engine(columns=reader.columns.present)
        live.load(await reader.baseline(now))  # an empty table: every row below comes live
        await insert(pg, table, rows, now - timedelta(seconds=10))
        live_rows = await reader.new_rows()
        assert len(live_rows) == len(rows)
        assert all(r.cost_usd is not None for r in live_rows)  # a recorded cost is never a flat-rate NULL
        live.ingest(live_rows)
        check_costs(live.snapshot(now, None))

        engine = Engine(columns=reader.columns.present)
        engine.load(await reader.baseline(now))  # the same rows as the start-up's sums
        check_costs(engine.snapshot(now, None))
    finally:
        await reader.close()


