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
