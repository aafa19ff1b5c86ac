"""How the main screen and the kill dialog look, from fixed data and a frozen clock."""

from __future__ import annotations

import pytest
from textual.pilot import Pilot

from appkit import fresh_snapshot, wait_for_data, wait_until
from costtop.config import Settings
from costtop.demo.screenshots import static_app
from costtop.ui.app import CosttopApp

SIZES = [(80, 24), (160, 50)]


def make_app(read_only: bool = False) -> CosttopApp:
    return static_app(Settings(read_only=read_only))


# The on-call's SSH terminal, a laptop's, and a 1920x1080 wall screen.
MAIN_SIZES = [(80, 24), (120, 40), (240, 67)]


@pytest.mark.parametrize("size", MAIN_SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_main_screen(snap_compare, size: tuple[int, int]) -> None:
    """An incident (six alerts, three switches): at 80x24 the agents keep 8 rows and the switches show."""
    assert snap_compare(make_app(), terminal_size=size, run_before=wait_for_data)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_kill_dialog(snap_compare, size: tuple[int, int]) -> None:
    async def open_dialog(pilot: Pilot[None]) -> None:
        await wait_for_data(pilot)
        await pilot.press("k")
        await pilot.pause()

    assert snap_compare(make_app(), terminal_size=size, run_before=open_dialog)


def test_kill_all_dialog(snap_compare) -> None:
    async def open_dialog(pilot: Pilot[None]) -> None:
        await wait_for_data(pilot)
        await pilot.press("K")
        await pilot.pause()

    assert snap_compare(make_app(), terminal_size=(100, 30), run_before=open_dialog)


def test_read_only_header(snap_compare) -> None:
    assert snap_compare(make_app(read_only=True), terminal_size=(120, 30), run_before=wait_for_data)


def test_velocity_chart_over_24_hours(snap_compare) -> None:
    async def switch_range(pilot: Pilot[None]) -> None:
        await wait_for_data(pilot)
        await pilot.press("v")
        await pilot.pause()

    assert snap_compare(make_app(), terminal_size=(160, 50), run_before=switch_range)


async def test_sort_steps_through_the_orders() -> None:
    app = make_app()
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_for_data(pilot)
        assert app.snapshot is not None and app.snapshot.agents[0].agent_id == "research-bot"
        await pilot.press("s")
        await pilot.pause()
        # Soonest exhausted daily budget first, then the others by burn rate.
        assert [a.agent_id for a in app.snapshot.agents][:3] == ["research-bot", "data-analyst", "code-review"]
        title = app.screen.query_one("#agents-pane .pane-title").content
        assert "budget runs out" in str(title)
        await pilot.press("s", "s")
        await pilot.pause()
        assert [a.agent_id for a in app.snapshot.agents] == sorted(a.agent_id for a in app.snapshot.agents)


async def test_alerts_ring_once_and_can_be_acknowledged() -> None:
    app = make_app()
    rings: list[int] = []
    app.bell = lambda: rings.append(1)  # type: ignore[method-assign]
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_for_data(pilot)
        for _ in range(3):
            await fresh_snapshot(pilot)
            await pilot.pause()
        assert app.snapshot is not None
        assert [a.key for a in app.snapshot.alerts][:1] == ["velocity:research-bot"]
        assert len(rings) == 1  # one critical alert tripped: one bell, not one per refresh
        assert not any(a.acknowledged for a in app.snapshot.alerts)
        await pilot.press("a")
        await pilot.pause()
        assert all(a.acknowledged for a in app.snapshot.alerts)
        title = str(app.screen.query_one("#alerts-pane .pane-title").content)
        assert "0 new" in title
        await fresh_snapshot(pilot)
        await pilot.pause()
        assert all(a.acknowledged for a in app.snapshot.alerts) and len(rings) == 1


DRILL_SIZES = [(80, 24), (120, 40), (240, 67)]


@pytest.mark.parametrize("size", DRILL_SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_agent_screen(snap_compare, size: tuple[int, int]) -> None:
    """Each latest call on one line, the trace list with its rows and the runaway trace marked."""

    async def drill(pilot: Pilot[None]) -> None:
        await wait_for_data(pilot)
        await pilot.press("enter")
        await wait_until(pilot, lambda: "runaway" in str(pilot.app.screen.query_one("#traces-status").content))

    assert snap_compare(make_app(), terminal_size=size, run_before=drill)


@pytest.mark.parametrize("size", DRILL_SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_trace_view_marks_the_runaway_patterns(snap_compare, size: tuple[int, int]) -> None:
    async def drill(pilot: Pilot[None]) -> None:
        await wait_for_data(pilot)
        await pilot.press("enter")
        await wait_until(pilot, lambda: "runaway" in str(pilot.app.screen.query_one("#traces-status").content))
        await pilot.press("down", "down", "enter")  # the oldest trace is the runaway one
        await wait_until(pilot, lambda: "loop:" in str(pilot.app.screen.query_one("#steps-status").content))
        await pilot.pause()

    assert snap_compare(make_app(), terminal_size=size, run_before=drill)


async def test_drill_down_and_back() -> None:
    from costtop.ui.screens.drill_down import AgentScreen, StepList, TraceList, TraceScreen
    from costtop.ui.screens.main import MainScreen

    app = make_app()
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_for_data(pilot)
        await pilot.press("enter")
        await pilot.pause(0.3)
        assert isinstance(app.screen, AgentScreen) and app.screen.agent_id == "research-bot"
        traces = app.screen.query_one(TraceList)
        assert [t.trace_id for t in traces.traces] == ["research-bot-t2", "research-bot-t1", "research-bot-t0"]
        assert [t.steps for t in traces.traces] == [9, 7, 18]
        await pilot.press("down", "enter")
        await pilot.pause(0.3)
        assert isinstance(app.screen, TraceScreen) and app.screen.trace_id == "research-bot-t1"
        steps = app.screen.query_one(StepList).steps
        assert len(steps) == 7 and not any(s.marks for s in steps)  # a healthy trace
        await pilot.press("escape", "down", "down", "enter")
        await pilot.pause(0.3)
        assert isinstance(app.screen, TraceScreen) and app.screen.trace_id == "research-bot-t0"
        steps = app.screen.query_one(StepList).steps
        assert len(steps) == 18 and sum("loop" in s.marks for s in steps) == 7
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, AgentScreen)
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, MainScreen)


def test_help_screen(snap_compare) -> None:
    async def open_help(pilot: Pilot[None]) -> None:
        await wait_for_data(pilot)
        await pilot.press("question_mark")
        await pilot.pause(0.2)

    assert snap_compare(make_app(), terminal_size=(120, 50), run_before=open_help)


def test_pause_banner(snap_compare) -> None:
    async def pause(pilot: Pilot[None]) -> None:
        await wait_for_data(pilot)
        await pilot.press("p")
        await pilot.pause(0.2)

    assert snap_compare(make_app(), terminal_size=(120, 30), run_before=pause)


def test_filter(snap_compare) -> None:
    async def filter_bots(pilot: Pilot[None]) -> None:
        await wait_for_data(pilot)
        await pilot.press("slash", *"bot")
        await wait_until(pilot, lambda: pilot.app.screen.query_one("#agents").filter == "bot")
        await fresh_snapshot(pilot)

    assert snap_compare(make_app(), terminal_size=(120, 30), run_before=filter_bots)


@pytest.mark.parametrize("theme", ["costtop-dark", "incident", "daylight", "wallboard"])
def test_each_shipped_theme(snap_compare, theme: str) -> None:
    app = static_app(Settings(theme=theme))
    assert snap_compare(app, terminal_size=(120, 30), run_before=wait_for_data)


async def test_the_screenshot_script_makes_every_picture(tmp_path) -> None:
    from costtop.demo.screenshots import SCENES, make

    made = await make(tmp_path)
    assert sorted(p.name for p in made) == sorted(name for name, _, _ in SCENES)
    text = {p.name: p.read_text() for p in made}
    assert all(t.startswith("<svg") for t in text.values())
    assert "Kill&#160;agent&#160;research-bot" in text["kill-dialog.svg"]
    assert "Agent&#160;research-bot" in text["agent-screen.svg"]
    assert text["theme-incident.svg"] != text["theme-daylight.svg"] != text["main-screen.svg"]
    assert "BURN&#160;$/HOUR" in text["wall-screen.svg"]
    assert "kill:agent:sales-outreach" in text["main-screen-80x24.svg"]  # the switches, at 80x24
