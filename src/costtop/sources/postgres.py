"""Reading `tool_calls`: one consistent baseline at start, then only the rows since the watermark.

Every query filters on created_at (index `tool_calls_created_at_idx` from `costtop db init`), so the
work per refresh depends on the rows written since the last refresh, never on the table's size.

Time comes from costtop's clock, never from the data: every read is bounded above by the clock plus
the allowed skew (`clock_skew`), so a row dated in the future is counted when its time comes, and
until then only counted as such. Rows that commit late are caught within `max_lateness` (see dedup.py);
later ones by the next full resynchronisation (a new baseline), which says how many it found.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import math
import sys
import time
from array import array
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TypeVar

import asyncpg

from costtop.config import OPTIONAL_COLUMNS, REQUIRED_COLUMNS, Settings
from costtop.rollup.days import DaySummary, day_summary
from costtop.rollup.read import (
    AFTER_AGGREGATE,
    HASH_AGGREGATE,
    KEYS,
    MISSING,
    Fetch,
    Group,
    LayeredRead,
    Source,
    find_source,
    missing_reason,
    read_groups,
    rollup_note,
)
from costtop.rollup.sums import row_sql, usable_cost
from costtop.sources import litellm_daily
from costtop.sources.column_types import (
    LEFT_OUT_KEYS,
    ColumnType,
    LeftOut,
    column_type,
    describe_table,
    expression_type,
    schema_changed,
    unreadable_sql,
)
from costtop.sources.day_figures import day_figures
from costtop.sources.dedup import IdWatermark, Watermark, as_utc, epoch_second
from costtop.sources.errors import SourceError, TableMissing, WrongColumnType
from costtop.sources.numbers import MAX_LATENCY_MS
from costtop.sources.presets import preset_tables, usual_lateness
from costtop.sources.records import (
    Baseline,
    CallRecord,
    DayBaseline,
    ProviderSecond,
    ReadQuality,
    ReplicaLag,
    WindowGroup,
)
from costtop.sources.replica import (
    CONFLICTS_SQL,
    DELAY_SQL,
    LAG_SQL,
    conflict_line,
    lag_from,
    limits_from,
    recovery_conflict,
)
from costtop.sources.row_counts import RowCounts
from costtop.sources.schema import qident, qualified
from costtop.text import clean, mask_url, one_line

# Start-up reads the 5-minute window (plus a margin) row by row; everything else as sums.
Read = TypeVar("Read")  # what a read in one snapshot returns

RAW_SECONDS = 301  # the exact 5-minute window, and the second the clock may move on meanwhile
MINUTE_WINDOW = 60
RELEASE_SECONDS = 0.5  # past a query's own timeout, how long giving its connection back may take
READ_BATCH = 100_000
GAP_LOOKBACK = 10_000  # ids below the newest one checked for open transactions at start-up
DEEP_GAP_IDS = 2_000_000  # ids further down checked with the day's sums (the horizon at 6,600 calls/s)
LATE_CHECK_SECONDS = 10.0  # how often the horizon's per-second counts are held against the rows taken
# How often the live reads ask the catalog whether the table changed shape (a column added, dropped,
# renamed or retyped while costtop runs): one small catalog query, so the screen follows within this.
SCHEMA_CHECK_SECONDS = 30.0
LATE_CHECK_RANGES = 50  # runs of differing seconds re-read per check (the rest at the next one)
LATE_AFTER = 10.0  # a row read more than this long after its created_at is reported as late
# Past the lateness horizon (which the job's watermark trails by), how much of start-up may come from raw
# rows before the header says the rollup is behind: a job run every minute or two stays within it.
ROLLUP_SLACK = 600.0
HOLD_MAX = 100_000  # future-dated rows an id-ordered read keeps until their time (more: a resync finds them)
LAG_CHECK_SECONDS = 1.0  # how often the live reads ask a standby how far behind its primary it is (replica.py)

# What a Postgres call can raise when the server or the network misbehaves: the server's own errors,
# the client's (including its internal bookkeeping errors after a connection died mid-call), the
# socket's, and our deadlines.
PG_ERRORS: tuple[type[BaseException], ...] = (
    OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.exceptions.InternalClientError,
)


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Columns:
    """Which optional columns this table has; the screen drops what it cannot fill."""

    present: frozenset[str]

    def has(self, logical: str) -> bool:
        return logical in self.present


def conn_fetch(conn: asyncpg.Connection, timeout: float) -> Fetch:
    """`conn.fetch` with a fixed timeout: the reads that run inside one snapshot's connection."""
    async def run(sql: str, *args: object) -> list[asyncpg.Record]:
        return await conn.fetch(sql, *args, timeout=timeout)
    return run


def utc_day_start(now: datetime) -> datetime:
    return now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def latency_array(packed: bytes | None) -> array:
    """Latencies sent as concatenated int4send() values (big-endian int32) as an array of ints."""
    found = array("i")
    if packed:
        found.frombytes(packed)
        if sys.byteorder == "little":
            found.byteswap()
    return found


