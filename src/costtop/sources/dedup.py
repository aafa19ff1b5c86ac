"""Watermark and de-duplication for incremental reads.

Rows can commit out of order (a transaction that began earlier commits later with an earlier
created_at), so each read goes back `overlap` seconds before the watermark, and rows already seen
are dropped here. Memory stays bounded: only keys newer than the re-read horizon are kept.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from costtop.sources.records import CallRecord


class Watermark:
    def __init__(self, start: datetime, overlap_seconds: float) -> None:
        self.high = start
        self.overlap = timedelta(seconds=overlap_seconds)
        self._seen: dict[object, datetime] = {}

    @property
    def read_from(self) -> datetime:
        """Where the next incremental read starts."""
        return self.high - self.overlap

    def mark_seen(self, keys: Iterable[tuple[object, datetime]]) -> None:
        """Rows already counted another way (in the baseline's sums) that a re-read may return."""
        for key, created_at in keys:
            self._seen[key] = created_at

    def accept(self, rows: Iterable[CallRecord]) -> list[CallRecord]:
        """The rows not seen before; advances the watermark and forgets keys behind the horizon."""
        fresh: list[CallRecord] = []
        for row in rows:
            if row.key in self._seen:
                continue
            self._seen[row.key] = row.created_at
            fresh.append(row)
            if row.created_at > self.high:
                self.high = row.created_at
        horizon = self.read_from
        self._seen = {k: t for k, t in self._seen.items() if t >= horizon}
        return fresh

    def __len__(self) -> int:
        return len(self._seen)


class IdWatermark:
    """For a table with an integer id (bigserial): read `id > high`, plus the ids below `high` that
    were missing when last read. A missing id is a transaction still in flight (or rolled back); it is
    asked for again until it arrives or `lifetime` seconds pass. Each read returns only new rows, so
    the work per refresh is the rows written since the last one, with no overlap to re-read.
    """

    def __init__(self, high: int, gaps: Iterable[int], now: float, lifetime: float,
                 max_gaps: int = 50_000) -> None:
        self.high = high
        self.lifetime = lifetime
        self.max_gaps = max_gaps
        self._gaps: dict[int, float] = {gap: now + lifetime for gap in gaps}

    def params(self) -> tuple[int, list[int]]:
        return self.high, list(self._gaps)

    def accept(self, rows: Iterable[CallRecord], now: float) -> list[CallRecord]:
        fresh: list[CallRecord] = []
        seen: set[int] = set()
        top = self.high
        for row in rows:
            key = int(row.key)  # type: ignore[call-overload]
            if key > self.high or self._gaps.pop(key, None) is not None:
                fresh.append(row)
                seen.add(key)
                top = max(top, key)
        if top > self.high:
            first_gap = max(self.high + 1, top - self.max_gaps)
            for missing in range(first_gap, top):
                if missing not in seen:
                    self._gaps[missing] = now + self.lifetime
            self.high = top
        self._gaps = {gap: until for gap, until in self._gaps.items() if until > now}
        if len(self._gaps) > self.max_gaps:
            self._gaps = dict(sorted(self._gaps.items())[-self.max_gaps:])
        return fresh

    def __len__(self) -> int:
        return len(self._gaps)
