"""One trace's nesting and the runaway marks, at and around each threshold."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from costtop.engine.traces import mark, nest, patterns, with_patterns
from costtop.sources.records import Step, TraceSummary

T0 = datetime(2026, 11, 22, 12, tzinfo=UTC)


def step(i: int, tool: str = "llm", span: str | None = None, parent: str | None = None, tokens: int | None = 100,
         status: str = "success") -> Step:
    """`llm` is a model call (it has a model); any other name is an agent tool."""
    model = "m" if tool == "llm" else None
    return Step(T0 + timedelta(seconds=i), tool, span, parent, model, tokens, 10, Decimal("0.01"), 100, status)


def test_steps_nest_by_parent_span_in_time_order() -> None:
    steps = [step(3, "search", "c", "a"), step(0, "plan", "a"), step(1, "llm", "b", "a"), step(2, "llm", "d", "b"),
             step(4, "orphan", "e", "missing"), step(5, "root2", "f")]
    got = [(s.tool_name, depth) for s, depth in nest(steps)]
    assert got == [("plan", 0), ("llm", 1), ("llm", 2), ("search", 1), ("orphan", 0), ("root2", 0)]
    # Without spans: time order, flat.
    flat = [step(2, "b"), step(1, "a")]
    assert [(s.tool_name, d) for s, d in nest(flat)] == [("a", 0), ("b", 0)]
    # A cycle in the parent links does not hang and loses no step.
    cycle = [step(0, "x", "p", "q"), step(1, "y", "q", "p")]
    assert sorted(s.tool_name for s, _ in nest(cycle)) == ["x", "y"]


def test_a_tool_called_more_than_five_times_is_a_loop() -> None:
    five = [step(i, "search") for i in range(5)] + [step(9, "llm")]
    assert not any("loop" in s.marks for s in mark(five))
    six = [step(i, "search") for i in range(6)] + [step(9, "llm")]
    marked = {(s.step.tool_name, "loop" in s.marks) for s in mark(six)}
    assert marked == {("search", True), ("llm", False)}
    # Model calls are not tools: ten of them in one trace are no loop. The limit is an argument.
    assert not any("loop" in s.marks for s in mark([step(i, "llm") for i in range(10)]))
    assert all("loop" in s.marks for s in mark([step(i, "search") for i in range(3)], loop_calls=2))


def test_context_explosion_three_growths_of_more_than_20_percent_or_100k() -> None:
    def tokens(*values: int) -> list[Step]:
        return [step(i, tokens=v) for i, v in enumerate(values)]

    exactly_20 = mark(tokens(1000, 1200, 1440, 1728))  # +20 % is not "more than"
    assert not any("context" in s.marks for s in exactly_20)
    two_runs = mark(tokens(1000, 1300, 1700, 1000, 1300))  # grows twice, then resets
    assert not any("context" in s.marks for s in two_runs)
    three = mark(tokens(1000, 1300, 1700, 2300))
    assert ["context" in s.marks for s in three] == [False, True, True, True]
    big = mark(tokens(100_000, 100_001))
    assert ["context" in s.marks for s in big] == [False, True]


def test_three_failures_in_a_row_are_a_streak() -> None:
    two = mark([step(0, status="error"), step(1, status="error"), step(2), step(3, status="error")])
    assert not any("errors" in s.marks for s in two)
    three = mark([step(0), step(1, status="error"), step(2, status="timeout"), step(3, status="error"), step(4)])
    assert ["errors" in s.marks for s in three] == [False, True, True, True, False]


def test_a_10000_step_chain_nests_without_recursion() -> None:
    steps = [step(i, "search", f"s{i}", f"s{i - 1}" if i else None, tokens=1000 + i) for i in range(10_000)]
    nested = mark(steps)  # a recursive walk would overflow Python's stack here
    assert len(nested) == 10_000 and nested[-1].depth == 9_999 and "loop" in nested[0].marks


def test_a_trace_has_the_patterns_its_steps_are_marked_with() -> None:
    """The agent screen's list and the trace view judge a trace the same way (one definition)."""
    loop = [step(i, "search") for i in range(6)]
    growth = [step(i, "llm", tokens=1000 * 2 ** i) for i in range(4)]
    streak = [step(i, "llm", status="error") for i in range(3)]
    healthy = [step(i, "search") for i in range(5)] + [step(9, "llm", status="error")]
    for steps, expected in ((loop, {"loop"}), (growth, {"context"}), (streak, {"errors"}), (healthy, set()),
                            (loop + [step(20 + i, "llm", status="timeout") for i in range(3)], {"loop", "errors"}),
                            ([], set())):
        assert patterns(steps) == expected
        assert patterns(steps) == frozenset().union(*(n.marks for n in mark(steps)))
    assert patterns(loop, loop_calls=6) == set()  # the thresholds are the settings'
    assert patterns([step(0, "llm", tokens=5000)], context_tokens=4000) == {"context"}


def test_each_trace_of_a_list_gets_its_own_patterns() -> None:
    def summary(trace: str) -> TraceSummary:
        return TraceSummary(trace, T0, T0, 1, 0, 0, None, 0)

    traces = [summary("a"), summary("b"), summary("not-read")]
    got = with_patterns(traces, {"a": [step(i, "search") for i in range(6)], "b": [step(0)]})
    assert [(t.trace_id, t.patterns) for t in got] == [("a", {"loop"}), ("b", set()), ("not-read", set())]
    assert got[0].steps == 1 and traces[0].patterns == set()  # the rest of the summary kept, the input untouched
