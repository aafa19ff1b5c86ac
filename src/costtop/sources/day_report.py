"""The reads behind `costtop report`: one UTC day's sums, each agent's 5-minute peak, the costliest traces
and the audit rows.

The sums come from the rollup's day buckets where it holds the day; the peaks and traces from what
`costtop rollup` worked out once the day closed (rollup/days.py), while the buckets still count the
rows those came from. Otherwise the peaks come from minute buckets or rows and the traces from a scan
of the day's rows. Each read is bounded to the day through the created_at index (the audit table
through its `at` index) and has a timeout; the rendering is costtop/report.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

import asyncpg

from costtop.config import Settings
from costtop.money import usd
from costtop.rollup.days import Peak, traces_sql
from costtop.rollup.days import peaks as peaks_of
from costtop.rollup.read import Group
from costtop.sources import litellm_daily
from costtop.sources.errors import SourceError
from costtop.sources.history import daily_spend
from costtop.sources.postgres import PostgresReader, fetch, utc_day_start
from costtop.sources.records import SpendHistory
from costtop.sources.schema import qualified

READ_TIMEOUT = 300.0  # a whole day of rows, read once
CENT = Decimal("0.01")


@dataclass(frozen=True, slots=True)
class DayRecords:
    day: str
    agents: list[Usage]
    models: list[Usage]
    providers: list[Usage]
    peaks: list[Peak]  # each agent's highest 5-minute spend
    traces: list[asyncpg.Record]  # trace, agent, steps, cost, started, ended; costliest first
    history: SpendHistory  # the 7 days before, for the day's anomaly
    audit: list[asyncpg.Record] | str  # or why the audit table could not be read
    # The day's spend and where it came from, when LiteLLM's daily tables gave it (preset `litellm`):
    # the agents' sum is not the day's when the agents come from a spend log that lost rows.
    total: Decimal | None = None
    note: str | None = None


@dataclass(frozen=True, slots=True)
class Usage:
    name: str | None
    spend: Decimal
    calls: int | None  # None: not known (the spend log no longer holds the day)
    errors: int | None


def usage_of(groups: list[Group], key: str) -> list[Usage]:
    """The groups' spend, calls and errors summed per agent, model or provider."""
    sums: dict[str | None, list] = {}
    for g in groups:
        acc = sums.setdefault(getattr(g, key), [Decimal(0), 0, 0])
        acc[0] += g.cost
        acc[1] += g.calls
        acc[2] += g.errors
    return [Usage(name, spend, calls, errors) for name, (spend, calls, errors) in sums.items()]


async def day_records(reader: PostgresReader, settings: Settings, day: str) -> DayRecords:
    """The day's records through `reader` (connected here if it is not yet)."""
    start = datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=UTC)
    end = start + timedelta(days=1)
    if reader.columns is None:
        await reader.connect()
    assert reader.columns is not None
    groups, summary = await reader.read_closed_day(start, READ_TIMEOUT)
    if summary is not None:
        peaks, traces = summary.peaks, summary.traces
    else:
        by_minute = (await reader.read_layered(start, end, "minute", READ_TIMEOUT, by=("agent",))).groups
        peaks = peaks_of((g.agent, g.bucket, g.cost) for g in by_minute if g.priced)
        traces = await fetch(reader, traces_sql, start, end, timeout=READ_TIMEOUT) \
            if reader.columns.has("trace_id") else []
    history = await daily_spend(reader, day)
    closed = await _closed_day(reader, settings, day)
    audit = await _audit(reader, settings, start, end)
    agents, models, providers = (usage_of(groups, key) for key in ("agent", "model", "provider"))
    if closed is None:
        return DayRecords(day, agents, models, providers, peaks, traces, history, audit)
    # LiteLLM's daily tables hold the day's spend; the spend log still gives calls, errors, peaks and
    # traces, for as much of the day as its retention left.
    logged = sum((a.spend for a in agents), Decimal(0)).quantize(CENT, ROUND_HALF_UP)
    gone = not groups and bool(closed.models)
    if gone:
        note = ("LiteLLM's spend log no longer holds this day (its retention deleted it): spend is from "
                "LiteLLM's daily tables; calls, errors, alerts and traces are not known.")
    elif logged != closed.total:
        note = (f"LiteLLM's spend log holds {usd(logged)} of this day's {usd(closed.total)} (its retention "
                "deleted part of it): spend is from LiteLLM's daily tables; calls, errors, alerts and traces "
                "cover only the rows left.")
    else:
        note = "Spend is from LiteLLM's daily tables; calls, errors, alerts and traces from its spend log."
    if closed.agents is not None:
        agents = _merged(closed.agents, agents, gone)
    return DayRecords(day, agents, _merged(closed.models, models, gone), _merged(closed.providers, providers, gone),
                      peaks, traces, history, audit, closed.total, note)


def _merged(spend: dict[str | None, Decimal], logged: list[Usage], gone: bool) -> list[Usage]:
    """The daily table's spend per name, with the spend log's calls and errors for it: none known when
    the log lost the day, 0 for a name the log does not hold. A name only the log holds (calls without
    an agent, which the agent tables leave out) keeps the log's spend."""
    by_name = {u.name: u for u in logged}
    out = [Usage(name, cost, *((None, None) if gone else
                               (by_name[name].calls, by_name[name].errors) if name in by_name else (0, 0)))
           for name, cost in spend.items()]
    return out + [u for u in logged if u.name not in spend]


async def _closed_day(reader: PostgresReader, settings: Settings, day: str) -> litellm_daily.DaySpend | None:
    """The day's spend from LiteLLM's daily tables (preset `litellm`, a closed day), or None."""
    run = reader.pool_fetch(READ_TIMEOUT)
    tables = await reader.daily_tables(run)
    if tables is None:
        return None
    return await litellm_daily.day_spend(run, tables, settings.litellm.identity, day, utc_day_start(reader.clock()))


async def _audit(reader: PostgresReader, settings: Settings, start: datetime,
                 end: datetime) -> list[asyncpg.Record] | str:
    """The day's switch changes, or why they cannot be read (no audit table, no SELECT grant)."""
    table = qualified(settings.tables, settings.tables.audit)
    try:
        # A missing table is said so: read, it fails as a missing relation, which the reader words as its
        # calls table changing (a LiteLLM database where `costtop db init` never ran has no audit table).
        found = await reader.fetch_rows("SELECT to_regclass($1) IS NOT NULL AS found", table)
        if not found[0]["found"]:
            name = f"{settings.tables.schema_name}.{settings.tables.audit}"
            return f"not there: no table {name} (`costtop db init` creates it)"
        return await reader.fetch_rows(
            f"SELECT at, operator, ssh_client, action, key, reason, ttl_seconds, result FROM {table} "
            "WHERE at >= $1 AND at < $2 ORDER BY at, id", start, end, timeout=settings.timeout_seconds * 10)
    except SourceError as exc:
        return f"not readable: {exc}"



