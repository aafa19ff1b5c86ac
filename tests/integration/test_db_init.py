"""`costtop db init` (schema.init_db) against a real PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest

from costtop.config import OPTIONAL_COLUMNS, REQUIRED_COLUMNS, TableNames
from costtop.sources.schema import init_db

CALLS_INDEXES = {"tool_calls_pkey", "tool_calls_created_at_idx", "tool_calls_agent_created_idx", "tool_calls_trace_idx"}


@pytest.fixture
async def conn(empty_db_url: str) -> AsyncIterator[asyncpg.Connection]:
    c = await asyncpg.connect(empty_db_url)
    try:
        yield c
    finally:
        await c.close()


async def indexes(conn: asyncpg.Connection, table: str) -> dict[str, str]:
    rows = await conn.fetch("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' "
                            "AND tablename = $1", table)
    return {r["indexname"]: r["indexdef"] for r in rows}


async def columns(conn: asyncpg.Connection, table: str) -> list[tuple[str, str, str]]:
    rows = await conn.fetch("SELECT column_name, data_type, is_nullable FROM information_schema.columns "
                            "WHERE table_schema = 'public' AND table_name = $1 ORDER BY ordinal_position", table)
    return [(r["column_name"], r["data_type"], r["is_nullable"]) for r in rows]


async def test_creates_everything_in_an_empty_database(conn) -> None:
    report = await init_db(conn, TableNames())
    assert len(report) == 3 and "created" in report[0] and report[1] == "costtop_audit: created"
    assert report[2].startswith("costtop_rollup:")  # costtop's own schema, the only other thing it writes
    kept = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'costtop_rollup' ORDER BY 1")
    assert [r["tablename"] for r in kept] == ["buckets", "day_peaks", "day_traces", "days", "sources"]
    cols = {name: (kind, nullable) for name, kind, nullable in await columns(conn, "tool_calls")}
    assert set(cols) == {*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS, "metadata"}
    assert cols["created_at"] == ("timestamp with time zone", "NO")
    assert cols["latency_ms"] == ("integer", "NO")
    assert cols["cost_usd"] == ("numeric", "YES")
    assert cols["metadata"][0] == "jsonb"
    idx = await indexes(conn, "tool_calls")
    assert set(idx) == CALLS_INDEXES
    assert "(created_at)" in idx["tool_calls_created_at_idx"]
    assert "(agent_id, created_at)" in idx["tool_calls_agent_created_idx"]
    assert "(trace_id, created_at)" in idx["tool_calls_trace_idx"]
    audit = [c[0] for c in await columns(conn, "costtop_audit")]
    assert audit == ["id", "at", "operator", "ssh_client", "action", "scope", "target", "key", "reason",
                     "ttl_seconds", "result", "detail", "entry_id", "via", "client_addr"]
    assert set(await indexes(conn, "costtop_audit")) == {"costtop_audit_pkey", "costtop_audit_at_idx",
                                                         "costtop_audit_entry_idx"}
    # The default created_at lets a gateway insert without one.
    await conn.execute("INSERT INTO tool_calls (agent_id, tool_name, latency_ms) VALUES ('a', 'llm', 1)")
    assert await conn.fetchval("SELECT created_at IS NOT NULL FROM tool_calls") is True


async def test_an_audit_table_from_before_gets_its_entry_id_and_web_columns(conn) -> None:
    """Tables made before audit rows could wait in a local spool: `db init` adds the id that makes
    writing a spooled row twice a no-op, and the columns that say a change came through serve (issue
    14), and keeps the rows."""
    await conn.execute("CREATE TABLE costtop_audit (id bigserial PRIMARY KEY, at timestamptz NOT NULL DEFAULT now(), "
                       "operator text NOT NULL, ssh_client text, action text NOT NULL, scope text NOT NULL, "
                       "target text NOT NULL, key text NOT NULL, reason text, ttl_seconds integer, "
                       "result text NOT NULL, detail text)")
    await conn.execute("INSERT INTO costtop_audit (operator, action, scope, target, key, result) "
                       "VALUES ('o', 'set:kill', 'global', '*', 'kill:global', 'set')")
    assert (await init_db(conn, TableNames()))[1] == "costtop_audit: exists"
    assert {"entry_id", "via", "client_addr"} <= {c[0] for c in await columns(conn, "costtop_audit")}
    assert "costtop_audit_entry_idx" in await indexes(conn, "costtop_audit")
    assert await conn.fetchval("SELECT count(*) FROM costtop_audit") == 1


async def test_running_twice_is_harmless(conn) -> None:
    await init_db(conn, TableNames())
    await conn.execute("INSERT INTO tool_calls (agent_id, tool_name, latency_ms, cost_usd) VALUES ('a', 'llm', 1, 2)")
    await conn.execute("INSERT INTO costtop_audit (operator, action, scope, target, key, result) "
                       "VALUES ('o', 'set:kill', 'global', '*', 'kill:global', 'set')")
    before = (await columns(conn, "tool_calls"), await indexes(conn, "tool_calls"),
              await columns(conn, "costtop_audit"), await indexes(conn, "costtop_audit"))
    report = await init_db(conn, TableNames())
    assert report[:2] == ["tool_calls: exists, left unchanged", "costtop_audit: exists"]
    after = (await columns(conn, "tool_calls"), await indexes(conn, "tool_calls"),
             await columns(conn, "costtop_audit"), await indexes(conn, "costtop_audit"))
    assert after == before
    assert await conn.fetchval("SELECT count(*) FROM tool_calls") == 1
    assert await conn.fetchval("SELECT count(*) FROM costtop_audit") == 1


async def test_existing_minimal_table_is_left_alone(conn) -> None:
    await conn.execute("CREATE TABLE tool_calls (agent_id text NOT NULL, tool_name text NOT NULL, "
                       "latency_ms integer NOT NULL, created_at timestamptz NOT NULL)")
    await conn.execute("INSERT INTO tool_calls VALUES ('a', 'llm', 1, now())")
    cols_before, idx_before = await columns(conn, "tool_calls"), await indexes(conn, "tool_calls")
    assert idx_before == {}
    report = await init_db(conn, TableNames())
    assert report[0] == "tool_calls: exists, left unchanged"
    assert await columns(conn, "tool_calls") == cols_before
    assert await indexes(conn, "tool_calls") == {}
    assert await conn.fetchval("SELECT count(*) FROM tool_calls") == 1
    assert [c[0] for c in await columns(conn, "costtop_audit")][:3] == ["id", "at", "operator"]


async def test_concurrent_inits_do_not_race(empty_db_url) -> None:
    conns = [await asyncpg.connect(empty_db_url) for _ in range(3)]
    try:
        reports = await asyncio.gather(*(init_db(c, TableNames()) for c in conns))
        assert sum("created" in r[0] and "exists" not in r[0] for r in reports) == 1
        assert set(await indexes(conns[0], "tool_calls")) == CALLS_INDEXES
    finally:
        for c in conns:
            await c.close()


async def test_configured_names_are_quoted(conn) -> None:
    await conn.execute('CREATE SCHEMA "gw x"')
    tables = TableNames(calls='calls"log', audit="Audit Trail", schema="gw x", columns={"created_at": "ts"})
    report = await init_db(conn, tables)
    assert report[1] == "Audit Trail: created"
    names = {r["table_name"] for r in await conn.fetch(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'gw x'")}
    assert names == {'calls"log', "Audit Trail"}
    cols = {r["column_name"] for r in await conn.fetch(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = 'gw x' AND table_name = $1",
        'calls"log')}
    assert "ts" in cols and "created_at" not in cols
