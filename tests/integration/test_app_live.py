"""The app against real Redis and Postgres: kill, resume, read-only, outside changes, hostile names."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import Decimal

import asyncpg
from redis.asyncio import Redis

from appkit import fresh_snapshot, screen_text, select_agent, wait_for_data, wait_until
from costtop.config import Settings
from costtop.demo.servers import free_port
from costtop.engine.snapshot import AgentState
from costtop.gateway import Call, Gateway
from costtop.session import Session
from costtop.sources.feed import LiveFeed
from costtop.sources.records import DayBaseline
from costtop.sources.writer import Operator
from costtop.ui.app import CosttopApp
from costtop.ui.screens.switch_dialog import SwitchDialog

EVIL = "evil[/bold]\x1b]0;pwned\x07[@click=app.quit]x"


def make_app(db_url: str, redis_url: str, **kw: object) -> CosttopApp:
    settings = Settings(redis_url=redis_url, database_url=db_url, refresh=0.2, **kw)  # type: ignore[arg-type]
    return CosttopApp(settings, Session(settings, LiveFeed(settings)))


async def seed(pg: asyncpg.Pool, redis: Redis) -> None:
    gw = Gateway(redis, pg)
    await gw.record([Call(f"agent-{i}", "llm", 100 + i, provider="openai", model="gpt-5",
                          tokens_in=100, tokens_out=10, cost_usd=Decimal("0.25") * (i + 1)) for i in range(4)])


async def test_kill_then_resume_writes_redis_and_audit(pg, redis, db_url, redis_url) -> None:
    await seed(pg, redis)
    app = make_app(db_url, redis_url)
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_for_data(pilot)
        await select_agent(pilot, "agent-1")
        await pilot.press("k")
        await wait_until(pilot, lambda: isinstance(app.screen, SwitchDialog))
        dialog = app.screen
        assert isinstance(dialog, SwitchDialog) and dialog.change.target == "agent-1"
        # The dialog starts on Cancel: Enter right away changes nothing.
        await pilot.press("enter")
        await wait_until(pilot, lambda: not isinstance(app.screen, SwitchDialog))
        assert await redis.get("kill:agent:agent-1") is None

        await pilot.press("k")
        await wait_until(pilot, lambda: isinstance(app.screen, SwitchDialog))
        await pilot.press("tab", "enter")  # Cancel -> Confirm
        await wait_until(pilot, lambda: app.last_write is not None)
        assert app.last_write is not None and app.last_write.ok and app.last_write.audit_written
        login = Operator.current().login
        assert await redis.get("kill:agent:agent-1") == f"manual:{login}:runaway_spend".encode()
        assert await redis.ttl("kill:agent:agent-1") == -1
        audit = await pg.fetch("SELECT * FROM costtop_audit")
        assert [(r["action"], r["target"], r["result"], r["operator"]) for r in audit] == [
            ("set:kill", "agent-1", "set", login)]
        await wait_until(pilot, lambda: app.snapshot is not None and any(
            a.agent_id == "agent-1" and a.state is AgentState.KILLED for a in app.snapshot.agents))

        await confirm(pilot, "u")
        assert await redis.exists("kill:agent:agent-1") == 0
        actions = [r["action"] for r in await pg.fetch("SELECT action FROM costtop_audit ORDER BY id")]
        assert actions == ["set:kill", "remove:kill"]


async def test_kill_with_ttl_and_reason(pg, redis, db_url, redis_url) -> None:
    await seed(pg, redis)
    app = make_app(db_url, redis_url)
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_for_data(pilot)
        await select_agent(pilot, "agent-2")
        await pilot.press("t")
        await wait_until(pilot, lambda: isinstance(app.screen, SwitchDialog))
        app.screen.query_one("#reason").value = "loop:in search"
        app.screen.query_one("#ttl").value = "10m"
        await pilot.click("#confirm")
        await wait_until(pilot, lambda: app.last_write is not None)
        value = await redis.get("throttle:agent:agent-2")
        assert value is not None and value.decode().endswith(":loop:in search")
        assert 590 <= await redis.ttl("throttle:agent:agent-2") <= 600
        row = await pg.fetchrow("SELECT reason, ttl_seconds FROM costtop_audit")
        assert (row["reason"], row["ttl_seconds"]) == ("loop:in search", 600)


async def test_bad_ttl_keeps_dialog_open_and_writes_nothing(pg, redis, db_url, redis_url) -> None:
    await seed(pg, redis)
    app = make_app(db_url, redis_url)
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_for_data(pilot)
        await pilot.press("k")
        await wait_until(pilot, lambda: isinstance(app.screen, SwitchDialog))
        app.screen.query_one("#ttl").value = "soon"
        await pilot.click("#confirm")
        await pilot.pause(0.2)
        assert isinstance(app.screen, SwitchDialog)
        assert "TTL must be" in str(app.screen.query_one("#dialog-error").render())
        assert [k async for k in redis.scan_iter("kill:*")] == []


async def test_kill_all_needs_the_word(pg, redis, db_url, redis_url) -> None:
    await seed(pg, redis)
    app = make_app(db_url, redis_url)
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_for_data(pilot)
        await pilot.press("K")
        await wait_until(pilot, lambda: isinstance(app.screen, SwitchDialog))
        confirm = app.screen.query_one("#confirm")
        assert confirm.disabled
        app.screen.query_one("#word").value = "kill"
        await pilot.pause()
        assert confirm.disabled
        app.screen.query_one("#word").value = "KILL"
        await pilot.pause()
        await pilot.click("#confirm")
        await wait_until(pilot, lambda: app.last_write is not None)
        assert await redis.exists("kill:global") == 1
        await wait_until(pilot, lambda: app.snapshot is not None and app.snapshot.global_kill is not None
                         and all(a.state is AgentState.KILLED for a in app.snapshot.agents))


class GatedFeed(LiveFeed):
    """The live feed, with the day's sums held back until the test lets them through."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.gate = asyncio.Event()

    async def baseline_days(self) -> DayBaseline:
        await self.gate.wait()
        return await super().baseline_days()


