"""One trace's steps: nested by parent span, and marked where they show the seeds' runaway patterns.

Pure functions over the steps a reader returned; nothing here touches a database.
- a stuck loop: the same tool called more than 5 times in the trace. Only agent tools count: a row with
  a model is the model call itself (contract: `tool_name` is then e.g. `llm`), and an agent answering
  in six model calls is working, not looping;
- a context explosion: input tokens growing more than 20 % step after step three times running, or
  passing 100K;
- an error streak: three or more failed steps in a row.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from decimal import Decimal

from costtop.config import CONTEXT_LIMIT, LOOP_CALLS
from costtop.sources.records import Step, TraceSummary

GROWTH = Decimal("1.2")  # +20 % ...
GROWTH_RUN = 3  # ... three times running
ERROR_STREAK = 3


@dataclass(frozen=True, slots=True)
class NestedStep:
    step: Step
    depth: int
    marks: frozenset[str]  # "loop", "context", "errors"


def nest(steps: list[Step]) -> list[tuple[Step, int]]:
    """Depth-first by parent span, children in time order; steps whose parent is unknown (or with no
    spans at all) stay at the top level in time order. Iterative: a 10,000-step chain is fine."""
    ordered = sorted(steps, key=lambda s: s.created_at)
    spans = {s.span_id for s in ordered if s.span_id}
    children: dict[str | None, list[Step]] = {}
    for s in ordered:
        parent = s.parent_span_id if s.parent_span_id in spans and s.parent_span_id != s.span_id else None
        children.setdefault(parent, []).append(s)
    out: list[tuple[Step, int]] = []
    seen: set[int] = set()
    stack: list[tuple[Step, int]] = [(s, 0) for s in reversed(children.get(None, []))]
    while stack:
        step, depth = stack.pop()
        if id(step) in seen:
            continue  # a cycle in the parent links: shown once
        seen.add(id(step))
        out.append((step, depth))
        if step.span_id:
            stack.extend((c, depth + 1) for c in reversed(children.get(step.span_id, [])))
    # Steps caught in a parent cycle with no way in from the top are still shown, in time order.
    out += [(s, 0) for s in ordered if id(s) not in seen]
    return out


def is_tool(model: str | None) -> bool:
    """An agent tool rather than a model call: the rows a stuck loop is counted in."""
    return model is None


PATTERNS = ("loop", "context", "errors")  # in the order the screens list them


def step_marks(ordered: list[Step], loop_calls: int = LOOP_CALLS,
               context_tokens: int = CONTEXT_LIMIT) -> dict[int, set[str]]:
    """Each step's runaway patterns, by `id(step)`, over steps in time order: the one place the three
    patterns are defined, for the trace view's steps (`mark`) and the agent screen's list (`patterns`)."""
    marks: dict[int, set[str]] = {id(s): set() for s in ordered}
    for tool, count in Counter(s.tool_name for s in ordered if is_tool(s.model)).items():
        if count > loop_calls:
            for s in ordered:
                if s.tool_name == tool and is_tool(s.model):
                    marks[id(s)].add("loop")
    run: list[Step] = []  # steps with known input tokens, each more than 20 % above the one before
    previous: Step | None = None
    for s in ordered:
        if s.tokens_in is None:
            continue
        if s.tokens_in > context_tokens:
            marks[id(s)].add("context")
        if previous is not None and previous.tokens_in and s.tokens_in > previous.tokens_in * GROWTH:
            run.append(s)
            if len(run) >= GROWTH_RUN:
                for grown in run:
                    marks[id(grown)].add("context")
        else:
            run = []
        previous = s
    streak: list[Step] = []
    for s in ordered:
        if s.status in ("error", "timeout"):
            streak.append(s)
            if len(streak) >= ERROR_STREAK:
                for failed in streak:
                    marks[id(failed)].add("errors")
        else:
            streak = []
    return marks


def mark(steps: list[Step], loop_calls: int = LOOP_CALLS, context_tokens: int = CONTEXT_LIMIT) -> list[NestedStep]:
    """The nested steps, each with the runaway patterns it belongs to."""
    marks = step_marks(sorted(steps, key=lambda s: s.created_at), loop_calls, context_tokens)
    return [NestedStep(step, depth, frozenset(marks[id(step)])) for step, depth in nest(steps)]


def patterns(steps: list[Step], loop_calls: int = LOOP_CALLS, context_tokens: int = CONTEXT_LIMIT) -> frozenset[str]:
    """The runaway patterns anywhere in one trace: the marks its steps would carry in the trace view."""
    marks = step_marks(sorted(steps, key=lambda s: s.created_at), loop_calls, context_tokens)
    return frozenset().union(*marks.values())


def with_patterns(traces: Iterable[TraceSummary], steps: Mapping[str, list[Step]], loop_calls: int = LOOP_CALLS,
                  context_tokens: int = CONTEXT_LIMIT) -> list[TraceSummary]:
    """The traces, each with the patterns its steps show. `steps`: by trace id, the rows read for each (a
    trace read only in part is judged on its part: a pattern found there holds, one past it is not seen)."""
    return [replace(t, patterns=patterns(steps.get(t.trace_id, []), loop_calls, context_tokens)) for t in traces]
