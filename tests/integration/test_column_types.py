"""Column types that differ from the contract, against a real PostgreSQL: each works through the real
readers, or is refused at start in one line; the created_at and agent indexes stay in use (EXPLAIN).

Each test makes its own `tool_calls` with the types under test, and the contract's two indexes.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import asyncpg
import pytest

from appkit import fresh_snapshot, screen_text, select_agent, wait_for_data, wait_until
from costtop.config import Settings
from costtop.engine.engine import Engine
from costtop.engine.snapshot import SortKey
from costtop.gateway import Call, Gateway
from costtop.session import Session
from costtop.sources.errors import SourceError, WrongColumnType
from costtop.sources.feed import LiveFeed
from costtop.sources.history import daily_spend
from costtop.sources.postgres import PostgresReader
from costtop.sources.records import RedisState, SwitchChange
from costtop.sources.traces import agent_calls, agent_models, agent_traces, trace_steps
from costtop.sources.writer import SwitchWriter
from costtop.ui.app import CosttopApp
from costtop.ui.screens.drill_down import AgentScreen
from costtop.ui.screens.switch_dialog import SwitchDialog
from costtop.ui.widgets.usage_tables import NO_NAME

NO_REDIS = RedisState(switches=(), budgets={}, global_day_budget=None, global_month_budget=None)


def table_ddl(created_at: str = "timestamptz", agent_id: str = "text", cost_usd: str = "numeric",
              latency_ms: str = "integer", id: str = "bigserial") -> list[str]:
    return [
        f"""CREATE TABLE tool_calls (
            id {id} PRIMARY KEY, created_at {created_at} NOT NULL, agent_id {agent_id},
            tool_name text NOT NULL, latency_ms {latency_ms}, provider text, model text,
            tokens_in integer, tokens_out integer, cached_tokens integer, cost_usd {cost_usd},
            status text, trace_id text)""",
        "CREATE INDEX tool_calls_created_at_idx ON tool_calls (created_at)",
        "CREATE INDEX tool_calls_agent_created_idx ON tool_calls (agent_id, created_at)",
    ]


async def make_table(url: str, **types: str) -> asyncpg.Connection:
    conn = await asyncpg.connect(url)
    for statement in table_ddl(**types):
        await conn.execute(statement)
    return conn


def stored_time(kind: str, at: datetime) -> object:
    """A time as a gateway with this column type stores it."""
    if kind == "timestamp":
        return at.astimezone(UTC).replace(tzinfo=None)
    if kind == "bigint":
        return int(at.timestamp())
    return at


async def put(conn: asyncpg.Connection, created_at: object, agent: object, cost: object, latency: object = 100,
              trace: str | None = None) -> None:
    await conn.execute(
        "INSERT INTO tool_calls (created_at, agent_id, tool_name, latency_ms, cost_usd, status, trace_id, tokens_in) "
        "VALUES ($1, $2, 'llm', $3, $4, 'success', $5, 10)", created_at, agent, latency, cost, trace)


def whole_second(at: datetime) -> datetime:
    return at.replace(microsecond=0)


async def reader_for(url: str) -> PostgresReader:
    reader = PostgresReader(Settings(database_url=url))
    await reader.connect()
    return reader


@pytest.mark.parametrize("kind", ["timestamp", "bigint"])
async def test_created_at_without_time_zone_or_as_epoch_seconds_reads_like_timestamptz(empty_db_url, kind) -> None:
    """A `timestamp` column holds UTC and an integer one epoch seconds: the sums are the same as with
    timestamptz, whatever the session's time zone (the server's here is set far from UTC), and every
    time comes back as an aware UTC datetime."""
    conn = await make_table(empty_db_url, created_at=kind)
    await conn.execute("ALTER DATABASE " + empty_db_url.rsplit("/", 1)[1] + " SET timezone TO 'Pacific/Kiritimati'")
    now = whole_second(datetime.now(UTC))
    day_start = now.replace(hour=0, minute=0, second=0)
    times = [now - timedelta(seconds=10), now - timedelta(minutes=3), now - timedelta(minutes=30)]
    if now - timedelta(hours=2) >= day_start:
        times.append(now - timedelta(hours=2))
    for i, at in enumerate(times):
        await put(conn, stored_time(kind, at), "alpha", Decimal("1.25") * (i + 1), trace="t1")
    await put(conn, stored_time(kind, day_start - timedelta(days=2, hours=1)), "alpha", Decimal("7"))
    reader = await reader_for(empty_db_url)
    try:
        engine = Engine(columns=reader.columns.present)  # type: ignore[union-attr]
        engine.load(await reader.baseline(now + timedelta(seconds=1)))
        later = now + timedelta(seconds=1)
        await put(conn, stored_time(kind, later), "alpha", Decimal("2"), trace="t1")
        rows = await reader.new_rows()
        assert [r.created_at for r in rows] == [later]
        assert rows[0].created_at.tzinfo is not None
        engine.ingest(rows)
        snap = engine.snapshot(later + timedelta(seconds=1), NO_REDIS)
        (agent,) = snap.agents
        assert agent.spend_today == sum(Decimal("1.25") * (i + 1) for i in range(len(times))) + 2
        assert agent.window_usd == Decimal("1.25") + Decimal("2.50") + 2
        # The drill-down and the week's history read the same times.
        (trace,) = await agent_traces(reader, "alpha", now - timedelta(hours=1))
        assert (trace.started, trace.ended) == (min(t for t in times if t >= now - timedelta(hours=1)), later)
        steps = await trace_steps(reader, "t1")
        assert steps[-1].created_at == later
        history = await daily_spend(reader, day_start.strftime("%Y-%m-%d"))
        assert history.sums == (("alpha", 4, Decimal("7")),)
    finally:
        await reader.close()
        await conn.close()


async def test_integer_agent_id_reads_as_text_and_the_drill_down_finds_it(empty_db_url) -> None:
    conn = await make_table(empty_db_url, agent_id="bigint")
    now = datetime.now(UTC)
    await put(conn, now - timedelta(seconds=5), 42, Decimal("1.5"), trace="t42")
    await put(conn, now - timedelta(seconds=4), 7, Decimal("0.5"))
    reader = await reader_for(empty_db_url)
    try:
        engine = Engine(columns=reader.columns.present)  # type: ignore[union-attr]
        engine.load(await reader.baseline(now))
        await put(conn, now - timedelta(seconds=1), 42, Decimal("2"))
        rows = await reader.new_rows()
        assert [r.agent_id for r in rows] == ["42"]
        engine.ingest(rows)
        snap = engine.snapshot(now + timedelta(seconds=1), NO_REDIS)
        assert {a.agent_id: a.spend_today for a in snap.agents} == {"42": Decimal("3.5"), "7": Decimal("0.5")}
        calls = await agent_calls(reader, "42")
        assert [c.cost_usd for c in calls] == [Decimal("2"), Decimal("1.5")]
        assert [t.trace_id for t in await agent_traces(reader, "42", now - timedelta(hours=1))] == ["t42"]
        assert [m.calls for m in await agent_models(reader, "42", now - timedelta(hours=1))] == [2]
    finally:
        await reader.close()
        await conn.close()


@pytest.mark.parametrize(("column", "kind", "needs"), [
    ("created_at", "text", "timestamptz, timestamp (UTC) or an integer epoch in seconds"),
    ("cost_usd", "jsonb", "a number (numeric, double precision, an integer) or text holding one"),
    ("agent_id", "boolean", "text, an integer or a uuid"),
    ("latency_ms", "interval", "an integer, numeric, double precision or text holding a number"),
])
async def test_a_type_costtop_cannot_read_is_refused_at_start_in_one_line(empty_db_url, column, kind, needs) -> None:
    conn = await make_table(empty_db_url, **{column: kind})
    await conn.close()
    reader = PostgresReader(Settings(database_url=empty_db_url))
    with pytest.raises(WrongColumnType) as caught:
        await reader.connect()
    assert str(caught.value) == f"tool_calls.{column} is {kind}; costtop needs {needs}"
    assert reader.pool is None


@pytest.mark.parametrize("column", ["cost_usd", "latency_ms"])
async def test_one_unreadable_text_number_is_left_out_and_counted_not_the_source(empty_db_url, column) -> None:
    """Text 'abc' in a text cost (or latency) column: the other rows read as before, that row's value
    is unknown, and the row is counted, at start-up and when it arrives later."""
    conn = await make_table(empty_db_url, **{column: "text"})
    now = datetime.now(UTC)
    good = {"cost_usd": ("1.25", "1e-2", " 3 "), "latency_ms": ("120", "80.6", "1e2")}[column]
    for i, value in enumerate(good):
        cost, latency = (value, 100) if column == "cost_usd" else (Decimal(1), value)
        await put(conn, now - timedelta(seconds=20 - i), "alpha", cost, latency)
    bad = ("abc", 100) if column == "cost_usd" else (Decimal(1), "abc")
    await put(conn, now - timedelta(seconds=10), "alpha", *bad)
    feed = LiveFeed(Settings(database_url=empty_db_url))
    try:
        await feed.connect_postgres()
        engine = Engine(columns=feed.postgres.columns.present)  # type: ignore[union-attr]
        engine.load(await feed.baseline(now))
        engine.complete(await feed.baseline_days())
        assert feed.postgres.left_out.count == 1
        assert feed.read_quality().unreadable == (f"1 row with an unreadable {column} (not a number): their calls "
                                                  "count, their values are left out")
        await put(conn, now, "alpha", *bad)
        rows = await feed.new_rows()
        assert len(rows) == 1
        if column == "cost_usd":  # a recorded cost that cannot be used: flagged, never a flat-rate call
            assert rows[0].cost_usd is not None and rows[0].cost_usd.is_nan()
        else:
            assert rows[0].latency_ms is None
        engine.ingest(rows)
        assert feed.postgres.left_out.count == 2
        snap = engine.snapshot(now + timedelta(seconds=1), NO_REDIS)
        (agent,) = snap.agents
        assert agent.calls_today == 5
        if column == "cost_usd":
            assert agent.spend_today == Decimal("4.26")
            assert agent.flat_calls_today == 0
            assert any("alpha" in line for line in snap.data_quality), snap.data_quality
        else:
            assert agent.p95_ms == 120
    finally:
        await feed.close()
        await conn.close()


async def test_null_agents_show_as_one_row_and_every_sort_works(empty_db_url) -> None:
    conn = await make_table(empty_db_url)
    now = datetime.now(UTC)
    await put(conn, now - timedelta(seconds=5), None, Decimal("9"))
    await put(conn, now - timedelta(seconds=4), "beta", Decimal("1"))
    reader = await reader_for(empty_db_url)
    try:
        engine = Engine(columns=reader.columns.present)  # type: ignore[union-attr]
        engine.load(await reader.baseline(now))
        await put(conn, now - timedelta(seconds=1), None, Decimal("1"))
        engine.ingest(await reader.new_rows())
        orders = {}
        for sort in SortKey:
            engine.sort_by(sort)
            orders[sort] = [a.agent_id for a in engine.snapshot(now + timedelta(seconds=1), NO_REDIS).agents]
        assert orders[SortKey.NAME] == ["beta", None]
        assert orders[SortKey.BURN] == [None, "beta"]
        spent = {a.agent_id: a.spend_today for a in engine.snapshot(now + timedelta(seconds=1), NO_REDIS).agents}
        assert spent == {None: Decimal("10"), "beta": Decimal("1")}
        assert [c.cost_usd for c in await agent_calls(reader, None)] == [Decimal("1"), Decimal("9")]  # type: ignore[arg-type]
    finally:
        await reader.close()
        await conn.close()


def index_names(plan: object) -> set[str]:
    """Every index a plan (EXPLAIN FORMAT JSON) reads."""
    found: set[str] = set()
    if isinstance(plan, dict):
        if "Index Name" in plan:
            found.add(plan["Index Name"])
        for value in plan.values():
            found |= index_names(value)
    elif isinstance(plan, list):
        for value in plan:
            found |= index_names(value)
    return found


@pytest.mark.parametrize("kind", ["timestamptz", "timestamp", "bigint"])
async def test_the_reads_use_the_created_at_index_whatever_its_type(empty_db_url, kind) -> None:
    """The window read at start-up, the live read and the drill-down, as the readers send them (a
    query logger on the reader's own connections), explained with their parameters. 20,000 rows over
    20 days, of which the reads want the last minutes: any plan that converts the column instead of
    the parameter reads them all. The agent id is an integer, so the drill-down's parameter is cast;
    the row id a uuid, so that the live read goes by created_at (not by id)."""
    conn = await make_table(empty_db_url, created_at=kind, agent_id="integer", id="uuid DEFAULT gen_random_uuid()")
    now = datetime.now(UTC)
    rows = [(stored_time(kind, now - timedelta(seconds=90 * i)), i % 50, "llm", 10) for i in range(20_000)]
    await conn.executemany(
        "INSERT INTO tool_calls (created_at, agent_id, tool_name, latency_ms) VALUES ($1, $2, $3, $4)", rows)
    await conn.execute("ANALYZE tool_calls")
    logged: list[tuple[str, tuple[object, ...]]] = []

    async def log_queries(c: asyncpg.Connection) -> None:
        c.add_query_logger(lambda q: logged.append((q.query, tuple(q.args))))

    reader = PostgresReader(Settings(database_url=empty_db_url))
    reader.pool = await asyncpg.create_pool(empty_db_url, min_size=1, max_size=2, init=log_queries)
    try:
        await reader.connect()
        await reader.start_baseline(now)
        window = next(q for q in logged if "GROUPING SETS ((agent), (provider))" in q[0])
        await reader.finish_baseline()
        await reader.new_rows()
        await agent_calls(reader, "7")
        live = next(q for q in reversed(logged) if "LIMIT 100000" in q[0])
        drill = next(q for q in reversed(logged) if "DESC LIMIT $2" in q[0])
        for query, args in (window, live):
            plan = json.loads(await conn.fetchval(f"EXPLAIN (FORMAT JSON) {query}", *args))
            assert "tool_calls_created_at_idx" in index_names(plan), (query, plan)
        plan = json.loads(await conn.fetchval(f"EXPLAIN (FORMAT JSON) {drill[0]}", *drill[1]))
        assert "tool_calls_agent_created_idx" in index_names(plan), (drill[0], plan)
    finally:
        await reader.close()
        await conn.close()


async def test_a_column_renamed_added_or_retyped_while_running_is_picked_up_without_a_restart(empty_db_url) -> None:
    """The live loop's path: a read fails (or the shape check notices) with one line, and the next
    baseline learns the columns again on the same reader."""
    conn = await make_table(empty_db_url)
    now = datetime.now(UTC)
    await put(conn, now - timedelta(seconds=5), "alpha", Decimal("1"))
    feed = LiveFeed(Settings(database_url=empty_db_url))
    try:
        assert "provider" in await feed.connect_postgres()
        await feed.baseline(now)
        await feed.baseline_days()
        await conn.execute("ALTER TABLE tool_calls RENAME COLUMN provider TO vendor")
        with pytest.raises(SourceError) as caught:
            await feed.new_rows()
        assert "\n" not in str(caught.value) and "reading its columns again" in str(caught.value)
        assert "provider" not in await feed.connect_postgres()
        await feed.baseline(now)
        await feed.baseline_days()
        # Retyped: a text cost column now, with a bad row in it.
        await conn.execute("ALTER TABLE tool_calls ALTER COLUMN cost_usd TYPE text")
        await conn.reload_schema_state()  # the test's own connection: its cached INSERT had a numeric $4
        await put(conn, now, "alpha", "abc")
        await conn.execute("ALTER TABLE tool_calls ADD COLUMN model_name text")
        feed.postgres._next_schema_check = float("-inf")  # the check is due (it runs every 30 s)
        with pytest.raises(SourceError, match="changed while costtop ran"):
            await feed.new_rows()
        await feed.connect_postgres()
        assert feed.postgres.types["cost_usd"].data_type == "text"
        await feed.baseline(now)
        await feed.baseline_days()
        assert feed.postgres.left_out.count == 1
    finally:
        await feed.close()
        await conn.close()


async def test_the_app_shows_calls_without_an_agent_as_none_and_refuses_to_kill_them(pg, redis, db_url,
                                                                                      redis_url) -> None:
    """The real app on real servers: a NULL agent_id is the row `(none)`, every sort order works with
    it, its drill-down reads its calls, and `k` on it writes nothing and says why in one line."""
    await pg.execute("ALTER TABLE tool_calls ALTER COLUMN agent_id DROP NOT NULL")
    gw = Gateway(redis, pg)
    await gw.record([Call("alpha", "llm", 100, cost_usd=Decimal("0.5"))])
    await pg.execute("INSERT INTO tool_calls (agent_id, tool_name, latency_ms, cost_usd) VALUES (NULL, 'llm', 5, 3)")
    settings = Settings(redis_url=redis_url, database_url=db_url, refresh=0.2)
    app = CosttopApp(settings, Session(settings, LiveFeed(settings)))
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_for_data(pilot)
        await wait_until(pilot, lambda: app.snapshot is not None and len(app.snapshot.agents) == 2)
        assert "(none)" in screen_text(app)
        for _ in SortKey:
            await pilot.press("s")
            await pilot.pause()
            await fresh_snapshot(pilot)
        assert "(none)" in screen_text(app)
        await select_agent(pilot, NO_NAME)
        await pilot.press("k")
        await pilot.pause()
        assert not isinstance(app.screen, SwitchDialog)
        notes = [n.message for n in app._notifications]
        assert any("(none) is the calls without an agent_id" in n and "\n" not in n for n in notes), notes
        assert await redis.keys("kill:*") == []
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, AgentScreen))
        await wait_until(pilot, lambda: "$3.00" in screen_text(app) or "3.00" in screen_text(app))
        assert "Agent (none)" in screen_text(app)


async def test_the_writer_refuses_a_switch_for_calls_without_an_agent(pg, redis, db_url, redis_url) -> None:
    settings = Settings(redis_url=redis_url, database_url=db_url)
    result = await SwitchWriter(settings, redis, pg).apply(SwitchChange("set", "kill", "agent", None))
    assert (result.ok, result.message) == (False, "Refused: calls without an agent have no kill switch")
    assert await redis.keys("*") == []


async def test_a_latency_past_int32_in_the_first_window_is_unknown_not_a_crash(empty_db_url) -> None:
    """A text (or bigint) latency column can hold 5e9 ms: start-up's window leaves it out of p95 as
    `ingest` does, instead of overflowing the windows' int32 arrays."""
    conn = await make_table(empty_db_url, latency_ms="text")
    now = datetime.now(UTC)
    for latency in ("5e9", "-3", "250"):
        await put(conn, now - timedelta(seconds=5), "alpha", Decimal(1), latency)
    reader = await reader_for(empty_db_url)
    try:
        assert reader.columns is not None
        engine = Engine(columns=reader.columns.present)
        engine.load(await reader.baseline(now))
        (agent,) = engine.snapshot(now, NO_REDIS).agents
        assert agent.p95_ms == 250 and agent.calls_5m == 3
    finally:
        await reader.close()
        await conn.close()


async def test_costtop_snapshot_counts_unreadable_values(empty_db_url) -> None:
    from costtop.oneshot import read_once
    conn = await make_table(empty_db_url, cost_usd="text")
    now = datetime.now(UTC)
    await put(conn, now - timedelta(seconds=5), "alpha", "abc")
    await put(conn, now - timedelta(seconds=4), "alpha", "1.5")
    try:
        snap = await read_once(Settings(database_url=empty_db_url, redis_url="redis://127.0.0.1:1/0"), now)
        assert any("unreadable cost_usd" in line for line in snap.data_quality), snap.data_quality
        assert any("cost left out" in line and "alpha" in line for line in snap.data_quality), snap.data_quality
        (agent,) = snap.agents
        assert agent.spend_today == Decimal("1.5") and agent.flat_calls_today == 0
    finally:
        await conn.close()
