"""The session on the test's own event loop, with the static demo feed: no servers, no app."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from costtop.config import Settings
from costtop.demo.screenshots import NOW
from costtop.demo.static_feed import StaticFeed
from costtop.engine.snapshot import SortKey
from costtop.pricing.catalog import shipped
from costtop.session import REDIS_MAX_PAUSE, REDIS_POLL_SECONDS, Backoff, Session, redis_pause
from costtop.sources.records import RedisState, Step, TraceSummary
from costtop.ui.widgets.summary import STALE_AFTER_SECONDS


class HeldRedisFeed(StaticFeed):
    """The static feed, whose Redis read waits, when armed, until the test lets it answer."""

    def __init__(self) -> None:
        super().__init__(NOW, read_only=True)
        self.armed = False
        self.in_flight = asyncio.Event()
        self.answer = asyncio.Event()

    async def read_redis(self) -> RedisState:
        if self.armed:
            self.armed = False
            self.in_flight.set()
            await self.answer.wait()
        return await super().read_redis()


async def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def read_held() -> AsyncIterator[tuple[Session, HeldRedisFeed]]:
    """A running session whose next Redis read waits for `feed.answer`: yielded while it waits."""
    feed = HeldRedisFeed()
    session = Session(Settings(read_only=True), feed, clock=lambda: feed.now, catalog=shipped())
    task = asyncio.create_task(session.run())
    try:
        await until(lambda: session.latest is not None and session.engine.day != "")
        feed.armed = True
        await asyncio.wait_for(feed.in_flight.wait(), 10)
        yield session, feed
    finally:
        feed.answer.set()
        session.stop()
        await asyncio.wait_for(task, 5)
    assert session.finished.is_set()


async def test_no_snapshot_is_built_while_a_short_read_waits_for_its_answer() -> None:
    """A build holds the session's loop; a read waiting meanwhile would find its timeout spent and a
    healthy server would turn STALE. Asked for during a read, the snapshot is built right after it."""
    async with read_held() as (session, feed):
        built = session.published
        session.request_snapshot()
        for _ in range(20):
            await asyncio.sleep(0.01)
        assert session.published == built  # asked for, not built: the read is still waiting
        feed.answer.set()
        await until(lambda: session.published > built)


async def test_a_new_order_is_built_at_once_even_while_a_read_waits() -> None:
    """The operator pressed `s` and waits for it: that snapshot does not wait for the read."""
    async with read_held() as (session, feed):
        built = session.published
        session.sort_by(SortKey.NAME, reverse=True)
        await until(lambda: session.published > built)
        assert session.latest is not None and session.latest.sort is SortKey.NAME and session.latest.sort_reverse
        assert not feed.answer.is_set()  # the read is still waiting


def test_one_backoff_doubles_from_each_loops_base_up_to_its_cap() -> None:
    redis, history = Backoff(), Backoff(3600)
    assert [redis.failed(0.5) for _ in range(8)] == [1, 2, 4, 8, 16, 30, 30, 30]
    assert [history.failed(30) for _ in range(8)] == [60, 120, 240, 480, 960, 1920, 3600, 3600]
    redis.ok()
    assert redis.failed(0.5) == 1


async def test_a_stop_before_the_session_runs_ends_it_as_soon_as_it_starts() -> None:
    """`q` pressed before the session's thread got going must not leave a thread reading forever."""
    feed = HeldRedisFeed()
    session = Session(Settings(read_only=True), feed, clock=lambda: feed.now, catalog=shipped())
    session.stop()
    await asyncio.wait_for(session.run(), 5)
    assert session.finished.is_set()


def test_switches_are_read_every_half_second_unless_a_read_is_long() -> None:
    """50,000 switches take half a second to read: polling them every 0.5 s would leave the session
    no time for the rest. The pause grows with the read, so the reads take at most a quarter."""
    assert redis_pause(0.01) == REDIS_POLL_SECONDS == 0.5
    assert redis_pause(0.5) == 1.5
    assert redis_pause(0.5) / (redis_pause(0.5) + 0.5) == 0.75  # waiting three quarters of the time
    # A very slow read (a loaded machine) must not leave a healthy Redis unread past the badge's 5 s.
    assert redis_pause(2.5) == REDIS_MAX_PAUSE and REDIS_MAX_PAUSE + 2.5 < STALE_AFTER_SECONDS


class CountingTraceFeed(StaticFeed):
    """The static traces; the test grows one of them, and every steps read is counted."""

    def __init__(self) -> None:
        super().__init__(NOW)
        self.asked: list[list[str] | None] = []
        self.extra = 0

    async def agent_traces(self, agent: str, since: datetime) -> list[TraceSummary]:
        traces = await super().agent_traces(agent, since)
        return [replace(t, steps=t.steps + self.extra) if t.trace_id.endswith("-t2") else t for t in traces]

    async def agent_steps(self, agent: str, since: datetime,
                          traces: Sequence[str] | None = None) -> dict[str, list[Step]]:
        self.asked.append(None if traces is None else sorted(traces))
        return await super().agent_steps(agent, since, traces)


async def test_an_open_agent_screen_reads_again_only_the_steps_of_traces_that_grew() -> None:
    """The agent screen reloads every few seconds: its quiet traces keep their patterns without their
    steps being read again; a trace with more steps is judged again, alone."""
    feed = CountingTraceFeed()
    session = Session(Settings(), feed, clock=lambda: NOW, catalog=shipped())
    since = NOW - timedelta(hours=1)
    first = await session._agent_traces("research-bot", since)
    assert feed.asked == [sorted(t.trace_id for t in first)]
    assert {t.trace_id: t.patterns for t in first}["research-bot-t0"] == {"loop", "context", "errors"}
    again = await session._agent_traces("research-bot", since)
    assert feed.asked[1:] == [] and again == first  # nothing grew: no read, the same patterns
    feed.extra = 1
    grown = await session._agent_traces("research-bot", since)
    assert feed.asked[1:] == [["research-bot-t2"]]
    assert [t.patterns for t in grown] == [t.patterns for t in first]
