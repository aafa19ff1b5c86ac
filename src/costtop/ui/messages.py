"""Typed messages from the polling workers to the app."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from textual.message import Message

from costtop.sources.records import (
    Baseline,
    CallRecord,
    DayBaseline,
    FallbackState,
    GatewayCounters,
    ReadQuality,
    RedisState,
    SpendHistory,
    SwitchChange,
    WriteResult,
)


@dataclass
class RedisRead(Message):
    state: RedisState
    at: float


@dataclass
class BaselineRead(Message):
    baseline: Baseline
    columns: frozenset[str]
    at: float
    quality: ReadQuality


@dataclass
class DayTotalsRead(Message):
    """The slow half of start-up, read in the background while the window is already live."""

    part: DayBaseline
    generation: int  # which baseline it completes
    quality: ReadQuality  # with what the resynchronisation found that the live reads had missed


@dataclass
class HistoryRead(Message):
    """The agents' trailing week, for the day anomaly."""

    history: SpendHistory


@dataclass
class AuditDrained(Message):
    left: int  # audit rows still waiting in the local spool
    error: str | None = None  # why Postgres did not take them


@dataclass
class FallbackRead(Message):
    """The gateway's fallback file as just read (a read never fails: trouble is in the state)."""

    state: FallbackState


@dataclass
class HistoryFailed(Message):
    error: str


@dataclass
class CountersRead(Message):
    counters: GatewayCounters


@dataclass
class RowsRead(Message):
    rows: list[CallRecord]
    at: float
    quality: ReadQuality


@dataclass
class SourceFailed(Message):
    source: str  # "Redis" or "Postgres"
    error: str


@dataclass
class SwitchWritten(Message):
    result: WriteResult
    change: SwitchChange | None = None  # what was asked, with the key the writer wrote
    at: datetime | None = None  # when the write was sent: a kill's time for its check (liveness.py)
