"""Closed days from LiteLLM's daily tables (sources/litellm_daily.py) against SQL over LiteLLM's spend log,
on LiteLLM's real schema with rows as its writer makes them (litellm_fleet.py)."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import asyncpg
import pytest

from costtop.config import IDENTITY_ORDER, Settings
from costtop.escape import markdown
from costtop.money import usd
from costtop.report import render
from costtop.session import Session
from costtop.sources import litellm_daily as daily
from costtop.sources.day_report import DayRecords
from costtop.sources.history import daily_spend
from costtop.sources.postgres import PostgresReader
from litellm_fleet import LiteLLMCall, make_calls, write_daily, write_spend_log
from litellm_schema import WITH_AGENT, WITH_STATUS, apply_migrations

TODAY = date(2026, 11, 20)
# The end of October (to show a month's range stops at its first day), November up to today.
DAYS = [datetime(2026, 10, 30) + timedelta(days=i) for i in range(22)]


@pytest.fixture
async def litellm_db(empty_db_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(empty_db_url)
    try:
        await apply_migrations(conn)
        calls = make_calls(random.Random(15), DAYS, 60)
        await write_spend_log(conn, calls)
        await write_daily(conn, calls)
        yield conn
    finally:
        await conn.close()


async def tables_of(conn: asyncpg.Connection) -> daily.DailyTables:
    return await daily.find_tables(conn.fetch, Settings())


async def log_total(conn: asyncpg.Connection, first: date, end: date) -> Decimal:
    return await conn.fetchval('SELECT round(coalesce(sum(spend::numeric), 0), 2) FROM "LiteLLM_SpendLogs" '
                               'WHERE "startTime" >= $1 AND "startTime" < $2',
                               datetime.combine(first, datetime.min.time()), datetime.combine(end, datetime.min.time()))


async def log_by_agent(conn: asyncpg.Connection, column: str, first: date,
                       end: date) -> dict[tuple[str | None, str], Decimal]:
    rows = await conn.fetch(f'SELECT nullif("{column}", \'\') AS agent, to_char("startTime", \'YYYY-MM-DD\') AS day, '
                            'round(sum(spend::numeric), 2) AS spend FROM "LiteLLM_SpendLogs" '
                            'WHERE "startTime" >= $1 AND "startTime" < $2 GROUP BY 1, 2',
                            datetime.combine(first, datetime.min.time()), datetime.combine(end, datetime.min.time()))
    return {(r["agent"], r["day"]): r["spend"] for r in rows}


async def test_the_fleets_closed_days_equal_the_spend_log_to_the_cent(litellm_db) -> None:
    tables = await tables_of(litellm_db)
    assert tables.present == frozenset(daily.TABLES) and tables.user_id_nullable
    month = await daily.fleet_spend(litellm_db.fetch, tables, TODAY.replace(day=1), TODAY, TODAY)
    assert month == await log_total(litellm_db, TODAY.replace(day=1), TODAY)
    assert month > Decimal(10)  # a month of calls, not an empty range that equals an empty range
    for day in DAYS[:-1]:
        got = await daily.fleet_spend(litellm_db.fetch, tables, day, day + timedelta(days=1), TODAY)
        assert got == await log_total(litellm_db, day.date(), day.date() + timedelta(days=1)), day


async def test_today_is_never_read_from_a_daily_table(litellm_db) -> None:
    # LiteLLM has rolled part of today up already; a range reaching past today stops at its start.
    tables = await tables_of(litellm_db)
    assert await daily.fleet_spend(litellm_db.fetch, tables, TODAY, TODAY + timedelta(days=1), TODAY) == 0
    through = await daily.fleet_spend(litellm_db.fetch, tables, TODAY.replace(day=1), TODAY + timedelta(days=3),
                                      TODAY)
    assert through == await log_total(litellm_db, TODAY.replace(day=1), TODAY)
    assert await daily.day_spend(litellm_db.fetch, tables, ("agent_id",), TODAY.isoformat(), TODAY) is None


@pytest.mark.parametrize(("source", "column"), [("agent_id", "agent_id"), ("user", "user"),
                                                ("end_user", "end_user")])
async def test_per_agent_days_come_from_the_table_grouped_by_the_identity(litellm_db, source, column) -> None:
    tables = await tables_of(litellm_db)
    first = TODAY - timedelta(days=7)
    got = await daily.agent_days(litellm_db.fetch, tables, (source,), first, TODAY, TODAY)
    assert got is not None
    expected = await log_by_agent(litellm_db, column, first, TODAY)
    if source != "user":  # calls without an agent or end user have no row in those tables
        expected = {k: v for k, v in expected.items() if k[0] is not None}
    assert {(agent, day): spend for agent, day, spend in got} == expected
    assert len(expected) >= 14  # several agents on each of the 7 days


async def test_an_identity_no_daily_table_groups_by_leaves_agents_to_the_spend_log(litellm_db) -> None:
    tables = await tables_of(litellm_db)
    for identity in (IDENTITY_ORDER, ("metadata",), ("key_alias",), ("agent_id", "user")):
        assert await daily.agent_days(litellm_db.fetch, tables, identity, TODAY - timedelta(days=7), TODAY,
                                      TODAY) is None
        day = await daily.day_spend(litellm_db.fetch, tables, identity, "2026-11-19", TODAY)
        assert day is not None and day.agents is None


async def test_a_day_the_retention_job_deleted_is_still_in_the_daily_tables(litellm_db) -> None:
    tables = await tables_of(litellm_db)
    before = await daily.day_spend(litellm_db.fetch, tables, ("agent_id",), "2026-11-03", TODAY)
    await litellm_db.execute('DELETE FROM "LiteLLM_SpendLogs" WHERE "startTime" < $1', datetime(2026, 11, 10))
    assert await log_total(litellm_db, date(2026, 11, 3), date(2026, 11, 4)) == 0
    after = await daily.day_spend(litellm_db.fetch, tables, ("agent_id",), "2026-11-03", TODAY)
    assert after == before and after is not None and after.total > 0
    assert after.agents is not None and set(after.agents) == {"planner", "coder", "reviewer"}
    assert sum(after.models.values()) == sum(after.providers.values()) == after.total  # to the cent here
    assert set(after.providers) == {"anthropic", "openai", "vertex_ai"}


async def test_the_days_models_and_providers_equal_the_spend_log(litellm_db) -> None:
    tables = await tables_of(litellm_db)
    got = await daily.day_spend(litellm_db.fetch, tables, ("user",), "2026-11-05", TODAY)
    assert got is not None
    for field, column in (("models", "model"), ("providers", "custom_llm_provider")):
        rows = await litellm_db.fetch(
            f'SELECT {column} AS name, round(sum(spend::numeric), 2) AS spend FROM "LiteLLM_SpendLogs" '
            '''WHERE to_char("startTime", 'YYYY-MM-DD') = '2026-11-05' GROUP BY 1''')
        assert getattr(got, field) == {r["name"]: r["spend"] for r in rows}
    assert got.total == await log_total(litellm_db, date(2026, 11, 5), date(2026, 11, 6))
    assert got.agents is not None and set(got.agents) == {"u-alice", "u-bob", None}  # '' is no owner


async def test_older_litellm_schemas_are_not_taken_for_the_fleet(empty_db_url) -> None:
    conn = await asyncpg.connect(empty_db_url)
    try:
        # Before 2025-05-26 user_id was NOT NULL: calls without a key owner were never rolled up.
        await apply_migrations(conn, WITH_STATUS)
        tables = await tables_of(conn)
        assert daily.USER_TABLE in tables.present and tables.fleet() is None
        assert await daily.fleet_spend(conn.fetch, tables, date(2026, 11, 1), TODAY, TODAY) is None
        # No agent table before 2025-12-10, so an agent_id identity reads the spend log; the user one can.
        await conn.execute('DROP SCHEMA public CASCADE; CREATE SCHEMA public')
        await apply_migrations(conn, "20251204124859_add_end_user_spend_table")
        tables = await tables_of(conn)
        assert tables.fleet() is not None and daily.AGENT_TABLE not in tables.present
        assert tables.per_agent(("agent_id",)) is None and tables.per_agent(("end_user",)) is not None
        await conn.execute('DROP SCHEMA public CASCADE; CREATE SCHEMA public')
        await apply_migrations(conn, WITH_AGENT)
        assert (await tables_of(conn)).per_agent(("agent_id",)) is not None
    finally:
        await conn.close()


async def test_a_role_without_select_on_the_daily_tables_falls_back_to_the_spend_log(litellm_db,
                                                                                      empty_db_url) -> None:
    await litellm_db.execute("CREATE ROLE daily_reader LOGIN")
    try:
        await litellm_db.execute('GRANT SELECT ON "LiteLLM_SpendLogs", "LiteLLM_DailyAgentSpend" TO daily_reader')
        conn = await asyncpg.connect(empty_db_url, user="daily_reader")
        try:
            tables = await tables_of(conn)
        finally:
            await conn.close()
        assert tables.present == {daily.AGENT_TABLE} and tables.fleet() is None
        assert tables.per_agent(("agent_id",)) is not None
    finally:
        await litellm_db.execute("DROP OWNED BY daily_reader; DROP ROLE daily_reader")


# The reader under the preset: today from LiteLLM_SpendLogs, the closed days from the daily tables.
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


@pytest.fixture
async def litellm_db_with_days(db_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(db_url)
    try:
        await apply_migrations(conn)
        calls = make_calls(random.Random(16), DAYS, 40)
        await write_spend_log(conn, calls)
        await write_daily(conn, calls)
        yield conn
    finally:
        await conn.close()


def preset(url: str, *identity: str) -> Settings:
    litellm = {"identity": identity} if identity else {}
    return Settings(database_url=url, preset="litellm", litellm=litellm)


async def test_the_month_before_today_comes_from_the_daily_table_and_outlives_the_spend_log(
        litellm_db_with_days, db_url) -> None:
    conn = litellm_db_with_days
    expected = await log_total(conn, date(2026, 11, 1), NOW.date())
    reader = PostgresReader(preset(db_url), clock=lambda: NOW)
    try:
        assert (await reader.baseline(NOW)).month_before_today == expected
        # LiteLLM's retention job deletes the log's first nine days of the month: the month is unchanged.
        await conn.execute('DELETE FROM "LiteLLM_SpendLogs" WHERE "startTime" < $1', datetime(2026, 11, 10))
        assert await log_total(conn, date(2026, 11, 1), NOW.date()) < expected
        assert (await reader.baseline(NOW)).month_before_today == expected
    finally:
        await reader.close()
    # Without the preset the reader never looks at LiteLLM's tables: the month is the calls table's.
    plain = PostgresReader(Settings(database_url=db_url), clock=lambda: NOW)
    try:
        assert (await plain.baseline(NOW)).month_before_today == 0
    finally:
        await plain.close()


async def test_the_anomalies_week_comes_from_the_agent_table_when_the_identity_is_its_grouping(
        litellm_db_with_days, db_url) -> None:
    conn = litellm_db_with_days
    expected = {k: v for k, v in (await log_by_agent(conn, "agent_id", date(2026, 11, 13), NOW.date())).items()
                if k[0] is not None}
    await conn.execute('DELETE FROM "LiteLLM_SpendLogs" WHERE "startTime" < $1', datetime(2026, 11, 17))
    reader = PostgresReader(preset(db_url, "agent_id"), clock=lambda: NOW)
    try:
        history = await daily_spend(reader, "2026-11-20")
    finally:
        await reader.close()
    assert history.day == "2026-11-20" and history.days == 7
    assert {(agent, f"2026-11-{13 + n:02d}"): cost for agent, n, cost in history.sums} == expected
    # The default identity order is no daily table's grouping: the week is the spend log's, which no
    # longer holds its first four days.
    reader = PostgresReader(preset(db_url), clock=lambda: NOW)
    try:
        assert all(n >= 4 for _, n, _ in (await daily_spend(reader, "2026-11-20")).sums)
    finally:
        await reader.close()


# `costtop report` of a closed day under the preset.
REPORT_DAY = date(2026, 11, 5)


@pytest.fixture
async def report_db(db_url: str) -> AsyncIterator[tuple[asyncpg.Connection, list[LiteLLMCall]]]:
    conn = await asyncpg.connect(db_url)
    try:
        await apply_migrations(conn)
        calls = make_calls(random.Random(17), DAYS, 40)
        await write_spend_log(conn, calls)
        await write_daily(conn, calls)
        yield conn, [c for c in calls if c.start.date() == REPORT_DAY]
    finally:
        await conn.close()


async def report(url: str, *identity: str) -> str:
    settings = preset(url, *identity)
    records = await read_day_at(settings, REPORT_DAY.isoformat())
    return render(settings, records)


async def read_day_at(settings: Settings, day: str) -> DayRecords:
    """The report's read with the clock at NOW: the day reported is closed."""
    return await Session.live(settings, lambda: NOW).read_day(day)