async def test_window_is_live_before_the_day_totals_arrive(pg, redis, db_url, redis_url) -> None:
    await seed(pg, redis)
    settings = Settings(redis_url=redis_url, database_url=db_url, refresh=0.2)
    feed = GatedFeed(settings)
    app = CosttopApp(settings, Session(settings, feed))
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_until(pilot, lambda: app.snapshot is not None and len(app.snapshot.agents) == 4)
        snap = app.snapshot
        assert snap is not None and snap.header.totals_pending
        # The window is there (velocity, calls/min); the day's figures are unknown, not $0.
        assert snap.header.calls_per_min == Decimal(4) / 5
        assert snap.header.spend_today is None and all(a.spend_today is None for a in snap.agents)
        # The header grows by that line at its next layout: wait for the screen, not for a sleep.
        await wait_until(pilot, lambda: "Reading today's rows" in screen_text(app))
        # A call written while the day is being summed is counted once.
        await Gateway(redis, pg).record([Call("agent-0", "llm", 5, cost_usd=Decimal("1.00"))])
        await wait_until(pilot, lambda: app.snapshot is not None and app.snapshot.header.calls_per_min == 1)
        feed.gate.set()
        await wait_until(pilot, lambda: app.snapshot is not None and not app.snapshot.header.totals_pending)
        assert app.snapshot.header.spend_today == await pg.fetchval("SELECT sum(cost_usd) FROM tool_calls")
        await wait_until(pilot, lambda: "Reading today's rows" not in screen_text(app))


