"""The README's "Connect your gateway" page gives the exact Redis commands and the row a gateway must
write: they are read from the page and compared with what costtop.gateway.Gateway sends to a real
Redis (captured with MONITOR) and writes to a real Postgres."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime
from decimal import Decimal

import asyncpg
from redis.asyncio import Redis

from costtop.gateway import Call, Gateway
from costtop.sources.fallback_file import FALLBACK_COLUMNS
from test_gateway_page_unit import page

HANDSHAKE = ("CLIENT", "HELLO", "SELECT", "PING", "AUTH")


def block(kind: str) -> list[str]:
    """The lines of the page's one fenced block of this kind, comments left out."""
    found = re.findall(rf"```{kind}\n(.*?)```", page(), flags=re.S)
    assert len(found) == 1, f"one ```{kind} block expected"
    lines = [line.strip() for line in found[0].splitlines()]
    return [line for line in lines if line and not line.startswith(("#", "--"))]


def expected(agent: str, provider: str, model: str, day: str, cost: str) -> list[re.Pattern[str]]:
    out = []
    for line in block("redis"):
        pattern = re.escape(line)
        for name, value in (("agent", agent), ("provider", provider), ("model", model), ("day", day),
                            ("cost_usd", cost)):
            pattern = pattern.replace(re.escape("{" + name + "}"), re.escape(value))
        pattern = pattern.replace(re.escape("{minute}"), r"\d{4}-\d\d-\d\dT\d\d:\d\d")
        assert "{" not in pattern.replace(r"\d{4}", ""), f"a placeholder the test does not know: {line}"
        out.append(re.compile(pattern))
    return out


async def test_the_pages_redis_commands_are_what_the_gateway_sends(pg: asyncpg.Pool, redis: Redis,
                                                                   redis_url: str) -> None:
    await redis.set("throttle:agent:a1", "manual:adam:slow_down")
    when = datetime.now(UTC)
    gateway_redis = Redis.from_url(redis_url)
    await gateway_redis.ping()  # the connection's handshake happens before the capture
    sent: list[str] = []
    async with redis.monitor() as monitor:
        async def capture() -> None:
            while True:
                info = await monitor.next_command()
                if not info["command"].upper().startswith(HANDSHAKE):
                    sent.append(info["command"])

        task = asyncio.create_task(capture())
        try:
            gw = Gateway(gateway_redis, pg, throttle_per_minute=6)
            decision = await gw.check("a1", "p1", "m1")
            assert decision.allowed and decision.throttled
            await gw.record([Call("a1", "llm", 42, provider="p1", model="m1", cost_usd=Decimal("0.25"),
                                  created_at=when)])
            want = expected("a1", "p1", "m1", when.strftime("%Y-%m-%d"), "0.25")
            for _ in range(100):
                if len(sent) >= len(want):
                    break
                await asyncio.sleep(0.05)
        finally:
            task.cancel()
            await gateway_redis.aclose()
    assert len(sent) == len(want), sent
    for command, pattern in zip(sent, want, strict=True):
        assert pattern.fullmatch(command), (command, pattern.pattern)


async def test_past_the_minutes_limit_the_gateway_refuses_as_the_page_says(redis: Redis, pg: asyncpg.Pool) -> None:
    await redis.set("throttle:agent:a1", "manual:adam:slow_down")
    gw = Gateway(redis, pg, throttle_per_minute=2)
    decisions = [await gw.check("a1") for _ in range(3)]
    assert [d.allowed for d in decisions] == [True, True, False]
    assert decisions[2].throttled and decisions[2].retry_after is not None and 1 <= decisions[2].retry_after <= 60
    assert (await gw.check("a2")).allowed  # not throttled: never counted
    assert await redis.keys("calls:minute:a2:*") == []


async def test_the_pages_row_is_the_gateways_and_postgres_takes_it(pg: asyncpg.Pool) -> None:
    (sql,) = [" ".join(block("sql"))]
    columns = re.search(r"\((.*?)\)\s*VALUES", sql, flags=re.S)
    assert columns is not None
    assert tuple(c.strip() for c in columns.group(1).split(",")) == FALLBACK_COLUMNS
    assert f"({', '.join(f'{chr(34)}{c}{chr(34)}' for c in FALLBACK_COLUMNS)})" in Gateway(None, pg)._insert_sql()  # type: ignore[arg-type]
    await pg.execute(sql.rstrip(";"), datetime.now(UTC), "a1", "llm", 42, "p1", "m1", 10, 5, 0, Decimal("0.25"),
                     "success", None, "t1", "s1", None)
    assert await pg.fetchval("SELECT count(*) FROM tool_calls WHERE agent_id = 'a1'") == 1


