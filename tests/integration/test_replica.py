"""Issue 21, point 2: costtop on a real streaming replica, made by the tests from the embedded
PostgreSQL binaries (pg_basebackup -R from a primary, the standby on a port of its own).

It reads the standby and shows its lag; it writes audit rows and the rollup to the primary
(`audit_database_url`), or keeps the audit rows in the local spool and says why when that is not
set; a read the standby cancels for a conflict with recovery is said as such, and the next one reads
the right figures.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import asyncpg
import pytest
from redis.asyncio import Redis

from costtop.cli import main
from costtop.config import Settings, TableNames
from costtop.demo.servers import PostgresServer, ServerError, free_port
from costtop.rollup.job import RollupError, run_rollup
from costtop.session import Session
from costtop.sources.errors import SourceError
from costtop.sources.feed import LiveFeed
from costtop.sources.postgres import PostgresReader
from costtop.sources.records import Outcome, ReplicaLag, SwitchChange
from costtop.sources.schema import init_db
from costtop.ui.widgets.summary import badge

INSERT = ("INSERT INTO tool_calls (created_at, agent_id, tool_name, latency_ms, provider, model, cost_usd, status) "
          "VALUES ($1, $2, 'llm', 100, 'openai', 'gpt-5', $3, 'success')")


@contextlib.asynccontextmanager
async def connected(url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(url)
    try:
        yield conn
    finally:
        await conn.close()


@dataclass
class Replica:
    primary: PostgresServer
    standby: PostgresServer


def make_standby(primary: PostgresServer, directory: Path) -> None:
    """A base backup of the primary with `-R` (standby.signal and primary_conninfo written for it)."""
    directory.mkdir(parents=True, exist_ok=True)
    user: dict[str, str] = {}
    if os.geteuid() == 0:  # the servers run as nobody (servers.py): the copy must be theirs
        pw = pwd.getpwnam(primary.run_as or "nobody")
        os.chown(directory, pw.pw_uid, pw.pw_gid)
        user = {"user": primary.run_as or "nobody"}
    done = subprocess.run(
        [str(primary.bindir / "pg_basebackup"), "-D", str(directory / "pgdata"), "-R", "-X", "stream", "-c", "fast",
         "--no-sync", "-h", "127.0.0.1", "-p", str(primary.port), "-U", "postgres"],
        capture_output=True, stdin=subprocess.DEVNULL, timeout=60, cwd=directory, **user)  # type: ignore[call-overload]
    if done.returncode != 0:
        raise ServerError(f"pg_basebackup failed: {done.stderr.decode(errors='replace').strip()[-200:]}")
    with open(directory / "pgdata" / "postgresql.auto.conf", "a", encoding="utf-8") as conf:
        # A receiver that lost its primary tries again at once; vacuum on the primary is not held back.
        conf.write("wal_retrieve_retry_interval = '100ms'\nhot_standby_feedback = off\n")


@pytest.fixture(scope="module")
def replica() -> Iterator[Replica]:
    root = Path(tempfile.mkdtemp(prefix="costtop-replica-"))
    os.chmod(root, 0o755)
    primary, standby = PostgresServer(root / "primary"), PostgresServer(root / "standby")
    try:
        primary.start()
        asyncio.run(_template(primary))
        make_standby(primary, standby.directory)
        standby.start()
        yield Replica(primary, standby)
    finally:
        standby.stop()
        primary.stop()
        shutil.rmtree(root, ignore_errors=True)


async def _template(primary: PostgresServer) -> None:
    """The database each test's is copied from: `costtop db init` applied."""
    async with connected(primary.url) as admin:
        # No vacuum but the tests' own: one that removes rows a standby read sees would cancel that read.
        await admin.execute("ALTER SYSTEM SET autovacuum = off")
        await admin.execute("SELECT pg_reload_conf()")
        await admin.execute("CREATE DATABASE costtop_template")
    async with connected(url_of(primary, "costtop_template")) as conn:
        await init_db(conn, TableNames())


