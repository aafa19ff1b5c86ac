"""Late rows and the clock, against a real PostgreSQL: every row committed within the lateness horizon
is counted once, live, with or without an integer id; later ones by the next resynchronisation, which
says how many; rows dated off the clock never move the day, the watermark or the windows."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import asyncpg
import pytest

from appkit import fresh_snapshot, screen_text, wait_until
from costtop.config import Settings
from costtop.engine.engine import Engine
from costtop.session import Session
from costtop.sources.dedup import Watermark
from costtop.sources.feed import LiveFeed
from costtop.sources.postgres import PostgresReader
from costtop.sources.schema import init_db
from costtop.ui.app import CosttopApp
from test_sources_postgres import NO_REDIS, Row, assert_matches_sql, insert, make_row, spread_rows, start, utc_now

NO_ID = "ALTER TABLE tool_calls DROP COLUMN id"


async def make_table(pool: asyncpg.Pool, with_id: bool | str) -> None:
    """True: the contract's bigserial id; False: no id at all (rows told apart by ctid); "uuid": an id
    of another type (a key, but not an order)."""
    if with_id is not True:
        await pool.execute(NO_ID)
    if with_id == "uuid":
        await pool.execute("ALTER TABLE tool_calls ADD COLUMN id uuid NOT NULL DEFAULT gen_random_uuid()")


async def read_all(reader: PostgresReader, engine: Engine, times: int = 3) -> int:
    """Read until nothing is new, with the late check due at every read."""
    taken = 0
    for _ in range(times):
        reader.late_check_seconds = 0
        rows = await reader.new_rows()
        taken += len(rows)
        engine.ingest(rows)
    return taken


@pytest.mark.parametrize("with_id", [True, False, "uuid"], ids=["integer id", "no id", "uuid id"])
async def test_rows_committed_late_within_the_horizon_are_counted_once_and_equal_sql(pg, db_url,
                                                                                        with_id: bool | str) -> None:
    """A batching gateway commits rows stamped up to 4 minutes earlier (LiteLLM: 10-60 s): each is
    counted live, exactly once, and every figure equals SQL's."""
    await make_table(pg, with_id)
    rng = random.Random(13)
    now = utc_now()
    await insert(pg, spread_rows(rng, now))
    reader, engine = await start(db_url, now)
    try:
        await read_all(reader, engine)
        for lateness in (12, 45, 130, 240):  # seconds between created_at and the commit
            t = utc_now()
            await insert(pg, [make_row(rng, t) for _ in range(5)])
            await read_all(reader, engine, times=1)
            late = [make_row(rng, t - timedelta(seconds=lateness, milliseconds=rng.randrange(999)))
                    for _ in range(7)]
            await insert(pg, late)
            await read_all(reader, engine)
        engine.ingest(await reader.new_rows())
        snap_time = utc_now()
        await assert_matches_sql(pg, engine, snap_time)
        quality = reader.read_quality()
        assert quality.late_rows >= 28 and quality.latest_lateness >= 240
        assert quality.missed_rows == 0
        # Nothing is counted twice however often it is read again.
        assert await read_all(reader, engine, times=4) == 0
    finally:
        await reader.close()


async def test_a_late_row_read_before_the_day_sums_arrive_is_not_counted_twice(pg, db_url) -> None:
    """The horizon's keys come with the slow half of the baseline: until then no late check runs, and
    after it a row taken meanwhile is still known."""
    await pg.execute(NO_ID)
    rng = random.Random(3)
    now = utc_now()
    await insert(pg, spread_rows(rng, now))
    reader = PostgresReader(start_settings(db_url))
    await reader.connect()
    assert reader.columns is not None
    engine = Engine(columns=reader.columns.present)
    try:
        engine.load(await reader.start_baseline(now))
        late = [make_row(rng, now - timedelta(seconds=100)) for _ in range(3)]
        await insert(pg, late)
        reader.late_check_seconds = 0
        assert await reader.new_rows() == []  # not comparable yet: no keys of the horizon
        engine.complete(await reader.finish_baseline())
        await read_all(reader, engine)
        await assert_matches_sql(pg, engine, utc_now())
    finally:
        await reader.close()


