"""The immutable picture the UI renders. Nothing in it is computed by a widget."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from costtop.sources.records import SwitchRecord


class Level(StrEnum):
    """Severity carried by colour and, for 16-colour terminals and NO_COLOR, by text."""

    OK = "ok"
    WARNING = "warning"
    CRITICAL = "critical"
    EMERGENCY = "emergency"
    UNKNOWN = "unknown"


class BudgetState(StrEnum):
    DISABLED = "disabled"  # missing, zero or negative: not enforced, never "exceeded"
    OK = "ok"
    WARNING = "warning"
    EXCEEDED = "exceeded"
    UNKNOWN = "unknown"  # present but unreadable, or Redis unavailable


@dataclass(frozen=True, slots=True)
class BudgetView:
    state: BudgetState
    limit: Decimal | None = None
    used: Decimal | None = None

    @property
    def fraction(self) -> float | None:
        if self.limit is None or self.used is None or self.limit <= 0:
            return None
        return float(self.used / self.limit)


class AgentState(StrEnum):
    OK = "ok"
    THROTTLED = "throttled"
    KILLED = "killed"
    UNKNOWN = "unknown"  # Redis unavailable: the switches cannot be known


@dataclass(frozen=True, slots=True)
class AgentRow:
    agent_id: str
    spend_today: Decimal | None
    window_usd: Decimal | None  # spend in the 5-minute window
    velocity_per_min: Decimal | None
    velocity_level: Level
    budget: BudgetView
    calls_today: int
    errors_today: int
    flat_calls_today: int
    p95_ms: int | None
    state: AgentState
    switch: SwitchRecord | None  # the switch that sets the state (agent kill, global kill or throttle)


@dataclass(frozen=True, slots=True)
class HeaderStats:
    spend_today: Decimal | None
    spend_month: Decimal | None
    velocity_per_min: Decimal | None
    velocity_per_hour: Decimal | None
    velocity_level: Level
    day_budget: BudgetView
    month_budget: BudgetView
    active_agents: int
    known_agents: int
    calls_per_min: Decimal
    error_rate_1h: float | None
    cache_hit_rate: float | None
    p95_ms: int | None


@dataclass(frozen=True, slots=True)
class SourceView:
    name: str
    connected: bool
    age_seconds: float | None  # since the last good read; None: never read
    error: str | None


@dataclass(frozen=True, slots=True)
class Snapshot:
    at: datetime
    header: HeaderStats
    agents: tuple[AgentRow, ...]
    switches: tuple[SwitchRecord, ...]
    sources: tuple[SourceView, ...]
    columns: frozenset[str] = field(default_factory=frozenset)
    global_kill: SwitchRecord | None = None
    switches_known: bool = True

    def has(self, column: str) -> bool:
        return column in self.columns
