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
from dataclasses import dataclass, field
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

    def update(self, other: LatencyCounts, sign: int = 1) -> None:
        for value, count in other.counts.items():
            if sign > 0:
                self.add(value, count)
                continue
            left = self.counts.get(value, 0) - count
            self.total -= count
            if left > 0:
                self.counts[value] = left
            else:
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


@dataclass(slots=True)
class Bucket:
    cost: Decimal = Decimal(0)
    priced: int = 0
    calls: int = 0
    errors: int = 0
    latencies: LatencyCounts = field(default_factory=LatencyCounts)

    def add_row(self, cost: Decimal | None, error: bool, latency_ms: int | None) -> None:
        if cost is not None:
            self.cost += cost
            self.priced += 1
        self.calls += 1
        self.errors += int(error)
        if latency_ms is not None:
            self.latencies.add(latency_ms)

    def merge(self, other: Bucket, sign: int = 1) -> None:
        self.cost += other.cost if sign > 0 else -other.cost
        self.priced += sign * other.priced
        self.calls += sign * other.calls
        self.errors += sign * other.errors
        self.latencies.update(other.latencies, sign)


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
        first = now_minute - self.minutes + 1
        if self.first is not None and first <= self.first:
            return
        self.first = first
        for minute in [m for m in self.slots if m < first]:
            calls, errors = self.slots.pop(minute)
            self.calls -= calls
            self.errors -= errors


class SlidingWindow:
    """Exact per-agent totals over the last `seconds` whole seconds (rows from the future included)."""

    def __init__(self, seconds: int = VELOCITY_SECONDS) -> None:
        self.seconds = seconds
        self.first: int | None = None  # the oldest second inside the window
        self.slots: dict[int, dict[str, Bucket]] = {}
        self.totals: dict[str, Bucket] = {}
        self.all_latencies = LatencyCounts()
        self._p95: dict[str, int | None] = {}
        self._dirty: set[str] = set()

    def add(self, second: int, agent: str, cost: Decimal | None, error: bool, latency_ms: int | None) -> None:
        if self.first is not None and second < self.first:
            return  # arrived after its second left the window
        per_agent = self.slots.setdefault(second, {})
        bucket = per_agent.get(agent)
        if bucket is None:
            bucket = per_agent[agent] = Bucket()
        bucket.add_row(cost, error, latency_ms)
        total = self.totals.get(agent)
        if total is None:
            total = self.totals[agent] = Bucket()
        total.add_row(cost, error, latency_ms)
        if latency_ms is not None:
            self.all_latencies.add(latency_ms)
        self._dirty.add(agent)

    def advance(self, now_second: int) -> None:
        """Move the window to end at `now_second`: every second that left it is subtracted."""
        first = now_second - self.seconds + 1
        if self.first is not None and first <= self.first:
            return
        self.first = first
        for second in [s for s in self.slots if s < first]:
            for agent, bucket in self.slots.pop(second).items():
                total = self.totals[agent]
                total.merge(bucket, -1)
                self.all_latencies.update(bucket.latencies, -1)
                if total.calls == 0:
                    del self.totals[agent]
                    self._p95.pop(agent, None)
                    self._dirty.discard(agent)
                else:
                    self._dirty.add(agent)

    def p95(self, agent: str) -> int | None:
        if agent in self._dirty or agent not in self._p95:
            total = self.totals.get(agent)
            self._p95[agent] = total.latencies.percentile() if total is not None else None
            self._dirty.discard(agent)
        return self._p95[agent]

    def global_p95(self) -> int | None:
        return self.all_latencies.percentile()


def percentile_disc(values: list[int], fraction: float = 0.95) -> int | None:
    """The smallest value with at least `fraction` of the values at or below it."""
    if not values:
        return None
    ordered = sorted(values)
    index = max(0, math.ceil(fraction * len(ordered)) - 1)
    return ordered[index]
