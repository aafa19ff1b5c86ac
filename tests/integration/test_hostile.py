"""Hostile data, generated (hypothesis): through the engine, the widgets' text, the whole screen, and
real Redis. Nothing may crash, no control character from data may reach the terminal, no markup from
data may be interpreted, and a value that makes no sense is shown as unknown."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis.asyncio import Redis

from appkit import screen_text, wait_until
from costtop.config import Settings
from costtop.demo.screenshots import NOW, static_app
from costtop.demo.static_feed import StaticFeed
from costtop.engine.engine import Engine
from costtop.oneshot import render
from costtop.sources.numbers import MAX_COUNT, in_range
from costtop.sources.records import Baseline, CallRecord, RedisState, SwitchKind, SwitchRecord, Unparsed
from costtop.sources.redis_state import RedisReader
from costtop.text import visible_id
from costtop.ui.widgets.alert_panel import alerts_text
from costtop.ui.widgets.row_table import MAX_NAME
from costtop.ui.widgets.summary import summary_text
from test_hostile_unit import ALL, DAY, FORBIDDEN, assert_safe, hostile_text, huge_number_text, money

redis_number_text = st.one_of(
    huge_number_text,
    st.sampled_from(["NaN", "sNaN", "-NaN", "Infinity", "-Infinity", "inf", "-0", "0", "12", " 12 ", "1_000",
                     "0x10", "-5", "12.0", "0.30000000000000004", "1e15", "999999999999999.99"]),
    st.decimals(allow_nan=False, allow_infinity=False).map(str),
)
count = st.one_of(st.none(), st.integers(min_value=-(2**63), max_value=2**63 - 1))


@st.composite
def call_records(draw: st.DrawFn) -> CallRecord:
    return CallRecord(
        key=draw(st.integers()), created_at=NOW - timedelta(seconds=draw(st.integers(0, 600))),
        agent_id=draw(hostile_text), tool_name=draw(hostile_text), latency_ms=draw(count),
        provider=draw(st.one_of(st.none(), hostile_text)), model=draw(st.one_of(st.none(), hostile_text)),
        tokens_in=draw(count), tokens_out=draw(count), cached_tokens=draw(count), cost_usd=draw(money),
        status=draw(st.one_of(st.none(), st.sampled_from(["success", "error", "timeout"]), hostile_text)),
        trace_id=draw(st.one_of(st.none(), hostile_text)),
    )


@st.composite
def redis_states(draw: st.DrawFn) -> RedisState:
    switches = tuple(
        SwitchRecord(f"kill:agent:{t}", SwitchKind.KILL, "agent", t, draw(st.one_of(st.none(), hostile_text)),
                     draw(st.one_of(st.none(), st.floats(allow_nan=False, min_value=0, max_value=1e12))))
        for t in draw(st.lists(hostile_text, max_size=3)))
    number = st.one_of(st.none(), money.filter(lambda m: m is None or m.is_finite()),
                       st.builds(Unparsed, hostile_text))
    budgets = draw(st.dictionaries(hostile_text, number.filter(lambda v: v is not None), max_size=3))
    return RedisState(switches, budgets, draw(number), draw(number))


async def test_redis_numbers_with_huge_exponents(redis_url) -> None:
    """Budgets and counters in real Redis, of any exponent: read as a figure within the bounds or as
    unknown, and through the engine, the screen's text and `costtop snapshot` without raising."""
    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(budget=redis_number_text, day=redis_number_text, month=redis_number_text, spent=redis_number_text,
           calls=redis_number_text, cost=money)
    def one(budget: str, day: str, month: str, spent: str, calls: str, cost: Decimal | None) -> None:
        asyncio.run(check(budget, day, month, spent, calls, cost))

    async def check(budget: str, day: str, month: str, spent: str, calls: str, cost: Decimal | None) -> None:
        client = Redis.from_url(redis_url)
        try:
            await client.flushdb()
            await client.set("budget:x", budget)
            await client.set("budget:global:day", day)
            await client.set("budget:global:month", month)
            await client.set(f"spent:x:{DAY}", spent)
            await client.set(f"calls:{DAY}", calls)
            reader = RedisReader(Settings(redis_url=redis_url))
            try:
                state = await reader.read()
                counters = await reader.read_counters(DAY)
            finally:
                await reader.close()
        finally:
            await client.flushdb()
            await client.aclose()
        for value in (state.budgets["x"], state.global_day_budget, state.global_month_budget, counters.spent["x"]):
            assert isinstance(value, Unparsed) or in_range(value), value
        assert isinstance(counters.calls, Unparsed) or 0 <= counters.calls < MAX_COUNT
        engine = Engine(columns=ALL)
        engine.load(Baseline(DAY, (), Decimal(0), DAY[:7], (), ()))
        engine.ingest([CallRecord(1, NOW - timedelta(seconds=5), "x", "llm", 100, cost_usd=cost)])
        engine.note_counters(counters)
        snap = engine.snapshot(NOW, state)
        for view in (snap.agents[0].budget, snap.header.day_budget, snap.header.month_budget):
            assert view.limit is None or in_range(view.limit)
        assert_safe(summary_text(snap, width=160).plain)
        assert_safe(alerts_text(snap).plain)
        assert json.loads(render(snap, "json"))["version"] == 1
        render(snap, "table")
        render(snap, "csv")
        if cost is not None and not in_range(cost):  # recorded, unusable: named, never flat-rate
            assert snap.agents[0].flat_calls_today == 0 and any("left out" in line for line in snap.data_quality)

    await asyncio.to_thread(one)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(rows=st.lists(call_records(), max_size=30), redis=st.one_of(st.none(), redis_states()))
