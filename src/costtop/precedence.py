"""The screen goes first: while it works on a key press or a new snapshot, the session's thread waits.

An experiment, measured and reverted (docs/performance.md): the UI raises a flag when work arrives that
a person waits for, and lowers it once the screen has been refreshed after it; the session's thread
looks at it between chunks of its own work and sleeps while it is up. The flag lowers itself after
`hold` seconds.
"""

from __future__ import annotations

import threading
import time

HOLD_SECONDS = 0.25


class Precedence:
    def __init__(self, hold: float = HOLD_SECONDS) -> None:
        self.hold = hold
        self._free = threading.Event()
        self._free.set()
        self._until = 0.0
        self.waited = 0.0

    def claim(self) -> None:
        self._until = time.monotonic() + self.hold
        self._free.clear()

    def release(self) -> None:
        self._until = 0.0
        self._free.set()

    @property
    def claimed(self) -> bool:
        return not self._free.is_set() and time.monotonic() < self._until

    def give_way(self) -> None:
        left = self._until - time.monotonic()
        if left <= 0 or self._free.is_set():
            return
        started = time.monotonic()
        self._free.wait(left)
        self.waited += time.monotonic() - started
