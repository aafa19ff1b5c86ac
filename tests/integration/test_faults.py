"""Faults with real servers of the tests' own: killed (SIGKILL), frozen (SIGSTOP), absent at start,
back after a while, while a headless costtop runs. The screen must keep answering keys, say which
source is stale, recover by itself, and then show exactly what SQL says."""

from __future__ import annotations

import asyncio
import signal
import tempfile
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import asyncpg
from redis.asyncio import Redis

from appkit import screen_text, wait_until
from costtop.config import Settings, TableNames
from costtop.demo.servers import PostgresServer, RedisServer, ServerPair, free_port
from costtop.gateway import Call, Gateway
from costtop.session import Session
from costtop.sources.feed import LiveFeed
from costtop.sources.records import Outcome, WriteResult
from costtop.sources.schema import init_db
from costtop.ui.app import CosttopApp
from costtop.ui.screens.switch_dialog import SwitchDialog
from redis_proxy import LossyProxy
from tinydisk import fill, tiny_disk_fixture  # noqa: F401 (the tiny_disk fixture)

TIMEOUT = 1.0  # every network call's timeout in these runs: failures show quickly


def calls(agent: str, n: int, cost: str, at: datetime) -> list[Call]:
    return [Call(agent, "llm", 100, provider="p", model="m", cost_usd=Decimal(cost), created_at=at) for _ in range(n)]


async def record(pair: ServerPair, rows: list[Call]) -> None:
    redis = Redis.from_url(pair.redis.url)
    pool = await asyncpg.create_pool(pair.postgres.url, min_size=1, max_size=1)
    try:
        await Gateway(redis, pool).record(rows)
        await pool.execute("CHECKPOINT")  # durable before any SIGKILL (the test server commits asynchronously)
    finally:
        await pool.close()
        await redis.aclose()


async def sql_spend(pair: ServerPair) -> dict[str, tuple[Decimal, int]]:
    conn = await asyncpg.connect(pair.postgres.url)
    try:
        rows = await conn.fetch("SELECT agent_id, sum(cost_usd) AS s, count(*) AS n FROM tool_calls "
                                "WHERE created_at >= date_trunc('day', now(), 'UTC') GROUP BY 1")
    finally:
        await conn.close()
    return {r["agent_id"]: (r["s"], r["n"]) for r in rows}


def shown_spend(app: CosttopApp) -> dict[str, tuple[Decimal | None, int | None]]:
    assert app.snapshot is not None
    return {a.agent_id: (a.spend_today, a.calls_today) for a in app.snapshot.agents}


def make_app(pair: ServerPair, **kw: object) -> CosttopApp:
    settings = Settings(redis_url=pair.redis.url, database_url=pair.postgres.url, timeout_seconds=TIMEOUT, **kw)
    return CosttopApp(settings, Session(settings, LiveFeed(settings)))


async def responsive(pilot, app: CosttopApp) -> None:  # type: ignore[no-untyped-def]
    """A key still works: `s` moves the sort on, at once."""
    before = app.session.engine.sort
    await pilot.press("s")
    await wait_until(pilot, lambda: app.session.engine.sort != before, timeout=2)


async def test_postgres_killed_then_back_resyncs_to_the_exact_totals(killable: ServerPair) -> None:
    now = datetime.now(UTC)
    await record(killable, calls("a", 5, "0.10", now) + calls("b", 3, "1.00", now))
    app = make_app(killable)
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_until(pilot, lambda: app.snapshot is not None and shown_spend(app) == {
            "a": (Decimal("0.50"), 5), "b": (Decimal("3.00"), 3)} and not app.session.engine.day_pending)
        await asyncio.to_thread(killable.postgres.kill)
        await wait_until(pilot, lambda: not app.session.status["Postgres"].connected)
        await wait_until(pilot, lambda: "Postgres STALE" in screen_text(app), timeout=2)
        assert "Redis STALE" not in screen_text(app)
        # The last known figures stay on screen, marked stale, and keys keep working.
        assert shown_spend(app)["b"] == (Decimal("3.00"), 3)
        await responsive(pilot, app)
        await asyncio.sleep(2 * TIMEOUT)  # a few failed reconnects, with backoff
        await asyncio.to_thread(killable.postgres.start)
        later = datetime.now(UTC)
        await record(killable, calls("a", 2, "0.25", later) + calls("c", 1, "7.00", later))
        want = await sql_spend(killable)
        assert want == {"a": (Decimal("1.00"), 7), "b": (Decimal("3.00"), 3), "c": (Decimal("7.00"), 1)}
        await wait_until(pilot, lambda: app.session.status["Postgres"].connected and not app.session.engine.day_pending
                         and shown_spend(app) == want, timeout=30)
        assert "Postgres STALE" not in screen_text(app)


