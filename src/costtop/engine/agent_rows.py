"""The agent table: one row per agent, and their order, kept from one snapshot to the next.

With 100,000 agents most rows do not change between two frames, so `AgentRows` rebuilds only the rows
of agents whose figures changed (`changed`, filled by the engine's ingest, and the window's own
changes), whose budget or switch Redis now reads differently, and, once a minute, those whose forecast
or trend moves with the clock (agents with calls in the window or in the trend's minutes: an idle
agent's row reads the same an hour later). A rebuilt row moves in the kept order (a SortedList) in
O(log n). Everything is rebuilt when what every row depends on changes: the columns, the thresholds,
whether the day's sums are in, Redis becoming known or unknown, or the global kill. A sort order used
for the first time sorts the rows it has, column by column, from the agents in name order; it is then
kept, so coming back to it (`s` cycles through four) only moves the rows that changed meanwhile.
`build` changes only this cache, and says which agents it `touched`; `sort_by` and `invalidate` are its
inputs.
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
KEEP_ORDERS_UP_TO = 200_000  # agents: past this, only the order shown is kept


SortFloats = tuple[float, float, float]  # a row's figures as its sort keys use them (row_floats)
# For each order, the row_floats it sorts by, most significant first; the name comes after them.
FLOAT_COLUMNS: dict[SortKey, tuple[int, ...]] = {
    SortKey.BURN: (0, 1), SortKey.TODAY: (1, 0), SortKey.RUNS_OUT: (2, 0), SortKey.NAME: ()}


def row_floats(row: AgentRow) -> SortFloats:
    """The burn (5-minute $, negated: the most first), today's spend (negated) and the seconds until
    the budget runs out (NEVER when it does not) as plain floats: Python sorts those many times faster
    than tuples, and than Decimals (only figures equal to 15 digits could swap). Kept per row
    (`AgentRows`), so a new order converts no Decimal."""
    left = row.budget.runs_out_in
    return (-float(row.window_usd or 0), -float(row.spend_today or 0), NEVER if left is None else left)


def sort_columns(sort: SortKey, names: Sequence[str | None], floats: Sequence[SortFloats],
                 named: bool = True) -> list[list[Any]]:
    """The sort keys of rows (their `names` and `floats`) as columns, most significant first, each of
    one plain type. The last two columns are the name (a NULL agent_id after the named ones), so no two
    keys are equal; `named` False leaves them out."""
    columns: list[list[Any]] = [list(map(itemgetter(i), floats)) for i in FLOAT_COLUMNS[sort]]
    if named:
        columns += [[name is None for name in names], [name or "" for name in names]]
    return columns


def in_order(sort: SortKey, by_name: Sequence[AgentRow], floats: Sequence[SortFloats]) -> Sequence[AgentRow]:
    """The rows in key order, from the rows in name order (the keys' last part) and their floats: one
    stable sort per other column, from the least significant one (100,000 rows in a fraction of the
    time one sort of their key tuples takes)."""
    columns = sort_columns(sort, (), floats, named=False)
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


def key_of(sort: SortKey, name: str | None, floats: SortFloats) -> tuple[Any, ...]:
    """One row's key, as `sort_columns` makes it, from its name and floats."""
    return (*(floats[i] for i in FLOAT_COLUMNS[sort]), name is None, name or "")


def presorted(values: list[Any]) -> SortedList:
    """A SortedList of values already in order, without sorting them again: `SortedList(values)`
    sorts, and 100,000 keys sharing most of their figures took 0.36 s to compare. Made the way
    `SortedList.update` fills an empty list (sortedcontainers 2.x, pinned in pyproject.toml;
    tests/unit/test_incremental_rows.py checks the list's invariants)."""
    kept = SortedList()
    load = kept._load
    kept._lists = [values[at:at + load] for at in range(0, len(values), load)]
    kept._maxes = [chunk[-1] for chunk in kept._lists]
    kept._len = len(values)
    return kept


class KeptOrder:
    """One sort order's rows as (key, row) in a SortedList, so that a changed row moves in O(log n)
    and going back to an order used before re-sorts nothing. An order not shown collects the agents
    that changed meanwhile (`stale`) and catches up when it is shown again."""

    __slots__ = ("entries", "items", "sort", "stale")

    def __init__(self, sort: SortKey, ascending: Sequence[AgentRow], floats: Mapping[str | None, SortFloats]) -> None:
        names = [row.agent_id for row in ascending]
        columns = sort_columns(sort, names, list(map(floats.__getitem__, names)))
        pairs = list(zip(zip(*columns, strict=True), ascending, strict=True))
        self.sort = sort
        self.items = presorted(pairs)
        self.entries: dict[str | None, tuple[tuple[Any, ...], AgentRow]] = dict(zip(names, pairs, strict=True))
        self.stale: set[str | None] = set()

    def catch_up(self, rows: Mapping[str, AgentRow], floats: Mapping[str | None, SortFloats]) -> bool:
        """Move the stale agents' rows to where they belong now. False, changing nothing, when so many
        changed that a full sort is cheaper (a quarter of the rows or more)."""
        stale = self.stale
        if len(stale) * 4 > len(self.entries):
            return False
        items, entries, sort = self.items, self.entries, self.sort
        for name in stale:
            old = entries.pop(name, None)
            if old is not None:
                items.remove(old)
            row = rows.get(name)  # type: ignore[arg-type]
            if row is not None:
                entry = entries[name] = (key_of(sort, name, floats[name]), row)
                items.add(entry)
        self.stale = set()
        return True

    def ascending(self) -> list[AgentRow]:
        return list(map(itemgetter(1), self.items))


class AgentRows:
    """The rows, their sort keys and order."""

    def __init__(self) -> None:
        self.rows: dict[str, AgentRow] = {}
        self._floats: dict[str | None, SortFloats] = {}  # row_floats of every row, by agent
        self.changed: set[str] = set()  # agents whose day or window changed since the last build
        self.sort = SortKey.BURN
        self.reverse = False  # a second click on the same column's title
        # The orders shown so far, kept (KeptOrder). A key ends with the agent's id, so no two are equal
        # and rows are never compared. A new order is made by a full sort, and kept from the next build
        # that changes a row, so the new order shows sooner. Over KEEP_ORDERS_UP_TO agents only the
        # order shown is kept (each kept order is about 30 MB per 100,000 agents).
        self._kept: dict[SortKey, KeptOrder] = {}
        self._agents: tuple[AgentRow, ...] = ()  # the table, in order (reversed when `reverse`)
        self._context: object = None
        self._sorted_as: SortKey | None = None  # the order `_agents` follows
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
        changed = self.changed | window.take_changed()
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
            self._floats = {}
            self._agents = ()
            self._by_name = None
            changed = set(days) | set(totals_5m) | set(budgets) | switch_targets
            self._trend_minute = -1
        else:
            changed |= from_redis
        if now_minute != self._trend_minute:
            # A minute on: the forecasts (time left in the day) and the trends (their minutes) move, but
            # only for agents burning now or with spend in the trend's minutes, now or a minute ago.
            trending = set().union(*trend_slots)
            changed |= totals_5m.keys() | trending | self._trending
            self._trending = trending
            self._trend_minute = now_minute
        self.touched = None if full else changed
        empty = UsageTotals()
        sort = self.sort
        floats = self._floats
        if full:
            self._kept = {}
        elif changed and sort is self._sorted_as and sort not in self._kept:
            # The order shown came from a full sort: kept from now on, from the rows as they were.
            self._kept[sort] = KeptOrder(sort, self._agents[::-1] if self._shown_reversed else self._agents,
                                         floats)
        for name in changed:
            old = rows.get(name)
            if not (name in days or name in totals_5m or name in budgets or name in switch_targets):
                if old is not None:  # nothing left to show for it
                    del rows[name], floats[name]
                    self._by_name = None
                continue
            if old is None:
                self._by_name = None
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
                trend=tuple([slot.get(name, ZERO) for slot in trend_slots]),
                calls_5m=in_window.calls if in_window is not None else 0,
                errors_5m=in_window.errors if in_window is not None else 0,
                last_call_at=last_calls.get(name),
            )
            floats[name] = row_floats(rows[name])
        for kept in self._kept.values():
            kept.stale |= changed
        kept = self._kept.get(sort)
        if kept is not None and not kept.catch_up(rows, floats):
            del self._kept[sort]  # most rows changed since it was shown: a full sort is cheaper
            kept = None
        ascending: Sequence[AgentRow]
        if not full and not changed and sort is self._sorted_as:
            if self.reverse == self._shown_reversed:
                return self._agents
            ascending = self._agents[::-1] if self._shown_reversed else self._agents
        elif kept is not None:
            ascending = kept.ascending()
        else:
            # An order not kept (or every row new): one full sort, kept from the next change.
            if self._by_name is None:
                self._by_name = name_order(rows)
            by_name = self._by_name
            ascending = in_order(sort, list(map(rows.__getitem__, by_name)), list(map(floats.__getitem__, by_name)))
        self._sorted_as = sort
        if len(rows) > KEEP_ORDERS_UP_TO:
            self._kept = {sort: kept} if kept is not None else {}
        self._shown_reversed = self.reverse
        self._agents = tuple(reversed(ascending)) if self.reverse else tuple(ascending)
        return self._agents
