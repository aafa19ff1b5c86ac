"""Time-bucketed sums that make the windows incremental.

The 5-minute window is kept per whole second, so "the last 300 seconds" is exact and equals
`created_at >= to_timestamp(floor(now) - 299)` in SQL. Per-agent totals are kept running: a second's
sums are added when its rows arrive and subtracted when it leaves the window, so a snapshot costs
O(agents), not O(rows in the window). Latencies are kept as exact millisecond counts, so the 95th
percentile is SQL's percentile_disc(0.95), recomputed only for agents whose window changed.
"""

from __future__ import annotations

import bisect
import math
from array import array
from collections.abc import Sequence
from decimal import Decimal

VELOCITY_SECONDS = 300
HOUR_MINUTES = 60


class LatencyCounts:
    """An exact multiset of millisecond latencies with its distinct values kept sorted, so a high
    percentile walks down from the top (a few steps) instead of sorting every value."""

    __slots__ = ("counts", "keys", "total")

    def __init__(self) -> None:
        self.counts: dict[int, int] = {}
        self.keys: list[int] = []
        self.total = 0

    def add(self, value: int, count: int = 1) -> None:
        before = self.counts.get(value, 0)
        if before == 0:
            bisect.insort(self.keys, value)
        self.counts[value] = before + count
        self.total += count

    def remove(self, value: int, count: int = 1) -> None:
        before = self.counts.get(value, 0)
        count = min(count, before)  # never below zero, whatever it is asked
        left = before - count
        self.total -= count
        if left > 0:
            self.counts[value] = left
            return
        self.counts.pop(value, None)
        index = bisect.bisect_left(self.keys, value)
        if index < len(self.keys) and self.keys[index] == value:
            del self.keys[index]

    def percentile(self, fraction: float = 0.95) -> int | None:
        """SQL's percentile_disc: the value at rank ceil(fraction * n), counted from the bottom."""
        if self.total <= 0:
            return None
        rank = max(1, math.ceil(fraction * self.total))
        above = self.total - rank  # values strictly after the answer
        seen = 0
        for value in reversed(self.keys):
            seen += self.counts[value]
            if seen > above:
                return value
        return None

    def __bool__(self) -> bool:
        return self.total > 0


class SortedLatencies:
    """An agent's window latencies as one sorted array of 4-byte ints: the percentile is an index,
    and 10,000 agents' multisets take a few megabytes instead of a dict per agent. An insert moves
    the array's tail, which stays cheap for one agent's share of the window."""

    __slots__ = ("values",)

    def __init__(self) -> None:
        self.values = array("i")

    @property
    def total(self) -> int:
        return len(self.values)

    def add(self, value: int, count: int = 1) -> None:
        at = bisect.bisect_right(self.values, value)
        self.values[at:at] = array("i", (value,)) * count

    def remove(self, value: int, count: int = 1) -> None:
        at = bisect.bisect_left(self.values, value)
        end = min(at + count, len(self.values))
        while end > at and self.values[end - 1] != value:
            end -= 1
        del self.values[at:end]

    def percentile(self, fraction: float = 0.95) -> int | None:
        """SQL's percentile_disc: the value at rank ceil(fraction * n)."""
        if not self.values:
            return None
        return self.values[max(1, math.ceil(fraction * len(self.values))) - 1]

    def __bool__(self) -> bool:
        return bool(self.values)


NANO_EXP = -9
NO_COST = -(2**63)  # in a Second's cost array: the row had no cost (flat-rate)
ODD_COST = NO_COST + 1  # the cost has more than 9 decimals: kept exactly in a side dict


class Totals:
    """Running sums of one agent's window. Costs are added as integer nano-dollars (exact for any
    cost with at most 9 decimals) plus an exact Decimal for the rare finer one."""

    __slots__ = ("calls", "errors", "extra", "latencies", "nanos", "priced")

    def __init__(self) -> None:
        self.nanos = 0
        self.extra = Decimal(0)
        self.priced = 0
        self.calls = 0
        self.errors = 0
        self.latencies: LatencyCounts | SortedLatencies = SortedLatencies()

    @property
    def cost(self) -> Decimal:
        return Decimal(self.nanos).scaleb(NANO_EXP) + self.extra if self.nanos else self.extra


