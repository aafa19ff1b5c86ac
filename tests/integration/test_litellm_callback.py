"""costtop's LiteLLM callback in-process, against the real test Redis: which agent a request is, which keys
one MGET reads, how a refusal is worded, fail open and closed, the counters after a call."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # litellm would fetch prices from the web at import

from litellm.proxy._types import ProxyException, UserAPIKeyAuth
from redis.asyncio import Redis

from costtop.config import KeyNames, LiteLLMSettings, Settings
from costtop.demo.servers import free_port
from costtop.integrations.litellm import (
    CosttopCallback,
    keys_checked,
)
from costtop.refusals import refusal_marker, refusal_message

TODAY = datetime.now(UTC).strftime("%Y-%m-%d")


class Router:
    """The one thing the callback reads from LiteLLM's router: its model list."""

    model_list = [
        {"model_name": "gpt-4o", "litellm_params": {"model": "openai/gpt-4o-2024-08-06"}},
        {"model_name": "gpt-4o", "litellm_params": {"model": "azure/gpt4o-eu", "custom_llm_provider": "azure"}},
        {"model_name": "claude", "litellm_params": {"model": "anthropic/claude-3-5-sonnet-20240620"}},
    ]


def callback(redis_url: str, **lite: Any) -> CosttopCallback:
    return CosttopCallback(Settings(redis_url=redis_url, litellm=LiteLLMSettings(**lite)), router=Router)


@pytest.fixture
async def cb(redis: Redis, redis_url: str) -> AsyncIterator[CosttopCallback]:
    c = callback(redis_url)
    yield c
    await c.aclose()


def test_one_mget_reads_every_switch_of_the_request(redis_url: str) -> None:
    c = callback(redis_url)
    assert keys_checked(c, {"model": "gpt-4o", "metadata": {"agent_id": "a1"}}) == [
        "kill:global", "kill:agent:a1", "kill:provider:openai", "kill:provider:azure",
        "kill:model:gpt-4o", "kill:model:openai/gpt-4o-2024-08-06", "kill:model:azure/gpt4o-eu",
        "throttle:agent:a1",
    ]
    # No agent: no agent or throttle key (a key for the agent "None" would be checked, and never set).
    assert keys_checked(c, {"model": "claude"}) == [
        "kill:global", "kill:provider:anthropic", "kill:model:claude",
        "kill:model:anthropic/claude-3-5-sonnet-20240620"]
    renamed = CosttopCallback(Settings(redis_url=redis_url, keys=KeyNames(kill="stop", throttle="slow")),
                              router=Router)
    assert keys_checked(renamed, {"model": "unrouted", "metadata": {"user_api_key_end_user_id": "u"}}) == [
        "stop:global", "stop:agent:u", "stop:model:unrouted", "slow:agent:u"]


async def refused(c: CosttopCallback, data: dict[str, Any]) -> ProxyException:
    with pytest.raises(ProxyException) as info:
        await c.async_pre_call_hook(UserAPIKeyAuth(), None, data, "acompletion")
    return info.value


async def test_each_switch_refuses_with_its_name(cb: CosttopCallback, redis: Redis) -> None:
    data = {"model": "gpt-4o", "metadata": {"agent_id": "a1"}}
    assert await cb.async_pre_call_hook(UserAPIKeyAuth(), None, data, "acompletion") is data
    for key in ("kill:agent:a1", "kill:model:gpt-4o", "kill:model:azure/gpt4o-eu", "kill:provider:openai",
                "kill:global"):
        await redis.set(key, "manual:adam:runaway_loop")
        error = await refused(cb, data)
        assert error.code == "403"
        assert error.message == refusal_message("killed", key, "manual:adam:runaway_loop")
        assert refusal_marker("killed") in str(error) and key in str(error)
        await redis.delete(key)
    assert await cb.async_pre_call_hook(UserAPIKeyAuth(), None, data, "acompletion") is data
    # Another agent, another model: none of a1's switches apply.
    await redis.set("kill:agent:a1", "x")
    other = {"model": "claude", "metadata": {"agent_id": "a2"}}
    assert await cb.async_pre_call_hook(UserAPIKeyAuth(), None, other, "acompletion") is other


async def test_throttle_lets_n_a_minute_through_then_429(redis: Redis, redis_url: str) -> None:
    c = callback(redis_url, throttle_per_minute=3)
    data = {"model": "claude", "metadata": {"agent_id": "slow"}}
    await redis.set("throttle:agent:slow", "manual:adam:too_fast")
    if datetime.now(UTC).second > 57:  # the window would turn during the test
        await asyncio.sleep(3)
    minute = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M")  # after the wait, or it names the last minute
    try:
        for _ in range(3):
            await c.async_pre_call_hook(UserAPIKeyAuth(), None, data, "acompletion")
        error = await refused(c, data)
        assert error.code == "429"
        assert error.message == refusal_message("throttled", "throttle:agent:slow", "manual:adam:too_fast")
        assert 1 <= int(error.headers["retry-after"]) <= 60
        # Unthrottled agents are not counted at all (no write on their path).
        other = {"model": "claude", "metadata": {"agent_id": "free"}}
        await c.async_pre_call_hook(UserAPIKeyAuth(), None, other, "acompletion")
        assert [k async for k in redis.scan_iter("calls:minute:free:*")] == []
        assert int(await redis.get(f"calls:minute:slow:{minute}") or 0) >= 4
        assert 0 < await redis.ttl(f"calls:minute:slow:{minute}") <= 120
    finally:
        await c.aclose()


async def stalled_server() -> asyncio.Server:
    """A port that accepts connections and never answers: a Redis that hangs."""
    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()
        writer.close()

    return await asyncio.start_server(hold, "127.0.0.1", 0)


