"""The engine: typed records in, an immutable `Snapshot` out. Synchronous, with the time passed in, and
not pure: it keeps today's running totals, the sliding windows, the kill checks and the alert book from
one call to the next.

What changes its state, and nothing else does:
- the inputs: `load`, `complete`, `ingest`, `load_history`, and the named notes the session passes on
  (`use_catalog`, `note_counters`, `note_fallback`, `note_history_failed`, `note_audit`,
  `note_audit_write`, `note_read_quality`, `note_switch_set`) or the operator's choices (`sort_by`,
  `acknowledge`);
- the three steps `snapshot` starts with: `advance_clock` (a new UTC day rolls today into the month;
  the windows and series drop what slid out of them), `watch_gateway` (the kill checks follow the
  switches Redis holds, the gateway's counter readings are kept) and, last, `update_alert_book`.
Between those, `snapshot` builds: the agent rows (`agent_rows`, which keeps its own cache of unchanged
rows), the header, the model and provider rows (`usage`), the alerts and the data notes. Read the
public attributes, never write them: every change goes through a method.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from costtop.config import Thresholds
from costtop.engine.agent_rows import AgentRows
from costtop.engine.alerts import AgentAlerts, AlertBook, evaluate, fallback_alert
from costtop.engine.anomalies import DayNorm, day_norms, hour_anomalies
from costtop.engine.budgets import FIVE, budget_view, fleet_levels, level_of, projected
from costtop.engine.data_quality import cost_quality, data_quality_lines
from costtop.engine.live_traces import LiveTraces
from costtop.engine.liveness import Liveness
from costtop.engine.reconcile import reconcile
from costtop.engine.redis_view import RedisView
from costtop.engine.series import AgentSeries, CostSeries
from costtop.engine.snapshot import (
    Alert,
    FallbackView,
    HeaderStats,
    KillCheck,
    ProviderRow,
    Reconciliation,
    Severity,
    Snapshot,
    SortKey,
    SourceView,
)
from costtop.engine.usage import NO_TOKENS, Prices, Usage, UsageTotals, model_rows, provider_rows
from costtop.engine.windows import HOUR_MINUTES, VELOCITY_SECONDS, KeyedSeconds, MinuteCounts, SlidingWindow
from costtop.pricing.catalog import Catalog
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
    ReplicaLag,
    SourceStatus,
    SpendHistory,
)

TREND_MINUTES = 10  # the agent table's trend column
NO_NORMS: dict[str, DayNorm] = {}  # no history for this day: nothing is unusual (one object, so it is kept)


def day_of(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d")


def period_left(now: datetime) -> tuple[float, float]:
    """Seconds left in the UTC day and in the UTC month."""
    utc = now.astimezone(UTC)
    day_end = datetime(utc.year, utc.month, utc.day, tzinfo=UTC) + timedelta(days=1)
    month_end = datetime(utc.year + utc.month // 12, utc.month % 12 + 1, 1, tzinfo=UTC)
    return (day_end - utc).total_seconds(), (month_end - utc).total_seconds()


def kill_alert(key: str, scope: str, target: str, since: datetime, violations: int) -> Alert:
    """Calls that started after a kill switch (plus the grace) and were not refused: the gateway is
    not checking it, and the spend the kill was meant to stop goes on."""
    subject = "fleet" if scope == "global" else target
    return Alert(f"unhonoured:{key}", "kill not honoured", Severity.CRITICAL, subject,
                 f"{violations:,} call{'s' if violations != 1 else ''} since {since.astimezone(UTC):%H:%M:%S} UTC "
                 f"despite {key}: the gateway is not checking it", agent=target if scope == "agent" else None)


class Engine:
    """Today's state of the fleet, fed records, asked for snapshots. See the module's docstring for
    which methods change what."""

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
        self.usage = Usage()  # today per model and per provider
        self.provider_window = KeyedSeconds(VELOCITY_SECONDS)
        self.live_traces = LiveTraces(self.thresholds.loop_calls, self.thresholds.context_tokens)
        self.read_quality = ReadQuality()  # what the row reader noticed about the rows, as last told
        self.before_month = 0  # rows dated before this month that arrived live: in no figure shown
        self.liveness = Liveness(self.thresholds)  # last calls, kills honoured, rows still coming
        self._rows = AgentRows()
        self._alerts = AlertBook()
        self._agent_alerts = AgentAlerts()  # each agent's own alerts, redone for the rows that changed
        self._view: RedisView | None = None  # the last Redis read's lookups
        self._prices = Prices()
        self._counters: GatewayCounters | None = None  # the gateway's Redis tallies, read now and then
        self._fallback_state: FallbackState | None = None  # the gateway's fallback file, as last read
        self._history_error: str | None = None  # the last failure to read that week, until a read works
        self._audit_pending = 0  # audit rows waiting in the local spool, as the session last counted them
        self._audit_error: str | None = None  # why Postgres did not take them, at the last try
        self._audit_spool_error: str | None = None  # the local spool could not be written, at the last write
        self._reconciled: tuple[GatewayCounters | None, Reconciliation | None] = (None, None)

    # -- what the inputs left, read only -----------------------------------------------------------

    @property
    def catalog(self) -> Catalog | None:
        return self._prices.catalog

    @property
    def counters(self) -> GatewayCounters | None:
        return self._counters

    @property
    def fallback(self) -> FallbackState | None:
        return self._fallback_state

    @property
    def history_error(self) -> str | None:
        return self._history_error

    @property
    def audit_pending(self) -> int:
        return self._audit_pending

    @property
    def audit_error(self) -> str | None:
        return self._audit_error

    @property
    def audit_spool_error(self) -> str | None:
        return self._audit_spool_error

    @property
    def sort(self) -> SortKey:
        return self._rows.sort

    @property
    def sort_reverse(self) -> bool:
        return self._rows.reverse

    # -- input: the rows and their sums ------------------------------------------------------------

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
        self.usage = Usage()
        self.window = SlidingWindow(VELOCITY_SECONDS)
        self.provider_window = KeyedSeconds(VELOCITY_SECONDS)
        self.hour = MinuteCounts(HOUR_MINUTES)
        self.per_minute = CostSeries(60, HOUR_MINUTES)
        self.per_hour = CostSeries(3600, 24)
        self.trends = AgentSeries(TREND_MINUTES)
        self.agent_hours = AgentSeries(2)
        self._rows.invalidate()
        self.month = baseline.month
        self.month_before_today = baseline.month_before_today or Decimal(0)
        self.day = baseline.day
        self.day_pending = baseline.pending
        for agg in baseline.days:
            self._add_day(agg.agent_id, agg.cost, agg.priced_calls, agg.calls, agg.errors, agg.tokens_in,
                          agg.cached_tokens, agg.unusable_costs, agg.negative_costs)
        self._add_minutes(baseline.minutes, baseline.hours, baseline.agent_hours)
        self.usage.add_sums(baseline.usage)
        self.window.add_groups((g.second, g.agent_id, g.cost, g.priced, g.calls, g.errors, g.latencies)
                               for g in baseline.window)
        for group in baseline.window:
            self.liveness.group(group.second, group.agent_id, group.calls)
        # Their costs are the agents' and the day's business.
        self.provider_window.add_groups((p.second, p.provider, p.calls, p.errors, p.latencies)
                                        for p in baseline.providers)
        for p in baseline.providers:
            self.liveness.provider_group(p.second, p.provider)

    def complete(self, part: DayBaseline) -> None:
        """The day's sums arrive after the window. Rows ingested meanwhile came after the same
        snapshot, so both add up without overlap."""
        if not self.day_pending:
            return
        self.day_pending = False
        self._rows.invalidate()
        self._add_minutes(part.minutes, part.hours, part.agent_hours)
        if part.day == self.day:
            self.usage.add_sums(part.usage)
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

    def ingest(self, rows: Iterable[CallRecord]) -> None:
        """Rows read live: into today's totals (when dated today), the month (an earlier day of it), and
        the windows and series by their own time stamps."""
        days: dict[int, str] = {}  # formatting a date per row was a tenth of ingest
        call = self.liveness.call
        changed = self._rows.changed
        add_usage = self.usage.add
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
            changed.add(row.agent_id)
            if day == self.day:
                self._add_day(row.agent_id, cost, cost is not None, 1, error, row.tokens_in or 0,
                              row.cached_tokens or 0, unusable, negative)
                tokens = (row.tokens_in or 0, row.tokens_out or 0, row.cached_tokens or 0)
                add_usage(row.model, row.provider, cost, cost is not None, 1, error, tokens,
                          tokens if cost is None and not unusable else NO_TOKENS, unusable)
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

    def load_history(self, history: SpendHistory) -> None:
        """The agents' trailing week, read once a day: their usual day is computed here, not per refresh."""
        self.history_day = history.day
        self._history_error = None
        self.day_norms = day_norms(history, self.thresholds)

    # -- input: what the session read besides the rows, and what the operator chose ----------------

    def use_catalog(self, catalog: Catalog | None) -> None:
        """The list prices flat-rate calls' shadow cost is priced at (None: no shadow cost)."""
        self._prices.use(catalog)

    def note_counters(self, counters: GatewayCounters) -> None:
        """The gateway's own tallies, just read: the table is reconciled against them, and their call
        count tells a silent gateway from an idle one."""
        self._counters = counters

    def note_fallback(self, state: FallbackState | None) -> bool:
        """The gateway's fallback file as just read (None: none is watched). Whether it changed."""
        if state == self._fallback_state:
            return False
        self._fallback_state = state
        return True

    def note_history_failed(self, error: str) -> None:
        """The trailing week could not be read: unusual days are not judged, and the snapshot says why
        (until `load_history` succeeds)."""
        self._history_error = error

    def note_audit(self, pending: int, error: str | None) -> bool:
        """The audit spool's drain: rows still waiting, and why Postgres did not take them (None: it
        did). Whether either changed."""
        if (pending, error) == (self._audit_pending, self._audit_error):
            return False
        self._audit_pending, self._audit_error = pending, error
        return True

    def note_audit_write(self, added_pending: int, spool_error: str | None) -> bool:
        """A switch write's audit rows: how many it left in the local spool (Postgres did not take
        them), and the spool's own error (None: it could be written). Whether anything changed."""
        if not added_pending and spool_error == self._audit_spool_error:
            return False
        self._audit_pending += added_pending
        self._audit_spool_error = spool_error
        return True

    def note_read_quality(self, quality: ReadQuality) -> None:
        """What the row reader noticed about the rows (late, future-dated, missed until a resync)."""
        self.read_quality = quality

    def note_switch_set(self, key: str, at: datetime) -> None:
        """costtop's writer set this kill switch (Outcome DONE) at `at`: the kill check counts from then."""
        self.liveness.set_by_costtop(key, at.timestamp())

    def sort_by(self, key: SortKey, reverse: bool = False) -> None:
        """The agent table's order from the next snapshot on."""
        self._rows.sort_by(key, reverse)

    def acknowledge(self, keys: Iterable[str]) -> None:
        """The operator has seen these alerts: they stay, marked, until they clear or get worse."""
        self._alerts.acknowledge(keys)

    # -- the steps that move state with the clock --------------------------------------------------

    def advance_clock(self, now: datetime) -> None:
        """Move to `now`: a new UTC day rolls today into the month (or starts a new month), and the
        windows and series drop what slid out of them."""
        today = day_of(now)
        if today > self.day:
            self._roll_day(today)
        now_s = math.floor(now.timestamp())
        self.window.advance(now_s)
        self.provider_window.advance(now_s)
        self.hour.advance(now_s // 60)
        self.per_minute.advance(now_s)
        self.per_hour.advance(now_s)
        self.trends.advance(now_s // 60)
        self.agent_hours.advance(now_s // 3600)
        self.live_traces.advance(now_s)

    def _roll_day(self, day: str) -> None:
        """A new UTC day: today's spend joins the month (or a new month starts)."""
        if day[:7] == self.month:
            self.month_before_today += self.today.cost
        else:
            self.month = day[:7]
            self.month_before_today = Decimal(0)
        self.days = {}
        self.today = UsageTotals()
        self.cost_flagged = set()
        self.usage = Usage()
        self.day = day
        self.before_month = 0  # the line says what arrived today
        self._rows.invalidate()

    def watch_gateway(self, redis: RedisState | None, now: datetime) -> None:
        """The kill checks follow the switches Redis holds now (None: unknown, nothing judged), and the
        gateway's counter is kept as read over time, for the silence check."""
        self.liveness.switches(redis.switches if redis is not None else None, now.timestamp())
        self.liveness.counters(self._counters, now.timestamp())

    def _view_of(self, redis: RedisState | None) -> RedisView:
        """The lookups over one Redis read, made once per read rather than per snapshot (50,000 switches
        are 50,000 entries to index)."""
        if self._view is None or self._view.redis is not redis:
            self._view = RedisView(redis)
        return self._view

    def update_alert_book(self, active: Iterable[Alert], now: datetime) -> tuple[tuple[Alert, ...], bool]:
        """The alerts holding now, `active` and the agents' own (`AgentAlerts`, of which the book looks
        only at those that changed since the last snapshot): each keeps the time it started and its
        acknowledgement. Returns them most severe and oldest first, and whether a critical one is new."""
        kept = self._agent_alerts
        return self._alerts.update(active, now, kept.by_key, kept.take_changed())

    # -- output ------------------------------------------------------------------------------------

    def snapshot(self, now: datetime, redis: RedisState | None, sources: Sequence[SourceStatus] = ()) -> Snapshot:
        """Advance to `now`, then build the picture from the state, then book its alerts."""
        self.advance_clock(now)
        self.watch_gateway(redis, now)
        now_s = math.floor(now.timestamp())
        view = self._view_of(redis)
        has_cost = "cost_usd" in self.columns
        known = not self.day_pending  # the day's sums are in
        row_age, silence_alert = self.liveness.silence(now.timestamp(), self.read_quality.replica)
        silent = silence_alert is not None
        day_left, month_left = period_left(now)
        # A row's forecast counts from the start of this minute, so a row kept from an earlier second of it
        # reads exactly as one built now (rows are rebuilt for the clock once a minute, not every second).
        minute_left = day_left + (now.timestamp() - now_s // 60 * 60)
        agents = self._rows.build(self.days, self.window, view, self.thresholds, has_cost, known, minute_left,
                                  self.trends, now_s // 60, self.liveness.agents)
        header = self._header(now_s, view, has_cost, known, day_left, month_left, row_age, silent)
        providers = provider_rows(self.usage, self.provider_window, now_s, view, self.thresholds, known,
                                  has_cost, silent)
        reconciliation = self._reconciliation() if known and has_cost else None
        checks = self.liveness.checks()
        fallback = self._fallback(now)
        active = self._active_alerts(providers, header, reconciliation, checks, silence_alert, fallback,
                                     now_s, known, has_cost)
        alerts, new_critical = self.update_alert_book(active, now)
        source_views = self._source_views(now, sources, self.read_quality.replica)
        return Snapshot(
            at=now, header=header, agents=agents, switches=view.switches, sources=source_views,
            columns=self.columns, global_kill=view.global_kill, switches_known=view.known,
            providers=providers, sort=self.sort, sort_reverse=self.sort_reverse, reconciliation=reconciliation,
            models=model_rows(self.usage, self._prices, view, known, has_cost),
            alerts=alerts, new_critical=new_critical,
            anomaly_note=f"Unusual days not judged: {self._history_error}" if self._history_error else None,
            audit_pending=self._audit_pending, audit_error=self._audit_error,
            audit_spool_error=self._audit_spool_error,
            data_quality=self.data_quality(now), fallback=fallback, rollup_note=self.read_quality.rollup,
            kill_checks=checks, calls_seen_from=self.liveness.seen_from,
        )

    def _header(self, now_s: int, redis: RedisView, has_cost: bool, known: bool, day_left: float,
                month_left: float, row_age: float | None, silent: bool) -> HeaderStats:
        """The fleet's figures: spend, burn, budgets and forecasts, traffic. All kept running, none summed
        over the agents here."""
        th = self.thresholds
        window_total = self.window.overall.cost
        spend_today = self.today.cost if has_cost and known else None
        spend_month = spend_today + self.month_before_today if spend_today is not None else None
        hour_calls, hour_errors = self.hour.calls, self.hour.errors
        tokens_in, cached = self.today.tokens_in, self.today.cached
        velocity = window_total / FIVE if has_cost else None
        day_budget = budget_view(redis.day_budget, spend_today, th.budget_warning, redis.known, velocity, day_left)
        fleet = fleet_levels(th, day_budget.limit)
        return HeaderStats(
            spend_today=spend_today,
            spend_month=spend_month,
            velocity_per_min=velocity,
            velocity_per_hour=velocity * 60 if velocity is not None else None,
            velocity_level=level_of(window_total if has_cost else None, fleet.warning, fleet.critical,
                                    fleet.emergency),
            fleet_levels=fleet,
            day_budget=day_budget,
            month_budget=budget_view(redis.month_budget, spend_month, th.budget_warning, redis.known, velocity,
                                     month_left),
            projected_today=projected(spend_today, velocity, day_left),
            projected_month=projected(spend_month, velocity, month_left),
            per_minute=self.per_minute.values(now_s) if known and has_cost else (),
            per_hour=self.per_hour.values(now_s) if known and has_cost else (),
            active_agents=len(self.window.totals),  # an agent's window totals go when its last call leaves
            known_agents=len(self._rows.rows),
            calls_per_min=Decimal(self.window.overall.calls) / FIVE,
            error_rate_1h=(hour_errors / hour_calls) if known and hour_calls and "status" in self.columns else None,
            cache_hit_rate=(cached / tokens_in) if known and tokens_in and "cached_tokens" in self.columns else None,
            p95_ms=self.window.global_p95(),
            totals_pending=not known,
            newest_row_age=row_age,
            rows_silent=silent,
        )

    @staticmethod
    def _source_views(now: datetime, sources: Sequence[SourceStatus],
                      replica: ReplicaLag | None = None) -> tuple[SourceView, ...]:
        """Each source's badge; Postgres's with the standby's lag when it is one (sources/replica.py)."""
        now_epoch = now.timestamp()
        return tuple(
            SourceView(s.name, s.connected, (now_epoch - s.last_ok) if s.last_ok is not None else None, s.error,
                       replica if s.name == "Postgres" else None)
            for s in sources
        )

    def _active_alerts(self, providers: Sequence[ProviderRow], header: HeaderStats,
                       reconciliation: Reconciliation | None, checks: Sequence[KillCheck],
                       silence_alert: Alert | None, fallback: FallbackView | None, now_s: int, known: bool,
                       has_cost: bool) -> list[Alert]:
        """Every alert that holds at this snapshot but the agents' own, before the book says since when."""
        th = self.thresholds
        # An agent's unusual day needs its day's spend (a row has none while the sums are pending) and
        # this day's norms.
        norms = self.day_norms if self.history_day == self.day else NO_NORMS
        # The agents' own alerts stay in `_agent_alerts`: the book reads the ones that changed from there.
        _, erroring = self._agent_alerts.update(self._rows.rows, self._rows.touched, th, norms, self.days)
        active = evaluate(((), erroring), providers, header, reconciliation, th, self.live_traces.patterns(now_s))
        if known and has_cost:  # no day's sums, no cost column: no history, so nothing is unusual
            before, this_hour = self.agent_hours.slots(now_s // 3600)
            active += hour_anomalies(before, this_hour, th)
        active += [kill_alert(c.key, c.scope, c.target, c.since, c.violations) for c in checks if c.violations]
        if silence_alert is not None:
            active.append(silence_alert)
        if fallback is not None and fallback.overdue:
            active.append(fallback_alert(fallback))
        return active

    def _fallback(self, now: datetime) -> FallbackView | None:
        """The fallback file's figures at `now`: its oldest line's age, and whether that is past the
        drain limit. An unreadable file is unknown, and unknown is never overdue."""
        state = self._fallback_state
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

    def _reconciliation(self) -> Reconciliation | None:
        """Computed when counters arrive, against the rows of that moment: comparing old counters with
        newer rows would show a drift that is only the time between them (kept until the next ones)."""
        counters = self._counters
        if counters is None or counters.day != self.day:
            return None
        if self._reconciled[0] is not counters:
            spend = {agent: totals.cost for agent, totals in self.days.items()}
            self._reconciled = (counters, reconcile(counters, spend, self.today.calls))
        return self._reconciled[1]
