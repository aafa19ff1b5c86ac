"""Typed records that sources produce and the engine consumes. Text is kept exact (an agent id is also
the name of its switch key); what is rendered is cleaned where it is drawn."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING

from costtop.text import clean

if TYPE_CHECKING:
    from costtop.config import Settings


@dataclass(frozen=True, slots=True)
class CallRecord:
    """One `tool_calls` row. `key` identifies the row for de-duplication of overlapping reads."""

    key: object
    created_at: datetime
    agent_id: str | None  # None: a NULL agent_id (calls without an agent), shown as `(none)`
    tool_name: str
    latency_ms: int | None
    provider: str | None = None
    model: str | None = None
    tokens_in: int | None = None
    tokens_out: int | None = None
    cached_tokens: int | None = None
    cost_usd: Decimal | None = None
    status: str | None = None
    trace_id: str | None = None


@dataclass(frozen=True, slots=True)
class DayAggregate:
    """Per-agent sums for rows read in bulk at start-up instead of row by row."""

    agent_id: str | None  # None: a NULL agent_id (calls without an agent), shown as `(none)`
    day: str  # YYYY-MM-DD, UTC
    cost: Decimal | None
    calls: int
    priced_calls: int
    errors: int
    tokens_in: int
    cached_tokens: int
    unusable_costs: int = 0  # recorded but NaN, infinite or out of range: left out of `cost`, flagged
    negative_costs: int = 0  # in `cost` as SQL sums them, and flagged


@dataclass(frozen=True, slots=True)
class MinuteAggregate:
    """Per-agent sums of one whole UTC minute, for windows longer than the exact 5-minute one."""

    agent_id: str | None  # None: a NULL agent_id (calls without an agent), shown as `(none)`
    minute: int  # epoch seconds // 60
    cost: Decimal | None
    calls: int
    errors: int


@dataclass(frozen=True, slots=True)
class UsageAggregate:
    """One (model, provider) pair's sums over the day. Tokens of calls without a recorded cost are
    kept apart: a price list turns them into the flat-rate calls' shadow cost."""

    model: str | None
    provider: str | None
    cost: Decimal | None
    calls: int
    priced_calls: int
    errors: int
    tokens_in: int
    tokens_out: int
    cached_tokens: int
    flat_tokens_in: int
    flat_tokens_out: int
    flat_cached_tokens: int
    unusable_costs: int = 0  # calls with a recorded cost that is not a figure: neither priced nor flat


@dataclass(frozen=True, slots=True)
class WindowGroup:
    """One agent's rows in one second of the 5-minute window, read at start-up as sums plus the
    exact latencies (for p95; an int array from the reader, so no Python int per call). They are
    already in the day and minute sums."""

    second: int  # epoch seconds
    agent_id: str | None  # None: a NULL agent_id (calls without an agent), shown as `(none)`
    cost: Decimal | None  # sum of the known costs; None when none was known
    priced: int
    calls: int
    errors: int
    latencies: Sequence[int]


@dataclass(frozen=True, slots=True)
class ProviderSecond:
    """One provider's calls in one second of the 5-minute window, read at start-up: its error
    rates and p95 need them second by second, as the agents' windows do."""

    second: int
    provider: str | None
    calls: int
    errors: int
    latencies: Sequence[int]


@dataclass(frozen=True, slots=True)
class Baseline:
    """What start-up reads in one consistent snapshot, before incremental reads take over: sums for
    everything visible, and the window's rows one by one."""

    day: str  # YYYY-MM-DD (UTC) the day aggregates are for
    days: tuple[DayAggregate, ...]
    month_before_today: Decimal | None
    month: str  # YYYY-MM of month_before_today
    minutes: tuple[MinuteAggregate, ...]
    window: tuple[WindowGroup, ...]
    # True: days, minutes and the month are not read yet; a DayBaseline from the same snapshot follows.
    pending: bool = False
    usage: tuple[UsageAggregate, ...] = ()
    providers: tuple[ProviderSecond, ...] = ()
    hours: tuple[tuple[int, Decimal], ...] = ()
    agent_hours: tuple[tuple[str, int, Decimal], ...] = ()


