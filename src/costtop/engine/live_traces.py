"""Runaway patterns in the traces being written now, for the alert rules.

Each row read live adds a step to its trace: a tool called more than 5 times in one trace is a stuck
loop; input tokens growing more than 20 % step after step three times running, or passing 100K, is a
context explosion (the same rules as the trace view, engine/traces.py). A trace not seen for five
minutes is forgotten, so memory follows the traces in flight, not the day.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from costtop.engine.traces import CONTEXT_LIMIT, GROWTH, GROWTH_RUN, LOOP_CALLS
from costtop.sources.records import CallRecord

ACTIVE_SECONDS = 300  # a pattern is alerted while its trace wrote in the last 5 minutes
FORGET_SECONDS = ACTIVE_SECONDS  # then forgotten: 75k traces, 26 MB, 3 µs a row at 2,000 calls/s in 8-step traces


@dataclass(slots=True)
class TraceState:
    agent: str
    last_second: int
    tools: Counter[str] = field(default_factory=Counter)
    previous_tokens: int | None = None
    growth_run: int = 0
    loop_tool: str | None = None
    context: str | None = None  # what showed the explosion, in words


class LiveTraces:
    def __init__(self) -> None:
        self.traces: dict[str, TraceState] = {}

    def add(self, row: CallRecord, second: int) -> None:
        if not row.trace_id:
            return
        state = self.traces.get(row.trace_id)
        if state is None:
            state = self.traces[row.trace_id] = TraceState(row.agent_id, second)
        state.last_second = max(state.last_second, second)
        state.tools[row.tool_name] += 1
        if state.tools[row.tool_name] > LOOP_CALLS and state.loop_tool is None:
            state.loop_tool = row.tool_name
        tokens = row.tokens_in
        if tokens is None:
            return
        if tokens > CONTEXT_LIMIT and state.context is None:
            state.context = f"{tokens:,} input tokens in one step"
        if state.previous_tokens and tokens > state.previous_tokens * GROWTH:
            state.growth_run += 1
            if state.growth_run >= GROWTH_RUN and state.context is None:
                state.context = f"input tokens up more than 20 % {state.growth_run} steps running (now {tokens:,})"
        else:
            state.growth_run = 0
        state.previous_tokens = tokens

    def advance(self, now_second: int) -> None:
        for trace in [t for t, s in self.traces.items() if s.last_second < now_second - FORGET_SECONDS]:
            del self.traces[trace]

    def patterns(self, now_second: int) -> list[tuple[str, str, str, str]]:
        """(kind, trace id, agent, figure) for every pattern in a trace active in the last 5 minutes."""
        found = []
        for trace, s in self.traces.items():
            if s.last_second < now_second - ACTIVE_SECONDS:
                continue
            if s.loop_tool is not None:
                found.append(("loop", trace, s.agent,
                              f"trace {trace}: {s.loop_tool} called {s.tools[s.loop_tool]} times"))
            if s.context is not None:
                found.append(("context", trace, s.agent, f"trace {trace}: {s.context}"))
        return found
