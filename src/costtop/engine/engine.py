"""The engine: records in, an immutable Snapshot out. Pure and synchronous; time is passed in."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from costtop.config import Thresholds
from costtop.engine.budgets import budget_view
from costtop.engine.snapshot import (
    AgentRow,
    AgentState,
    HeaderStats,
    Level,
    Snapshot,
    SourceView,
)
from costtop.engine.windows import HOUR_MINUTES, VELOCITY_SECONDS, MinuteCounts, SlidingWindow
from costtop.sources.records import Baseline, CallRecord, RedisState, SourceStatus, SwitchKind, SwitchRecord

FIVE = Decimal(VELOCITY_SECONDS // 60)


@dataclass(slots=True)
class DayTotals:
    cost: Decimal = Decimal(0)
    priced: int = 0
    calls: int = 0
    errors: int = 0
    tokens_in: int = 0
    cached_tokens: int = 0


def day_of(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d")


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
        self.days: dict[str, DayTotals] = {}
        self.today = DayTotals()  # every agent's day together, kept running
        self.month_before_today = Decimal(0)
        self.window = SlidingWindow(VELOCITY_SECONDS)
        self.hour = MinuteCounts(HOUR_MINUTES)
        self._agent_rows: dict[str, AgentRow] = {}
        self._rows_valid = False
        self._changed: set[str] = set()
        self._row_context: object = None
        self._sort_keys: dict[str, tuple[object, ...]] = {}
        self._order: list[str] = []
        self._agents: tuple[AgentRow, ...] = ()

    # -- input -------------------------------------------------------------------------------------

    def load(self, baseline: Baseline, columns: Iterable[str] | None = None) -> None:
        """Start over from a baseline (at start and after a reconnect), so nothing is counted twice."""
        if columns is not None:
            self.columns = frozenset(columns)
        self.days = {}
        self.today = DayTotals()
        self.window = SlidingWindow(VELOCITY_SECONDS)
        self.hour = MinuteCounts(HOUR_MINUTES)
        self._rows_valid = False
        self.month = baseline.month
        self.month_before_today = baseline.month_before_today or Decimal(0)
        self.day = baseline.day
        for agg in baseline.days:
            self._add_day(agg.agent_id, agg.cost, agg.priced_calls, agg.calls, agg.errors, agg.tokens_in,
                          agg.cached_tokens)
        for minute in baseline.minutes:
            self.hour.add(minute.minute, minute.calls, minute.errors)
        for group in baseline.window:
            self.window.add_group(group.second, group.agent_id, group.cost, group.priced, group.calls,
                                  group.errors, group.latencies)

    def _add_day(self, agent: str, cost: Decimal | None, priced: int, calls: int, errors: int, tokens_in: int,
                 cached: int) -> None:
        """Add to an agent's day and to the fleet's, so the header never sums 10,000 agents."""
        found = self.days.get(agent)
        if found is None:
            found = self.days[agent] = DayTotals()
        for totals in (found, self.today):
            if cost is not None:
                totals.cost += cost
            totals.priced += priced
            totals.calls += calls
            totals.errors += errors
            totals.tokens_in += tokens_in
            totals.cached_tokens += cached

    def _roll_to(self, day: str) -> None:
        """A new UTC day: today's spend joins the month (or a new month starts)."""
        if day[:7] == self.month:
            self.month_before_today += self.today.cost
        else:
            self.month = day[:7]
            self.month_before_today = Decimal(0)
        self.days = {}
        self.today = DayTotals()
        self.day = day
        self._rows_valid = False

    def ingest(self, rows: Iterable[CallRecord]) -> None:
        days: dict[int, str] = {}  # formatting a date per row was a tenth of ingest
        for row in rows:
            second = math.floor(row.created_at.timestamp())
            day = days.get(second // 86_400)
            if day is None:
                day = days[second // 86_400] = day_of(row.created_at)
            if day > self.day:
                self._roll_to(day)
            error = row.status == "error"
            self._changed.add(row.agent_id)
            if day == self.day:
                self._add_day(row.agent_id, row.cost_usd, row.cost_usd is not None, 1, error, row.tokens_in or 0,
                              row.cached_tokens or 0)
            elif day[:7] == self.month and row.cost_usd is not None:
                self.month_before_today += row.cost_usd
            self.window.add(second, row.agent_id, row.cost_usd, error, row.latency_ms)
            self.hour.add(second // 60, 1, int(error))

    # -- output ------------------------------------------------------------------------------------

    def snapshot(self, now: datetime, redis: RedisState | None, sources: Sequence[SourceStatus] = ()) -> Snapshot:
        today = day_of(now)
        if today > self.day:
            self._roll_to(today)
        now_s = math.floor(now.timestamp())
        self.window.advance(now_s)
        self.hour.advance(now_s // 60)
        window = self.window.totals
        has_cost = "cost_usd" in self.columns
        th = self.thresholds

        switches = redis.switches if redis is not None else ()
        by_key: dict[tuple[str, str, str], SwitchRecord] = {(s.kind, s.scope, s.target): s for s in switches}
        global_kill = by_key.get((SwitchKind.KILL, "global", "*"))
        budgets = redis.budgets if redis is not None else {}

        switch_targets = {s.target for s in switches if s.scope == "agent"}
        # Rows are rebuilt only for agents whose figures changed; with 10,000 agents most did not.
        context = (redis, has_cost, th)
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
        empty = DayTotals()
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
            spend = totals.cost if has_cost else None
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
                velocity_per_min=usd / FIVE if has_cost else None,
                velocity_level=velocity_level(usd if has_cost else None, th),
                budget=budget_view(budgets.get(name), spend, th.budget_warning, redis is not None),
                calls_today=totals.calls,
                errors_today=totals.errors,
                flat_calls_today=totals.calls - totals.priced if has_cost else 0,
                p95_ms=self.window.p95(name),
                state=state,
                switch=switch,
            )
            # Highest spend rate first. Floats sort ten times faster than Decimals; only figures equal
            # to 15 digits could swap places.
            keyed[name] = (-float(usd) if has_cost else 0.0, -float(spend or 0), name)
        if changed:
            # Last frame's order is still nearly sorted, and Timsort takes advantage of its runs.
            order = [name for name in self._order if name in rows] if removed else self._order
            self._order = sorted(order + added, key=keyed.__getitem__)
            self._agents = tuple(map(rows.__getitem__, self._order))
        agents = self._agents
        window_total = self.window.overall.cost
        window_calls = self.window.overall.calls

        spend_today = self.today.cost if has_cost else None
        spend_month = spend_today + self.month_before_today if spend_today is not None else None
        hour_calls, hour_errors = self.hour.calls, self.hour.errors
        tokens_in, cached = self.today.tokens_in, self.today.cached_tokens
        velocity = window_total / FIVE if has_cost else None
        header = HeaderStats(
            spend_today=spend_today,
            spend_month=spend_month,
            velocity_per_min=velocity,
            velocity_per_hour=velocity * 60 if velocity is not None else None,
            velocity_level=velocity_level(window_total if has_cost else None, th),
            day_budget=budget_view(redis.global_day_budget if redis else None, spend_today,
                                   th.budget_warning, redis is not None),
            month_budget=budget_view(redis.global_month_budget if redis else None, spend_month,
                                     th.budget_warning, redis is not None),
            active_agents=len(window),  # an agent's window totals go when its last call leaves
            known_agents=len(self._agent_rows),
            calls_per_min=Decimal(window_calls) / FIVE,
            error_rate_1h=(hour_errors / hour_calls) if hour_calls and "status" in self.columns else None,
            cache_hit_rate=(cached / tokens_in) if tokens_in and "cached_tokens" in self.columns else None,
            p95_ms=self.window.global_p95(),
        )
        now_epoch = now.timestamp()
        views = tuple(
            SourceView(s.name, s.connected, (now_epoch - s.last_ok) if s.last_ok is not None else None, s.error)
            for s in sources
        )
        return Snapshot(
            at=now, header=header, agents=agents, switches=tuple(switches), sources=views,
            columns=self.columns, global_kill=global_kill, switches_known=redis is not None,
        )