def start_settings(url: str, **kw: object) -> Settings:
    return Settings(database_url=url, **kw)


@pytest.mark.parametrize("with_id", [True, False], ids=["integer id", "no id"])
async def test_rows_later_than_the_horizon_are_counted_by_the_resync_which_says_how_many(pg, db_url,
                                                                                          with_id: bool) -> None:
    await make_table(pg, with_id)
    rng = random.Random(8)
    now = utc_now()
    await insert(pg, spread_rows(rng, now))
    reader, engine = await start(db_url, now, max_lateness=5)
    try:
        await read_all(reader, engine)
        # Committed two hours (and twenty minutes) after their time: far past a 5-second horizon.
        stale = [make_row(rng, now - timedelta(hours=2)) for _ in range(4)]
        stale += [make_row(rng, now - timedelta(minutes=20)) for _ in range(3)]
        await insert(pg, stale)
        if not with_id:  # by created_at, nothing reads that far back live
            assert await read_all(reader, engine) == 0
        else:  # by id they are new rows: read at once, and nothing is missed
            assert await read_all(reader, engine) == 7
        t = utc_now()
        engine.load(await reader.baseline(t))  # the resync: a new baseline
        engine.note_read_quality(reader.read_quality())
        await assert_matches_sql(pg, engine, t)
        quality = reader.read_quality()
        assert quality.missed_rows == (0 if with_id else 7)
        assert quality.resync_at == t
        lines = engine.snapshot(t, NO_REDIS).data_quality
        if not with_id:
            assert any(line.startswith("7 rows arrived later than the 5s horizon") for line in lines), lines
    finally:
        await reader.close()


