"""The rollup (costtop/rollup/) against a real PostgreSQL: start-up read through the buckets gives what SQL
over the raw rows gives, to the cent, whoever keeps them (the job or the gateway), at bucket boundaries,
with rows that commit late, with the job behind, and with two jobs at once."""

from __future__ import annotations

import asyncio
import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import asyncpg

from costtop.config import Settings, TableNames
from costtop.gateway import Call, Gateway, append_lines, row_of
from costtop.rollup.job import compact, run_rollup
from costtop.rollup.plan import ceil, floor
from costtop.sources.fallback_file import encode_row
from costtop.sources.schema import init_db
from test_sources_postgres import NO_REDIS, assert_matches_sql, insert, make_row, settings, spread_rows, start

FAR = timedelta(days=75)  # spread_rows goes 40 days before the month: the rollup covers all of it


def boundary_rows(rng: random.Random, now: datetime) -> list:
    """Rows on and 1 µs before the edges the layers cut at: the job's watermark, every hour of the last
    day, the minutes around the last clock hour, and UTC midnight."""
    mark = floor(now - timedelta(seconds=300), "minute")
    edges = [mark, floor(now, "hour"), floor(now, "hour") - timedelta(hours=1), floor(now, "day")]
    edges += [floor(now, "hour") - timedelta(hours=h) for h in range(2, 26)]
    edges += [floor(now, "minute") - timedelta(minutes=m) for m in range(55, 66)]
    times = [t for edge in edges for t in (edge, edge - timedelta(microseconds=1)) if t <= now]
    rows = [make_row(rng, t) for t in times]
    # A call without an agent, provider or model, and one whose agent is '' (not the same agent).
    rows.append(make_row(rng, now - timedelta(hours=2), agent=""))
    return rows


async def started_as_sql(pg: asyncpg.Pool, db_url: str, now: datetime) -> str | None:
    """Start as costtop does at `now`, check every figure against SQL over the raw rows, and return what
    the reader said about the rollup (None: the buckets answered)."""
    reader, engine = await start(db_url, now)
    try:
        await assert_matches_sql(pg, engine, now)
        assert reader.read_quality().rollup == reader.rollup_note
        return reader.rollup_note
    finally:
        await reader.close()


async def buckets(pool: asyncpg.Pool) -> list[asyncpg.Record]:
    return await pool.fetch("SELECT * FROM costtop_rollup.buckets ORDER BY source, grain, bucket, agent, provider, "
                            "model, nulls")


async def test_job_rollup_equals_sql_at_bucket_boundaries(pg, db_url) -> None:
    rng = random.Random(19)
    now = datetime.now(UTC)
    await insert(pg, spread_rows(rng, now) + boundary_rows(rng, now))
    result = await run_rollup(settings(db_url), now=now, since=now - FAR)
    assert result.rows > 0 and not result.locked_out
    assert await started_as_sql(pg, db_url, now) is None  # the buckets answered; only the horizon was read row by row
    # The figures come from the buckets: one cent more in a bucket of today shows on the screen.
    await pg.execute("UPDATE costtop_rollup.buckets SET cost = cost + 0.01 WHERE grain = 'h' AND bucket = "
                     "(SELECT min(bucket) FROM costtop_rollup.buckets WHERE grain = 'h' AND bucket >= $1)",
                     floor(now, "day"))
    reader, engine = await start(db_url, now)
    try:
        today = engine.snapshot(now, NO_REDIS).header.spend_today
        want = await pg.fetchval("SELECT sum(cost_usd) FROM tool_calls WHERE created_at >= $1 AND created_at <= $2",
                                 floor(now, "day"), now)
        assert today != want
    finally:
        await reader.close()


async def test_rows_committed_late_are_counted(pg, db_url) -> None:
    """A row that commits within the horizon is read raw at once; one that commits later, below the
    job's watermark, is in the buckets after the job's next run, which rolls its hour again."""
    rng = random.Random(23)
    now = datetime.now(UTC)
    await insert(pg, spread_rows(rng, now))
    await run_rollup(settings(db_url), now=now, since=now - FAR)
    await insert(pg, [make_row(rng, now - timedelta(seconds=60)) for _ in range(3)])  # within the horizon
    await started_as_sql(pg, db_url, now)
    late = [make_row(rng, now - timedelta(hours=2, minutes=7)), make_row(rng, now - timedelta(hours=20))]
    await insert(pg, late)  # below the watermark: the buckets do not have them yet
    again = await run_rollup(settings(db_url), now=now, since=now - FAR)
    assert again.hours_rerolled == 2
    await started_as_sql(pg, db_url, now)
    assert (await run_rollup(settings(db_url), now=now)).hours_rerolled == 0  # and nothing differs any more


