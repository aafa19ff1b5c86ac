"""The agent table: one row per agent, and their order, kept from one snapshot to the next.

With 100,000 agents most rows do not change between two frames, so `AgentRows` rebuilds only the rows
of agents whose figures changed (`changed`, filled by the engine's ingest, and the window's own
changes), whose budget or switch Redis now reads differently, and, once a minute, those whose forecast
or trend moves with the clock (agents with calls in the window or in the trend's minutes: an idle
agent's row reads the same an hour later). A rebuilt row moves in the kept order (a SortedList) in
O(log n). Everything is rebuilt when what every row depends on changes: the columns, the thresholds,
whether the day's sums are in, Redis becoming known or unknown, or the global kill. A new sort order
sorts the rows it has, column by column, from the agents in name order. `build` changes only this
cache, and says which agents it `touched`; `sort_by` and `invalidate` are its inputs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from operator import itemgetter
from typing import Any

from sortedcontainers import SortedList

from costtop.config import Thresholds
from costtop.engine.budgets import FIVE, budget_view, projected, velocity_level
from costtop.engine.redis_view import RedisView
from costtop.engine.series import AgentSeries
from costtop.engine.snapshot import AgentRow, SortKey
from costtop.engine.usage import UsageTotals
from costtop.engine.windows import SlidingWindow

ZERO = Decimal(0)
NEVER = float("inf")


def sort_columns(sort: SortKey, rows: Sequence[AgentRow], named: bool = True) -> list[list[Any]]:
    """The rows' sort keys as columns, most significant first, each of one plain type (floats, bools,
    strings): Python sorts those many times faster than tuples, and than Decimals (only figures equal
    to 15 digits could swap). The last two columns are the name (a NULL agent_id after the named ones),
    so no two keys are equal; `named` False leaves them out."""
    if named:
        names = [row.agent_id for row in rows]
        tail = [[name is None for name in names], [name or "" for name in names]]
    else:
        tail = []
    if sort is SortKey.NAME:
        return tail
    burn = [-float(row.window_usd or 0) for row in rows]
    if sort is SortKey.RUNS_OUT:
        left = [row.budget.runs_out_in for row in rows]
        return [[NEVER if x is None else x for x in left], burn, *tail]
    today = [-float(row.spend_today or 0) for row in rows]
    if sort is SortKey.TODAY:
        return [today, burn, *tail]
    return [burn, today, *tail]


def sort_key(sort: SortKey, row: AgentRow) -> tuple[Any, ...]:
    """One row's key, as `sort_columns` makes it, made directly: a frame keys every row it rebuilds."""
    name = row.agent_id
    if sort is SortKey.NAME:
        return name is None, name or ""
    burn = -float(row.window_usd or 0)
    if sort is SortKey.RUNS_OUT:
        left = row.budget.runs_out_in
        return NEVER if left is None else left, burn, name is None, name or ""
    today = -float(row.spend_today or 0)
    if sort is SortKey.TODAY:
        return today, burn, name is None, name or ""
    return burn, today, name is None, name or ""


def in_order(sort: SortKey, by_name: Sequence[AgentRow]) -> Sequence[AgentRow]:
    """The rows in key order, from the rows in name order (the keys' last part): one stable sort per
    other column, from the least significant one (100,000 rows in a fraction of the time one sort of
    their key tuples takes)."""
    columns = sort_columns(sort, by_name, named=False)
    if not columns:
        return by_name
    order = list(range(len(by_name)))
    for column in reversed(columns):
        order.sort(key=column.__getitem__)
    return list(map(by_name.__getitem__, order))


def name_order(names: Iterable[str | None]) -> list[str | None]:
    """Agent ids as the sort keys' last part orders them: by name, a NULL agent_id last."""
    listed = list(names)
    named: list[str | None] = sorted(name for name in listed if name is not None)
    return named + [None] * (len(listed) - len(named))


def keyed_list(sort: SortKey, ascending: Sequence[AgentRow]) -> tuple[SortedList, dict[str | None, tuple[Any, ...]]]:
    """(key, agent) for rows already in key order, as a SortedList, and each agent's key."""
    keys = list(zip(*sort_columns(sort, ascending), strict=True))
    names = [row.agent_id for row in ascending]
    return SortedList(zip(keys, names, strict=True)), dict(zip(names, keys, strict=True))