async def test_an_id_whose_transaction_stays_open_is_read_when_it_commits(pg, db_url) -> None:
    rng = random.Random(4)
    reader, engine = await start(db_url, utc_now())
    conn = await asyncpg.connect(db_url)
    try:
        tr = conn.transaction()
        await tr.start()
        slow = make_row(rng, utc_now())
        await conn.execute(
            "INSERT INTO tool_calls (created_at, agent_id, tool_name, latency_ms, provider, model, tokens_in, "
            "tokens_out, cached_tokens, cost_usd, status) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            *slow.args())
        await insert(pg, [make_row(rng, utc_now()) for _ in range(6)])  # later ids commit first
        assert await read_all(reader, engine) == 6
        await tr.commit()
        assert await read_all(reader, engine) == 1
        await assert_matches_sql(pg, engine, utc_now())
    finally:
        await conn.close()
        await reader.close()


@pytest.mark.parametrize("with_id", [True, False], ids=["integer id", "no id"])
async def test_rows_dated_off_the_clock_move_no_day_watermark_or_window(pg, db_url, with_id: bool) -> None:
    """One row dated next year (and one in 1999) must not roll the day, blind the reads or sit in
    the burn rate; the screen counts them instead."""
    await make_table(pg, with_id)
    rng = random.Random(9)
    now = utc_now()
    await insert(pg, spread_rows(rng, now))
    await insert(pg, [Row(now + timedelta(days=400), "alpha", 100, Decimal("500.00"), "success"),
                      Row(now + timedelta(hours=3), "beta", 100, Decimal("70.00"), "success")])
    reader, engine = await start(db_url, now)
    try:
        engine.note_read_quality(reader.read_quality())
        snap = engine.snapshot(now, NO_REDIS)
        await assert_matches_sql(pg, engine, now)  # SQL's figures up to now: neither future row is in
        assert any(line.startswith("2 rows dated in the future") for line in snap.data_quality), snap.data_quality
        # Live: another future row and an ancient one, then ordinary rows: all ordinary ones are read.
        await insert(pg, [Row(now + timedelta(days=2), "gamma", 100, Decimal("900.00"), "success"),
                          Row(datetime(1999, 1, 1, tzinfo=UTC), "delta", 100, Decimal("3.00"), "success")])
        await read_all(reader, engine)
        t = utc_now()
        fresh = [make_row(rng, t) for _ in range(10)]
        await insert(pg, fresh)
        await read_all(reader, engine)
        assert engine.day == now.strftime("%Y-%m-%d") or engine.day == t.strftime("%Y-%m-%d")
        snap_time = utc_now()
        engine.note_read_quality(reader.read_quality())
        snap = engine.snapshot(snap_time, NO_REDIS)
        assert any(line.startswith("3 rows dated in the future") for line in snap.data_quality), snap.data_quality
        if with_id:  # read by id at once: the 1999 row is said, not counted
            assert any("dated before this month" in line for line in snap.data_quality), snap.data_quality
        await assert_matches_sql(pg, engine, snap_time)
        if not with_id:
            assert isinstance(reader.watermark, Watermark)
            assert reader.watermark.high <= utc_now() + timedelta(seconds=120)
    finally:
        await reader.close()


async def test_a_future_row_is_counted_when_its_time_comes(pg, db_url) -> None:
    """Held back, not lost: with the clock moved on past its created_at, the row is in the figures."""
    rng = random.Random(10)
    now = utc_now()
    await insert(pg, spread_rows(rng, now))
    ahead = now + timedelta(minutes=10)
    await insert(pg, [Row(ahead, "alpha", 100, Decimal("2.50"), "success")])
    clock = [now]
    reader = PostgresReader(start_settings(db_url), clock=lambda: clock[0])
    await reader.connect()
    assert reader.columns is not None
    engine = Engine(columns=reader.columns.present)
    try:
        engine.load(await reader.baseline(now))
        await read_all(reader, engine)
        alpha = {a.agent_id: a for a in engine.snapshot(now, NO_REDIS).agents}.get("alpha")
        before = alpha.spend_today if alpha is not None else Decimal(0)
        clock[0] = ahead + timedelta(seconds=1)
        got = await reader.new_rows()
        assert [r.cost_usd for r in got if r.created_at == ahead] == [Decimal("2.50")]
        engine.ingest(got)
        after = {a.agent_id: a for a in engine.snapshot(clock[0], NO_REDIS).agents}["alpha"].spend_today
        if ahead.date() == now.date():
            assert after == before + Decimal("2.50")
    finally:
        await reader.close()


async def test_r_resynchronises_and_the_screen_says_how_many_rows_came_too_late(pg, redis, db_url,
                                                                              redis_url) -> None:
    """In the app: rows committed far past the horizon are not on screen until `r`; then they are in
    the figures, and the alerts panel says how many there were."""
    await pg.execute(NO_ID)
    rng = random.Random(21)
    now = utc_now()
    await insert(pg, [make_row(rng, now - timedelta(seconds=i)) for i in range(30)])
    settings = Settings(database_url=db_url, redis_url=redis_url, max_lateness=5)
    app = CosttopApp(settings, Session(settings, LiveFeed(settings)))
    async with app.run_test(size=(160, 50)) as pilot:
        engine = app.session.engine
        await wait_until(pilot, lambda: not engine.day_pending and engine.today.calls == 30, timeout=20)
        calls, generation = app.session.engine.today.calls, app.session._generation
        await insert(pg, [make_row(rng, now - timedelta(hours=2)) for _ in range(6)])
        await pilot.pause(2.5)  # two live reads: nothing that old is read live
        assert app.session._generation == generation  # (no baseline taken again meanwhile, which would count them)
        assert app.session.engine.today.calls == calls
        await pilot.press("r")
        await wait_until(pilot, lambda: any("arrived later than" in line for line in app.snapshot.data_quality)
                         if app.snapshot is not None else False, timeout=20)
        assert app.session.engine.today.calls == await pg.fetchval(
            "SELECT count(*) FROM tool_calls WHERE created_at >= date_trunc('day', now(), 'UTC')")
        await fresh_snapshot(pilot)
        await pilot.pause()
        shown = screen_text(app)
        assert "6 rows arrived later than the 5s horizon" in shown
        assert f"▲ {len(app.snapshot.data_quality)} data note" in shown  # the header's count


async def test_timestamps_anywhere_on_the_calendar_neither_crash_nor_move_the_figures(db_url) -> None:
    """Hypothesis: created_at anywhere from year 1 to 9999, PostgreSQL's `infinity` and `-infinity`, and
    times a few seconds to years around now, at start-up and live, by id and by created_at: nothing
    raises, today's calls are SQL's `[midnight, now + skew)`, and the rest are counted as future rows
    or rows before the month."""
    from hypothesis import HealthCheck, given
    from hypothesis import settings as hsettings
    from hypothesis import strategies as st

    # A moment: a date anywhere, PostgreSQL's infinities, or seconds from the clock of the example.
    moments = st.one_of(
        st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)),
        st.integers(-10 * 365 * 86_400, 10 * 365 * 86_400),
        st.integers(-600, 600).filter(lambda s: not -302 <= s <= -298),  # not on the horizon's edge
        st.sampled_from(["infinity", "-infinity"]),
    )

    def text(moment: object, clock: datetime) -> str:
        if isinstance(moment, int):
            return (clock + timedelta(seconds=moment)).isoformat()
        return moment if isinstance(moment, str) else moment.isoformat()  # type: ignore[attr-defined]

    @hsettings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
    @given(before=st.lists(moments, max_size=6), live=st.lists(moments, max_size=6), with_id=st.booleans())
    def one(before: list[object], live: list[object], with_id: bool) -> None:
        asyncio.run(check(before, live, with_id))

    async def check(before: list[object], live: list[object], with_id: bool) -> None:
        conn = await asyncpg.connect(db_url)
        clock = utc_now()
        sql = ("INSERT INTO tool_calls (created_at, agent_id, tool_name, latency_ms, cost_usd) "
               "SELECT x::timestamptz, $2, 'llm', 5, 0.5 FROM unnest($1::text[]) AS x")
        try:
            await conn.execute("DROP TABLE IF EXISTS tool_calls")
            await init_db(conn, Settings().tables)
            if not with_id:
                await conn.execute(NO_ID)
            await conn.execute(sql, [text(m, clock) for m in before], "before")
            reader = PostgresReader(Settings(database_url=db_url), clock=lambda: clock)
            await reader.connect()
            assert reader.columns is not None
            engine = Engine(columns=reader.columns.present)
            try:
                engine.load(await reader.baseline(clock))
                await conn.execute(sql, [text(m, clock) for m in live], "live")
                reader.late_check_seconds = 0
                engine.ingest(await reader.new_rows())
                engine.note_read_quality(reader.read_quality())
                snap = engine.snapshot(clock, NO_REDIS)
            finally:
                await reader.close()
            day = clock.replace(hour=0, minute=0, second=0, microsecond=0)
            bound = clock + timedelta(seconds=120)
            # Rows committed later than the horizon after their created_at are read live by id only.
            today = await conn.fetchval(
                "SELECT count(*) FROM tool_calls WHERE created_at >= $1 AND created_at < least($2::timestamptz, "
                "$3::timestamptz) AND (agent_id = 'before' OR $4 OR created_at >= $5)",
                day, day + timedelta(days=1), bound, with_id, clock - timedelta(seconds=300))
            assert engine.today.calls == today
            future = await conn.fetchval("SELECT count(*) FROM tool_calls WHERE created_at >= $1", bound)
            said = [line for line in snap.data_quality if "dated in the future" in line]
            assert said == ([] if not future else [said[0]]) and (not future or said[0].startswith(f"{future} row"))
        finally:
            await conn.close()

    await asyncio.to_thread(one)


