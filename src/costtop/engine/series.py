"""Spend over time, in buckets: the velocity chart's minutes and hours, each agent's recent ones.

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

    def advance(self, now_s: int) -> None:
        """Drop the buckets older than the series' span at `now_s`."""
        first = now_s // self.size - self.buckets + 1
        for old in [b for b in self.costs if b < first]:
            del self.costs[old]

    def values(self, now_s: int) -> tuple[Decimal, ...]:
        """Oldest first; the last bucket is the current, partial one."""
        last = now_s // self.size
        costs, zero = self.costs, Decimal(0)
        return tuple(costs.get(b, zero) for b in range(last - self.buckets + 1, last + 1))


class AgentSeries:
    """Each agent's spend per bucket over the last `buckets` buckets: minutes for the table's trend
    column, clock hours for the hour-over-hour anomaly. A bucket is a whole minute or hour number."""

    def __init__(self, buckets: int = 10) -> None:
        self.buckets = buckets
        self.by_bucket: dict[int, dict[str, Decimal]] = {}

    def add(self, bucket: int, agent: str, cost: Decimal | None) -> None:
        if cost is None:
            return
        slot = self.by_bucket.setdefault(bucket, {})
        slot[agent] = slot.get(agent, Decimal(0)) + cost

    def advance(self, now_bucket: int) -> None:
        for old in [b for b in self.by_bucket if b <= now_bucket - self.buckets]:
            del self.by_bucket[old]

    def slots(self, now_bucket: int) -> list[dict[str, Decimal]]:
        """The last buckets' per-agent sums, oldest first: an agent's series is its value in each."""
        empty: dict[str, Decimal] = {}
        return [self.by_bucket.get(b, empty) for b in range(now_bucket - self.buckets + 1, now_bucket + 1)]
