"""Which part of a time range each layer answers: day, hour and minute buckets where they are complete,
the raw rows everywhere else. Pure: the coverage and the range go in, segments come out.

A bucket is used only when it lies wholly inside what the rollup covers: from `covered_from` (when its
keeper began, or how far back the job filled it) to `complete_to` (the job's watermark; for a gateway
that keeps it in its own transactions, the read's upper bound). Everything else is read raw, so a
range gets the same figures whichever way it is cut.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

GRAINS = ("day", "hour", "minute")  # coarse to fine; the buckets table stores the first letter
RAW = "raw"


@dataclass(frozen=True, slots=True)
class Coverage:
    """Where each grain's buckets hold every row: [covered_from, complete_to), minutes from
    `minutes_from` at the earliest (older minute buckets are pruned), hours and days to `hours_to` at
    the latest (a gateway's minutes not summed into them yet)."""

    covered_from: datetime
    complete_to: datetime
    minutes_from: datetime | None = None
    hours_to: datetime | None = None

    def span(self, grain: str) -> tuple[datetime, datetime]:
        start, end = self.covered_from, self.complete_to
        if grain == "minute" and self.minutes_from is not None:
            start = max(start, self.minutes_from)
        if grain != "minute" and self.hours_to is not None:
            end = min(end, self.hours_to)
        return start, end


@dataclass(frozen=True, slots=True)
class Segment:
    grain: str  # "day", "hour", "minute" or RAW
    start: datetime
    end: datetime


def floor(moment: datetime, grain: str) -> datetime:
    """The start of the UTC bucket holding `moment`."""
    t = moment.astimezone(UTC)
    if grain == "day":
        return t.replace(hour=0, minute=0, second=0, microsecond=0)
    if grain == "hour":
        return t.replace(minute=0, second=0, microsecond=0)
    return t.replace(second=0, microsecond=0)


def ceil(moment: datetime, grain: str) -> datetime:
    """The start of the first UTC bucket at or after `moment`."""
    start = floor(moment, grain)
    if start == moment.astimezone(UTC):
        return start
    step = {"day": timedelta(days=1), "hour": timedelta(hours=1)}.get(grain, timedelta(minutes=1))
    return start + step


def segments(start: datetime, end: datetime, coverage: Coverage | None, coarsest: str = "day") -> list[Segment]:
    """[start, end) cut into bucket ranges no coarser than `coarsest`, largest first, with the rest raw.
    Adjacent raw pieces are joined into one."""
    grains = GRAINS[GRAINS.index(coarsest):]
    pieces = _cover(start.astimezone(UTC), end.astimezone(UTC), coverage, grains)
    joined: list[Segment] = []
    for piece in pieces:
        if joined and piece.grain == RAW and joined[-1].grain == RAW and joined[-1].end == piece.start:
            joined[-1] = Segment(RAW, joined[-1].start, piece.end)
        else:
            joined.append(piece)
    return joined


def _cover(lo: datetime, hi: datetime, coverage: Coverage | None, grains: tuple[str, ...]) -> list[Segment]:
    if lo >= hi:
        return []
    if coverage is None or not grains:
        return [Segment(RAW, lo, hi)]
    grain, finer = grains[0], grains[1:]
    first, last = coverage.span(grain)
    a = ceil(max(lo, first), grain)
    b = floor(min(hi, last), grain)
    if a >= b:
        return _cover(lo, hi, coverage, finer)
    return [*_cover(lo, a, coverage, finer), Segment(grain, a, b), *_cover(b, hi, coverage, finer)]
