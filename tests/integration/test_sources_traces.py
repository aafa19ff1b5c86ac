"""The drill-down's reads against a real PostgreSQL: real traces, the marks, and index use."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from costtop.config import Settings
from costtop.engine.traces import mark, with_patterns
from costtop.gateway import Call, Gateway
from costtop.sources.postgres import PostgresReader
from costtop.sources.traces import (
    agent_calls,
    agent_calls_sql,
    agent_models,
    agent_models_sql,
    agent_steps,
    agent_steps_sql,
    agent_traces,
    agent_traces_sql,
    trace_steps,
    trace_steps_sql,
)


def calls_of_a_loop(now: datetime) -> list[Call]:
    """A planner step; then 7 rounds of a model call with a context growing 50 % a round, each asking
    for the same search tool; then 3 model calls that fail."""
    at = iter(now - timedelta(seconds=30 - i) for i in range(30))
    calls = [Call("looper", "plan", 200, model="gpt-5", tokens_in=1000, tokens_out=50, cost_usd=Decimal("0.01"),
                  trace_id="t-loop", span_id="root", created_at=next(at))]
    tokens = 1000
    for i in range(7):
        tokens = int(tokens * 1.5)
        calls.append(Call("looper", "llm", 300, model="gpt-5", tokens_in=tokens, tokens_out=20,
                          cost_usd=Decimal("0.02"), trace_id="t-loop", span_id=f"l{i}", parent_span_id="root",
                          created_at=next(at)))
        calls.append(Call("looper", "search", 200, cost_usd=Decimal("0.005"), trace_id="t-loop", span_id=f"s{i}",
                          parent_span_id=f"l{i}", created_at=next(at)))
    calls += [Call("looper", "llm", 50, model="gpt-5", status="error", trace_id="t-loop", span_id=f"e{i}",
                   parent_span_id="root", created_at=next(at)) for i in range(3)]
    return calls


async def test_traces_of_an_agent_and_the_steps_of_one_with_their_marks(pg, redis, db_url) -> None:
    now = datetime.now(UTC)
    gw = Gateway(redis, pg)
    await gw.record(calls_of_a_loop(now))
    await gw.record([Call("looper", "llm", 100, cost_usd=Decimal("0.50"), trace_id="t-old",
                          created_at=now - timedelta(hours=3)),
                     Call("other", "llm", 100, cost_usd=Decimal("9"), trace_id="t-other", created_at=now)])
    reader = PostgresReader(Settings(database_url=db_url))
    try:
        traces = await agent_traces(reader, "looper", now - timedelta(hours=1))
        assert [t.trace_id for t in traces] == ["t-loop"]  # the 3-hour-old trace and other agents' are not read
        t = traces[0]
        assert (t.steps, t.errors, t.cost) == (18, 3, Decimal("0.185"))
        assert t.duration_seconds == 17.0
        steps = await trace_steps(reader, "t-loop")
        nested = mark(steps)
        assert [(n.step.tool_name, n.depth) for n in nested][:3] == [("plan", 0), ("llm", 1), ("search", 2)]
        searches = [n for n in nested if n.step.tool_name == "search"]
        assert len(searches) == 7 and all(n.marks == {"loop"} for n in searches)
        grown = [n for n in nested if n.step.tool_name == "llm" and n.step.tokens_in]
        assert len(grown) == 7 and all(n.marks == {"context"} for n in grown)  # the 7 model calls are no loop
        assert [n.marks for n in nested if n.step.status == "error"] == [{"errors"}] * 3
        assert not nested[0].marks  # the plan step starts the growth but is not part of it
        assert await trace_steps(reader, "no-such-trace") == []
        # The list's patterns, judged on the steps read with it: the same as the trace view's marks.
        by_trace = await agent_steps(reader, "looper", now - timedelta(hours=1))
        assert list(by_trace) == ["t-loop"] and len(by_trace["t-loop"]) == 18
        assert [s.created_at for s in by_trace["t-loop"]] == sorted(s.created_at for s in by_trace["t-loop"])
        assert with_patterns(traces, by_trace)[0].patterns == {"loop", "context", "errors"}
        # Only the traces asked for (those that grew since they were judged).
        assert (await agent_steps(reader, "looper", now - timedelta(hours=1), ["t-loop"])).keys() == {"t-loop"}
        assert await agent_steps(reader, "looper", now - timedelta(hours=1), ["t-other"]) == {}
        newest = await agent_steps(reader, "looper", now - timedelta(hours=1), limit=4)
        assert [s.status for s in newest["t-loop"]] == ["success"] + ["error"] * 3  # the newest rows
        # Its model mix over the hour, and its latest calls, newest first.
        mix = await agent_models(reader, "looper", now - timedelta(hours=1))
        assert [(m.model, m.calls, m.cost) for m in mix] == [("gpt-5", 11, Decimal("0.15")),
                                                             (None, 7, Decimal("0.035"))]
        latest = await agent_calls(reader, "looper", limit=3)
        assert [(c.tool_name, c.status) for c in latest] == [("llm", "error")] * 3
        assert latest[0].created_at > latest[1].created_at > latest[2].created_at
    finally:
        await reader.close()


async def test_a_10000_step_trace_reads_in_full_and_nests(pg, redis, db_url) -> None:
    now = datetime.now(UTC)
    calls = [Call("big", "llm", 10, tokens_in=100, trace_id="t-big", span_id=f"s{i}",
                  parent_span_id=f"s{i - 1}" if i else None, created_at=now - timedelta(milliseconds=10_000 - i))
             for i in range(10_000)]
    await Gateway(redis, pg).record(calls)
    reader = PostgresReader(Settings(database_url=db_url))
    try:
        steps = await trace_steps(reader, "t-big")
        assert len(steps) == 10_000
        nested = mark(steps)
        assert nested[-1].depth == 9_999
    finally:
        await reader.close()


async def test_both_queries_can_use_their_index(pg, db_url) -> None:
    """The readers' own queries: with sequential scans off the planner finds an index for each, so
    none of them needs the whole table."""
    reader = PostgresReader(Settings(database_url=db_url))
    try:
        await reader.connect()
        async with reader.pool.acquire() as conn:
            await conn.execute("SET enable_seqscan = off")
            bound = reader.clock_bound()
            for sql, args in ((agent_traces_sql(reader), ("a", datetime.now(UTC), 200, bound)),
                              (trace_steps_sql(reader), ("t", 20_000)),
                              (agent_models_sql(reader), ("a", datetime.now(UTC))),
                              (agent_calls_sql(reader), ("a", 50, bound)),
                              (agent_steps_sql(reader), ("a", datetime.now(UTC), 20_000, bound, None)),
                              (agent_steps_sql(reader), ("a", datetime.now(UTC), 20_000, bound, ["t"]))):
                plan = "\n".join(r[0] for r in await conn.fetch(f"EXPLAIN {sql}", *args))
                assert "Index" in plan and "Seq Scan" not in plan, plan
    finally:
        await reader.close()
