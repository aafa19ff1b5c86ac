"""The trace view with a trace of 10,000 steps, and the anomaly note, driven as an operator would."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from appkit import fresh_snapshot, screen_text, wait_for_data, wait_until
from costtop.demo.screenshots import NOW, static_app
from costtop.demo.static_feed import StaticFeed
from costtop.sources.errors import SourceError
from costtop.sources.records import SpendHistory, Step
from costtop.ui.screens.drill_down import StepList, TraceScreen

STEPS = 10_000


class LongTraceFeed(StaticFeed):
    """Every trace is one chain of 10,000 steps, each the child of the one before."""

    async def trace_steps(self, trace_id: str) -> list[Step]:
        start = self.now - timedelta(hours=1)
        return [Step(start + timedelta(milliseconds=300 * i), f"step-{i}", f"s{i}", f"s{i - 1}" if i else None,
                     None, 1000 + i, 10, Decimal("0.001"), 200, "success") for i in range(STEPS)]


async def test_a_10000_step_trace_opens_and_scrolls_to_its_end_and_back() -> None:
    app = static_app(feed=LongTraceFeed(NOW))
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for_data(pilot)
        await pilot.press("enter")  # the agent screen
        await pilot.pause(0.3)
        await pilot.press("enter")  # its newest trace
        await wait_until(pilot, lambda: isinstance(app.screen, TraceScreen)
                         and len(app.screen.query_one(StepList).steps) == STEPS)
        table = app.screen.query_one(StepList)
        await wait_until(pilot, lambda: "10,000 steps" in screen_text(app) and "step-0 " in screen_text(app))
        await pilot.press("end")
        await wait_until(pilot, lambda: "step-9999" in screen_text(app))
        assert table.cursor == STEPS - 1 and "step-0 " not in screen_text(app)
        await pilot.press("pageup")
        await wait_until(pilot, lambda: table.cursor < STEPS - 1 and f"step-{table.cursor} " in screen_text(app))
        assert table.cursor > STEPS - 60
        await pilot.press("home")
        await wait_until(pilot, lambda: table.cursor == 0 and "step-0 " in screen_text(app))
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, TraceScreen)


class NoHistoryFeed(StaticFeed):
    async def spend_history(self, day: str) -> SpendHistory:
        raise SourceError("Postgres: the week's sums timed out after 300 s")


async def test_a_week_that_cannot_be_read_is_said_not_silent() -> None:
    app = static_app(feed=NoHistoryFeed(NOW))
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_until(pilot, lambda: app.session.engine.history_error is not None)
        await fresh_snapshot(pilot)
        await pilot.pause()
        assert "Unusual days not judged: Postgres: the week's sums timed out after 300 s" in screen_text(app)
        assert not any(a.key.startswith("anomaly-day") for a in app.snapshot.alerts)
        # The hour rule needs no week: research-bot's jump is still flagged.
        assert any(a.key == "anomaly-hour:research-bot" for a in app.snapshot.alerts)
