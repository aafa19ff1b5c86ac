"""PostgresReader against a real PostgreSQL: baseline + incremental reads equal SQL to the cent."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import asyncpg
import pytest

from costtop.config import Settings, TableNames
from costtop.demo.servers import free_port
from costtop.engine.engine import Engine
from costtop.gateway import Call, Gateway
from costtop.sources.errors import SourceError, TableMissing
from costtop.sources.history import daily_spend, daily_spend_sql
from costtop.sources.postgres import RAW_SECONDS, PostgresReader
from costtop.sources.records import RedisState
from costtop.sources.schema import init_db

NO_REDIS = RedisState(switches=(), budgets={}, global_day_budget=None, global_month_budget=None)
AGENTS = ("alpha", "beta", "gamma", "delta")
# A model can be served by two providers, and a row can lack both.
ROUTES = (("anthropic", "claude-sonnet"), ("openai", "gpt-4o"), ("azure", "gpt-4o"), ("openai", "gpt-4o-mini"),
          (None, None))
INSERT = (
    "INSERT INTO tool_calls (created_at, agent_id, tool_name, latency_ms, provider, model, tokens_in, "
    "tokens_out, cached_tokens, cost_usd, status) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
)


@dataclass(frozen=True)
class Row:
    created_at: datetime
    agent_id: str
    latency_ms: int
    cost_usd: Decimal | None
    status: str
    provider: str | None = "anthropic"
    model: str | None = "m1"
    tokens: tuple[int, int, int] = (100, 10, 5)

    def args(self) -> tuple[object, ...]:
        return (self.created_at, self.agent_id, "llm", self.latency_ms, self.provider, self.model, *self.tokens,
                self.cost_usd, self.status)


def make_row(rng: random.Random, at: datetime, agent: str | None = None) -> Row:
    cost = None if rng.random() < 0.15 else Decimal(rng.randrange(1, 5_000_000)) / Decimal(1_000_000)
    status = "error" if rng.random() < 0.2 else rng.choice(("success", "success", "timeout", "killed"))
    provider, model = rng.choice(ROUTES)
    tokens = (rng.randrange(0, 5000), rng.randrange(0, 800), rng.randrange(0, 100))
    agent = agent if agent is not None else rng.choice(AGENTS)  # '' is an agent id of its own
    return Row(at, agent, rng.randrange(5, 20_000), cost, status, provider, model, tokens)


async def insert(pool: asyncpg.Pool, rows: list[Row]) -> None:
    await pool.executemany(INSERT, [r.args() for r in rows])


def settings(url: str, **kw: object) -> Settings:
    return Settings(database_url=url, **kw)


def utc_now() -> datetime:
    return datetime.now(UTC)


def spread_rows(rng: random.Random, now: datetime) -> list[Row]:
    """Rows over the last 5 minutes, the last hour, today, yesterday, earlier this month and before,
    plus rows exactly on each window boundary."""
    now_s = int(now.timestamp())
    at = lambda seconds: datetime.fromtimestamp(seconds, UTC)  # noqa: E731
    day_start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    month_start = day_start.replace(day=1)
    times: list[datetime] = []
    times += [now - timedelta(seconds=rng.uniform(0.5, 299)) for _ in range(120)]  # 5-minute window
    times += [now - timedelta(seconds=rng.uniform(300, 3600)) for _ in range(120)]  # last hour
    times += [now - timedelta(seconds=rng.uniform(3600, 6 * 3600)) for _ in range(60)]  # earlier (today?)
    times += [day_start + timedelta(seconds=rng.uniform(0, max(1.0, (now - day_start).total_seconds() - 1)))
              for _ in range(60)]  # today
    times += [day_start - timedelta(seconds=rng.uniform(1, 86_399)) for _ in range(60)]  # yesterday
    times += [month_start + timedelta(seconds=rng.uniform(0, 20 * 86_400)) for _ in range(60)]  # this month
    times += [month_start - timedelta(seconds=rng.uniform(1, 40 * 86_400)) for _ in range(40)]  # before it
    # Exact boundaries: the 5-minute window, the hour window, the UTC day and month.
    times += [at(now_s - 299), at(now_s - 300), at(now_s - 299) - timedelta(microseconds=1)]
    minute0 = (now_s // 60 - 59) * 60
    times += [at(minute0), at(minute0) - timedelta(microseconds=1)]
    hour0 = (now_s // 3600 - 1) * 3600  # the hour before this one: the hour anomaly's
    times += [at(hour0), at(hour0) - timedelta(microseconds=1)]
    times += [day_start, day_start - timedelta(microseconds=1), month_start, month_start - timedelta(microseconds=1)]
    times += [now - timedelta(seconds=1)]  # the newest row
    return [make_row(rng, t) for t in times if t <= now]


async def sql_expected(pool: asyncpg.Pool, now: datetime) -> dict[str, object]:
    """The same figures computed by PostgreSQL alone, with `now` as the clock."""
    window = "created_at >= to_timestamp(floor(extract(epoch FROM $1::timestamptz)) - 299)"
    hour = "created_at >= to_timestamp((floor(extract(epoch FROM $1::timestamptz) / 60) - 59) * 60)"
    today = "created_at >= date_trunc('day', $1::timestamptz, 'UTC')"
    month = "created_at >= date_trunc('month', $1::timestamptz, 'UTC')"
    head = await pool.fetchrow(
        f"SELECT sum(cost_usd) FILTER (WHERE {today}) AS today, sum(cost_usd) FILTER (WHERE {month}) AS month, "
        f"count(*) FILTER (WHERE {hour}) AS hour_calls, "
        f"count(*) FILTER (WHERE {hour} AND status = 'error') AS hour_errors, "
        f"count(*) FILTER (WHERE {window}) AS window_calls, "
        f"percentile_disc(0.95) WITHIN GROUP (ORDER BY latency_ms) FILTER (WHERE {window}) AS p95 "
        "FROM tool_calls WHERE created_at <= $1", now)
    agents = await pool.fetch(
        f"SELECT agent_id, coalesce(sum(cost_usd) FILTER (WHERE {today}), 0) AS spend, "
        f"count(*) FILTER (WHERE {today}) AS calls, count(*) FILTER (WHERE {today} AND status = 'error') AS errors, "
        f"coalesce(sum(cost_usd) FILTER (WHERE {window}), 0) AS window_usd, "
        f"count(*) FILTER (WHERE {window}) AS window_calls, "
        f"count(*) FILTER (WHERE {window} AND status = 'error') AS window_errors, "
        f"count(*) FILTER (WHERE {today} AND cost_usd IS NULL) AS flat, "
        f"percentile_disc(0.95) WITHIN GROUP (ORDER BY latency_ms) FILTER (WHERE {window}) AS p95 "
        f"FROM tool_calls WHERE created_at <= $1 AND ({today} OR {window}) GROUP BY agent_id", now)
    window2 = "created_at >= to_timestamp(floor(extract(epoch FROM $1::timestamptz)) - 119)"
    providers = await pool.fetch(
        f"SELECT provider, coalesce(sum(cost_usd) FILTER (WHERE {today}), 0) AS spend, "
        f"count(*) FILTER (WHERE {today}) AS calls, "
        f"count(*) FILTER (WHERE {window2}) AS calls_2m, "
        f"count(*) FILTER (WHERE {window2} AND status = 'error') AS errors_2m, "
        f"count(*) FILTER (WHERE {window}) AS calls_5m, "
        f"count(*) FILTER (WHERE {window} AND status = 'error') AS errors_5m, "
        f"percentile_disc(0.95) WITHIN GROUP (ORDER BY latency_ms) FILTER (WHERE {window}) AS p95 "
        f"FROM tool_calls WHERE created_at <= $1 AND ({today} OR {window}) GROUP BY provider", now)
    models = await pool.fetch(
        f"SELECT model, coalesce(sum(cost_usd), 0) AS spend, count(*) AS calls, count(cost_usd) AS priced, "
        "sum(tokens_in) AS tin, sum(tokens_out) AS tout, sum(cached_tokens) AS cached, "
        "coalesce(sum(tokens_in) FILTER (WHERE cost_usd IS NULL), 0) AS flat_tin, "
        "coalesce(sum(tokens_out) FILTER (WHERE cost_usd IS NULL), 0) AS flat_tout, "
        "coalesce(sum(cached_tokens) FILTER (WHERE cost_usd IS NULL), 0) AS flat_cached "
        f"FROM tool_calls WHERE created_at <= $1 AND {today} GROUP BY model", now)
    minutes = await pool.fetch(
        "SELECT (extract(epoch FROM date_trunc('minute', created_at, 'UTC')) / 60)::bigint AS minute, "
        "sum(cost_usd) AS cost "
        f"FROM tool_calls WHERE created_at <= $1 AND {hour} GROUP BY 1", now)
    hours = await pool.fetch(
        "SELECT (extract(epoch FROM date_trunc('hour', created_at, 'UTC')) / 3600)::bigint AS hour, "
        "sum(cost_usd) AS cost "
        "FROM tool_calls WHERE created_at <= $1 AND created_at >= date_trunc('hour', $1::timestamptz, 'UTC') "
        "- interval '23 hours' GROUP BY 1", now)
    agent_hours = await pool.fetch(
        "SELECT agent_id, floor(extract(epoch FROM created_at) / 3600)::bigint - "
        "floor(extract(epoch FROM $1::timestamptz) / 3600)::bigint AS back, sum(cost_usd) AS cost "
        "FROM tool_calls WHERE created_at <= $1 AND created_at >= date_trunc('hour', $1::timestamptz, 'UTC') "
        "- interval '1 hour' GROUP BY 1, 2", now)
    return {"head": head, "agents": {r["agent_id"]: r for r in agents},
            "agent_hours": {(r["agent_id"], r["back"]): r["cost"] for r in agent_hours if r["cost"] is not None},
            "minutes": {r["minute"]: r["cost"] or 0 for r in minutes},
            "hours": {r["hour"]: r["cost"] or 0 for r in hours},
            "providers": {r["provider"]: r for r in providers}, "models": {r["model"]: r for r in models}}


async def assert_matches_sql(pool: asyncpg.Pool, engine: Engine, now: datetime) -> None:
    snap = engine.snapshot(now, NO_REDIS)
    want = await sql_expected(pool, now)
    head = want["head"]
    assert snap.header.spend_today == (head["today"] or 0)
    assert snap.header.spend_month == (head["month"] or 0)
    assert snap.header.error_rate_1h == head["hour_errors"] / head["hour_calls"]
    assert snap.header.p95_ms == head["p95"]
    assert snap.header.calls_per_min == Decimal(head["window_calls"]) / 5
    agents = want["agents"]
    assert {a.agent_id for a in snap.agents} == set(agents)
    for a in snap.agents:
        row = agents[a.agent_id]
        assert a.spend_today == row["spend"], a.agent_id
        assert a.calls_today == row["calls"], a.agent_id
        assert a.errors_today == row["errors"], a.agent_id
        assert a.window_usd == row["window_usd"], a.agent_id
        assert (a.calls_5m, a.errors_5m) == (row["window_calls"], row["window_errors"]), a.agent_id
        assert a.flat_calls_today == row["flat"], a.agent_id
        assert a.p95_ms == row["p95"], a.agent_id
    # The chart: the fleet's spend per minute over the hour and per hour over 24 hours.
    now_minute, now_hour = int(now.timestamp()) // 60, int(now.timestamp()) // 3600
    assert snap.header.per_minute == tuple(want["minutes"].get(m, 0) for m in range(now_minute - 59, now_minute + 1))
    assert snap.header.per_hour == tuple(want["hours"].get(h, 0) for h in range(now_hour - 23, now_hour + 1))
    # Each agent's spend this clock hour and the one before (the hour anomaly's figures).
    before, this_hour = engine.agent_hours.slots(now_hour)
    got_hours = {(a, -1): c for a, c in before.items()} | {(a, 0): c for a, c in this_hour.items()}
    assert got_hours == want["agent_hours"]
    providers = want["providers"]
    assert {p.provider for p in snap.providers} == set(providers)
    for p in snap.providers:
        row = providers[p.provider]
        assert (p.spend_today, p.calls_today) == (row["spend"], row["calls"]), p.provider
        assert (p.calls_2m, p.calls_5m, p.p95_ms) == (row["calls_2m"], row["calls_5m"], row["p95"]), p.provider
        assert p.error_rate_2m == (row["errors_2m"] / row["calls_2m"] if row["calls_2m"] else None), p.provider
        assert p.error_rate_5m == (row["errors_5m"] / row["calls_5m"] if row["calls_5m"] else None), p.provider
    models = want["models"]
    assert {m.model for m in snap.models} == set(models)
    for m in snap.models:
        row = models[m.model]
        assert (m.spend_today, m.calls_today, m.priced_calls) == (row["spend"], row["calls"], row["priced"]), m.model
        assert (m.tokens_in, m.tokens_out, m.cached_tokens) == (row["tin"], row["tout"], row["cached"]), m.model
        assert m.flat_calls == row["calls"] - row["priced"], m.model
        assert m.flat_tokens == (row["flat_tin"], row["flat_tout"], row["flat_cached"]), m.model


async def start(url: str, now: datetime, **kw: object) -> tuple[PostgresReader, Engine]:
    reader = PostgresReader(settings(url, **kw))
    await reader.connect()
    assert reader.columns is not None
    engine = Engine(columns=reader.columns.present)
    engine.load(await reader.baseline(now))
    return reader, engine


async def test_baseline_then_incremental_equals_sql_to_the_cent(pg, db_url, redis) -> None:
    rng = random.Random(20240601)
    now1 = utc_now()
    await insert(pg, spread_rows(rng, now1))
    reader, engine = await start(db_url, now1)
    try:
        await assert_matches_sql(pg, engine, now1)

        # The gateway keeps writing: new rows now, then a late commit 2 s before the newest row.
        gw = Gateway(redis, pg)
        t = utc_now()
        fresh = [make_row(rng, t - timedelta(milliseconds=rng.randrange(0, 900))) for _ in range(40)]
        await gw.record([Call(r.agent_id, "llm", r.latency_ms, cost_usd=r.cost_usd, status=r.status,
                              created_at=r.created_at, tokens_in=100, cached_tokens=5) for r in fresh])
        got = await reader.new_rows()
        assert len(got) == 40
        engine.ingest(got)
        newest = max(r.created_at for r in fresh)
        late = [make_row(rng, newest - timedelta(seconds=2)) for _ in range(5)]
        await insert(pg, late)
        got = await reader.new_rows()
        assert len(got) == 5
        engine.ingest(got)
        for _ in range(10):
            engine.ingest(await reader.new_rows())
        now2 = max(utc_now(), newest)
        await assert_matches_sql(pg, engine, now2)
    finally:
        await reader.close()


async def test_window_first_then_day_totals_equal_sql_with_writes_in_between(pg, db_url, redis) -> None:
    """Start-up in two halves from one snapshot: rows committed between them are read once, by
    new_rows, and the day's sums (read later) do not count them again."""
    rng = random.Random(77)
    now1 = utc_now()
    await insert(pg, spread_rows(rng, now1))
    reader = PostgresReader(settings(db_url))
    await reader.connect()
    assert reader.columns is not None
    engine = Engine(columns=reader.columns.present)
    try:
        first = await reader.start_baseline(now1)
        assert first.pending and first.days == () and first.window
        engine.load(first)
        pending = engine.snapshot(now1, NO_REDIS)
        # Unknown, not zero: the day's figures are not read yet; the window already is.
        assert pending.header.totals_pending and pending.header.spend_today is None
        assert pending.header.spend_month is None and pending.header.error_rate_1h is None
        assert all(a.spend_today is None and a.calls_today is None for a in pending.agents)
        want = await sql_expected(pg, now1)
        assert pending.header.calls_per_min == Decimal(want["head"]["window_calls"]) / 5

        t = utc_now()
        fresh = [make_row(rng, t - timedelta(milliseconds=rng.randrange(0, 900))) for _ in range(30)]
        await Gateway(redis, pg).record([Call(r.agent_id, "llm", r.latency_ms, cost_usd=r.cost_usd, status=r.status,
                                              created_at=r.created_at, tokens_in=100, cached_tokens=5)
                                         for r in fresh])
        got = await reader.new_rows()
        assert len(got) == 30
        engine.ingest(got)
        engine.complete(await reader.finish_baseline())  # its snapshot predates the 30 rows
        assert not engine.day_pending
        await assert_matches_sql(pg, engine, max(utc_now(), max(r.created_at for r in fresh)))
        with pytest.raises(SourceError, match="no start-up snapshot"):
            await reader.finish_baseline()  # the snapshot is closed once read
    finally:
        await reader.close()


