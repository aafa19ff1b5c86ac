"""What reaches the terminal: only changed cells are sent, and the result is still right.

The app runs with a driver that keeps every byte it would send to a terminal; a VT100 emulator
(pyte, tests/unit/vt_screen.py) replays them. After many partial repaints, screen changes and a
resize, every cell the emulator shows (its character and its look) must equal a full repaint of the
same moment: by the same app, and by a new app given the same snapshot, which has none of the first
one's caches. A stale cell left behind would be a wrong number on screen.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from textual.drivers.headless_driver import HeadlessDriver

from appkit import fresh_snapshot, wait_for_data, wait_until
from costtop.config import Settings
from costtop.demo.screenshots import NOW, static_app
from costtop.demo.static_feed import AGENTS, StaticFeed
from costtop.pricing.catalog import shipped
from costtop.session import Session
from costtop.sources.records import CallRecord
from costtop.ui.app import CosttopApp
from costtop.ui.widgets.agent_table import AgentTable
from vt_screen import Terminal, differences, full_repaint


class RecordingDriver(HeadlessDriver):
    """A headless driver that keeps what it is asked to write, as a terminal would receive it."""

    written: list[str] = []

    @property
    def is_headless(self) -> bool:
        return False  # so the app renders to the driver

    def write(self, data: str) -> None:
        RecordingDriver.written.append(data)


def repainted(app: CosttopApp, size: tuple[int, int]) -> Terminal:
    """The app's screen now, written whole (as Textual writes a full repaint) to a fresh terminal."""
    return Terminal(*size).feed(full_repaint(app.screen._compositor.render_strips(), app.console))


WIDE_AGENT = "研究-bot"  # double-width characters in a name: two cells each


@pytest.mark.parametrize("size", [(160, 50), (80, 24)], ids=lambda s: f"{s[0]}x{s[1]}")
async def test_partial_repaints_leave_the_screen_exactly_as_a_full_render(monkeypatch, size) -> None:
    monkeypatch.setattr("textual.drivers.headless_driver.HeadlessDriver", RecordingDriver)
    RecordingDriver.written = []
    clock = [NOW]
    settings = Settings(read_only=True, refresh=3600)
    app = CosttopApp(settings, Session(settings, StaticFeed(NOW), clock=lambda: clock[0], catalog=shipped()))
    async with app.run_test(size=size) as pilot:
        await wait_for_data(pilot)
        names = [*AGENTS, WIDE_AGENT, "late-comer"]
        key = 10**6
        for step in range(14):
            # Costs that reorder the table, change single digits, make agents appear (one with a
            # double-width name); between them, what a person does: help, an agent's screen, a
            # narrower terminal, pause.
            clock[0] = NOW + timedelta(seconds=step + 1)
            rows = []
            for i, name in enumerate(names[: 8 + step // 4]):
                key += 1
                cost = Decimal(i * step % 7 + 1) / 100 if step % 3 else Decimal("0.001")
                rows.append(CallRecord(key, clock[0], name, "llm", 100 + 37 * step, "openai", "gpt-4o", 10, 5, 0,
                                       cost, "error" if (i + step) % 5 == 0 else "success"))
            app.session.submit(lambda rows=rows: app.session.engine.ingest(rows))  # on the session's thread
            await fresh_snapshot(pilot)
            await pilot.pause()
            if step == 3:
                await pilot.press("question_mark")
            elif step == 4:
                await pilot.press("escape")
            elif step == 5:
                await pilot.press("down", "down")  # the cursor moves: the rows it leaves and enters change
            elif step == 6:
                await pilot.press("enter")  # the agent's screen, over the main one
            elif step == 7:
                await pilot.press("escape")
            elif step == 8:
                await pilot.resize_terminal(size[0] - 17, size[1] - 5)
            elif step == 9:
                await pilot.resize_terminal(*size)
            elif step in (10, 11):
                await pilot.press("p")  # paused (a banner), then live again
            await pilot.pause()
        await pilot.pause()
        shown = Terminal(*size).feed(RecordingDriver.written)
        want = repainted(app, size)
        snap, selected = app.snapshot, app.screen.query_one(AgentTable).selected_key
    assert snap is not None and selected is not None
    assert WIDE_AGENT in "".join(shown.text())
    assert shown.cells() == want.cells(), differences(shown.cells(), want.cells())

    # A new app, given the same snapshot and the same selected agent, drawn once: no cache of the first.
    RecordingDriver.written = []
    fresh = CosttopApp(settings, Session(settings, StaticFeed(NOW), clock=lambda: clock[0], catalog=shipped()))
    async with fresh.run_test(size=size) as pilot:
        await wait_for_data(pilot)
        fresh.snapshot = snap
        fresh._show(snap)
        assert fresh.screen.query_one(AgentTable).select_key(selected)
        await pilot.pause()
        await wait_until(pilot, lambda: fresh.snapshot is snap)  # none of its own came after
        again = repainted(fresh, size)
    assert shown.cells() == again.cells(), differences(shown.cells(), again.cells())


async def test_unchanged_cells_are_not_sent_again(monkeypatch) -> None:
    """A refresh where one agent's figures changed sends that agent's changed cells only: not its name,
    not the figures that stayed, not the other agents' lines."""
    monkeypatch.setattr("textual.drivers.headless_driver.HeadlessDriver", RecordingDriver)
    RecordingDriver.written = []
    app = static_app(Settings(read_only=True, refresh=3600))
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_for_data(pilot)
        await fresh_snapshot(pilot)  # once more, after the header's first layout settled the table's height
        await pilot.pause()
        table = app.screen.query_one("#agents").region
        table_top, table_end = table.y, table.bottom
        before = [line for line in Terminal(160, 50).feed(RecordingDriver.written).text()]
        email = next(y for y in range(table_top, table_end) if before[y].startswith("email-bot"))
        RecordingDriver.written = []
        # One call for the smallest spender: its line changes, its rank does not.
        row = CallRecord(10**7, NOW, "email-bot", "llm", 100, "openai", "gpt-4o", 10, 5, 0, Decimal("0.000001"),
                         "success")
        app.session.submit(lambda: app.session.engine.ingest([row]))
        await fresh_snapshot(pilot)
        await pilot.pause()
        sent = "".join(RecordingDriver.written)
    screen = Terminal(160, 50).feed(sent)
    touched = [y for y, line in enumerate(screen.text()) if line.strip() and table_top <= y < table_end]
    assert touched == [email], [screen.text()[y] for y in touched]
    line = screen.text()[email]
    # Its calls (one more), its last call's age and its trend: a few cells, not the name nor the line.
    assert "email-bot" not in line
    assert 0 < len(line.replace(" ", "")) <= 8, line
