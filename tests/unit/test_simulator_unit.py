"""The unit half of tests/integration/test_simulator.py: the tests that need no server and no app."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from random import Random

from costtop.demo.run import INCIDENT_BUDGET, agent_budgets, day_budget, past_week, usual_days
from costtop.demo.simulator import (
    AGENTS,
    INCIDENT_AGENT,
    INCIDENT_MODEL,
    PRICES,
    Ids,
    runaway_calls,
    task_calls,
)
from costtop.engine.live_traces import LiveTraces
from costtop.gateway import Call
from costtop.sources.records import CallRecord


def test_runaway_loop_spends_six_to_ten_dollars_a_minute() -> None:
    """The incident's pace follows its own calls' latencies, so it can be measured in simulated time."""
    spent_by_minute: dict[int, Decimal] = {}
    elapsed_ms = 0
    calls = runaway_calls(Random("1:incident"), Ids("00000000"))
    first = next(calls)
    assert first.parent_span_id is None and first.model == INCIDENT_MODEL
    elapsed_ms += first.latency_ms
    for call in calls:
        if elapsed_ms >= 10 * 60_000:
            break
        assert call.trace_id == first.trace_id and call.parent_span_id is not None
        minute = elapsed_ms // 60_000
        spent_by_minute[minute] = spent_by_minute.get(minute, Decimal(0)) + (call.cost_usd or Decimal(0))
        elapsed_ms += call.latency_ms
    assert all(Decimal(6) <= spent_by_minute[m] <= Decimal(10) for m in range(2, 10))
    assert sum(spent_by_minute[m] for m in range(3)) > Decimal(15)  # critical velocity within 3 minutes


def test_normal_agents_stay_below_critical_velocity_at_the_default_rate() -> None:
    """Without the incident, the default fleet (40 calls/s) keeps every agent under $15 per 5 minutes."""
    total = sum(a.weight for a in AGENTS)
    ids = Ids("00000000")
    for profile in AGENTS:
        rng = Random(f"1:{profile.name}")
        budget_calls = int(40 * profile.weight / total * 300)
        spent, made = Decimal(0), 0
        while made < budget_calls:
            for call in task_calls(profile, rng, ids):
                made += 1
                spent += call.cost_usd or Decimal(0)
        assert spent < Decimal(15), profile.name
        if profile.name == INCIDENT_AGENT:
            assert spent < Decimal(5)  # so the incident stands out


def record_of(call: Call) -> CallRecord:
    return CallRecord(id(call), datetime(2026, 11, 22, tzinfo=UTC), call.agent_id, call.tool_name, call.latency_ms,
                      call.provider, call.model, call.tokens_in, call.tokens_out, call.cached_tokens, call.cost_usd,
                      call.status, call.trace_id)


def test_healthy_traces_raise_no_trace_alert_and_the_runaway_loop_does() -> None:
    """The live-trace rules against the fleet's own shape: 300 tasks of every agent are quiet; the
    incident's trace is a stuck loop from its sixth search."""
    ids = Ids("00000000")
    traces = LiveTraces()
    for profile in AGENTS:
        rng = Random(f"2:{profile.name}")
        for _ in range(300):
            for call in task_calls(profile, rng, ids):
                traces.add(record_of(call), 0)
    assert traces.patterns(0) == []
    runaway = runaway_calls(Random(3), ids)
    for _ in range(11):  # 5 rounds of a model call and a search, and the 6th model call
        traces.add(record_of(next(runaway)), 0)
    assert traces.patterns(0) == []
    traces.add(record_of(next(runaway)), 0)  # the 6th search
    assert [(kind, agent) for kind, _, agent, _ in traces.patterns(0)] == [("loop", INCIDENT_AGENT)]


def test_the_demo_week_before_today_gives_every_agent_a_history() -> None:
    now = datetime(2026, 11, 22, 9, 30, tzinfo=UTC)
    rows = past_week(now, usual_days(40))
    today = now.replace(hour=0, minute=0)
    assert all(today - timedelta(days=7) <= r[0] < today for r in rows)
    days = {(r[1], (today - r[0]).days) for r in rows}
    assert days == {(p.name, d) for p in AGENTS for d in range(7)}
    flat = {r[1] for r in rows if r[6] is None}
    assert flat == {p.name for p in AGENTS if PRICES[p.models[0][0]].provider in p.flat_rate}


def test_the_demo_budgets_leave_room_for_a_usual_day_except_the_runaway_agent() -> None:
    usual = usual_days(40)
    budgets = agent_budgets(usual)
    assert budgets[INCIDENT_AGENT] == INCIDENT_BUDGET  # small: its loop runs through it
    assert AGENTS[-1].name not in budgets  # a disabled budget on screen
    others = [p.name for p in AGENTS[:-1] if p.name != INCIDENT_AGENT]
    assert all(budgets[a] >= usual[a] * Decimal("1.25") for a in others), {a: (budgets[a], usual[a]) for a in others}
    assert day_budget(usual) > sum(usual.values())
    slower = usual_days(4)  # the budgets follow the pace the demo is run at
    assert agent_budgets(slower)["code-review"] < budgets["code-review"]