async def test_a_rollup_behind_is_caught_up_by_the_rows(pg, db_url) -> None:
    rng = random.Random(29)
    now = datetime.now(UTC)
    await insert(pg, spread_rows(rng, now))
    await run_rollup(settings(db_url), now=now - timedelta(hours=3), since=now - FAR)
    note = await started_as_sql(pg, db_url, now)
    assert note is not None and "rollup (job) complete to" in note
    # The next run catches up from where the last one stopped.
    result = await run_rollup(settings(db_url), now=now)
    assert result.rows > 0
    assert await started_as_sql(pg, db_url, now) is None


async def test_no_rollup_reads_the_rows_and_says_so(pg, db_url) -> None:
    rng = random.Random(31)
    now = datetime.now(UTC)
    await insert(pg, spread_rows(rng, now))
    note = await started_as_sql(pg, db_url, now)
    assert note is not None and "`costtop rollup`" in note


async def test_two_jobs_at_once_add_nothing_twice(pg, db_url) -> None:
    rng = random.Random(37)
    now = datetime.now(UTC)
    await insert(pg, spread_rows(rng, now))
    first, second = await asyncio.gather(run_rollup(settings(db_url), now=now, since=now - FAR),
                                         run_rollup(settings(db_url), now=now, since=now - FAR))
    assert not (first.locked_out and second.locked_out)
    await started_as_sql(pg, db_url, now)
    # A run that finds the lock held does nothing at all.
    before = await buckets(pg)
    await insert(pg, [make_row(rng, now - timedelta(minutes=30))])
    holder = await asyncpg.connect(db_url)
    try:
        await holder.execute("SELECT pg_advisory_lock(hashtext('costtop rollup'), hashtext('public.tool_calls'))")
        later = now + timedelta(minutes=20)
        blocked = await run_rollup(settings(db_url), now=later)
        assert blocked.locked_out and await buckets(pg) == before
    finally:
        await holder.close()
    assert not (await run_rollup(settings(db_url), now=later)).locked_out
    assert await buckets(pg) != before


def call_of(row, trace: str | None = None) -> Call:
    return Call(row.agent_id, "llm", row.latency_ms, provider=row.provider, model=row.model,
                tokens_in=row.tokens[0], tokens_out=row.tokens[1], cached_tokens=row.tokens[2], cost_usd=row.cost_usd,
                status=row.status, trace_id=trace, created_at=row.created_at)


