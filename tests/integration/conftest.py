"""Fixtures that start real Redis and PostgreSQL servers once per test session.

Each test gets its own fresh database (created from a template with the schema) and an empty Redis
database, so tests never see each other's rows or keys.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import asyncpg
import pytest
from redis.asyncio import Redis

from costtop.config import TableNames
from costtop.demo.servers import ServerPair
from costtop.sources.schema import init_db

_counter = itertools.count()



@pytest.fixture(autouse=True)
def thawed_heap() -> Iterator[None]:
    """An app with 10,000 agents freezes its heap (costtop/collector.py); in one test process that would
    keep each finished app's reference cycles to the end of the run. Given back to the collector."""
    yield
    if gc.get_freeze_count():
        gc.unfreeze()

@pytest.fixture(scope="session")
def servers() -> Iterator[ServerPair]:
    pair = ServerPair.start(prefix="costtop-test-")
    try:
        yield pair
    finally:
        pair.stop()


@dataclass
class Databases:
    admin_url: str

    def url(self, name: str) -> str:
        return self.admin_url.rsplit("/", 1)[0] + "/" + name


@pytest.fixture
async def empty_db_url(servers: ServerPair) -> AsyncIterator[str]:
    """A brand-new database with no tables at all."""
    name = f"t{next(_counter)}"
    admin = await asyncpg.connect(servers.postgres.url)
    try:
        await admin.execute(f"CREATE DATABASE {name}")
    finally:
        await admin.close()
    yield Databases(servers.postgres.url).url(name)
    admin = await asyncpg.connect(servers.postgres.url)
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    finally:
        await admin.close()


@pytest.fixture
async def db_url(empty_db_url: str) -> str:
    """A fresh database with `costtop db init` applied."""
    conn = await asyncpg.connect(empty_db_url)
    try:
        await init_db(conn, TableNames())
    finally:
        await conn.close()
    return empty_db_url


@pytest.fixture
async def pg(db_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(db_url, min_size=1, max_size=4)
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture
def redis_url(servers: ServerPair) -> str:
    return servers.redis.url


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url, decode_responses=False)
    await client.flushdb()
    try:
        yield client
    finally:
        await client.flushdb()
        await client.aclose()


@pytest.fixture(scope="module")
def killable_servers() -> Iterator[ServerPair]:
    """Servers of one test module's own, which its tests may kill or freeze; restarted on the same ports
    (and the same data) by `killable` before each test."""
    pair = ServerPair.start(prefix="costtop-killable-")
    try:
        yield pair
    finally:
        pair.stop()


@pytest.fixture
async def killable(killable_servers: ServerPair) -> AsyncIterator[ServerPair]:
    """Both killable servers up, an empty tool_calls (and no audit or drain rows) and no keys."""
    pair = killable_servers
    for server in (pair.redis, pair.postgres):
        if server.proc is None or server.proc.poll() is not None:
            await asyncio.to_thread(server.start)
    conn = await asyncpg.connect(pair.postgres.url)
    try:
        await conn.execute("DROP TABLE IF EXISTS tool_calls, costtop_audit, costtop_fallback_drains")
        await init_db(conn, TableNames())
        await conn.execute("CHECKPOINT")  # the test server runs without synchronous commit: make it survive SIGKILL
    finally:
        await conn.close()
    client = Redis.from_url(pair.redis.url)
    await client.flushdb()
    await client.aclose()
    yield pair