async def test_selection_stays_on_its_agent_when_the_order_changes(pg, redis, db_url, redis_url) -> None:
    await seed(pg, redis)
    app = make_app(db_url, redis_url)
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_for_data(pilot)
        await select_agent(pilot, "agent-0")  # cheapest: last row
        await pilot.press("k")
        await wait_until(pilot, lambda: isinstance(app.screen, SwitchDialog))
        # agent-0 becomes the top spender while the dialog is open.
        await Gateway(redis, pg).record([Call("agent-0", "llm", 5, cost_usd=Decimal("9"))])
        await wait_until(pilot, lambda: app.snapshot is not None and app.snapshot.agents[0].agent_id == "agent-0")
        await pilot.press("tab", "enter")
        await wait_until(pilot, lambda: app.last_write is not None)
        assert [k async for k in redis.scan_iter("kill:*")] == [b"kill:agent:agent-0"]
        from costtop.ui.widgets.agent_table import AgentTable

        assert app.screen.query_one(AgentTable).selected_key == "agent-0"


async def confirm(pilot, key: str, check: Callable[[SwitchDialog], bool] = lambda dialog: True) -> None:
    """Press `key`, check the dialog it opens, confirm it (Tab to Confirm, Enter) and wait for the write."""
    app = pilot.app
    app.last_write = None
    await pilot.press(key)
    await wait_until(pilot, lambda: isinstance(app.screen, SwitchDialog))
    assert check(app.screen)
    await pilot.press("tab", "enter")
    await wait_until(pilot, lambda: app.last_write is not None)


async def select_row(pilot, table, name: str) -> None:
    """Focus a panel and move its cursor to the row called `name`, as an operator would."""
    table.focus()
    await pilot.press(*["up"] * table.row_count)
    for _ in range(20):
        await pilot.pause()
        if table.selected_name == name:
            return
        await pilot.press("down")
    raise AssertionError(f"{name} not in the panel: {table._order}, at {table.selected_key!r}, focus {table.has_focus}")


async def test_kill_and_resume_a_model_and_a_provider(pg, redis, db_url, redis_url) -> None:
    """`k` and `u` on the model and provider panels: the same dialog, the contract's keys, audit rows."""
    from costtop.ui.widgets.usage_tables import ModelTable, ProviderTable

    await seed(pg, redis)
    await Gateway(redis, pg).record([Call("agent-9", "llm", 50, provider="anthropic", model="claude-sonnet-4",
                                          cost_usd=Decimal("3"))])
    app = make_app(db_url, redis_url)
    login = Operator.current().login
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_for_data(pilot)
        await wait_until(pilot, lambda: app.snapshot is not None and len(app.snapshot.models) == 2)
        assert [m.model for m in app.snapshot.models] == ["claude-sonnet-4", "gpt-5"]  # by spend today
        models = app.screen.query_one(ModelTable)
        await select_row(pilot, models, "gpt-5")
        await confirm(pilot, "k", lambda dialog: dialog.change.scope == "model" and dialog.change.target == "gpt-5")
        assert await redis.get("kill:model:gpt-5") == f"manual:{login}:runaway_spend".encode()
        await wait_until(pilot, lambda: app.snapshot is not None and app.snapshot.models[1].state is AgentState.KILLED)
        # Throttle is for agents only: nothing is written.
        await pilot.press("t")
        await pilot.pause()
        assert not isinstance(app.screen, SwitchDialog)

        providers = app.screen.query_one(ProviderTable)
        await select_row(pilot, providers, "anthropic")
        await confirm(pilot, "k", lambda dialog: dialog.change.scope == "provider")
        assert await redis.exists("kill:provider:anthropic") == 1

        await select_row(pilot, models, "gpt-5")
        await confirm(pilot, "u", lambda dialog: dialog.change.action == "remove" and dialog.change.target == "gpt-5")
        assert await redis.exists("kill:model:gpt-5") == 0
    audit = await pg.fetch("SELECT action, scope, target, result FROM costtop_audit ORDER BY id")
    assert [tuple(r) for r in audit] == [("set:kill", "model", "gpt-5", "set"),
                                         ("set:kill", "provider", "anthropic", "set"),
                                         ("remove:kill", "model", "gpt-5", "removed")]


