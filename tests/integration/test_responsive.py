"""The UI loop stays free while the session reads: keys are answered in the middle of a long read.

A feed for 10,000 agents whose row read is pure CPU work (as decoding a large read is) and lasts until
the test lets it end. A key pressed during that read must be answered before it ends: when reading ran
on the UI's event loop the key waited for the whole read. No timing: the test holds the read open and
checks the order of events.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from datetime import UTC, datetime
from decimal import Decimal

from appkit import wait_until
from costtop.config import OPTIONAL_COLUMNS, REQUIRED_COLUMNS, Settings
from costtop.demo.static_feed import StaticFeed
from costtop.session import Session
from costtop.sources.records import (
    Baseline,
    CallRecord,
    DayAggregate,
    GatewayCounters,
    RedisState,
    SpendHistory,
)
from costtop.ui.app import CosttopApp
from costtop.ui.screens.help import HelpScreen

AGENTS = 10_000
HOLD_SECONDS = 20.0
NOW = datetime.now(UTC).replace(microsecond=0)


class HeldReadFeed(StaticFeed):
    """10,000 agents; each row read builds rows (CPU, holding the interpreter as decoding does) until
    `release` is set, then returns them."""

    def __init__(self) -> None:
        super().__init__(NOW, read_only=True)
        self.agents = [f"agent-{i:05d}" for i in range(AGENTS)]
        self.release = threading.Event()
        self.hold = threading.Event()  # the test sets it: the next read is held
        self.reading = threading.Event()
        self.held_reads = 0  # held reads begun
        self.reads_done = 0
        self.key = 0

    async def read_redis(self) -> RedisState:
        return RedisState((), {}, None, None)

    async def read_counters(self, day: str) -> GatewayCounters:
        return GatewayCounters(day, {}, None)

    async def connect_postgres(self) -> frozenset[str]:
        return frozenset((*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS))

    async def baseline(self, now: datetime) -> Baseline:
        day = now.strftime("%Y-%m-%d")
        days = tuple(DayAggregate(a, day, Decimal(i % 997) / 100, 10, 10, 0, 1000, 0)
                     for i, a in enumerate(self.agents))
        return Baseline(day, days, Decimal(0), day[:7], (), ())

    async def spend_history(self, day: str) -> SpendHistory:
        return SpendHistory(day, 7, ())

    async def new_rows(self) -> list[CallRecord]:
        rows: deque[CallRecord] = deque(maxlen=20_000)  # a large read's rows, all ingested
        held = self.hold.is_set()
        self.hold.clear()
        self.reading.set()
        self.held_reads += held
        held_until = time.monotonic() + (HOLD_SECONDS if held else 0.05)  # bounded: a stuck UI fails, not hangs
        while not self.release.is_set() and time.monotonic() < held_until:  # no await: its loop is held
            self.key += 1
            rows.append(CallRecord(self.key, datetime.now(UTC), self.agents[self.key % AGENTS], "llm", 100,
                                   "p0", "m0", 100, 10, 0, Decimal("0.001"), "success"))
        self.reading.clear()
        self.reads_done += 1
        self.release.clear()
        return list(rows)


async def test_keys_are_answered_while_a_read_holds_the_session() -> None:
    feed = HeldReadFeed()
    settings = Settings(read_only=True, refresh=0.5)
    app = CosttopApp(settings, Session(settings, feed))
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: app.snapshot is not None and len(app.snapshot.agents) == AGENTS, timeout=60)
        feed.hold.set()
        await wait_until(pilot, lambda: feed.held_reads == 1, timeout=60)
        reads = feed.reads_done  # the held read's is not done yet
        await pilot.press("question_mark")
        await wait_until(pilot, lambda: isinstance(app.screen, HelpScreen), timeout=30)
        # Answered, and the read it came during is still going on.
        assert feed.reading.is_set() and feed.reads_done == reads
        await pilot.press("escape")
        await wait_until(pilot, lambda: not isinstance(app.screen, HelpScreen), timeout=30)
        assert feed.reading.is_set() and feed.reads_done == reads
        feed.release.set()
        await wait_until(pilot, lambda: feed.reads_done > reads, timeout=30)
        # The sort key acts through the session: it shows once the session has looked at it.
        await pilot.press("s")
        await wait_until(pilot, lambda: app.snapshot is not None and app.snapshot.sort.value != "$/min", timeout=30)
        await pilot.press("q")
    assert not app.is_running
