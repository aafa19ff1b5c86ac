"""The integration half of tests/unit/test_fallback_file.py: the tests that need real servers or the app."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import asyncpg
from redis.asyncio import Redis

from appkit import screen_text, wait_until
from costtop.config import Settings
from costtop.gateway import Call, Gateway
from costtop.session import Session
from costtop.sources.feed import LiveFeed
from costtop.ui.app import CosttopApp


async def test_the_header_shows_the_file_a_refusing_postgres_fills(pg: asyncpg.Pool, redis: Redis, db_url: str,
                                                                   redis_url: str, tmp_path: Path) -> None:
    path = tmp_path / "fallback.jsonl"
    now = datetime.now(UTC)
    # The gateway's own Postgres is unreachable: its rows go to the file (costtop reads the real one).
    dead = await asyncpg.create_pool("postgresql://postgres@127.0.0.1:1/postgres", min_size=0)
    try:
        gw = Gateway(redis, dead, fallback=path, timeout=0.5)
        await gw.record([Call("a", "llm", 10, cost_usd=Decimal("1"), created_at=now - timedelta(minutes=90)),
                         Call("b", "llm", 10, cost_usd=Decimal("1"), created_at=now - timedelta(minutes=2))])
    finally:
        await dead.close()
    with open(path, "ab") as handle:
        handle.write(b"\x00\x01 junk\n")
    settings = Settings(redis_url=redis_url, database_url=db_url, refresh=0.2, fallback_file=str(path) + "*")
    app = CosttopApp(settings, Session(settings, LiveFeed(settings)))
    async with app.run_test(size=(200, 50)) as pilot:
        await wait_until(pilot, lambda: "Fallback 3 lines oldest 1h30m NOT DRAINED (1 malformed)"
                         in screen_text(app))
        assert any(a.key == "fallback:file" for a in app.snapshot.alerts)  # type: ignore[union-attr]
        assert "fallback not drained" in screen_text(app)
        # Drained (here: emptied by hand): the alert clears, the header says so.
        path.write_bytes(b"")
        await wait_until(pilot, lambda: "Fallback empty" in screen_text(app))
        assert not any(a.key == "fallback:file" for a in app.snapshot.alerts)  # type: ignore[union-attr]
