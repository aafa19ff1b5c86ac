"""The agent table: one row per agent, and their order, kept from one snapshot to the next.

With 10,000 agents most figures do not change between two frames, so `AgentRows` rebuilds only the rows
of agents whose figures changed (`changed`, filled by the engine's ingest, and the window's own changes)
and re-sorts last frame's order, which is nearly sorted already. Everything is rebuilt when what every
row depends on changes: Redis's answer, the columns, the thresholds, whether the day's sums are in, the
minute of the day (forecasts), or the sort. `build` changes only this cache; `sort_by` and `invalidate`
are its inputs.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from costtop.config import Thresholds
from costtop.engine.budgets import FIVE, budget_view, projected, velocity_level
from costtop.engine.redis_view import RedisView
from costtop.engine.series import AgentSeries
from costtop.engine.snapshot import AgentRow, SortKey
from costtop.engine.usage import UsageTotals
from costtop.engine.windows import SlidingWindow
from costtop.text import none_last

ZERO = Decimal(0)
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


class AgentRows:
    """The rows, their sort keys and order, and the trend columns' past minutes."""

    def __init__(self) -> None:
        self.rows: dict[str, AgentRow] = {}
        self.changed: set[str] = set()  # agents whose day or window changed since the last build
        self.sort = SortKey.BURN
        self.reverse = False  # a second click on the same column's title
        self._keys: dict[str, tuple[object, ...]] = {}
        self._order: list[str] = []
        self._agents: tuple[AgentRow, ...] = ()
        self._context: object = None
        self._sorted_as: tuple[SortKey, bool] | None = None  # the order `_order` and `_keys` follow
        self._valid = False
        self._trend_minute = -1
        self._trend_prefix: dict[str, tuple[Decimal, ...]] = {}

    def invalidate(self) -> None:
        """Rebuild every row at the next build (the day's totals were replaced)."""
        self._valid = False

    def sort_by(self, key: SortKey, reverse: bool = False) -> None:
        self.sort, self.reverse = key, reverse

    def build(self, days: Mapping[str, UsageTotals], window: SlidingWindow, redis: RedisView,
              thresholds: Thresholds, has_cost: bool, known: bool, day_left: float, trends: AgentSeries,
              now_minute: int, last_calls: Mapping[str | None, float]) -> tuple[AgentRow, ...]:
        """The rows in table order. `window` and `trends` must have been advanced to now."""
        th = thresholds
        budgets = redis.budgets
        switch_targets = redis.targets("agent")
        # Forecasts depend on the time left in the day: every row is redone once a minute for them.
        # Not the sort: the rows do not depend on it, only their keys and order (a new order re-sorts them).
        context = (redis.redis, has_cost, th, known, int(day_left // 60))
        changed = self.changed | window.take_changed()
        self.changed = set()
        totals_5m = window.totals
        rows, keyed = self.rows, self._keys
        if context != self._context or not self._valid:
            self._context = context
            self._valid = True
            rows = self.rows = {}
            keyed.clear()
            self._order, self._agents = [], ()
            changed = set(days) | set(totals_5m) | set(budgets) | switch_targets
        empty = UsageTotals()
        trend_slots = trends.slots(now_minute) if has_cost and known else ()
        if now_minute != self._trend_minute:
            self._trend_minute, self._trend_prefix = now_minute, {}
        added: list[str] = []
        removed = False
        for name in changed:
            if not (name in days or name in totals_5m or name in budgets or name in switch_targets):
                if rows.pop(name, None) is not None:  # nothing left to show for it
                    del keyed[name]
                    removed = True
                continue
            if name not in rows:
                added.append(name)
            totals = days.get(name, empty)
            in_window = totals_5m.get(name)
            usd = in_window.cost if in_window is not None else ZERO
            spend = totals.cost if has_cost and known else None
            per_minute = usd / FIVE if has_cost else None
            state, switch = redis.agent(name)
            rows[name] = AgentRow(
                agent_id=name,
                spend_today=spend,
                window_usd=usd if has_cost else None,
                velocity_per_min=per_minute,
                velocity_level=velocity_level(usd if has_cost else None, th),
                budget=budget_view(budgets.get(name), spend, th.budget_warning, redis.known, per_minute,
                                   day_left),
                calls_today=totals.calls if known else None,
                errors_today=totals.errors if known else None,
                flat_calls_today=(totals.flat if has_cost else 0) if known else None,
                p95_ms=window.p95(name),
                state=state,
                switch=switch,
                projected_today=projected(spend, per_minute, day_left),
                trend=self._trend(name, trend_slots) if trend_slots else (),
                calls_5m=in_window.calls if in_window is not None else 0,
                errors_5m=in_window.errors if in_window is not None else 0,
                last_call_at=last_calls.get(name),
            )
            keyed[name] = sort_key(self.sort, rows[name])
        if (self.sort, self.reverse) != self._sorted_as:
            # Another order: every row's key again, and one full sort; the rows themselves are kept.
            self._sorted_as = (self.sort, self.reverse)
            for name, row in rows.items():
                keyed[name] = sort_key(self.sort, row)
            self._order = sorted(rows, key=keyed.__getitem__)
        elif changed:
            # Last frame's order is still nearly sorted, and Timsort takes advantage of its runs.
            order = [name for name in self._order if name in rows] if removed else self._order
            self._order = sorted(order + added, key=keyed.__getitem__)
        else:
            return self._agents
        names = reversed(self._order) if self.reverse else self._order
        self._agents = tuple(map(rows.__getitem__, names))
        return self._agents

    def _trend(self, name: str, slots: list[dict[str, Decimal]]) -> tuple[Decimal, ...]:
        """The minutes before this one do not change within it: kept, and the current one added."""
        prefix = self._trend_prefix.get(name)
        if prefix is None:
            prefix = self._trend_prefix[name] = tuple([slot.get(name, ZERO) for slot in slots[:-1]])
        return (*prefix, slots[-1].get(name, ZERO))
