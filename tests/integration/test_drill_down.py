"""The drill-down driven as an operator would: the agent screen at 80x24, the trace sort, alert to trace."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from appkit import screen_text, wait_for_data, wait_until
from costtop.demo.screenshots import NOW, static_app
from costtop.demo.static_feed import StaticFeed
from costtop.sources.records import Step, TraceSummary
from costtop.ui.app import CosttopApp
from costtop.ui.screens.drill_down import AgentScreen, TraceList, TraceSort


async def open_agent(app: CosttopApp, pilot) -> AgentScreen:  # type: ignore[no-untyped-def]
    await wait_for_data(pilot)
    await pilot.press("enter")
    await wait_until(pilot, lambda: isinstance(app.screen, AgentScreen) and bool(app.screen.trace_list.traces))
    await pilot.pause()
    assert isinstance(app.screen, AgentScreen)
    return app.screen


async def test_at_80x24_each_call_is_one_line_and_the_traces_keep_their_rows() -> None:
    app = static_app()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_agent(app, pilot)
        text = screen_text(app)
        # The failed call's status is on its own line, not wrapped to the next.
        calls = [line for line in text.splitlines() if line[:2] == "14" and line[8:9] == " "]
        assert calls and all(" in " in line and line.rstrip().endswith(("success", "error")) for line in calls)
        assert "Models, last hour:" in text and "\ncalls $0.04" not in text
        table = screen.query_one(TraceList)
        assert table.has_focus and table.size.height - 1 >= 6  # rows below its header
        # The runaway trace stands out in the list, and the line above names it.
        line = next(line for line in text.splitlines() if line.startswith("research-bot-t0"))
        assert "loop context errors" in line
        assert "runaway: research-bot-t0 loop context errors" in text


def summary(trace: str, minutes_ago: int, cost: str | None, steps: int, seconds: int) -> TraceSummary:
    started = NOW - timedelta(minutes=minutes_ago)
    return TraceSummary(trace, started, started + timedelta(seconds=seconds), steps, 100, 10,
                        None if cost is None else Decimal(cost), 0)


class SortFeed(StaticFeed):
    """Four traces whose orders by start, cost, steps and duration all differ."""

    async def agent_traces(self, agent: str, since: datetime) -> list[TraceSummary]:
        return [summary("d", 2, "2", 30, 1), summary("a", 9, "1", 40, 5), summary("c", 1, None, 20, 20),
                summary("b", 5, "3", 10, 50)]

    async def agent_steps(self, agent: str, since: datetime) -> dict[str, list[Step]]:
        return {}


async def test_s_and_a_click_on_a_title_sort_the_traces_and_the_title_says_how() -> None:
    app = static_app(feed=SortFeed(NOW))
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_agent(app, pilot)
        table = screen.trace_list

        def shown() -> list[str]:
            return [t.trace_id for t in table.rows]

        def title() -> str:
            return str(screen.traces_title.content)

        assert shown() == ["c", "d", "b", "a"] and "by start, newest first" in title()
        for order, expected in ((TraceSort.COST, ["b", "d", "a", "c"]),  # an unknown cost last
                                (TraceSort.STEPS, ["a", "d", "c", "b"]),
                                (TraceSort.DURATION, ["b", "c", "a", "d"]),
                                (TraceSort.START, ["c", "d", "b", "a"])):
            await pilot.press("s")
            await pilot.pause()
            assert table.order is order and shown() == expected and f"by {order.value} (" in title()
            assert [line.split()[0] for line in screen_text(app).splitlines()
                    if line[:2] in ("a ", "b ", "c ", "d ")] == expected  # drawn so
        # A click on the Cost title sorts by cost; a second one reverses it (the unknown cost still last).
        x = sum(width + 1 for _, _, width in table.columns[:2])
        assert table.columns[2][0] == "cost"
        await pilot.click("#traces", offset=(x + 1, 0))
        await pilot.pause()
        assert shown() == ["b", "d", "a", "c"]
        await pilot.click("#traces", offset=(x + 1, 0))
        await pilot.pause()
        assert shown() == ["a", "d", "b", "c"] and "by cost (reversed)" in title()
        # The cursor follows its trace through a re-sort, and enter opens that one.
        await pilot.press("down")
        await pilot.pause()
        assert table.selected_key == "d"
        await pilot.press("s")
        await pilot.pause()
        assert table.selected_key == "d"
