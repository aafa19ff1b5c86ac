"""The unit half of tests/integration/test_late_rows.py: the tests that need no server and no app."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from costtop.engine.engine import Engine
from costtop.sources.dedup import SeenSeconds
from costtop.sources.records import Baseline, CallRecord
from costtop.sources.row_counts import RowCounts
from test_sources_postgres import NO_REDIS


def test_today_is_cut_at_utc_midnight_by_the_clock_not_by_a_row() -> None:
    """The engine's day only ever moves with the clock: a row of tomorrow (within the skew, at
    midnight) neither rolls the day nor joins today's spend."""
    engine = Engine(columns=("cost_usd",))
    engine.load(Baseline("2026-11-30", (), Decimal(0), "2026-11", (), ()))
    midnight = datetime(2026, 12, 1, tzinfo=UTC)
    engine.ingest([CallRecord(1, midnight - timedelta(seconds=30), "a", "llm", 10, cost_usd=Decimal("1")),
                   CallRecord(2, midnight + timedelta(seconds=30), "a", "llm", 10, cost_usd=Decimal("4"))])
    assert engine.day == "2026-11-30"
    snap = engine.snapshot(midnight - timedelta(seconds=10), NO_REDIS)
    assert snap.header.spend_today == Decimal("1")


def test_seen_seconds_pack_and_tell_counts() -> None:
    seen = SeenSeconds()
    for i in range(50):
        assert seen.add(100 + i % 5, ("key", i))
    assert not seen.add(100, ("key", 0))
    seen.pack_before(103)
    assert seen.count(100) == 10 and seen.count(104) == 10
    assert not seen.add(101, ("key", 1))  # found in a packed second
    assert seen.add(101, ("key", 999))
    assert seen.count(101) == 11
    seen.forget_before(102)
    assert seen.count(100) == 0 and len(seen) == 30


def test_row_counts_say_what_a_later_count_found_before_the_horizon() -> None:
    old = RowCounts(minutes_from=1000, hours_from=10)
    for moment in (1000 * 60 + 5, 1001 * 60 + 5, 11 * 3600 + 1):
        old.add(moment)
    new = RowCounts(minutes_from=1000, hours_from=10)
    new.add_found({1000: 3, 1001: 1, 1002: 9}, {11: 2, 16: 13})
    # Minutes 1000 and 1001 lie before the horizon (now = minute 1010); minute 1002 too; hour 11 is
    # wholly before the first minute counted (1000 // 60 = 16), hour 16 is compared minute by minute.
    assert new.missed(new, 1010 * 60, 60) == 0
    assert old.missed(new, 1010 * 60, 60) == (3 - 1) + 0 + 9 + (2 - 1)