class Second:
    """The entries of one second as parallel compact arrays: a row read live, or an agent's rows of
    that second summed at start-up (with their latencies kept exactly)."""

    __slots__ = ("agents", "calls", "costs", "errors", "lat_end", "latencies", "odd", "priced")

    def __init__(self) -> None:
        self.agents: list[str] = []
        self.costs = array("q")
        self.priced = array("i")
        self.calls = array("i")
        self.errors = array("i")
        self.latencies = array("i")
        self.lat_end = array("i")  # entry i's latencies are latencies[lat_end[i-1]:lat_end[i]]
        self.odd: dict[int, Decimal] = {}


def nanos_of(cost: Decimal) -> int | None:
    """The cost in integer nano-dollars when that is exact, else None."""
    scaled = cost.scaleb(-NANO_EXP)
    if scaled == scaled.to_integral_value() and abs(scaled) < 2**62:
        return int(scaled)
    return None


def expire(window: MinuteCounts | SlidingWindow | KeyedSeconds, now: int, span: int) -> list:
    """Move a window of `span` buckets to end at `now`; the buckets that left it, to subtract."""
    first = now - span + 1
    if window.first is not None and first <= window.first:
        return []
    window.first = first
    return [window.slots.pop(bucket) for bucket in [b for b in window.slots if b < first]]


class MinuteCounts:
    """Calls and errors over the last `minutes` whole minutes, kept as running totals."""

    def __init__(self, minutes: int = HOUR_MINUTES) -> None:
        self.minutes = minutes
        self.first: int | None = None
        self.slots: dict[int, list[int]] = {}
        self.calls = 0
        self.errors = 0

    def add(self, minute: int, calls: int, errors: int) -> None:
        if self.first is not None and minute < self.first:
            return
        slot = self.slots.setdefault(minute, [0, 0])
        slot[0] += calls
        slot[1] += errors
        self.calls += calls
        self.errors += errors

    def advance(self, now_minute: int) -> None:
        for calls, errors in expire(self, now_minute, self.minutes):
            self.calls -= calls
            self.errors -= errors


class SlidingWindow:
    """Exact per-agent totals over the last `seconds` whole seconds (rows from the future included)."""

    def __init__(self, seconds: int = VELOCITY_SECONDS) -> None:
        self.seconds = seconds
        self.first: int | None = None  # the oldest second inside the window
        self.slots: dict[int, Second] = {}
        self.totals: dict[str, Totals] = {}
        self.overall = Totals()  # every agent together, kept running like the rest
        # The whole window's latencies are too many for one sorted array; exact counts per value instead.
        self.all_latencies = self.overall.latencies = LatencyCounts()
        self._p95: dict[str, int | None] = {}
        self._dirty: set[str] = set()  # p95 to recompute
        self._changed: set[str] = set()  # totals changed since take_changed()

    def take_changed(self) -> set[str]:
        changed, self._changed = self._changed, set()
        return changed

    def add(self, second: int, agent: str, cost: Decimal | None, error: bool, latency_ms: int | None) -> None:
        self.add_group(second, agent, cost, 0 if cost is None else 1, 1, int(error),
                       () if latency_ms is None else (latency_ms,))

    def add_group(self, second: int, agent: str, cost: Decimal | None, priced: int, calls: int, errors: int,
                  latencies: Sequence[int]) -> None:
        if self.first is not None and second < self.first:
            return  # arrived after its second left the window
        slot = self.slots.get(second)
        if slot is None:
            slot = self.slots[second] = Second()
        total = self.totals.get(agent)
        if total is None:
            total = self.totals[agent] = Totals()
        if cost is None:
            slot.costs.append(NO_COST)
        else:
            nanos = nanos_of(cost)
            if nanos is None:
                slot.odd[len(slot.costs)] = cost
                slot.costs.append(ODD_COST)
                total.extra += cost
                self.overall.extra += cost
            else:
                slot.costs.append(nanos)
                total.nanos += nanos
                self.overall.nanos += nanos
        slot.agents.append(agent)
        slot.priced.append(priced)
        slot.calls.append(calls)
        slot.errors.append(errors)
        slot.latencies.extend(latencies)
        slot.lat_end.append(len(slot.latencies))
        total.priced += priced
        total.calls += calls
        total.errors += errors
        self.overall.calls += calls
        for latency in latencies:
            total.latencies.add(latency)
            self.all_latencies.add(latency)
        self._dirty.add(agent)
        self._changed.add(agent)

    def advance(self, now_second: int) -> None:
        """Move the window to end at `now_second`: every entry of a second that left it is subtracted."""
        expired = expire(self, now_second, self.seconds)
        if not expired:
            return
        for slot in expired:
            start = 0
            for i, agent in enumerate(slot.agents):
                total = self.totals[agent]
                cost = slot.costs[i]
                if cost == ODD_COST:
                    total.extra -= slot.odd[i]
                    self.overall.extra -= slot.odd[i]
                elif cost != NO_COST:
                    total.nanos -= cost
                    self.overall.nanos -= cost
                total.priced -= slot.priced[i]
                total.calls -= slot.calls[i]
                total.errors -= slot.errors[i]
                self.overall.calls -= slot.calls[i]
                end = slot.lat_end[i]
                for latency in slot.latencies[start:end]:
                    total.latencies.remove(latency)
                    self.all_latencies.remove(latency)
                start = end
                self._dirty.add(agent)
                self._changed.add(agent)
        for agent in [a for a in self._dirty if a in self.totals and self.totals[a].calls == 0]:
            del self.totals[agent]
            self._p95.pop(agent, None)
            self._dirty.discard(agent)

    def p95(self, agent: str) -> int | None:
        if agent in self._dirty or agent not in self._p95:
            total = self.totals.get(agent)
            self._p95[agent] = total.latencies.percentile() if total is not None else None
            self._dirty.discard(agent)
        return self._p95[agent]

    def global_p95(self) -> int | None:
        return self.all_latencies.percentile()