async def test_a_new_utc_day_reads_everything_again(pg, redis, db_url, redis_url) -> None:
    """At the day change the app takes a new baseline: yesterday's rows, late ones included, are in
    the month, and the new day starts from what SQL holds."""
    rng = random.Random(22)
    now = utc_now()
    await insert(pg, [make_row(rng, now - timedelta(seconds=i)) for i in range(20)])
    clock = [now]
    settings = Settings(database_url=db_url, redis_url=redis_url)
    app = CosttopApp(settings, Session(settings, LiveFeed(settings), clock=lambda: clock[0]))
    async with app.run_test(size=(120, 40)) as pilot:
        engine = app.session.engine
        await wait_until(pilot, lambda: not engine.day_pending and engine.today.calls == 20, timeout=20)
        generation = app.session._generation  # a baseline that failed under load is simply taken again
        late = [make_row(rng, now - timedelta(minutes=30)) for _ in range(4)]  # long past any horizon
        await insert(pg, late)
        clock[0] = now.replace(hour=0, minute=0, second=5, microsecond=0) + timedelta(days=1)
        await wait_until(pilot, lambda: app.session._generation > generation and not engine.day_pending, timeout=20)
        assert app.session.engine.day == clock[0].strftime("%Y-%m-%d")
        month = await pg.fetchval("SELECT sum(cost_usd) FROM tool_calls WHERE created_at >= date_trunc('month', $1::"
                                  "timestamptz, 'UTC') AND created_at < $1", clock[0])
        await fresh_snapshot(pilot)
        snap = app.snapshot
        assert snap is not None and snap.at == clock[0]
        assert snap.header.spend_month == (month or 0)  # on the last day of a month: the new month's $0
        assert snap.header.spend_today == 0


