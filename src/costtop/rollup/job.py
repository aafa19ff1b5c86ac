"""`costtop rollup`: keep the rollup of a table whose gateway does not (LiteLLM's spend log, a home-grown
gateway), from cron or a systemd timer. One run:

1. takes the table's advisory lock, or says that another run holds it and stops: one at a time;
2. on its first run registers the table, covered from `since` (by default the first of the month or
   eight days back, whichever is earlier: the month and the anomalies' week then read buckets);
3. rolls the rows from where the last run stopped (`complete_to`) up to the clock minus the lateness
   horizon (`max_lateness`: rows may still commit that late), an hour per transaction, each moving
   `complete_to` in the same transaction. A run stopped half way resumes where its last transaction
   ended and adds nothing twice; after downtime it catches up the same way;
4. holds each of the last `verify_hours` hours' row counts against its bucket, and rolls again every
   hour that differs: rows that committed later than the horizon. Between two runs such a row is
   missing from the buckets (as from the live reads, until their next resynchronisation);
5. works out each closed day's peaks and costliest traces from its rows (days.py), once, and again for
   a day of the last `verify_hours` whose buckets now count other rows than it was worked out from;
6. deletes minute buckets older than `keep_minutes_days`.

For a table whose gateway keeps the rollup in its own transactions (gateway.py), a run sums the
gateway's minute buckets of each closed hour into hour and day buckets (`compact`), then does 5 (for
any day whose rows changed: a gateway's rows and buckets change together) and 6.
It reads the gateway's table and writes nothing but the rollup schema.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import asyncpg

from costtop.config import Settings, TableNames
from costtop.rollup.days import stale_days, summarise_day
from costtop.rollup.plan import ceil, floor
from costtop.rollup.read import HASH_AGGREGATE, Source, find_source, rows_between
from costtop.rollup.schema import buckets_table, rollup_ddl, rollup_table, source_name, sources_table
from costtop.rollup.sums import compact_sql, upsert_sql
from costtop.sources.errors import SourceError
from costtop.sources.postgres import PG_ERRORS, PostgresReader, conn_fetch
from costtop.text import mask_url

HISTORY_DAYS = 8  # the anomalies' week and today
VERIFY_HOURS = 24
KEEP_MINUTES_DAYS = 8
CHUNK = timedelta(hours=1)
STATEMENT_TIMEOUT = 1800.0  # one hour of a busy gateway's rows, summed: minutes at most


class RollupError(Exception):
    """One line for the operator: the run stopped, and nothing it had not committed is in the rollup."""


@dataclass
class RunResult:
    lines: list[str] = field(default_factory=list)
    rows: int = 0  # rows rolled up
    hours_rerolled: int = 0
    days_summarised: int = 0
    days_seconds: float = 0.0  # spent working out their peaks and traces
    locked_out: bool = False


def default_since(now: datetime) -> datetime:
    today = floor(now, "day")
    return min(today.replace(day=1), today - timedelta(days=HISTORY_DAYS))


async def run_rollup(settings: Settings, now: datetime | None = None, since: datetime | None = None,
                     verify_hours: int = VERIFY_HOURS, keep_minutes_days: int = KEEP_MINUTES_DAYS) -> RunResult:
    """One run of the job (module docstring), on the primary: `audit_database_url` when set (the reads
    of a replica's costtop go to database_url; the rollup is written, so never there). Raises
    RollupError with one line, and refuses a hot standby in it rather than fail on its first write."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    if settings.audit_database_url:
        settings = settings.model_copy(update={"database_url": settings.audit_database_url})
    reader = PostgresReader(settings, clock=lambda: now)
    try:
        await reader.connect()  # the columns and their types: the same SQL as costtop's own reads
    except SourceError as exc:
        raise RollupError(str(exc)) from None
    finally:
        await reader.close()
    name = source_name(reader.tables)
    try:
        conn = await asyncpg.connect(settings.database_url, timeout=settings.timeout_seconds,
                                     command_timeout=STATEMENT_TIMEOUT,
                                     server_settings={"application_name": "costtop rollup"})
    except (*PG_ERRORS, ValueError) as exc:
        raise RollupError(reader.error(exc).args[0]) from None
    try:
        if await conn.fetchval("SELECT pg_is_in_recovery()"):
            raise RollupError(f"{mask_url(settings.database_url)} is a read-only standby: the rollup is written on "
                              "the primary (set audit_database_url, or --audit-database-url, to its URL)")
        return await Run(reader, conn, name, now, verify_hours, keep_minutes_days).run(since)
    except asyncpg.InsufficientPrivilegeError as exc:
        raise RollupError(f"{exc} (the job's role needs SELECT on {reader.table_sql()} and to write the "
                          f"{settings.tables.rollup_schema} schema: README, \"The rollup\")") from None
    except PG_ERRORS as exc:
        raise RollupError(reader.error(exc, STATEMENT_TIMEOUT).args[0]) from None
    finally:
        await conn.close(timeout=settings.timeout_seconds)


@dataclass
class Run:
    reader: PostgresReader
    conn: asyncpg.Connection
    name: str
    now: datetime
    verify_hours: int
    keep_minutes_days: int
    result: RunResult = field(default_factory=RunResult)
    summaries: bool = True  # the day tables are there

    @property
    def buckets(self) -> str:
        return buckets_table(self.reader.tables)

    async def run(self, since: datetime | None) -> RunResult:
        tables = self.reader.tables
        got = await self.conn.fetchval("SELECT pg_try_advisory_lock(hashtext('costtop rollup'), hashtext($1))",
                                       self.name)
        if not got:
            self.result.locked_out = True
            self.result.lines.append(f"{self.name}: another costtop rollup is running on it; nothing done")
            return self.result
        if await self.conn.fetchval("SELECT to_regclass($1) IS NULL", rollup_table(tables, "days")):
            # A first run, made by the schema's owner-to-be, or the first since the day tables came.
            try:
                async with self.conn.transaction():
                    for statement in rollup_ddl(tables):
                        await self.conn.execute(statement)
            except asyncpg.InsufficientPrivilegeError:
                if await self.conn.fetchval("SELECT to_regclass($1) IS NULL", sources_table(tables)):
                    raise
                self.summaries = False  # a rollup made by an older costtop, and a role that may not add tables
                self.result.lines.append(
                    f"{self.name}: no day summaries (this role may not create their tables: `costtop db init` as "
                    "the schema's owner does); reports of past days read their rows")
        start = floor(since or default_since(self.now), "minute")
        await self.conn.execute(
            f"INSERT INTO {sources_table(tables)} (name, kept_by, covered_from, complete_to, minutes_from) "
            "VALUES ($1, 'job', $2, $2, $2) ON CONFLICT (name) DO NOTHING", self.name, start)

        source = await find_source(conn_fetch(self.conn, STATEMENT_TIMEOUT), tables)
        assert source is not None
        if source.kept_by == "job":
            assert source.complete_to is not None
            started = time.monotonic()
            upto = await self.catch_up(source.id, source.complete_to)
            self.result.lines.append(
                f"{self.name}: {self.result.rows:,} rows rolled up, complete to {upto:%Y-%m-%d %H:%M} UTC "
                f"({time.monotonic() - started:.1f} s)")
            checked_from = max(source.covered_from, floor(upto - timedelta(hours=self.verify_hours), "hour"))
            await self.verify(source.id, checked_from, upto)
            await self.summarise(source, floor(upto, "day"), floor(checked_from, "day"))
            await self.prune(source.id, source.minutes_from, upto)
        else:
            upto = await compact(self.conn, tables, source.id, self.now)
            self.result.lines.append(f"{self.name}: kept by the gateway; its minutes summed into hours and days to "
                                     f"{upto:%Y-%m-%d %H:%M} UTC")
            # Rows a gateway drains late reach their buckets with them: any day may have changed.
            closed = floor(self.now - timedelta(seconds=self.reader.settings.max_lateness), "day")
            await self.summarise(source, closed, source.covered_from)
            await self.prune(source.id, source.minutes_from, upto)
        return self.result

    def _rows(self, first: str, end: str) -> str:
        return rows_between(self.reader.rows_from(), self.reader.since, first, end)

    async def _locked_to(self, source: int) -> datetime:
        """complete_to, locked until the transaction ends: a second writer (a run without the advisory
        lock, a race) waits here and then finds it moved."""
        return await self.conn.fetchval(f"SELECT complete_to FROM {sources_table(self.reader.tables)} "
                                        "WHERE id = $1 FOR UPDATE", source)

    async def catch_up(self, source: int, upto: datetime) -> datetime:
        target = floor(self.now - timedelta(seconds=self.reader.settings.max_lateness), "minute")
        sources = sources_table(self.reader.tables)
        while upto < target:
            end = min(floor(upto, "hour") + CHUNK, target)
            async with self.conn.transaction():
                if await self._locked_to(source) != upto:
                    raise RollupError(f"{self.name}: another writer moved the rollup on; run again")
                await self.conn.execute(HASH_AGGREGATE)  # (read.py: why)
                await self.conn.execute(upsert_sql(self.buckets, self._rows("$2", "$3")), source, upto, end)
                await self.conn.execute(f"UPDATE {sources} SET complete_to = $2, updated_at = now() WHERE id = $1",
                                        source, end)
                self.result.rows += int(await self.conn.fetchval(
                    f"SELECT coalesce(sum(calls), 0) FROM {self.buckets} WHERE source = $1 AND grain = 'm' "
                    "AND bucket >= $2 AND bucket < $3", source, upto, end))
            upto = end
        return upto

    async def verify(self, source: int, first: datetime, upto: datetime) -> None:
        """Roll again each hour in [first, upto) whose row count is not its bucket's."""
        if first >= upto:
            return
        ca = self.reader.column("created_at")
        raw = await self.conn.fetch(
            f"SELECT date_trunc('hour', {ca}, 'UTC') AS hour, count(*) AS n FROM {self.reader.table_sql()} "
            f"WHERE {self.reader.since('$1')} AND {self.reader.since('$2', '<')} GROUP BY 1", first, upto)
        kept = await self.conn.fetch(
            f"SELECT bucket AS hour, sum(calls) AS n FROM {self.buckets} WHERE source = $1 AND grain = 'h' "
            "AND bucket >= $2 AND bucket < $3 GROUP BY 1", source, first, upto)
        counts = {r["hour"]: int(r["n"]) for r in raw}
        stored = {r["hour"]: int(r["n"]) for r in kept}
        differ = sorted(h for h in {*counts, *stored} if counts.get(h, 0) != stored.get(h, 0))
        for hour in differ:
            await self.reroll(source, hour, min(hour + timedelta(hours=1), upto))
        self.result.hours_rerolled = len(differ)
        if differ:
            self.result.lines.append(f"{self.name}: {len(differ)} hour(s) rolled again (rows that committed after "
                                     f"the horizon), from {differ[0]:%Y-%m-%d %H:%M} UTC")

    async def summarise(self, source: Source, closed: datetime, recount_from: datetime) -> None:
        """Work out the peaks and traces of each day before `closed` that has none, or (from
        `recount_from`) whose buckets count other rows than its summary (days.py)."""
        if not self.summaries:
            return
        first = ceil(source.covered_from, "day")
        days = await stale_days(conn_fetch(self.conn, STATEMENT_TIMEOUT), self.reader.tables, source.id, first,
                                closed, recount_from)
        started = time.monotonic()
        for day in days:
            await summarise_day(self.conn, self.reader, source.id, day, HASH_AGGREGATE)
        if days:
            self.result.days_summarised = len(days)
            self.result.days_seconds = round(time.monotonic() - started, 1)
            self.result.lines.append(f"{self.name}: peaks and costliest traces of {len(days)} day(s) worked out, "
                                     f"{days[0]:%Y-%m-%d} to {days[-1]:%Y-%m-%d} ({self.result.days_seconds:.1f} s)")

    async def reroll(self, source: int, first: datetime, end: datetime) -> None:
        """Sum [first, end) again from the rows, then its day from its hours, in one transaction."""
        day = floor(first, "day")
        async with self.conn.transaction():
            await self._locked_to(source)
            await self.conn.execute(f"DELETE FROM {self.buckets} WHERE source = $1 AND grain IN ('m', 'h') "
                                    "AND bucket >= $2 AND bucket < $3", source, first, end)
            await self.conn.execute(HASH_AGGREGATE)
            await self.conn.execute(upsert_sql(self.buckets, self._rows("$2", "$3"), ("minute", "hour")),
                                    source, first, end)
            await self.conn.execute(f"DELETE FROM {self.buckets} WHERE source = $1 AND grain = 'd' AND bucket = $2",
                                    source, day)
            await self.conn.execute(compact_sql(self.buckets, "day", "hour"), source, day, day + timedelta(days=1))

    async def prune(self, source: int, minutes_from: datetime | None, summed_to: datetime) -> None:
        """Minute buckets older than `keep_minutes_days` go, never ones not yet summed into hours."""
        cut = min(floor(self.now - timedelta(days=self.keep_minutes_days), "day"), floor(summed_to, "hour"))
        if minutes_from is not None and minutes_from >= cut:
            return
        async with self.conn.transaction():
            await self.conn.execute(f"UPDATE {sources_table(self.reader.tables)} SET minutes_from = $2 "
                                    "WHERE id = $1", source, cut)
            await self.conn.execute(f"DELETE FROM {self.buckets} WHERE source = $1 AND grain = 'm' AND bucket < $2",
                                    source, cut)
        self.result.lines.append(f"{self.name}: minute buckets before {cut:%Y-%m-%d} deleted (hours and days kept)")


async def compact(conn: asyncpg.Connection, tables: TableNames, source: int, now: datetime) -> datetime:
    """A gateway's minute buckets of the hours closed since `hours_to` added to their hour and day buckets,
    an hour per transaction; returns the new `hours_to`. The row lock on the source waits for the
    gateway transactions reading it (FOR SHARE, gateway.py) and holds back new ones: each row reaches its
    hour and day once, through this sum or through the gateway's own insert."""
    sources, buckets = sources_table(tables), buckets_table(tables)
    target = floor(now, "hour")
    while True:
        async with conn.transaction():
            upto = await conn.fetchval(f"SELECT hours_to FROM {sources} WHERE id = $1 FOR UPDATE", source)
            if upto is None or upto >= target:
                return upto if upto is not None else target
            end = upto + CHUNK
            for grain in ("hour", "day"):
                await conn.execute(compact_sql(buckets, grain), source, upto, end)
            await conn.execute(f"UPDATE {sources} SET hours_to = $2, updated_at = now() WHERE id = $1", source, end)


__all__ = ["RollupError", "RunResult", "compact", "run_rollup"]
