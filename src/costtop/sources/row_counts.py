"""Counting what the live reads took, so a full resynchronisation can say what they had missed.

A row that commits later than the lateness horizon is not found by the live reads; the next full read
(a new baseline) counts it. To say how many such rows there were, the reader keeps the number of rows
it counted per minute (the last few hours) and per hour (two days), and holds them against the new
baseline's own counts for the stretches that lie wholly before the horizon: whatever the baseline has
more of there arrived too late to be read live.
"""

from __future__ import annotations

import math

MINUTE_MEMORY = 180  # minutes of per-minute counts kept
HOUR_MEMORY = 48  # hours of per-hour counts kept


class RowCounts:
    """Rows counted per epoch minute and hour since one baseline's snapshot, that baseline included."""

    def __init__(self, minutes_from: int, hours_from: int, complete: bool = True) -> None:
        self.minutes: dict[int, int] = {}
        self.hours: dict[int, int] = {}
        self.minutes_from = minutes_from  # the first minute whose count is complete
        self.hours_from = hours_from  # the first hour whose count is complete
        self.complete = complete  # False: only the rows taken since a snapshot whose sums are not in

    def add(self, moment: float) -> None:
        minute = int(moment // 60)
        self.minutes[minute] = self.minutes.get(minute, 0) + 1
        hour = minute // 60
        self.hours[hour] = self.hours.get(hour, 0) + 1

    def merge(self, other: RowCounts) -> None:
        self.add_found(other.minutes, other.hours)

    def add_found(self, minutes: dict[int, int], hours: dict[int, int]) -> None:
        for table, found in ((self.minutes, minutes), (self.hours, hours)):
            for bucket, n in found.items():
                table[bucket] = table.get(bucket, 0) + n

    def trim(self) -> None:
        for table, keep in ((self.minutes, MINUTE_MEMORY), (self.hours, HOUR_MEMORY)):
            if len(table) > keep:
                for old in sorted(table)[:-keep]:
                    del table[old]

    def missed(self, newer: RowCounts, now: float, horizon: float) -> int:
        """Rows `newer` (a later baseline's counts) holds in minutes and hours that ended before the
        horizon began and that these counts cover, but these counts did not hold."""
        cut = now - horizon
        cut_minute, cut_hour = math.floor(cut / 60), math.floor(cut / 3600)
        total = 0
        for minute, n in newer.minutes.items():
            if self.minutes_from <= minute < cut_minute and minute >= newer.minutes_from:
                total += max(0, n - self.minutes.get(minute, 0))
        minute_hour = newer.minutes_from // 60  # hours from here on are compared minute by minute
        for hour, n in newer.hours.items():
            if self.hours_from <= hour < min(cut_hour, minute_hour):
                total += max(0, n - self.hours.get(hour, 0))
        return total
