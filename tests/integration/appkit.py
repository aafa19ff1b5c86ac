"""Helpers for driving the app in tests: wait for data, select a row."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from textual.pilot import Pilot

from costtop.ui.app import CosttopApp
from costtop.ui.widgets.agent_table import AgentTable


async def wait_until(pilot: Pilot[None], condition: Callable[[], bool], timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await pilot.pause(0.05)


async def wait_for_data(pilot: Pilot[None]) -> None:
    """Until every source has been read once (the day's sums, the week, the counters), then a snapshot
    of that, drawn."""
    app = pilot.app
    assert isinstance(app, CosttopApp)
    engine = app.session.engine
    await wait_until(pilot, lambda: app.snapshot is not None and app.session.redis_state is not None
                     and engine.day != "" and not engine.day_pending and bool(app.snapshot.agents)
                     and engine.counters is not None and engine.history_day == engine.day)
    await fresh_snapshot(pilot)


async def fresh_snapshot(pilot: Pilot[None]) -> None:
    """A snapshot of now, after everything the session was asked before, taken and drawn by the app
    (the session builds it on its own thread)."""
    app = pilot.app
    assert isinstance(app, CosttopApp)
    number = await app.session.publish_now()
    await wait_until(pilot, lambda: app.session.taken >= number)
    await pilot.pause()


async def select_agent(pilot: Pilot[None], agent: str) -> None:
    app = pilot.app
    assert isinstance(app, CosttopApp)
    table = app.screen.query_one(AgentTable)
    for _ in range(200):
        if table.selected_key == agent:
            return
        await pilot.press("down")
    raise AssertionError(f"agent {agent} not in the table")


def screen_text(app: CosttopApp) -> str:
    """What the terminal shows now, as plain text."""
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())



async def writing_keys_refused(pilot: Pilot[None]) -> None:
    """Read-only: each writing key opens no dialog, says why nothing happened, and writes nothing."""
    from costtop.ui.screens.switch_dialog import SwitchDialog

    app = pilot.app
    assert isinstance(app, CosttopApp)
    for key in ("k", "u", "t", "K"):
        app.clear_notifications()
        await pilot.press(key)
        await pilot.pause()
        assert not isinstance(app.screen, SwitchDialog), key
        assert [n.title for n in app._notifications] == ["Read-only"], key
    assert app.session.feed.writes == []  # type: ignore[attr-defined]