async def test_sums_are_cut_in_utc_whatever_the_session_time_zone(pg, db_url) -> None:
    """A database whose sessions default to India time (+05:30): hours and days are still UTC."""
    await pg.execute(f"ALTER DATABASE {await pg.fetchval('SELECT quote_ident(current_database())')} "
                     "SET timezone TO 'Asia/Kolkata'")
    rng = random.Random(5)
    now = utc_now()
    await insert(pg, spread_rows(rng, now))
    reader, engine = await start(db_url, now)
    try:
        assert await reader.pool.fetchval("SHOW timezone") == "Asia/Kolkata"
        await assert_matches_sql(pg, engine, now)
    finally:
        await reader.close()


async def test_late_commit_inside_overlap_is_read_exactly_once(pg, db_url) -> None:
    now = utc_now()
    reader, engine = await start(db_url, now)
    try:
        assert await reader.new_rows() == []
        a = utc_now()
        await pg.execute(INSERT, *Row(a, "alpha", 100, Decimal("1.01"), "success").args())
        first = await reader.new_rows()
        assert [r.cost_usd for r in first] == [Decimal("1.01")]
        engine.ingest(first)
        # A transaction that began earlier commits now, with created_at 2 s before the newest row.
        await pg.execute(INSERT, *Row(a - timedelta(seconds=2), "alpha", 100, Decimal("0.02"), "error").args())
        second = await reader.new_rows()
        assert [(r.cost_usd, r.status) for r in second] == [(Decimal("0.02"), "error")]
        engine.ingest(second)
        for _ in range(5):
            assert await reader.new_rows() == []
        snap = engine.snapshot(max(utc_now(), a), NO_REDIS)
        (agent,) = snap.agents
        assert agent.spend_today == Decimal("1.03")
        assert agent.calls_today == 2 and agent.errors_today == 1
    finally:
        await reader.close()


