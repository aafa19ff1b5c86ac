"""The agents' spend per day over the trailing week, for the day-over-week anomaly (engine/anomalies.py).

One query, in the background, when a UTC day starts (and at start-up): the sums per agent and UTC day
over the seven whole days before today, through the created_at index (`tool_calls_created_at_idx`).
Past days do not change, so nothing here is read again until the next day; the refresh never
rescans rows for it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from costtop.sources.postgres import PostgresReader, fetch
from costtop.sources.records import SpendHistory

HISTORY_DAYS = 7
HISTORY_TIMEOUT = 300.0  # a background read over a week of rows: minutes are fine, forever is not


def daily_spend_sql(reader: PostgresReader) -> str:
    ca = reader.column("created_at")
    return (
        f"SELECT {reader.column('agent_id')} AS agent, date_trunc('day', {ca}, 'UTC') AS day, "
        f"coalesce(sum({reader.cost_sql()}), 0) AS cost "
        f"FROM {reader.table_sql()} WHERE {reader.since('$1')} AND {reader.since('$2', '<')} GROUP BY 1, 2"
    )


async def daily_spend(reader: PostgresReader, day: str, days: int = HISTORY_DAYS) -> SpendHistory:
    """Spend per agent and UTC day over the `days` whole days before `day` (YYYY-MM-DD)."""
    end = datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=UTC)
    start = end - timedelta(days=days)
    rows = await fetch(reader, daily_spend_sql, start, end,
                       timeout=max(HISTORY_TIMEOUT, reader.settings.timeout_seconds * 100))
    # A day of flat-rate calls only spent $0: the agent was there, and that day counts.
    sums = tuple((r["agent"], (r["day"] - start).days, r["cost"]) for r in rows)
    return SpendHistory(day, days, sums)
