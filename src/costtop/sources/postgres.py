"""Reading `tool_calls`: one consistent baseline at start, then only the rows since the watermark.

Every query filters on created_at (index `tool_calls_created_at_idx` from `costtop db init`), so the
work per refresh depends on the rows written since the last refresh, never on the table's size.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import asyncpg

from costtop.config import OPTIONAL_COLUMNS, REQUIRED_COLUMNS, Settings
from costtop.sources.dedup import IdWatermark, Watermark
from costtop.sources.errors import PG_ERRORS, SourceError, TableMissing
from costtop.sources.numbers import MAX_USD, MIN_USD
from costtop.sources.records import (
    Baseline,
    CallRecord,
    DayAggregate,
    DayBaseline,
    MinuteAggregate,
    ProviderSecond,
    UsageAggregate,
    WindowGroup,
)
from costtop.sources.schema import qident, qualified
from costtop.text import clean, mask_url, one_line

# Start-up reads the 5-minute window (plus a margin) row by row; everything else as sums.
RAW_SECONDS = 301  # the exact 5-minute window, and the second the clock may move on meanwhile
MINUTE_WINDOW = 60
RELEASE_SECONDS = 0.5  # past a query's own timeout, how long giving its connection back may take
READ_BATCH = 100_000
GAP_LOOKBACK = 10_000  # ids below the newest one checked for open transactions at start-up


@dataclass(frozen=True)
class Columns:
    """Which optional columns this table has; the screen drops what it cannot fill."""

    present: frozenset[str]

    def has(self, logical: str) -> bool:
        return logical in self.present


def utc_day_start(now: datetime) -> datetime:
    return now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def day_sums(groups: list[asyncpg.Record], day: str) -> tuple[DayAggregate, ...]:
    """Per-agent sums of today's groups (a NULL cost sum stays unknown only if every part was)."""
    sums: dict[str, list[object]] = {}
    for r in groups:
        if not r["today"]:
            continue
        acc = sums.setdefault(r["agent"], [None, 0, 0, 0, 0, 0, 0, 0])
        if r["cost"] is not None:
            acc[0] = r["cost"] if acc[0] is None else acc[0] + r["cost"]  # type: ignore[operator]
        for i, name in enumerate(("calls", "priced", "errors", "tin", "cached", "unusable", "negative"), start=1):
            acc[i] = acc[i] + int(r[name])  # type: ignore[operator]
    return tuple(DayAggregate(agent, day, a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7])  # type: ignore[arg-type]
                 for agent, a in sums.items())


def provider_seconds(window: list[asyncpg.Record]) -> tuple[ProviderSecond, ...]:
    """The window's (agent, provider, second) groups summed per (provider, second)."""
    sums: dict[tuple[int, str | None], list] = {}
    for r in window:
        acc = sums.setdefault((int(r["second"].timestamp()), r["provider"]), [0, 0, []])
        acc[0] += r["calls"]
        acc[1] += r["errors"]
        acc[2].extend(r["latencies"] or ())
    return tuple(ProviderSecond(second, provider, calls, errors, tuple(latencies))
                 for (second, provider), (calls, errors, latencies) in sums.items())


def usage_sums(groups: list[asyncpg.Record]) -> tuple[UsageAggregate, ...]:
    """Per (model, provider) sums of today's groups."""
    sums: dict[tuple[str | None, str | None], list[object]] = {}
    names = ("calls", "priced", "errors", "tin", "tout", "cached", "flat_tin", "flat_tout", "flat_cached",
             "unusable")
    for r in groups:
        if not r["today"]:
            continue
        acc = sums.setdefault((r["model"], r["provider"]), [None] + [0] * len(names))
        if r["cost"] is not None:
            acc[0] = r["cost"] if acc[0] is None else acc[0] + r["cost"]  # type: ignore[operator]
        for i, name in enumerate(names, start=1):
            acc[i] = acc[i] + int(r[name])  # type: ignore[operator]
    return tuple(UsageAggregate(model, provider, *a) for (model, provider), a in sums.items())  # type: ignore[arg-type]


