"""Time-bucketed sums that make the windows incremental.

The 5-minute window is kept per whole second, so "the last 300 whole seconds" is exact and equals
`created_at >= to_timestamp(floor(now) - 299)` in SQL. Per-agent totals are kept running: a second's
sums are added when its rows arrive and subtracted when it leaves the window, so a snapshot costs
O(agents), not O(rows in the window). Latencies are kept as exact millisecond counts, so the 95th
percentile is SQL's percentile_disc(0.95), recomputed only for agents whose window changed.

What the window holds scales with the calls in it, so its per-call share is kept to plain integers in
arrays: a second keeps one entry of sums per agent (not per call) and each call's latency as 4 bytes
with 4 more naming its entry, to be subtracted when the second leaves. At 10,000 calls/s (3 million
calls in the window) that is about 24 MB, where a Python object per call (an agent id string, an int)
would be hundreds. The multisets the percentiles are read from count each distinct millisecond once.
"""

from __future__ import annotations

import bisect
import math
from array import array
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal

VELOCITY_SECONDS = 300
HOUR_MINUTES = 60
NANO_BOUND = 2**62  # an entry's running sum of nano-dollars stays inside this (int64 with room)
# (second, agent, cost or None, priced, calls, errors, latencies): an agent's calls of one second, summed.
AgentGroup = tuple[int, str | None, Decimal | None, int, int, int, Sequence[int]]


class CountedLatencies:
    """An exact multiset of millisecond latencies as two parallel arrays: the distinct values in
    order, and how many calls took each. Its size follows the distinct values (a few thousand at
    most, whatever the call rate), a high percentile walks down from the top (a few steps), and
    10,000 agents' multisets are a few megabytes, not a dict per agent."""

    __slots__ = ("counts", "total", "values")

    def __init__(self) -> None:
        self.values = array("i")
        self.counts = array("q")
        self.total = 0

    def add(self, value: int, count: int = 1) -> None:
        values = self.values
        at = bisect.bisect_left(values, value)
        if at < len(values) and values[at] == value:
            self.counts[at] += count
        else:
            values.insert(at, value)
            self.counts.insert(at, count)
        self.total += count

    def add_counts(self, counts: Mapping[int, int]) -> None:
        """Many values at once (a window read at start-up): one merge, not an insert per value."""
        if not counts:
            return
        if self.values:
            merged = Counter(dict(zip(self.values, self.counts, strict=True)))
            merged.update(counts)
            counts = merged
        keys = sorted(counts)
        self.values = array("i", keys)
        self.counts = array("q", map(counts.__getitem__, keys))
        self.total = sum(self.counts)

    def remove(self, value: int, count: int = 1) -> None:
        values = self.values
        at = bisect.bisect_left(values, value)
        if at == len(values) or values[at] != value:
            return  # never added: nothing to take away
        before = self.counts[at]
        count = min(count, before)  # never below zero, whatever it is asked
        self.total -= count
        if before > count:
            self.counts[at] = before - count
        else:
            del values[at], self.counts[at]

    def percentile(self, fraction: float = 0.95) -> int | None:
        """SQL's percentile_disc: the value at rank ceil(fraction * n), counted from the bottom."""
        if self.total <= 0:
            return None
        rank = max(1, math.ceil(fraction * self.total))
        above = self.total - rank  # values strictly after the answer
        seen = 0
        counts = self.counts
        for at in range(len(counts) - 1, -1, -1):
            seen += counts[at]
            if seen > above:
                return self.values[at]
        return None

    def __bool__(self) -> bool:
        return self.total > 0


NANO_EXP = -9


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
        self.latencies = CountedLatencies()

    @property
    def cost(self) -> Decimal:
        return Decimal(self.nanos).scaleb(NANO_EXP) + self.extra if self.nanos else self.extra


