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
        self.month_before_today = Decimal(0)
        self.window = SlidingWindow(VELOCITY_SECONDS)
        self.hour = MinuteCounts(HOUR_MINUTES)
        self._agent_rows: dict[str, AgentRow] = {}
        self._changed: set[str] = set()
        self._row_context: object = None
        self._sort_keys: dict[str, tuple[object, ...]] = {}
        self._order: list[str] = []
        self._order_rows: object = None

    # -- input -------------------------------------------------------------------------------------

    def load(self, baseline: Baseline, columns: Iterable[str] | None = None) -> None:
        """Start over from a baseline (at start and after a reconnect), so nothing is counted twice."""
        if columns is not None:
            self.columns = frozenset(columns)
        self.days = {}
        self.window = SlidingWindow(VELOCITY_SECONDS)
        self.hour = MinuteCounts(HOUR_MINUTES)
        self._agent_rows = {}
        self.month = baseline.month
        self.month_before_today = baseline.month_before_today or Decimal(0)
        self.day = baseline.day
        for agg in baseline.days:
            totals = self._totals(agg.agent_id)
            totals.cost += agg.cost or 0
            totals.priced += agg.priced_calls
            totals.calls += agg.calls
            totals.errors += agg.errors
            totals.tokens_in += agg.tokens_in
            totals.cached_tokens += agg.cached_tokens
        for minute in baseline.minutes:
            self.hour.add(minute.minute, minute.calls, minute.errors)
        for group in baseline.window:
            self.window.add_group(group.second, group.agent_id, group.cost, group.priced, group.calls,
                                  group.errors, group.latencies)

    def _totals(self, agent: str) -> DayTotals:
        found = self.days.get(agent)
        if found is None:
            found = self.days[agent] = DayTotals()
        return found

    def _roll_to(self, day: str) -> None:
        """A new UTC day: today's spend joins the month (or a new month starts)."""
        finished = sum((t.cost for t in self.days.values()), Decimal(0))
        if day[:7] == self.month:
            self.month_before_today += finished
        else:
            self.month = day[:7]
            self.month_before_today = Decimal(0)
        self.days = {}
        self.day = day
        self._agent_rows = {}

    def ingest(self, rows: Iterable[CallRecord]) -> None:
        for row in rows:
            day = day_of(row.created_at)
            if day > self.day:
                self._roll_to(day)
            error = row.status == "error"
            self._changed.add(row.agent_id)
            if day == self.day:
                totals = self._totals(row.agent_id)
                if row.cost_usd is not None:
                    totals.cost += row.cost_usd
                    totals.priced += 1
                totals.calls += 1
                totals.errors += error
                totals.tokens_in += row.tokens_in or 0
                totals.cached_tokens += row.cached_tokens or 0
            elif day[:7] == self.month and row.cost_usd is not None:
                self.month_before_today += row.cost_usd
            second = math.floor(row.created_at.timestamp())
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

        names = set(self.days) | set(window) | set(budgets)
        names |= {s.target for s in switches if s.scope == "agent"}
        # Rows are rebuilt only for agents whose figures changed; with 10,000 agents most did not.
        context = (redis, has_cost, th)
        if context != self._row_context:
            self._row_context = context
            self._agent_rows = {}
        changed = self._changed | self.window.take_changed()
        self._changed = set()
        for name in changed:
            self._agent_rows.pop(name, None)
        for name in [n for n in self._agent_rows if n not in names]:
            del self._agent_rows[name]
        empty = DayTotals()
        for name in names:
            if name in self._agent_rows:
                continue
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
            self._agent_rows[name] = AgentRow(
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
        window_total = self.window.overall.cost
        window_calls = self.window.overall.calls
        # Highest spend rate first; the key of an unchanged row is kept with it.
        if self._order_rows is not self._agent_rows or changed or len(self._order) != len(self._agent_rows):
            keyed = self._sort_keys
            if self._order_rows is not self._agent_rows:
                keyed.clear()  # every row was rebuilt
            for name in changed:
                keyed.pop(name, None)
            for name, agent in self._agent_rows.items():
                if name not in keyed:
                    keyed[name] = (-(agent.window_usd or 0), -(agent.spend_today or 0), name)
            for name in [n for n in keyed if n not in self._agent_rows]:
                del keyed[name]
            self._order = sorted(self._agent_rows, key=keyed.__getitem__)
            self._order_rows = self._agent_rows
        agents = [self._agent_rows[name] for name in self._order]

        spend_today = sum((t.cost for t in self.days.values()), Decimal(0)) if has_cost else None
        spend_month = spend_today + self.month_before_today if spend_today is not None else None
        hour_calls, hour_errors = self.hour.calls, self.hour.errors
        tokens_in = sum(t.tokens_in for t in self.days.values())
        cached = sum(t.cached_tokens for t in self.days.values())
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
            active_agents=sum(1 for total in window.values() if total.calls),
            known_agents=len(names),
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
            at=now, header=header, agents=tuple(agents), switches=tuple(switches), sources=views,
            columns=self.columns, global_kill=global_kill, switches_known=redis is not None,
        )
