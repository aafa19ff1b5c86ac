"""RedisReader against a real Redis: switches, TTLs, budgets, hostile text, SCAN at scale."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import replace
from decimal import Decimal

import pytest

from costtop.config import KeyNames, Settings
from costtop.demo.servers import free_port
from costtop.sources.errors import SourceError
from costtop.sources.records import RedisState, SwitchKind, SwitchRecord, Unparsed
from costtop.sources.redis_state import KEY_BATCH, RedisReader
from costtop.text import clean


def reader(url: str, **kw: object) -> RedisReader:
    return RedisReader(Settings(redis_url=url, **kw))


async def read(url: str, **kw: object) -> RedisState:
    r = reader(url, **kw)
    try:
        return await r.read()
    finally:
        await r.close()


def by_key(state: RedisState) -> dict[str, SwitchRecord]:
    return {s.key: s for s in state.switches}


def all_strings(state: RedisState) -> list[str]:
    out: list[str] = []
    for s in state.switches:
        out += [s.key, s.scope, s.target, s.value or "", *s.origin]
    for name, amount in state.budgets.items():
        out.append(name)
        if isinstance(amount, Unparsed):
            out.append(amount.raw)
    for g in (state.global_day_budget, state.global_month_budget):
        if isinstance(g, Unparsed):
            out.append(g.raw)
    return out


async def test_empty_redis(redis, redis_url) -> None:
    state = await read(redis_url)
    assert state == RedisState((), {}, None, None)


async def test_switches_with_and_without_ttl(redis, redis_url) -> None:
    await redis.set("kill:agent:runner", "manual:adam:runaway_loop")
    await redis.set("kill:global", "auto:velocity:15.20_usd_in_5m", ex=120)
    await redis.set("kill:provider:openai", "just because")
    await redis.set("kill:model:gpt-4o", "manual:eve:too:many:colons")
    await redis.set("throttle:agent:slow", "manual:bob:rate", px=30_500)
    state = await read(redis_url)
    s = by_key(state)
    assert set(s) == {"kill:agent:runner", "kill:global", "kill:provider:openai", "kill:model:gpt-4o",
                      "throttle:agent:slow"}
    assert state.switches[0].key == "kill:global"  # global first

    g = s["kill:global"]
    assert (g.kind, g.scope, g.target) == (SwitchKind.KILL, "global", "*")
    assert g.ttl_seconds is not None and 118 <= g.ttl_seconds <= 120
    assert g.origin == ("auto", "velocity", "15.20_usd_in_5m")

    a = s["kill:agent:runner"]
    assert (a.kind, a.scope, a.target, a.ttl_seconds) == (SwitchKind.KILL, "agent", "runner", None)
    assert a.value == "manual:adam:runaway_loop"
    assert a.origin == ("manual", "adam", "runaway_loop")

    assert s["kill:provider:openai"].origin == ("?", "?", "just because")
    assert (s["kill:provider:openai"].scope, s["kill:provider:openai"].target) == ("provider", "openai")
    assert s["kill:model:gpt-4o"].origin == ("manual", "eve", "too:many:colons")

    t = s["throttle:agent:slow"]
    assert (t.kind, t.scope, t.target) == (SwitchKind.THROTTLE, "agent", "slow")
    assert t.ttl_seconds is not None and 29 <= t.ttl_seconds <= 30.5


async def test_switch_of_wrong_type_is_still_on(redis, redis_url) -> None:
    await redis.rpush("kill:agent:listy", "a", "b")
    await redis.hset("throttle:agent:hashy", "k", "v")
    await redis.expire("throttle:agent:hashy", 60)
    s = by_key(await read(redis_url))
    assert s["kill:agent:listy"].value is None
    assert s["kill:agent:listy"].target == "listy"
    assert s["kill:agent:listy"].origin == ("?", "?", "unreadable value")
    assert s["throttle:agent:hashy"].value is None
    assert 55 <= (s["throttle:agent:hashy"].ttl_seconds or 0) <= 60


async def test_budgets(redis, redis_url) -> None:
    await redis.set("budget:alpha", "12.50")
    await redis.set("budget:beta", " 7.1000000000000001 ")  # INCRBYFLOAT-style drift, padded
    await redis.set("budget:bad", "twelve dollars")
    await redis.set("budget:nan", "NaN")
    await redis.rpush("budget:listy", "1")
    await redis.set("budget:global:day", "200")
    await redis.set("budget:global:month", "3000.00")
    state = await read(redis_url)
    assert state.budgets["alpha"] == Decimal("12.50")
    assert state.budgets["beta"] == Decimal("7.1000000000000001")
    assert isinstance(state.budgets["bad"], Unparsed) and state.budgets["bad"].raw == "twelve dollars"
    assert isinstance(state.budgets["nan"], Unparsed)
    assert isinstance(state.budgets["listy"], Unparsed)
    assert "global:day" not in state.budgets and "global:month" not in state.budgets
    assert state.global_day_budget == Decimal("200")
    assert state.global_month_budget == Decimal("3000")


async def test_unparseable_global_budget_is_unparsed(redis, redis_url) -> None:
    await redis.set("budget:global:day", "lots")
    state = await read(redis_url)
    assert isinstance(state.global_day_budget, Unparsed)
    assert state.global_month_budget is None


async def test_spend_counters_and_other_keys_are_not_switches(redis, redis_url) -> None:
    await redis.set("spent:alpha:2025-01-01", "1.5")
    await redis.set("calls:2025-01-01", "3")
    await redis.set("killer:agent:x", "not a switch")
    await redis.set("budgetary", "9")
    state = await read(redis_url)
    assert state == RedisState((), {}, None, None)


async def test_values_are_cleaned_and_keys_kept_exact(redis, redis_url) -> None:
    """Values are display text and are cleaned; keys and targets stay exact so that resume deletes
    the very key that is on. The UI cleans them when it renders them."""
    evil = "\x1b]0;pwned\x07\x1b[2J\x9b31m\u202eevil\x00"
    await redis.set(f"kill:agent:{evil}", f"manual:{evil}:{evil}\r\nsecond line")
    await redis.set(f"throttle:model:{evil}", b"\xff\xfe\x1b[31mraw bytes")
    await redis.set(f"budget:{evil}", "5")
    await redis.set("budget:global:month", f"\x1b]52;c;{evil}\x07")
    state = await read(redis_url)
    assert len(state.switches) == 2 and len(state.budgets) == 1
    for switch in state.switches:
        assert switch.value is not None
        for text in (switch.value, clean(switch.key), clean(switch.target)):
            assert not any(ch in text for ch in ("\x1b", "\x07", "\x00", "\r", "\n", "\x9b", "\u202e")), repr(text)
    kill = next(s for s in state.switches if s.kind == SwitchKind.KILL)
    assert kill.target == evil and kill.key == f"kill:agent:{evil}"
    assert clean(kill.target) == "]0;pwned[2J31mevil"
    assert kill.origin[0] == "manual"
    assert list(state.budgets) == [evil]


async def test_many_keys_found_with_scan(redis, redis_url) -> None:
    pipe = redis.pipeline(transaction=False)
    for i in range(5000):
        pipe.set(f"kill:agent:a{i}", f"manual:ops:r{i}")
    for i in range(500):
        pipe.set(f"budget:a{i}", str(i))
    for i in range(2000):
        pipe.set(f"spent:a{i}:2025-01-01", "1")
    await pipe.execute()
    state = await read(redis_url)
    assert len(state.switches) == 5000
    assert {s.target for s in state.switches} == {f"a{i}" for i in range(5000)}
    assert len(state.budgets) == 500 and state.budgets["a499"] == Decimal(499)


async def test_custom_key_prefixes(redis, redis_url) -> None:
    await redis.set("ks:agent:x", "manual:a:b")
    await redis.set("kill:agent:y", "manual:a:b")
    await redis.set("cap:x", "3")
    state = await read(redis_url, keys=KeyNames(kill="ks", budget="cap"))
    assert [s.key for s in state.switches] == ["ks:agent:x"]
    assert state.budgets == {"x": Decimal(3)}


async def test_refused_connection_is_one_line(redis_url) -> None:
    port = free_port()
    r = reader(f"redis://:s3cret@127.0.0.1:{port}/0", timeout_seconds=2)
    try:
        with pytest.raises(SourceError) as info:
            await r.read()
    finally:
        await r.close()
    message = str(info.value)
    assert "\n" not in message and "Traceback" not in message
    assert "s3cret" not in message
    assert str(port) in message


async def test_reader_recovers_after_connection_drop(redis, servers) -> None:
    """The same reader answers again after Redis dropped its connection; at worst one read fails."""
    r = reader(servers.redis.url)
    try:
        await redis.set("kill:global", "manual:a:b")
        assert len((await r.read()).switches) == 1
        await redis.client_kill_filter(skipme=True, _type="normal")
        with contextlib.suppress(SourceError):
            await r.read()
        assert len((await r.read()).switches) == 1
    finally:
        await r.close()


async def test_first_read_after_connection_drop_succeeds(redis, servers) -> None:
    r = reader(servers.redis.url)
    try:
        await redis.set("kill:global", "manual:a:b")
        assert len((await r.read()).switches) == 1
        await redis.client_kill_filter(skipme=True, _type="normal")  # what a server restart or idle timeout does
        assert len((await r.read()).switches) == 1
    finally:
        await r.close()


async def test_gateway_counters_of_one_day(redis, redis_url) -> None:
    """`spent:{agent}:{day}` for that day only (the stored decimal kept exact), agent ids with colons,
    bad values unknown, and `calls:{day}`."""
    await redis.incrbyfloat("spent:alpha:2026-11-22", 0.1)
    await redis.incrbyfloat("spent:alpha:2026-11-22", 0.2)
    stored = (await redis.get("spent:alpha:2026-11-22")).decode()
    await redis.set("spent:team:a:bot:2026-11-22", "1.25")
    await redis.set("spent:broken:2026-11-22", "lots")
    await redis.lpush("spent:listy:2026-11-22", "1")
    await redis.set("spent:alpha:2026-11-21", "99")  # another day
    await redis.set("calls:2026-11-22", "41")
    r = reader(redis_url)
    try:
        counters = await r.read_counters("2026-11-22")
        other = await r.read_counters("2026-11-20")
    finally:
        await r.close()
    assert counters.day == "2026-11-22"
    assert counters.spent["alpha"] == Decimal(stored)  # exactly what Redis holds, drift and all
    assert counters.spent["team:a:bot"] == Decimal("1.25")
    assert isinstance(counters.spent["broken"], Unparsed) and isinstance(counters.spent["listy"], Unparsed)
    assert set(counters.spent) == {"alpha", "team:a:bot", "broken", "listy"}
    assert counters.calls == Decimal(41)
    assert other.spent == {} and other.calls is None


async def fill_mixed(redis) -> None:
    """Switches on both sides of a script batch, with and without expiry, of the wrong type, hostile bytes;
    budgets good, bad and of the wrong type; the gateway's counters."""
    pipe = redis.pipeline(transaction=False)
    for i in range(KEY_BATCH + 7):
        pipe.set(f"kill:agent:a{i}", f"manual:ops:r{i % 3}", px=600_000 if i % 2 else None)
    pipe.set("throttle:model:m\x1b[31m", b"auto:\xff\xfe:why")
    pipe.rpush("kill:agent:listy", "x")
    pipe.hset("throttle:agent:hashy", "f", "v")
    pipe.set("kill:global", "manual:ops:all")
    pipe.set("budget:a1", "12.5")
    pipe.set("budget:bad", "lots")
    pipe.sadd("budget:setty", "1")
    pipe.set("budget:global:day", "500")
    pipe.set("spent:a1:2026-11-22", "3.5")
    pipe.lpush("spent:listy:2026-11-22", "1")
    pipe.set("calls:2026-11-22", "9")
    await pipe.execute()