async def test_many_reads_never_double_count(pg, db_url) -> None:
    rng = random.Random(7)
    reader, engine = await start(db_url, utc_now())
    try:
        inserted = 0
        for step in range(25):
            t = utc_now()
            batch = [make_row(rng, t - timedelta(seconds=rng.uniform(0, 4)), agent="alpha")
                     for _ in range(rng.randrange(0, 6))]
            await insert(pg, batch)
            inserted += len(batch)
            for _ in range(1 + step % 3):  # sometimes read twice with nothing new in between
                engine.ingest(await reader.new_rows())
        assert len(reader.watermark or ()) <= inserted
        now = utc_now()
        await assert_matches_sql(pg, engine, now)
        snap = engine.snapshot(now, NO_REDIS)
        total = await pg.fetchval("SELECT count(*) FROM tool_calls WHERE created_at >= date_trunc('day', $1, 'UTC')",
                                  now)
        assert sum(a.calls_today for a in snap.agents) == total
    finally:
        await reader.close()


async def test_quiet_period_rows_before_raw_horizon_not_double_counted(pg, db_url) -> None:
    now = utc_now()
    day_start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if (now - day_start).total_seconds() < RAW_SECONDS + 30:
        pytest.skip("too close to UTC midnight for a row that is today and before the raw horizon")
    # No call for the last 5 minutes except one, 2 s older than the window's horizon (now - RAW_SECONDS).
    raw_from = now.replace(microsecond=0) - timedelta(seconds=RAW_SECONDS)
    await pg.execute(INSERT, *Row(raw_from - timedelta(seconds=2), "alpha", 50, Decimal("2.50"), "success").args())
    reader, engine = await start(db_url, now)
    try:
        assert engine.snapshot(now, NO_REDIS).header.spend_today == Decimal("2.50")
        engine.ingest(await reader.new_rows())  # returns the already-summed row again
        assert engine.snapshot(now, NO_REDIS).header.spend_today == Decimal("2.50")
    finally:
        await reader.close()