def by_name(calls: list[LiteLLMCall], field: str) -> dict[str, Decimal]:
    sums: dict[str, Decimal] = {}
    for c in calls:
        sums[getattr(c, field)] = sums.get(getattr(c, field), Decimal(0)) + Decimal(repr(c.spend))
    return sums


async def test_a_report_of_a_day_the_spend_log_lost_shows_its_spend_from_the_daily_tables(report_db,
                                                                                          db_url) -> None:
    conn, calls = report_db
    total = await log_total(conn, REPORT_DAY, REPORT_DAY + timedelta(days=1))
    await conn.execute('DELETE FROM "LiteLLM_SpendLogs" WHERE "startTime" < $1', datetime(2026, 11, 10))
    md = await report(db_url, "agent_id")
    assert f"Spend **{usd(total)}**.\n" in md and total > 0
    assert "LiteLLM's spend log no longer holds this day (its retention deleted it)" in md
    for model, spend in by_name(calls, "model").items():
        assert f"| {model} | {usd(spend)} | ? | ? |" in md
    for provider, spend in by_name(calls, "provider").items():
        assert f"| {markdown(provider, 100)} | {usd(spend)} | ? | ? |" in md
    agents = by_name([c for c in calls if c.agent_id], "agent_id")
    for agent, spend in agents.items():
        assert f"| {agent} | {usd(spend)} | ? | ? |" in md
    assert "0 calls" not in md and "| $0.00 |" not in md
    # Without the preset the same database reports the calls table's day: empty.
    plain = Settings(database_url=db_url)
    assert "Spend **$0.00** over 0 calls" in render(plain, await read_day_at(plain, REPORT_DAY.isoformat()))


