"""When costtop freezes its heap, and how it spaces full collections (collector.py)."""

from __future__ import annotations

import gc

from costtop.collector import FREEZE_AGENTS, FULL_COLLECTION_EVERY, Settler, space_full_collections


def test_a_big_fleet_is_frozen_after_a_big_read_or_a_quarter_more_agents_and_a_small_one_never() -> None:
    gc.unfreeze()
    settler = Settler()
    try:
        assert not settler.settle(FREEZE_AGENTS - 1, big_read=True) and gc.get_freeze_count() == 0
        assert settler.settle(FREEZE_AGENTS) and gc.get_freeze_count() > 0
        assert not settler.settle(int(FREEZE_AGENTS * 1.2))  # not a quarter more yet
        assert settler.settle(int(FREEZE_AGENTS * 1.3))
        assert settler.settle(int(FREEZE_AGENTS * 1.3), big_read=True)  # the day's sums came in
    finally:
        gc.unfreeze()


def test_full_collections_are_spaced_and_young_ones_kept() -> None:
    before = gc.get_threshold()
    try:
        space_full_collections()
        assert gc.get_threshold() == (before[0], before[1], FULL_COLLECTION_EVERY)
    finally:
        gc.set_threshold(*before)