async def test_nan_cost_in_baseline_drops_only_that_row(pg, db_url) -> None:
    now = utc_now()
    day_start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if (now - day_start).total_seconds() < RAW_SECONDS + 120:
        pytest.skip("too close to UTC midnight for a row that is today and before the raw horizon")
    old = now - timedelta(seconds=RAW_SECONDS + 60)
    await pg.execute(INSERT, *Row(old, "alpha", 50, Decimal("1.25"), "success").args())
    await pg.execute(INSERT, *Row(old, "alpha", 50, Decimal("NaN"), "success").args())
    # The same two rows read incrementally: the NaN one is dropped, the other counted.
    await pg.execute(INSERT, *Row(now - timedelta(seconds=5), "beta", 50, Decimal("1.25"), "success").args())
    await pg.execute(INSERT, *Row(now - timedelta(seconds=5), "beta", 50, Decimal("NaN"), "success").args())
    reader, engine = await start(db_url, now)
    try:
        spend = {a.agent_id: a.spend_today for a in engine.snapshot(now, NO_REDIS).agents}
        assert spend["beta"] == Decimal("1.25")
        assert spend["alpha"] == spend["beta"]
    finally:
        await reader.close()


async def test_table_with_only_required_columns(empty_db_url) -> None:
    pool = await asyncpg.create_pool(empty_db_url, min_size=1, max_size=2)
    try:
        await pool.execute("CREATE TABLE tool_calls (agent_id text NOT NULL, tool_name text NOT NULL, "
                           "latency_ms integer NOT NULL, created_at timestamptz NOT NULL)")
        minimal = "INSERT INTO tool_calls (agent_id, tool_name, latency_ms, created_at) VALUES ($1, $2, $3, $4)"
        now = utc_now()
        await pool.executemany(minimal, [
            ("alpha", "llm", 100, now - timedelta(seconds=10)),
            ("alpha", "llm", 300, now - timedelta(seconds=10)),  # identical values: ctid tells them apart
            ("beta", "search", 200, now - timedelta(seconds=30)),
            ("beta", "llm", 400, now - timedelta(days=40)),
        ])
        reader, engine = await start(empty_db_url, now)
        try:
            assert reader.columns is not None
            assert reader.columns.present == frozenset({"agent_id", "tool_name", "latency_ms", "created_at"})
            t = utc_now()
            await pool.executemany(minimal, [("alpha", "llm", 100, t), ("gamma", "llm", 150, t)])
            got = await reader.new_rows()
            assert len(got) == 2 and all(isinstance(r.key, str) and r.key.startswith("(") for r in got)
            engine.ingest(got)
            assert await reader.new_rows() == []
            await pool.execute(minimal, "gamma", "llm", 120, t - timedelta(seconds=2))  # late commit
            engine.ingest(await reader.new_rows())
            assert await reader.new_rows() == []
            snap = engine.snapshot(max(utc_now(), t), NO_REDIS)
            want = dict(await pool.fetch(
                "SELECT agent_id, count(*) FROM tool_calls WHERE created_at >= date_trunc('day', $1::timestamptz, "
                "'UTC') GROUP BY 1", snap.at))
            assert {a.agent_id: a.calls_today for a in snap.agents} == want
            assert snap.header.spend_today is None and snap.header.spend_month is None
            assert all(a.spend_today is None and a.window_usd is None for a in snap.agents)
            assert all(a.errors_today == 0 for a in snap.agents)
            assert snap.header.error_rate_1h is None
            assert snap.header.p95_ms == await pool.fetchval(
                "SELECT percentile_disc(0.95) WITHIN GROUP (ORDER BY latency_ms) FROM tool_calls "
                "WHERE created_at >= to_timestamp(floor(extract(epoch FROM $1::timestamptz)) - 299)", snap.at)
        finally:
            await reader.close()
    finally:
        await pool.close()


