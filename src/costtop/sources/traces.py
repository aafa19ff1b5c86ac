"""The drill-down's reads: one agent's recent traces, and one trace's steps.

Both read a bounded slice through an index `costtop db init` creates with the table:
- an agent's traces: `(agent_id, created_at)` (`tool_calls_agent_created_idx`), its rows since a time;
  the same rows again, a few columns each, for the patterns the list marks (`agent_steps`);
- a trace's steps: `(trace_id, created_at)` (`tool_calls_trace_idx`), one trace's rows in time order.
Neither scans the whole table; both are limited, and have the reader's timeout.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from costtop.sources.errors import SourceError
from costtop.sources.numbers import finite_or_none
from costtop.sources.postgres import PostgresReader, fetch
from costtop.sources.records import CallRecord, ModelShare, Step, TraceSummary

MAX_STEPS = 20_000


def agent_traces_sql(reader: PostgresReader) -> str:
    ca, trace = reader.column("created_at"), reader.column("trace_id")
    return (
        f"SELECT {trace} AS trace_id, min({ca}) AS started, max({ca}) AS ended, count(*) AS steps, "
        f"coalesce(sum({reader.optional('tokens_in', '::bigint')}), 0) AS tin, "
        f"coalesce(sum({reader.optional('tokens_out', '::bigint')}), 0) AS tout, "
        f"sum({reader.cost_sql()}) AS cost, count(*) FILTER (WHERE {reader.error_sql()}) AS errors "
        f"FROM {reader.table_sql()} WHERE {reader.match('agent_id', '$1')} AND {reader.since('$2')} "
        f"AND {reader.since('$4', '<')} AND {reader.raw('trace_id')} IS NOT NULL "
        f"GROUP BY 1 ORDER BY 2 DESC LIMIT $3"
    )


async def agent_traces(reader: PostgresReader, agent: str, since: datetime, limit: int = 200) -> list[TraceSummary]:
    """The agent's traces with a row since `since`, newest first (index: agent_id, created_at)."""
    if reader.columns is None:
        await reader.connect()
    assert reader.columns is not None
    if not reader.columns.has("trace_id"):
        return []
    rows = await fetch(reader, agent_traces_sql, agent, since, limit, reader.clock_bound())
    return [TraceSummary(r["trace_id"], r["started"], r["ended"], r["steps"], int(r["tin"]), int(r["tout"]),
                         finite_or_none(r["cost"]), r["errors"]) for r in rows]


def trace_steps_sql(reader: PostgresReader) -> str:
    opt = reader.optional
    return (
        f"SELECT {reader.column('created_at')} AS created_at, {reader.column('tool_name')} AS tool_name, "
        f"{opt('span_id')} AS span_id, {opt('parent_span_id')} AS parent_span_id, {opt('model')} AS model, "
        f"{opt('tokens_in')} AS tokens_in, {opt('tokens_out')} AS tokens_out, {reader.cost_sql()} AS cost, "
        f"{reader.column('latency_ms')} AS latency_ms, {opt('status')} AS status "
        f"FROM {reader.table_sql()} WHERE {reader.match('trace_id', '$1')} "
        f"ORDER BY {reader.raw('created_at')} LIMIT $2"
    )


async def trace_steps(reader: PostgresReader, trace_id: str, limit: int = MAX_STEPS) -> list[Step]:
    """One trace's steps in time order (index: trace_id, created_at), at most `limit`."""
    if reader.columns is None:
        await reader.connect()
    assert reader.columns is not None
    if not reader.columns.has("trace_id"):
        raise SourceError("this tool_calls has no trace_id column")
    rows = await fetch(reader, trace_steps_sql, trace_id, limit)
    return [Step(r["created_at"], r["tool_name"], r["span_id"], r["parent_span_id"], r["model"], r["tokens_in"],
                 r["tokens_out"], finite_or_none(r["cost"]), r["latency_ms"], r["status"]) for r in rows]


def agent_steps_sql(reader: PostgresReader) -> str:
    opt = reader.optional
    return (
        f"SELECT {reader.column('trace_id')} AS trace_id, {reader.column('created_at')} AS created_at, "
        f"{reader.column('tool_name')} AS tool_name, {opt('model')} AS model, {opt('tokens_in')} AS tokens_in, "
        f"{opt('status')} AS status "
        f"FROM {reader.table_sql()} WHERE {reader.match('agent_id', '$1')} AND {reader.since('$2')} "
        f"AND {reader.since('$4', '<')} AND {reader.raw('trace_id')} IS NOT NULL "
        f"AND ($5::text[] IS NULL OR {reader.column('trace_id')} = ANY($5::text[])) "
        f"ORDER BY {reader.raw('created_at')} DESC LIMIT $3"
    )


async def agent_steps(reader: PostgresReader, agent: str, since: datetime, traces: Sequence[str] | None = None,
                      limit: int = MAX_STEPS) -> dict[str, list[Step]]:
    """The steps of the agent's traces since `since` (the rows `agent_traces` sums), by trace id, in
    time order: what the agent screen's list judges the runaway patterns on (`engine.traces.patterns`).
    `traces`: only these (the ones that grew since they were judged); None: all. Only the columns the
    patterns need; the newest `limit` rows (index: agent_id, created_at, read backwards), so the newest
    traces are whole and a runaway one of 100,000 steps costs one bounded read."""
    if reader.columns is None:
        await reader.connect()
    assert reader.columns is not None
    if not reader.columns.has("trace_id"):
        return {}
    rows = await fetch(reader, agent_steps_sql, agent, since, limit, reader.clock_bound(),
                       None if traces is None else list(traces))
    steps: dict[str, list[Step]] = {}
    for r in reversed(rows):
        steps.setdefault(r["trace_id"], []).append(
            Step(r["created_at"], r["tool_name"], None, None, r["model"], r["tokens_in"], None, None, None,
                 r["status"]))
    return steps


def agent_models_sql(reader: PostgresReader) -> str:
    return (
        f"SELECT {reader.optional('model')} AS model, count(*) AS calls, sum({reader.cost_sql()}) AS cost "
        f"FROM {reader.table_sql()} WHERE {reader.match('agent_id', '$1')} AND {reader.since('$2')} "
        "GROUP BY 1 ORDER BY 3 DESC NULLS LAST, 2 DESC"
    )


async def agent_models(reader: PostgresReader, agent: str, since: datetime) -> list[ModelShare]:
    """The agent's calls and spend per model since `since` (index: agent_id, created_at)."""
    rows = await fetch(reader, agent_models_sql, agent, since)
    return [ModelShare(r["model"], r["calls"], finite_or_none(r["cost"])) for r in rows]


def agent_calls_sql(reader: PostgresReader) -> str:
    return f"SELECT {reader.select_list_sql()} FROM {reader.table_sql()} WHERE {reader.match('agent_id', '$1')} " \
           f"AND {reader.since('$3', '<')} ORDER BY {reader.raw('created_at')} DESC LIMIT $2"


async def agent_calls(reader: PostgresReader, agent: str, limit: int = 50) -> list[CallRecord]:
    """The agent's latest calls, newest first (index: agent_id, created_at, read backwards); none dated
    past the clock's bound (a row of next year is not the latest call)."""
    rows = await fetch(reader, agent_calls_sql, agent, limit, reader.clock_bound())
    return [reader.record(r) for r in rows]
