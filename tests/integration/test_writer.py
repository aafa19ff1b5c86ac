"""SwitchWriter against real Redis and PostgreSQL: the key, its TTL, the audit row, and honest failures."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from urllib.parse import urlsplit

import asyncpg
import pytest

from costtop.config import Settings
from costtop.demo.servers import free_port
from costtop.engine.engine import Engine
from costtop.gateway import Call, Gateway
from costtop.sources.postgres import PostgresReader
from costtop.sources.records import Outcome, SwitchChange, WriteResult
from costtop.sources.redis_state import RedisReader, connect_redis
from costtop.sources.writer import Operator, ReadOnlyError, SwitchWriter
from redis_proxy import LossyProxy

OP = Operator("tester", "10.0.0.7")


def settings(redis_url: str, db_url: str = "postgresql://postgres@127.0.0.1:1/x", **kw: object) -> Settings:
    return Settings(redis_url=redis_url, database_url=db_url, **kw)


async def audit_rows(pg: asyncpg.Pool) -> list[asyncpg.Record]:
    return await pg.fetch("SELECT * FROM costtop_audit ORDER BY id")


async def test_set_kill_with_reason_and_ttl(pg, redis, redis_url) -> None:
    writer = SwitchWriter(settings(redis_url), redis, pg, OP)
    before = datetime.now(UTC)
    result = await writer.apply(SwitchChange("set", "kill", "agent", "runner", "runaway loop", 600))
    assert result.ok and result.audit_written
    assert "kill:agent:runner" in result.message and "FAILED" not in result.message
    assert await redis.get("kill:agent:runner") == b"manual:tester:runaway loop"
    assert 595 <= await redis.ttl("kill:agent:runner") <= 600
    (row,) = await audit_rows(pg)
    assert dict(row) | {"id": None, "at": None, "entry_id": None} == {
        "id": None, "at": None, "entry_id": None, "operator": "tester", "ssh_client": "10.0.0.7", "action": "set:kill",
        "scope": "agent", "target": "runner", "key": "kill:agent:runner", "reason": "runaway loop",
        "ttl_seconds": 600, "result": "set", "detail": None, "via": None, "client_addr": None,
    }
    assert before - timedelta(seconds=5) <= row["at"] <= datetime.now(UTC) + timedelta(seconds=5)


async def test_set_global_kill_without_ttl_and_reason(pg, redis, redis_url) -> None:
    writer = SwitchWriter(settings(redis_url), redis, pg, OP)
    result = await writer.apply(SwitchChange("set", "kill", "global", "*"))
    assert result.ok and result.audit_written
    assert await redis.get("kill:global") == b"manual:tester:no reason given"
    assert await redis.ttl("kill:global") == -1
    (row,) = await audit_rows(pg)
    assert (row["key"], row["reason"], row["ttl_seconds"], row["result"]) == ("kill:global", None, None, "set")


async def test_written_switches_are_read_back_and_honoured_by_the_gateway(pg, redis, redis_url) -> None:
    writer = SwitchWriter(settings(redis_url), redis, pg, OP)
    await writer.apply(SwitchChange("set", "kill", "model", "gpt-4o", "too expensive", 60))
    await writer.apply(SwitchChange("set", "throttle", "agent", "slow", "rate"))
    reader = RedisReader(settings(redis_url), redis)
    switches = {s.key: s for s in (await reader.read()).switches}
    assert switches["kill:model:gpt-4o"].origin == ("manual", "tester", "too expensive")
    assert 55 <= (switches["kill:model:gpt-4o"].ttl_seconds or 0) <= 60
    assert switches["throttle:agent:slow"].origin == ("manual", "tester", "rate")
    gw = Gateway(redis, pg)
    assert (await gw.check("any", "openai", "gpt-4o")).blocked_by == "kill:model:gpt-4o"
    decision = await gw.check("slow", "openai", "other")
    assert decision.allowed and decision.throttled


async def test_reason_is_single_line_and_clean(pg, redis, redis_url) -> None:
    writer = SwitchWriter(settings(redis_url), redis, pg, OP)
    await writer.apply(SwitchChange("set", "kill", "provider", "openai", "bad\x1b]0;x\x07 day\nsecond", 30))
    value = (await redis.get("kill:provider:openai")).decode()
    assert value.startswith("manual:tester:") and not any(c in value for c in "\x1b\x07\n\r")
    (row,) = await audit_rows(pg)
    assert not any(c in row["reason"] for c in "\x1b\x07\n\r")


async def test_remove_and_remove_absent(pg, redis, redis_url) -> None:
    writer = SwitchWriter(settings(redis_url), redis, pg, OP)
    await redis.set("throttle:agent:slow", "manual:someone:else")
    result = await writer.apply(SwitchChange("remove", "throttle", "agent", "slow", "back to normal"))
    assert result.ok and result.audit_written and "removed" in result.message
    assert await redis.exists("throttle:agent:slow") == 0
    again = await writer.apply(SwitchChange("remove", "throttle", "agent", "slow"))
    assert again.ok and again.audit_written
    assert "was not set" in again.message
    rows = await audit_rows(pg)
    assert [(r["action"], r["key"], r["result"]) for r in rows] == [
        ("remove:throttle", "throttle:agent:slow", "removed"),
        ("remove:throttle", "throttle:agent:slow", "was not set"),
    ]
    assert rows[0]["reason"] == "back to normal"


async def test_redis_unreachable_is_failed_never_done(pg, redis) -> None:
    url = f"redis://:s3cret@127.0.0.1:{free_port()}/0"
    s = settings(url, timeout_seconds=2)
    client = connect_redis(s)
    try:
        writer = SwitchWriter(s, client, pg, OP)
        for change in (SwitchChange("set", "kill", "agent", "runner", "why", 60),
                       SwitchChange("remove", "kill", "agent", "runner")):
            result = await writer.apply(change)
            assert result.ok is False
            assert "FAILED" in result.message
            assert "s3cret" not in result.message and "\n" not in result.message
            assert " set" not in result.message.split(":", 1)[0]
    finally:
        await client.aclose()
    rows = await audit_rows(pg)
    assert [r["result"] for r in rows] == ["failed", "failed"]
    assert all("s3cret" not in (r["detail"] or "") for r in rows)
    assert await redis.exists("kill:agent:runner") == 0


async def test_postgres_closed_pool_switch_still_set(db_url, redis, redis_url) -> None:
    pool = await asyncpg.create_pool(db_url, min_size=1, max_size=1)
    await pool.close()
    writer = SwitchWriter(settings(redis_url, db_url), redis, pool, OP)
    result = await writer.apply(SwitchChange("set", "kill", "agent", "runner", "why"))
    assert result.ok is True and result.audit_written is False and result.audit_pending is True
    assert f"audit row kept in {writer.spool.path}" in result.message
    assert await redis.get("kill:agent:runner") == b"manual:tester:why"
    assert [e.key for e in writer.spool.pending()] == ["kill:agent:runner"]


@pytest.mark.parametrize("pool_kind", ["none", "no_audit_table"])
async def test_postgres_unusable_switch_still_set(pool_kind, empty_db_url, redis, redis_url) -> None:
    pool = await asyncpg.create_pool(empty_db_url, min_size=1, max_size=1) if pool_kind != "none" else None
    try:
        writer = SwitchWriter(settings(redis_url, empty_db_url), redis, pool, OP)
        result = await writer.apply(SwitchChange("remove", "kill", "global", "*"))
        assert result.ok is True and result.audit_written is False and result.audit_pending is True
        assert "audit row kept" in result.message and "was not set" in result.message
        result = await writer.apply(SwitchChange("set", "kill", "global", "*", "stop"))
        assert result.ok is True and result.audit_written is False
        assert await redis.get("kill:global") == b"manual:tester:stop"
        assert [e.action for e in writer.spool.pending()] == ["remove:kill", "set:kill"]
    finally:
        if pool is not None:
            await pool.close()


def test_read_only_refuses_to_build_a_writer(redis_url) -> None:
    with pytest.raises(ReadOnlyError):
        SwitchWriter(settings(redis_url, read_only=True), connect_redis(settings(redis_url)), None, OP)


async def test_a_change_through_the_web_view_says_so_and_from_where(pg, redis, redis_url) -> None:
    writer = SwitchWriter(settings(redis_url), redis, pg, Operator("serve-user", None, "web", "127.0.0.1"))
    result = await writer.apply(SwitchChange("set", "kill", "global", "*", "runaway"))
    assert result.ok and result.audit_written
    (row,) = await audit_rows(pg)
    assert (row["operator"], row["via"], row["client_addr"], row["detail"]) == ("serve-user", "web", "127.0.0.1", None)


async def test_an_audit_table_without_the_web_columns_still_takes_every_row(pg, redis, redis_url) -> None:
    """A table made before `via`/`client_addr` (no `costtop db init` since): terminal rows go in as
    before, and a web row goes in with where it came from in `detail` rather than being held back."""
    await pg.execute("ALTER TABLE costtop_audit DROP COLUMN via, DROP COLUMN client_addr")
    terminal = SwitchWriter(settings(redis_url), redis, pg, OP)
    web = SwitchWriter(settings(redis_url), redis, pg, Operator("serve-user", None, "web", "10.9.8.7"))
    assert (await terminal.apply(SwitchChange("set", "kill", "agent", "a", "x"))).audit_written
    result = await web.apply(SwitchChange("set", "kill", "agent", "b", "y"))
    assert result.audit_written and not result.audit_pending
    rows = await audit_rows(pg)
    assert [(r["target"], r["detail"]) for r in rows] == [
        ("a", None),
        ("b", "via web from 10.9.8.7 (no via/client_addr columns: run `costtop db init`)"),
    ]
    assert web.spool.pending() == []


async def test_message_keeps_target_case(pg, redis, redis_url) -> None:
    writer = SwitchWriter(settings(redis_url), redis, pg, OP)
    result = await writer.apply(SwitchChange("set", "kill", "agent", "BillingBot", "why"))
    assert result.message.startswith("Kill agent BillingBot")


async def test_resume_of_switch_with_control_characters_removes_the_real_key(pg, redis, redis_url) -> None:
    await redis.set("kill:agent:bad\x1bname", "auto:rule:x")
    (switch,) = (await RedisReader(settings(redis_url), redis).read()).switches
    writer = SwitchWriter(settings(redis_url), redis, pg, OP)
    result = await writer.apply(SwitchChange("remove", switch.kind.value, switch.scope, switch.target))
    assert result.ok
    assert await redis.exists("kill:agent:bad\x1bname") == 0, result.message


async def test_kill_of_agent_whose_id_has_control_characters_blocks_it(pg, db_url, redis, redis_url) -> None:
    raw_id = "pay\x1b[0mbot"
    gw = Gateway(redis, pg)
    await gw.record([Call(raw_id, "llm", 10, cost_usd=Decimal("1"), created_at=datetime.now(UTC))])
    reader = PostgresReader(settings(redis_url, db_url))
    try:
        baseline = await reader.baseline(datetime.now(UTC))
    finally:
        await reader.close()
    engine = Engine(columns=("cost_usd",))
    engine.load(baseline)
    (agent,) = engine.snapshot(datetime.now(UTC), None).agents
    writer = SwitchWriter(settings(redis_url), redis, pg, OP)
    result = await writer.apply(SwitchChange("set", "kill", "agent", agent.agent_id, "runaway"))
    assert result.ok
    assert not (await gw.check(raw_id)).allowed, result.message


async def test_kill_after_connection_drop_succeeds(pg, redis, redis_url) -> None:
    s = settings(redis_url)
    client = connect_redis(s)
    try:
        writer = SwitchWriter(s, client, pg, OP)
        assert (await writer.apply(SwitchChange("set", "throttle", "agent", "a", "warm-up"))).ok
        await redis.client_kill_filter(skipme=True, _type="normal")
        result = await writer.apply(SwitchChange("set", "kill", "global", "*", "emergency"))
        assert result.ok, result.message
    finally:
        await client.aclose()


async def test_writer_recovers_on_the_next_attempt_after_connection_drop(pg, redis, redis_url) -> None:
    s = settings(redis_url)
    client = connect_redis(s)
    try:
        writer = SwitchWriter(s, client, pg, OP)
        assert (await writer.apply(SwitchChange("set", "throttle", "agent", "a", "warm-up"))).ok
        await redis.client_kill_filter(skipme=True, _type="normal")
        first = await writer.apply(SwitchChange("set", "kill", "global", "*", "emergency"))
        if not first.ok:  # never reported done when it was not
            assert "FAILED" in first.message
            first = await writer.apply(SwitchChange("set", "kill", "global", "*", "emergency"))
        assert first.ok
        assert await redis.get("kill:global") == b"manual:tester:emergency"
    finally:
        await client.aclose()


# -- a write whose reply is lost: reported as what Redis holds ------------------------------------

async def lossy(redis_url: str, mode: str, refuse_after_drop: bool = False) -> LossyProxy:
    return await LossyProxy(urlsplit(redis_url).port or 6379, mode, refuse_after_drop).start()


async def write_through(redis_url: str, pg: asyncpg.Pool, change: SwitchChange, mode: str,
                        settings_kw: dict[str, object] | None = None,
                        **proxy_kw: object) -> tuple[WriteResult, LossyProxy]:
    """One change written through a lossy proxy in front of the real Redis (closed after)."""
    proxy = await lossy(redis_url, mode, **proxy_kw)
    s = settings(f"redis://127.0.0.1:{proxy.port}/0", **(settings_kw or {}))
    client = connect_redis(s)
    try:
        return await SwitchWriter(s, client, pg, OP).apply(change), proxy
    finally:
        await client.aclose()
        await proxy.close()


@pytest.mark.parametrize("mode", ["drop_reply", "hold_reply"])
async def test_a_kill_that_happened_but_whose_reply_was_lost_is_done(mode, pg, redis, redis_url) -> None:
    """A connection dropped after SET went out, or a reply that never comes (a timeout): Redis has the
    key, so the operator is told it is done, and the audit row says what the re-read found."""
    result, proxy = await write_through(redis_url, pg, SwitchChange("set", "kill", "agent", "runner", "loop"), mode,
                                        settings_kw={"timeout_seconds": 0.5})
    assert proxy.dropped >= 1  # the fault did happen
    assert await redis.get("kill:agent:runner") == b"manual:tester:loop"
    assert (result.outcome, result.ok) == (Outcome.DONE, True), result.message
    assert "FAILED" not in result.message and "re-read shows it set" in result.message
    (row,) = await audit_rows(pg)
    assert row["result"] == "set" and "re-read: our value" in row["detail"]


async def test_a_resume_whose_reply_was_lost_is_done(pg, redis, redis_url) -> None:
    await redis.set("kill:agent:runner", "manual:someone:why")
    result, proxy = await write_through(redis_url, pg, SwitchChange("remove", "kill", "agent", "runner"),
                                        "drop_reply")
    assert proxy.dropped >= 1 and await redis.exists("kill:agent:runner") == 0
    assert (result.outcome, result.ok) == (Outcome.DONE, True), result.message
    (row,) = await audit_rows(pg)
    assert (row["result"], row["action"]) == ("removed", "remove:kill")


async def test_a_kill_that_never_reached_redis_is_not_done_as_the_re_read_shows(pg, redis, redis_url) -> None:
    result, proxy = await write_through(redis_url, pg, SwitchChange("set", "kill", "agent", "runner", "loop"),
                                        "swallow")
    assert proxy.dropped >= 1 and await redis.exists("kill:agent:runner") == 0
    assert (result.outcome, result.ok) == (Outcome.NOT_DONE, False)
    assert result.message.startswith("FAILED") and "re-read: absent" in result.message
    (row,) = await audit_rows(pg)
    assert row["result"] == "not set" and "re-read: absent" in row["detail"]


async def test_a_lost_reply_that_cannot_be_checked_is_unknown_never_not_done(pg, redis, redis_url) -> None:
    """Redis took the kill, then became unreachable: saying NOT DONE would send the operator to kill
    again, or elsewhere; saying done would be a guess. It is UNKNOWN, on screen and in the audit row."""
    result, _ = await write_through(redis_url, pg, SwitchChange("set", "kill", "global", "*", "stop"),
                                    "drop_reply", refuse_after_drop=True)
    assert await redis.get("kill:global") == b"manual:tester:stop"  # it did happen
    assert (result.outcome, result.ok) == (Outcome.UNKNOWN, False)
    assert result.message.startswith("UNKNOWN") and "re-read failed" in result.message
    assert "FAILED" not in result.message
    (row,) = await audit_rows(pg)
    assert row["result"] == "unknown" and "re-read failed" in row["detail"]


async def test_a_kill_that_lands_after_the_timeout_is_never_reported_not_done(pg, redis, redis_url) -> None:
    """The SET is held on its way for longer than the timeout: the re-read finds nothing yet, but the kill
    lands a moment later. Saying NOT DONE would be false; it is UNKNOWN, on screen and in the audit row."""
    proxy = await lossy(redis_url, "late")
    s = settings(f"redis://127.0.0.1:{proxy.port}/0", timeout_seconds=0.3)
    client = connect_redis(s)
    try:
        result = await SwitchWriter(s, client, pg, OP).apply(SwitchChange("set", "kill", "agent", "runner", "loop"))
        assert (result.outcome, result.ok) == (Outcome.UNKNOWN, False), result.message
        assert "may still arrive" in result.message
        (row,) = await audit_rows(pg)
        assert row["result"] == "unknown"
        for _ in range(50):  # and it does land, through the proxy that still holds it
            if await redis.exists("kill:agent:runner"):
                break
            await asyncio.sleep(0.1)
        assert await redis.get("kill:agent:runner") == b"manual:tester:loop"
    finally:
        await client.aclose()
        await proxy.close()
