"""Issue 16 against real Redis and Postgres, driving the real app: a kill is verified against the calls
that follow it, and a gateway that stops writing rows is never shown as healthy."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import asyncpg
import pytest
from redis.asyncio import Redis

from appkit import screen_text, select_agent, wait_for_data, wait_until
from costtop.config import Settings
from costtop.engine.snapshot import AgentState, Health, Severity
from costtop.gateway import Call, Gateway
from costtop.session import Session
from costtop.sources.feed import LiveFeed
from costtop.ui.app import CosttopApp
from test_app_live import confirm, seed

KEY = "kill:agent:agent-1"


def make_app(db_url: str, redis_url: str, **thresholds: object) -> CosttopApp:
    settings = Settings(redis_url=redis_url, database_url=db_url, refresh=0.2,
                        thresholds=thresholds)  # type: ignore[arg-type]
    return CosttopApp(settings, Session(settings, LiveFeed(settings)))


def llm(agent: str, status: str = "success", created_at: datetime | None = None) -> Call:
    return Call(agent, "llm", 120, provider="openai", model="gpt-5", tokens_in=100, tokens_out=10,
                cost_usd=Decimal("0.05"), status=status, created_at=created_at)


def alert_of(app: CosttopApp, key: str) -> tuple[Severity, str] | None:
    found = next((a for a in app.snapshot.alerts if a.key == key), None) if app.snapshot else None
    return None if found is None else (found.severity, found.figure)


async def kill_agent_1(pilot, app: CosttopApp) -> datetime:
    """`k` on agent-1, confirmed; returns a moment before the kill was sent."""
    await wait_for_data(pilot)
    await select_agent(pilot, "agent-1")
    before = datetime.now(UTC)
    await confirm(pilot, "k")
    # The Redis poll may see the switch before the writer's answer comes back: either way, its time
    # ends up as the one costtop sent it at.
    await wait_until(pilot, lambda: app.snapshot is not None and app.snapshot.kill_check(KEY) is not None
                     and app.snapshot.kill_check(KEY).written)  # type: ignore[union-attr]
    return before


async def test_a_gateway_that_ignores_a_kill_raises_the_alert(pg: asyncpg.Pool, redis: Redis, db_url: str,
                                                              redis_url: str) -> None:
    await seed(pg, redis)
    gw = Gateway(redis, pg)
    app = make_app(db_url, redis_url, kill_grace_seconds=1)
    async with app.run_test(size=(160, 50)) as pilot:
        killed_at = await kill_agent_1(pilot, app)
        check = app.snapshot.kill_check(KEY)  # type: ignore[union-attr]
        assert check is not None and check.written and check.since >= killed_at  # costtop's own write time
        await asyncio.sleep(1.5)  # past the grace
        for _ in range(3):  # a gateway that never looks at the switch
            await gw.record([llm("agent-1")])
        # The three rows are three commits: a read may take the first ones before the third is written,
        # so the alert can say 1 or 2 calls first. Wait for the count the test means, then read it.
        await wait_until(pilot, lambda: (alert_of(app, f"unhonoured:{KEY}") or ("", ""))[1].startswith("3 calls"))
        severity, figure = alert_of(app, f"unhonoured:{KEY}")  # type: ignore[misc]
        assert severity is Severity.CRITICAL
        assert figure.startswith(f"3 calls since {check.since:%H:%M:%S} UTC despite {KEY}")
        await pilot.pause(0.3)
        text = screen_text(app)
        assert "kill not honoured" in text and "✖3" in text  # the alert, and the switch panel's mark
        row = next(a for a in app.snapshot.agents if a.agent_id == "agent-1")  # type: ignore[union-attr]
        assert row.state is AgentState.KILLED and row.last_call_at is not None
        assert datetime.now(UTC).timestamp() - row.last_call_at < 10


async def test_a_gateway_that_obeys_and_late_rows_from_before_the_kill_raise_nothing(
        pg: asyncpg.Pool, redis: Redis, db_url: str, redis_url: str) -> None:
    await seed(pg, redis)
    gw = Gateway(redis, pg)
    app = make_app(db_url, redis_url, kill_grace_seconds=1)
    async with app.run_test(size=(160, 50)) as pilot:
        killed_at = await kill_agent_1(pilot, app)
        await asyncio.sleep(1.5)
        for _ in range(3):  # a gateway that checks: agent-1's calls are refused, and say so
            decision = await gw.check("agent-1", "openai", "gpt-5")
            assert not decision.allowed
            await gw.record([llm("agent-1", status="killed")])
        # A batch committed late, its rows stamped with their calls' start, before the kill.
        await gw.record([llm("agent-1", created_at=killed_at - timedelta(seconds=s)) for s in (1, 20, 40)])
        await wait_until(pilot, lambda: (app.snapshot.kill_check(KEY).last_call_at or 0)  # type: ignore[union-attr]
                         > killed_at.timestamp() + 1)
        await pilot.pause(1.0)  # a few more reads and frames
        check = app.snapshot.kill_check(KEY)  # type: ignore[union-attr]
        assert check is not None and check.violations == 0
        assert alert_of(app, f"unhonoured:{KEY}") is None
        assert "kill not honoured" not in screen_text(app)


async def flow(gw: Gateway, seconds: float) -> None:
    """Traffic: two agents' calls every 0.2 s."""
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while loop.time() < end:
        await gw.record([llm("agent-0"), llm("agent-2")])
        await asyncio.sleep(0.2)