async def test_renamed_table_and_columns(empty_db_url) -> None:
    tables = TableNames(calls="Calls Log", schema="gw", columns={"created_at": "ts", "cost_usd": "spend"})
    conn = await asyncpg.connect(empty_db_url)
    try:
        await conn.execute("CREATE SCHEMA gw")
        await init_db(conn, tables)
        now = utc_now()
        await conn.execute('INSERT INTO gw."Calls Log" (ts, agent_id, tool_name, latency_ms, spend, status) '
                           "VALUES ($1, 'a', 'llm', 10, 0.5, 'error'), ($1, 'a', 'llm', 10, 0.25, 'success')",
                           now - timedelta(seconds=3))
        reader, engine = await start(empty_db_url, now, tables=tables)
        try:
            snap = engine.snapshot(now, NO_REDIS)
            assert snap.header.spend_today == Decimal("0.75")
            assert snap.agents[0].errors_today == 1
        finally:
            await reader.close()
    finally:
        await conn.close()


async def test_missing_table_raises_table_missing(empty_db_url) -> None:
    reader = PostgresReader(settings(empty_db_url))
    try:
        with pytest.raises(TableMissing) as info:
            await reader.connect()
        message = str(info.value)
        assert "costtop db init" in message and "tool_calls" in message
        assert "\n" not in message
    finally:
        await reader.close()


