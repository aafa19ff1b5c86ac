"""The layered read's plan (rollup/plan.py): every range is cut into whole buckets the rollup holds
complete and raw pieces, which tile it exactly."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime, timedelta

from costtop.rollup.plan import RAW, Coverage, ceil, floor, segments

T0 = datetime(2026, 11, 30, 17, 23, 41, 5, tzinfo=UTC)


def check_tiling(start: datetime, end: datetime, coverage: Coverage | None, coarsest: str) -> None:
    plan = segments(start, end, coverage, coarsest)
    assert plan[0].start == start and plan[-1].end == end
    for a, b in itertools.pairwise(plan):
        assert a.end == b.start and a.start < a.end
        assert not (a.grain == RAW and b.grain == RAW)  # raw pieces joined
    allowed = ("day", "hour", "minute")[("day", "hour", "minute").index(coarsest):]
    for seg in plan:
        if seg.grain == RAW:
            continue
        assert seg.grain in allowed
        assert floor(seg.start, seg.grain) == seg.start and floor(seg.end, seg.grain) == seg.end
        assert coverage is not None
        first, last = coverage.span(seg.grain)
        assert first <= seg.start and seg.end <= last


def test_random_ranges_tile_exactly() -> None:
    rng = random.Random(5)
    for _ in range(3000):
        start = T0 + timedelta(seconds=rng.uniform(-40 * 86400, 0))
        end = start + timedelta(seconds=rng.choice((30, 3600, 86400, 40 * 86400)) * rng.random() + 1)
        covered_from = T0 + timedelta(seconds=rng.uniform(-60 * 86400, 0))
        complete_to = covered_from + timedelta(seconds=rng.uniform(0, 60 * 86400))
        minutes = covered_from + timedelta(seconds=rng.uniform(0, 20 * 86400)) if rng.random() < 0.5 else None
        coverage = Coverage(covered_from, complete_to, minutes) if rng.random() < 0.9 else None
        check_tiling(start, end, coverage, rng.choice(("day", "hour", "minute")))


def test_a_day_is_read_from_hours_then_minutes_then_rows() -> None:
    day = floor(T0, "day")
    mark = floor(T0 - timedelta(minutes=5), "minute")
    plan = segments(day, T0, Coverage(day - timedelta(days=3), mark), "hour")
    assert [(s.grain, s.start, s.end) for s in plan] == [
        ("hour", day, floor(mark, "hour")), ("minute", floor(mark, "hour"), mark), (RAW, mark, T0)]


def test_no_rollup_is_one_raw_read() -> None:
    assert [s.grain for s in segments(T0 - timedelta(days=2), T0, None)] == [RAW]


def test_coverage_that_starts_mid_hour_reads_the_partial_hour_raw() -> None:
    began = T0 - timedelta(hours=5)  # 12:23:41: minutes from 12:24, hours from 13:00
    plan = segments(T0 - timedelta(days=1), T0, Coverage(began, T0 + timedelta(hours=1)), "day")
    assert plan[0].grain == RAW and plan[0].end == ceil(began, "minute")
    assert plan[1].grain == "minute" and plan[1].end == ceil(began, "hour")
    assert plan[2].grain == "hour"


def test_pruned_minutes_are_read_raw() -> None:
    day = floor(T0, "day")
    plan = segments(day, T0, Coverage(day - timedelta(days=9), T0, minutes_from=T0 + timedelta(days=1)), "minute")
    assert {s.grain for s in plan} == {RAW}


def test_the_header_note_names_what_start_up_read_one_by_one() -> None:
    from costtop.rollup.read import Source, rollup_note

    day = floor(T0, "day")
    raw = segments(day - timedelta(days=1), T0, None)
    assert "no rollup" in (rollup_note(None, None, raw, 900) or "")
    behind = Source(1, "job", day - timedelta(days=9), T0 - timedelta(hours=2), None)
    late = [s for s in segments(day, T0, behind.coverage(T0), "hour") if s.grain == RAW]
    assert "complete to 15:23 UTC" in (rollup_note(behind, None, late, 900) or "")
    gateway = Source(2, "gateway", T0 - timedelta(hours=3), None, None, floor(T0, "hour"))
    late = [s for s in segments(day, T0, gateway.coverage(T0), "hour") if s.grain == RAW]
    assert "since 2026-11-30 14:23 UTC" in (rollup_note(gateway, None, late, 900) or "")
    current = Source(1, "job", day - timedelta(days=9), floor(T0 - timedelta(minutes=5), "minute"), None)
    late = [s for s in segments(day, T0, current.coverage(T0), "hour") if s.grain == RAW]
    assert rollup_note(current, None, late, 900) is None