class KeyedSeconds:
    """Calls, errors and latencies per key and whole second, for a few keys with many calls each
    (providers): one entry per (second, key) however many calls, so the window's size does not grow
    with the call rate. Totals over the whole window are kept running; shorter spans are summed on
    demand from the seconds."""

    def __init__(self, seconds: int = VELOCITY_SECONDS) -> None:
        self.seconds = seconds
        self.first: int | None = None
        self.slots: dict[int, dict[str | None, list]] = {}  # second -> key -> [calls, errors, latencies]
        self.totals: dict[str | None, list[int]] = {}  # key -> [calls, errors]
        self.latencies: dict[str | None, LatencyCounts] = {}

    def add(self, second: int, key: str | None, calls: int, errors: int, latencies: Sequence[int] = ()) -> None:
        if self.first is not None and second < self.first:
            return
        entry = self.slots.setdefault(second, {}).get(key)
        if entry is None:
            entry = self.slots[second][key] = [0, 0, array("i")]
        entry[0] += calls
        entry[1] += errors
        entry[2].extend(latencies)
        total = self.totals.setdefault(key, [0, 0])
        total[0] += calls
        total[1] += errors
        counts = self.latencies.get(key)
        if counts is None:
            counts = self.latencies[key] = LatencyCounts()
        for latency in latencies:
            counts.add(latency)

    def advance(self, now_second: int) -> None:
        for slot in expire(self, now_second, self.seconds):
            for key, (calls, errors, latencies) in slot.items():
                total = self.totals[key]
                total[0] -= calls
                total[1] -= errors
                counts = self.latencies[key]
                for latency in latencies:
                    counts.remove(latency)
                if total[0] <= 0:
                    del self.totals[key], self.latencies[key]

    def recent(self, key: str | None, now_second: int, seconds: int) -> tuple[int, int]:
        """Calls and errors over the last `seconds` whole seconds."""
        calls = errors = 0
        for second in range(now_second - seconds + 1, now_second + 1):
            entry = self.slots.get(second, {}).get(key)
            if entry is not None:
                calls += entry[0]
                errors += entry[1]
        return calls, errors

    def p95(self, key: str | None) -> int | None:
        counts = self.latencies.get(key)
        return counts.percentile() if counts is not None else None
