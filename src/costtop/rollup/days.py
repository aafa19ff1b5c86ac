"""A closed UTC day's figures that no bucket holds, kept by `costtop rollup` for `costtop report`: each
agent's highest spend over 5 consecutive minutes, and the day's costliest traces.

Both are a scan of the day's rows (a trace is a GROUP BY over millions of trace ids: 16-19 s at 10
million rows a day; the peaks read 864,000 minute buckets at the benchmark's shape), too slow for a
report that should answer in under a second and too costly for the gateway to keep per batch. So the
job works them out once a day is closed, from the rows, in one snapshot, and writes down how many rows
that was (`days.calls`). A report uses them only while the day's buckets still count that many rows:
a row that reached the day later (a late row rolled up by `verify`, a gateway's drained fallback row)
makes the report read the rows again, exactly, until the job's next run sums the day again.

The rows are read as the buckets read them (`rows_between`): the same rows, the same usable cost.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

import asyncpg

from costtop.config import TableNames
from costtop.rollup.read import Fetch, rows_between
from costtop.rollup.schema import rollup_table

if TYPE_CHECKING:
    from costtop.sources.postgres import PostgresReader

TOP_TRACES = 10
PEAK_MINUTES = 5


@dataclass(frozen=True, slots=True)
class Peak:
    agent: str | None
    cost: Decimal  # the spend of the PEAK_MINUTES minutes to `ended`
    ended: datetime  # the start of the window's last minute


@dataclass(frozen=True, slots=True)
class DaySummary:
    """What the job wrote down for a day, read in the same snapshot as the day's buckets."""

    calls: int  # the rows it was worked out from
    peaks: list[Peak]
    traces: list[asyncpg.Record]  # trace, agent, steps, cost, started, ended; costliest first


def traces_sql(reader: PostgresReader) -> str:
    """The TOP_TRACES costliest traces with a known cost in [$1, $2), costliest first (ties by id): the
    cost of a trace is its rows' in the range. The id as text, whatever its column's type."""
    ca, trace = reader.column("created_at"), reader.column("trace_id")
    return (f"SELECT ({trace})::text AS trace, min({reader.column('agent_id')}) AS agent, count(*) AS steps, "
            f"sum({reader.cost_sql()}) AS cost, min({ca}) AS started, max({ca}) AS ended "
            f"FROM {reader.table_sql()} WHERE {reader.since('$1')} AND {reader.since('$2', '<')} "
            f"AND {trace} IS NOT NULL "
            f"GROUP BY 1 HAVING sum({reader.cost_sql()}) IS NOT NULL ORDER BY 4 DESC, 1 LIMIT {TOP_TRACES}")


def peaks_sql(reader: PostgresReader) -> str:
    """Each agent's highest spend over PEAK_MINUTES consecutive minutes of [$1, $2), from the rows: the
    windows end at each minute in which the agent had a priced call, as `peaks` counts them; the
    earliest of equal windows."""
    minutes = (f"SELECT agent, date_trunc('minute', created_at, 'UTC') AS minute, sum(cost) AS cost "
               f"FROM {rows_between(reader.rows_from(), reader.since, '$1', '$2')} "
               "GROUP BY 1, 2 HAVING count(cost) > 0")
    windows = (f"SELECT agent, minute, sum(cost) OVER (PARTITION BY agent ORDER BY minute RANGE BETWEEN "
               f"interval '{PEAK_MINUTES - 1} minutes' PRECEDING AND CURRENT ROW) AS total FROM ({minutes}) m")
    return (f"SELECT DISTINCT ON (agent) agent, total AS cost, minute AS ended FROM ({windows}) w "
            "ORDER BY agent, total DESC, minute")


def peaks(minutes: Iterable[tuple[str | None, datetime, Decimal]]) -> list[Peak]:
    """What peaks_sql works out, from (agent, minute, cost) of each agent's priced minutes: for a day the
    job has not summed (or whose rows changed since), read from the buckets or the rows."""
    by_agent: dict[str | None, dict[datetime, Decimal]] = defaultdict(dict)
    for agent, minute, cost in minutes:
        by_agent[agent][minute] = cost
    best: list[Peak] = []
    for agent, costs in by_agent.items():
        top: Peak | None = None
        for minute in sorted(costs):
            total = sum((costs.get(minute - timedelta(minutes=i), Decimal(0)) for i in range(PEAK_MINUTES)),
                        Decimal(0))
            if top is None or total > top.cost:
                top = Peak(agent, total, minute)
        assert top is not None
        best.append(top)
    return best