@pytest.mark.parametrize("where", ["closed_port", "hanging"])
async def test_fail_open_lets_the_call_through_and_logs_one_line(where: str, caplog: pytest.LogCaptureFixture) -> None:
    server = await stalled_server() if where == "hanging" else None
    port = server.sockets[0].getsockname()[1] if server else free_port()
    c = callback(f"redis://127.0.0.1:{port}/0", redis_timeout=0.2)
    data = {"model": "claude", "metadata": {"agent_id": "a1"}}
    try:
        with caplog.at_level(logging.WARNING, logger="costtop.litellm"):
            loop = asyncio.get_running_loop()
            started = loop.time()
            assert await c.async_pre_call_hook(UserAPIKeyAuth(), None, data, "acompletion") is data
            assert loop.time() - started < 1.0
            await c.async_pre_call_hook(UserAPIKeyAuth(), None, data, "acompletion")
        lines = [r.getMessage() for r in caplog.records if r.name == "costtop.litellm"]
        assert len(lines) == 2 and all("\n" not in line for line in lines)
        assert f"127.0.0.1:{port}" in lines[0] and "fail_mode=open" in lines[0] and "let through" in lines[0]
    finally:
        await c.aclose()
        if server:
            server.close()


@pytest.mark.parametrize("where", ["closed_port", "hanging"])
async def test_fail_closed_refuses_the_call(where: str, caplog: pytest.LogCaptureFixture) -> None:
    server = await stalled_server() if where == "hanging" else None
    port = server.sockets[0].getsockname()[1] if server else free_port()
    c = callback(f"redis://127.0.0.1:{port}/0", redis_timeout=0.2, fail_mode="closed")
    try:
        with caplog.at_level(logging.WARNING, logger="costtop.litellm"):
            error = await refused(c, {"model": "claude", "metadata": {"agent_id": "a1"}})
        assert error.code == "503" and "fail_mode is closed" in error.message
        assert refusal_marker("killed") not in error.message  # not a switch: the reader must not count a kill
        assert any("fail_mode=closed" in r.getMessage() and "refused" in r.getMessage() for r in caplog.records)
    finally:
        await c.aclose()
        if server:
            server.close()


async def test_a_redis_that_stops_fails_open_then_recovers(tmp_path: Any, caplog: pytest.LogCaptureFixture) -> None:
    """A Redis that answered and then stopped (the client's pooled connection dead): the call goes through
    with a log line, and the switches apply again once Redis is back on the same port."""
    from costtop.demo.servers import RedisServer

    own = RedisServer(tmp_path / "redis").start()
    c = callback(own.url, redis_timeout=0.3)
    data = {"model": "claude", "metadata": {"agent_id": "a1"}}
    try:
        client = Redis.from_url(own.url)
        await client.set("kill:agent:a1", "manual:adam:x")
        await client.aclose()
        assert (await refused(c, data)).code == "403"
        own.kill()
        with caplog.at_level(logging.WARNING, logger="costtop.litellm"):
            assert await c.async_pre_call_hook(UserAPIKeyAuth(), None, data, "acompletion") is data
        assert any("fail_mode=open" in r.getMessage() for r in caplog.records)
        own.start()  # same port, empty: the kill is gone with the data
        client = Redis.from_url(own.url)
        await client.set("kill:agent:a1", "manual:adam:y")
        await client.aclose()
        assert (await refused(c, data)).message.endswith("(manual:adam:y)")
    finally:
        await c.aclose()
        own.stop()


async def test_counters_after_served_and_refused_calls(cb: CosttopCallback, redis: Redis) -> None:
    meta = {"agent_id": "payer", "user_api_key_alias": "k"}
    start = datetime.now(UTC).replace(tzinfo=None).astimezone()  # LiteLLM's start_time: naive local time
    for cost in (0.25, 0.5):
        await cb.async_log_success_event({"model": "claude", "response_cost": cost,
                                          "litellm_params": {"metadata": meta}}, None, start, start)
    # A call LiteLLM could not price: a call, no spend.
    await cb.async_log_success_event({"model": "claude", "response_cost": None,
                                      "litellm_params": {"metadata": meta}}, None, start, start)
    await cb.async_post_call_failure_hook({"model": "claude", "metadata": meta}, ProxyException("x", "t", None, 403),
                                          UserAPIKeyAuth())
    assert Decimal((await redis.get(f"spent:payer:{TODAY}")).decode()) == Decimal("0.75")
    assert int(await redis.get(f"calls:{TODAY}")) == 4
    assert await redis.ttl(f"calls:{TODAY}") > 0 and await redis.ttl(f"spent:payer:{TODAY}") > 0


async def test_counters_lost_are_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    c = callback(f"redis://127.0.0.1:{free_port()}/0", redis_timeout=0.2)
    with caplog.at_level(logging.WARNING, logger="costtop.litellm"):
        await c.async_log_success_event({"model": "m", "response_cost": 1.0,
                                         "litellm_params": {"metadata": {"agent_id": "a"}}}, None, None, None)
    assert any("counters not updated" in r.getMessage() for r in caplog.records)
    await c.aclose()


def test_importing_the_callback_does_not_import_the_ui() -> None:
    import subprocess
    import sys

    code = ("import sys, costtop.integrations.litellm as m; "
            "assert m.costtop_callback is not None; "
            "print(sorted({n.split('.')[0] for n in sys.modules} & {'textual', 'asyncpg'}))")
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "COSTTOP_REDIS_URL": "redis://127.0.0.1:1/0"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env,
                         check=True)
    assert out.stdout.strip() == "[]"
