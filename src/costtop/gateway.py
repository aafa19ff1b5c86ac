"""The gateway side of the contract: check the switches, record the call.

A real gateway (a LiteLLM callback, a Portkey hook, a home-grown proxy) can import this module; the
demo's simulated fleet uses it too, so the demo writes exactly what a production gateway would.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import math
import os
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from redis.asyncio.client import Pipeline
from redis.asyncio.cluster import ClusterPipeline
from redis.exceptions import ResponseError

from costtop.config import KeyNames, TableNames
from costtop.sources.fallback_file import DRAINING_INFIX, FALLBACK_COLUMNS, MAX_LINE_BYTES, encode_row, parse_line
from costtop.sources.redis_state import RedisClient

if TYPE_CHECKING:  # the LiteLLM proxy imports this module for the switches and counters only: no asyncpg there
    import asyncpg

# Gateway-side counters are kept a little over a month, enough for month-to-date reconciliation.
COUNTER_TTL_SECONDS = 40 * 86400


@dataclass(frozen=True, slots=True)
class Call:
    """One LLM or tool call as the gateway records it."""

    agent_id: str
    tool_name: str
    latency_ms: int
    provider: str | None = None
    model: str | None = None
    tokens_in: int | None = None
    tokens_out: int | None = None
    cached_tokens: int | None = None
    cost_usd: Decimal | None = None  # None: a flat-rate call
    status: str = "success"
    error_code: str | None = None
    trace_id: str | None = None
    span_id: str | None = None
    parent_span_id: str | None = None
    created_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    throttled: bool = False
    blocked_by: str | None = None  # the switch key that refused the call
    retry_after: int | None = None  # refused by a throttle: seconds until the next UTC minute


def switch_keys(keys: KeyNames, agent_id: str | None, providers: Iterable[str] = (),
                models: Iterable[str] = ()) -> list[str]:
    """The kill keys that refuse one call: global, its agent (when known), each provider and model name it
    may go by (LiteLLM knows a model by its public name and by its deployment's)."""
    k = keys.kill
    out = [f"{k}:global"]
    if agent_id:
        out.append(f"{k}:agent:{agent_id}")
    out += [f"{k}:provider:{p}" for p in dict.fromkeys(providers) if p]
    out += [f"{k}:model:{m}" for m in dict.fromkeys(models) if m]
    return out


WRONG_TYPE = object()  # a switch key that holds a hash, a list, ...: on, its value unknown


async def _read_switches(redis: RedisClient, names: list[str]) -> list[object]:
    """Each key's value in one round trip, WRONG_TYPE for a key of another type than a string. MGET answers
    nil for such a key, which would let calls through a switch that costtop's screen shows as on
    (sources/redis_state.py reads a WRONGTYPE key as on); a GET per key, pipelined, tells the two apart.
    On a Redis Cluster (where an MGET across slots is refused anyway) the cluster client's pipeline sends
    the GETs of each node as one round trip, to all the nodes at once.
    Any other error (a denied command, a lost connection) is raised: the caller's fail mode applies."""
    pipe = redis.pipeline(transaction=False)
    for name in names:
        pipe.get(name)
    out: list[object] = []
    for answer in await pipe.execute(raise_on_error=False):
        if isinstance(answer, ResponseError) and str(answer).startswith("WRONGTYPE"):
            out.append(WRONG_TYPE)
        elif isinstance(answer, Exception):
            raise answer
        else:
            out.append(answer)
    return out


async def check_switches(redis: RedisClient, keys: KeyNames, agent_id: str | None, providers: Iterable[str] = (),
                         models: Iterable[str] = ()) -> tuple[Decision, str | None]:
    """One round trip: the first kill key set refuses the call, else the agent's throttle key slows it. Returns
    the decision and the value of the switch that decided (who set it and why), to word the refusal with."""
    kill_keys = switch_keys(keys, agent_id, providers, models)
    throttle_key = f"{keys.throttle}:agent:{agent_id}" if agent_id else None
    values = await _read_switches(redis, [*kill_keys, throttle_key] if throttle_key else kill_keys)
    for key, value in zip(kill_keys, values, strict=False):
        if value is not None:
            return Decision(allowed=False, blocked_by=key), _text(value)
    if throttle_key and values[-1] is not None:
        return Decision(allowed=True, throttled=True, blocked_by=throttle_key), _text(values[-1])
    return Decision(allowed=True), None


# A throttled agent's calls in one UTC minute are counted under `{calls}:minute:{agent}:{minute}`: under
# the counters' prefix, never the switches' (costtop lists every `throttle:*` key as a switch).
RATE_WINDOW_SECONDS = 60


def minute_key(keys: KeyNames, agent_id: str, now: datetime) -> str:
    return f"{keys.calls}:minute:{agent_id}:{now.astimezone(UTC).strftime('%Y-%m-%dT%H:%M')}"


async def count_minute(redis: RedisClient, keys: KeyNames, agent_id: str, now: datetime) -> int:
    """A throttled agent's calls in the current UTC minute, this one included: INCR and EXPIRE in one
    round trip, made only for a throttled agent (the LiteLLM callback and Gateway share it)."""
    key = minute_key(keys, agent_id, now)
    pipe = redis.pipeline(transaction=False)
    pipe.incr(key)
    pipe.expire(key, 2 * RATE_WINDOW_SECONDS)
    count, _ = await pipe.execute()
    return int(count)


def retry_after(now: datetime) -> int:
    """Seconds to the next UTC minute, at least 1: when a throttled agent may call again."""
    return max(1, math.ceil(RATE_WINDOW_SECONDS - now.timestamp() % RATE_WINDOW_SECONDS))


def _text(value: object) -> str | None:
    if value is WRONG_TYPE:
        return None
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def day_of(when: datetime) -> str:
    """The UTC day a counter is kept under (a naive time is the machine's local time, as datetime.now())."""
    return when.astimezone(UTC).strftime("%Y-%m-%d")


def queue_counters(pipe: Pipeline | ClusterPipeline, keys: KeyNames, spent: Mapping[str, Decimal],
                   per_day: Mapping[str, int]) -> None:
    """Queue the live counters' increments on a pipeline: `spent:{agent}:{day}` by (agent, day) -> USD
    key already built, `calls:{day}` by day -> calls. Each gets the counters' TTL."""
    for key, amount in spent.items():
        pipe.incrbyfloat(key, float(amount))
        pipe.expire(key, COUNTER_TTL_SECONDS)
    for day, count in per_day.items():
        pipe.incrby(f"{keys.calls}:{day}", count)
        pipe.expire(f"{keys.calls}:{day}", COUNTER_TTL_SECONDS)


class CommitUnknown(Exception):
    """The reply to COMMIT was lost: the rows may be in the table or not."""


@dataclass
class Gateway:
    """Checks switches before a call and records it after.

    With `fallback` set, a batch Postgres does not take (down, a timeout, any refusal) is appended to
    that JSONL file and the call goes on: its Redis counters are still bumped, and `record` returns
    only once the lines are on disk (fsync). `drain_fallback` (also tried after a successful insert,
    at most every `drain_every` seconds) writes them back. What guarantees what:

    - never lost: a row is in the table or in a file at every moment. The file is appended under an
      exclusive lock and fsynced before `record` returns; a file is deleted only after the transaction
      that inserted its rows has committed.
    - exactly once: the drain renames the file to `{path}.draining-{batch}` (atomic; writers that had it
      open notice the new inode and reopen the path), then in ONE transaction inserts a marker row
      (`drains_table`, batch primary key, ON CONFLICT DO NOTHING) and the rows, then deletes the file.
      A crash before the commit leaves no rows and no marker: the next drain inserts them. A crash after
      it leaves the file and the marker: the next drain sees the marker and only deletes the file. Two
      drains of one batch at once: the second waits on the marker's key and finds it taken.
    - the one ambiguity, a lost reply to the insert's own COMMIT: those lines carry `commit_unknown`
      and are inserted only where no row with the same time, agent, tool, latency and ids exists.
    - a line that is not a row (a torn write, junk) is moved to `{path}.rejected` for a person to read.
    - a batch the table keeps refusing (a bad row, a missing grant) stays in its file, whose age then
      fires costtop's "fallback not drained" alert: the honest signal, not a silent drop.
    """

    redis: RedisClient  # one Redis or a Redis Cluster (sources/redis_state.py `connect_redis` makes either)
    pool: asyncpg.Pool
    keys: KeyNames = field(default_factory=KeyNames)
    tables: TableNames = field(default_factory=TableNames)
    fallback: Path | None = None  # the JSONL file rows wait in while Postgres refuses them
    timeout: float = 3.0  # the most an insert may take before its rows go to the fallback file
    drain_every: float = 30.0  # seconds between drain attempts made by record()
    drains_table: str = "costtop_fallback_drains"  # one row per drained batch: the exactly-once marker
    # A throttled agent's calls allowed per UTC minute (the LiteLLM callback's rule); past it `check`
    # refuses with `retry_after`. None: `check` only says the agent is throttled and the caller paces it.
    throttle_per_minute: int | None = None
    # Keep costtop's rollup (rollup/) in the transaction of each insert, so that costtop's start-up reads
    # buckets instead of the day's rows and they never disagree. Needs `costtop db init` (the rollup's
    # schema) and a role that may write it. Every process writing the table must keep it, or none.
    rollup: bool = False
    fallback_rows: int = 0  # rows this gateway wrote to the fallback file (a figure for its own metrics)
    last_error: str | None = None  # why the last insert or drain failed
    rollup_error: str | None = None  # why this gateway does not keep the rollup although asked to
    _rollup_source: int | None = field(default=None, init=False, repr=False)
    _next_drain: float = field(default=0.0, init=False, repr=False)
    _drain_lock: asyncio.Lock = field(default_factory=asyncio.Lock, init=False, repr=False)

    async def check(self, agent_id: str, provider: str | None = None, model: str | None = None) -> Decision:
        """One round trip: any kill key refuses the call; a throttle key slows it. With
        `throttle_per_minute`, a throttled agent's call is counted (a second round trip) and refused past
        the limit, with the seconds to wait."""
        decision, _ = await check_switches(self.redis, self.keys, agent_id, [provider] if provider else [],
                                           [model] if model else [])
        if decision.throttled and self.throttle_per_minute is not None:
            now = datetime.now(UTC)
            if await count_minute(self.redis, self.keys, agent_id, now) > self.throttle_per_minute:
                return Decision(allowed=False, throttled=True, blocked_by=decision.blocked_by,
                                retry_after=retry_after(now))
        return decision

    async def record(self, calls: Sequence[Call], counters: bool = True) -> None:
        """Insert the rows, then bump the live counters, as a gateway does after each call. With a
        fallback file, rows Postgres does not take go there instead, and the counters are bumped all
        the same (they count calls the gateway saw, not rows inserted). `counters=False`: calls of the
        past written after the fact (the demo's week), which no live counter saw."""
        if not calls:
            return
        now = datetime.now(UTC)
        rows = [row_of(call, now) for call in calls]
        try:
            await self._insert(rows)
        except Exception as exc:
            if self.fallback is None:
                raise
            self.last_error = f"{type(exc).__name__}: {exc}"[:200]
            unknown = isinstance(exc, CommitUnknown)
            lines = [encode_row({**row, "commit_unknown": True} if unknown else row) for row in rows]
            await asyncio.to_thread(append_lines, self.fallback, lines)
            self.fallback_rows += len(rows)
        else:
            if self.fallback is not None and time.monotonic() >= self._next_drain:
                self._next_drain = time.monotonic() + self.drain_every
                with contextlib.suppress(Exception):  # said in last_error; the rows stay in their file
                    await self.drain_fallback()
        if not counters:
            return
        spent: dict[str, Decimal] = defaultdict(Decimal)
        per_day: dict[str, int] = defaultdict(int)
        for call in calls:
            day = day_of(call.created_at or now)
            per_day[day] += 1
            if call.cost_usd is not None:
                spent[f"{self.keys.spent}:{call.agent_id}:{day}"] += call.cost_usd
        pipe = self.redis.pipeline(transaction=False)
        queue_counters(pipe, self.keys, spent, per_day)
        await pipe.execute()

    def _insert_sql(self, only_new: bool = False) -> str:
        from costtop.sources.schema import qident, qualified  # asyncpg's side, imported only where rows are written

        table = qualified(self.tables, self.tables.calls)
        names = [qident(self.tables.column(n)) for n in FALLBACK_COLUMNS]
        params = [f"${i}::{kind}" for i, kind in enumerate(COLUMN_TYPES, 1)]
        if not only_new:
            return f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join(params)})"
        same = " AND ".join(f"{names[i]} IS NOT DISTINCT FROM {params[i]}" for i in SAME_ROW)
        return (f"INSERT INTO {table} ({', '.join(names)}) SELECT {', '.join(params)} "
                f"WHERE NOT EXISTS (SELECT 1 FROM {table} WHERE {same})")

    async def _insert(self, rows: Sequence[dict[str, Any]]) -> None:
        """All the rows or none. A failure before COMMIT leaves none (the server rolls back what a
        broken connection left open); a failure of the COMMIT itself is CommitUnknown."""
        values = [tuple(row.get(n) for n in FALLBACK_COLUMNS) for row in rows]
        async with self.pool.acquire(timeout=self.timeout) as conn:
            source = await self._rollup_source_id(conn)
            tx = conn.transaction()
            await tx.start()
            try:
                await self._write(conn, source, values, self.timeout)
            except BaseException:
                with contextlib.suppress(Exception):
                    await tx.rollback()
                raise
            try:
                await asyncio.wait_for(tx.commit(), self.timeout)
            except Exception as exc:
                raise CommitUnknown(f"{type(exc).__name__}: {exc}") from exc

    async def _write(self, conn: asyncpg.Connection, source: int | None, values: Sequence[tuple[Any, ...]],
                     timeout: float, only_new: bool = False) -> None:
        """Insert the rows; with the rollup, in the same statement add exactly the rows inserted to their
        buckets (the caller's transaction commits both or neither)."""
        if source is None:
            await conn.executemany(self._insert_sql(only_new), values, timeout=timeout)
            return
        columns = [list(column) for column in zip(*values, strict=True)]
        await conn.execute(self._rollup_insert_sql(only_new), source, *columns, timeout=timeout)

    def _rollup_insert_sql(self, only_new: bool = False) -> str:
        """One statement: the rows from arrays ($2...), inserted (with `only_new`, only those not already
        there, as `_insert_sql`), and the inserted ones summed into the rollup's minute buckets of source
        $1, and into its hour and day buckets when the job has already summed their hour. An hour and a
        day bucket are added to by every batch of the fleet: kept from the minutes once an hour, they
        cost a 2,000-row batch no more than the minutes (benchmarks.startup)."""
        from costtop.rollup.schema import buckets_table, sources_table
        from costtop.rollup.sums import row_sql, upsert_sql
        from costtop.sources.schema import qident, qualified

        table = qualified(self.tables, self.tables.calls)
        names = [qident(self.tables.column(n)) for n in FALLBACK_COLUMNS]
        arrays = ", ".join(f"${i}::{kind}[]" for i, kind in enumerate(COLUMN_TYPES, 2))
        aliases = [f"v{i}" for i in range(len(names))]
        select = f"SELECT {', '.join(aliases)} FROM unnest({arrays}) AS v({', '.join(aliases)})"
        if only_new:
            same = " AND ".join(f"t.{names[i]} IS NOT DISTINCT FROM v.{aliases[i]}" for i in SAME_ROW)
            select += f" WHERE NOT EXISTS (SELECT 1 FROM {table} AS t WHERE {same})"
        col = {n: qident(self.tables.column(n)) for n in FALLBACK_COLUMNS}
        returned = ", ".join(col[n] for n in ("created_at", "agent_id", "provider", "model", "tokens_in", "tokens_out",
                                              "cached_tokens", "cost_usd", "status"))
        inserted = f"ins AS (INSERT INTO {table} ({', '.join(names)}) {select} RETURNING {returned}), "
        rows = row_sql(agent=col["agent_id"], provider=col["provider"], model=col["model"],
                       created_at=col["created_at"], raw_cost=f"{col['cost_usd']}::numeric",
                       error=f"{col['status']} = 'error'", tin=f"{col['tokens_in']}::bigint",
                       tout=f"{col['tokens_out']}::bigint", cached=f"{col['cached_tokens']}::bigint")
        # The hours the job has summed the minutes of: read under a share lock, which the job's summing
        # waits for (and this for it), so a row is in its hour and day once, whichever commits first.
        mark = f"mark AS (SELECT hours_to FROM {sources_table(self.tables)} WHERE id = $1 FOR SHARE), "
        return upsert_sql(buckets_table(self.tables), "rows", coarse_before="(SELECT hours_to FROM mark)",
                          before=f"{mark}{inserted}rows AS (SELECT {rows} FROM ins), ")

    async def _rollup_source_id(self, conn: asyncpg.Connection) -> int | None:
        """The rollup's id for this table, registered on first use with `covered_from` = now: every row
        this gateway inserts from then on is in the buckets. None when not keeping it: not asked, or
        the schema is missing or not writable, or a `costtop rollup` job keeps this table (the buckets
        would count its rows twice); `rollup_error` says which. Decided once, before the first insert:
        a gateway never stops keeping buckets it has begun to keep."""
        if not self.rollup or self._rollup_source is not None:
            return self._rollup_source
        import asyncpg  # where rows are written: the LiteLLM proxy loads this module without it

        from costtop.rollup.schema import source_name, sources_table

        try:
            row = await conn.fetchrow(
                f"INSERT INTO {sources_table(self.tables)} (name, kept_by, covered_from, hours_to) "
                "VALUES ($1, 'gateway', now(), date_trunc('hour', now(), 'UTC')) "
                "ON CONFLICT (name) DO UPDATE SET updated_at = now() RETURNING id, kept_by",
                source_name(self.tables), timeout=self.timeout)
        except (asyncpg.UndefinedTableError, asyncpg.InvalidSchemaNameError,
                asyncpg.InsufficientPrivilegeError) as exc:
            self.rollup, self.rollup_error = False, f"rollup not kept: {exc} (run `costtop db init`)"[:200]
            return None
        if row["kept_by"] != "gateway":
            self.rollup = False
            self.rollup_error = "rollup not kept: a `costtop rollup` job keeps this table's rollup"
            return None
        self._rollup_source = int(row["id"])
        return self._rollup_source

    async def drain_fallback(self) -> int:
        """Write the fallback file's rows to the table, exactly once (see the class); the rows
        inserted. Raises when Postgres refuses: the rows stay in their file for the next try."""
        if self.fallback is None:
            return 0
        async with self._drain_lock:
            batches = await asyncio.to_thread(claim_batches, self.fallback)
            inserted = 0
            for batch_file in batches:
                inserted += await self._drain_batch(batch_file)
            return inserted

    async def _drain_batch(self, batch_file: Path) -> int:
        from costtop.sources.schema import qident, qualified

        assert self.fallback is not None
        batch = batch_file.name.rsplit(DRAINING_INFIX, 1)[1]
        try:
            rows, rejected = await asyncio.to_thread(read_batch, batch_file)
        except FileNotFoundError:
            return 0  # another gateway process drained it since the listing
        plain = [tuple(r.get(n) for n in FALLBACK_COLUMNS) for r in rows if not r.get("commit_unknown")]
        maybe = [tuple(r.get(n) for n in FALLBACK_COLUMNS) for r in rows if r.get("commit_unknown")]
        marks = qualified(self.tables, self.drains_table)
        try:
            async with self.pool.acquire(timeout=self.timeout) as conn:
                source = await self._rollup_source_id(conn)  # outside the transaction: its failure is no abort
                await conn.execute(f"CREATE TABLE IF NOT EXISTS {marks} (batch text PRIMARY KEY, "
                                   f"{qident('rows')} integer NOT NULL, drained_at timestamptz NOT NULL "
                                   "DEFAULT now())", timeout=self.timeout)
                async with conn.transaction():
                    fresh = await conn.fetchval(
                        f"INSERT INTO {marks} (batch, {qident('rows')}) VALUES ($1, $2) "
                        "ON CONFLICT DO NOTHING RETURNING batch", batch, len(rows), timeout=self.timeout)
                    if fresh is not None:
                        if plain:
                            await self._write(conn, source, plain, self.timeout * 10)
                        if maybe:
                            await self._write(conn, source, maybe, self.timeout * 10, only_new=True)
        except Exception as exc:
            self.last_error = f"drain: {type(exc).__name__}: {exc}"[:200]
            raise
        await asyncio.to_thread(finish_batch, batch_file, rejected)
        return len(rows) if fresh is not None else 0


