"""`costtop db init`: the gateway's table when it is missing, and costtop's own audit table.

An existing `tool_calls` is never altered, not even by adding an index: it belongs to the gateway.
"""

from __future__ import annotations

import asyncpg

from costtop.config import TableNames


def qident(name: str) -> str:
    """A safely quoted SQL identifier (table and column names come from configuration)."""
    return '"' + name.replace('"', '""') + '"'


def qualified(tables: TableNames, table: str) -> str:
    return f"{qident(tables.schema_name)}.{qident(table)}"


def calls_ddl(tables: TableNames) -> list[str]:
    t = qualified(tables, tables.calls)
    c = tables.column
    name = tables.calls
    return [
        f"""CREATE TABLE {t} (
            {qident(c('id'))} bigserial PRIMARY KEY,
            {qident(c('created_at'))} timestamptz NOT NULL DEFAULT now(),
            {qident(c('agent_id'))} text NOT NULL,
            {qident(c('tool_name'))} text NOT NULL,
            {qident(c('latency_ms'))} integer NOT NULL,
            {qident(c('provider'))} text,
            {qident(c('model'))} text,
            {qident(c('tokens_in'))} integer,
            {qident(c('tokens_out'))} integer,
            {qident(c('cached_tokens'))} integer,
            {qident(c('cost_usd'))} numeric,
            {qident(c('status'))} text,
            {qident(c('error_code'))} text,
            {qident(c('trace_id'))} text,
            {qident(c('span_id'))} text,
            {qident(c('parent_span_id'))} text,
            {qident(c('task_id'))} text,
            {qident(c('user_id'))} text,
            metadata jsonb
        )""",
        # Incremental reads and every time window filter on created_at.
        f"CREATE INDEX {qident(name + '_created_at_idx')} ON {t} ({qident(c('created_at'))})",
        # Per-agent drill-down and per-agent day sums.
        f"CREATE INDEX {qident(name + '_agent_created_idx')} ON {t} "
        f"({qident(c('agent_id'))}, {qident(c('created_at'))})",
        # Trace view: all steps of one trace in time order.
        f"CREATE INDEX {qident(name + '_trace_idx')} ON {t} ({qident(c('trace_id'))}, {qident(c('created_at'))})",
    ]


def audit_ddl(tables: TableNames) -> list[str]:
    t = qualified(tables, tables.audit)
    return [
        f"""CREATE TABLE IF NOT EXISTS {t} (
            id bigserial PRIMARY KEY,
            at timestamptz NOT NULL DEFAULT now(),
            operator text NOT NULL,
            ssh_client text,
            action text NOT NULL,
            scope text NOT NULL,
            target text NOT NULL,
            key text NOT NULL,
            reason text,
            ttl_seconds integer,
            result text NOT NULL,
            detail text,
            entry_id uuid,
            via text,
            client_addr text
        )""",
        f"CREATE INDEX IF NOT EXISTS {qident(tables.audit + '_at_idx')} ON {t} (at)",
        # A row kept locally during an outage carries its own id, so writing it again is a no-op
        # (sources/audit_spool.py). Added to tables made before it existed.
        f"ALTER TABLE {t} ADD COLUMN IF NOT EXISTS entry_id uuid",
        f"CREATE UNIQUE INDEX IF NOT EXISTS {qident(tables.audit + '_entry_idx')} ON {t} (entry_id)",
        # Where a change came from when it was not typed in a terminal: `web` and the browser's address
        # for `costtop serve` (issue 14). Added to tables made before it existed; NULL for terminal rows.
        f"ALTER TABLE {t} ADD COLUMN IF NOT EXISTS via text",
        f"ALTER TABLE {t} ADD COLUMN IF NOT EXISTS client_addr text",
    ]


async def table_exists(conn: asyncpg.Connection, tables: TableNames, table: str) -> bool:
    found = await conn.fetchval(
        "SELECT 1 FROM information_schema.tables WHERE table_schema = $1 AND table_name = $2",
        tables.schema_name, table,
    )
    return found is not None


async def init_db(conn: asyncpg.Connection, tables: TableNames, create_calls: bool = True) -> list[str]:
    """Create what is missing; return one line per table saying what was done. Under a preset the
    calls table is the gateway's own (LiteLLM's migrations make it): never created here, where it
    would get the contract's columns instead of the gateway's."""
    report: list[str] = []
    async with conn.transaction():
        # Two `db init` at once must not race on the existence check.
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('costtop db init'))")
        if await table_exists(conn, tables, tables.calls):
            report.append(f"{tables.calls}: exists, left unchanged")
        elif not create_calls:
            report.append(f"{tables.calls}: missing, not created (the gateway's own table: start the gateway "
                          "once so that its migrations create it)")
        else:
            for statement in calls_ddl(tables):
                await conn.execute(statement)
            report.append(f"{tables.calls}: created with indexes on created_at, (agent_id, created_at), "
                          "(trace_id, created_at)")
        existed = await table_exists(conn, tables, tables.audit)
        for statement in audit_ddl(tables):
            await conn.execute(statement)
        report.append(f"{tables.audit}: {'exists' if existed else 'created'}")
        from costtop.rollup.schema import rollup_ddl

        for statement in rollup_ddl(tables):
            await conn.execute(statement)
        report.append(f"{tables.rollup_schema}: the rollup's schema (sources, buckets, days) is there")
    return report