async def test_gateway_keeps_the_rollup_in_its_transaction(pg, db_url, redis, tmp_path) -> None:
    rng = random.Random(41)
    now = datetime.now(UTC)
    # As if this gateway had kept the rollup for months, its minutes summed into hours until 30 hours
    # ago: every row below comes through it, older ones straight into their hour and day too.
    await pg.execute("INSERT INTO costtop_rollup.sources (name, kept_by, covered_from, hours_to) "
                     "VALUES ('public.tool_calls', 'gateway', $1, $2)",
                     now - FAR - timedelta(days=1), floor(now, "hour") - timedelta(hours=30))
    gw = Gateway(redis, pg, rollup=True, fallback=tmp_path / "fallback.jsonl")
    rows = spread_rows(rng, now) + boundary_rows(rng, now)
    rng.shuffle(rows)
    batches = [rows[i:i + 97] for i in range(0, len(rows), 97)]
    half = len(batches) // 2
    for batch in batches[:half]:
        await gw.record([call_of(r) for r in batch])
    # The job sums the minutes into hours while the gateway goes on writing, hours before it included.
    conn = await asyncpg.connect(db_url)
    try:
        await asyncio.gather(compact(conn, TableNames(), 1, now),
                             *(gw.record([call_of(r) for r in batch]) for batch in batches[half:]))
    finally:
        await conn.close()
    # Rows Postgres did not take, drained later (late rows, hours below the newest): the same transaction.
    late = [make_row(rng, now - timedelta(hours=3, seconds=s)) for s in range(5)]
    append_lines(gw.fallback, [encode_row(row_of(call_of(r), now)) for r in late])
    assert await gw.drain_fallback() == 5
    result = await run_rollup(settings(db_url), now=now)  # a job on a gateway's table sums minutes, rolls nothing
    assert result.rows == 0 and "kept by the gateway" in result.lines[0]
    assert await pg.fetchval("SELECT hours_to FROM costtop_rollup.sources") == floor(now, "hour")
    assert await started_as_sql(pg, db_url, now) is None
    assert gw.rollup_error is None
    # Every hour and day bucket summed from the minutes is the sum of its minutes: none counted twice,
    # none left out (the current hour's and day's are not summed yet).
    since = floor(now, "day") - timedelta(days=2)
    found = await pg.fetch("SELECT grain, bucket, agent, provider, model, nulls, calls, cost FROM "
                           "costtop_rollup.buckets WHERE bucket >= $1", since)
    summed: dict[tuple[object, ...], list] = {}
    for r in found:
        if r["grain"] == "m" and r["bucket"] < floor(now, "hour"):
            for grain in ("hour", "day") if r["bucket"] < floor(now, "day") else ("hour",):
                key = (grain[0], floor(r["bucket"], grain), r["agent"], r["provider"], r["model"], r["nulls"])
                acc = summed.setdefault(key, [0, Decimal(0)])
                acc[0] += r["calls"]
                acc[1] += r["cost"]
    coarse = {(r["grain"], r["bucket"], r["agent"], r["provider"], r["model"], r["nulls"]): [r["calls"], r["cost"]]
              for r in found if r["grain"] == "h" or (r["grain"] == "d" and r["bucket"] < floor(now, "day"))}
    assert coarse == summed
    # Yesterday's peaks and traces, worked out by the job: the report reads them, and after the gateway
    # writes a row into yesterday, reads the rows until the next run works the day out again.
    yesterday = floor(now, "day") - timedelta(days=1)
    day, no_rollup = f"{yesterday:%Y-%m-%d}", TableNames(rollup_schema="no_rollup_here")
    assert result.days_summarised > 0 and await report_of(db_url, now, day) == await report_of(
        db_url, now, day, no_rollup)
    costly = replace(make_row(rng, yesterday + timedelta(hours=5)), cost_usd=Decimal(50))
    await gw.record([call_of(costly, trace="t-late")])
    raw = await report_of(db_url, now, day, no_rollup)
    assert raw[4][0][0] == "t-late"  # the costliest trace now
    assert await report_of(db_url, now, day) == raw
    assert (await run_rollup(settings(db_url), now=now)).days_summarised == 1
    assert await report_of(db_url, now, day) == raw
    assert await pg.fetchval("SELECT calls FROM costtop_rollup.days WHERE day = $1", yesterday) == sum(
        a.calls for a in raw[0])


async def test_gateway_leaves_a_table_the_job_keeps(pg, db_url, redis) -> None:
    rng = random.Random(43)
    now = datetime.now(UTC)
    await run_rollup(settings(db_url), now=now)
    before = await buckets(pg)
    gw = Gateway(redis, pg, rollup=True)
    await gw.record([call_of(make_row(rng, now - timedelta(hours=1)))])
    assert gw.rollup_error is not None and "job" in gw.rollup_error
    assert await pg.fetchval("SELECT count(*) FROM tool_calls") == 1 and await buckets(pg) == before


async def test_month_and_week_from_day_buckets(pg, db_url) -> None:
    from costtop.sources.history import daily_spend

    rng = random.Random(47)
    now = datetime.now(UTC)
    day = floor(now, "day")
    rows = [make_row(rng, day - timedelta(days=d, seconds=s)) for d in range(0, 9) for s in (1, 3600, 50_000)]
    await insert(pg, rows)
    raw = await daily_spend_of(db_url, now)
    await run_rollup(settings(db_url), now=now, since=now - FAR)
    assert await daily_spend_of(db_url, now) == raw
    want = await pg.fetchval("SELECT sum(cost_usd) FROM tool_calls WHERE created_at >= $1 AND created_at < $2",
                             day.replace(day=1), day)
    reader, engine = await start(db_url, now)
    try:
        assert engine.snapshot(now, NO_REDIS).header.spend_month - engine.snapshot(
            now, NO_REDIS).header.spend_today == (want or Decimal(0))
    finally:
        await reader.close()
    del daily_spend


async def daily_spend_of(url: str, now: datetime):  # type: ignore[no-untyped-def]
    from costtop.sources.history import daily_spend
    from costtop.sources.postgres import PostgresReader

    reader = PostgresReader(settings(url), clock=lambda: now)
    try:
        found = await daily_spend(reader, now.strftime("%Y-%m-%d"))
    finally:
        await reader.close()
    return sorted(found.sums, key=lambda s: (s[0] or "", s[1]))


