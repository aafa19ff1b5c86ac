"""What the app polls: one object that reads both sources and owns the one writer.

The live feed talks to the real servers. The static feed (demo/static_feed.py) serves fixed records
for snapshot tests and screenshots through the same interface, so the UI cannot tell them apart.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Protocol

from costtop.config import Settings
from costtop.sources.audit_db import AuditDatabase
from costtop.sources.audit_spool import AuditSpool
from costtop.sources.day_report import DayRecords, day_records
from costtop.sources.errors import SourceError
from costtop.sources.fallback_file import FallbackReader
from costtop.sources.history import daily_spend
from costtop.sources.postgres import PostgresReader
from costtop.sources.records import (
    Baseline,
    CallRecord,
    DayBaseline,
    FallbackState,
    GatewayCounters,
    ModelShare,
    ReadQuality,
    RedisState,
    SpendHistory,
    Step,
    SwitchChange,
    TraceSummary,
    WriteResult,
)
from costtop.sources.redis_state import RedisReader
from costtop.sources.traces import agent_calls, agent_models, agent_steps, agent_traces, trace_steps
from costtop.sources.writer import SwitchWriter, drain

# Reads of new rows per refresh where a read costs only its new rows (by id): each frame then waits
# for a quarter of a refresh's rows at most, not for the whole refresh's (session.py).
READS_PER_REFRESH = 4


class Feed(Protocol):
    read_only: bool

    async def read_redis(self) -> RedisState: ...
    async def read_counters(self, day: str) -> GatewayCounters: ...
    # The gateway's fallback file, when costtop was told its path (`fallback_file`); None: not watched.
    async def read_fallback(self) -> FallbackState | None: ...
    async def connect_postgres(self) -> frozenset[str]: ...
    async def baseline(self, now: datetime) -> Baseline: ...
    # Called only when baseline() returned `pending=True`: the rest of that baseline.
    async def baseline_days(self) -> DayBaseline: ...
    async def new_rows(self) -> list[CallRecord]: ...
    # How many reads of new rows a refresh is worth (session.py): 1 where each read costs more than its
    # new rows.
    def reads_per_refresh(self) -> int: ...
    # What the row reader noticed about the rows so far: late ones, future-dated ones, missed ones.
    def read_quality(self) -> ReadQuality: ...
    # Each agent's spend per day over the week before `day`: read once a day, for the day anomaly.
    async def spend_history(self, day: str) -> SpendHistory: ...
    # One UTC day's records, for `costtop report`.
    async def read_day(self, day: str) -> DayRecords: ...
    async def agent_traces(self, agent: str, since: datetime) -> list[TraceSummary]: ...
    # The steps of those traces, by trace id (the columns the runaway patterns need).
    async def agent_steps(self, agent: str, since: datetime,
                          traces: Sequence[str] | None = None) -> dict[str, list[Step]]: ...
    async def trace_steps(self, trace_id: str) -> list[Step]: ...
    async def agent_models(self, agent: str, since: datetime) -> list[ModelShare]: ...
    async def agent_calls(self, agent: str) -> list[CallRecord]: ...
    async def write(self, change: SwitchChange) -> WriteResult: ...
    # Audit rows kept locally while Postgres could not take them: how many, and writing them now.
    def audit_pending(self) -> int: ...
    async def drain_audit(self) -> tuple[int, str | None]: ...
    async def close(self) -> None: ...


class LiveFeed:
    def __init__(self, settings: Settings, clock: Callable[[], datetime] | None = None) -> None:
        """`clock`: the time the readers go by (which days are closed, the bound on future rows)."""
        self.settings = settings
        self.read_only = settings.read_only
        self.redis = RedisReader(settings)
        self.postgres = PostgresReader(settings) if clock is None else PostgresReader(settings, clock)
        self.spool = AuditSpool.for_settings(settings)
        self.audit = AuditDatabase(settings)  # the primary's pool when reading a standby (audit_db.py)
        self.fallback = FallbackReader(settings.fallback_file) if settings.fallback_file else None
        self.audit_lost = 0  # audit rows neither Postgres nor the spool took: said at quit, however late

    async def read_redis(self) -> RedisState:
        return await self.redis.read()

    async def read_counters(self, day: str) -> GatewayCounters:
        return await self.redis.read_counters(day)

    async def read_fallback(self) -> FallbackState | None:
        """Off the event loop: a stat per file, and the bytes appended since the last read."""
        if self.fallback is None:
            return None
        return await asyncio.to_thread(self.fallback.read)

    async def connect_postgres(self) -> frozenset[str]:
        await self.postgres.connect()
        assert self.postgres.columns is not None
        return self.postgres.columns.present

    async def baseline(self, now: datetime) -> Baseline:
        return await self.postgres.start_baseline(now)

    async def baseline_days(self) -> DayBaseline:
        days = await self.postgres.finish_baseline()
        await self.count_unreadable(days.day)
        return days

    async def count_unreadable(self, day: str) -> None:
        """Today's rows with a value that cannot be read, counted afresh with each baseline. A count
        that fails (a regex scan of a huge day past its timeout) leaves the figures alone: they are
        read, and the next baseline counts again."""
        with contextlib.suppress(SourceError):
            await self.postgres.count_left_out(datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=UTC))

    async def new_rows(self) -> list[CallRecord]:
        return await self.postgres.new_rows()

    def reads_per_refresh(self) -> int:
        """By id, a read costs the rows new since the last one, however often it runs: several per
        refresh. By created_at each read also re-reads its overlap (dedup.py), so once per refresh."""
        return READS_PER_REFRESH if self.postgres.id_mode else 1

    def read_quality(self) -> ReadQuality:
        quality = self.postgres.read_quality()
        if quality.replica is not None and not self.read_only and self.settings.audit_database_url is None:
            return replace(quality, replica=replace(quality.replica, spooled=True))  # audit_db.py
        return quality

    async def spend_history(self, day: str) -> SpendHistory:
        return await daily_spend(self.postgres, day)

    async def read_day(self, day: str) -> DayRecords:
        return await day_records(self.postgres, self.settings, day)

    async def agent_traces(self, agent: str, since: datetime) -> list[TraceSummary]:
        return await agent_traces(self.postgres, agent, since)

    async def agent_steps(self, agent: str, since: datetime,
                          traces: Sequence[str] | None = None) -> dict[str, list[Step]]:
        return await agent_steps(self.postgres, agent, since, traces)

    async def trace_steps(self, trace_id: str) -> list[Step]:
        return await trace_steps(self.postgres, trace_id)

    async def agent_models(self, agent: str, since: datetime) -> list[ModelShare]:
        return await agent_models(self.postgres, agent, since)

    async def agent_calls(self, agent: str) -> list[CallRecord]:
        return await agent_calls(self.postgres, agent)

    async def write(self, change: SwitchChange) -> WriteResult:
        if self.read_only:
            return WriteResult(False, "Read-only: nothing was changed", False)
        pool = await self.audit.pool(self.postgres.pool)
        writer = SwitchWriter(self.settings, self.redis.client, pool, spool=self.spool)
        writer.unconnected = self.audit.why  # the audit database's own trouble, when it has no pool
        result = await writer.apply(change)
        if result.spool_error and not (result.audit_written or result.audit_pending):
            self.audit_lost += 1
        return result

    def audit_pending(self) -> int:
        return self.spool.count()

    async def drain_audit(self) -> tuple[int, str | None]:
        try:
            return await drain(self.settings, await self.audit.pool(self.postgres.pool), self.spool, self.audit.why)
        except OSError as exc:  # the spool itself cannot be read: its rows stay where they are
            return self.spool.count() or 1, f"the local spool cannot be read: {exc.strerror or exc}"

    async def close(self) -> None:
        await self.redis.close()
        await self.postgres.close()
        await self.audit.close()