class PostgresReader:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.tables = settings.tables
        self.pool: asyncpg.Pool | None = None
        self.columns: Columns | None = None
        self.watermark: Watermark | IdWatermark | None = None
        self.id_mode = False
        # How long an id missing below the newest one is asked for again (an open transaction).
        self.gap_lifetime = max(60.0, settings.overlap_seconds)
        self._select: str = ""
        self._connecting = asyncio.Lock()
        # The start-up snapshot between start_baseline and finish_baseline: connection, transaction,
        # day start, first minute of the hour.
        self._pending: tuple[asyncpg.Connection, asyncpg.transaction.Transaction, datetime, datetime] | None = None

    def error(self, exc: BaseException, timeout: float | None = None) -> SourceError:
        url = self.settings.database_url
        secrets = (url, mask_url(url))
        seconds = timeout or self.settings.timeout_seconds
        if isinstance(exc, TimeoutError):
            return SourceError(f"Postgres timed out after {seconds:g} s")
        if isinstance(exc, asyncpg.exceptions.InternalClientError):
            # What the client says when a timed-out call's connection could not be given back: the
            # server stopped answering (frozen, or the network between went dead).
            return SourceError(f"Postgres stopped answering (nothing within {seconds:g} s)")
        if isinstance(exc, OSError):
            return SourceError(f"Postgres unreachable at {mask_url(url)}: {clean(exc.strerror or exc, 80)}")
        return SourceError(one_line(exc, secrets[:1]))

    async def connect(self) -> None:
        """Open the pool and learn the table's columns; raises SourceError with one line. One at a time:
        the live loop, the history read and the drill-down may all find the pool gone at once."""
        async with self._connecting:
            if self.pool is not None and self.columns is not None:
                return
            await self._connect()

    async def _connect(self) -> None:
        timeout = self.settings.timeout_seconds
        try:
            async with asyncio.timeout(timeout * 3):  # a server that accepts but never answers
                if self.pool is None:
                    self.pool = await asyncpg.create_pool(
                        self.settings.database_url, min_size=1, max_size=3, timeout=timeout,
                        command_timeout=timeout, server_settings={"application_name": "costtop"},
                    )
                rows = await self.pool.fetch(
                    "SELECT column_name, data_type FROM information_schema.columns "
                    "WHERE table_schema = $1 AND table_name = $2",
                    self.tables.schema_name, self.tables.calls, timeout=timeout,
                )
        except SourceError:
            raise
        except (*PG_ERRORS, ValueError) as exc:
            await self.close()
            raise self.error(exc) from None
        real = {r["column_name"] for r in rows}
        if not real:
            await self.close()
            raise TableMissing(f"table {self.tables.schema_name}.{self.tables.calls} not found "
                               "(run `costtop db init`, or set tables.calls)")
        logical = {name for name in (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS) if self.tables.column(name) in real}
        missing = [name for name in REQUIRED_COLUMNS if name not in logical]
        if missing:
            await self.close()
            raise TableMissing(f"table {self.tables.calls} lacks required column(s): {', '.join(missing)}")
        self.columns = Columns(frozenset(logical))
        types = {r["column_name"]: r["data_type"] for r in rows}
        self.id_mode = types.get(self.tables.column("id")) in ("bigint", "integer", "smallint")
        self._select = self.select_list_sql()

    async def close(self) -> None:
        self._pending = None  # its connection goes with the pool
        if self.pool is not None:
            pool, self.pool = self.pool, None
            pool.terminate()

    def column(self, logical: str) -> str:
        return qident(self.tables.column(logical))

    def optional(self, logical: str, cast: str = "") -> str:
        assert self.columns is not None
        return f"{self.column(logical)}{cast}" if self.columns.has(logical) else f"NULL{cast}"

    def raw_cost_sql(self) -> str:
        """The cost as stored (a numeric or a double precision column alike); NULL is a flat-rate call."""
        assert self.columns is not None
        return f"{self.column('cost_usd')}::numeric" if self.columns.has("cost_usd") else "NULL::numeric"

    def cost_sql(self) -> str:
        """The cost when it is a figure to add up (`numbers.in_range`: zero, or a magnitude in
        [MIN_USD, MAX_USD)), else NULL: NaN and ±Infinity (abs() of both is not below the bound) and
        absurd magnitudes. Negative costs stay: they are summed as SQL sums them, and flagged.
        A row whose cost is NULL here but not in `raw_cost_sql` is left out, never a flat-rate call."""
        cost = self.raw_cost_sql()
        if cost == "NULL::numeric":
            return cost
        return f"(CASE WHEN abs({cost}) < {MAX_USD} AND (abs({cost}) >= {MIN_USD} OR {cost} = 0) THEN {cost} END)"

    def record_cost_sql(self) -> str:
        """A row's cost for `CallRecord`: the usable cost, NULL for a flat-rate call, and NaN for a
        recorded cost that is not usable, so the engine flags it instead of taking it as flat-rate."""
        cost, raw = self.cost_sql(), self.raw_cost_sql()
        if raw == "NULL::numeric":
            return raw
        return f"(CASE WHEN {cost} IS NOT NULL THEN {cost} WHEN {raw} IS NOT NULL THEN 'NaN'::numeric END)"

    def _key(self) -> str:
        """What identifies a row for de-duplication: the id, or the physical row address without one."""
        assert self.columns is not None
        return self.column("id") if self.columns.has("id") else "ctid::text"

    def select_list_sql(self) -> str:
        return ", ".join([
            f"{self._key()} AS key", f"{self.column('created_at')} AS created_at",
            f"{self.column('agent_id')} AS agent_id",
            f"{self.column('tool_name')} AS tool_name", f"{self.column('latency_ms')} AS latency_ms",
            f"{self.optional('provider')} AS provider", f"{self.optional('model')} AS model",
            f"{self.optional('tokens_in')} AS tokens_in", f"{self.optional('tokens_out')} AS tokens_out",
            f"{self.optional('cached_tokens')} AS cached_tokens", f"{self.record_cost_sql()} AS cost_usd",
            f"{self.optional('status')} AS status", f"{self.optional('trace_id')} AS trace_id",
        ])

    def error_sql(self) -> str:
        assert self.columns is not None
        return f"{self.column('status')} = 'error'" if self.columns.has("status") else "false"

    def table_sql(self) -> str:
        return qualified(self.tables, self.tables.calls)

    @staticmethod
    def record(r: asyncpg.Record) -> CallRecord:
        # Text stays exactly as stored: an agent id is also the name of its kill switch, so a cleaned
        # copy would make `k` write a key the gateway never checks. The UI cleans what it renders.
        return CallRecord(
            key=r["key"], created_at=r["created_at"], agent_id=r["agent_id"], tool_name=r["tool_name"],
            latency_ms=r["latency_ms"], provider=r["provider"], model=r["model"],
            tokens_in=r["tokens_in"], tokens_out=r["tokens_out"], cached_tokens=r["cached_tokens"],
            cost_usd=r["cost_usd"], status=r["status"], trace_id=r["trace_id"],  # NaN: recorded, unusable
        )

    async def baseline(self, now: datetime) -> Baseline:
        """The whole baseline in one call: the window, then the day's sums, from one snapshot."""
        first = await self.start_baseline(now)
        rest = await self.finish_baseline()
        return replace(first, days=rest.days, month_before_today=rest.month_before_today, minutes=rest.minutes,
                       usage=rest.usage, hours=rest.hours, agent_hours=rest.agent_hours, pending=False)

    async def start_baseline(self, now: datetime) -> Baseline:
        """The quick half of start-up: the 5-minute window, read through the created_at index, and
        the watermark, in a REPEATABLE READ snapshot that stays open for `finish_baseline`. On a
        table of 10 million rows the day's sums take a minute; the window (velocity, what matters in
        an incident) does not have to wait for them."""
        await self._drop_pending()
        if self.pool is None or self.columns is None:
            await self.connect()
        assert self.pool is not None and self.columns is not None
        day_start = utc_day_start(now)
        window_from = now.astimezone(UTC).replace(microsecond=0) - timedelta(seconds=RAW_SECONDS)
        minute_from = now.astimezone(UTC).replace(second=0, microsecond=0) - timedelta(minutes=MINUTE_WINDOW)
        t, ca, cost, err = self.table_sql(), self.column("created_at"), self.cost_sql(), self.error_sql()
        agent, latency = self.column("agent_id"), self.column("latency_ms")
        provider = self.optional("provider")
        timeout = self.settings.timeout_seconds * 10
        conn = await self._acquire()
        tr = conn.transaction(isolation="repeatable_read", readonly=True)
        try:
            await tr.start()
            # One pass over the window, per agent, provider and second: the agents' windows and the
            # providers' (summed below) from the same rows and latencies.
            window = await conn.fetch(
                f"SELECT {agent} AS agent, {provider} AS provider, date_trunc('second', {ca}) AS second, "
                f"sum({cost}) AS cost, count({cost}) AS priced, count(*) AS calls, "
                f"count(*) FILTER (WHERE {err}) AS errors, "
                f"array_agg({latency}) FILTER (WHERE {latency} IS NOT NULL) AS latencies "
                f"FROM {t} WHERE {ca} >= $1 GROUP BY 1, 2, 3", window_from, timeout=timeout)
            self.watermark = await self._start_watermark(conn, timeout)
        except PG_ERRORS as exc:
            await self._release(conn, tr)
            raise self.error(exc) from None
        except BaseException:
            await self._release(conn, tr)
            raise
        self._pending = (conn, tr, day_start, minute_from)
        day = day_start.strftime("%Y-%m-%d")
        return Baseline(
            day=day, days=(), month_before_today=None, month=day[:7], minutes=(),
            window=tuple(WindowGroup(int(r["second"].timestamp()), r["agent"], r["cost"], r["priced"], r["calls"],
                                     r["errors"], tuple(r["latencies"] or ())) for r in window),
            providers=provider_seconds(window),
            pending=True,
        )

    async def finish_baseline(self) -> DayBaseline:
        """The slow half, in the snapshot `start_baseline` opened: per-agent sums of the day and
        per-minute sums of the hour in one scan, and the month before today. Rows read since by
        `new_rows` came after that snapshot, so the two never overlap."""
        if self._pending is None:
            raise SourceError("no start-up snapshot is open (Postgres reconnected): starting over")
        conn, _, day_start, minute_from = self._pending
        month_start = day_start.replace(day=1)
        # 24 whole hours for the chart: this one and the 23 before it.
        day_from = (minute_from + timedelta(minutes=MINUTE_WINDOW - 1)).replace(minute=0) - timedelta(hours=23)
        # Each agent's spend this clock hour and the one before, for the hour-over-hour anomaly.
        previous_hour = (minute_from + timedelta(minutes=MINUTE_WINDOW)).replace(minute=0) - timedelta(hours=1)
        t, ca, cost, err = self.table_sql(), self.column("created_at"), self.cost_sql(), self.error_sql()
        agent = self.column("agent_id")
        # A background read: the screen already runs on the window, so it may take minutes.
        timeout = max(300.0, self.settings.timeout_seconds * 100)
        try:
            # One scan of the last 24 hours, two groupings: per agent, model and provider (per minute
            # for the last hour, one group before it, the day flagged), so the result stays small at
            # any table size; and the fleet's spend per hour for the 24-hour chart. Buckets are cut in
            # UTC whatever the session's time zone (date_trunc, not extract(epoch): 4x faster).
            tin, tout = self.optional("tokens_in", "::bigint"), self.optional("tokens_out", "::bigint")
            cached = self.optional("cached_tokens", "::bigint")
            groups = await conn.fetch(
                "SELECT agent, provider, model, minute, today, hour, GROUPING(hour) = 0 AS is_hour, "
                "recent_hour, GROUPING(recent_hour) = 0 AS is_agent_hour, "
                "sum(cost) AS cost, count(*) AS calls, count(cost) AS priced, "
                "count(*) FILTER (WHERE error) AS errors, "
                "coalesce(sum(tin), 0) AS tin, coalesce(sum(tout), 0) AS tout, coalesce(sum(cached), 0) AS cached, "
                "coalesce(sum(tin) FILTER (WHERE raw_cost IS NULL), 0) AS flat_tin, "
                "coalesce(sum(tout) FILTER (WHERE raw_cost IS NULL), 0) AS flat_tout, "
                "coalesce(sum(cached) FILTER (WHERE raw_cost IS NULL), 0) AS flat_cached, "
                # Recorded but not a figure (NaN, infinite, absurd): left out of the sum, not flat-rate.
                "count(*) FILTER (WHERE raw_cost IS NOT NULL AND cost IS NULL) AS unusable, "
                "count(*) FILTER (WHERE cost < 0) AS negative "
                f"FROM (SELECT {agent} AS agent, {self.optional('provider')} AS provider, "
                f"{self.optional('model')} AS model, "
                f"CASE WHEN {ca} >= $2 THEN date_trunc('minute', {ca}, 'UTC') END AS minute, {ca} >= $1 AS today, "
                f"date_trunc('hour', {ca}, 'UTC') AS hour, "
                f"CASE WHEN {ca} >= $4 THEN date_trunc('hour', {ca}, 'UTC') END AS recent_hour, "
                f"{cost} AS cost, {self.raw_cost_sql()} AS raw_cost, ({err}) AS error, "
                f"{tin} AS tin, {tout} AS tout, {cached} AS cached "
                f"FROM {t} WHERE {ca} >= least($1, $2, $3)) AS rows "
                "GROUP BY GROUPING SETS ((agent, provider, model, minute, today), (hour), (agent, recent_hour))",
                day_start, minute_from, day_from, previous_hour, timeout=timeout)
            hours = [r for r in groups if r["is_hour"]]
            agent_hours = [r for r in groups if r["is_agent_hour"] and r["recent_hour"] is not None]
            groups = [r for r in groups if not r["is_hour"] and not r["is_agent_hour"]]
            month = await conn.fetchval(
                f"SELECT sum({cost}) FROM {t} WHERE {ca} >= $1 AND {ca} < $2",
                month_start, day_start, timeout=timeout)
        except PG_ERRORS as exc:
            await self._drop_pending()
            if isinstance(exc, TimeoutError):
                raise SourceError(f"Postgres: today's totals timed out after {timeout:g} s") from None
            raise self.error(exc) from None
        finally:
            if self._pending is not None:
                await self._drop_pending()
        day = day_start.strftime("%Y-%m-%d")
        return DayBaseline(
            day=day,
            days=day_sums(groups, day),
            month_before_today=month if month is not None else Decimal(0),
            month=day[:7],
            minutes=tuple(MinuteAggregate(r["agent"], int(r["minute"].timestamp()) // 60, r["cost"], r["calls"],
                                          r["errors"]) for r in groups if r["minute"] is not None),
            usage=usage_sums(groups),
            hours=tuple((int(r["hour"].timestamp()) // 3600, r["cost"]) for r in hours if r["cost"] is not None),
            agent_hours=tuple((r["agent"], int(r["recent_hour"].timestamp()) // 3600, r["cost"])
                              for r in agent_hours if r["cost"] is not None),
        )

    async def _acquire(self) -> asyncpg.Connection:
        assert self.pool is not None
        try:
            return await self.pool.acquire(timeout=self.settings.timeout_seconds)
        except PG_ERRORS as exc:
            raise self.error(exc) from None

    async def _release(self, conn: asyncpg.Connection, tr: asyncpg.transaction.Transaction) -> None:
        """End the snapshot's read-only transaction and give its connection back, whatever its state."""
        pool = self.pool
        try:
            async with asyncio.timeout(self.settings.timeout_seconds):
                await tr.rollback()
        except PG_ERRORS:
            conn.terminate()  # mid-query, broken, or a server that stopped answering: not to be reused
        finally:
            if pool is not None:
                with contextlib.suppress(Exception):
                    await pool.release(conn, timeout=self.settings.timeout_seconds)

    async def _drop_pending(self) -> None:
        if self._pending is not None:
            conn, tr = self._pending[0], self._pending[1]
            self._pending = None
            await self._release(conn, tr)

    async def _start_watermark(self, conn: asyncpg.Connection, timeout: float) -> Watermark | IdWatermark:
        """Where incremental reads begin, inside the baseline's snapshot."""
        t = self.table_sql()
        if self.id_mode:
            pk = self.column("id")
            high = await conn.fetchval(f"SELECT max({pk}) FROM {t}", timeout=timeout)
            high = int(high) if high is not None else 0
            # Ids just below the top that this snapshot cannot see belong to transactions still in
            # flight: they are read when they commit.
            visible = await conn.fetch(f"SELECT {pk} AS id FROM {t} WHERE {pk} > $1", high - GAP_LOOKBACK,
                                       timeout=timeout)
            seen = {int(r["id"]) for r in visible}
            gaps = [i for i in range(max(1, high - GAP_LOOKBACK + 1), high + 1) if i not in seen]
            return IdWatermark(high, gaps, time.monotonic(), self.gap_lifetime)
        ca = self.column("created_at")
        high = await conn.fetchval(f"SELECT max({ca}) FROM {t}", timeout=timeout)
        start = high or datetime.now(UTC)
        watermark = Watermark(start, self.settings.overlap_seconds)
        # Everything this snapshot sees is in the sums; the first re-read must not count it again.
        summed = await conn.fetch(f"SELECT {self._key()} AS key, {ca} AS created_at FROM {t} WHERE {ca} >= $1",
                                  watermark.read_from, timeout=timeout)
        watermark.mark_seen((r["key"], r["created_at"]) for r in summed)
        return watermark

    async def fetch_rows(self, sql: str, *args: object, timeout: float | None = None) -> list[asyncpg.Record]:
        """`pool.fetch` under one deadline for all of it: the wait for a connection, the query, and
        giving the connection back. A server that stops answering (frozen, or a dead network) would
        otherwise hang the reset that follows a timed-out query; past the deadline the pool is
        dropped and the next read connects afresh. Failures as one-line SourceErrors."""
        limit = timeout or self.settings.timeout_seconds
        pool = self.pool
        assert pool is not None
        started = time.monotonic()
        deadline = asyncio.timeout(limit + RELEASE_SECONDS)
        try:
            async with deadline:
                return await pool.fetch(sql, *args, timeout=limit)
        except PG_ERRORS as exc:
            # A query past its own timeout on a healthy server leaves the pool fine; a connection that
            # could not even be given back (the deadline), or a broken socket, means the pool is not.
            broken = deadline.expired() or not isinstance(exc, (TimeoutError, asyncpg.PostgresError))
            if broken and self.pool is pool:
                self.pool = None
                self._pending = None
                pool.terminate()
            raise self.error(exc, round(time.monotonic() - started, 1)) from None

    async def new_rows(self) -> list[CallRecord]:
        """Rows committed since the last read, each returned once."""
        assert self.watermark is not None, "baseline() first"
        if self.pool is None or self.columns is None:
            await self.connect()
        assert self.pool is not None
        t = self.table_sql()
        if isinstance(self.watermark, IdWatermark):
            pk = self.column("id")
            high, gaps = self.watermark.params()
            # Two index probes on the primary key: the new ids, and the few still missing.
            query = f"SELECT {self._select} FROM {t} WHERE {pk} > $1"
            args: tuple[object, ...] = (high,)
            if gaps:
                query += f" OR {pk} = ANY($2::bigint[])"
                args = (high, gaps)
            rows = await self.fetch_rows(f"{query} ORDER BY {pk} LIMIT {READ_BATCH}", *args)
            return self.watermark.accept((self.record(r) for r in rows), time.monotonic())
        ca = self.column("created_at")
        rows = await self.fetch_rows(
            f"SELECT {self._select} FROM {t} WHERE {ca} >= $1 ORDER BY {ca} LIMIT {READ_BATCH}",
            self.watermark.read_from)
        return self.watermark.accept(self.record(r) for r in rows)


async def fetch(reader: PostgresReader, build: Callable[[PostgresReader], str], *args: object,
                timeout: float | None = None) -> list[asyncpg.Record]:
    """One bounded read on the reader's pool (connected first: the SQL depends on the columns it
    found), with a timeout (three times the reader's unless given); failures as one-line SourceErrors."""
    if reader.pool is None or reader.columns is None:
        await reader.connect()
    return await reader.fetch_rows(build(reader), *args, timeout=timeout or reader.settings.timeout_seconds * 3)