async def test_rows_stopping_while_the_calls_counter_rises_is_a_silent_gateway_until_rows_resume(
        pg: asyncpg.Pool, redis: Redis, db_url: str, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("costtop.session.COUNTERS_SECONDS", 0.5)
    await seed(pg, redis)
    gw = Gateway(redis, pg)
    app = make_app(db_url, redis_url, silence_seconds=10)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for_data(pilot)
        await flow(gw, 2)
        day = datetime.now(UTC).strftime("%Y-%m-%d")
        assert app.snapshot is not None and not app.snapshot.header.rows_silent
        # The gateway goes on serving calls (its counter rises) but writes no row.
        loop = asyncio.get_running_loop()
        end = loop.time() + 25
        while alert_of(app, "silence:gateway") is None and loop.time() < end:
            await redis.incrby(f"calls:{day}", 3)
            await pilot.pause(0.3)
        found = alert_of(app, "silence:gateway")
        assert found is not None and found[0] is Severity.CRITICAL
        assert found[1].startswith(f"calls:{day} rose by ")
        snap = app.snapshot
        assert snap.header.rows_silent and (snap.header.newest_row_age or 0) > 10
        assert {p.health for p in snap.providers} == {Health.NO_DATA}
        await pilot.pause(0.3)
        text = screen_text(app)
        assert "✖ no rows" in text and "stale" in text  # at 80x24, in the header
        await gw.record([llm("agent-0")])  # rows again
        await wait_until(pilot, lambda: alert_of(app, "silence:gateway") is None)
        assert not app.snapshot.header.rows_silent
        assert Health.NO_DATA not in {p.health for p in app.snapshot.providers}


async def test_rows_stopping_after_traffic_without_a_counter_is_said(
        pg: asyncpg.Pool, redis: Redis, db_url: str, redis_url: str) -> None:
    await seed(pg, redis)
    gw = Gateway(redis, pg)
    app = make_app(db_url, redis_url, silence_seconds=10)
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_for_data(pilot)
        await flow(gw, 2)
        await redis.delete(*[k async for k in redis.scan_iter("calls:*")])  # a gateway keeping no counter
        await wait_until(pilot, lambda: alert_of(app, "silence:gateway") is not None, timeout=20)
        severity, figure = alert_of(app, "silence:gateway")  # type: ignore[misc]
        assert severity is Severity.WARNING and figure.startswith("no row for") and "stopped writing" in figure
        assert app.snapshot.header.rows_silent  # type: ignore[union-attr]


async def test_a_quiet_fleet_is_not_a_silent_gateway(pg: asyncpg.Pool, redis: Redis, db_url: str,
                                                     redis_url: str) -> None:
    await seed(pg, redis)  # four calls, then nothing: a trickle, not traffic
    app = make_app(db_url, redis_url, silence_seconds=10)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for_data(pilot)
        await pilot.pause(12)
        snap = app.snapshot
        assert snap is not None and (snap.header.newest_row_age or 0) > 10
        assert not snap.header.rows_silent and alert_of(app, "silence:gateway") is None
        assert Health.NO_DATA not in {p.health for p in snap.providers}
        assert "no rows" not in screen_text(app) and "Last row" in screen_text(app)