async def test_missing_required_column_raises_table_missing(empty_db_url) -> None:
    conn = await asyncpg.connect(empty_db_url)
    try:
        await conn.execute("CREATE TABLE tool_calls (agent_id text, tool_name text, created_at timestamptz)")
    finally:
        await conn.close()
    reader = PostgresReader(settings(empty_db_url))
    try:
        with pytest.raises(TableMissing, match="latency_ms"):
            await reader.connect()
    finally:
        await reader.close()


async def test_refused_connection_is_one_line_without_password() -> None:
    port = free_port()
    reader = PostgresReader(settings(f"postgresql://user:s3cret@127.0.0.1:{port}/x", timeout_seconds=2))
    with pytest.raises(SourceError) as info:
        await reader.connect()
    message = str(info.value)
    assert not isinstance(info.value, TableMissing)
    assert "s3cret" not in message
    assert "\n" not in message and "Traceback" not in message
    assert str(port) in message
    assert reader.pool is None


async def test_bad_password_message_has_no_password(servers) -> None:
    # Trust auth accepts any password, so ask for a database that does not exist instead.
    url = servers.postgres.url.replace("postgres@", "postgres:s3cret@").rsplit("/", 1)[0] + "/no_such_db"
    reader = PostgresReader(settings(url))
    with pytest.raises(SourceError) as info:
        await reader.connect()
    message = str(info.value)
    assert "s3cret" not in message and "\n" not in message
    assert "no_such_db" in message