def report_rows(rng: random.Random, day: datetime) -> list:
    """A day whose peaks and traces have edges: two equal 5-minute windows (the earlier is the peak),
    an agent '' beside the others, and rows at both ends of the day."""
    rows = [make_row(rng, day + timedelta(seconds=rng.uniform(0, 86_399))) for _ in range(300)]
    tie = [day + timedelta(hours=h, minutes=m, seconds=5) for h in (9, 15) for m in (0, 1)]
    rows += [replace(make_row(rng, t, agent="peaky"), cost_usd=Decimal("0.75")) for t in tie]
    rows += [make_row(rng, day + timedelta(hours=7, minutes=m), agent="") for m in range(8)]
    rows += [make_row(rng, t) for t in (day, day + timedelta(days=1) - timedelta(microseconds=1))]
    return rows


# Traces of the day: 't<n>' over its rows; two costing the same, more than any other (the lower id
# first), and one with no cost (not ranked).
TRACE_IDS = "UPDATE tool_calls SET trace_id = 't' || (id % 37) WHERE created_at >= $1 AND created_at < $2"
TIED_TRACES = """
INSERT INTO tool_calls (created_at, agent_id, tool_name, latency_ms, cost_usd, status, trace_id)
SELECT $1::timestamptz + interval '6 hours' + g * interval '1 minute', 'beta', 'llm', 10, c, 'success', t
FROM (VALUES ('tie-b', 10.0), ('tie-b', 10.0), ('tie-a', 20.0), ('unpriced', NULL)) v(t, c), generate_series(0, 1) g
"""


async def report_of(url: str, now: datetime, day: str, tables: TableNames | None = None,
                    config: Settings | None = None) -> tuple[object, ...]:
    """`day`'s report as costtop reads it at `now` (with `tables`: another rollup schema, none)."""
    from costtop.sources.day_report import day_records
    from costtop.sources.postgres import PostgresReader

    config = config or settings(url)
    if tables is not None:
        config = config.model_copy(update={"tables": tables})
    reader = PostgresReader(config, clock=lambda: now)
    try:
        got = await day_records(reader, config, day)
    finally:
        await reader.close()
    order = lambda items: sorted(items, key=lambda u: (u.name is None, u.name or ""))  # noqa: E731
    return (order(got.agents), order(got.models), order(got.providers),
            sorted(got.peaks, key=lambda p: (p.agent is None, p.agent or "")),
            [tuple(t) for t in got.traces], sorted(got.history.sums, key=lambda s: (s[0] or "", s[1])))


async def test_a_past_days_report_reads_the_same_from_buckets_and_the_days_summary(pg, db_url) -> None:
    """Everything in a past day's report, its 5-minute peaks and costliest traces included, is what the
    rows give: read through the day buckets and the job's summary of the day, through the rows, and
    after a row reaches the day late (the summary is set aside until the job works the day out again)."""
    rng = random.Random(53)
    now = datetime.now(UTC)
    yesterday = floor(now, "day") - timedelta(days=1)
    day = f"{yesterday:%Y-%m-%d}"
    await insert(pg, spread_rows(rng, now) + boundary_rows(rng, now) + report_rows(rng, yesterday))
    await pg.execute(TRACE_IDS, yesterday, yesterday + timedelta(days=1))
    await pg.execute(TIED_TRACES, yesterday)
    no_rollup = TableNames(rollup_schema="no_rollup_here")
    raw = await report_of(db_url, now, day, no_rollup)
    agents, _, _, peaks, traces, _ = raw
    assert len(traces) == 10 and [t[0] for t in traces[:2]] == ["tie-a", "tie-b"]
    assert traces[0][3] == traces[1][3] == Decimal(40) and "unpriced" not in [t[0] for t in traces]
    peaky = next(p for p in peaks if p.agent == "peaky")
    assert (peaky.cost, peaky.ended) == (Decimal("1.50"), yesterday + timedelta(hours=9, minutes=1))
    assert "" in [p.agent for p in peaks]

    result = await run_rollup(settings(db_url), now=now, since=now - FAR)
    assert result.days_summarised >= 2  # yesterday and the days before it
    assert await pg.fetchval("SELECT calls FROM costtop_rollup.days WHERE day = $1", yesterday) == \
        sum(a.calls for a in agents)
    assert await report_of(db_url, now, day) == raw
    # The summary is what answered: a cent on its costliest trace shows in the report.
    await pg.execute("UPDATE costtop_rollup.day_traces SET cost = cost + 0.01 WHERE day = $1 AND rank = 1", yesterday)
    assert (await report_of(db_url, now, day))[4][0][3] == traces[0][3] + Decimal("0.01")
    await pg.execute("UPDATE costtop_rollup.day_traces SET cost = cost - 0.01 WHERE day = $1 AND rank = 1", yesterday)

    # A row reaches the day late, in the costliest trace and peaky's peak: the report reads the rows
    # again until the job has rolled its hour again and worked the day out again.
    late = yesterday + timedelta(hours=9, minutes=1, seconds=30)
    await pg.execute("INSERT INTO tool_calls (created_at, agent_id, tool_name, latency_ms, cost_usd, status, "
                     "trace_id) VALUES ($1, 'peaky', 'llm', 10, 0.5, 'success', 'tie-a')", late)
    changed = await report_of(db_url, now, day, no_rollup)
    assert changed[4][0][:4] == ("tie-a", "beta", 3, Decimal("40.5"))
    assert next(p for p in changed[3] if p.agent == "peaky").cost == Decimal("2.00")
    assert await report_of(db_url, now, day) == raw  # the buckets do not have it yet: as before
    again = await run_rollup(settings(db_url), now=now, verify_hours=72)
    assert again.hours_rerolled == 1 and again.days_summarised == 1
    assert await report_of(db_url, now, day) == changed
    # A summary of another number of rows than the buckets hold is set aside: the rows answer.
    await pg.execute("UPDATE costtop_rollup.days SET calls = calls - 1 WHERE day = $1", yesterday)
    await pg.execute("UPDATE costtop_rollup.day_traces SET cost = cost + 1 WHERE day = $1", yesterday)
    assert await report_of(db_url, now, day) == changed