class PostgresReader:
    def __init__(self, settings: Settings, clock: Callable[[], datetime] = utc_now) -> None:
        self.settings = settings
        self.clock = clock
        self.tables = settings.tables
        self.pool: asyncpg.Pool | None = None
        self.columns: Columns | None = None
        self.watermark: Watermark | IdWatermark | None = None
        self.id_mode = False
        # How long an id missing below the newest one is asked for again (an open transaction).
        self.gap_lifetime = settings.max_lateness
        self.skew = timedelta(seconds=settings.clock_skew)
        self._select: str = ""
        # Each column's type, learnt with the columns; and the rows whose values could not be read.
        self.types: dict[str, ColumnType] = {}
        self.left_out = LeftOut()
        self._signature: tuple[tuple[str, str], ...] = ()
        self._connecting = asyncio.Lock()
        # The start-up snapshot between start_baseline and finish_baseline: connection, transaction,
        # the clock at the snapshot, first minute of the hour.
        self._pending: tuple[asyncpg.Connection, asyncpg.transaction.Transaction, datetime, datetime] | None = None
        # What the rows themselves showed (ReadQuality), kept across baselines.
        self._late_rows = 0
        self._latest_lateness = 0.0
        self._missed_rows = 0
        self._resync_at: datetime | None = None
        self._future: tuple[int, datetime | None] = (0, None)
        self._next_check = 0.0  # monotonic time of the next late-row check
        self.read_batch = READ_BATCH  # rows one read takes at most
        self._cursor: tuple[datetime, object] | None = None  # (created_at, key) after a full read
        self.late_check_seconds = LATE_CHECK_SECONDS
        # A row taken this long after its created_at is noted as late (a batching gateway's usual delay is not).
        self.late_after = usual_lateness(settings.preset, LATE_AFTER)
        self._next_schema_check = time.monotonic() + SCHEMA_CHECK_SECONDS
        # Rows counted per minute and hour (the baseline's and every row taken since): the next
        # resynchronisation holds its own counts against them to say how many the live reads missed.
        self._counts = RowCounts(0, 0, complete=False)  # rows taken since the last snapshot (+ its sums)
        self._previous: RowCounts | None = None  # the last complete counts, for the next comparison
        # An id-ordered read returns rows dated in the future at once; they wait here for their time.
        self._held: list[tuple[datetime, int, CallRecord]] = []
        self._held_order = 0
        # LiteLLM's daily tables (preset only), learnt with the columns: a LiteLLM upgrade that adds one
        # is seen at the next connection.
        self._daily: litellm_daily.DailyTables | None = None
        # What the last start-up read says about the rollup (rollup/read.py), for the header; None: all well.
        self.rollup_note: str | None = None
        # A hot standby (replica.py): its lag, asked with each baseline and every LAG_CHECK_SECONDS of live
        # reads; the settings under which it cancels reads; its conflict count when start-up began.
        self.lag: ReplicaLag | None = None
        self._limits = ""
        self._conflicts_before: int | None = None
        self._received: tuple[str | None, float] = (None, 0.0)  # the last check's receive LSN, and when
        self._next_lag = 0.0

    def error(self, exc: BaseException, timeout: float | None = None) -> SourceError:
        url = self.settings.database_url
        secrets = (url, mask_url(url))
        seconds = timeout or self.settings.timeout_seconds
        if recovery_conflict(exc):
            return SourceError(conflict_line("a read", self._limits))
        if isinstance(exc, TimeoutError):
            return SourceError(f"Postgres timed out after {seconds:g} s")
        if isinstance(exc, asyncpg.exceptions.InternalClientError):
            # What the client says when a timed-out call's connection could not be given back: the
            # server stopped answering (frozen, or the network between went dead).
            return SourceError(f"Postgres stopped answering (nothing within {seconds:g} s)")
        if isinstance(exc, OSError):
            return SourceError(f"Postgres unreachable at {mask_url(url)}: {clean(exc.strerror or exc, 80)}")
        if schema_changed(exc):
            # A column renamed, dropped or retyped under us: the next read learns the columns again.
            self.columns = None
            return SourceError(f"{self.tables.calls} changed while costtop ran ({one_line(exc, secrets[:1])}): "
                               "reading its columns again")
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
        self._daily = None
        try:
            async with asyncio.timeout(timeout * 3):  # a server that accepts but never answers
                if self.pool is None:
                    self.pool = await asyncpg.create_pool(
                        self.settings.database_url, min_size=1, max_size=3, timeout=timeout,
                        command_timeout=timeout, server_settings={"application_name": "costtop"},
                    )
                rows = await describe_table(self.pool, self.tables, timeout)
        except SourceError:
            raise
        except (*PG_ERRORS, ValueError) as exc:
            await self.close()
            raise self.error(exc) from None
        real = {r["column_name"] for r in rows}
        if not real:
            await self.close()
            hint = ("LiteLLM's migrations create it: is this LiteLLM's database?" if self.settings.preset == "litellm"
                    else "run `costtop db init`, or set tables.calls")
            raise TableMissing(f"table {self.tables.schema_name}.{self.tables.calls} not found ({hint})")
        # A preset's columns depend on the ones its gateway's release has: built from what is there.
        self.tables = preset_tables(self.settings.preset, self.settings.tables, real, self.settings.litellm)
        expressions = self.tables.expressions
        logical = {name for name in (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS)
                   if name in expressions or self.tables.column(name) in real}
        missing = [name for name in REQUIRED_COLUMNS if name not in logical]
        if missing:
            await self.close()
            hint = (" (none of the [litellm] identity sources is in it)"
                    if self.settings.preset == "litellm" and "agent_id" in missing else "")
            raise TableMissing(f"table {self.tables.calls} lacks required column(s): {', '.join(missing)}{hint}")
        by_name = {r["column_name"]: r for r in rows}
        self.types = {name: column_type(name, qident(self.tables.column(name)),
                                        by_name[self.tables.column(name)]["data_type"],
                                        by_name[self.tables.column(name)]["udt_name"])
                      for name in logical if name not in expressions}
        self.types.update(await self._expression_types(sorted(logical & set(expressions))))
        refused = [why for name in sorted(logical)
                   if (why := self.types[name].refusal(self.tables.calls, self._shown(name)))]
        if refused:
            await self.close()
            raise WrongColumnType(refused[0] + (f" (and {len(refused) - 1} more)" if len(refused) > 1 else ""))
        self._signature = tuple(sorted((r["column_name"], r["data_type"]) for r in rows))
        self.columns = Columns(frozenset(logical))
        types = {r["column_name"]: r["data_type"] for r in rows}
        self.id_mode = types.get(self.tables.column("id")) in ("bigint", "integer", "smallint")
        self._select = self.select_list_sql()

    async def _expression_types(self, names: list[str]) -> dict[str, ColumnType]:
        """Each expression column's type, from the server's own plan of `SELECT <expression> FROM <table>`;
        an expression it cannot plan is refused in one line naming it."""
        if not names:
            return {}
        assert self.pool is not None
        timeout = self.settings.timeout_seconds
        found: dict[str, ColumnType] = {}
        try:
            async with asyncio.timeout(timeout * 3), self.pool.acquire(timeout=timeout) as conn:
                for name in names:
                    sql = self.tables.expressions[name]
                    try:
                        kind = await expression_type(conn, self.table_sql(), sql, timeout)
                    except (asyncpg.PostgresError, ValueError) as exc:
                        raise WrongColumnType(f"the expression for {name} cannot be read from {self.tables.calls}: "
                                              f"{one_line(exc)} (tables.expressions.{name})") from None
                    found[name] = ColumnType(name, f"({sql})", kind)
        except SourceError:
            await self.close()
            raise
        except PG_ERRORS as exc:
            await self.close()
            raise self.error(exc) from None
        return found

    def _shown(self, logical: str) -> str:
        """How a refusal names the column: its real name, or the expression standing for it."""
        return f"{logical} (an expression)" if self.tables.expression(logical) else self.tables.column(logical)

    async def daily_tables(self, fetch: litellm_daily.Fetch) -> litellm_daily.DailyTables | None:
        """LiteLLM's daily tables this role can read, under the LiteLLM preset (None otherwise): asked of
        the catalog once per connection, through `fetch` (the baseline's snapshot, or the pool)."""
        if not litellm_daily.enabled(self.settings):
            return None
        if self._daily is None:
            self._daily = await litellm_daily.find_tables(fetch, self.settings)
        return self._daily

    def pool_fetch(self, timeout: float) -> litellm_daily.Fetch:
        """`fetch_rows` with a fixed timeout, as the daily tables' reads take it."""
        async def run(sql: str, *args: object) -> list[asyncpg.Record]:
            return await self.fetch_rows(sql, *args, timeout=timeout)
        return run

    async def close(self) -> None:
        self._pending = None  # its connection goes with the pool
        if self.pool is not None:
            pool, self.pool = self.pool, None
            pool.terminate()

    def column(self, logical: str) -> str:
        """The column's value in the contract's type (column_types.py): for select lists, GROUP BYs
        and sums. Compare through `raw` and `param` where an index should be used."""
        found = self.types.get(logical)
        return found.value() if found is not None else qident(self.tables.column(logical))

    def raw(self, logical: str) -> str:
        """The bare column, as stored: for WHERE and ORDER BY, with `param` on the other side. An
        expression column (tables.expressions) is its expression: compared without an index."""
        expression = self.tables.expression(logical)
        return f"({expression})" if expression is not None else qident(self.tables.column(logical))

    def param(self, logical: str, placeholder: str) -> str:
        """A parameter of the contract's type converted to the column's stored type, so that
        `raw(x) <op> param(x, "$1")` compares like the contract and uses the column's index."""
        found = self.types.get(logical)
        return found.param(placeholder) if found is not None else placeholder

    def since(self, placeholder: str, op: str = ">=") -> str:
        """`created_at <op> $n` on the bare column, the time converted (index: created_at)."""
        return f"{self.raw('created_at')} {op} {self.param('created_at', placeholder)}"

    def latest_sql(self) -> str:
        """The newest created_at as a timestamptz: max() of the bare column (one index probe), then
        converted; max() of a converted value would read every row."""
        found = self.types.get("created_at")
        top = f"max({self.raw('created_at')})"
        return replace(found, quoted=top).value() if found is not None else top

    def match(self, logical: str, placeholder: str) -> str:
        """`column = $n` for an id passed as text (None matches the rows without one), on the bare
        column so that its index is used."""
        raw = self.raw(logical)
        return (f"({raw} = {self.param(logical, placeholder)} "
                f"OR ({placeholder}::text IS NULL AND {raw} IS NULL))")

    async def count_left_out(self, since: datetime) -> int:
        """Count again the rows since `since` (today, at each baseline) with a value that cannot be
        read, through the created_at index; rows read later are counted as `new_rows` returns them."""
        if self.pool is None or self.columns is None:
            await self.connect()
        self.left_out.reset()
        flag = unreadable_sql(self.types)
        if flag == "NULL::text":
            return 0
        rows = await self.fetch_rows(
            f"SELECT key, unreadable FROM (SELECT {self._key()} AS key, {flag} AS unreadable "
            f"FROM {self.table_sql()} WHERE {self.since('$1')}) AS rows WHERE unreadable IS NOT NULL "
            f"LIMIT {LEFT_OUT_KEYS + 1}", since, timeout=self.settings.timeout_seconds * 10)
        for r in rows:
            self.left_out.add(r["key"], r["unreadable"])
        return self.left_out.count

    async def check_columns(self) -> None:
        """Raise a one-line SourceError when the table's columns or their types changed since they
        were learnt (a column added, dropped, renamed or retyped while costtop runs): the caller
        starts over from a fresh baseline, which learns them again. A dropped or renamed column also
        makes the next read fail (see `error`); an added one only shows here."""
        if self.pool is None or self.columns is None:
            return
        try:
            rows = await describe_table(self.pool, self.tables, self.settings.timeout_seconds)
        except PG_ERRORS as exc:
            raise self.error(exc) from None
        signature = tuple(sorted((r["column_name"], r["data_type"]) for r in rows))
        if signature != self._signature:
            old, new = dict(self._signature), dict(signature)
            changed = sorted({*old, *new} - {name for name in old if old.get(name) == new.get(name)})
            self.columns = None
            raise SourceError(f"{self.tables.calls} changed while costtop ran (columns: {', '.join(changed)}): "
                              "reading its columns again")

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
        return cost if cost == "NULL::numeric" else usable_cost(cost)

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
        # A ctid is unique only within one table: a partitioned table's partitions each have their own.
        return self.column("id") if self.columns.has("id") else "ctid::text || tableoid::text"

    def select_list_sql(self) -> str:
        return ", ".join([
            f"{self._key()} AS key", f"{self.column('created_at')} AS created_at",
            f"{self.column('agent_id')} AS agent_id",
            f"{self.column('tool_name')} AS tool_name", f"{self.column('latency_ms')} AS latency_ms",
            f"{self.optional('provider')} AS provider", f"{self.optional('model')} AS model",
            f"{self.optional('tokens_in')} AS tokens_in", f"{self.optional('tokens_out')} AS tokens_out",
            f"{self.optional('cached_tokens')} AS cached_tokens", f"{self.record_cost_sql()} AS cost_usd",
            f"{self.optional('status')} AS status", f"{self.optional('trace_id')} AS trace_id",
            f"{unreadable_sql(self.types)} AS unreadable",
        ])

    def error_sql(self) -> str:
        assert self.columns is not None
        return f"{self.column('status')} = 'error'" if self.columns.has("status") else "false"

    def table_sql(self) -> str:
        return qualified(self.tables, self.tables.calls)

    def record(self, r: asyncpg.Record) -> CallRecord:
        # Text stays exactly as stored: an agent id is also the name of its kill switch, so a cleaned
        # copy would make `k` write a key the gateway never checks. The UI cleans what it renders.
        if r["unreadable"] is not None:
            self.left_out.add(r["key"], r["unreadable"])
        return CallRecord(
            key=r["key"], created_at=as_utc(r["created_at"]), agent_id=r["agent_id"], tool_name=r["tool_name"],
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
        await self.check_replica(start=True)
        day_start = utc_day_start(now)
        bound = now.astimezone(UTC) + self.skew  # rows dated later are counted when their time comes
        window_from = now.astimezone(UTC).replace(microsecond=0) - timedelta(seconds=RAW_SECONDS)
        minute_from = now.astimezone(UTC).replace(second=0, microsecond=0) - timedelta(minutes=MINUTE_WINDOW)
        timeout = self.settings.timeout_seconds * 10
        conn = await self._acquire()
        tr = conn.transaction(isolation="repeatable_read", readonly=True)
        try:
            await tr.start()
            agents, providers = await self._window_groups(conn, window_from, bound, timeout)
            self.watermark = await self._start_watermark(conn, timeout, now, bound)
            self._cursor = None
            await self._count_future(bound, conn, timeout)
        except PG_ERRORS as exc:
            await self._release(conn, tr)
            raise self.error(exc) from None
        except BaseException:
            await self._release(conn, tr)
            raise
        self._pending = (conn, tr, now.astimezone(UTC), minute_from)
        if self._counts.complete:
            self._previous = self._counts
        elif self._previous is not None:
            # A baseline replaced before its sums arrived: the rows taken meanwhile still count, for
            # the comparison with the next complete one.
            self._previous.merge(self._counts)
        self._counts = RowCounts(0, 0, complete=False)
        day = day_start.strftime("%Y-%m-%d")
        return Baseline(
            day=day, days=(), month_before_today=None, month=day[:7], minutes=(),
            window=agents, providers=providers,
            pending=True,
        )

    async def _window_groups(self, conn: asyncpg.Connection, first: datetime, bound: datetime,
                             timeout: float) -> tuple[tuple[WindowGroup, ...], tuple[ProviderSecond, ...]]:
        """The window's calls [first, bound) summed per agent and second and per provider and second, in
        one pass over its rows, each latency as 4 bytes.

        One index range per second (LATERAL), grouped in it: a single GROUP BY over the whole window is
        planned for as many groups as rows (Postgres cannot tell how few seconds date_trunc makes), so
        at 10,000 calls/s it was partitioned to disk and ran 5 s where this runs 2. The latencies travel
        as one bytea per group (int4send, concatenated) and are read into an array without a Python int
        per call; the agents and providers come from the same rows (GROUPING SETS) rather than per
        (agent, provider, second), which made 870,000 groups at that rate instead of 66,000. The seconds
        the clock skew allows past now are ranges too: an index probe each, empty as a rule."""
        t, cost, err = self.table_sql(), self.cost_sql(), self.error_sql()
        agent, latency, provider = self.column("agent_id"), self.column("latency_ms"), self.optional("provider")
        # Latencies the windows can hold (int32 ms, as `ingest` keeps them): a bigint, numeric or text
        # column can hold more, and a negative one is no measurement.
        kept = f"latency BETWEEN 0 AND {MAX_LATENCY_MS}"
        sums = (f"grouping(agent) AS by_provider, agent, provider, sum(cost) AS cost, count(cost) AS priced, "
                f"count(*) AS calls, count(*) FILTER (WHERE error) AS errors, "
                f"string_agg(int4send(latency::int4), ''::bytea) FILTER (WHERE {kept}) AS latencies")
        columns = (f"{agent} AS agent, {provider} AS provider, {cost} AS cost, {err} AS error, "
                   f"{latency} AS latency")
        seconds = math.ceil((bound - first).total_seconds())
        sql = (f"SELECT n, g.* FROM generate_series(0, $3::int - 1) AS n, "
               f"LATERAL (SELECT $1::timestamptz + n * interval '1 second' AS s, "
               f"least($1::timestamptz + (n + 1) * interval '1 second', $2::timestamptz) AS e) AS sec, "
               f"LATERAL (SELECT {sums} FROM (SELECT {columns} FROM {t} WHERE {self.since('sec.s')} "
               f"AND {self.since('sec.e', '<')}) AS r GROUP BY GROUPING SETS ((agent), (provider))) AS g")
        rows = await conn.fetch(sql, first, bound, seconds, timeout=timeout)
        start = int(first.timestamp())
        agents, providers = [], []
        for r in rows:
            latencies = latency_array(r["latencies"])
            if r["by_provider"]:
                providers.append(ProviderSecond(start + r["n"], r["provider"], r["calls"], r["errors"], latencies))
            else:
                agents.append(WindowGroup(start + r["n"], r["agent"], r["cost"], r["priced"], r["calls"],
                                          r["errors"], latencies))
        return tuple(agents), tuple(providers)

    async def finish_baseline(self) -> DayBaseline:
        """The slow half, in the snapshot `start_baseline` opened: the day's sums per agent, model and
        provider, per hour over 24 hours and per agent and minute over the last hour, and the month
        before today. From the rollup's buckets where it holds them (rollup/), else from the rows:
        with a rollup this takes a second at any size of the day, without one it sums the last 24
        hours of rows. Rows read since by `new_rows` came after that snapshot, so the two never overlap."""
        if self._pending is None:
            raise SourceError("no start-up snapshot is open (Postgres reconnected): starting over")
        conn, _, now, minute_from = self._pending
        day_start = utc_day_start(now)
        day_end = day_start + timedelta(days=1)
        bound = now + self.skew
        month_start = day_start.replace(day=1)
        # 24 whole hours for the chart: this one and the 23 before it.
        day_from = (minute_from + timedelta(minutes=MINUTE_WINDOW - 1)).replace(minute=0) - timedelta(hours=23)
        t, ca = self.table_sql(), self.column("created_at")
        # A background read: the screen already runs on the window, so it may take minutes.
        timeout = max(300.0, self.settings.timeout_seconds * 100)
        # Per hour before the last clock hour began, per minute from then on (each agent's spend this
        # clock hour and the one before is the hour-over-hour anomaly's).
        split = minute_from.replace(minute=0)

        try:
            # The rollup's buckets where they hold every row, the raw rows around them (rollup/read.py),
            # all in this snapshot: the gateway's buckets commit with its rows, the job's watermark with
            # its buckets.
            source, why = await self._rollup_source(conn, timeout)
            hashed = self._hashed(conn, timeout)
            rows = self.rows_from()
            early = await read_groups(hashed, self.tables, source, rows, self.since, min(day_start, day_from),
                                      split, "hour")
            late = await read_groups(hashed, self.tables, source, rows, self.since, split, bound, "hour")
            minutes = await read_groups(hashed, self.tables, source, rows, self.since, minute_from, bound, "minute",
                                        by=("agent",))
            figures = day_figures(early.groups, late.groups, minutes.groups, day_start, day_end, minute_from)
            self.rollup_note = rollup_note(source, why, [*early.raw, *late.raw],
                                           self.settings.max_lateness + ROLLUP_SLACK)
            month = await self._month_before_today(conn, source, month_start, day_start, timeout)
            if isinstance(self.watermark, IdWatermark):
                await self._deep_gaps(conn, now, timeout)
            if isinstance(self.watermark, Watermark):
                # The keys of the horizon's rows in this snapshot, so a late row can be told apart.
                horizon_from = now - timedelta(seconds=self.settings.max_lateness + 1)
                summed = await conn.fetch(
                    f"SELECT {self._key()} AS key, {ca} AS created_at FROM {t} "
                    f"WHERE {self.since('$1')} AND {self.since('$2', '<')}",
                    horizon_from, bound, timeout=timeout)
                self.watermark.mark_seen((r["key"], r["created_at"]) for r in summed)
                self.watermark.complete = True
        except PG_ERRORS as exc:
            await self._drop_pending()
            self._daily = None  # a daily table dropped or its grant revoked: the next baseline asks again
            if isinstance(exc, TimeoutError):
                raise SourceError(f"Postgres: today's totals timed out after {timeout:g} s") from None
            if await self._ended_by_standby(exc):
                raise SourceError(conflict_line("start-up's snapshot", self._limits)) from None
            raise self.error(exc) from None
        finally:
            if self._pending is not None:
                await self._drop_pending()
        found = RowCounts(int(minute_from.timestamp()) // 60, int(day_from.timestamp()) // 3600)
        found.add_found(figures.calls_per_minute, figures.calls_per_hour)
        self._resynchronised(now, found)
        day = day_start.strftime("%Y-%m-%d")
        return DayBaseline(
            day=day, days=figures.days, month_before_today=month if month is not None else Decimal(0),
            month=day[:7], minutes=figures.minutes, usage=figures.usage, hours=figures.hours,
            agent_hours=figures.agent_hours,
        )

    async def check_replica(self, start: bool = False) -> None:
        """Ask whether the database is a hot standby and how far behind its primary (replica.py); at
        start-up also the settings under which it cancels reads, and its conflict count so far."""
        previous, at = self._received
        asked = time.monotonic()  # before the LSNs are read, after them: both bounds err on the safe side
        row = (await self.fetch_rows(LAG_SQL, previous))[0]
        self.lag = lag_from(row, time.monotonic() - at if previous is not None else None)
        self._received = (row["received"], asked)
        self._next_lag = time.monotonic() + LAG_CHECK_SECONDS
        if start and self.lag is not None:
            self._limits = limits_from((await self.fetch_rows(DELAY_SQL))[0])
            self._conflicts_before = int((await self.fetch_rows(CONFLICTS_SQL))[0][0] or 0)

    async def _ended_by_standby(self, exc: BaseException) -> bool:
        """Whether the standby ended start-up's snapshot (a session idle inside it is disconnected, not
        cancelled, so the client sees only a closed connection): its conflict count rose since."""
        if recovery_conflict(exc):
            return True
        if self.lag is None or self._conflicts_before is None or self.pool is None:
            return False
        try:
            return int((await self.fetch_rows(CONFLICTS_SQL))[0][0] or 0) > self._conflicts_before
        except SourceError:
            return False

    async def _month_before_today(self, conn: asyncpg.Connection, source: Source | None, month_start: datetime,
                                  day_start: datetime, timeout: float) -> Decimal | None:
        """The month's closed days: from LiteLLM's daily tables under the preset when they hold the fleet
        (a few hundred rows, and the days the spend log's retention deleted), else from the rollup's day
        buckets and the raw rows of what they do not cover."""
        run = conn_fetch(conn, timeout)
        tables = await self.daily_tables(run)
        if tables is not None:
            found = await litellm_daily.fleet_spend(run, tables, month_start, day_start, day_start)
            if found is not None:
                return found
        read = await read_groups(self._hashed(conn, timeout), self.tables, source, self.rows_from(), self.since,
                                 month_start, day_start, "day")
        priced = [g.cost for g in read.groups if g.priced]
        return sum(priced, Decimal(0)) if priced else None

    async def _rollup_source(self, conn: asyncpg.Connection, timeout: float) -> tuple[Source | None, str | None]:
        """This table's rollup as the snapshot sees it, or None and why (rollup/read.py)."""
        run = conn_fetch(conn, timeout)
        # A failed read would abort the snapshot's transaction: asked under a savepoint.
        try:
            async with conn.transaction():
                source = await find_source(run, self.tables)
        except asyncpg.PostgresError as exc:
            return None, missing_reason(exc, self.tables)
        return source, None if source is not None else "no rollup"

    async def read_layered(self, start: datetime, end: datetime, resolution: str, timeout: float,
                           by: tuple[str, ...] = KEYS) -> LayeredRead:
        """[start, end) per key and bucket of `resolution`, from the rollup where it is complete and the rows
        elsewhere (rollup/read.py), in one read-only snapshot on the pool: history and the day report."""
        async def read(conn: asyncpg.Connection, source: Source | None) -> LayeredRead:
            return await read_groups(self._hashed(conn, timeout), self.tables, source, self.rows_from(),
                                     self.since, start, end, resolution, by)
        return await self._in_snapshot(read, timeout)

    async def read_closed_day(self, day: datetime, timeout: float) -> tuple[list[Group], DaySummary | None]:
        """The UTC day's groups per key (its day buckets, or its rows) and, in the same snapshot, the
        job's peaks and costliest traces of it: only while the buckets count the rows those were worked
        out from (rollup/days.py)."""
        async def read(conn: asyncpg.Connection, source: Source | None) -> tuple[list[Group], DaySummary | None]:
            groups = (await read_groups(self._hashed(conn, timeout), self.tables, source, self.rows_from(),
                                        self.since, day, day + timedelta(days=1), "day")).groups
            if source is None:
                return groups, None
            try:
                async with conn.transaction():  # tables older than the summaries: no summary
                    summary = await day_summary(conn_fetch(conn, timeout), self.tables, source.id, day)
            except MISSING:
                return groups, None
            if summary is None or summary.calls != sum(g.calls for g in groups):
                return groups, None
            return groups, summary
        return await self._in_snapshot(read, timeout)

    async def _in_snapshot(self, read: Callable[[asyncpg.Connection, Source | None], Awaitable[Read]],
                           timeout: float) -> Read:
        """`read` on a pooled connection in one read-only repeatable-read snapshot, given this table's
        rollup as that snapshot sees it."""
        if self.pool is None or self.columns is None:
            await self.connect()
        conn = await self._acquire()
        tr = conn.transaction(isolation="repeatable_read", readonly=True)
        try:
            async with asyncio.timeout(timeout * 2 + RELEASE_SECONDS):
                await tr.start()
                source, _ = await self._rollup_source(conn, timeout)
                return await read(conn, source)
        except PG_ERRORS as exc:
            raise self.error(exc, timeout) from None
        finally:
            await self._release(conn, tr)

    def _hashed(self, conn: asyncpg.Connection, timeout: float) -> Fetch:
        """A raw GROUP BY run as a hash aggregate (rollup/read.py, HASH_AGGREGATE: why)."""
        async def run(sql: str, *args: object) -> list[asyncpg.Record]:
            await conn.execute(HASH_AGGREGATE, timeout=timeout)
            rows = await conn.fetch(sql, *args, timeout=timeout)
            await conn.execute(AFTER_AGGREGATE, timeout=timeout)
            return rows
        return run

    def rows_from(self) -> str:
        """Each row's values under the names the rollup's sums read (rollup/sums.py), from the table."""
        return (row_sql(agent=self.column("agent_id"), provider=self.optional("provider"),
                        model=self.optional("model"), created_at=self.column("created_at"),
                        raw_cost=self.raw_cost_sql(), error=self.error_sql(),
                        tin=self.optional("tokens_in", "::bigint"), tout=self.optional("tokens_out", "::bigint"),
                        cached=self.optional("cached_tokens", "::bigint"))
                + f" FROM {self.table_sql()}")

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
            # Mid-query, broken, or a server that stopped answering: not to be reused. A connection the
            # server closed (a standby ending a snapshot's session) is already detached from its pool.
            with contextlib.suppress(asyncpg.InterfaceError):
                conn.terminate()
        finally:
            if pool is not None:
                with contextlib.suppress(Exception):
                    await pool.release(conn, timeout=self.settings.timeout_seconds)

    async def _drop_pending(self) -> None:
        if self._pending is not None:
            conn, tr = self._pending[0], self._pending[1]
            self._pending = None
            await self._release(conn, tr)

    async def _start_watermark(self, conn: asyncpg.Connection, timeout: float, now: datetime,
                               bound: datetime) -> Watermark | IdWatermark:
        """Where incremental reads begin, inside the baseline's snapshot: nothing dated after `bound`
        is in the baseline's sums, so it is read (or, by id, kept) for when its time comes."""
        t = self.table_sql()
        ca = self.column("created_at")
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
            ahead = await conn.fetch(f"SELECT {self._select} FROM {t} WHERE {self.since('$1')} "
                                     f"ORDER BY {self.raw('created_at')} LIMIT {HOLD_MAX}", bound, timeout=timeout)
            self._held = []
            self._hold(self.record(r) for r in ahead)
            return IdWatermark(high, gaps, time.monotonic(), self.gap_lifetime)
        # Reads start at the newest row not after the clock, and never before the horizon: a table whose
        # newest row is from 1999 (or `-infinity`) must not send every read back to it.
        oldest = now - timedelta(seconds=self.settings.max_lateness)
        high = await conn.fetchval(f"SELECT {self.latest_sql()} FROM {t} WHERE {self.since('$1', '<')} "
                                   f"AND {self.since('$2')}", now, oldest, timeout=timeout)
        watermark = Watermark(as_utc(high) if high is not None else oldest, self.settings.max_lateness)
        # Everything this snapshot sees is in the sums; the first re-read must not count it again (the
        # rest of the horizon's keys come with the day's sums, in the same snapshot).
        summed = await conn.fetch(f"SELECT {self._key()} AS key, {ca} AS created_at FROM {t} "
                                  f"WHERE {self.since('$1')} AND {self.since('$2', '<')}",
                                  watermark.read_from, bound, timeout=timeout)
        watermark.mark_seen((r["key"], r["created_at"]) for r in summed)
        return watermark

    async def _deep_gaps(self, conn: asyncpg.Connection, now: datetime, timeout: float) -> None:
        """Ids missing below the start's quick look (GAP_LOOKBACK ids, a few seconds of a busy gateway)
        and handed out within the horizon: transactions in flight since then. Found in
        the background with the day's sums, in the same snapshot; asked for until the horizon passes."""
        watermark = self.watermark
        assert isinstance(watermark, IdWatermark)
        t, pk = self.table_sql(), self.column("id")
        top = watermark.first_high - GAP_LOOKBACK
        # The id of the newest row dated before the horizon (one probe down the created_at index): ids
        # above it were handed out within the horizon, those of rows in flight among them.
        before = await conn.fetchval(
            f"SELECT {pk} FROM {t} WHERE {self.since('$1', '<')} ORDER BY {self.raw('created_at')} DESC LIMIT 1",
            now - timedelta(seconds=self.settings.max_lateness), timeout=timeout)
        start = max(int(before) + 1 if before is not None else 1, top - DEEP_GAP_IDS)
        if start >= top:
            return
        # One pass along the primary key, each id beside the next one: a hole between them is a run of
        # missing ids (2 million index probes, one per id, took 3.2 s; this walk 1.5 s, and less where the
        # horizon holds fewer ids). The ends are found with the runs: a sentinel id on each side.
        runs = await conn.fetch(
            f"SELECT id + 1 AS first, next - 1 AS last FROM (SELECT id, lead(id) OVER (ORDER BY id) AS next "
            f"FROM (SELECT $1::bigint - 1 AS id UNION ALL (SELECT {pk} FROM {t} WHERE {pk} >= $1 AND {pk} <= $2 "
            f"ORDER BY {pk}) UNION ALL SELECT $2::bigint + 1) AS ids) AS pairs WHERE next > id + 1",
            start, top, timeout=timeout)
        watermark.add_gaps(itertools.islice((i for r in runs for i in range(int(r["first"]), int(r["last"]) + 1)),
                                            watermark.max_gaps), time.monotonic())

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
        """Rows committed since the last read, each returned once; those dated ahead of the clock
        wait for their time; every LATE_CHECK_SECONDS, the rows that committed too late for the
        overlap re-read as well. Every SCHEMA_CHECK_SECONDS the table's shape is checked first: a
        change raises, and the caller starts over from a baseline that learns it."""
        assert self.watermark is not None, "baseline() first"
        if self.pool is None or self.columns is None:
            await self.connect()
        assert self.pool is not None
        if time.monotonic() >= self._next_schema_check:
            self._next_schema_check = time.monotonic() + SCHEMA_CHECK_SECONDS
            await self.check_columns()
        if self.lag is not None and time.monotonic() >= self._next_lag:
            await self.check_replica()
        now = self.clock().astimezone(UTC)
        rows = await self._read_new(now)
        if time.monotonic() >= self._next_check:
            self._next_check = time.monotonic() + self.late_check_seconds
            rows += await self._read_late(now)
            await self._count_future(now + self.skew)
        self._note(rows, now)
        return rows

    async def _read_new(self, now: datetime) -> list[CallRecord]:
        assert self.watermark is not None
        t = self.table_sql()
        bound = now + self.skew
        if isinstance(self.watermark, IdWatermark):
            pk = self.column("id")
            high, gaps = self.watermark.params()
            # Two index probes on the primary key: the new ids, and the few still missing.
            query = f"SELECT {self._select} FROM {t} WHERE {pk} > $1"
            args: tuple[object, ...] = (high,)
            if gaps:
                query += f" OR {pk} = ANY($2::bigint[])"
                args = (high, gaps)
            rows = await self.fetch_rows(f"{query} ORDER BY {pk} LIMIT {self.read_batch}", *args)
            fresh = self.watermark.accept((self.record(r) for r in rows), time.monotonic())
            ahead = [r for r in fresh if r.created_at >= bound]
            if ahead:
                self._hold(ahead)
                fresh = [r for r in fresh if r.created_at < bound]
            while self._held and self._held[0][0] < bound:
                fresh.append(heapq.heappop(self._held)[2])
            return fresh
        # By (created_at, key): when a read comes back full, the next one goes on after its last row,
        # so more rows in the overlap than one read takes (a batch stamped with one now()) cannot stall
        # the reads on the same first rows.
        ca, key = self.raw("created_at"), self._key()
        if self._cursor is None:
            where, args = f"{self.since('$2')}", (self.watermark.read_from,)
        else:
            where = f"({ca} > {self.param('created_at', '$2')} OR ({ca} = {self.param('created_at', '$2')} " \
                    f"AND {key} > $3))"
            args = self._cursor
        rows = await self.fetch_rows(
            f"SELECT {self._select} FROM {t} WHERE {self.since('$1', '<')} AND {where} "
            f"ORDER BY {ca}, {key} LIMIT {self.read_batch}", bound, *args)
        self._cursor = (as_utc(rows[-1]["created_at"]), rows[-1]["key"]) if len(rows) >= self.read_batch else None
        return self.watermark.accept((self.record(r) for r in rows), now)

    async def _read_late(self, now: datetime) -> list[CallRecord]:
        """Rows that committed after the overlap re-read had passed their second, found by holding the
        table's per-second counts over the horizon against the rows taken. Only the seconds that differ
        are read again, and only their keys (narrow, through the created_at index); the rows not taken
        yet are then fetched by key. A row deleted after it was counted can hide one late row in the
        same second until the next resynchronisation."""
        watermark = self.watermark
        if not isinstance(watermark, Watermark) or not watermark.complete:
            return []
        first = epoch_second(now) - math.ceil(self.settings.max_lateness)
        end = epoch_second(watermark.read_from)  # from there on, every refresh re-reads anyway
        if first >= end:
            return []
        t, ca = self.table_sql(), self.column("created_at")
        counts = await self.fetch_rows(
            f"SELECT date_trunc('second', {ca}) AS second, count(*) AS n FROM {t} "
            f"WHERE {self.since('$1')} AND {self.since('$2', '<')} GROUP BY 1",
            datetime.fromtimestamp(first, UTC), datetime.fromtimestamp(end, UTC))
        behind = watermark.behind((epoch_second(r["second"]), r["n"]) for r in counts)
        if not behind:
            return []
        ranges: list[tuple[int, int]] = []
        for second in behind:
            if ranges and ranges[-1][1] == second:
                ranges[-1] = (ranges[-1][0], second + 1)
            elif len(ranges) < LATE_CHECK_RANGES:
                ranges.append((second, second + 1))
        where = " OR ".join(f"({self.since(f'${2 * i + 1}')} AND {self.since(f'${2 * i + 2}', '<')})"
                            for i in range(len(ranges)))
        args: list[object] = [datetime.fromtimestamp(edge, UTC) for pair in ranges for edge in pair]
        keys = await self.fetch_rows(f"SELECT {self._key()} AS key, {ca} AS created_at FROM {t} WHERE {where}",
                                     *args)
        missing = [r["key"] for r in keys if not watermark.seen.has(epoch_second(as_utc(r["created_at"])), r["key"])]
        if not missing:
            return []
        assert self.columns is not None
        if self.columns.has("id"):  # a key of its own (text, uuid): found within the same ranges
            by_key = f"({where}) AND ({self._key()})::text = ANY(${len(args) + 1}::text[])"
            wanted: list[object] = [[str(key) for key in missing[:READ_BATCH]]]
        else:  # the row's address (a TID scan, no index needed), in its own partition
            by_key = f"ctid = ANY($1::text[]::tid[]) AND {self._key()} = ANY($2::text[])"
            keys_wanted = [str(key) for key in missing[:READ_BATCH]]
            args, wanted = [], [[key[:key.index(")") + 1] for key in keys_wanted], keys_wanted]
        rows = await self.fetch_rows(f"SELECT {self._select} FROM {t} WHERE {by_key} LIMIT {READ_BATCH}",
                                     *args, *wanted)
        return watermark.accept((self.record(r) for r in rows), now)

    async def _count_future(self, bound: datetime, conn: asyncpg.Connection | None = None,
                            timeout: float | None = None) -> None:
        """How many rows are dated past the clock's bound: one index range, usually empty."""
        t, ca = self.table_sql(), self.column("created_at")
        sql = f"SELECT count(*) AS n, max({ca}) AS latest FROM {t} WHERE {self.since('$1')}"
        if conn is not None:
            found = await conn.fetch(sql, bound, timeout=timeout)
        else:
            found = await self.fetch_rows(sql, bound)
        latest = found[0]["latest"]
        self._future = (int(found[0]["n"]), as_utc(latest) if latest is not None else None)

    def _hold(self, rows: Iterable[CallRecord]) -> None:
        """Keep future-dated rows (by id) until the clock reaches them, at most HOLD_MAX of them."""
        for row in rows:
            if len(self._held) >= HOLD_MAX:
                break  # the rest are counted by _count_future and found by a resynchronisation
            self._held_order += 1
            heapq.heappush(self._held, (row.created_at, self._held_order, row))

    def _note(self, rows: list[CallRecord], now: datetime) -> None:
        """Count what was taken (for the next resynchronisation) and how late it came."""
        stamp = now.timestamp()
        counts = self._counts
        for row in rows:
            moment = row.created_at.timestamp()
            counts.add(moment)
            late = stamp - moment
            if late > self.late_after:
                self._late_rows += 1
                if late > self._latest_lateness:
                    self._latest_lateness = late
        counts.trim()

    def _resynchronised(self, now: datetime, found: RowCounts) -> None:
        """A baseline's day sums are in: against the counts of the live reads since the last one, what
        it found before the horizon arrived too late to be read live. Its counts become the new ones,
        with the rows taken meanwhile (they came after its snapshot)."""
        if self._previous is not None:
            self._missed_rows = self._previous.missed(found, now.timestamp(), self.settings.max_lateness)
            self._resync_at = now
        found.merge(self._counts)
        self._counts, self._previous = found, None

    def clock_bound(self) -> datetime:
        """The latest created_at any read takes now: the clock plus the allowed skew."""
        return self.clock().astimezone(UTC) + self.skew

    def read_quality(self) -> ReadQuality:
        return ReadQuality(
            late_rows=self._late_rows, latest_lateness=self._latest_lateness, missed_rows=self._missed_rows,
            resync_at=self._resync_at, future_rows=self._future[0], future_latest=self._future[1],
            horizon=self.settings.max_lateness, unreadable=self.left_out.message(), rollup=self.rollup_note,
            replica=self.lag,
        )


async def fetch(reader: PostgresReader, build: Callable[[PostgresReader], str], *args: object,
                timeout: float | None = None) -> list[asyncpg.Record]:
    """One bounded read on the reader's pool (connected first: the SQL depends on the columns it
    found), with a timeout (three times the reader's unless given); failures as one-line SourceErrors."""
    if reader.pool is None or reader.columns is None:
        await reader.connect()
    return await reader.fetch_rows(build(reader), *args, timeout=timeout or reader.settings.timeout_seconds * 3)
