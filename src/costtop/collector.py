"""The garbage collector with a big heap: a day of 100,000 agents is millions of long-lived objects.

A full collection walks every tracked object with the interpreter lock held, so it stops the UI's
thread as well as the session's: 0.14 s at 100,000 agents, 1.5 s at 1,000,000 (measured on the bare
engine), and with CPython's default thresholds it came every few seconds at 100,000 agents (the
young objects of each second's rows and snapshots keep meeting its 25 % rule). Two measures:

- `space_full_collections`: a full collection only after 1,000 collections of the middle generation
  instead of 10 (every few minutes at 10,000 calls/s rather than every few seconds). Young
  collections are unchanged, and reference cycles are still freed, later.
- `Settler`: after a big read (the day's sums, the week's history) or once the fleet has grown by a
  quarter, the objects alive then are frozen (`gc.freeze`): full collections skip them. They are still
  freed by reference counting when nothing refers to them; only a reference cycle among them would stay
  until exit, so small fleets (below FREEZE_AGENTS) are never frozen.
"""

from __future__ import annotations

import gc

FREEZE_AGENTS = 10_000  # from this many agents a full collection is long enough to freeze for
FULL_COLLECTION_EVERY = 1_000  # collections of the middle generation between two full ones (CPython: 10)


def space_full_collections() -> None:
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, FULL_COLLECTION_EVERY)


class Settler:
    """When to freeze: after a big read, or when the agents grew by a quarter since the last freeze."""

    def __init__(self) -> None:
        self.frozen_at = 0  # agents at the last freeze

    def settle(self, agents: int, big_read: bool = False) -> bool:
        """Freeze now if it is time; True when it did."""
        if agents < FREEZE_AGENTS or not (big_read or agents > self.frozen_at * 1.25):
            return False
        gc.freeze()
        self.frozen_at = agents
        return True