async def test_kill_from_the_agent_screen_targets_that_agent(pg, redis, db_url, redis_url) -> None:
    """The agent screen's agent is the target, even after the main table's top row changed under it."""
    from costtop.ui.screens.drill_down import AgentScreen

    await seed(pg, redis)
    app = make_app(db_url, redis_url)
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_for_data(pilot)
        assert app.snapshot is not None and app.snapshot.agents[0].agent_id == "agent-3"
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, AgentScreen))
        # agent-0 becomes the top spender: the main table's first row (and its selection) moves to it.
        await Gateway(redis, pg).record([Call("agent-0", "llm", 5, cost_usd=Decimal("9"))])
        await wait_until(pilot, lambda: app.snapshot is not None and app.snapshot.agents[0].agent_id == "agent-0")
        await confirm(pilot, "k", lambda dialog: dialog.change.target == "agent-3")
        assert await redis.exists("kill:agent:agent-3") == 1 and await redis.exists("kill:agent:agent-0") == 0


async def test_read_only_refuses_and_sends_no_write(pg, redis, db_url, redis_url) -> None:
    await seed(pg, redis)
    await redis.set("kill:agent:agent-3", "manual:ops:test")
    before = await redis.info("commandstats")
    app = make_app(db_url, redis_url, read_only=True)
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_for_data(pilot)
        from costtop.ui.widgets.usage_tables import ModelTable, ProviderTable

        # The agent table, then the model and provider panels: no key opens a dialog.
        for panel in (None, ModelTable, ProviderTable):
            if panel is not None:
                app.screen.query_one(panel).focus()
                await pilot.pause()
            for key in ("k", "u", "t", "K"):
                await pilot.press(key)
                await pilot.pause(0.1)
                assert not isinstance(app.screen, SwitchDialog)
    after = await redis.info("commandstats")
    for command in ("cmdstat_set", "cmdstat_del", "cmdstat_unlink", "cmdstat_expire"):
        assert after.get(command, {}).get("calls") == before.get(command, {}).get("calls"), command
    assert await redis.get("kill:agent:agent-3") == b"manual:ops:test"
    assert await pg.fetchval("SELECT count(*) FROM costtop_audit") == 0


async def test_switch_set_and_removed_outside_shows_up(pg, redis, db_url, redis_url) -> None:
    await seed(pg, redis)
    app = make_app(db_url, redis_url)
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_for_data(pilot)
        await redis.set("kill:agent:agent-2", "manual:bob:from_cli", ex=120)

        def state() -> AgentState | None:
            assert app.snapshot is not None
            return next(a.state for a in app.snapshot.agents if a.agent_id == "agent-2")

        await wait_until(pilot, lambda: state() is AgentState.KILLED, timeout=5)
        switch = next(s for s in app.snapshot.switches if s.key == "kill:agent:agent-2")
        assert switch.origin == ("manual", "bob", "from_cli") and 100 < (switch.ttl_seconds or 0) <= 120
        await redis.delete("kill:agent:agent-2")
        await wait_until(pilot, lambda: state() is AgentState.OK, timeout=5)


async def test_hostile_agent_name_is_shown_as_text(pg, redis, db_url, redis_url) -> None:
    await Gateway(redis, pg).record([Call(EVIL, "llm", 10, cost_usd=Decimal("1.5"))])
    await redis.set(f"kill:agent:{EVIL}", "manual:x:[bold]y\x1b[2J")
    app = make_app(db_url, redis_url)
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_for_data(pilot)
        await pilot.pause(0.3)
        # The id stays exact, so that a kill names the key the gateway checks ...
        assert app.snapshot.agents[0].agent_id == EVIL
        # ... and the screen shows it as plain text, with no control byte.
        svg = app.export_screenshot().replace("&#160;", " ")
        # (the escape and bell bytes made visible as markers: an id's every character is shown)
        assert "evil[/bold]<U+001B>]0;pwned<U+0007>[@click=app.quit]x" in screen_text(app)
        assert "\x1b" not in svg and "\x07" not in svg
        assert app.is_running  # the [@click=app.quit] text did nothing
        await pilot.press("u")  # resume the hostile agent's switch: the exact key goes away
        await wait_until(pilot, lambda: isinstance(app.screen, SwitchDialog))
        await pilot.press("tab", "enter")
        await wait_until(pilot, lambda: app.last_write is not None)
        assert app.last_write.ok and await redis.exists(f"kill:agent:{EVIL}") == 0
        await pilot.press("k")
        await wait_until(pilot, lambda: isinstance(app.screen, SwitchDialog))
        await pilot.press("tab", "enter")
        await wait_until(pilot, lambda: app.last_write is not None and app.last_write.message.startswith("Kill"))
        assert not (await Gateway(redis, pg).check(EVIL)).allowed


