from __future__ import annotations

from decimal import Decimal

from costtop.gateway import Call, Gateway


async def test_record_writes_rows_and_counters(pg, redis) -> None:
    gw = Gateway(redis, pg)
    await gw.record([
        Call("a1", "llm", 120, provider="anthropic", model="m1", tokens_in=10, tokens_out=5,
             cost_usd=Decimal("0.125")),
        Call("a1", "llm", 80, provider="anthropic", model="m1", tokens_in=10, tokens_out=5, cost_usd=None),
        Call("a2", "search", 30, cost_usd=Decimal("0.5")),
    ])
    total = await pg.fetchval("SELECT sum(cost_usd) FROM tool_calls")
    assert total == Decimal("0.625")
    assert await pg.fetchval("SELECT count(*) FROM tool_calls WHERE cost_usd IS NULL") == 1
    keys = sorted(k.decode() for k in await redis.keys("spent:*"))
    assert [k.split(":")[1] for k in keys] == ["a1", "a2"]
    day = keys[0].split(":")[2]
    assert float(await redis.get(f"spent:a1:{day}")) == 0.125
    assert int(await redis.get(f"calls:{day}")) == 3


async def test_check_honours_each_switch(pg, redis) -> None:
    gw = Gateway(redis, pg)
    assert (await gw.check("a1", "openai", "gpt")).allowed
    await redis.set("kill:model:gpt", "manual:x:y")
    decision = await gw.check("a1", "openai", "gpt")
    assert not decision.allowed and decision.blocked_by == "kill:model:gpt"
    assert (await gw.check("a1", "openai", "other")).allowed
    await redis.set("throttle:agent:a1", "manual:x:y")
    decision = await gw.check("a1", "openai", "other")
    assert decision.allowed and decision.throttled
    await redis.set("kill:global", "manual:x:y")
    assert (await gw.check("a2")).blocked_by == "kill:global"
