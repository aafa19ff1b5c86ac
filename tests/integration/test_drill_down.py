"""The drill-down driven as an operator would: the agent screen at 80x24, the trace sort, alert to trace."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal

from appkit import fresh_snapshot, screen_text, wait_for_data, wait_until
from costtop.demo.screenshots import NOW, static_app
from costtop.demo.static_feed import StaticFeed
from costtop.sources.records import CallRecord, RedisState, Step, TraceSummary
from costtop.ui.app import CosttopApp
from costtop.ui.screens.drill_down import AgentScreen, TraceList, TraceScreen, TraceSort
from costtop.ui.widgets.agent_table import AgentTable
from costtop.ui.widgets.alert_panel import AlertPanel


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

    async def agent_steps(self, agent: str, since: datetime, traces: object = None) -> dict[str, list[Step]]:
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
        await pilot.click("#traces", offset=(sum(w + 1 for _, _, w in table.columns[:5]) + 1, 0))  # Started
        await pilot.pause()
        assert shown() == ["a", "b", "d", "c"] and "by start, oldest first" in title()
        await pilot.click("#traces", offset=(sum(w + 1 for _, _, w in table.columns[:5]) + 1, 0))
        await pilot.pause()
        assert shown() == ["c", "d", "b", "a"]
        for order, expected in ((TraceSort.COST, ["b", "d", "a", "c"]),  # an unknown cost last
                                (TraceSort.STEPS, ["a", "d", "c", "b"]),
                                (TraceSort.DURATION, ["b", "c", "a", "d"]),
                                (TraceSort.START, ["c", "d", "b", "a"])):
            await pilot.press("s")
            await pilot.pause()
            first = "newest first" if order is TraceSort.START else "biggest first"
            assert table.order is order and shown() == expected and f"by {order.value}, {first} (" in title()
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
        assert shown() == ["a", "d", "b", "c"] and "by cost, smallest first" in title()
        # The cursor follows its trace through a re-sort, and enter opens that one.
        await pilot.press("down")
        await pilot.pause()
        assert table.selected_key == "d"
        await pilot.press("s")
        await pilot.pause()
        assert table.selected_key == "d"


class LoopFeed(StaticFeed):
    """research-bot's runaway trace arrives as new rows (the live alerts flag its loop), and the fleet's
    day budget is nearly spent (an alert naming no agent)."""

    def __init__(self, now: datetime) -> None:
        super().__init__(now)
        self.sent = False

    async def new_rows(self) -> list[CallRecord]:
        if self.sent:
            return []
        self.sent = True
        return [CallRecord(10_000 + i, s.created_at, "research-bot", s.tool_name, s.latency_ms, "anthropic" if s.model
                           else None, s.model, s.tokens_in, s.tokens_out, None, s.cost_usd, s.status,
                           "research-bot-t0") for i, s in enumerate(self._steps(0))]

    async def read_redis(self) -> RedisState:
        state = await super().read_redis()
        return replace(state, global_day_budget=Decimal("100"))


async def alert_shown(pilot, app, key: str) -> None:  # type: ignore[no-untyped-def]
    """Data in, the alert `key` among the alerts, and a snapshot drawn since."""
    await wait_for_data(pilot)
    await wait_until(pilot, lambda: app.snapshot is not None and any(a.key == key for a in app.snapshot.alerts))
    await fresh_snapshot(pilot)


async def test_enter_on_an_alert_opens_the_trace_or_the_agent_it_names() -> None:
    app = static_app(feed=LoopFeed(NOW))
    async with app.run_test(size=(80, 24)) as pilot:
        await alert_shown(pilot, app, "loop:research-bot-t0")
        main = app.screen
        panel = main.query_one(AlertPanel)
        for _ in range(8):  # tab reaches the alerts
            if panel.has_focus:
                break
            await pilot.press("tab")
        assert panel.has_focus
        keys = [a.key for a in app.snapshot.alerts]

        async def choose(key: str) -> None:
            await pilot.press(*["up"] * len(keys))
            await pilot.press(*["down"] * keys.index(key))
            await pilot.pause()
            assert panel.selected is not None and panel.selected.key == key
            # The cursor's alert is on screen even in the short pane (two lines at 80x24).
            assert key.split(":")[0] in {"loop", "velocity", "budget"} and panel.selected.subject in screen_text(app)
            await pilot.press("enter")
            await pilot.pause(0.3)

        await choose("loop:research-bot-t0")
        assert isinstance(app.screen, TraceScreen) and app.screen.trace_id == "research-bot-t0"
        await wait_until(pilot, lambda: "loop: 7 steps" in screen_text(app))
        await pilot.press("escape")  # back to the trace's agent, then to the main screen
        await pilot.pause()
        assert isinstance(app.screen, AgentScreen) and app.screen.agent_id == "research-bot"
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is main
        panel.focus()
        await choose("velocity:research-bot")
        assert isinstance(app.screen, AgentScreen) and app.screen.agent_id == "research-bot"
        await pilot.press("escape")
        await pilot.pause()
        panel.focus()
        notified: list[str] = []
        app.notify = lambda message, **kw: notified.append(message)  # type: ignore[method-assign,assignment]
        await choose("budget:day:fleet")
        assert app.screen is main and notified and "nothing to open" in notified[0]


async def test_when_the_last_alert_clears_the_focus_moves_on_to_the_agents() -> None:
    app = static_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for_data(pilot)
        panel = app.screen.query_one(AlertPanel)
        panel.focus()
        await pilot.pause()
        assert panel.has_focus and app.snapshot is not None and app.snapshot.alerts
        panel.show(replace(app.snapshot, alerts=()))
        await pilot.pause()
        assert isinstance(app.focused, AgentTable)


class ManyTracesFeed(StaticFeed):
    async def agent_traces(self, agent: str, since: datetime) -> list[TraceSummary]:
        return [summary(f"trace-{i:02}", i, "1", 5, 3) for i in range(50)]

    async def agent_steps(self, agent: str, since: datetime, traces: object = None) -> dict[str, list[Step]]:
        return {}


async def test_at_80x24_the_trace_list_scrolls_to_its_last_trace_and_opens_it() -> None:
    app = static_app(feed=ManyTracesFeed(NOW))
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_agent(app, pilot)
        assert "trace-00" in screen_text(app) and "trace-49" not in screen_text(app)
        await pilot.press("end")
        await wait_until(pilot, lambda: "trace-49" in screen_text(app))
        assert "trace-00" not in screen_text(app) and screen.trace_list.selected_key == "trace-49"
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, TraceScreen))
        assert isinstance(app.screen, TraceScreen) and app.screen.trace_id == "trace-49"


async def test_k_on_an_alert_offers_to_kill_the_agent_it_names_not_the_tables_selection() -> None:
    """The on-call tabs to the alert about the runaway and presses `k`: the dialog names that alert's
    agent, whatever row the agent table's cursor is on; an alert about the fleet names no agent."""
    from costtop.ui.screens.switch_dialog import SwitchDialog

    app = static_app(feed=LoopFeed(NOW))
    async with app.run_test(size=(80, 24)) as pilot:
        await alert_shown(pilot, app, "budget:day:fleet")
        main = app.screen
        await pilot.press("end")  # the agent table's cursor on its last row, not research-bot
        assert main.query_one(AgentTable).selected_key != "research-bot"
        panel = main.query_one(AlertPanel)
        panel.focus()
        await pilot.pause()
        assert panel.selected is not None and panel.selected.agent == "research-bot"
        await pilot.press("k")
        await wait_until(pilot, lambda: isinstance(app.screen, SwitchDialog))
        dialog = app.screen
        assert isinstance(dialog, SwitchDialog) and dialog.change.target == "research-bot"
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.screen is main)
        keys = [a.key for a in app.snapshot.alerts]  # type: ignore[union-attr]
        panel.focus()
        await pilot.press(*["down"] * keys.index("budget:day:fleet"))
        await pilot.pause()
        notified: list[str] = []
        app.notify = lambda message, **kw: notified.append(message)  # type: ignore[method-assign,assignment]
        await pilot.press("k")
        await pilot.pause()
        assert app.screen is main and notified and "names no agent" in notified[0]
