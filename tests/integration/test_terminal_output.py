"""What reaches the terminal: only changed cells are repainted, and the result is still right.

The app runs with a driver that keeps every byte it would send to a terminal; a VT100 emulator
(pyte) replays them. After many partial repaints, the emulated screen must equal the app's own
full render of the same moment: a stale cell left behind would be a wrong number on screen.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pyte
import pytest
from textual.drivers.headless_driver import HeadlessDriver

from appkit import fresh_snapshot, wait_for_data
from costtop.config import Settings
from costtop.demo.screenshots import NOW, static_app
from costtop.demo.static_feed import AGENTS, StaticFeed
from costtop.pricing.catalog import shipped
from costtop.session import Session
from costtop.sources.records import CallRecord
from costtop.ui.app import CosttopApp


class RecordingDriver(HeadlessDriver):
    """A headless driver that keeps what it is asked to write, as a terminal would receive it."""

    written: list[str] = []

    @property
    def is_headless(self) -> bool:
        return False  # so the app renders to the driver

    def write(self, data: str) -> None:
        RecordingDriver.written.append(data)


def emulate(size: tuple[int, int]) -> tuple[pyte.Screen, pyte.Stream]:
    screen = pyte.Screen(*size)
    return screen, pyte.Stream(screen)


@pytest.mark.parametrize("size", [(160, 50), (80, 24)], ids=lambda s: f"{s[0]}x{s[1]}")
async def test_partial_repaints_leave_the_screen_exactly_as_a_full_render(monkeypatch, size) -> None:
    monkeypatch.setattr("textual.drivers.headless_driver.HeadlessDriver", RecordingDriver)
    RecordingDriver.written = []
    clock = [NOW]
    settings = Settings(read_only=True, refresh=3600)
    app = CosttopApp(settings, Session(settings, StaticFeed(NOW), clock=lambda: clock[0], catalog=shipped()))
    screen, stream = emulate(size)
    async with app.run_test(size=size) as pilot:
        await wait_for_data(pilot)
        names = list(AGENTS)
        key = 10**6
        for step in range(12):
            # Costs that reorder the table, change single digits, and make one agent appear.
            clock[0] = NOW + timedelta(seconds=step + 1)
            rows = []
            for i, name in enumerate([*names, "late-comer"][: 8 + step // 6]):
                key += 1
                cost = Decimal(i * step % 7 + 1) / 100 if step % 3 else Decimal("0.001")
                rows.append(CallRecord(key, clock[0], name, "llm", 100 + 37 * step, "openai", "gpt-4o", 10, 5, 0,
                                       cost, "error" if (i + step) % 5 == 0 else "success"))
            app.session.submit(lambda rows=rows: app.session.engine.ingest(rows))  # on the session's thread
            await fresh_snapshot(pilot)
            await pilot.pause()
            if step == 6:
                await pilot.press("down", "down")  # the cursor moves: the rows it leaves and enters change
        await pilot.pause()
        for chunk in RecordingDriver.written:
            stream.feed(chunk)
        expected = [strip.text for strip in app.screen._compositor.render_strips()]
        partial_lines = sum(chunk.count("\x1b[") for chunk in RecordingDriver.written)
    assert partial_lines > 0
    assert [line.rstrip() for line in screen.display] == [line.rstrip() for line in expected]


async def test_unchanged_cells_are_not_sent_again(monkeypatch) -> None:
    """A refresh where one agent's figures changed rewrites part of that agent's line only."""
    monkeypatch.setattr("textual.drivers.headless_driver.HeadlessDriver", RecordingDriver)
    RecordingDriver.written = []
    app = static_app(Settings(read_only=True, refresh=3600))
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_for_data(pilot)
        await fresh_snapshot(pilot)  # once more, after the header's first layout settled the table's height
        await pilot.pause()
        table = app.screen.query_one("#agents").region
        table_top, table_end = table.y, table.bottom
        RecordingDriver.written = []
        # One call for the smallest spender: its line changes, its rank does not.
        row = CallRecord(10**7, NOW, "email-bot", "llm", 100, "openai", "gpt-4o", 10, 5, 0, Decimal("0.000001"),
                         "success")
        app.session.submit(lambda: app.session.engine.ingest([row]))
        await fresh_snapshot(pilot)
        await pilot.pause()
        sent = "".join(RecordingDriver.written)
    screen, stream = emulate((160, 50))
    stream.feed(sent)
    touched = [y for y, line in enumerate(screen.display) if line.strip() and table_top <= y < table_end]
    # The email-bot line (its calls went up by one, its last call is now) and nothing else in the table.
    assert len(touched) == 1, [screen.display[y] for y in touched]
    line = screen.display[touched[0]]
    assert line.startswith("email-bot")
    # Not the whole 160-column line: it stops after the last changed cell (the last call's age, at 109).
    assert len(line.rstrip()) < 112