async def test_the_weeks_daily_spend_equals_sql_in_utc_days(pg, db_url) -> None:
    """The day anomaly's history: spend per agent and UTC day over the 7 days before today, on a
    database whose sessions run in India time, through an index."""
    await pg.execute(f"ALTER DATABASE {await pg.fetchval('SELECT quote_ident(current_database())')} "
                     "SET timezone TO 'Asia/Kolkata'")
    rng = random.Random(11)
    now = utc_now()
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    first = today - timedelta(days=7)
    tick = timedelta(microseconds=1)
    times = [today - timedelta(seconds=rng.uniform(1, 9 * 86_400)) for _ in range(400)]
    times += [first, first - tick, today, today - tick, now - timedelta(seconds=1)]
    rows = [make_row(rng, t) for t in times]
    rows.append(Row(today - timedelta(days=2), "flat-only", 100, None, "success"))  # a day of $0, not a missing day
    await insert(pg, rows)
    reader = PostgresReader(settings(db_url))
    try:
        history = await daily_spend(reader, today.strftime("%Y-%m-%d"))
        want = await pg.fetch(
            "SELECT agent_id, floor(extract(epoch FROM created_at - $1::timestamptz) / 86400)::int AS day, "
            "coalesce(sum(cost_usd), 0) AS cost FROM tool_calls WHERE created_at >= $1 AND created_at < $2 "
            "GROUP BY 1, 2", first, today)
        assert (history.day, history.days) == (today.strftime("%Y-%m-%d"), 7)
        assert sorted(history.sums) == sorted((r["agent_id"], r["day"], r["cost"]) for r in want)
        assert ("flat-only", 5, Decimal(0)) in history.sums
        assert {d for _, d, _ in history.sums} == set(range(7))
        # The planner can answer it from the created_at index: no whole-table scan needed.
        async with reader.pool.acquire() as conn:
            await conn.execute("SET enable_seqscan = off")
            plan = "\n".join(r[0] for r in await conn.fetch(f"EXPLAIN {daily_spend_sql(reader)}", first, today))
        assert "Index" in plan and "Seq Scan" not in plan, plan
    finally:
        await reader.close()



