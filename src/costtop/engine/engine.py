"""The engine: records in, an immutable Snapshot out. Pure and synchronous; time is passed in."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from costtop.config import Thresholds
from costtop.engine.alerts import AlertBook, evaluate, fallback_alert
from costtop.engine.anomalies import DayNorm, day_anomalies, day_norms, hour_anomalies
from costtop.engine.budgets import budget_view, projected
from costtop.engine.data_quality import cost_quality, data_quality_lines
from costtop.engine.live_traces import LiveTraces
from costtop.engine.liveness import Liveness
from costtop.engine.reconcile import reconcile
from costtop.engine.series import AgentSeries, CostSeries
from costtop.engine.snapshot import (
    AgentRow,
    AgentState,
    Alert,
    FallbackView,
    HeaderStats,
    Health,
    Level,
    ModelRow,
    ProviderRow,
    Reconciliation,
    Severity,
    Snapshot,
    SortKey,
    SourceView,
)
from costtop.engine.windows import HOUR_MINUTES, VELOCITY_SECONDS, KeyedSeconds, MinuteCounts, SlidingWindow
from costtop.pricing.catalog import Catalog, Price, shadow_cost
from costtop.sources.numbers import MAX_LATENCY_MS, in_range
from costtop.sources.records import (
    Baseline,
    CallRecord,
    DayBaseline,
    FallbackState,
    GatewayCounters,
    MinuteAggregate,
    ReadQuality,
    RedisState,
    SourceStatus,
    SpendHistory,
    SwitchKind,
    SwitchRecord,
    UsageAggregate,
)
from costtop.text import none_last

FIVE = Decimal(VELOCITY_SECONDS // 60)
Switched = Callable[[str, "str | None"], "tuple[AgentState, SwitchRecord | None]"]
NO_TOKENS = (0, 0, 0)
ZERO = Decimal(0)
TREND_MINUTES = 10  # the agent table's trend column
PROVIDER_DOWN_SECONDS = 120  # seed: a provider with more than 50 % errors in 2 minutes is down


@dataclass(slots=True)
class UsageTotals:
    """An agent's, a model's or a provider's day. Tokens of calls without a recorded cost are kept
    apart: they are what a price list would charge (the shadow cost)."""

    cost: Decimal = Decimal(0)
    priced: int = 0
    calls: int = 0
    errors: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    cached: int = 0
    flat_in: int = 0
    flat_out: int = 0
    flat_cached: int = 0
    unusable: int = 0  # calls whose recorded cost is not a figure: left out of `cost`, not flat-rate
    negative: int = 0  # calls with a negative cost: in `cost`, as SQL sums them

    @property
    def flat(self) -> int:
        """Calls without a recorded cost (flat-rate plans); an unusable cost is not one of them."""
        return self.calls - self.priced - self.unusable

    def add(self, cost: Decimal | None, priced: int, calls: int, errors: int, tokens: tuple[int, int, int],
            flat: tuple[int, int, int], unusable: int = 0, negative: int = 0) -> None:
        if cost is not None:
            self.cost += cost
        self.unusable += unusable
        self.negative += negative
        self.priced += priced
        self.calls += calls
        self.errors += errors
        self.tokens_in += tokens[0]
        self.tokens_out += tokens[1]
        self.cached += tokens[2]
        self.flat_in += flat[0]
        self.flat_out += flat[1]
        self.flat_cached += flat[2]


def day_of(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d")


def period_left(now: datetime) -> tuple[float, float]:
    """Seconds left in the UTC day and in the UTC month."""
    utc = now.astimezone(UTC)
    day_end = datetime(utc.year, utc.month, utc.day, tzinfo=UTC) + timedelta(days=1)
    month_end = datetime(utc.year + utc.month // 12, utc.month % 12 + 1, 1, tzinfo=UTC)
    return (day_end - utc).total_seconds(), (month_end - utc).total_seconds()


NEVER = float("inf")


def sort_key(sort: SortKey, row: AgentRow) -> tuple[object, ...]:
    """Floats sort ten times faster than Decimals; only figures equal to 15 digits could swap."""
    burn = -float(row.window_usd or 0)
    if sort is SortKey.RUNS_OUT:
        left = row.budget.runs_out_in
        return (NEVER if left is None else left, burn, none_last(row.agent_id))
    if sort is SortKey.TODAY:
        return (-float(row.spend_today or 0), burn, none_last(row.agent_id))
    if sort is SortKey.NAME:
        return (none_last(row.agent_id),)
    return (burn, -float(row.spend_today or 0), none_last(row.agent_id))


def kill_alert(key: str, scope: str, target: str, since: datetime, violations: int) -> Alert:
    """Calls that started after a kill switch (plus the grace) and were not refused: the gateway is
    not checking it, and the spend the kill was meant to stop goes on."""
    subject = "fleet" if scope == "global" else target
    return Alert(f"unhonoured:{key}", "kill not honoured", Severity.CRITICAL, subject,
                 f"{violations:,} call{'s' if violations != 1 else ''} since {since.astimezone(UTC):%H:%M:%S} UTC "
                 f"despite {key}: the gateway is not checking it")


def velocity_level(window_usd: Decimal | None, thresholds: Thresholds) -> Level:
    """Seed rule: more than $5 / $15 / $50 in the 5-minute window."""
    if window_usd is None:
        return Level.UNKNOWN
    if window_usd > thresholds.velocity_emergency:
        return Level.EMERGENCY
    if window_usd > thresholds.velocity_critical:
        return Level.CRITICAL
    if window_usd > thresholds.velocity_warning:
        return Level.WARNING
    return Level.OK


class Engine:
    def __init__(self, thresholds: Thresholds | None = None, columns: Iterable[str] = ()) -> None:
        self.thresholds = thresholds or Thresholds()
        self.columns = frozenset(columns)
        self.day = ""
        self.month = ""
        self.days: dict[str, UsageTotals] = {}
        self.today = UsageTotals()  # every agent's day together, kept running
        self.cost_flagged: set[str] = set()  # agents with unusable or negative costs today
        self.day_pending = False  # the day's sums are still being read: day figures are unknown
        self.month_before_today = Decimal(0)
        self.window = SlidingWindow(VELOCITY_SECONDS)
        self.hour = MinuteCounts(HOUR_MINUTES)
        self.per_minute = CostSeries(60, HOUR_MINUTES)  # the chart's last hour
        self.per_hour = CostSeries(3600, 24)  # the chart's last day
        self.trends = AgentSeries(TREND_MINUTES)
        self.agent_hours = AgentSeries(2)  # this clock hour and the one before, per agent
        self.history_day: str | None = None  # the day the norms below were computed for
        self.day_norms: dict[str, DayNorm] = {}
        self.history_error: str | None = None  # the last failure to read that week, until a read works
        self.audit_pending = 0  # audit rows waiting in the local spool, as the app last counted them
        self.audit_error: str | None = None  # why Postgres did not take them, at the last try
        self.audit_spool_error: str | None = None  # the local spool could not be written, at the last write
        self.models: dict[str | None, UsageTotals] = {}
        self.providers: dict[str | None, UsageTotals] = {}
        self.provider_window = KeyedSeconds(VELOCITY_SECONDS)
        self._agent_rows: dict[str, AgentRow] = {}
        self._rows_valid = False
        self._changed: set[str] = set()
        self._row_context: object = None
        self._sort_keys: dict[str, tuple[object, ...]] = {}
        self._order: list[str] = []
        self._agents: tuple[AgentRow, ...] = ()
        self.sort = SortKey.BURN
        self.sort_reverse = False  # a second click on the same column's title
        self.alerts = AlertBook()
        self.live_traces = LiveTraces(self.thresholds.loop_calls, self.thresholds.context_tokens)
        self.counters: GatewayCounters | None = None  # the gateway's Redis tallies, read now and then
        self.fallback: FallbackState | None = None  # the gateway's fallback file, as last read
        self.catalog: Catalog | None = None  # list prices, for flat-rate calls' shadow cost only
        self._prices: tuple[Catalog | None, dict[str | None, tuple[str, Price] | None]] = (None, {})
        self._reconciled: tuple[GatewayCounters | None, Reconciliation | None] = (None, None)
        self._trend_minute = -1
        self._trend_prefix: dict[str, tuple[Decimal, ...]] = {}
        self.read_quality = ReadQuality()  # what the row reader noticed about the rows, as last told
        self.before_month = 0  # rows dated before this month that arrived live: in no figure shown
        self.liveness = Liveness(self.thresholds)  # last calls, kills honoured, rows still coming

    # -- input -------------------------------------------------------------------------------------

    def load(self, baseline: Baseline, columns: Iterable[str] | None = None, at: datetime | None = None) -> None:
        """Start over from a baseline (at start and after a reconnect), so nothing is counted twice.
        `at`: when it was read; every call of its 5-minute window is in it, so an agent missing from it
        last called before that (the last-call ages say so). Last calls and kill checks are kept."""
        if columns is not None:
            self.columns = frozenset(columns)
        if at is not None:
            self.liveness.watching_from(at.timestamp(), VELOCITY_SECONDS)
        self.liveness.recent = {}  # the window's rows come again below: traffic is not counted twice
        self.days = {}
        self.today = UsageTotals()
        self.cost_flagged = set()
        self.models, self.providers = {}, {}
        self.window = SlidingWindow(VELOCITY_SECONDS)
        self.provider_window = KeyedSeconds(VELOCITY_SECONDS)
        self.hour = MinuteCounts(HOUR_MINUTES)
        self.per_minute = CostSeries(60, HOUR_MINUTES)
        self.per_hour = CostSeries(3600, 24)
        self.trends = AgentSeries(TREND_MINUTES)
        self.agent_hours = AgentSeries(2)
        self._rows_valid = False
        self.month = baseline.month
        self.month_before_today = baseline.month_before_today or Decimal(0)
        self.day = baseline.day
        self.day_pending = baseline.pending
        for agg in baseline.days:
            self._add_day(agg.agent_id, agg.cost, agg.priced_calls, agg.calls, agg.errors, agg.tokens_in,
                          agg.cached_tokens, agg.unusable_costs, agg.negative_costs)
        self._add_minutes(baseline.minutes, baseline.hours, baseline.agent_hours)
        self._add_usage(baseline.usage)
        for group in baseline.window:
            self.window.add_group(group.second, group.agent_id, group.cost, group.priced, group.calls,
                                  group.errors, group.latencies)
            self.liveness.group(group.second, group.agent_id, group.calls)
        for p in baseline.providers:  # their costs are the agents' and the day's business
            self.provider_window.add(p.second, p.provider, p.calls, p.errors, p.latencies)
            self.liveness.provider_group(p.second, p.provider)

    def complete(self, part: DayBaseline) -> None:
        """The day's sums arrive after the window. Rows ingested meanwhile came after the same
        snapshot, so both add up without overlap."""
        if not self.day_pending:
            return
        self.day_pending = False
        self._rows_valid = False
        self._add_minutes(part.minutes, part.hours, part.agent_hours)
        if part.day == self.day:
            self._add_usage(part.usage)
            for agg in part.days:
                self._add_day(agg.agent_id, agg.cost, agg.priced_calls, agg.calls, agg.errors, agg.tokens_in,
                              agg.cached_tokens, agg.unusable_costs, agg.negative_costs)
            if part.month == self.month:
                self.month_before_today += part.month_before_today
        elif part.month == self.month:  # the scanned day ended while it was read: it joins the month
            self.month_before_today += part.month_before_today + sum(
                (agg.cost for agg in part.days if agg.cost is not None), Decimal(0))

    def _add_minutes(self, minutes: Iterable[MinuteAggregate], hours: Iterable[tuple[int, Decimal]],
                     agent_hours: Iterable[tuple[str, int, Decimal]]) -> None:
        for minute in minutes:
            self.hour.add(minute.minute, minute.calls, minute.errors)
            self.per_minute.add(minute.minute, minute.cost)
            self.trends.add(minute.minute, minute.agent_id, minute.cost)
        for hour, cost in hours:
            self.per_hour.add(hour, cost)
        for agent, hour, cost in agent_hours:
            self.agent_hours.add(hour, agent, cost)

    def note_read_quality(self, quality: ReadQuality) -> None:
        """What the row reader noticed about the rows (late, future-dated, missed until a resync)."""
        self.read_quality = quality

    def load_history(self, history: SpendHistory) -> None:
        """The agents' trailing week, read once a day: their usual day is computed here, not per refresh."""
        self.history_day = history.day
        self.history_error = None
        self.day_norms = day_norms(history, self.thresholds)

    def _add_usage(self, usage: Iterable[UsageAggregate]) -> None:
        for u in usage:
            tokens = (u.tokens_in, u.tokens_out, u.cached_tokens)
            flat = (u.flat_tokens_in, u.flat_tokens_out, u.flat_cached_tokens)
            for table, key in ((self.models, u.model), (self.providers, u.provider)):
                totals = table.get(key)
                if totals is None:
                    totals = table[key] = UsageTotals()
                totals.add(u.cost, u.priced_calls, u.calls, u.errors, tokens, flat, u.unusable_costs)

    def _add_day(self, agent: str, cost: Decimal | None, priced: int, calls: int, errors: int, tokens_in: int,
                 cached: int, unusable: int = 0, negative: int = 0) -> None:
        """Add to an agent's day and to the fleet's, so the header never sums 10,000 agents."""
        found = self.days.get(agent)
        if found is None:
            found = self.days[agent] = UsageTotals()
        tokens = (tokens_in, 0, cached)
        found.add(cost, priced, calls, errors, tokens, NO_TOKENS, unusable, negative)
        self.today.add(cost, priced, calls, errors, tokens, NO_TOKENS, unusable, negative)
        if unusable or negative:
            self.cost_flagged.add(agent)

    def _roll_to(self, day: str) -> None:
        """A new UTC day: today's spend joins the month (or a new month starts)."""
        if day[:7] == self.month:
            self.month_before_today += self.today.cost
        else:
            self.month = day[:7]
            self.month_before_today = Decimal(0)
        self.days = {}
        self.today = UsageTotals()
        self.cost_flagged = set()
        self.models, self.providers = {}, {}
        self.day = day
        self.before_month = 0  # the line says what arrived today
        self._rows_valid = False

    def ingest(self, rows: Iterable[CallRecord]) -> None:
        days: dict[int, str] = {}  # formatting a date per row was a tenth of ingest
        call = self.liveness.call
        for row in rows:
            stamp = row.created_at.timestamp()
            call(row, stamp)
            second = math.floor(stamp)
            day = days.get(second // 86_400)
            if day is None:
                day = days[second // 86_400] = day_of(row.created_at)
            if day[:7] < self.month:
                self.before_month += 1  # in no window, day or month shown: counted, and said
                continue
            error = row.status == "error"
            cost = row.cost_usd
            # NaN (the reader's mark for an unusable cost), infinite or out of range: recorded but not a
            # figure to add up. Left out of every sum, counted as neither priced nor flat-rate, flagged.
            unusable = cost is not None and not in_range(cost)
            if unusable:
                cost = None
            negative = cost is not None and cost < 0
            latency = row.latency_ms
            if latency is not None and not 0 <= latency <= MAX_LATENCY_MS:
                latency = None  # negative, or past what the windows hold (a bigint column): unknown
            self._changed.add(row.agent_id)
            if day == self.day:
                self._add_day(row.agent_id, cost, cost is not None, 1, error, row.tokens_in or 0,
                              row.cached_tokens or 0, unusable, negative)
                tokens = (row.tokens_in or 0, row.tokens_out or 0, row.cached_tokens or 0)
                flat = tokens if cost is None and not unusable else NO_TOKENS
                for table, key in ((self.models, row.model), (self.providers, row.provider)):
                    totals = table.get(key)
                    if totals is None:
                        totals = table[key] = UsageTotals()
                    totals.add(cost, cost is not None, 1, error, tokens, flat, unusable)
            elif day < self.day and day[:7] == self.month and cost is not None:
                self.month_before_today += cost
            # A row dated after the engine's day (only ever within the clock skew, at midnight) is in
            # the windows but not in a day the clock has not reached: the day-change resync counts it.
            self.window.add(second, row.agent_id, cost, error, latency)
            self.provider_window.add(second, row.provider, 1, error,
                                     () if latency is None else (latency,))
            self.hour.add(second // 60, 1, int(error))
            self.live_traces.add(row, second)
            if cost is not None:
                self.per_minute.add(second // 60, cost)
                self.per_hour.add(second // 3600, cost)
                self.trends.add(second // 60, row.agent_id, cost)
                self.agent_hours.add(second // 3600, row.agent_id, cost)

    def use_catalog(self, catalog: Catalog | None) -> None:
        self.catalog = catalog

    def note_counters(self, counters: GatewayCounters) -> None:
        self.counters = counters

    def note_fallback(self, state: FallbackState | None) -> bool:
        changed = state != self.fallback
        self.fallback = state
        return changed

    def note_history_failed(self, error: str) -> None:
        self.history_error = error

    def note_audit(self, pending: int, error: str | None) -> bool:
        changed = (pending, error) != (self.audit_pending, self.audit_error)
        self.audit_pending, self.audit_error = pending, error
        return changed

    def note_audit_write(self, added_pending: int, spool_error: str | None) -> bool:
        if not added_pending and spool_error == self.audit_spool_error:
            return False
        self.audit_pending += added_pending
        self.audit_spool_error = spool_error
        return True

    def sort_by(self, key: SortKey, reverse: bool = False) -> None:
        self.sort, self.sort_reverse = key, reverse

    def acknowledge(self, keys: Iterable[str]) -> None:
        self.alerts.acknowledge(keys)

    def note_switch_set(self, key: str, at: datetime) -> None:
        """costtop's writer set this kill switch (Outcome DONE) at `at`: the kill check counts from then."""
        self.liveness.set_by_costtop(key, at.timestamp())

    # -- output ------------------------------------------------------------------------------------

    def snapshot(self, now: datetime, redis: RedisState | None, sources: Sequence[SourceStatus] = ()) -> Snapshot:
        today = day_of(now)
        if today > self.day:
            self._roll_to(today)
        now_s = math.floor(now.timestamp())
        self.window.advance(now_s)
        self.hour.advance(now_s // 60)
        self.trends.advance(now_s // 60)
        self.agent_hours.advance(now_s // 3600)
        window = self.window.totals
        has_cost = "cost_usd" in self.columns
        known = not self.day_pending  # the day's sums are in
        th = self.thresholds

        switches = redis.switches if redis is not None else ()
        now_epoch = now.timestamp()
        liveness = self.liveness
        liveness.switches(redis.switches if redis is not None else None, now_epoch)
        liveness.counters(self.counters, now_epoch)
        row_age, silence_alert = liveness.silence(now_epoch)
        silent = silence_alert is not None
        by_key: dict[tuple[str, str, str], SwitchRecord] = {(s.kind, s.scope, s.target): s for s in switches}
        global_kill = by_key.get((SwitchKind.KILL, "global", "*"))
        budgets = redis.budgets if redis is not None else {}

        switch_targets = {s.target for s in switches if s.scope == "agent"}
        # Rows are rebuilt only for agents whose figures changed; with 10,000 agents most did not.
        day_left, month_left = period_left(now)
        # Forecasts depend on the time left in the day: every row is redone once a minute for them.
        context = (redis, has_cost, th, known, int(day_left // 60), self.sort, self.sort_reverse)
        changed = self._changed | self.window.take_changed()
        self._changed = set()
        rows, keyed = self._agent_rows, self._sort_keys
        if context != self._row_context or not self._rows_valid:
            self._row_context = context
            self._rows_valid = True
            rows = self._agent_rows = {}
            keyed.clear()
            self._order, self._agents = [], ()
            changed = set(self.days) | set(window) | set(budgets) | switch_targets
        empty = UsageTotals()
        trend_slots = self.trends.slots(now_s // 60) if has_cost and known else ()
        if now_s // 60 != self._trend_minute:
            self._trend_minute, self._trend_prefix = now_s // 60, {}
        added: list[str] = []
        removed = False
        for name in changed:
            if not (name in self.days or name in window or name in budgets or name in switch_targets):
                if rows.pop(name, None) is not None:  # nothing left to show for it
                    del keyed[name]
                    removed = True
                continue
            if name not in rows:
                added.append(name)
            totals = self.days.get(name, empty)
            in_window = window.get(name)
            usd = in_window.cost if in_window is not None else Decimal(0)
            spend = totals.cost if has_cost and known else None
            per_minute = usd / FIVE if has_cost else None
            kill = by_key.get((SwitchKind.KILL, "agent", name))
            throttle = by_key.get((SwitchKind.THROTTLE, "agent", name))
            if redis is None:
                state, switch = AgentState.UNKNOWN, None
            elif kill or global_kill:
                state, switch = AgentState.KILLED, kill or global_kill
            elif throttle:
                state, switch = AgentState.THROTTLED, throttle
            else:
                state, switch = AgentState.OK, None
            rows[name] = AgentRow(
                agent_id=name,
                spend_today=spend,
                window_usd=usd if has_cost else None,
                velocity_per_min=per_minute,
                velocity_level=velocity_level(usd if has_cost else None, th),
                budget=budget_view(budgets.get(name), spend, th.budget_warning, redis is not None, per_minute,
                                   day_left),
                calls_today=totals.calls if known else None,
                errors_today=totals.errors if known else None,
                flat_calls_today=(totals.flat if has_cost else 0) if known else None,
                p95_ms=self.window.p95(name),
                state=state,
                switch=switch,
                projected_today=projected(spend, per_minute, day_left),
                trend=self._trend(name, trend_slots) if trend_slots else (),
                calls_5m=in_window.calls if in_window is not None else 0,
                errors_5m=in_window.errors if in_window is not None else 0,
                last_call_at=liveness.agents.get(name),
            )
            keyed[name] = sort_key(self.sort, rows[name])
        if changed:
            # Last frame's order is still nearly sorted, and Timsort takes advantage of its runs.
            order = [name for name in self._order if name in rows] if removed else self._order
            self._order = sorted(order + added, key=keyed.__getitem__)
            names = reversed(self._order) if self.sort_reverse else self._order
            self._agents = tuple(map(rows.__getitem__, names))
        agents = self._agents
        window_total = self.window.overall.cost
        window_calls = self.window.overall.calls

        spend_today = self.today.cost if has_cost and known else None
        spend_month = spend_today + self.month_before_today if spend_today is not None else None
        hour_calls, hour_errors = self.hour.calls, self.hour.errors
        tokens_in, cached = self.today.tokens_in, self.today.cached
        velocity = window_total / FIVE if has_cost else None
        header = HeaderStats(
            spend_today=spend_today,
            spend_month=spend_month,
            velocity_per_min=velocity,
            velocity_per_hour=velocity * 60 if velocity is not None else None,
            velocity_level=velocity_level(window_total if has_cost else None, th),
            day_budget=budget_view(redis.global_day_budget if redis else None, spend_today,
                                   th.budget_warning, redis is not None, velocity, day_left),
            month_budget=budget_view(redis.global_month_budget if redis else None, spend_month,
                                     th.budget_warning, redis is not None, velocity, month_left),
            projected_today=projected(spend_today, velocity, day_left),
            projected_month=projected(spend_month, velocity, month_left),
            per_minute=self.per_minute.values(now_s) if known and has_cost else (),
            per_hour=self.per_hour.values(now_s) if known and has_cost else (),
            active_agents=len(window),  # an agent's window totals go when its last call leaves
            known_agents=len(self._agent_rows),
            calls_per_min=Decimal(window_calls) / FIVE,
            error_rate_1h=(hour_errors / hour_calls) if known and hour_calls and "status" in self.columns else None,
            cache_hit_rate=(cached / tokens_in) if known and tokens_in and "cached_tokens" in self.columns else None,
            p95_ms=self.window.global_p95(),
            totals_pending=not known,
            newest_row_age=row_age,
            rows_silent=silent,
        )
        views = tuple(
            SourceView(s.name, s.connected, (now_epoch - s.last_ok) if s.last_ok is not None else None, s.error)
            for s in sources
        )
        kills = {(s.scope, s.target): s for s in switches if s.kind is SwitchKind.KILL}
        unknown, ok = (AgentState.UNKNOWN, None), (AgentState.OK, None)

        def switched(scope: str, name: str | None) -> tuple[AgentState, SwitchRecord | None]:
            if redis is None:
                return unknown
            kill = kills.get((scope, name)) or global_kill
            return (AgentState.KILLED, kill) if kill else ok

        providers = self._provider_rows(now_s, switches, switched, known, has_cost, silent)
        reconciliation = self._reconciliation() if known and has_cost else None
        self.live_traces.advance(now_s)
        active = evaluate(agents, providers, header, reconciliation, th, self.live_traces.patterns(now_s))
        if known and has_cost:  # no day's sums, no cost column: no history, so nothing is unusual
            if self.history_day == self.day:
                spent = {a: self.days[a].cost for a in self.day_norms if a in self.days}
                active += day_anomalies(self.day_norms, spent, th)
            before, this_hour = self.agent_hours.slots(now_s // 3600)
            active += hour_anomalies(before, this_hour, th)
        checks = liveness.checks()
        active += [kill_alert(c.key, c.scope, c.target, c.since, c.violations) for c in checks if c.violations]
        if silence_alert is not None:
            active.append(silence_alert)
        fallback = self._fallback(now)
        if fallback is not None and fallback.overdue:
            active.append(fallback_alert(fallback))
        alerts, new_critical = self.alerts.update(active, now)
        return Snapshot(
            at=now, header=header, agents=agents, switches=tuple(switches), sources=views,
            columns=self.columns, global_kill=global_kill, switches_known=redis is not None,
            providers=providers, sort=self.sort, sort_reverse=self.sort_reverse, reconciliation=reconciliation,
            models=self._model_rows(switches, switched, known, has_cost),
            alerts=alerts, new_critical=new_critical,
            anomaly_note=f"Unusual days not judged: {self.history_error}" if self.history_error else None,
            audit_pending=self.audit_pending, audit_error=self.audit_error,
            audit_spool_error=self.audit_spool_error,
            data_quality=self.data_quality(now), fallback=fallback,
            kill_checks=checks, calls_seen_from=liveness.seen_from,
        )

    def _fallback(self, now: datetime) -> FallbackView | None:
        """The fallback file's figures at `now`: its oldest line's age, and whether that is past the
        drain limit. An unreadable file is unknown, and unknown is never overdue."""
        state = self.fallback
        if state is None:
            return None
        age = None if state.oldest is None else max(0.0, (now - state.oldest).total_seconds())
        return FallbackView(lines=state.lines, malformed=state.malformed, oldest_age_seconds=age,
                            overdue=age is not None and age > self.thresholds.fallback_drain_seconds,
                            caught_up=state.caught_up, error=state.error)

    def data_quality(self, now: datetime) -> tuple[str, ...]:
        """One line per kind of bad data, said rather than hidden: rows off the clock or too late
        (what the reader noticed), then today's costs that could not be counted or make no sense,
        naming the agents (only those flagged: no scan of 10,000 agents per frame)."""
        flagged = {a: (self.days[a].unusable, self.days[a].negative) for a in self.cost_flagged if a in self.days}
        return data_quality_lines(self.read_quality, self.before_month, now, cost_quality(flagged))

    def _trend(self, name: str, slots: list[dict[str, Decimal]]) -> tuple[Decimal, ...]:
        """The minutes before this one do not change within it: kept, and the current one added."""
        prefix = self._trend_prefix.get(name)
        if prefix is None:
            prefix = self._trend_prefix[name] = tuple([slot.get(name, ZERO) for slot in slots[:-1]])
        return (*prefix, slots[-1].get(name, ZERO))

    def _price_of(self, model: str | None) -> tuple[str, Price] | None:
        """The catalog's entry for a model, looked up once per model name and catalog."""
        if self._prices[0] is not self.catalog:
            self._prices = (self.catalog, {})
        cache = self._prices[1]
        if model not in cache:
            cache[model] = self.catalog.find(model) if self.catalog is not None else None
        return cache[model]

    def _reconciliation(self) -> Reconciliation | None:
        """Computed when counters arrive, against the rows of that moment: comparing old counters with
        newer rows would show a drift that is only the time between them."""
        counters = self.counters
        if counters is None or counters.day != self.day:
            return None
        if self._reconciled[0] is not counters:
            spend = {agent: totals.cost for agent, totals in self.days.items()}
            self._reconciled = (counters, reconcile(counters, spend, self.today.calls))
        return self._reconciled[1]

    def _provider_rows(self, now_s: int, switches: Sequence[SwitchRecord], switched: Switched, known: bool,
                       has_cost: bool, silent: bool = False) -> tuple[ProviderRow, ...]:
        """Seed rules: down above 50 % errors in 2 minutes; degraded above 10 % errors in 5 minutes
        or a p95 above 10 s; idle without a call in 5 minutes. While the gateway is silent (no rows
        after traffic) no provider is judged: its last rows are old news, and healthy would be a guess."""
        window = self.provider_window
        window.advance(now_s)
        th = self.thresholds
        names = set(self.providers) | set(window.totals)
        names |= {s.target for s in switches if s.scope == "provider"}
        rows = []
        for name in names:
            day = self.providers.get(name)
            calls_5m, errors_5m = window.totals.get(name, (0, 0))
            calls_2m, errors_2m = window.recent(name, now_s, PROVIDER_DOWN_SECONDS)
            rate_5m = errors_5m / calls_5m if calls_5m else None
            rate_2m = errors_2m / calls_2m if calls_2m else None
            p95 = window.p95(name)
            if silent:
                health = Health.NO_DATA
            elif not calls_5m:
                health = Health.IDLE
            elif rate_2m is not None and rate_2m > th.provider_down_errors_2m:
                health = Health.DOWN
            elif (rate_5m or 0) > th.provider_degraded_errors_5m or (p95 or 0) > th.provider_slow_p95_ms:
                health = Health.DEGRADED
            else:
                health = Health.HEALTHY
            state, switch = switched("provider", name)
            rows.append(ProviderRow(
                provider=name,
                spend_today=(day.cost if day else Decimal(0)) if known and has_cost else None,
                calls_today=(day.calls if day else 0) if known else None,
                calls_2m=calls_2m, error_rate_2m=rate_2m, calls_5m=calls_5m, error_rate_5m=rate_5m,
                p95_ms=p95, health=health, state=state, switch=switch,
            ))
        rows.sort(key=lambda r: (-(r.spend_today or 0), -r.calls_5m, r.provider or ""))
        return tuple(rows)

    def _model_rows(self, switches: Sequence[SwitchRecord], switched: Switched, known: bool,
                    has_cost: bool) -> tuple[ModelRow, ...]:
        names = set(self.models) | {s.target for s in switches if s.scope == "model"}
        rows = []
        for name in names:
            day = self.models.get(name) or UsageTotals()
            state, switch = switched("model", name)
            found = self._price_of(name)
            shadow = shadow_cost(found[1], day.flat_in, day.flat_out, day.flat_cached) if found else None
            rows.append(ModelRow(
                model=name,
                spend_today=day.cost if known and has_cost else None,
                calls_today=day.calls if known else None,
                priced_calls=day.priced if known else None,
                tokens_in=day.tokens_in if known else None,
                tokens_out=day.tokens_out if known else None,
                cached_tokens=day.cached if known else None,
                flat_calls=day.flat if known and has_cost else None,
                flat_tokens=(day.flat_in, day.flat_out, day.flat_cached),
                state=state, switch=switch,
                shadow_cost=shadow if known else None, priced_as=found[0] if found else None,
            ))
        rows.sort(key=lambda r: (-(r.spend_today or 0), -(r.calls_today or 0), r.model or ""))
        return tuple(rows)
