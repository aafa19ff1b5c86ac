"""The immutable picture the UI renders. Nothing in it is computed by a widget."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import IntEnum, StrEnum

from costtop.sources.records import ReplicaLag, SwitchRecord


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
    # At the current burn rate: seconds until it is spent (0: already). None: no burn, unknown, or
    # it lasts past the end of its period (the day or the month).
    runs_out_in: float | None = None

    @property
    def fraction(self) -> float | None:
        if self.limit is None or self.used is None or self.limit <= 0:
            return None
        return float(self.used / self.limit)


class SortKey(StrEnum):
    """The agent table's order; `s` steps through them."""

    BURN = "$/min"  # highest 5-minute burn rate first
    RUNS_OUT = "budget runs out"  # soonest exhausted daily budget first (spent ones on top)
    TODAY = "today $"
    NAME = "name"


class AgentState(StrEnum):
    OK = "ok"
    THROTTLED = "throttled"
    KILLED = "killed"
    UNKNOWN = "unknown"  # Redis unavailable: the switches cannot be known


@dataclass(frozen=True, slots=True)
class AgentRow:
    agent_id: str | None  # None: the calls without an agent (a NULL agent_id), shown as `(none)`
    spend_today: Decimal | None
    window_usd: Decimal | None  # spend in the 5-minute window
    velocity_per_min: Decimal | None
    velocity_level: Level
    budget: BudgetView
    calls_today: int | None  # None while start-up still reads the day's rows
    errors_today: int | None
    flat_calls_today: int | None
    p95_ms: int | None
    state: AgentState
    switch: SwitchRecord | None  # the switch that sets the state (agent kill, global kill or throttle)
    projected_today: Decimal | None = None  # spend at midnight UTC if the 5-minute burn rate holds
    trend: tuple[Decimal, ...] = ()  # spend per minute over the last 10 minutes, oldest first
    calls_5m: int = 0  # in the 5-minute window
    errors_5m: int = 0
    last_call_at: float | None = None  # epoch seconds of its newest call read; None: none since watching began


class Health(StrEnum):
    HEALTHY = "healthy"
    DEGRADED = "degraded"  # errors above 10 % in 5 minutes, or p95 above 10 s
    DOWN = "down"  # errors above 50 % in 2 minutes (seed rule)
    IDLE = "idle"  # no call in 5 minutes: nothing to judge by
    NO_DATA = "no data"  # the gateway went silent (no rows after traffic): its figures are not news


@dataclass(frozen=True, slots=True)
class ProviderRow:
    provider: str | None  # None: rows without a provider
    spend_today: Decimal | None
    calls_today: int | None
    calls_2m: int
    error_rate_2m: float | None  # None: no call in the window
    calls_5m: int
    error_rate_5m: float | None
    p95_ms: int | None
    health: Health
    state: AgentState  # killed by `kill:provider:{p}` (or the global kill), else ok
    switch: SwitchRecord | None


@dataclass(frozen=True, slots=True)
class ModelRow:
    model: str | None  # None: rows without a model
    spend_today: Decimal | None  # recorded costs only
    calls_today: int | None
    priced_calls: int | None
    tokens_in: int | None
    tokens_out: int | None
    cached_tokens: int | None
    flat_calls: int | None  # calls without a recorded cost (flat-rate plans)
    flat_tokens: tuple[int, int, int]  # their tokens in, out, cached: the shadow cost's basis
    state: AgentState
    switch: SwitchRecord | None
    # The flat-rate calls at list price (an estimate, never added to spend). None: no catalog price.
    shadow_cost: Decimal | None = None
    priced_as: str | None = None  # the catalog entry that priced it

    @property
    def cache_hit(self) -> float | None:
        if not self.tokens_in or self.cached_tokens is None:
            return None
        return self.cached_tokens / self.tokens_in

    @property
    def average_cost(self) -> Decimal | None:
        """Per call with a recorded cost; flat-rate calls cost nothing at the margin."""
        if self.spend_today is None or not self.priced_calls:
            return None
        return self.spend_today / self.priced_calls


@dataclass(frozen=True, slots=True)
class SpendCheck:
    """One agent's spend today by the gateway's Redis counter and by the table's rows."""

    agent_id: str
    gateway: Decimal | None  # None: the counter is missing or unreadable
    table: Decimal
    flagged: bool  # they differ by more than 10 %: calls bypass attribution, or rows are stuck


@dataclass(frozen=True, slots=True)
class Reconciliation:
    day: str
    agents: tuple[SpendCheck, ...]  # flagged first, largest difference first
    gateway_calls: int | None  # `calls:{day}`; None: the gateway keeps no such counter
    table_calls: int
    calls_flagged: bool

    @property
    def flagged(self) -> tuple[SpendCheck, ...]:
        return tuple(c for c in self.agents if c.flagged)


class Severity(IntEnum):
    WARNING = 1
    CRITICAL = 2
    EMERGENCY = 3