# The columns (indexes in FALLBACK_COLUMNS) a row whose commit reply was lost is recognised by: time,
# agent, tool, latency, trace and span.
SAME_ROW = (0, 1, 2, 3, 12, 13)
# The parameter types of FALLBACK_COLUMNS: a row read back from JSON holds strings and numbers only.
COLUMN_TYPES = ("timestamptz", "text", "text", "integer", "text", "text", "integer", "integer", "integer",
                "numeric", "text", "text", "text", "text", "text")


def row_of(call: Call, now: datetime) -> dict[str, Any]:
    """The call as the contract's columns, by logical name (the fallback file's line, the insert's row)."""
    return {"created_at": call.created_at or now, "agent_id": call.agent_id, "tool_name": call.tool_name,
            "latency_ms": call.latency_ms, "provider": call.provider, "model": call.model,
            "tokens_in": call.tokens_in, "tokens_out": call.tokens_out, "cached_tokens": call.cached_tokens,
            "cost_usd": call.cost_usd, "status": call.status, "error_code": call.error_code,
            "trace_id": call.trace_id, "span_id": call.span_id, "parent_span_id": call.parent_span_id}


def _locked_handle(path: Path) -> int:
    """The path opened for appending and locked, checked to still be the path's file: a drain may
    have renamed it between the open and the lock, and a line written then would be in a batch
    already read."""
    while True:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            now_there = os.stat(path)
        except FileNotFoundError:
            now_there = None
        opened = os.fstat(fd)
        if now_there is not None and (now_there.st_dev, now_there.st_ino) == (opened.st_dev, opened.st_ino):
            return fd
        os.close(fd)  # renamed away: open the path again


