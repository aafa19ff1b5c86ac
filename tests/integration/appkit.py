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
    app = pilot.app
    assert isinstance(app, CosttopApp)
    await wait_until(pilot, lambda: app.snapshot is not None and app.redis_state is not None
                     and app.engine.day != "" and not app.engine.day_pending and bool(app.snapshot.agents)
                     and app.engine.counters is not None and app.engine.history_day == app.engine.day)
    app.render_snapshot()
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