async def stale_days(fetch: Fetch, tables: TableNames, source: int, first: datetime, end: datetime,
                     recount_from: datetime) -> list[datetime]:
    """The days in [first, end) with rows in the buckets and no summary, or (from `recount_from` on)
    a summary of another number of rows than their buckets now hold."""
    rows = await fetch(
        f"SELECT b.bucket AS day FROM {rollup_table(tables, 'buckets')} b "
        f"LEFT JOIN {rollup_table(tables, 'days')} d ON d.source = b.source AND d.day = b.bucket "
        "WHERE b.source = $1 AND b.grain = 'd' AND b.bucket >= $2 AND b.bucket < $3 "
        "GROUP BY b.bucket, d.calls "
        "HAVING d.calls IS NULL OR (b.bucket >= $4 AND d.calls <> sum(b.calls)) ORDER BY 1",
        source, first, end, recount_from)
    return [r["day"] for r in rows]


async def summarise_day(conn: asyncpg.Connection, reader: PostgresReader, source: int, day: datetime,
                        hashed: str) -> int:
    """Work out `day`'s peaks and traces from its rows and write them in place of any earlier ones, in
    one repeatable-read transaction (the count, the peaks and the traces of the same rows). `hashed`
    is the SET LOCALs that plan the GROUP BYs as hash aggregates. Returns the rows counted."""
    tables = reader.tables
    end = day + timedelta(days=1)
    async with conn.transaction(isolation="repeatable_read"):
        await conn.execute(hashed)
        calls = int(await conn.fetchval(
            f"SELECT count(*) FROM {rows_between(reader.rows_from(), reader.since, '$1', '$2')}", day, end))
        for name in ("days", "day_peaks", "day_traces"):
            await conn.execute(f"DELETE FROM {rollup_table(tables, name)} WHERE source = $1 AND day = $2", source, day)
        await conn.execute(f"INSERT INTO {rollup_table(tables, 'day_peaks')} (source, day, agent, cost, ended) "
                           f"SELECT $3::integer, $1::timestamptz, agent, cost, ended FROM ({peaks_sql(reader)}) p",
                           day, end, source)
        if reader.columns is not None and reader.columns.has("trace_id"):
            await conn.execute(
                f"INSERT INTO {rollup_table(tables, 'day_traces')} "
                "(source, day, rank, trace, agent, steps, cost, started, ended) "
                "SELECT $3::integer, $1::timestamptz, row_number() OVER (ORDER BY cost DESC, trace), "
                f"trace, agent, steps, cost, started, ended FROM ({traces_sql(reader)}) t", day, end, source)
        await conn.execute(f"INSERT INTO {rollup_table(tables, 'days')} (source, day, calls) VALUES ($1, $2, $3)",
                           source, day, calls)
    return calls


async def day_summary(fetch: Fetch, tables: TableNames, source: int, day: datetime) -> DaySummary | None:
    """The job's summary of `day`, or None when it has none (or the tables are older than it)."""
    found = await fetch(f"SELECT calls FROM {rollup_table(tables, 'days')} WHERE source = $1 AND day = $2", source, day)
    if not found:
        return None
    peak_rows = await fetch(f"SELECT agent, cost, ended FROM {rollup_table(tables, 'day_peaks')} "
                            "WHERE source = $1 AND day = $2", source, day)
    traces = await fetch(f"SELECT trace, agent, steps, cost, started, ended FROM {rollup_table(tables, 'day_traces')} "
                         "WHERE source = $1 AND day = $2 ORDER BY rank", source, day)
    return DaySummary(int(found[0]["calls"]), [Peak(r["agent"], r["cost"], r["ended"]) for r in peak_rows], traces)


__all__ = ["TOP_TRACES", "DaySummary", "Peak", "day_summary", "peaks", "stale_days", "summarise_day",
           "traces_sql"]