@dataclass(frozen=True, slots=True)
class DayBaseline:
    """The slow half of start-up: the sums over the whole day, the hour and the month, read in the
    same snapshot as the Baseline it completes."""

    day: str
    days: tuple[DayAggregate, ...]
    month_before_today: Decimal
    month: str
    minutes: tuple[MinuteAggregate, ...]
    usage: tuple[UsageAggregate, ...] = ()
    hours: tuple[tuple[int, Decimal], ...] = ()  # (epoch hour, the fleet's spend) over the last 24 h
    # (agent, epoch hour, spend) for this clock hour and the one before: the hour-over-hour anomaly.
    agent_hours: tuple[tuple[str, int, Decimal], ...] = ()


@dataclass(frozen=True, slots=True)
class ReplicaLag:
    """How far a hot standby's data is behind its primary's, as the standby can tell (sources/replica.py)."""

    seconds: float | None  # None: unknown
    at_most: bool = False  # an upper bound (a replay backlog), not a measurement
    why: str = ""  # for an unknown lag: why, in a few words
    # costtop may write and no audit_database_url names the primary: the standby refuses audit rows,
    # which wait in the local spool (sources/audit_db.py). Said on the badge before any switch is pressed.
    spooled: bool = False


@dataclass(frozen=True, slots=True)
class ReadQuality:
    """What the row reader noticed about the rows themselves, as opposed to the connection: rows that
    came late, rows only a full resynchronisation found, rows dated ahead of the clock."""

    late_rows: int = 0  # counted live although read more than LATE_AFTER seconds after their created_at
    latest_lateness: float = 0.0  # the most seconds any of them came after its created_at
    missed_rows: int = 0  # later than the horizon: found by the last full resynchronisation, not live
    resync_at: datetime | None = None  # when the last full resynchronisation was read
    future_rows: int = 0  # dated more than the clock skew ahead of the clock: not counted yet
    future_latest: datetime | None = None  # the furthest of them
    horizon: float = 300.0  # the lateness horizon (max_lateness) these figures were taken with
    unreadable: str | None = None  # rows with a value that could not be read (column_types.LeftOut)
    rollup: str | None = None  # the start-up read's word on the rollup (rollup/read.py); None: it answered
    replica: ReplicaLag | None = None  # the database is a hot standby this far behind; None: not a standby


@dataclass(frozen=True, slots=True)
class Step:
    """One row of a trace, as the trace view reads it (nested and marked by `engine.traces`)."""

    created_at: datetime
    tool_name: str
    span_id: str | None
    parent_span_id: str | None
    model: str | None
    tokens_in: int | None
    tokens_out: int | None
    cost_usd: Decimal | None
    latency_ms: int | None
    status: str | None


class SwitchKind(StrEnum):
    KILL = "kill"
    THROTTLE = "throttle"


@dataclass(frozen=True, slots=True)
class SwitchRecord:
    """A `kill:*` or `throttle:*` key. `value` is None when it exists but could not be read."""

    key: str
    kind: SwitchKind
    scope: str
    target: str
    value: str | None
    ttl_seconds: float | None  # None: no expiry (or unknown)

    @property
    def origin(self) -> tuple[str, str, str]:
        """(source, who, why) from `{source}:{who}:{reason}`; anything else is all reason. For
        display: each part cleaned here, whoever made the record."""
        if self.value is None:
            return ("?", "?", "unreadable value")
        parts = self.value.split(":", 2)
        if len(parts) == 3:
            return (clean(parts[0], 40), clean(parts[1], 64), clean(parts[2], 400))
        return ("?", "?", clean(self.value, 400))


@dataclass(frozen=True, slots=True)
class Unparsed:
    """A value that exists but is not a number: shown as unknown, never as $0."""

    raw: str


# A budget or counter read from Redis: None when the key is absent.
RedisNumber = Decimal | Unparsed | None


