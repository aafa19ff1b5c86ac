"""Time-bucketed sums that make the windows incremental.

The 5-minute window is kept per whole second, so "the last 300 seconds" is exact and equals
`created_at >= to_timestamp(floor(now) - 299)` in SQL. The hour is kept per whole minute.
Latencies are kept per second for the exact 95th percentile (SQL's percentile_disc(0.95)).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import Decimal

VELOCITY_SECONDS = 300
HOUR_MINUTES = 60


@dataclass(slots=True)
class Bucket:
    cost: Decimal = Decimal(0)
    priced: int = 0
    calls: int = 0
    errors: int = 0
    latencies: list[int] = field(default_factory=list)

    def add_row(self, cost: Decimal | None, error: bool, latency_ms: int | None) -> None:
        if cost is not None:
            self.cost += cost
            self.priced += 1
        self.calls += 1
        self.errors += int(error)
        if latency_ms is not None:
            self.latencies.append(latency_ms)

    def add_sum(self, cost: Decimal | None, calls: int, errors: int) -> None:
        """Sums read in bulk at start-up (no latencies: the hour window does not need them)."""
        if cost is not None:
            self.cost += cost
        self.calls += calls
        self.errors += errors


class Buckets:
    """agent -> {slot -> Bucket}, with the slots older than `keep` dropped on prune."""

    def __init__(self, keep: int) -> None:
        self.keep = keep
        self.slots: dict[int, dict[str, Bucket]] = {}

    def bucket(self, slot: int, agent: str) -> Bucket:
        per_agent = self.slots.get(slot)
        if per_agent is None:
            per_agent = self.slots[slot] = {}
        found = per_agent.get(agent)
        if found is None:
            found = per_agent[agent] = Bucket()
        return found

    def prune(self, newest: int) -> None:
        oldest = newest - self.keep + 1
        for slot in [s for s in self.slots if s < oldest]:
            del self.slots[slot]

    def window(self, first: int, last: int) -> dict[str, list[Bucket]]:
        """Buckets per agent for slots first..last inclusive."""
        out: dict[str, list[Bucket]] = {}
        for slot, per_agent in self.slots.items():
            if first <= slot <= last:
                for agent, bucket in per_agent.items():
                    out.setdefault(agent, []).append(bucket)
        return out


def percentile_disc(values: list[int], fraction: float = 0.95) -> int | None:
    """The smallest value with at least `fraction` of the values at or below it."""
    if not values:
        return None
    ordered = sorted(values)
    index = max(0, math.ceil(fraction * len(ordered)) - 1)
    return ordered[index]