class Second:
    """One second of the window: an entry of sums per agent (its calls there, read live one by one or
    summed at start-up), and every call's latency with the entry it belongs to, in compact arrays."""

    __slots__ = ("agents", "calls", "costs", "errors", "index", "latencies", "odd", "owners", "priced")

    def __init__(self) -> None:
        self.index: dict[str | None, int] = {}  # agent -> its entry
        self.agents: list[str | None] = []
        self.costs = array("q")  # nano-dollars
        self.priced = array("q")
        self.calls = array("q")
        self.errors = array("q")
        self.odd: dict[int, Decimal] = {}  # entry -> the costs finer than a nano-dollar (or too large)
        self.latencies = array("i")
        self.owners = array("i")  # the entry of each latency

    def entry(self, agent: str | None) -> int:
        at = self.index.get(agent)
        if at is None:
            at = self.index[agent] = len(self.agents)
            self.agents.append(agent)
            self.costs.append(0)
            self.priced.append(0)
            self.calls.append(0)
            self.errors.append(0)
        return at


def nanos_of(cost: Decimal) -> int | None:
    """The cost in integer nano-dollars when that is exact, else None."""
    scaled = cost.scaleb(-NANO_EXP)
    if scaled == scaled.to_integral_value() and abs(scaled) < NANO_BOUND:
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
        self.totals: dict[str | None, Totals] = {}
        self.overall = Totals()  # every agent together, kept running like the rest
        self.all_latencies = self.overall.latencies
        self._p95: dict[str | None, int | None] = {}
        self._dirty: set[str | None] = set()  # p95 to recompute
        self._changed: set[str | None] = set()  # totals changed since take_changed()

    def take_changed(self) -> set[str | None]:
        changed, self._changed = self._changed, set()
        return changed

    def add(self, second: int, agent: str | None, cost: Decimal | None, error: bool, latency_ms: int | None) -> None:
        """One call read live."""
        placed = self._place(second, agent)
        if placed is None:
            return  # arrived after its second left the window
        slot, at, total = placed
        if cost is not None:
            self._add_cost(slot, at, total, cost)
            slot.priced[at] += 1
            total.priced += 1
        slot.calls[at] += 1
        total.calls += 1
        self.overall.calls += 1
        if error:
            slot.errors[at] += 1
            total.errors += 1
        if latency_ms is not None:
            slot.latencies.append(latency_ms)
            slot.owners.append(at)
            total.latencies.add(latency_ms)
            self.all_latencies.add(latency_ms)
        self._dirty.add(agent)
        self._changed.add(agent)

    def _place(self, second: int, agent: str | None) -> tuple[Second, int, Totals] | None:
        """The second's slot, the agent's entry in it and the agent's totals, made if new; None when the
        second has already left the window."""
        if self.first is not None and second < self.first:
            return None
        slot = self.slots.get(second)
        if slot is None:
            slot = self.slots[second] = Second()
        total = self.totals.get(agent)
        if total is None:
            total = self.totals[agent] = Totals()
        return slot, slot.entry(agent), total

    def _add_cost(self, slot: Second, at: int, total: Totals, cost: Decimal) -> None:
        nanos = nanos_of(cost)
        if nanos is not None and -NANO_BOUND < slot.costs[at] + nanos < NANO_BOUND:
            slot.costs[at] += nanos
            total.nanos += nanos
            self.overall.nanos += nanos
        else:
            slot.odd[at] = slot.odd.get(at, Decimal(0)) + cost
            total.extra += cost
            self.overall.extra += cost

    def add_groups(self, groups: Iterable[AgentGroup]) -> None:
        """Agents' calls summed per second (second, agent, cost or None, priced, calls, errors, latencies),
        read at start-up: the latencies go into each multiset counted at once, not one by one."""
        counted: dict[str | None, Counter[int]] = {}
        everyone: Counter[int] = Counter()
        for second, agent, cost, priced, calls, errors, latencies in groups:
            placed = self._place(second, agent)
            if placed is None:
                continue
            slot, at, total = placed
            if cost is not None:
                self._add_cost(slot, at, total, cost)
            slot.priced[at] += priced
            slot.calls[at] += calls
            slot.errors[at] += errors
            total.priced += priced
            total.calls += calls
            total.errors += errors
            self.overall.calls += calls
            if latencies:
                slot.latencies.extend(latencies)
                slot.owners.extend(array("i", (at,)) * len(latencies))
                found = counted.get(agent)
                if found is None:
                    found = counted[agent] = Counter()
                found.update(latencies)
            self._dirty.add(agent)
            self._changed.add(agent)
        for agent, counts in counted.items():
            self.totals[agent].latencies.add_counts(counts)
            everyone.update(counts)
        self.all_latencies.add_counts(everyone)

    def advance(self, now_second: int) -> None:
        """Move the window to end at `now_second`: every entry of a second that left it is subtracted."""
        expired = expire(self, now_second, self.seconds)
        if not expired:
            return
        overall, everyone = self.overall, self.all_latencies
        for slot in expired:
            totals = [self.totals[agent] for agent in slot.agents]
            for at, total in enumerate(totals):
                odd = slot.odd.get(at)
                if odd is not None:
                    total.extra -= odd
                    overall.extra -= odd
                total.nanos -= slot.costs[at]
                overall.nanos -= slot.costs[at]
                total.priced -= slot.priced[at]
                total.calls -= slot.calls[at]
                total.errors -= slot.errors[at]
                overall.calls -= slot.calls[at]
            for latency, at in zip(slot.latencies, slot.owners, strict=True):
                totals[at].latencies.remove(latency)
                everyone.remove(latency)
            self._dirty.update(slot.agents)
            self._changed.update(slot.agents)
        for agent in [a for a in self._dirty if a in self.totals and self.totals[a].calls == 0]:
            del self.totals[agent]
            self._p95.pop(agent, None)
            self._dirty.discard(agent)

    def p95(self, agent: str | None) -> int | None:
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
    with the call rate but for each call's latency (4 bytes, to subtract when its second leaves). Totals
    over the whole window are kept running; shorter spans are summed on demand from the seconds."""

    def __init__(self, seconds: int = VELOCITY_SECONDS) -> None:
        self.seconds = seconds
        self.first: int | None = None
        self.slots: dict[int, dict[str | None, list]] = {}  # second -> key -> [calls, errors, latencies]
        self.totals: dict[str | None, list[int]] = {}  # key -> [calls, errors]
        self.latencies: dict[str | None, CountedLatencies] = {}

    def _entry(self, second: int, key: str | None) -> list | None:
        if self.first is not None and second < self.first:
            return None
        slot = self.slots.get(second)
        if slot is None:
            slot = self.slots[second] = {}
        entry = slot.get(key)
        if entry is None:
            entry = slot[key] = [0, 0, array("i")]
        if key not in self.totals:
            self.totals[key] = [0, 0]
            self.latencies[key] = CountedLatencies()
        return entry

    def _count(self, second: int, key: str | None, calls: int, errors: int, latencies: Sequence[int]) -> bool:
        """Add to the second's entry and the key's totals; False when the second has left the window.
        The latencies go to the entry only: the caller counts them in the key's multiset."""
        entry = self._entry(second, key)
        if entry is None:
            return False
        entry[0] += calls
        entry[1] += errors
        total = self.totals[key]
        total[0] += calls
        total[1] += errors
        entry[2].extend(latencies)
        return True

    def add(self, second: int, key: str | None, calls: int, errors: int, latencies: Sequence[int] = ()) -> None:
        if self._count(second, key, calls, errors, latencies) and latencies:
            counts = self.latencies[key]
            for latency in latencies:
                counts.add(latency)

    def add_groups(self, groups: Iterable[tuple[int, str | None, int, int, Sequence[int]]]) -> None:
        """Many (second, key, calls, errors, latencies) at once, read at start-up: each key's latencies
        counted in one go."""
        counted: dict[str | None, Counter[int]] = {}
        for second, key, calls, errors, latencies in groups:
            if self._count(second, key, calls, errors, latencies) and latencies:
                counted.setdefault(key, Counter()).update(latencies)
        for key, counts in counted.items():
            self.latencies[key].add_counts(counts)

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