class AgentRows:
    """The rows, their sort keys and order."""

    def __init__(self) -> None:
        self.rows: dict[str, AgentRow] = {}
        self.changed: set[str] = set()  # agents whose day or window changed since the last build
        self.sort = SortKey.BURN
        self.reverse = False  # a second click on the same column's title
        # (key, agent) in key order. A key ends with the agent's id, so no two are equal; a row whose key
        # changed leaves and comes back in O(log n), not a sort of 100,000, and one whose key did not
        # stays. None after a new order: made from it at the next build that changes a row, so the new
        # order shows sooner.
        self._ordered: SortedList | None = SortedList()
        self._keys: dict[str | None, tuple[Any, ...]] = {}  # each agent's key in `_ordered`
        self._agents: tuple[AgentRow, ...] = ()  # the table, in order (reversed when `reverse`)
        self._context: object = None
        self._sorted_as: SortKey | None = None  # the order `_ordered` follows
        self._shown_reversed = False  # `_agents` is in descending order
        self._by_name: list[str | None] | None = None  # the agents in name order, kept while none comes or goes
        self._valid = False
        self._redis: RedisView | None = None  # what the rows were built from
        self._trend_minute = -1
        self._trending: set[str] = set()  # agents with spend in the trend's minutes at the last minute's turn
        self.touched: set[str] | None = None  # agents rebuilt or removed by the last build; None: all

    def invalidate(self) -> None:
        """Rebuild every row at the next build (the day's totals were replaced)."""
        self._valid = False

    def sort_by(self, key: SortKey, reverse: bool = False) -> None:
        self.sort, self.reverse = key, reverse

    def build(self, days: Mapping[str, UsageTotals], window: SlidingWindow, redis: RedisView,
              thresholds: Thresholds, has_cost: bool, known: bool, day_left: float, trends: AgentSeries,
              now_minute: int, last_calls: Mapping[str | None, float]) -> tuple[AgentRow, ...]:
        """The rows in table order. `window` and `trends` must have been advanced to now; `day_left`: the
        seconds left in the day from the start of the minute `now_minute`."""
        th = thresholds
        budgets = redis.budgets
        switch_targets = redis.targets("agent")
        # Not the sort: the rows do not depend on it, only their keys and order (a new order re-sorts them).
        context = (has_cost, th, known)
        ingested = self.changed  # agents with rows read since the last build: their trend may have moved
        changed = ingested | window.take_changed()
        self.changed = set()
        totals_5m = window.totals
        rows = self.rows
        from_redis = redis.agents_changed_since(self._redis)
        self._redis = redis
        trend_slots = trends.slots(now_minute) if has_cost and known else ()
        full = context != self._context or not self._valid or from_redis is None
        if full:
            self._context = context
            self._valid = True
            rows = self.rows = {}
            self._agents = ()
            self._by_name = None
            changed = set(days) | set(totals_5m) | set(budgets) | switch_targets
            self._trend_minute = -1
        else:
            changed |= from_redis
        minute_turned = now_minute != self._trend_minute
        if minute_turned:
            # A minute on: the forecasts (time left in the day) and the trends (their minutes) move, but
            # only for agents burning now or with spend in the trend's minutes, now or a minute ago.
            trending = set().union(*trend_slots)
            changed |= totals_5m.keys() | trending | self._trending
            self._trending = trending
            self._trend_minute = now_minute
        self.touched = None if full else changed
        empty = UsageTotals()
        sort = self.sort
        resort = sort is not self._sorted_as or full
        ordered = self._ordered
        if ordered is None and changed and not resort:
            ordered, self._keys = keyed_list(sort, self._agents[::-1] if self._shown_reversed else self._agents)
            self._ordered = ordered
        keys = self._keys
        keep_order = ordered is not None and not resort
        left = Decimal(day_left)  # once, not per row: the forecasts all count from it
        for name in changed:
            old = rows.get(name)
            if not (name in days or name in totals_5m or name in budgets or name in switch_targets):
                if old is not None:  # nothing left to show for it
                    del rows[name]
                    self._by_name = None
                    if keep_order:
                        ordered.remove((keys.pop(name), name))
                continue
            if old is None:
                self._by_name = None
            totals = days.get(name, empty)
            in_window = totals_5m.get(name)
            usd = in_window.cost if in_window is not None else ZERO
            spend = totals.cost if has_cost and known else None
            per_minute = usd / FIVE if has_cost else None
            state, switch = redis.agent(name)
            if old is None or minute_turned or name in ingested:
                trend = tuple([slot.get(name, ZERO) for slot in trend_slots])
            else:  # only its window moved (a second left it): its minutes' sums are what they were
                trend = old.trend
            # Positional, in the order of AgentRow's fields: a frozen dataclass's keywords cost a third more,
            # and a frame makes thousands of rows.
            rows[name] = AgentRow(
                name,  # agent_id
                spend,  # spend_today
                usd if has_cost else None,  # window_usd
                per_minute,  # velocity_per_min
                velocity_level(usd if has_cost else None, th),
                budget_view(budgets.get(name), spend, th.budget_warning, redis.known, per_minute, day_left),
                totals.calls if known else None,  # calls_today
                totals.errors if known else None,  # errors_today
                (totals.flat if has_cost else 0) if known else None,  # flat_calls_today
                window.p95(name),  # p95_ms
                state,
                switch,
                projected(spend, per_minute, left),  # projected_today
                trend,
                in_window.calls if in_window is not None else 0,  # calls_5m
                in_window.errors if in_window is not None else 0,  # errors_5m
                last_calls.get(name),  # last_call_at
            )
            if keep_order:
                key = sort_key(sort, rows[name])
                before = keys.get(name)
                if key != before:
                    if before is not None:
                        ordered.remove((before, name))
                    ordered.add((key, name))
                    keys[name] = key
        if resort:
            # Another order (or every row new): one full sort; the SortedList follows at the next change.
            self._sorted_as, self._ordered, self._keys = sort, None, {}
            if self._by_name is None:
                self._by_name = name_order(rows)
            ascending: Sequence[AgentRow] = in_order(sort, list(map(rows.__getitem__, self._by_name)))
        elif changed and ordered is not None:
            ascending = list(map(rows.__getitem__, map(itemgetter(1), ordered)))
        elif self.reverse == self._shown_reversed:
            return self._agents
        else:
            ascending = self._agents[::-1] if self._shown_reversed else self._agents
        self._shown_reversed = self.reverse
        self._agents = tuple(reversed(ascending)) if self.reverse else tuple(ascending)
        return self._agents