async def replayed(primary: asyncpg.Connection, standby_url: str, timeout: float = 10.0) -> None:
    """Until the standby has replayed everything the primary has written so far."""
    lsn = await primary.fetchval("SELECT pg_current_wal_insert_lsn()::text")
    standby = await asyncpg.connect(standby_url)
    try:
        async with asyncio.timeout(timeout):
            while not await standby.fetchval("SELECT pg_last_wal_replay_lsn() >= $1::text::pg_lsn", lsn):
                await asyncio.sleep(0.02)
    finally:
        await standby.close()


def url_of(server: PostgresServer, database: str) -> str:
    return server.url.rsplit("/", 1)[0] + "/" + database


_databases = iter(range(10**6))


@pytest.fixture
async def urls(replica: Replica) -> AsyncIterator[tuple[str, str]]:
    """A fresh database with `costtop db init` applied, on the primary, replayed on the standby:
    (primary's URL, standby's URL)."""
    name = f"r{next(_databases)}"
    admin = await asyncpg.connect(replica.primary.url)
    try:
        # A copy of a template with the tables in it: on the standby, the copy's replay is a copy too.
        await admin.execute(f"CREATE DATABASE {name} TEMPLATE costtop_template STRATEGY FILE_COPY")
        await replayed(admin, replica.standby.url)
        yield url_of(replica.primary, name), url_of(replica.standby, name)
    finally:
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await admin.close()


async def test_the_lag_a_real_standby_shows(replica: Replica, urls: tuple[str, str]) -> None:
    primary_url, standby_url = urls
    reader = PostgresReader(Settings(database_url=standby_url))
    on_primary = PostgresReader(Settings(database_url=primary_url))
    async with connected(primary_url) as primary, connected(replica.standby.url) as standby:
        conninfo = await standby.fetchval("SHOW primary_conninfo")  # as pg_basebackup -R wrote it
        try:
            await reader.connect()
            await on_primary.connect()
            await on_primary.check_replica(start=True)
            assert on_primary.lag is None  # a primary: no replica to show
            # The primary commits nothing for a while: the standby is up to date all the same, though
            # its last replayed commit ages (what now() - pg_last_xact_replay_timestamp() would show).
            await asyncio.sleep(1.1)
            checked = time.monotonic()
            await reader.check_replica(start=True)
            assert reader.lag == ReplicaLag(0.0)
            assert await standby.fetchval("SELECT now() - pg_last_xact_replay_timestamp() > interval '1 second'")
            # Replay paused: a backlog, at most as old as the last transaction replayed.
            await standby.execute("SELECT pg_wal_replay_pause()")
            await primary.execute(INSERT, datetime.now(UTC), "a", Decimal("1"))
            async with asyncio.timeout(10):
                while not await standby.fetchval("SELECT pg_last_wal_receive_lsn() > pg_last_wal_replay_lsn()"):
                    await asyncio.sleep(0.02)
            await reader.check_replica()  # replay had passed what the last check saw received: that long ago
            assert reader.lag is not None and reader.lag.at_most and reader.lag.seconds is not None
            assert reader.lag.seconds <= time.monotonic() - checked
            await reader.check_replica()  # now it has not: at most the age of the last commit replayed
            assert reader.lag is not None and reader.lag.at_most and reader.lag.seconds is not None
            assert reader.lag.seconds >= 1.0
            await standby.execute("SELECT pg_wal_replay_resume()")
            await replayed(primary, replica.standby.url)
            await reader.check_replica()
            assert reader.lag == ReplicaLag(0.0)
            # Cut from its primary (a conninfo to a closed port): the lag is unknown, never the last figure.
            await standby.execute(f"ALTER SYSTEM SET primary_conninfo = 'host=127.0.0.1 port={free_port()}'")
            await standby.execute("SELECT pg_reload_conf()")
            async with asyncio.timeout(10):
                while True:
                    await reader.check_replica()
                    if reader.lag is not None and reader.lag.seconds is None:
                        break
                    await asyncio.sleep(0.05)
            assert reader.lag == ReplicaLag(None, why="not streaming from the primary")
            assert reader.read_quality().replica == reader.lag  # what the engine gets
        finally:
            await standby.execute(f"ALTER SYSTEM SET primary_conninfo = '{conninfo.replace(chr(39), chr(39) * 2)}'")
            await standby.execute("SELECT pg_reload_conf()")
            await standby.execute("SELECT pg_wal_replay_resume()")
            await reader.close()
            await on_primary.close()
        await replayed(primary, replica.standby.url)  # streaming again for the next test