async def test_the_job_runs_with_a_role_of_its_own(pg, db_url) -> None:
    """The grants README gives the job: read the calls, write the rollup's tables, nothing else."""
    rng = random.Random(59)
    now = datetime.now(UTC)
    await insert(pg, spread_rows(rng, now))
    db = db_url.rsplit("/", 1)[1]
    role = f"rollup_job_{db}"
    for statement in (f"CREATE ROLE {role} LOGIN", f"GRANT CONNECT ON DATABASE {db} TO {role}",
                      f"GRANT USAGE ON SCHEMA public TO {role}", f"GRANT SELECT ON tool_calls TO {role}",
                      f"GRANT USAGE ON SCHEMA costtop_rollup TO {role}",
                      f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA costtop_rollup TO {role}",
                      f"GRANT USAGE ON SEQUENCE costtop_rollup.sources_id_seq TO {role}"):
        await pg.execute(statement)
    job_url = db_url.replace("//postgres@", f"//{role}@")
    # A rollup schema from before the day summaries: this role may not add their tables. It rolls up,
    # and says that reports of past days read their rows.
    await pg.execute("DROP TABLE costtop_rollup.days, costtop_rollup.day_peaks, costtop_rollup.day_traces")
    result = await run_rollup(settings(job_url), now=now, since=now - FAR)
    upto = floor(now - timedelta(seconds=300), "minute")  # the horizon is left to the rows
    assert result.rows == await pg.fetchval("SELECT count(*) FROM tool_calls WHERE created_at < $1", upto)
    assert result.days_summarised == 0 and any("no day summaries" in line for line in result.lines)
    # `costtop db init` as the owner adds them; the role's next run works the closed days out.
    async with pg.acquire() as owner:
        await init_db(owner, TableNames())
    await pg.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA costtop_rollup TO {role}")
    result = await run_rollup(settings(job_url), now=now)
    assert result.days_summarised == await pg.fetchval(
        "SELECT count(DISTINCT date_trunc('day', created_at, 'UTC')) FROM tool_calls WHERE created_at >= $1 "
        "AND created_at < $2", ceil(floor(now - FAR, "minute"), "day"), floor(now, "day")) > 0
    assert await started_as_sql(pg, db_url, now) is None


