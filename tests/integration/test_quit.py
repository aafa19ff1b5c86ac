"""Quitting waits for the session's thread to close its connections, boundedly, and leaves nothing behind.

Textual cancels its workers before the app unmounts, so waiting on the session's worker returned at once
(and raised an error nobody retrieved, printed on the terminal after the app was gone); the connections
were then closed, or not, after the app had returned. No timing: the feed's close is slow on purpose and
the test checks that it had finished when the app returned.
"""

from __future__ import annotations

import asyncio
import gc
from datetime import UTC, datetime

from appkit import wait_until
from costtop.config import Settings
from costtop.demo.static_feed import StaticFeed
from costtop.pricing.catalog import shipped
from costtop.session import Session
from costtop.ui.app import CosttopApp

NOW = datetime.now(UTC).replace(microsecond=0)


class SlowCloseFeed(StaticFeed):
    def __init__(self) -> None:
        super().__init__(NOW, read_only=True)
        self.closed = False

    async def close(self) -> None:
        await asyncio.sleep(0.3)
        self.closed = True


async def test_the_app_returns_after_the_session_has_closed_its_connections() -> None:
    feed = SlowCloseFeed()
    settings = Settings(read_only=True)
    session = Session(settings, feed, clock=lambda: NOW, catalog=shipped())
    app = CosttopApp(settings, session)
    errors: list[dict[str, object]] = []
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda _loop, context: errors.append(context))
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_until(pilot, lambda: app.snapshot is not None and bool(app.snapshot.agents))
        assert feed.closed
        assert session.finished.is_set()
        gc.collect()  # a task whose error was never retrieved is reported when it is collected
        await asyncio.sleep(0)
        assert not errors, errors
    finally:
        loop.set_exception_handler(None)


class StubbornReadFeed(StaticFeed):
    """A row read that hangs, and whose cancellation is not answered for a long while (as a query's is
    when the server is busy)."""

    def __init__(self) -> None:
        super().__init__(NOW, read_only=True)
        self.reading = False

    async def new_rows(self) -> list[object]:
        self.reading = True
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            await asyncio.sleep(3600)  # the cancellation "answered" an hour later
        return []


async def test_a_read_that_does_not_let_go_does_not_hold_the_quit() -> None:
    feed = StubbornReadFeed()
    settings = Settings(read_only=True, refresh=0.2)
    session = Session(settings, feed, clock=lambda: NOW, catalog=shipped())
    app = CosttopApp(settings, session)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: feed.reading)
    assert session.finished.is_set()  # run() ended within its bound, leaving the stubborn read behind