def without_expiries(state: RedisState) -> RedisState:
    """The expiries tick between two reads: compared as set or not."""
    return replace(state, switches=tuple(replace(s, ttl_seconds=s.ttl_seconds is not None) for s in state.switches))


async def test_batched_and_key_by_key_reads_agree(redis, redis_url) -> None:
    """The script reads KEY_BATCH keys per call; a server that refuses scripts (here a user whose ACL has
    no scripting) is read a GET and a PTTL per key. Both give the same switches, budgets and counters."""
    await fill_mixed(redis)
    await redis.execute_command("ACL", "SETUSER", "noscripts", "on", ">pw", "~*", "+@all", "-@scripting")
    host, port = redis_url.removeprefix("redis://").split("/")[0].split(":")
    batched, key_by_key = reader(redis_url), reader(f"redis://noscripts:pw@{host}:{port}/0")
    try:
        states = [await batched.read(), await key_by_key.read()]
        counters = [await batched.read_counters("2026-11-22"), await key_by_key.read_counters("2026-11-22")]
        assert batched._script_command is not None and key_by_key._script_command is None  # each as it says
    finally:
        await batched.close()
        await key_by_key.close()
        await redis.execute_command("ACL", "DELUSER", "noscripts")
    assert without_expiries(states[0]) == without_expiries(states[1])
    state = states[0]
    assert len(state.switches) == KEY_BATCH + 7 + 4
    assert state.switches[0].key == "kill:global"  # global first
    found = by_key(state)
    assert found["kill:agent:listy"].value is None and found["throttle:agent:hashy"].value is None
    assert found["kill:agent:a1"].ttl_seconds is not None and found["kill:agent:a2"].ttl_seconds is None
    assert found[f"kill:agent:a{KEY_BATCH + 6}"].value == f"manual:ops:r{(KEY_BATCH + 6) % 3}"  # past the first batch
    assert state.budgets["a1"] == Decimal("12.5") and isinstance(state.budgets["bad"], Unparsed)
    assert isinstance(state.budgets["setty"], Unparsed) and state.global_day_budget == Decimal(500)
    assert counters[0] == counters[1]
    assert counters[0].spent["a1"] == Decimal("3.5") and isinstance(counters[0].spent["listy"], Unparsed)


async def test_a_switch_read_as_before_is_the_same_record(redis, redis_url) -> None:
    """50,000 unchanged switches are not decoded again each read: the same objects come back, and a
    switch whose value or expiry changed is a new one."""
    await redis.set("kill:agent:same", "manual:ops:a")
    await redis.set("kill:agent:moved", "manual:ops:a")
    await redis.set("kill:agent:ticking", "manual:ops:a", px=600_000)
    r = reader(redis_url)
    try:
        first = by_key(await r.read())
        await redis.set("kill:agent:moved", "manual:ops:b")
        await redis.script_flush()  # as a restarted server: the script is loaded again
        await asyncio.sleep(0.01)
        second = by_key(await r.read())
    finally:
        await r.close()
    assert second["kill:agent:same"] is first["kill:agent:same"]
    assert second["kill:agent:moved"] is not first["kill:agent:moved"]
    assert second["kill:agent:moved"].value == "manual:ops:b"
    assert second["kill:agent:ticking"].ttl_seconds != first["kill:agent:ticking"].ttl_seconds