def append_lines(path: Path, lines: Sequence[bytes]) -> None:
    """Append whole lines and fsync them before returning: after this the rows survive a crash."""
    fd = _locked_handle(path)
    try:
        data = b"".join(lines)
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fsync(fd)
    finally:
        os.close(fd)  # closing releases the lock


def claim_batches(path: Path) -> list[Path]:
    """Rename the file to a batch of its own (under the writers' lock), and list every batch waiting,
    left by earlier drains that did not finish included, oldest first."""
    if path.exists():
        fd = _locked_handle(path)
        try:
            if os.fstat(fd).st_size:
                os.rename(path, f"{path}{DRAINING_INFIX}{uuid.uuid4().hex}")
        finally:
            os.close(fd)
    batches: list[tuple[float, str, Path]] = []
    for batch in path.parent.glob(f"{glob_escape(path.name)}{DRAINING_INFIX}*"):
        with contextlib.suppress(FileNotFoundError):  # another gateway process finished it meanwhile
            batches.append((batch.stat().st_mtime, batch.name, batch))
    return [batch for _, _, batch in sorted(batches)]


def glob_escape(name: str) -> str:
    return "".join(f"[{ch}]" if ch in "*?[" else ch for ch in name)


def read_batch(batch_file: Path) -> tuple[list[dict[str, Any]], list[bytes]]:
    """A batch's rows, and the lines that are not rows (kept aside, never inserted)."""
    rows: list[dict[str, Any]] = []
    rejected: list[bytes] = []
    with open(batch_file, "rb") as handle:
        for line in handle:
            if not line.strip():
                continue
            row = parse_line(line) if len(line) <= MAX_LINE_BYTES else None
            if row is None or not _row_shaped(row):
                rejected.append(line if line.endswith(b"\n") else line + b"\n")
                continue
            rows.append(_typed(row))
    return rows, rejected


