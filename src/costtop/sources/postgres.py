"""Reading `tool_calls`: one consistent baseline at start, then only the rows since the watermark.

Every query filters on created_at (index `tool_calls_created_at_idx` from `costtop db init`), so the
work per refresh depends on the rows written since the last refresh, never on the table's size.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import asyncpg

from costtop.config import OPTIONAL_COLUMNS, REQUIRED_COLUMNS, Settings
from costtop.sources.dedup import Watermark
from costtop.sources.errors import SourceError, TableMissing
from costtop.sources.numbers import finite_or_none
from costtop.sources.records import Baseline, CallRecord, DayAggregate, MinuteAggregate
from costtop.sources.schema import qident, qualified
from costtop.text import clean, mask_url, one_line

# Raw rows are kept for the exact 5-minute window plus the re-read overlap; older rows are summed.
RAW_SECONDS = 360
MINUTE_WINDOW = 60
READ_BATCH = 100_000


@dataclass(frozen=True)
class Columns:
    """Which optional columns this table has; the screen drops what it cannot fill."""

    present: frozenset[str]

    def has(self, logical: str) -> bool:
        return logical in self.present


def utc_day_start(now: datetime) -> datetime:
    return now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


class PostgresReader:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.tables = settings.tables
        self.pool: asyncpg.Pool | None = None
        self.columns: Columns | None = None
        self.watermark: Watermark | None = None
        self._select: str = ""

    def _error(self, exc: BaseException) -> SourceError:
        url = self.settings.database_url
        secrets = (url, mask_url(url))
        if isinstance(exc, TimeoutError):
            return SourceError(f"Postgres timed out after {self.settings.timeout_seconds:g} s")
        if isinstance(exc, OSError):
            return SourceError(f"Postgres unreachable at {mask_url(url)}: {clean(exc.strerror or exc, 80)}")
        return SourceError(one_line(exc, secrets[:1]))

    async def connect(self) -> None:
        """Open the pool and learn the table's columns; raises SourceError with one line."""
        timeout = self.settings.timeout_seconds
        try:
            if self.pool is None:
                self.pool = await asyncpg.create_pool(
                    self.settings.database_url, min_size=1, max_size=3, timeout=timeout,
                    command_timeout=timeout, server_settings={"application_name": "costtop"},
                )
            rows = await self.pool.fetch(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2",
                self.tables.schema_name, self.tables.calls, timeout=timeout,
            )
        except SourceError:
            raise
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError, ValueError) as exc:
            await self.close()
            raise self._error(exc) from None
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
        self._select = self._select_list()

    async def close(self) -> None:
        if self.pool is not None:
            pool, self.pool = self.pool, None
            pool.terminate()

    def _col(self, logical: str) -> str:
        return qident(self.tables.column(logical))

    def _opt(self, logical: str, cast: str = "") -> str:
        assert self.columns is not None
        return f"{self._col(logical)}{cast}" if self.columns.has(logical) else f"NULL{cast}"

    def _cost(self) -> str:
        """The cost, or NULL when it is NaN or infinite (abs() of both is not below any bound)."""
        assert self.columns is not None
        if not self.columns.has("cost_usd"):
            return "NULL::numeric"
        cost = f"{self._col('cost_usd')}::numeric"
        return f"(CASE WHEN abs({cost}) < 1e100 THEN {cost} END)"

    def _select_list(self) -> str:
        assert self.columns is not None
        key = self._col("id") if self.columns.has("id") else "ctid::text"
        return ", ".join([
            f"{key} AS key", f"{self._col('created_at')} AS created_at", f"{self._col('agent_id')} AS agent_id",
            f"{self._col('tool_name')} AS tool_name", f"{self._col('latency_ms')} AS latency_ms",
            f"{self._opt('provider')} AS provider", f"{self._opt('model')} AS model",
            f"{self._opt('tokens_in')} AS tokens_in", f"{self._opt('tokens_out')} AS tokens_out",
            f"{self._opt('cached_tokens')} AS cached_tokens", f"{self._cost()} AS cost_usd",
            f"{self._opt('status')} AS status", f"{self._opt('trace_id')} AS trace_id",
        ])

    def _error_expr(self) -> str:
        assert self.columns is not None
        return f"{self._col('status')} = 'error'" if self.columns.has("status") else "false"

    @property
    def _table(self) -> str:
        return qualified(self.tables, self.tables.calls)

    @staticmethod
    def _record(r: asyncpg.Record) -> CallRecord:
        # Text stays exactly as stored: an agent id is also the name of its kill switch, so a cleaned
        # copy would make `k` write a key the gateway never checks. The UI cleans what it renders.
        return CallRecord(
            key=r["key"], created_at=r["created_at"], agent_id=r["agent_id"], tool_name=r["tool_name"],
            latency_ms=r["latency_ms"], provider=r["provider"], model=r["model"],
            tokens_in=r["tokens_in"], tokens_out=r["tokens_out"], cached_tokens=r["cached_tokens"],
            cost_usd=finite_or_none(r["cost_usd"]), status=r["status"], trace_id=r["trace_id"],
        )

    async def baseline(self, now: datetime) -> Baseline:
        """Everything the screen needs from before now, read in one REPEATABLE READ snapshot so that
        the bulk sums and the raw rows neither overlap nor leave a gap."""
        if self.pool is None or self.columns is None:
            await self.connect()
        assert self.pool is not None
        day_start = utc_day_start(now)
        month_start = day_start.replace(day=1)
        raw_from = now.astimezone(UTC).replace(microsecond=0) - timedelta(seconds=RAW_SECONDS)
        minute_from = raw_from.replace(second=0) - timedelta(minutes=MINUTE_WINDOW)
        month_until = min(day_start, raw_from)
        t, ca = self._table, self._col("created_at")
        cost = self._cost()
        err = self._error_expr()
        key = self._col("id") if self.columns.has("id") else "ctid::text"
        overlap = timedelta(seconds=self.settings.overlap_seconds)
        timeout = self.settings.timeout_seconds * 3
        try:
            async with self.pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
                days = await conn.fetch(
                    f"SELECT {self._col('agent_id')} AS agent, sum({cost}) AS cost, count(*) AS calls, "
                    f"count({cost}) AS priced, count(*) FILTER (WHERE {err}) AS errors, "
                    f"coalesce(sum({self._opt('tokens_in', '::bigint')}), 0) AS tin, "
                    f"coalesce(sum({self._opt('cached_tokens', '::bigint')}), 0) AS cached "
                    f"FROM {t} WHERE {ca} >= $1 AND {ca} < $2 GROUP BY 1",
                    day_start, raw_from, timeout=timeout)
                month = await conn.fetchval(
                    f"SELECT sum({cost}) FROM {t} WHERE {ca} >= $1 AND {ca} < $2",
                    month_start, month_until, timeout=timeout)
                minutes = await conn.fetch(
                    f"SELECT {self._col('agent_id')} AS agent, "
                    f"floor(extract(epoch FROM {ca}) / 60)::bigint AS minute, sum({cost}) AS cost, "
                    f"count(*) AS calls, count(*) FILTER (WHERE {err}) AS errors "
                    f"FROM {t} WHERE {ca} >= $1 AND {ca} < $2 GROUP BY 1, 2",
                    minute_from, raw_from, timeout=timeout)
                rows = await conn.fetch(
                    f"SELECT {self._select} FROM {t} WHERE {ca} >= $1 ORDER BY {ca}", raw_from, timeout=timeout)
                # Rows just before the raw horizon are in the sums above; the first incremental read
                # goes back that far, so they must count as seen.
                summed = await conn.fetch(
                    f"SELECT {key} AS key, {ca} AS created_at FROM {t} WHERE {ca} >= $1 AND {ca} < $2",
                    raw_from - overlap, raw_from, timeout=timeout)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise self._error(exc) from None
        day = day_start.strftime("%Y-%m-%d")
        records = [self._record(r) for r in rows]
        self.watermark = Watermark(raw_from, self.settings.overlap_seconds)
        self.watermark.mark_seen((r["key"], r["created_at"]) for r in summed)
        self.watermark.accept(records)
        return Baseline(
            day=day,
            days=tuple(DayAggregate(r["agent"], day, finite_or_none(r["cost"]), r["calls"], r["priced"],
                                    r["errors"], int(r["tin"]), int(r["cached"])) for r in days),
            month_before_today=finite_or_none(month) if month is not None else Decimal(0),
            month=day[:7],
            minutes=tuple(MinuteAggregate(r["agent"], int(r["minute"]), finite_or_none(r["cost"]),
                                          r["calls"], r["errors"]) for r in minutes),
            rows=tuple(records),
        )

    async def new_rows(self) -> list[CallRecord]:
        """Rows committed since the last read (with the overlap re-read), de-duplicated."""
        assert self.watermark is not None, "baseline() first"
        if self.pool is None or self.columns is None:
            await self.connect()
        assert self.pool is not None
        t, ca = self._table, self._col("created_at")
        try:
            rows = await self.pool.fetch(
                f"SELECT {self._select} FROM {t} WHERE {ca} >= $1 ORDER BY {ca} LIMIT {READ_BATCH}",
                self.watermark.read_from, timeout=self.settings.timeout_seconds)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise self._error(exc) from None
        return self.watermark.accept(self._record(r) for r in rows)