@dataclass(frozen=True, slots=True)
class RedisState:
    """One read of the switches and budgets."""

    switches: tuple[SwitchRecord, ...]
    budgets: dict[str, Decimal | Unparsed]  # agent id -> its `budget:{agent}` value
    global_day_budget: RedisNumber
    global_month_budget: RedisNumber


@dataclass(frozen=True, slots=True)
class GatewayCounters:
    """The gateway's own tallies for one UTC day, to hold against the table's rows."""

    day: str
    spent: dict[str, Decimal | Unparsed]  # agent id -> `spent:{agent}:{day}`
    calls: int | RedisNumber  # `calls:{day}` (optional in the contract); a Decimal is checked as a count


@dataclass(frozen=True, slots=True)
class SourceStatus:
    name: str
    connected: bool
    last_ok: float | None  # epoch seconds of the last good read
    error: str | None = None


@dataclass(frozen=True, slots=True)
class SpendHistory:
    """Each agent's spend per UTC day over the whole days before `day`: the anomaly rule's baseline.
    `sums` holds (agent, day number, spend) for the days an agent had rows, day 0 the oldest."""

    day: str  # YYYY-MM-DD: the day this history precedes
    days: int
    sums: tuple[tuple[str, int, Decimal], ...]


@dataclass(frozen=True, slots=True)
class FallbackState:
    """What the fallback file(s) hold now. `error` set: the files could not all be read, and the
    figures are what could be (a lower bound) or, with `files == 0`, unknown."""

    pattern: str
    files: int = 0
    lines: int = 0  # lines waiting, malformed ones included
    malformed: int = 0
    oldest: datetime | None = None  # the oldest well-formed line's created_at
    caught_up: bool = True  # every byte of every file read: False while a large backlog is being read
    error: str | None = None


@dataclass(frozen=True, slots=True)
class SwitchChange:
    """What the operator asked for. `kind` is kill or throttle; `scope` global, agent, model, provider."""

    action: str  # "set" or "remove"
    kind: str
    scope: str
    target: str | None  # None: the calls without one (a NULL agent_id), which have no switch
    reason: str = ""
    ttl_seconds: int | None = None
    key: str | None = None  # the exact key, when removing a switch that was read from Redis

    @classmethod
    def removing(cls, switch: SwitchRecord) -> SwitchChange:
        """Resume: remove a switch as Redis holds it, by its exact key."""
        return cls("remove", switch.kind.value, switch.scope, switch.target, key=switch.key)


class Outcome(StrEnum):
    """What Redis holds after a write: the operator acts on this, so "unknown" is never rounded off."""

    DONE = "done"
    NOT_DONE = "not done"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class WriteResult:
    ok: bool  # the switch is as asked (outcome DONE)
    message: str
    audit_written: bool
    audit_pending: bool = False  # not in the table yet, but kept in the local spool for later
    outcome: Outcome | None = None  # None: from `ok` (DONE or NOT_DONE); UNKNOWN only when stated
    spool_error: str | None = None  # the local audit spool could not be written: said, never hidden

    def __post_init__(self) -> None:
        if self.outcome is None:
            object.__setattr__(self, "outcome", Outcome.DONE if self.ok else Outcome.NOT_DONE)


def switch_key(settings: Settings, kind: str, scope: str, target: str) -> str:
    prefix = settings.keys.kill if kind == "kill" else settings.keys.throttle
    return f"{prefix}:global" if scope == "global" else f"{prefix}:{scope}:{target}"


@dataclass(frozen=True, slots=True)
class TraceSummary:
    trace_id: str
    started: datetime
    ended: datetime
    steps: int
    tokens_in: int
    tokens_out: int
    cost: Decimal | None
    errors: int
    # The runaway patterns its steps show ("loop", "context", "errors"), as `engine.traces.patterns`
    # judges them; filled by the session from the steps read with the list.
    patterns: frozenset[str] = frozenset()

    @property
    def duration_seconds(self) -> float:
        return (self.ended - self.started).total_seconds()


@dataclass(frozen=True, slots=True)
class ModelShare:
    model: str | None
    calls: int
    cost: Decimal | None