async def test_redis_killed_refuses_kills_then_back_shows_switches_again(killable: ServerPair) -> None:
    await record(killable, calls("a", 2, "0.10", datetime.now(UTC)))
    app = make_app(killable)
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_until(pilot, lambda: app.snapshot is not None and bool(app.snapshot.agents)
                         and app.session.redis_state is not None)
        await asyncio.to_thread(killable.redis.kill)
        await wait_until(pilot, lambda: "Redis STALE" in screen_text(app))
        assert app.snapshot is not None and not app.snapshot.switches_known
        assert "unknown" in screen_text(app)  # switch states, not "ok"
        await responsive(pilot, app)
        # A kill now is refused, never reported as done.
        await pilot.press("k")
        await wait_until(pilot, lambda: isinstance(app.screen, SwitchDialog))
        await pilot.press("tab", "enter")
        await wait_until(pilot, lambda: app.last_write is not None, timeout=10)
        assert app.last_write is not None and not app.last_write.ok and "FAILED" in app.last_write.message
        await asyncio.to_thread(killable.redis.start)
        other = Redis.from_url(killable.redis.url)
        try:
            await other.set("kill:agent:a", "manual:alice:back")
        finally:
            await other.aclose()
        await wait_until(pilot, lambda: app.snapshot is not None and app.snapshot.switches_known
                         and any(s.key == "kill:agent:a" for s in app.snapshot.switches), timeout=30)
        assert "Redis STALE" not in screen_text(app)


async def test_a_frozen_postgres_goes_stale_then_catches_up(killable: ServerPair) -> None:
    """SIGSTOP: the server holds the connection and never answers, as a hung database does."""
    await record(killable, calls("a", 4, "0.50", datetime.now(UTC)))
    app = make_app(killable)
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_until(pilot, lambda: app.snapshot is not None and not app.session.engine.day_pending
                         and shown_spend(app) == {"a": (Decimal("2.00"), 4)})
        killable.postgres.signal_all(signal.SIGSTOP)  # the postmaster and every backend
        try:
            await wait_until(pilot, lambda: "Postgres STALE" in screen_text(app), timeout=5 * TIMEOUT + 2)
            await responsive(pilot, app)
        finally:
            killable.postgres.signal_all(signal.SIGCONT)
        await record(killable, calls("a", 1, "0.50", datetime.now(UTC)))
        await wait_until(pilot, lambda: app.session.status["Postgres"].connected and not app.session.engine.day_pending
                         and shown_spend(app) == {"a": (Decimal("2.50"), 5)}, timeout=30)


async def test_nothing_reachable_at_start_then_both_come_up() -> None:
    root = Path(tempfile.mkdtemp(prefix="costtop-faults-"))
    root.chmod(0o755)  # PostgreSQL runs as nobody when the tests run as root
    pair = ServerPair(root, RedisServer(root / "redis", free_port()), PostgresServer(root / "postgres", free_port()))
    settings = Settings(redis_url=pair.redis.url, database_url=pair.postgres.url, timeout_seconds=TIMEOUT)
    app = CosttopApp(settings, Session(settings, LiveFeed(settings)))
    try:
        async with app.run_test(size=(160, 50)) as pilot:
            await wait_until(pilot, lambda: "Redis STALE" in screen_text(app) and "Postgres STALE" in screen_text(app))
            text = screen_text(app)
            assert "never read" in text and "Traceback" not in text
            await responsive(pilot, app)
            await asyncio.to_thread(pair.redis.start)
            await asyncio.to_thread(pair.postgres.start)
            conn = await asyncpg.connect(pair.postgres.url)
            try:
                await init_db(conn, TableNames())
            finally:
                await conn.close()
            await record(pair, calls("late", 3, "0.20", datetime.now(UTC) - timedelta(seconds=1)))
            await wait_until(pilot, lambda: app.snapshot is not None and not app.session.engine.day_pending
                             and shown_spend(app) == {"late": (Decimal("0.60"), 3)}, timeout=60)
            assert "STALE" not in screen_text(app)
    finally:
        await asyncio.to_thread(pair.stop)