async def test_a_gateway_keeps_it_with_the_grants_readme_gives(pg, db_url, redis) -> None:
    db = db_url.rsplit("/", 1)[1]
    role = f"gateway_{db}"
    for statement in (f"CREATE ROLE {role} LOGIN", f"GRANT CONNECT ON DATABASE {db} TO {role}",
                      f"GRANT USAGE ON SCHEMA public TO {role}", f"GRANT SELECT, INSERT ON tool_calls TO {role}",
                      f"GRANT USAGE ON SEQUENCE tool_calls_id_seq TO {role}",
                      f"GRANT USAGE ON SCHEMA costtop_rollup TO {role}",
                      f"GRANT SELECT, INSERT, UPDATE ON costtop_rollup.sources, costtop_rollup.buckets TO {role}",
                      f"GRANT USAGE ON SEQUENCE costtop_rollup.sources_id_seq TO {role}"):
        await pg.execute(statement)
    pool = await asyncpg.create_pool(db_url.replace("//postgres@", f"//{role}@"), min_size=1, max_size=1)
    try:
        gw = Gateway(redis, pool, rollup=True)
        now = datetime.now(UTC)
        await gw.record([call_of(make_row(random.Random(61), now - timedelta(seconds=s))) for s in range(20)])
        assert gw.rollup_error is None and gw.last_error is None
    finally:
        await pool.close()
    assert await pg.fetchval("SELECT sum(calls) FROM costtop_rollup.buckets WHERE grain = 'm'") == 20


async def test_the_job_rolls_up_litellms_spend_log(empty_db_url) -> None:
    """The job reads LiteLLM's own spend log (its real migrations) the way the preset reads it: agent from
    the identity rule, cost, status and tokens from LiteLLM's columns. Figures equal with and without."""
    from test_litellm_preset import by_agent, fleet, insert, litellm_db, loaded_engine, preset

    now = datetime.now(UTC)
    columns = await litellm_db(empty_db_url, None)
    rng = random.Random(67)
    await insert(empty_db_url, fleet(rng, floor(now, "day") - timedelta(days=1), now - timedelta(seconds=1), 400,
                                     "r"), columns)

    def figures(snap) -> tuple[object, ...]:  # type: ignore[no-untyped-def]
        return (by_agent(snap), snap.header.spend_today, snap.header.spend_month, snap.header.per_hour,
                snap.header.per_minute, sorted((m.model or "", m.spend_today, m.calls_today) for m in snap.models))

    raw = figures((await loaded_engine(empty_db_url, now)).snapshot(now, NO_REDIS))
    day = f"{floor(now, 'day') - timedelta(days=1):%Y-%m-%d}"
    raw_report = await report_of(empty_db_url, now, day, config=preset(empty_db_url))
    assert raw_report[4] and None in [p.agent for p in raw_report[3]]  # traces (sessions); a call with no agent
    result = await run_rollup(preset(empty_db_url), now=now, since=now - FAR)
    assert result.rows > 0 and result.lines[0].startswith('public.LiteLLM_SpendLogs#')
    assert result.days_summarised == 1
    assert figures((await loaded_engine(empty_db_url, now)).snapshot(now, NO_REDIS)) == raw
    assert await report_of(empty_db_url, now, day, config=preset(empty_db_url)) == raw_report
    conn = await asyncpg.connect(empty_db_url)  # and the buckets are what answered
    try:
        await conn.execute("UPDATE costtop_rollup.buckets SET cost = cost + 1 WHERE grain = 'h'")
    finally:
        await conn.close()
    assert figures((await loaded_engine(empty_db_url, now)).snapshot(now, NO_REDIS)) != raw


async def test_gateways_writing_the_same_buckets_at_once_never_deadlock(db_url, redis) -> None:
    """Four gateways, each batch the same keys in another order, all at once: the buckets are written in
    key order, so no two transactions wait on each other in a circle (Postgres would abort one)."""
    now = datetime.now(UTC)
    rng = random.Random(71)
    base = [make_row(rng, now - timedelta(seconds=rng.uniform(0, 240))) for _ in range(300)]
    pools = [await asyncpg.create_pool(db_url, min_size=1, max_size=1) for _ in range(4)]
    try:
        gateways = [Gateway(redis, pool, rollup=True) for pool in pools]

        async def write(gw: Gateway, seed: int) -> None:
            order = random.Random(seed)
            for _ in range(5):
                batch = base[:]
                order.shuffle(batch)
                await gw.record([call_of(r) for r in batch])

        await asyncio.gather(*(write(gw, i) for i, gw in enumerate(gateways)))
    finally:
        for pool in pools:
            await pool.close()
    conn = await asyncpg.connect(db_url)
    try:
        assert await conn.fetchval("SELECT sum(calls) FROM costtop_rollup.buckets WHERE grain = 'm'") == 300 * 20
        assert await conn.fetchval("SELECT sum(calls) FROM costtop_rollup.buckets WHERE grain = 'm'") == \
            await conn.fetchval("SELECT count(*) FROM tool_calls")
    finally:
        await conn.close()
