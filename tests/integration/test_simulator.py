"""The simulated fleet against real Redis and PostgreSQL: what it writes, and that it obeys the switches.

Runs are accelerated with `speed` (simulated seconds per real second) so each test takes a few
seconds. `created_at` stays the real time of each call, so the SQL windows below (rows per second,
spend in the last 5 minutes) measure what really arrived: an accelerated incident crosses $15 in
5 minutes within seconds, exactly as costtop would see it.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import asyncpg
import pytest
from redis.asyncio import Redis

from costtop.demo.servers import RedisServer
from costtop.demo.simulator import (
    AGENTS,
    INCIDENT_AGENT,
    INCIDENT_MODEL,
    INCIDENT_TOOL,
    MAX_LATENCY_MS,
    MIN_LATENCY_MS,
    PRICES,
    Fleet,
    call_cost,
)
from costtop.gateway import Gateway

FLAT_RATE_AGENTS = {a.name for a in AGENTS if a.flat_rate}


@asynccontextmanager
async def running(fleet: Fleet) -> AsyncIterator[asyncio.Task[None]]:
    """Run the fleet in the background; stop it and surface its errors on the way out."""
    stop = asyncio.Event()
    task = asyncio.create_task(fleet.run(stop))
    try:
        yield task
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)


async def until(what: Callable[[], Awaitable[bool]], task: asyncio.Task[None], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not await what():
        assert not task.done(), task.exception() if not task.cancelled() else "fleet cancelled"
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def rows(pg: asyncpg.Pool, where: str = "TRUE", *args: object) -> int:
    return int(await pg.fetchval(f"SELECT count(*) FROM tool_calls WHERE {where}", *args))


async def test_fleet_writes_a_realistic_mix(pg: asyncpg.Pool, redis: Redis) -> None:
    fleet = Fleet(Gateway(redis, pg), rate=40, speed=40, incident_after=None, seed=7)
    async with running(fleet) as task:
        await asyncio.sleep(1.5)
        # The rarest model (claude-opus-4, a few percent of two small agents' tasks) may take a little longer.
        await until(lambda: _has(pg, "model = 'claude-opus-4'"), task, timeout=8)
    total = await rows(pg)
    assert total == fleet.stats.recorded > 1000
    assert fleet.stats.refused == fleet.stats.dropped == fleet.stats.write_errors == 0

    agents = {r[0] for r in await pg.fetch("SELECT DISTINCT agent_id FROM tool_calls")}
    assert agents == {a.name for a in AGENTS} and len(agents) >= 12
    models = {(r["provider"], r["model"]) for r in await pg.fetch(
        "SELECT DISTINCT provider, model FROM tool_calls WHERE model IS NOT NULL")}
    assert models == {(info.provider, name) for name, info in PRICES.items()}
    assert len({p for p, _ in models}) == 3 and len(models) == 6

    # Flat-rate calls: tokens but no cost, only the two Max-plan agents' anthropic calls.
    flat = await pg.fetch("SELECT DISTINCT agent_id, provider FROM tool_calls "
                          "WHERE cost_usd IS NULL AND tokens_in IS NOT NULL")
    assert flat and {r["agent_id"] for r in flat} <= FLAT_RATE_AGENTS
    assert {r["provider"] for r in flat} == {"anthropic"}
    assert await rows(pg, "cost_usd IS NULL AND tokens_in IS NULL") == 0

    # Priced LLM calls cost exactly tokens times the list price.
    for r in await pg.fetch("SELECT model, tokens_in, tokens_out, cost_usd FROM tool_calls "
                            "WHERE tool_name = 'llm' AND status = 'success' AND cost_usd IS NOT NULL"):
        assert r["cost_usd"] == call_cost(r["model"], r["tokens_in"], r["tokens_out"])
    assert await rows(pg, "tool_name <> 'llm' AND (provider IS NOT NULL OR tokens_in IS NOT NULL)") == 0

    # Traces: several steps, every parent present in the same trace, context growing step by step.
    multi = await pg.fetchval("SELECT count(*) FROM (SELECT trace_id FROM tool_calls GROUP BY trace_id "
                              "HAVING count(*) > 2) t")
    assert multi > 50
    assert await rows(pg, "parent_span_id IS NOT NULL") > 100
    assert await rows(pg, "trace_id IS NULL OR span_id IS NULL") == 0
    orphans = await rows(pg, "parent_span_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM tool_calls p "
                             "WHERE p.trace_id = tool_calls.trace_id AND p.span_id = tool_calls.parent_span_id)")
    assert orphans == 0
    steps = await pg.fetch("SELECT tokens_in - lag(tokens_in) OVER (PARTITION BY trace_id ORDER BY id) AS growth "
                           "FROM tool_calls WHERE tool_name = 'llm'")
    growth = [r["growth"] for r in steps if r["growth"] is not None]
    assert growth and min(growth) >= 0 and sum(1 for g in growth if g > 0) > len(growth) / 2
    assert await rows(pg, "tool_name = 'web_search'") > 0 and await rows(pg, "tool_name = 'run_tests'") > 0

    # A few percent of errors, with codes; realistic latencies.
    errors = await rows(pg, "status = 'error'")
    assert 0.005 * total < errors < 0.1 * total
    assert await rows(pg, "status = 'error' AND error_code IS NULL") == 0
    assert {"rate_limited", "timeout"} <= {r[0] for r in await pg.fetch(
        "SELECT DISTINCT error_code FROM tool_calls WHERE status = 'error'")}
    low, high = await pg.fetchrow("SELECT min(latency_ms), max(latency_ms) FROM tool_calls")
    assert low >= MIN_LATENCY_MS and high <= MAX_LATENCY_MS
    by_model = dict(await pg.fetch("SELECT model, percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_ms) "
                                   "FROM tool_calls WHERE tool_name = 'llm' AND status = 'success' GROUP BY model"))
    assert by_model["gemini-2.5-flash"] < by_model["claude-sonnet-4"] < by_model["claude-opus-4"]

    # The gateway's counters were bumped for what was written.
    day = datetime.now(UTC).strftime("%Y-%m-%d")
    assert int(await redis.get(f"calls:{day}")) == total


async def test_kill_switches_stop_rows_while_others_continue(pg: asyncpg.Pool, redis: Redis) -> None:
    fleet = Fleet(Gateway(redis, pg), rate=40, speed=25, incident_after=None, seed=3)
    async with running(fleet) as task:
        await until(lambda: _has(pg, "agent_id = 'email-bot'"), task)
        await until(lambda: _has(pg, "model = 'gpt-5-mini'"), task)
        await redis.set("kill:agent:email-bot", "manual:test:runaway")
        await redis.set("kill:model:gpt-5-mini", "manual:test:provider_down")
        await asyncio.sleep(0.4)  # calls already past the check may still be written
        email, mini, others = (await rows(pg, "agent_id = 'email-bot'"), await rows(pg, "model = 'gpt-5-mini'"),
                               await rows(pg, "agent_id <> 'email-bot'"))
        await asyncio.sleep(1.2)
        assert await rows(pg, "agent_id = 'email-bot'") == email
        assert await rows(pg, "model = 'gpt-5-mini'") == mini
        assert await rows(pg, "agent_id <> 'email-bot'") > others + 300
        # An agent that uses gpt-5-mini and another model keeps going on the other one.
        assert await rows(pg, "agent_id = 'translator' AND id > (SELECT max(id) FROM tool_calls "
                              "WHERE model = 'gpt-5-mini')") > 0
        assert fleet.stats.refused_by["kill:agent:email-bot"] > 0
        assert fleet.stats.refused_by["kill:model:gpt-5-mini"] > 0
        # Resume: the agent's calls come back.
        await redis.delete("kill:agent:email-bot", "kill:model:gpt-5-mini")
        await until(lambda: _more(pg, "agent_id = 'email-bot'", email), task, timeout=5)
        await until(lambda: _more(pg, "model = 'gpt-5-mini'", mini), task, timeout=5)


async def _has(pg: asyncpg.Pool, where: str) -> bool:
    return await rows(pg, where) > 0


async def _more(pg: asyncpg.Pool, where: str, than: int, *args: object) -> bool:
    return await rows(pg, where, *args) > than


async def _rate(pg: asyncpg.Pool, agent: str, seconds: float) -> float:
    start = datetime.now(UTC)
    await asyncio.sleep(seconds)
    end = datetime.now(UTC)
    count = await rows(pg, "agent_id = $1 AND created_at >= $2 AND created_at < $3", agent, start, end)
    return count / (end - start).total_seconds()


async def test_throttle_slows_the_agent_down(pg: asyncpg.Pool, redis: Redis) -> None:
    fleet = Fleet(Gateway(redis, pg), rate=40, speed=10, incident_after=None, seed=5)
    agent = "support-agent"  # the busiest agent: ~67 calls/s here
    async with running(fleet) as task:
        await until(lambda: _has(pg, f"agent_id = '{agent}'"), task)
        before = await _rate(pg, agent, 1.2)
        await redis.set(f"throttle:agent:{agent}", "manual:test:slow_down")
        await asyncio.sleep(0.3)
        after = await _rate(pg, agent, 1.2)
        other = await _rate(pg, "email-bot", 0.5)
    assert before > 30
    assert after < before / 2  # nominally 4x slower; tolerant of a loaded machine
    assert after > 0  # throttled, not killed
    assert other > 30
    assert fleet.stats.throttled > 0 and fleet.stats.refused == 0


async def test_incident_crosses_critical_velocity_and_ends_when_killed(pg: asyncpg.Pool, redis: Redis) -> None:
    fleet = Fleet(Gateway(redis, pg), rate=4, speed=40, incident_after=1.0, seed=11)
    window = ("agent_id = $1 AND created_at > now() - interval '5 minutes'")
    async with running(fleet) as task:
        async def critical() -> bool:
            spent = await pg.fetchval(f"SELECT coalesce(sum(cost_usd), 0) FROM tool_calls WHERE {window}",
                                      INCIDENT_AGENT)
            return spent > Decimal(15)

        await until(critical, task, timeout=12)
        assert fleet.incident_running
        loop = await pg.fetchrow(
            "SELECT trace_id, count(*) FILTER (WHERE tool_name = $2) AS searches, "
            "count(*) FILTER (WHERE model = $3) AS llm, max(tokens_in) - min(tokens_in) AS growth "
            "FROM tool_calls WHERE agent_id = $1 GROUP BY trace_id ORDER BY count(*) DESC LIMIT 1",
            INCIDENT_AGENT, INCIDENT_TOOL, INCIDENT_MODEL)
        assert loop["searches"] > 5 and loop["llm"] > 5 and loop["growth"] > 10_000
        await redis.set(f"kill:agent:{INCIDENT_AGENT}", "manual:test:runaway_loop")
        await until(lambda: _true(not fleet.incident_running), task, timeout=3)
        await asyncio.sleep(0.3)
        count = await rows(pg, "agent_id = $1", INCIDENT_AGENT)
        others = await rows(pg, "agent_id <> $1", INCIDENT_AGENT)
        await asyncio.sleep(0.8)
        assert await rows(pg, "agent_id = $1", INCIDENT_AGENT) == count
        # The incident giving up ends the incident, not the fleet: the other agents keep calling.
        await until(lambda: _more(pg, "agent_id <> $1", others + 20, INCIDENT_AGENT), task, timeout=5)
        assert not task.done()
    assert fleet.stats.incident_ended_at is not None


async def _true(value: bool) -> bool:
    return value


async def test_survives_a_redis_outage_and_a_database_outage(pg: asyncpg.Pool, db_url: str) -> None:
    """Servers going away make the fleet wait and retry; nothing crashes, and no row is lost or doubled."""
    with tempfile.TemporaryDirectory(prefix="costtop-sim-redis-") as tmp:
        server = RedisServer(Path(tmp)).start()
        client = Redis.from_url(server.url, socket_timeout=1, socket_connect_timeout=1)
        pool = await asyncpg.create_pool(db_url, min_size=0, max_size=2, command_timeout=5)
        fleet = Fleet(Gateway(client, pool), rate=40, speed=5, incident_after=None, seed=2)
        try:
            async with running(fleet) as task:
                await until(lambda: _true(fleet.stats.recorded > 50), task)
                server.kill()
                await until(lambda: _true(fleet.stats.check_errors > 0), task)
                await asyncio.sleep(0.5)
                server = RedisServer(Path(tmp), port=server.port).start()
                seen = fleet.stats.recorded
                await until(lambda: _true(fleet.stats.recorded > seen + 50), task)

                # A database outage: every connection dropped and new ones refused for a while.
                await _allow_connections(db_url, False)
                await until(lambda: _true(fleet.stats.write_errors > 0), task)
                await asyncio.sleep(0.5)
                await _allow_connections(db_url, True)
                seen = fleet.stats.recorded
                await until(lambda: _true(fleet.stats.recorded > seen + 50), task)
        finally:
            await pool.close()
            await client.aclose()
            server.stop()
    assert fleet.stats.dropped == 0
    assert await rows(pg) == fleet.stats.recorded


async def _allow_connections(db_url: str, allow: bool) -> None:
    base, name = db_url.rsplit("/", 1)
    admin = await asyncpg.connect(base + "/postgres")
    try:
        await admin.execute(f"ALTER DATABASE {name} ALLOW_CONNECTIONS {'true' if allow else 'false'}")
        if not allow:
            await admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name)
    finally:
        await admin.close()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
async def test_cli_runs_until_signalled_and_exits_quietly(pg: asyncpg.Pool, db_url: str, redis_url: str,
                                                          sig: signal.Signals) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "costtop.demo.simulator", "--redis-url", redis_url, "--database-url", db_url,
         "--rate", "100", "--speed", "2", "--incident-after", "-1", "--seed", "1"],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 15
        while await rows(pg) < 100:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the simulator wrote nothing"
            await asyncio.sleep(0.1)
        proc.send_signal(sig)
        out, err = await asyncio.to_thread(proc.communicate, timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err.decode()
    assert b"Traceback" not in err
    assert out == b""
    assert len({r[0] for r in await pg.fetch("SELECT DISTINCT agent_id FROM tool_calls")}) >= 12


