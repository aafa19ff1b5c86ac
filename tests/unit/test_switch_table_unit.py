"""The switch panel's rows and who / why widths, remembered between shows: they must equal what a fresh
computation over every switch gives, whatever changed."""

from __future__ import annotations

import random
from datetime import UTC, datetime

from costtop.engine.snapshot import KillCheck
from costtop.sources.records import SwitchKind, SwitchRecord
from costtop.ui.widgets.switch_table import OriginWidths, SwitchTable, origin_widths, switch_columns

VALUES = [None, "costtop:ops:runaway", "gateway:auto:budget spent", "just a reason", "a:b",
          "cli:" + "w" * 60 + ":" + "why " * 40, "x:\x1b[31mred\x1b[0m:\u200bhidden", "", "::"]


def switch(i: int, value: str | None, kind: SwitchKind = SwitchKind.KILL) -> SwitchRecord:
    return SwitchRecord(f"{kind.value}:agent:a{i}", kind, "agent", f"a{i}", value, None)


def check(key: str, violations: int = 0) -> KillCheck:
    return KillCheck(key, "agent", key.rsplit(":", 1)[1], datetime(2026, 1, 1, tzinfo=UTC), False, None, violations)


def test_origin_widths_follow_the_switches_through_random_changes() -> None:
    rng = random.Random(17)
    cache = OriginWidths()
    switches: list[SwitchRecord] = []
    for step in range(200):
        if rng.random() < 0.5 or not switches:
            switches.append(switch(step, rng.choice(VALUES)))
        else:
            switches.pop(rng.randrange(len(switches)))
        assert cache.widest(switches) == origin_widths(switches)
    assert cache.widest([]) == origin_widths([]) == (3, 3)


def test_a_flood_of_one_value_is_measured_once() -> None:
    flood = [switch(i, "gateway:auto:runaway loop") for i in range(5000)]
    cache = OriginWidths()
    assert cache.widest(flood) == origin_widths(flood[:1])
    assert list(cache._by_value) == ["gateway:auto:runaway loop"]


def test_the_cache_forgets_values_long_gone() -> None:
    cache = OriginWidths()
    for i in range(3000):
        cache.widest([switch(i, f"cli:ops:reason {i}")])
    assert len(cache._by_value) <= 2 + 1024
    assert cache.widest([switch(0, "cli:ops:x")]) == origin_widths([switch(0, "cli:ops:x")])


def test_the_columns_size_who_and_why_to_the_widest_up_to_the_caps() -> None:
    short = [switch(0, "a:b:c")]
    assert [c[2] for c in switch_columns(origin_widths(short), True, 20)] == [20, 8, 9, 5, 3, 11]
    long = [switch(0, "cli:" + "w" * 60 + ":" + "y" * 300)]
    assert [c[2] for c in switch_columns(origin_widths(long), False, 20)] == [20, 9, 40, 120, 11]


def test_rows_pair_each_switch_with_its_check_and_are_kept_while_the_snapshot_has_the_same() -> None:
    table = SwitchTable()
    switches = (switch(1, "a:b:c"), switch(2, None), switch(3, "z", SwitchKind.THROTTLE))
    checks = (check(switches[1].key, 4), check(switches[0].key))
    rows = table.pair(switches, checks)
    assert rows == [(switches[0], checks[1]), (switches[1], checks[0]), (switches[2], None)]
    assert table.pair(switches, checks) is rows  # the same objects: nothing made again
    assert table._who_why == origin_widths(switches)
    fewer = switches[1:]
    newer = (check(switches[1].key, 5),)
    rows = table.pair(fewer, newer)
    assert rows == [(fewer[0], newer[0]), (fewer[1], None)]
    assert table._who_why == origin_widths(fewer)
    assert table.pair(fewer, ()) == [(fewer[0], None), (fewer[1], None)]
    assert table.pair((), ()) == [] and table._who_why == (3, 3)
    assert list(table.keys_of(rows)) == [table.key_of(row) for row in rows]