async def test_a_dense_window_read_at_start_up_slides_exactly_as_sql_counts_it(pg, db_url) -> None:
    """Many calls per agent and second, latencies repeating (the multisets count them), and late rows
    committed into seconds the start-up read summed: as each of those seconds leaves the window, what
    it held comes out of the right agent and provider, to the cent and the millisecond."""
    rng = random.Random(303)
    now = utc_now().replace(microsecond=0) - timedelta(seconds=400)
    if (now + timedelta(seconds=302)).date() != now.date():
        pytest.skip("the window would cross midnight UTC: the day's figures would start over")
    pool_ms = (100, 250, 250, 900, 4_000, 17)
    rows = []
    for back in range(1, 301):
        for agent in AGENTS[:3]:
            for _ in range(rng.randrange(0, 6)):
                row = make_row(rng, now - timedelta(seconds=back) + timedelta(microseconds=rng.randrange(1, 999_999)),
                               agent)
                rows.append(Row(row.created_at, agent, rng.choice(pool_ms) if rng.random() < 0.7 else row.latency_ms,
                                row.cost_usd, row.status, row.provider, row.model, row.tokens))
    await insert(pg, rows)
    reader, engine = await start(db_url, now)
    try:
        await assert_matches_sql(pg, engine, now)
        late = [make_row(rng, now - timedelta(seconds=rng.uniform(1, 290))) for _ in range(25)]
        await insert(pg, late)
        engine.ingest(await reader.new_rows())
        for later in (0, 1, 7, 60, 61, 150, 240, 298, 299, 300):
            await assert_matches_sql(pg, engine, now + timedelta(seconds=later))
        assert engine.window.totals == {} and not engine.provider_window.totals
    finally:
        await reader.close()
