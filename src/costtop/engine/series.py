"""Spend over time, in buckets: the velocity chart's minutes and hours, each agent's recent minutes.

Buckets are whole UTC minutes or hours (epoch seconds // size), filled from the start-up sums and
then row by row; old buckets are dropped as time moves, so memory stays flat however long it runs.
"""

from __future__ import annotations

from decimal import Decimal


class CostSeries:
    """The fleet's spend per bucket over the last `buckets` buckets of `size` seconds."""

    def __init__(self, size: int, buckets: int) -> None:
        self.size = size
        self.buckets = buckets
        self.costs: dict[int, Decimal] = {}

    def add(self, bucket: int, cost: Decimal | None) -> None:
        if cost is not None:
            self.costs[bucket] = self.costs.get(bucket, Decimal(0)) + cost

    def add_at(self, second: int, cost: Decimal | None) -> None:
        self.add(second // self.size, cost)

    def values(self, now_s: int) -> tuple[Decimal, ...]:
        """Oldest first; the last bucket is the current, partial one."""
        last = now_s // self.size
        first = last - self.buckets + 1
        for old in [b for b in self.costs if b < first]:
            del self.costs[old]
        return tuple(self.costs.get(b, Decimal(0)) for b in range(first, last + 1))


class AgentTrends:
    """Each agent's spend per minute over the last `minutes` minutes, for the table's trend column."""

    def __init__(self, minutes: int = 10) -> None:
        self.minutes = minutes
        self.by_minute: dict[int, dict[str, Decimal]] = {}

    def add(self, minute: int, agent: str, cost: Decimal | None) -> None:
        if cost is None:
            return
        slot = self.by_minute.setdefault(minute, {})
        slot[agent] = slot.get(agent, Decimal(0)) + cost

    def advance(self, now_minute: int) -> None:
        for old in [m for m in self.by_minute if m <= now_minute - self.minutes]:
            del self.by_minute[old]

    def slots(self, now_minute: int) -> list[dict[str, Decimal]]:
        """The last minutes' per-agent sums, oldest first: an agent's trend is its value in each."""
        empty: dict[str, Decimal] = {}
        return [self.by_minute.get(m, empty) for m in range(now_minute - self.minutes + 1, now_minute + 1)]
