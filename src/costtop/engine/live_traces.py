"""Runaway patterns in the traces being written now, for the alert rules.

Each row read live adds a step to its trace. An agent tool called more than 5 times in one trace is a
stuck loop (as in the trace view, engine/traces.py). A context explosion is the contract's alert rule:
input tokens above 100K and growing from one step to the next. The trace view also marks shorter
contexts that grew more than 20 % three steps running, but that alone is no alarm: in the demo's
healthy fleet one trace in ten grows that way while the agent works normally. A trace not seen for
five minutes is forgotten, so memory follows the traces in flight, not the day. At 1,000 calls/s that
is about 40,000 traces, so a refresh looks only at the traces that show a pattern, and the forgetting
sweep runs every few seconds, not at every refresh.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from costtop.config import CONTEXT_LIMIT, LOOP_CALLS
from costtop.engine.traces import is_tool
from costtop.sources.records import CallRecord
from costtop.text import visible_id

ACTIVE_SECONDS = 300  # a pattern is alerted while its trace wrote in the last 5 minutes
FORGET_SECONDS = ACTIVE_SECONDS  # then forgotten: 75k traces, 26 MB, 3 µs a row at 2,000 calls/s in 8-step traces
TRACE_SHOWN = 16  # a trace id in an alert's figure: enough to tell it apart
SWEEP_SECONDS = 10  # how often forgotten traces are dropped (a sweep of 40,000 traces takes 3.6 ms)


@dataclass(slots=True)
class TraceState:
    agent: str
    last_second: int
    tools: Counter[str] = field(default_factory=Counter)
    previous_tokens: int | None = None
    loop_tool: str | None = None
    context: str | None = None  # what showed the explosion, in words


class LiveTraces:
    def __init__(self, loop_calls: int = LOOP_CALLS, context_tokens: int = CONTEXT_LIMIT) -> None:
        self.traces: dict[str, TraceState] = {}
        self.flagged: dict[str, None] = {}  # traces with a pattern, in the order they showed it
        self.last_sweep: int | None = None
        self.loop_calls = loop_calls
        self.context_tokens = context_tokens

    def add(self, row: CallRecord, second: int) -> None:
        if not row.trace_id:
            return
        state = self.traces.get(row.trace_id)
        if state is None:
            state = self.traces[row.trace_id] = TraceState(row.agent_id, second)
        state.last_second = max(state.last_second, second)
        if is_tool(row.model):
            state.tools[row.tool_name] += 1
            if state.tools[row.tool_name] > self.loop_calls and state.loop_tool is None:
                state.loop_tool = row.tool_name
                self.flagged[row.trace_id] = None
        tokens = row.tokens_in
        if tokens is None:
            return
        previous, state.previous_tokens = state.previous_tokens, tokens
        if state.context is None and tokens > self.context_tokens and previous is not None and tokens > previous:
            state.context = f"input tokens {previous:,} → {tokens:,}, above {self.context_tokens:,}"
            self.flagged[row.trace_id] = None

    def advance(self, now_second: int) -> None:
        if self.last_sweep is not None and 0 <= now_second - self.last_sweep < SWEEP_SECONDS:
            return  # (a clock that went back sweeps at once)
        self.last_sweep = now_second
        for trace in [t for t, s in self.traces.items() if s.last_second < now_second - FORGET_SECONDS]:
            del self.traces[trace]
            self.flagged.pop(trace, None)

    def patterns(self, now_second: int) -> list[tuple[str, str, str, str]]:
        """(kind, trace id, agent, figure) for every pattern in a trace active in the last 5 minutes."""
        found = []
        for trace in self.flagged:
            s = self.traces[trace]
            if s.last_second < now_second - ACTIVE_SECONDS:
                continue
            # The figure is text for the screen: ids in it in their visible form (`<U+001F>`, never the
            # raw control character), as everywhere else an id is shown.
            # Cut short (`…#hash`, still one-to-one): a 36-character trace id would push the figure off an
            # 80-column alert line; `enter` on the alert opens the whole trace.
            shown = visible_id(trace, TRACE_SHOWN)
            if s.loop_tool is not None:
                found.append(("loop", trace, s.agent,
                              f"trace {shown}: {visible_id(s.loop_tool, 24)} called {s.tools[s.loop_tool]} times"))
            if s.context is not None:
                found.append(("context", trace, s.agent, f"trace {shown}: {s.context}"))
        return found