@dataclass(frozen=True, slots=True)
class Alert:
    key: str  # rule and subject: one alert per rule and subject
    rule: str
    severity: Severity
    subject: str  # an agent id, a provider, or "fleet"
    figure: str  # what tripped it, in words
    since: datetime | None = None
    acknowledged: bool = False
    # What it names, for `enter` on it: the agent (an agent's own rules, and the trace patterns), and
    # the trace (a stuck loop, a context explosion). None: it names none (fleet, provider, gateway, the
    # calls without an agent). Typed here, never parsed back out of the key.
    agent: str | None = None
    trace: str | None = None


@dataclass(frozen=True, slots=True)
class FleetLevels:
    """The fleet's burn-rate levels, in USD over the 5-minute window (engine/budgets.py `fleet_levels`)."""

    warning: Decimal
    critical: Decimal
    emergency: Decimal


@dataclass(frozen=True, slots=True)
class HeaderStats:
    spend_today: Decimal | None
    spend_month: Decimal | None
    velocity_per_min: Decimal | None
    velocity_per_hour: Decimal | None
    velocity_level: Level  # judged by `fleet_levels`
    fleet_levels: FleetLevels
    day_budget: BudgetView
    month_budget: BudgetView
    active_agents: int
    known_agents: int
    calls_per_min: Decimal
    error_rate_1h: float | None
    cache_hit_rate: float | None
    p95_ms: int | None
    totals_pending: bool = False  # start-up is still summing the day: day figures are unknown yet
    projected_today: Decimal | None = None  # at midnight UTC, if the 5-minute burn rate holds
    projected_month: Decimal | None = None  # at the month's end, same rate
    # The fleet's spend per minute over the last hour and per hour over the last 24, oldest first; the
    # last bucket is the current, partial one. Empty while the day's sums are still being read.
    per_minute: tuple[Decimal, ...] = ()
    per_hour: tuple[Decimal, ...] = ()
    newest_row_age: float | None = None  # seconds from the newest row's time stamp to costtop's clock
    rows_silent: bool = False  # the gateway stopped writing rows (liveness.py): window figures go stale


@dataclass(frozen=True, slots=True)
class KillCheck:
    """A kill switch that is on, and whether the gateway honours it (engine/liveness.py)."""

    key: str
    scope: str
    target: str
    since: datetime  # when it was set, as far as costtop knows
    written: bool  # True: costtop set it at `since`; False: `since` is when costtop first saw it
    last_call_at: float | None  # epoch seconds of its target's newest call (any, refused or not)
    violations: int  # calls that started after `since` plus the grace and were not refused
    known_from: float | None = None  # epoch: every call of its target since then was read; None: unknown


@dataclass(frozen=True, slots=True)
class FallbackView:
    """The gateway's fallback file as the header shows it (only when costtop was told its path)."""

    lines: int  # lines waiting, malformed ones included (a lower bound while `error` or not `caught_up`)
    malformed: int
    oldest_age_seconds: float | None  # None: no well-formed line waits
    overdue: bool  # the oldest line is past the drain limit
    caught_up: bool  # every byte read (a large backlog is read a few MB a refresh)
    error: str | None  # what could not be read: the figures are then what could be

    @property
    def known(self) -> bool:
        return self.error is None or self.lines > 0


@dataclass(frozen=True, slots=True)
class SourceView:
    name: str
    connected: bool
    age_seconds: float | None  # since the last good read; None: never read
    error: str | None
    replica: ReplicaLag | None = None  # Postgres is a hot standby this far behind its primary; None: it is not


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
    providers: tuple[ProviderRow, ...] = ()
    models: tuple[ModelRow, ...] = ()
    sort: SortKey = SortKey.BURN
    sort_reverse: bool = False
    reconciliation: Reconciliation | None = None  # None: no counters read yet, or the day is still summing
    alerts: tuple[Alert, ...] = ()  # most severe and oldest first
    new_critical: bool = False  # a critical alert tripped at this snapshot (the terminal bell)
    anomaly_note: str | None = None  # why the day anomaly is not being judged, when that is a failure
    audit_pending: int = 0  # audit rows kept locally because Postgres did not take them yet
    audit_error: str | None = None  # why, at the last try
    audit_spool_error: str | None = None  # the local audit spool could not be written (a full disk, say)
    # Ready-made one-line messages about bad data: rows dated in the future or arriving too late, values
    # that could not be read, costs the figures could not count (NaN) or took as recorded (negative),
    # naming the agents; plain text, cleaned where it is drawn.
    data_quality: tuple[str, ...] = ()
    fallback: FallbackView | None = None  # None: no fallback file is watched
    # What the start-up read said about the rollup (sources/postgres.py): no rollup, or one far behind, so
    # start-up summed rows one by one. No figure is wrong; the next start could be instant. None: all well.
    rollup_note: str | None = None
    kill_checks: tuple[KillCheck, ...] = ()  # one per kill switch on
    calls_seen_from: float | None = None  # epoch: every call since then was read (older: "before that")

    def kill_check(self, key: str) -> KillCheck | None:
        return next((c for c in self.kill_checks if c.key == key), None)

    def has(self, column: str) -> bool:
        return column in self.columns