async def test_a_report_of_a_day_the_log_still_holds_takes_calls_from_it(report_db, db_url) -> None:
    conn, calls = report_db
    total = await log_total(conn, REPORT_DAY, REPORT_DAY + timedelta(days=1))
    failed = sum(c.status == "failure" for c in calls)
    md = await report(db_url)  # the default identity: agents from the spend log
    assert f"Spend **{usd(total)}** over {len(calls):,} calls, {failed:,} of them errors." in md
    assert "Spend is from LiteLLM's daily tables; calls, errors, alerts and traces from its spend log." in md
    for model, spend in by_name(calls, "model").items():
        n = sum(c.model == model for c in calls)
        errors = sum(c.model == model and c.status == "failure" for c in calls)
        assert f"| {model} | {usd(spend)} | {n} | {errors} |" in md
    # The retention job's cut-off falls at noon that day: the log holds part of it, and says how much.
    await conn.execute('DELETE FROM "LiteLLM_SpendLogs" WHERE "startTime" < $1', datetime(2026, 11, 5, 12))
    left = await log_total(conn, REPORT_DAY, REPORT_DAY + timedelta(days=1))
    md = await report(db_url)
    assert f"Spend **{usd(total)}** over " in md and 0 < left < total
    assert f"LiteLLM's spend log holds {usd(left)} of this day's {usd(total)} (its retention" in md


async def test_a_report_of_today_is_the_spend_logs_alone(report_db, db_url) -> None:
    # LiteLLM has rolled part of today up already; the report of today does not read it.
    settings = preset(db_url, "agent_id")
    md = render(settings, await Session.live(settings, lambda: NOW).read_day(NOW.date().isoformat()))
    assert "daily tables" not in md and " calls, " in md.splitlines()[2]  # the log's figures, counts known
    later = render(settings, await Session.live(settings, lambda: NOW + timedelta(days=1)).read_day(
        NOW.date().isoformat()))
    # The next day it is a closed day: its spend from the daily tables, its calls from the log.
    assert "Spend is from LiteLLM's daily tables; calls, errors, alerts and traces from its spend log." in later
