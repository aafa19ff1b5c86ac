"""The agents' spend per day over the trailing week, for the day-over-week anomaly (engine/anomalies.py).

One read, in the background, when a UTC day starts (and at start-up): the sums per agent and UTC day
over the seven whole days before today, from the rollup's day buckets (rollup/) and, for what they do
not cover, the rows through the created_at index (`tool_calls_created_at_idx`).
Past days do not change, so nothing here is read again until the next day; the refresh never
rescans rows for it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from costtop.rollup.read import raw_sql
from costtop.sources import litellm_daily
from costtop.sources.postgres import PostgresReader, utc_day_start
from costtop.sources.records import SpendHistory

HISTORY_DAYS = 7
HISTORY_TIMEOUT = 300.0  # a background read over a week of rows: minutes are fine, forever is not


def daily_spend_sql(reader: PostgresReader) -> str:
    """The raw part's read: per agent and UTC day, in [$1, $2) (rollup/read.py)."""
    return raw_sql(reader.rows_from(), reader.since, "day", ("agent",))


async def daily_spend(reader: PostgresReader, day: str, days: int = HISTORY_DAYS) -> SpendHistory:
    """Spend per agent and UTC day over the `days` whole days before `day` (YYYY-MM-DD)."""
    end = datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=UTC)
    start = end - timedelta(days=days)
    from_daily = await litellm_spend(reader, day, start, end)
    if from_daily is not None:
        return from_daily
    # From the rollup's day buckets where it holds them (rollup/), the rows elsewhere.
    read = await reader.read_layered(start, end, "day", max(HISTORY_TIMEOUT, reader.settings.timeout_seconds * 100),
                                     by=("agent",))
    # A day of flat-rate calls only spent $0: the agent was there, and that day counts.
    sums = tuple((g.agent, (g.bucket - start).days, g.cost) for g in read.groups)
    return SpendHistory(day, days, sums)


async def litellm_spend(reader: PostgresReader, day: str, start: datetime, end: datetime) -> SpendHistory | None:
    """The week from LiteLLM's daily table grouped by the agent (preset `litellm`, a one-source identity
    that a daily table keeps: sources/litellm_daily.py), or None to read the spend log. Only closed days:
    a history ending after today's start is not taken from a table still being added to."""
    if not litellm_daily.enabled(reader.settings):
        return None
    if reader.pool is None or reader.columns is None:
        await reader.connect()
    run = reader.pool_fetch(max(HISTORY_TIMEOUT, reader.settings.timeout_seconds * 100))
    tables = await reader.daily_tables(run)
    today = utc_day_start(reader.clock())
    if tables is None or end > today:
        return None
    found = await litellm_daily.agent_days(run, tables, reader.settings.litellm.identity, start, end, today)
    if found is None:
        return None
    first = start.date()
    return SpendHistory(day, (end - start).days,
                        tuple((agent, (datetime.strptime(d, "%Y-%m-%d").date() - first).days, cost)
                              for agent, d, cost in found))