@pytest.fixture
async def keys(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    await client.flushdb()
    yield client
    await client.flushdb()
    await client.aclose()


async def test_switches_write_audit_rows_to_the_primary_or_keep_them_and_say_why(
        urls: tuple[str, str], redis_url: str, keys: Redis, tmp_path: Path) -> None:
    primary_url, standby_url = urls
    spool = str(tmp_path / "audit.jsonl")
    kill = SwitchChange("set", "kill", "agent", "research-bot", "runaway")
    # No audit_database_url: the switch is written, the audit row waits in the spool, and the line says why.
    alone = LiveFeed(Settings(database_url=standby_url, redis_url=redis_url, audit_spool=spool))
    try:
        await alone.connect_postgres()
        await alone.postgres.check_replica(start=True)
        assert alone.read_quality().replica == ReplicaLag(0.0, spooled=True)  # said before any key is pressed
        result = await alone.write(kill)
    finally:
        await alone.close()
    assert result.outcome is Outcome.DONE and await keys.get("kill:agent:research-bot") is not None
    assert not result.audit_written and result.audit_pending
    assert "the database is a read-only standby: set audit_database_url to its primary" in result.message
    assert alone.audit_pending() == 1
    # With it: the new row goes to the primary, and the kept one with it.
    both = LiveFeed(Settings(database_url=standby_url, audit_database_url=primary_url, redis_url=redis_url,
                             audit_spool=spool))
    try:
        await both.connect_postgres()
        await both.postgres.check_replica(start=True)
        assert both.read_quality().replica == ReplicaLag(0.0)
        resumed = await both.write(SwitchChange("remove", "kill", "agent", "research-bot"))
        drained = await both.drain_audit()
    finally:
        await both.close()
    assert resumed.outcome is Outcome.DONE and resumed.audit_written, resumed.message
    assert drained == (0, None) and both.audit_pending() == 0
    async with connected(primary_url) as primary:
        actions = await primary.fetch("SELECT action FROM costtop_audit ORDER BY at")
    assert [r["action"] for r in actions] == ["set:kill", "remove:kill"]


async def test_costtop_reads_the_standby_with_its_lag_on_the_badge(
        replica: Replica, urls: tuple[str, str], redis_url: str, keys: Redis) -> None:
    primary_url, standby_url = urls
    now = datetime.now(UTC)
    async with connected(primary_url) as primary:
        await primary.executemany(INSERT, [(now - timedelta(seconds=s), f"agent-{s % 3}", Decimal("0.25"))
                                           for s in range(1, 41)])
        await replayed(primary, replica.standby.url)
    snap = await Session.live(Settings(database_url=standby_url, redis_url=redis_url)).read_once()
    postgres = next(s for s in snap.sources if s.name == "Postgres")
    assert postgres.connected and postgres.replica == ReplicaLag(0.0, spooled=True)
    assert badge(postgres).plain.endswith(" replica 0s · audit rows to the local spool: set audit_database_url")
    assert snap.header.spend_today == Decimal("10.00") and sum(a.calls_5m for a in snap.agents) == 40


async def test_the_rollup_is_written_on_the_primary(replica: Replica, urls: tuple[str, str]) -> None:
    primary_url, standby_url = urls
    now = datetime.now(UTC).replace(minute=30, second=0, microsecond=0)
    async with connected(primary_url) as primary:
        await primary.executemany(INSERT, [(now - timedelta(hours=3, minutes=s), "a", Decimal("1"))
                                           for s in range(10)])
        with pytest.raises(RollupError, match="is a read-only standby: the rollup is written on the primary"):
            await run_rollup(Settings(database_url=standby_url), now=now, since=now - timedelta(days=1))
        result = await run_rollup(Settings(database_url=standby_url, audit_database_url=primary_url), now=now,
                                  since=now - timedelta(days=1))
        assert result.rows == 10
        await replayed(primary, replica.standby.url)
    async with connected(standby_url) as standby:  # and the standby reads it from there
        assert await standby.fetchval("SELECT sum(calls) FROM costtop_rollup.buckets WHERE grain = 'h'") == 10


async def test_a_read_the_standby_cancels_says_why_and_the_next_one_is_right(
        replica: Replica, urls: tuple[str, str]) -> None:
    primary_url, standby_url = urls
    now = datetime.now(UTC)
    async with connected(primary_url) as primary, connected(replica.standby.url) as admin:
        await primary.executemany(INSERT, [(now - timedelta(seconds=s), "a", Decimal("1")) for s in range(1, 101)])
        await replayed(primary, replica.standby.url)
        # Cancel at once rather than after 30 s: the conflict is then certain and immediate.
        await admin.execute("ALTER SYSTEM SET max_standby_streaming_delay = 0")
        await admin.execute("SELECT pg_reload_conf()")
        reader = PostgresReader(Settings(database_url=standby_url), clock=lambda: now)
        try:
            await reader.start_baseline(now)
            # Rows the open start-up snapshot sees are removed on the primary, and the removal replayed:
            # the standby ends the session idle in that snapshot.
            await primary.execute("DELETE FROM tool_calls WHERE created_at < $1", now - timedelta(seconds=50))
            await primary.execute("VACUUM tool_calls")
            await replayed(primary, replica.standby.url)
            with pytest.raises(SourceError) as cancelled:
                await reader.finish_baseline()
            assert str(cancelled.value) == (
                "the standby cancelled start-up's snapshot for a conflict with recovery "
                "(max_standby_streaming_delay = 0, hot_standby_feedback = off): reading again")
            # A query running when the removal is replayed is cancelled; said the same way.
            slow = asyncio.create_task(reader.fetch_rows("SELECT count(*), pg_sleep(2) FROM tool_calls"))
            await asyncio.sleep(0.5)
            await primary.execute("DELETE FROM tool_calls WHERE created_at < $1", now - timedelta(seconds=40))
            await primary.execute("VACUUM tool_calls")
            with pytest.raises(SourceError, match=r"^the standby cancelled a read for a conflict with recovery"):
                await slow
            # Read again (as the session does), conflicts no longer immediate: the figures the standby now holds.
            await admin.execute("ALTER SYSTEM RESET max_standby_streaming_delay")
            await admin.execute("SELECT pg_reload_conf()")
            await replayed(primary, replica.standby.url)
            baseline = await reader.baseline(now)
            assert sum(g.calls for g in baseline.window) == 40
            assert sum(d.cost for d in baseline.days if d.cost is not None) == Decimal("40")
        finally:
            await reader.close()
            await admin.execute("ALTER SYSTEM RESET max_standby_streaming_delay")
            await admin.execute("SELECT pg_reload_conf()")


def test_db_init_is_run_on_the_primary(urls: tuple[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    primary_url, standby_url = urls
    assert main(["db", "init", "--database-url", standby_url]) == 2
    assert capsys.readouterr().err == (
        f"costtop: {standby_url} is a read-only standby: db init runs on the primary (set audit_database_url, "
        "or --audit-database-url, to its URL)\n")
    assert main(["db", "init", "--database-url", standby_url, "--audit-database-url", primary_url]) == 0


async def test_the_session_says_why_and_reads_again_after_the_standby_ends_its_start_up(
        replica: Replica, urls: tuple[str, str], redis_url: str, keys: Redis) -> None:
    primary_url, standby_url = urls
    now = datetime.now(UTC)
    async with connected(primary_url) as primary, connected(replica.standby.url) as admin:
        await primary.executemany(INSERT, [(now - timedelta(seconds=s), "a", Decimal("1")) for s in range(1, 101)])
        await replayed(primary, replica.standby.url)
        await admin.execute("ALTER SYSTEM SET max_standby_streaming_delay = 0")
        await admin.execute("SELECT pg_reload_conf()")
        session = Session.live(Settings(database_url=standby_url, redis_url=redis_url, read_only=True), lambda: now)
        try:
            await session._read_baseline()  # the window, the snapshot left open for the day's sums
            await primary.execute("DELETE FROM tool_calls WHERE created_at < $1", now - timedelta(seconds=60))
            await primary.execute("VACUUM tool_calls")
            await replayed(primary, replica.standby.url)
            await session._day_totals(session._generation)  # as the loop runs them: cancelled
            snap = session.build()
            postgres = next(s for s in snap.sources if s.name == "Postgres")
            assert not postgres.connected and postgres.error is not None
            assert postgres.error.startswith("the standby cancelled start-up's snapshot for a conflict with recovery")
            assert snap.header.totals_pending and session._need_baseline  # no half-read day; read again
            await admin.execute("ALTER SYSTEM RESET max_standby_streaming_delay")
            await admin.execute("SELECT pg_reload_conf()")
            await replayed(primary, replica.standby.url)
            await session._read_baseline()
            await session._day_totals(session._generation)
            snap = session.build()
            assert next(s for s in snap.sources if s.name == "Postgres").connected
            today = await primary.fetchval("SELECT sum(cost_usd) FROM tool_calls WHERE created_at >= "
                                           "date_trunc('day', $1::timestamptz, 'UTC')", now)
            assert not snap.header.totals_pending and snap.header.spend_today == today
        finally:
            await session.feed.close()
            await admin.execute("ALTER SYSTEM RESET max_standby_streaming_delay")
            await admin.execute("SELECT pg_reload_conf()")


async def test_the_least_privileged_reader_reads_the_lag_on_the_standby(
        replica: Replica, urls: tuple[str, str]) -> None:
    """README's reading grants, made on the primary: the standby replays the role and its grants, and
    that role alone reads the lag and the conflict settings there."""
    primary_url, standby_url = urls
    database = primary_url.rsplit("/", 1)[1]
    role = f"reader_{database}"
    async with connected(primary_url) as primary:
        await primary.execute(f"CREATE ROLE {role} LOGIN")
        for grant in (f"GRANT CONNECT ON DATABASE {database} TO {role}", f"GRANT USAGE ON SCHEMA public TO {role}",
                      f"GRANT SELECT ON tool_calls TO {role}"):
            await primary.execute(grant)
        await replayed(primary, replica.standby.url)
        reader = PostgresReader(Settings(database_url=standby_url.replace("postgres@", f"{role}@")))
        try:
            await reader.connect()
            await reader.check_replica(start=True)
            assert reader.lag == ReplicaLag(0.0)
            assert reader._limits == " (max_standby_streaming_delay = 30s, hot_standby_feedback = off)"
            assert reader._conflicts_before is not None
        finally:
            await reader.close()  # the role goes with the module's servers


async def test_an_unreachable_primary_keeps_the_audit_row_and_says_which(
        urls: tuple[str, str], redis_url: str, keys: Redis, tmp_path: Path) -> None:
    _, standby_url = urls
    gone = f"postgresql://postgres@127.0.0.1:{free_port()}/gateway"
    feed = LiveFeed(Settings(database_url=standby_url, audit_database_url=gone, redis_url=redis_url,
                             audit_spool=str(tmp_path / "audit.jsonl"), timeout_seconds=1))
    try:
        await feed.connect_postgres()
        result = await feed.write(SwitchChange("set", "kill", "agent", "research-bot", "runaway"))
    finally:
        await feed.close()
    assert result.outcome is Outcome.DONE and result.audit_pending and feed.audit_pending() == 1
    assert f"; audit database {gone} unreachable: " in result.message