def _row_shaped(row: dict[str, Any]) -> bool:
    return isinstance(row.get("agent_id"), str) and isinstance(row.get("tool_name"), str) \
        and isinstance(row.get("latency_ms"), int)


def _typed(row: dict[str, Any]) -> dict[str, Any]:
    """JSON values as the insert's parameters want them (a decimal string, text ids)."""
    out = dict(row)
    cost = out.get("cost_usd")
    if cost is not None:
        try:
            out["cost_usd"] = Decimal(str(cost))
        except ArithmeticError:
            out["cost_usd"] = None
    for name in FALLBACK_COLUMNS:
        value = out.get(name)
        if name in ("latency_ms", "tokens_in", "tokens_out", "cached_tokens"):
            out[name] = value if isinstance(value, int) and not isinstance(value, bool) else None
        elif name not in ("created_at", "cost_usd") and value is not None and not isinstance(value, str):
            out[name] = str(value)
    return out


def finish_batch(batch_file: Path, rejected: Sequence[bytes]) -> None:
    """After the batch's commit: keep the lines that were not rows, then delete the batch."""
    if rejected:
        append_lines(batch_file.with_name(batch_file.name.split(DRAINING_INFIX)[0] + ".rejected"), rejected)
    batch_file.unlink(missing_ok=True)