async def test_a_kill_while_postgres_is_down_keeps_its_audit_row_until_it_is_back(killable: ServerPair) -> None:
    await record(killable, calls("a", 2, "0.10", datetime.now(UTC)))
    app = make_app(killable)
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_until(pilot, lambda: app.snapshot is not None and bool(app.snapshot.agents)
                         and app.session.redis_state is not None and not app.session.engine.day_pending)
        await asyncio.to_thread(killable.postgres.kill)
        await wait_until(pilot, lambda: "Postgres STALE" in screen_text(app))
        await pilot.press("k")
        await wait_until(pilot, lambda: isinstance(app.screen, SwitchDialog))
        await pilot.press("tab", "enter")
        await wait_until(pilot, lambda: app.last_write is not None, timeout=10)
        result = app.last_write
        assert result is not None and result.ok and result.audit_pending and not result.audit_written
        redis = Redis.from_url(killable.redis.url)
        try:
            assert await redis.exists("kill:agent:a") == 1  # the switch itself is on
        finally:
            await redis.aclose()
        await wait_until(pilot, lambda: "1 audit row waiting for Postgres" in screen_text(app))
        await asyncio.to_thread(killable.postgres.start)
        await wait_until(pilot, lambda: app.session.engine.audit_pending == 0
                         and app.session.status["Postgres"].connected,
                         timeout=30)
        # The session's thread has written it; the screen says so at its next snapshot, not at once.
        await wait_until(pilot, lambda: "audit row waiting" not in screen_text(app), timeout=10)
    conn = await asyncpg.connect(killable.postgres.url)
    try:
        rows = await conn.fetch("SELECT action, target, result FROM costtop_audit")
    finally:
        await conn.close()
    assert [tuple(r) for r in rows] == [("set:kill", "a", "set")]


async def press_kill(pilot, app: CosttopApp) -> WriteResult:  # type: ignore[no-untyped-def]
    """`k` on the selected agent, confirmed: the result the dialog reported."""
    await wait_until(pilot, lambda: app.snapshot is not None and bool(app.snapshot.agents)
                     and app.session.redis_state is not None and not app.session.engine.day_pending)
    await pilot.press("k")
    await wait_until(pilot, lambda: isinstance(app.screen, SwitchDialog))
    await pilot.press("tab", "enter")
    await wait_until(pilot, lambda: app.last_write is not None, timeout=10)
    assert app.last_write is not None
    return app.last_write


async def test_a_kill_whose_reply_is_lost_and_cannot_be_checked_says_unknown(killable: ServerPair) -> None:
    """Redis takes the SET, the connection drops before the reply, and Redis is unreachable after:
    the screen says UNKNOWN (never NOT DONE), and the audit row says what was seen."""
    await record(killable, calls("a", 2, "0.10", datetime.now(UTC)))
    proxy = await LossyProxy(killable.redis.port, "drop_reply", refuse_after_drop=True).start()
    settings = Settings(redis_url=f"redis://127.0.0.1:{proxy.port}/0", database_url=killable.postgres.url,
                        timeout_seconds=TIMEOUT)
    app = CosttopApp(settings, Session(settings, LiveFeed(settings)))
    try:
        async with app.run_test(size=(160, 50)) as pilot:
            result = await press_kill(pilot, app)
            assert result.outcome is Outcome.UNKNOWN and not result.ok
            await wait_until(pilot, lambda: any(n.title == "UNKNOWN: check Redis" for n in app._notifications))
            assert not any(n.title == "NOT DONE" for n in app._notifications)
    finally:
        await proxy.close()
    redis = Redis.from_url(killable.redis.url)
    try:
        assert await redis.exists("kill:agent:a") == 1
    finally:
        await redis.aclose()
    conn = await asyncpg.connect(killable.postgres.url)
    try:
        assert await conn.fetchval("SELECT result FROM costtop_audit") == "unknown"
    finally:
        await conn.close()


async def test_a_full_disk_under_the_audit_spool_is_said_on_screen(killable: ServerPair, tiny_disk: Path) -> None:
    await record(killable, calls("a", 2, "0.10", datetime.now(UTC)))
    app = make_app(killable, audit_spool=str(tiny_disk / "spool.jsonl"))
    fill(tiny_disk)
    async with app.run_test(size=(160, 50)) as pilot:
        result = await press_kill(pilot, app)
        assert result.ok and result.audit_written and result.spool_error == "No space left on device"
        await wait_until(pilot, lambda: "audit spool cannot be written (No space left on device)"
                         in screen_text(app))
