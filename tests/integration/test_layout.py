"""The main screen at an on-call's 80x24: the agents keep their rows, every column can be scrolled
to, and the pane keys' choice is kept for the next start. On the static demo data: six alerts and
three switches, an incident."""

from __future__ import annotations

import json
import os
from pathlib import Path

from textual.pilot import Pilot

from appkit import screen_text
from costtop.demo.screenshots import settle, static_app
from costtop.engine.snapshot import SortKey
from costtop.ui.app import CosttopApp
from costtop.ui.layout import AGENT_LINES
from costtop.ui.screens.main import MainScreen
from costtop.ui.widgets.agent_table import AgentTable
from costtop.ui.widgets.switch_table import SwitchTable


def layout_file() -> Path:
    return Path(os.environ["XDG_STATE_HOME"]) / "costtop" / "layout.json"


async def test_at_80x24_an_incident_leaves_eight_agent_rows_and_the_switches_in_view() -> None:
    app = static_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        screen = app.screen
        assert isinstance(screen, MainScreen)
        agents = screen.query_one(AgentTable)
        assert agents.row_count >= 8 and agents.size.height - 1 >= AGENT_LINES - 2
        text = screen_text(app)
        assert all(agent.agent_id in text for agent in app.snapshot.agents[:8])  # type: ignore[union-attr]
        assert "Switches (3)" in text and "kill:agent:sales-outreach" in text
        assert "Alerts (6" in text
        assert "folded (1-5)" in text  # the chart and usage panels found no room: the title says so


async def test_right_arrow_scrolls_the_agent_columns_and_keeps_the_names() -> None:
    app = static_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        agents = app.screen.query_one(AgentTable)
        header = agents.render_line(0).text
        assert "p95 5m" not in header and header.rstrip().endswith("→")
        assert agents.column_side("p95") == "→"
        await pilot.press("right")  # a whole column: the view starts at the next one, `Today`
        await pilot.pause()
        assert agents.render_line(0).text[agents.columns[0][2] + 1:].startswith("Today")
        await pilot.press("left")
        await pilot.pause()
        assert agents.scroll_offset.x == 0
        for _ in range(20):  # a column a press
            if agents.scroll_offset.x >= agents.max_scroll_x:
                break
            await pilot.press("right")
        await pilot.pause()
        header, first = agents.render_line(0).text, agents.render_line(1).text
        assert "p95 5m" in header and "Switch: who / why" in header and "←" in header
        assert first.startswith("research-bot")  # the name column stays put
        assert agents.column_side("p95") == ""
        assert "adam (manual): runaway_lo" in screen_text(app)  # the killed agent's who / why
        for _ in range(20):
            if agents.scroll_offset.x == 0:
                break
            await pilot.press("left")
        await pilot.pause()
        assert "←" not in agents.render_line(0).text


async def sort_by(app: CosttopApp, pilot: Pilot[None], key: SortKey) -> None:
    """`s` until the agents are in that order, a snapshot at a time (`s` steps from the order shown)."""
    for _ in range(len(SortKey)):
        if app.snapshot is not None and app.snapshot.sort is key:
            return
        await pilot.press("s")
        await settle(app, pilot)
    raise AssertionError(f"never sorted by {key}")


async def test_sorting_by_a_column_out_of_view_says_so() -> None:
    app = static_app()
    async with app.run_test(size=(52, 30)) as pilot:
        await settle(app, pilot)
        screen = app.screen
        assert isinstance(screen, MainScreen)
        title = screen.query_one("#agents-pane .pane-title")
        assert "off screen" not in str(title.content)  # $/min is in view
        await pilot.press("s")
        await settle(app, pilot)
        assert app.snapshot is not None and app.snapshot.sort is SortKey.RUNS_OUT
        assert "(Out in is off screen: →)" in str(title.content)  # past the right edge
        agents = screen.query_one(AgentTable)
        for _ in range(20):
            if agents.column_side("runs_out") == "":
                break
            await pilot.press("right")
        await pilot.pause()
        assert "off screen" not in str(title.content)  # the title follows the scroll
        for _ in range(20):
            if agents.scroll_offset.x >= agents.max_scroll_x:
                break
            await pilot.press("right")
        await pilot.pause()
        await sort_by(app, pilot, SortKey.NAME)
        assert "off screen" not in str(title.content)  # the name column never leaves
        await sort_by(app, pilot, SortKey.BURN)
        assert "($/min 5m is off screen: ←)" in str(title.content)  # now left of the view


async def test_pane_keys_hide_show_and_zoom_and_the_next_start_remembers() -> None:
    app = static_app()
    async with app.run_test(size=(120, 60)) as pilot:
        await settle(app, pilot)
        screen = app.screen
        assert isinstance(screen, MainScreen)
        assert screen.query_one("#switches-pane").display and screen.query_one("#chart-pane").display
        await pilot.press("4", "2")
        await pilot.pause()
        assert not screen.query_one("#switches-pane").display and not screen.query_one("#chart-pane").display
        assert screen.query_one("#alerts-pane").display and screen.query_one("#usage-pane").display
        assert json.loads(layout_file().read_text()) == {"hidden": ["chart", "switches"], "zoom": False}
        await pilot.press("5")
        await pilot.pause()
        assert not any(screen.query_one(f"#{pane}-pane").display for pane in ("alerts", "usage", "chart", "switches"))
        assert "zoomed" in screen_text(app)
        await pilot.press("5", "4")
        await pilot.pause()
        assert screen.query_one("#switches-pane").display and not screen.query_one("#chart-pane").display

    again = static_app()
    async with again.run_test(size=(120, 60)) as pilot:
        await settle(again, pilot)
        screen = again.screen
        assert not screen.query_one("#chart-pane").display and screen.query_one("#switches-pane").display
        assert screen.query_one(SwitchTable).row_count == 3


async def test_a_broken_state_file_says_so_and_the_screen_starts_with_the_default_layout() -> None:
    path = layout_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("{broken")
    app = static_app()
    async with app.run_test(size=(120, 60)) as pilot:
        await settle(app, pilot)
        assert app.screen.query_one("#chart-pane").display
        messages = [n.message for n in app._notifications]
        assert any("could not be read" in m and "default layout" in m for m in messages)