async def test_a_partitioned_table_without_an_id_tells_its_partitions_rows_apart(empty_db_url) -> None:
    """A ctid is unique only within one partition: rows at the same address in two partitions are two
    rows, live and when a late one is fetched by address."""
    pool = await asyncpg.create_pool(empty_db_url, min_size=1, max_size=2)
    try:
        await pool.execute("CREATE TABLE tool_calls (agent_id text NOT NULL, tool_name text NOT NULL, "
                           "latency_ms integer NOT NULL, created_at timestamptz NOT NULL, cost_usd numeric) "
                           "PARTITION BY LIST (agent_id)")
        for name in ("alpha", "beta"):
            await pool.execute(f"CREATE TABLE tool_calls_{name} PARTITION OF tool_calls FOR VALUES IN ('{name}')")
        await pool.execute("CREATE INDEX ON tool_calls (created_at)")
        sql = ("INSERT INTO tool_calls (agent_id, tool_name, latency_ms, created_at, cost_usd) "
               "VALUES ($1, 'llm', 5, $2, 1)")
        now = utc_now()
        reader, engine = await start(empty_db_url, now)
        try:
            t = utc_now()
            await pool.execute(sql, "alpha", t)
            await pool.execute(sql, "beta", t)  # the same ctid, (0,1), in the other partition
            await read_all(reader, engine)
            late = t - timedelta(seconds=60)
            await pool.execute(sql, "alpha", late)
            await pool.execute(sql, "beta", late)
            await read_all(reader, engine)
            snap = engine.snapshot(utc_now(), NO_REDIS)
            assert {a.agent_id: a.calls_today for a in snap.agents} == {"alpha": 2, "beta": 2}
        finally:
            await reader.close()
    finally:
        await pool.close()


async def test_a_row_dated_within_the_skew_does_not_hold_back_the_reads(pg, db_url) -> None:
    """A row a minute and a half ahead (within the 2-minute skew) is read, but the reads that follow still
    start at the clock: the rows written meanwhile come at the next refresh, not at the next late check."""
    await pg.execute(NO_ID)
    rng = random.Random(30)
    reader, _ = await start(db_url, utc_now())
    try:
        await insert(pg, [Row(utc_now() + timedelta(seconds=90), "alpha", 100, Decimal("1"), "success")])
        reader.late_check_seconds = float("inf")
        reader._next_check = float("inf")
        assert len(await reader.new_rows()) == 1
        await insert(pg, [make_row(rng, utc_now()) for _ in range(5)])
        assert len(await reader.new_rows()) == 5
    finally:
        await reader.close()


