"""Watermarks and de-duplication for incremental reads, with a lateness horizon.

Gateways commit rows late: a batching gateway (LiteLLM flushes its spend log every 10-60 s) stamps a
row with the call's start and commits it much later, and a long transaction commits rows whose
created_at is minutes old. Every row committed up to `max_lateness` seconds after its created_at must
still be counted, once.

- With an integer id (bigserial) a late row still gets a new id, so `id > high` finds it; an id that
  is missing below `high` belongs to a transaction in flight and is asked for until it arrives or the
  horizon passes (`IdWatermark`).
- Without one, reads go by created_at. Each refresh re-reads a short overlap before the newest row
  (cheap, and it catches rows committed a few seconds out of order). Rows later than that are found by
  comparing, at a slower cadence, the table's per-second counts over the horizon with the counts of
  rows already taken (`SeenSeconds`), and re-reading only the seconds that differ: the keys of what was
  taken are what makes that re-read exact.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from costtop.sources.records import CallRecord

OVERLAP_SECONDS = 5.0  # each read goes back this far before the newest row it has seen
PACK_AFTER = 30  # seconds behind the newest row whose keys are packed from a set into an array


def epoch_second(moment: datetime) -> int:
    return math.floor(moment.timestamp())


def as_utc(moment: datetime) -> datetime:
    """A timestamp from Postgres as an aware UTC datetime. asyncpg returns `infinity` and `-infinity`
    as naive `datetime.max` and `datetime.min` even from a timestamptz: compared with the clock as they
    are, they raise."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


class SeenSeconds:
    """The keys of rows already taken, per whole second of created_at, for the lateness horizon.

    Recent seconds keep a set, since every refresh's overlap re-read looks rows up in them; older
    seconds are packed into arrays of 8-byte key hashes (a hash is exact enough within one second,
    where a few thousand keys meet 2**64 values), so 600,000 rows of a 5-minute horizon at 2,000
    calls/s take about 5 MB. A packed second is unpacked only when a late row is looked for in it."""

    __slots__ = ("packed", "recent")

    def __init__(self) -> None:
        self.recent: dict[int, set[int]] = {}
        self.packed: dict[int, array] = {}

    def add(self, second: int, key: object) -> bool:
        """Record a key; False when it was there already."""
        digest = hash(key)
        bucket = self.recent.get(second)
        if bucket is None:
            packed = self.packed.pop(second, None)
            bucket = self.recent[second] = set(packed) if packed is not None else set()
        if digest in bucket:
            return False
        bucket.add(digest)
        return True

    def has(self, second: int, key: object) -> bool:
        bucket = self.recent.get(second)
        if bucket is not None:
            return hash(key) in bucket
        packed = self.packed.get(second)
        if packed is None:
            return False
        bucket = self.recent[second] = set(packed)  # looked up again soon: kept as a set until tidied
        del self.packed[second]
        return hash(key) in bucket

    def count(self, second: int) -> int:
        bucket = self.recent.get(second)
        if bucket is not None:
            return len(bucket)
        packed = self.packed.get(second)
        return len(packed) if packed is not None else 0

    def pack_before(self, second: int) -> None:
        for old in [s for s in self.recent if s < second]:
            self.packed[old] = array("q", self.recent.pop(old))

    def forget_before(self, second: int) -> None:
        for table in (self.recent, self.packed):
            for old in [s for s in table if s < second]:
                del table[old]

    def __len__(self) -> int:
        return sum(map(len, self.recent.values())) + sum(map(len, self.packed.values()))


class Watermark:
    """Reads by created_at: `created_at >= read_from`, each row returned once, and the keys of the
    last `horizon` seconds kept so a late row can be told from one already counted."""

    def __init__(self, start: datetime, horizon_seconds: float, overlap_seconds: float = OVERLAP_SECONDS) -> None:
        self.high = start
        self.overlap = timedelta(seconds=overlap_seconds)
        self.horizon = horizon_seconds
        self.seen = SeenSeconds()
        # The start-up snapshot's keys over the horizon arrive with the day's sums: until then the
        # seconds before the overlap cannot be compared, and no late-row check runs.
        self.complete = False

    @property
    def read_from(self) -> datetime:
        """Where the next incremental read starts."""
        return self.high - self.overlap

    def mark_seen(self, keys: Iterable[tuple[object, datetime]]) -> None:
        """Rows already counted another way (in the baseline's sums) that a re-read may return."""
        for key, created_at in keys:
            self.seen.add(epoch_second(created_at), key)

    def accept(self, rows: Iterable[CallRecord], now: datetime | None = None) -> list[CallRecord]:
        """The rows not seen before; advances the watermark (rows come bounded by the clock, so the
        data cannot move it into the future) and forgets keys behind the horizon."""
        fresh: list[CallRecord] = []
        for row in rows:
            if not self.seen.add(epoch_second(row.created_at), row.key):
                continue
            fresh.append(row)
            if row.created_at > self.high:
                # Never past the clock: a row dated a minute ahead (within the skew) would otherwise
                # start the next reads after every row written meanwhile.
                self.high = row.created_at if now is None else min(row.created_at, now)
        self.tidy(now)
        return fresh

    def tidy(self, now: datetime | None) -> None:
        newest = epoch_second(self.high)
        self.seen.pack_before(newest - PACK_AFTER)
        clock = epoch_second(now) if now is not None else newest
        self.seen.forget_before(min(newest, clock) - math.ceil(self.horizon) - 1)

    def behind(self, counts: Iterable[tuple[int, int]]) -> list[int]:
        """The seconds where the table holds more rows than were taken: late rows are there."""
        return sorted(second for second, n in counts if n > self.seen.count(second))

    def __len__(self) -> int:
        return len(self.seen)


class IdWatermark:
    """For a table with an integer id (bigserial): read `id > high`, plus the ids below `high` that
    were missing when last read. A missing id is a transaction still in flight (or rolled back); it is
    asked for again until it arrives or `lifetime` seconds (the lateness horizon) pass. Each read
    returns only new rows, so the work per refresh is the rows written since the last one.
    """

    def __init__(self, high: int, gaps: Iterable[int], now: float, lifetime: float,
                 max_gaps: int = 50_000) -> None:
        self.high = high
        self.first_high = high  # where the start-up snapshot's ids ended
        self.lifetime = lifetime
        self.max_gaps = max_gaps
        self._gaps: dict[int, float] = {gap: now + lifetime for gap in gaps}

    def add_gaps(self, gaps: Iterable[int], now: float) -> None:
        """Ids found missing after the start (deeper below it), asked for like the others."""
        for gap in gaps:
            if len(self._gaps) >= self.max_gaps:
                break
            self._gaps.setdefault(gap, now + self.lifetime)

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