def test_the_engine_and_the_widget_text_take_anything(rows: list[CallRecord], redis: RedisState | None) -> None:
    engine = Engine(columns=ALL)
    engine.load(Baseline(DAY, (), Decimal(0), DAY[:7], (), ()))
    engine.ingest(rows)
    snap = engine.snapshot(NOW, redis)
    h = snap.header
    for figure in (h.spend_today, h.spend_month, h.velocity_per_min, h.projected_today, h.projected_month):
        assert figure is None or figure.is_finite()  # an unknown, or a number: never NaN shown as $NaN
    for agent in snap.agents:
        assert agent.spend_today is None or agent.spend_today.is_finite()
    assert_safe(summary_text(snap, width=160).plain)
    assert_safe(alerts_text(snap).plain)


class HostileFeed(StaticFeed):
    """The demo's fixed data, with the agents, models and switch values replaced by generated ones."""

    def __init__(self, names: list[str], reason: str) -> None:
        super().__init__(NOW)
        self.names = names
        self.reason = reason

    async def baseline(self, now: datetime) -> Baseline:
        return Baseline(DAY, (), Decimal(0), DAY[:7], (), ())

    async def new_rows(self) -> list[CallRecord]:
        rows, self.names = [CallRecord(i, NOW - timedelta(seconds=5), n, n, 100, n, n, 10, 10, 0, Decimal("0.5"),
                                       "error", n) for i, n in enumerate(self.names)], []
        return rows

    async def read_redis(self) -> RedisState:
        return RedisState((SwitchRecord("kill:agent:x", SwitchKind.KILL, "agent", "x", self.reason, 60.0),),
                          {"x": Unparsed(self.reason)}, None, None)


async def screen_of(names: list[str], reason: str) -> str:
    app = static_app(feed=HostileFeed(names, reason))
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_until(pilot, lambda: app.snapshot is not None and len(app.snapshot.agents) >= len(set(names)))
        await pilot.pause()
        assert app.is_running  # no [@click=app.quit] ran
        text = screen_text(app)
        # What the terminal is sent for each line, styles included: no escape sequence from the data.
        for strip in app.screen._compositor.render_strips():
            for segment in strip:
                assert_safe(segment.text)
    return text


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(names=st.lists(hostile_text, min_size=1, max_size=4, unique=True), reason=hostile_text)
def test_the_whole_screen_shows_hostile_names_as_plain_text(names: list[str], reason: str) -> None:
    assert_safe(asyncio.run(screen_of(names, reason)))


async def test_markup_in_names_is_shown_literally() -> None:
    text = await screen_of(["[@click=app.quit]q[/]", "[link=https://evil.example]x[/link]", "[/bold]"], "[b]why")
    # The long one is cut the `visible_id` way (the agent table's widest name): literally, still.
    long = visible_id("[link=https://evil.example]x[/link]", MAX_NAME)
    assert "[@click=app.quit]q[/]" in text and long.startswith("[link=https://evil") and long in text
    assert "[/bold]" in text


async def test_redis_values_of_any_bytes_and_type(redis, redis_url) -> None:
    """Invalid UTF-8, escape sequences and wrong types in real Redis: read as text or as unknown."""
    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
    @given(key=st.binary(min_size=1, max_size=30), value=st.binary(max_size=60),
           kind=st.sampled_from(["string", "list", "hash", "set"]))
    def one(key: bytes, value: bytes, kind: str) -> None:
        asyncio.run(check(key, value, kind))

    async def check(key: bytes, value: bytes, kind: str) -> None:
        client = Redis.from_url(redis_url)
        try:
            await client.flushdb()
            for prefix in (b"kill:agent:", b"budget:", b"throttle:agent:"):
                name = prefix + key
                if kind == "string":
                    await client.set(name, value)
                elif kind == "list":
                    await client.rpush(name, value)
                elif kind == "hash":
                    await client.hset(name, b"f", value)
                else:
                    await client.sadd(name, value)
            reader = RedisReader(Settings(redis_url=redis_url))
            try:
                state = await reader.read()
            finally:
                await reader.close()
            assert len(state.switches) == 2
            for sw in state.switches:
                assert sw.value is None or FORBIDDEN.search(sw.value) is None
            budget = next(iter(state.budgets.values()), None)
            assert budget is None or isinstance(budget, Unparsed) or budget.is_finite()
            if kind != "string":
                assert all(sw.value is None for sw in state.switches)  # on, with an unknown value
        finally:
            await client.flushdb()
            await client.aclose()

    await asyncio.to_thread(one)


async def test_markup_in_names_and_in_the_filter_stays_text_in_the_palette_and_titles() -> None:
    from costtop.ui.commands import CosttopCommands

    app = static_app(feed=HostileFeed(["x[/]", "billing[v2]"], "r"))
    async with app.run_test(size=(160, 50)) as pilot:
        names = {"x[/]", "billing[v2]"}
        await wait_until(pilot, lambda: app.snapshot is not None
                         and names <= {a.agent_id for a in app.snapshot.agents})
        provider = CosttopCommands(app.screen)
        hits = [hit async for hit in provider.search("billing")]
        assert hits and all("[" not in str(h.match_display) or "billing[v2]" in str(h.match_display) for h in hits)
        await pilot.press("ctrl+p")
        await pilot.pause(0.5)
        await pilot.press("escape")
        await pilot.press("slash", "[", "/", "]")
        await pilot.pause(0.3)
        assert app.is_running and "filter “[/]”" in screen_text(app)