async def test_two_resyncs_in_a_row_report_no_missed_rows(pg, db_url) -> None:
    """A baseline replaced before its sums arrive keeps the rows taken meanwhile for the comparison."""
    await pg.execute(NO_ID)
    rng = random.Random(31)
    now = utc_now()
    await insert(pg, spread_rows(rng, now))
    reader, engine = await start(db_url, now, max_lateness=5)
    try:
        await insert(pg, [make_row(rng, utc_now()) for _ in range(9)])
        await read_all(reader, engine)
        await reader.start_baseline(utc_now())  # r, then r again before the sums come
        await insert(pg, [make_row(rng, utc_now()) for _ in range(4)])
        await read_all(reader, engine)
        t = utc_now() + timedelta(minutes=2)  # the rows above are now past the horizon
        engine.load(await reader.baseline(t))
        assert reader.read_quality().missed_rows == 0
    finally:
        await reader.close()


async def test_more_rows_in_the_overlap_than_one_read_takes_do_not_stall_the_reads(pg, db_url,
                                                                                  monkeypatch) -> None:
    """A batch of rows all stamped with one now(), more than a read takes: the reads page through it
    by (created_at, key) and go on to the rows after it."""
    from costtop.sources import postgres
    monkeypatch.setattr(postgres, "READ_BATCH", 50)  # 100,000 in real life
    await pg.execute(NO_ID)
    rng = random.Random(32)
    reader, engine = await start(db_url, utc_now())
    try:
        await pg.execute("INSERT INTO tool_calls (created_at, agent_id, tool_name, latency_ms, cost_usd, status, "
                         "provider, model, tokens_in, tokens_out, cached_tokens) "
                         "SELECT now(), 'bulk', 'llm', 5, 0.01, 'success', 'p', 'm1', 1, 1, 0 "
                         "FROM generate_series(1, 120)")
        await insert(pg, [make_row(rng, utc_now()) for _ in range(7)])
        await read_all(reader, engine, times=5)
        await assert_matches_sql(pg, engine, utc_now())
        assert await read_all(reader, engine, times=2) == 0
    finally:
        await reader.close()


async def test_an_id_in_flight_far_below_the_newest_at_start_is_still_read(pg, db_url, monkeypatch) -> None:
    """A transaction open since before thousands of later ids committed (more than the start's quick look
    checks): its row is read when it commits, since it is within the horizon."""
    from costtop.sources import postgres
    monkeypatch.setattr(postgres, "GAP_LOOKBACK", 100)  # 10,000 in real life
    conn = await asyncpg.connect(db_url)
    try:
        tr = conn.transaction()
        await tr.start()
        await conn.execute("INSERT INTO tool_calls (created_at, agent_id, tool_name, latency_ms, cost_usd) "
                           "VALUES (now(), 'slow', 'llm', 5, 1.5)")
        await pg.execute("INSERT INTO tool_calls (created_at, agent_id, tool_name, latency_ms, cost_usd) "
                         "SELECT now(), 'fast', 'llm', 5, 0.01 FROM generate_series(1, 300)")
        reader, _ = await start(db_url, utc_now())
        try:
            await tr.commit()
            taken = []
            for _ in range(3):
                taken += await reader.new_rows()
            assert [r.agent_id for r in taken] == ["slow"]
        finally:
            await reader.close()
    finally:
        await conn.close()


async def test_a_row_of_next_year_is_not_the_agents_latest_call_in_the_drill_down(pg, db_url) -> None:
    from costtop.sources.traces import agent_calls, agent_traces
    now = utc_now()
    await pg.execute("INSERT INTO tool_calls (created_at, agent_id, tool_name, latency_ms, trace_id) VALUES "
                     "($1, 'a', 'llm', 5, 'now'), ($2, 'a', 'llm', 5, 'next-year')",
                     now - timedelta(seconds=5), now + timedelta(days=365))
    reader = PostgresReader(Settings(database_url=db_url))
    try:
        await reader.connect()
        assert [r.trace_id for r in await agent_calls(reader, "a")] == ["now"]
        assert [t.trace_id for t in await agent_traces(reader, "a", now - timedelta(hours=1))] == ["now"]
    finally:
        await reader.close()