async def test_unreachable_sources_show_stale_badges_not_a_crash(db_url) -> None:
    port = free_port()
    app = make_app(f"postgresql://u:s3cret@127.0.0.1:{port}/x", f"redis://:hunter2@127.0.0.1:{port}/0")
    async with app.run_test(size=(160, 50)) as pilot:
        status = app.session.status
        await wait_until(pilot, lambda: all(s.error and "connecting" not in s.error for s in status.values()))
        await fresh_snapshot(pilot)
        await pilot.pause()
        svg = app.export_screenshot().replace("&#160;", " ")
        assert "Redis STALE" in svg and "Postgres STALE" in svg
        assert "s3cret" not in svg and "hunter2" not in svg
        assert "s3cret" not in str(app.session.status) and "hunter2" not in str(app.session.status)


async def test_missing_table_is_reported(empty_db_url, redis_url, redis) -> None:
    app = make_app(empty_db_url, redis_url)
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_until(pilot, lambda: "db init" in (app.session.status["Postgres"].error or ""))
        assert app.is_running


async def test_killing_the_demos_runaway_with_k_leaves_the_rest_of_the_fleet_running(pg, redis, db_url,
                                                                                      redis_url) -> None:
    """The demo as an on-call drives it at 80x24: the simulated fleet on real servers, `k` on the
    runaway agent, confirm. Its rows stop; every other agent's rows keep coming, and the screen's
    `Last row` stays fresh (the demo once stopped the whole fleet when the incident ended)."""
    from costtop.demo.simulator import INCIDENT_AGENT, Fleet

    fleet = Fleet(Gateway(redis, pg), rate=6, speed=40, incident_after=0.5, seed=5)
    stop = asyncio.Event()
    task = asyncio.create_task(fleet.run(stop))
    try:
        app = make_app(db_url, redis_url)
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_until(pilot, lambda: app.snapshot is not None and any(
                a.agent_id == INCIDENT_AGENT for a in app.snapshot.agents), timeout=20)
            await select_agent(pilot, INCIDENT_AGENT)
            await pilot.press("k")
            await wait_until(pilot, lambda: isinstance(app.screen, SwitchDialog))
            await pilot.press("tab", "enter")
            await wait_until(pilot, lambda: app.last_write is not None and app.last_write.ok)
            await wait_until(pilot, lambda: app.snapshot is not None and any(
                a.agent_id == INCIDENT_AGENT and a.state is AgentState.KILLED for a in app.snapshot.agents))
            await wait_until(pilot, lambda: not fleet.incident_running, timeout=10)
            count = "SELECT count(*) FROM tool_calls WHERE agent_id {} $1"
            runaway, others = (await pg.fetchval(count.format("="), INCIDENT_AGENT),
                               await pg.fetchval(count.format("<>"), INCIDENT_AGENT))
            await asyncio.sleep(1.5)
            assert await pg.fetchval(count.format("="), INCIDENT_AGENT) == runaway
            assert await pg.fetchval(count.format("<>"), INCIDENT_AGENT) > others + 5
            assert not task.done()
            await fresh_snapshot(pilot)
            age = app.snapshot.header.newest_row_age if app.snapshot is not None else None
            assert age is not None and age < 3 and not app.snapshot.header.rows_silent  # type: ignore[union-attr]
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)
