"""Pure engine tests: fixed rows, a fixed clock, exact cents."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from costtop.config import OPTIONAL_COLUMNS, REQUIRED_COLUMNS
from costtop.engine.engine import Engine
from costtop.engine.snapshot import AgentState, BudgetState, Level, SortKey
from costtop.sources.records import (
    Baseline,
    CallRecord,
    DayAggregate,
    MinuteAggregate,
    RedisState,
    SourceStatus,
    SwitchKind,
    SwitchRecord,
    Unparsed,
    WindowGroup,
)


def percentile_disc(values: list[int], fraction: float = 0.95) -> int | None:
    """The reference: SQL's percentile_disc over a plain list (sort, take rank ceil(fraction * n))."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


NOW = datetime(2026, 11, 22, 12, 0, 0, 500000, tzinfo=UTC)
ALL = (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS)
_keys = iter(range(10**9))


def row(agent: str, seconds_ago: float, cost: str | None, status: str = "success", latency: int = 100,
        tokens_in: int | None = None, cached: int | None = None) -> CallRecord:
    return CallRecord(
        key=next(_keys), created_at=NOW - timedelta(seconds=seconds_ago), agent_id=agent, tool_name="llm",
        latency_ms=latency, cost_usd=Decimal(cost) if cost is not None else None, status=status,
        tokens_in=tokens_in, cached_tokens=cached,
    )


def empty_baseline(now: datetime = NOW) -> Baseline:
    return Baseline(day=now.strftime("%Y-%m-%d"), days=(), month_before_today=Decimal(0),
                    month=now.strftime("%Y-%m"), minutes=(), window=())


def redis_state(**kw: object) -> RedisState:
    defaults: dict[str, object] = {"switches": (), "budgets": {}, "global_day_budget": None,
                                   "global_month_budget": None}
    defaults.update(kw)
    return RedisState(**defaults)  # type: ignore[arg-type]


def engine_with(rows: list[CallRecord], baseline: Baseline | None = None) -> Engine:
    engine = Engine(columns=ALL)
    engine.load(baseline or empty_baseline())
    engine.ingest(rows)
    return engine


def test_velocity_counts_exactly_the_last_300_whole_seconds() -> None:
    # floor(now) = 12:00:00; the window is 11:55:01 .. 12:00:00 inclusive of whole seconds.
    rows = [
        row("a", 0.5, "1.00"),      # 12:00:00.0 -> in
        row("a", 299.5, "2.00"),    # 11:55:01.0 -> in (first second of the window)
        row("a", 300.5, "4.00"),    # 11:55:00.0 -> out
        row("b", 10, "0.10"),
        row("b", 20, None),          # flat-rate: no cost
    ]
    snap = engine_with(rows).snapshot(NOW, redis_state())
    a = next(x for x in snap.agents if x.agent_id == "a")
    assert a.window_usd == Decimal("3.00")
    assert a.velocity_per_min == Decimal("0.6")
    assert a.spend_today == Decimal("7.00")
    assert snap.header.velocity_per_min == Decimal("3.10") / 5
    assert snap.header.velocity_per_hour == Decimal("3.10") / 5 * 60
    assert snap.header.spend_today == Decimal("7.10")
    b = next(x for x in snap.agents if x.agent_id == "b")
    assert b.flat_calls_today == 1 and b.calls_today == 2
    assert snap.header.active_agents == 2
    assert snap.header.calls_per_min == Decimal(4) / 5


def test_velocity_levels_use_seed_thresholds_strictly_above() -> None:
    snap = engine_with([row("w", 1, "5.00"), row("x", 1, "5.01"), row("c", 1, "15.01"),
                        row("e", 1, "50.01")]).snapshot(NOW, redis_state())
    levels = {a.agent_id: a.velocity_level for a in snap.agents}
    assert levels == {"w": Level.OK, "x": Level.WARNING, "c": Level.CRITICAL, "e": Level.EMERGENCY}
    # Sorted by window spend, highest first.
    assert [a.agent_id for a in snap.agents] == ["e", "c", "x", "w"]


def test_baseline_sums_window_rows_and_new_rows_add_up() -> None:
    baseline = Baseline(
        day="2026-11-22",
        days=(DayAggregate("a", "2026-11-22", Decimal("10.50"), 7, 6, 2, 1000, 250),),
        month_before_today=Decimal("100.25"), month="2026-11",
        minutes=(MinuteAggregate("a", int(NOW.timestamp()) // 60 - 30, Decimal("1"), 10, 5),),
        # Already in the day and minute sums: only the 5-minute window takes it row by row.
        window=(WindowGroup(int(NOW.timestamp()) - 5, "a", Decimal("0.75"), 1, 2, 1, (700, 650)),),
    )
    engine = engine_with([row("a", 2, "0.50", status="error", tokens_in=1000, cached=750)], baseline)
    snap = engine.snapshot(NOW, redis_state())
    assert snap.header.spend_today == Decimal("11.00")
    assert snap.header.spend_month == Decimal("111.25")
    a = snap.agents[0]
    assert (a.calls_today, a.errors_today, a.flat_calls_today) == (8, 3, 1)
    assert a.window_usd == Decimal("1.25") and a.p95_ms == 700
    # 300 s later the start-up group leaves the window as a whole, latencies included.
    later = engine.snapshot(NOW + timedelta(seconds=296), redis_state()).agents[0]
    assert later.window_usd == Decimal("0.50") and later.p95_ms == 100
    gone = engine.snapshot(NOW + timedelta(seconds=299), redis_state()).agents[0]
    assert gone.window_usd == Decimal(0) and gone.p95_ms is None
    assert snap.header.error_rate_1h == 6 / 11
    assert snap.header.cache_hit_rate == 1000 / 2000


def test_day_rollover_moves_spend_into_the_month_and_new_month_resets() -> None:
    engine = engine_with([row("a", 60, "3.00")])
    tomorrow = NOW + timedelta(days=1)
    snap = engine.snapshot(tomorrow, redis_state())
    assert snap.header.spend_today == Decimal(0)
    assert snap.header.spend_month == Decimal("3.00")
    next_month = datetime(2026, 12, 1, 0, 0, 1, tzinfo=UTC)
    snap = engine.snapshot(next_month, redis_state())
    assert snap.header.spend_month == Decimal(0)


def test_late_row_of_yesterday_counts_for_the_month_not_today() -> None:
    engine = engine_with([row("a", 10, "1.00")])
    engine.ingest([row("a", 13 * 3600, "2.00")])  # 2026-11-21 23:00
    snap = engine.snapshot(NOW, redis_state())
    assert snap.header.spend_today == Decimal("1.00")
    assert snap.header.spend_month == Decimal("3.00")


@pytest.mark.parametrize("kind", ["CountedLatencies"])
def test_latency_multisets_match_the_list_percentile(kind: str) -> None:
    import random

    from costtop.engine import windows

    rng = random.Random(3)
    for size in (1, 2, 19, 20, 21, 40, 60, 97, 1000):
        values = [rng.randrange(1, 300) for _ in range(size)]
        counts = getattr(windows, kind)()
        for v in values:
            counts.add(v)
        assert counts.percentile() == percentile_disc(values), size
        gone, kept = values[: size // 3], values[size // 3:]
        for v in gone:
            counts.remove(v)
        counts.remove(999)  # never added: nothing changes
        assert counts.percentile() == percentile_disc(kept) and counts.total == len(kept)
        counts.add(7, 3)
        counts.remove(7, 2)
        assert counts.percentile() == percentile_disc([*kept, 7]) and counts.total == len(kept) + 1


def test_p95_is_percentile_disc() -> None:
    assert percentile_disc([]) is None
    assert percentile_disc([7]) == 7
    assert percentile_disc(list(range(1, 101))) == 95
    assert percentile_disc(list(range(1, 21))) == 19
    assert percentile_disc(list(range(1, 22))) == 20  # ceil(0.95*21)=20 -> the 20th value
    rows = [row("a", 1, "0", latency=ms) for ms in range(1, 101)]
    snap = engine_with(rows).snapshot(NOW, redis_state())
    assert snap.header.p95_ms == 95 and snap.agents[0].p95_ms == 95


def test_budgets_disabled_unknown_warning_exceeded() -> None:
    rows = [row("a", 1, "8.00"), row("b", 1, "10.00"), row("c", 1, "1"), row("d", 1, "1"), row("e", 1, "7.99")]
    budgets = {"a": Decimal("10"), "b": Decimal("10"), "c": Decimal("0"), "d": Unparsed("abc"), "e": Decimal("10")}
    snap = engine_with(rows).snapshot(NOW, redis_state(budgets=budgets, global_day_budget=Decimal("-5"),
                                                       global_month_budget=Unparsed("x")))
    states = {a.agent_id: a.budget.state for a in snap.agents}
    assert states == {"a": BudgetState.WARNING, "b": BudgetState.EXCEEDED, "c": BudgetState.DISABLED,
                      "d": BudgetState.UNKNOWN, "e": BudgetState.OK}
    assert next(a for a in snap.agents if a.agent_id == "a").budget.fraction == 0.8
    assert snap.header.day_budget.state is BudgetState.DISABLED
    assert snap.header.month_budget.state is BudgetState.UNKNOWN


def test_negative_and_missing_budgets_are_disabled_never_exceeded() -> None:
    snap = engine_with([row("neg", 1, "5"), row("none", 1, "5")]).snapshot(
        NOW, redis_state(budgets={"neg": Decimal("-1")}))
    for agent in snap.agents:
        assert agent.budget.state is BudgetState.DISABLED and agent.budget.runs_out_in is None


def test_forecasts_from_the_burn_rate() -> None:
    """NOW is 12:00:00.5 UTC on Nov 22: 43,199.5 s left in the day, 8 more days in the month."""
    day_left, month_left = Decimal("43199.5"), Decimal(8 * 86400) + Decimal("43199.5")
    baseline = Baseline(day="2026-11-22", days=(DayAggregate("idle", "2026-11-22", Decimal("4"), 2, 2, 0, 0, 0),),
                        month_before_today=Decimal("100"), month="2026-11", minutes=(), window=())
    rows = [row("f", 1, "3.00"), row("b", 1, "10.00"), row("far", 1, "3.00")]
    budgets = {"f": Decimal("10"), "b": Decimal("10"), "far": Decimal("1000"), "idle": Decimal("5")}
    engine = engine_with(rows, baseline)
    snap = engine.snapshot(NOW, redis_state(budgets=budgets, global_day_budget=Decimal("200"),
                                            global_month_budget=Decimal("1000")))
    by = {a.agent_id: a for a in snap.agents}
    # f burns $3 in 5 minutes = $0.60/min: $7 left lasts 700 s; at midnight it will have spent 3 + 0.6 * 720 min
    # (a row's forecast counts from the start of its minute, 12:00:00, so a row kept through the minute is right).
    assert by["f"].velocity_per_min == Decimal("0.6") and by["f"].budget.runs_out_in == 700.0
    assert by["f"].projected_today == Decimal("3") + Decimal("0.6") * 720
    assert by["b"].budget.runs_out_in == 0.0  # exactly 100 %: already spent
    assert by["far"].budget.runs_out_in is None  # $997 at $0.60/min outlasts the day
    # No burn: never runs out, and the day ends where it stands.
    assert by["idle"].velocity_per_min == 0 and by["idle"].budget.runs_out_in is None
    assert by["idle"].projected_today == Decimal("4")
    h = snap.header
    burn = Decimal("16") / 5
    assert h.velocity_per_min == burn
    assert h.projected_today == Decimal("20") + burn * day_left / 60
    assert h.projected_month == Decimal("120") + burn * month_left / 60
    assert h.day_budget.runs_out_in == float((Decimal("200") - 20) / burn * 60)
    assert h.month_budget.runs_out_in == float((Decimal("1000") - 120) / burn * 60)

    engine.sort_by(SortKey.RUNS_OUT)
    order = [a.agent_id for a in engine.snapshot(NOW, redis_state(budgets=budgets)).agents]
    assert order == ["b", "f", "far", "idle"]  # spent, then soonest; the rest by burn rate


def test_zero_velocity_forecasts_nothing() -> None:
    baseline = Baseline(day="2026-11-22", days=(DayAggregate("a", "2026-11-22", Decimal("9"), 1, 1, 0, 0, 0),),
                        month_before_today=Decimal(0), month="2026-11", minutes=(), window=())
    snap = engine_with([], baseline).snapshot(NOW, redis_state(budgets={"a": Decimal("10")},
                                                               global_day_budget=Decimal("10")))
    assert snap.agents[0].budget.runs_out_in is None and snap.agents[0].projected_today == Decimal("9")
    assert snap.header.day_budget.runs_out_in is None and snap.header.projected_today == Decimal("9")


def call(agent: str, seconds_ago: float, cost: str | None, provider: str | None, model: str | None,
         status: str = "success", latency: int = 100, tokens: tuple[int, int, int] = (100, 10, 20)) -> CallRecord:
    return CallRecord(key=next(_keys), created_at=NOW - timedelta(seconds=seconds_ago), agent_id=agent,
                      tool_name="llm", latency_ms=latency, provider=provider, model=model, tokens_in=tokens[0],
                      tokens_out=tokens[1], cached_tokens=tokens[2],
                      cost_usd=Decimal(cost) if cost is not None else None, status=status)


def test_provider_health_follows_the_seed_rules() -> None:
    rows = [
        # down: 2 of 3 calls in the last 2 minutes failed (67 % > 50 %)
        call("a", 10, "1", "down-co", "m"), call("a", 20, "1", "down-co", "m", "error"),
        call("a", 30, "1", "down-co", "m", "error"),
        # degraded: 1 error in 9 calls over 5 minutes (11 % > 10 %), none in the last 2 minutes
        *[call("a", 200 + i, "1", "shaky", "m") for i in range(8)], call("a", 250, "1", "shaky", "m", "error"),
        # degraded: no errors, p95 over 10 s
        call("a", 5, "1", "slow", "m", latency=12_000),
        # healthy
        call("a", 5, "1", "fine", "m", latency=300),
        # idle: only calls older than 5 minutes today
        call("a", 400, "1", "quiet", "m"),
    ]
    kill = SwitchRecord("kill:provider:fine", SwitchKind.KILL, "provider", "fine", "manual:ann:test", None)
    snap = engine_with(rows).snapshot(NOW, redis_state(switches=(kill,)))
    by = {p.provider: p for p in snap.providers}
    assert {name: p.health.value for name, p in by.items()} == {
        "down-co": "down", "shaky": "degraded", "slow": "degraded", "fine": "healthy", "quiet": "idle"}
    assert by["down-co"].error_rate_2m == 2 / 3 and by["down-co"].calls_2m == 3
    assert by["shaky"].error_rate_2m is None and by["shaky"].error_rate_5m == 1 / 9
    assert by["quiet"].calls_today == 1 and by["quiet"].calls_5m == 0 and by["quiet"].p95_ms is None
    assert by["fine"].state is AgentState.KILLED and by["slow"].state is AgentState.OK


def test_model_figures_keep_flat_rate_calls_apart() -> None:
    rows = [call("a", 1, "0.50", "openai", "gpt", tokens=(1000, 100, 400)),
            call("b", 2, "0.25", "azure", "gpt", tokens=(500, 50, 0)),
            call("a", 3, None, "anthropic", "claude", tokens=(2000, 300, 1000)),  # flat-rate
            call("a", 4, "1.00", "anthropic", "claude", tokens=(100, 10, 0))]
    snap = engine_with(rows).snapshot(NOW, redis_state())
    by = {m.model: m for m in snap.models}
    gpt, claude = by["gpt"], by["claude"]
    assert [m.model for m in snap.models] == ["claude", "gpt"]  # by spend today
    assert (gpt.spend_today, gpt.calls_today, gpt.tokens_in, gpt.tokens_out, gpt.cached_tokens) == (
        Decimal("0.75"), 2, 1500, 150, 400)
    assert gpt.average_cost == Decimal("0.375") and gpt.cache_hit == 400 / 1500 and gpt.flat_calls == 0
    assert (claude.spend_today, claude.calls_today, claude.priced_calls, claude.flat_calls) == (Decimal("1"), 2, 1, 1)
    assert claude.average_cost == Decimal("1")  # per priced call: the flat-rate one cost nothing at the margin
    assert claude.flat_tokens == (2000, 300, 1000)
    assert {p.provider: p.spend_today for p in snap.providers} == {
        "openai": Decimal("0.50"), "azure": Decimal("0.25"), "anthropic": Decimal("1.00")}


def test_reconciliation_flags_more_than_ten_percent() -> None:
    from costtop.engine.reconcile import reconcile
    from costtop.sources.records import GatewayCounters

    table = {"even": Decimal("10.00"), "ahead": Decimal("10.00"), "tiny": Decimal("0.02"),
             "edge": Decimal("10.00"), "uncounted": Decimal("3.00")}
    spent = {"even": Decimal("10.0000000001"),  # INCRBYFLOAT drift: equal
             "ahead": Decimal("11.20"),  # 10.7 % apart: flagged
             "edge": Decimal("11.11"),  # 9.99 % of 11.11: not flagged
             "tiny": Decimal("0.05"),  # 60 % apart but 3 cents: noise
             "bad": Unparsed("lots"), "ghost": Decimal("0.50")}  # no row at all: flagged
    check = reconcile(GatewayCounters("2026-11-22", spent, Decimal(100)), table, 89)
    flags = {c.agent_id: c.flagged for c in check.agents}
    assert flags == {"even": False, "ahead": True, "edge": False, "tiny": False, "bad": True, "ghost": True,
                     "uncounted": True}
    assert check.agents[0].agent_id == "uncounted"  # the largest difference first
    assert check.calls_flagged  # 100 vs 89: 11 % and 11 calls
    assert not reconcile(GatewayCounters("d", spent, Decimal(95)), table, 89).calls_flagged  # 6.3 %
    # A gateway that keeps no counters: nothing to compare, nothing flagged.
    none = reconcile(GatewayCounters("d", {}, None), table, 89)
    assert none.agents == () and not none.calls_flagged and none.gateway_calls is None


def test_reconciliation_in_the_snapshot_waits_for_the_day_and_matches_it() -> None:
    from costtop.sources.records import GatewayCounters

    engine = engine_with([row("a", 1, "2.00"), row("a", 2, "1.00")])
    assert engine.snapshot(NOW, redis_state()).reconciliation is None  # no counters read yet
    engine.note_counters(GatewayCounters("2026-11-21", {"a": Decimal("9")}, None))  # yesterday's
    assert engine.snapshot(NOW, redis_state()).reconciliation is None
    engine.note_counters(GatewayCounters("2026-11-22", {"a": Decimal("3.00")}, Decimal(2)))
    check = engine.snapshot(NOW, redis_state()).reconciliation
    assert check is not None and not check.flagged and check.table_calls == 2 and not check.calls_flagged


def test_redis_unavailable_makes_states_and_budgets_unknown_not_ok() -> None:
    snap = engine_with([row("a", 1, "1")]).snapshot(NOW, None)
    assert snap.agents[0].state is AgentState.UNKNOWN
    assert snap.agents[0].budget.state is BudgetState.UNKNOWN
    assert not snap.switches_known


def test_switch_states_and_global_kill() -> None:
    kill = SwitchRecord("kill:agent:a", SwitchKind.KILL, "agent", "a", "manual:ann:loop", 30.0)
    thr = SwitchRecord("throttle:agent:b", SwitchKind.THROTTLE, "agent", "b", "odd value", None)
    snap = engine_with([row("a", 1, "1"), row("b", 1, "1"), row("c", 1, "1")]).snapshot(
        NOW, redis_state(switches=(kill, thr)))
    by = {a.agent_id: a for a in snap.agents}
    assert by["a"].state is AgentState.KILLED and by["a"].switch is kill
    assert kill.origin == ("manual", "ann", "loop")
    assert by["b"].state is AgentState.THROTTLED and thr.origin == ("?", "?", "odd value")
    assert by["c"].state is AgentState.OK
    g = SwitchRecord("kill:global", SwitchKind.KILL, "global", "*", "manual:x:y", None)
    snap = engine_with([row("c", 1, "1")]).snapshot(NOW, redis_state(switches=(g,)))
    assert snap.agents[0].state is AgentState.KILLED and snap.global_kill is g


def test_agents_known_only_from_redis_are_listed() -> None:
    kill = SwitchRecord("kill:agent:ghost", SwitchKind.KILL, "agent", "ghost", None, None)
    snap = engine_with([]).snapshot(NOW, redis_state(switches=(kill,), budgets={"idle": Decimal("5")}))
    assert {a.agent_id for a in snap.agents} == {"ghost", "idle"}
    assert kill.origin == ("?", "?", "unreadable value")


def test_required_columns_only_hides_money_instead_of_zero() -> None:
    engine = Engine(columns=REQUIRED_COLUMNS)
    engine.load(empty_baseline())
    engine.ingest([row("a", 1, None)])
    snap = engine.snapshot(NOW, redis_state(budgets={"a": Decimal("5")}))
    assert snap.header.spend_today is None and snap.header.velocity_per_min is None
    assert snap.agents[0].spend_today is None
    assert snap.agents[0].budget.state is BudgetState.UNKNOWN
    assert snap.header.error_rate_1h is None and snap.header.calls_per_min == Decimal(1) / 5


def test_source_ages_follow_the_clock() -> None:
    status = SourceStatus("Redis", True, NOW.timestamp() - 2.5)
    snap = engine_with([]).snapshot(NOW, redis_state(), [status, SourceStatus("Postgres", False, None, "down")])
    assert snap.sources[0].age_seconds == 2.5
    assert snap.sources[1].age_seconds is None and snap.sources[1].error == "down"


def test_costs_finer_than_nano_dollars_stay_exact() -> None:
    snap = engine_with([row("a", 1, "0.0000000001"), row("a", 2, "0.1234567891"),
                        row("a", 400, "0.3333333333333")]).snapshot(NOW, redis_state())
    assert snap.agents[0].window_usd == Decimal("0.1234567892")
    later = engine_with([row("a", 1, "0.0000000001")]).snapshot(NOW + timedelta(seconds=400), redis_state())
    assert later.agents[0].window_usd == Decimal(0)


def test_old_buckets_are_pruned() -> None:
    engine = engine_with([row("a", 10, "1")])
    engine.snapshot(NOW + timedelta(hours=2), redis_state())
    assert engine.window.slots == {} and engine.window.totals == {} and engine.hour.slots == {}
    assert engine.hour.calls == 0 and not engine.window.all_latencies.values


def test_window_slides_by_subtracting_what_leaves() -> None:
    engine = engine_with([row("a", 10, "1.10", latency=900), row("a", 200, "2.20", latency=100, status="error"),
                          row("b", 250, "0.30", latency=50)])
    snap = engine.snapshot(NOW, redis_state())
    a = next(x for x in snap.agents if x.agent_id == "a")
    assert (a.window_usd, a.p95_ms) == (Decimal("3.30"), 900)
    assert snap.header.p95_ms == 900
    # 100 s later the rows from 200 s and 250 s ago have left the window; the day keeps them.
    later = engine.snapshot(NOW + timedelta(seconds=100), redis_state())
    by = {x.agent_id: x for x in later.agents}
    assert by["a"].window_usd == Decimal("1.10") and by["a"].p95_ms == 900
    assert by["b"].window_usd == Decimal(0) and by["b"].p95_ms is None
    assert by["b"].spend_today == Decimal("0.30") and later.header.active_agents == 1
    assert later.header.error_rate_1h == 1 / 3  # the hour still holds all three
    # A row that arrives after its second left the window counts for the day only.
    engine.ingest([row("b", 350, "5.00")])
    again = engine.snapshot(NOW + timedelta(seconds=100), redis_state())
    b = next(x for x in again.agents if x.agent_id == "b")
    assert b.window_usd == Decimal(0) and b.spend_today == Decimal("5.30")


def test_chart_series_and_agent_trends_from_rows() -> None:
    """NOW = 12:00:00.5: the current minute is 12:00, the current hour 12:00-13:00."""
    rows = [row("a", 0.2, "1.00"), row("a", 30, "2.00"), row("b", 61, "0.50"), row("a", 600, "4.00"),
            row("b", 3 * 3600, "8.00"), row("a", 1, None)]
    snap = engine_with(rows).snapshot(NOW, redis_state())
    minutes, hours = snap.header.per_minute, snap.header.per_hour
    assert len(minutes) == 60 and len(hours) == 24
    assert minutes[-1] == Decimal("1.00")  # 12:00:00
    assert minutes[-2] == Decimal("2.00") and minutes[-3] == Decimal("0.50")  # 11:59:30.5, 11:58:59.5
    assert minutes == (*(Decimal(0),) * 49, Decimal("4.00"), *(Decimal(0),) * 7, Decimal("0.50"), Decimal("2.00"),
                       Decimal("1.00"))
    assert hours[-1] == Decimal("1.00") and hours[-2] == Decimal("6.50") and hours[-4] == Decimal("8.00")
    by = {a.agent_id: a for a in snap.agents}
    assert by["a"].trend == (*(Decimal(0),) * 8, Decimal("2.00"), Decimal("1.00"))  # 11:50 is out of 10 minutes
    assert by["b"].trend == (*(Decimal(0),) * 7, Decimal("0.50"), Decimal(0), Decimal(0))  # 11:58


def test_sparkline_scales_to_its_own_peak() -> None:
    from costtop.ui.format import sparkline

    assert sparkline((Decimal(0), Decimal(1), Decimal(2), Decimal(8))).plain == " ▁▂█"
    assert sparkline((Decimal(0), Decimal(0))).plain == "  "


def test_a_data_quality_line_names_the_agent_without_a_name_and_sorts_it_with_the_rest() -> None:
    """A NULL agent and a named one with as many unusable costs: the line sorts them (None with str
    raised) and names the first as (none)."""
    nan = Decimal("NaN")
    engine = engine_with([CallRecord(1, NOW - timedelta(seconds=5), None, "llm", 10, cost_usd=nan),  # type: ignore[arg-type]
                          CallRecord(2, NOW - timedelta(seconds=5), "x", "llm", 10, cost_usd=nan)])
    (line,) = engine.snapshot(NOW, redis_state()).data_quality
    assert line.startswith("x, (none): 2 rows with a cost left out"), line


# -- the named inputs and steps ---------------------------------------------------------------------


def test_note_audit_says_whether_the_drain_changed_anything() -> None:
    engine = Engine(columns=ALL)
    assert not engine.note_audit(0, None)  # nothing waiting, as before
    assert engine.note_audit(3, "Postgres: connection refused")
    assert not engine.note_audit(3, "Postgres: connection refused")
    assert engine.note_audit(3, None)  # the same rows, another reason
    assert engine.note_audit(0, None)
    snap = engine_with([]).snapshot(NOW, redis_state())
    assert (snap.audit_pending, snap.audit_error) == (0, None)


def test_note_audit_write_adds_to_the_pending_rows_and_keeps_the_spool_error() -> None:
    engine = engine_with([])
    assert not engine.note_audit_write(0, None)  # written to Postgres, spool fine: nothing new
    assert engine.note_audit(2, "timeout")
    assert engine.note_audit_write(1, None)
    assert engine.audit_pending == 3 and engine.audit_error == "timeout"
    assert engine.note_audit_write(0, "disk full")  # no row added, but the spool failed
    assert not engine.note_audit_write(0, "disk full")
    assert engine.note_audit_write(0, None)  # the spool works again
    snap = engine.snapshot(NOW, redis_state())
    assert (snap.audit_pending, snap.audit_error, snap.audit_spool_error) == (3, "timeout", None)


def test_note_fallback_says_whether_the_file_changed() -> None:
    from costtop.sources.records import FallbackState

    engine = engine_with([])
    assert not engine.note_fallback(None)
    state = FallbackState("fb", files=1, lines=2, malformed=0, oldest=NOW)
    assert engine.note_fallback(state)
    assert not engine.note_fallback(FallbackState("fb", files=1, lines=2, malformed=0, oldest=NOW))  # equal
    assert engine.fallback == state
    assert engine.note_fallback(None) and engine.snapshot(NOW, redis_state()).fallback is None


def test_note_history_failed_until_the_week_is_read() -> None:
    from costtop.sources.records import SpendHistory

    engine = engine_with([])
    engine.note_history_failed("Postgres: timeout")
    assert engine.snapshot(NOW, redis_state()).anomaly_note == "Unusual days not judged: Postgres: timeout"
    engine.load_history(SpendHistory("2026-11-22", 7, ()))
    assert engine.history_error is None and engine.snapshot(NOW, redis_state()).anomaly_note is None


def test_the_inputs_are_not_attributes_to_write() -> None:
    engine = Engine()
    for name in ("catalog", "counters", "fallback", "history_error", "audit_pending", "audit_error",
                 "audit_spool_error", "sort", "sort_reverse"):
        with pytest.raises(AttributeError):
            setattr(engine, name, None)


def test_sort_by_orders_and_reverses_the_agents() -> None:
    engine = engine_with([row("a", 10, "1.00"), row("b", 10, "3.00"), row("c", 10, "2.00")])
    assert [a.agent_id for a in engine.snapshot(NOW, redis_state()).agents] == ["b", "c", "a"]
    engine.sort_by(SortKey.NAME)
    snap = engine.snapshot(NOW, redis_state())
    assert [a.agent_id for a in snap.agents] == ["a", "b", "c"]
    assert (snap.sort, snap.sort_reverse) == (SortKey.NAME, False)
    engine.sort_by(SortKey.NAME, reverse=True)
    snap = engine.snapshot(NOW, redis_state())
    assert [a.agent_id for a in snap.agents] == ["c", "b", "a"] and snap.sort_reverse
    assert (engine.sort, engine.sort_reverse) == (SortKey.NAME, True)
    engine.sort_by(SortKey.BURN)  # reverse=False unless asked
    assert [a.agent_id for a in engine.snapshot(NOW, redis_state()).agents] == ["b", "c", "a"]
    # An incremental frame (one agent changed) keeps the order chosen.
    engine.sort_by(SortKey.BURN, reverse=True)
    engine.snapshot(NOW, redis_state())
    engine.ingest([row("a", 5, "5.00")])
    assert [a.agent_id for a in engine.snapshot(NOW, redis_state()).agents] == ["c", "b", "a"]


def test_another_order_resorts_the_rows_it_has_without_building_them_again() -> None:
    """With 100,000 agents building every row took seconds: a new order keeps the rows (the same
    objects) and only sorts them; a row changed meanwhile is still rebuilt, in the new order."""
    engine = engine_with([row("a", 10, "1.00"), row("b", 10, "3.00"), row("c", 10, "2.00")])
    before = {a.agent_id: a for a in engine.snapshot(NOW, redis_state()).agents}
    engine.sort_by(SortKey.NAME)
    after = engine.snapshot(NOW, redis_state()).agents
    assert [a.agent_id for a in after] == ["a", "b", "c"]
    assert all(a is before[a.agent_id] for a in after)
    engine.ingest([row("c", 5, "0.10")])
    engine.sort_by(SortKey.TODAY, reverse=True)
    again = engine.snapshot(NOW, redis_state()).agents
    assert [a.agent_id for a in again] == ["a", "c", "b"]  # least spent today first
    assert again[0] is before["a"] and again[1] is not before["c"]


def test_acknowledge_marks_the_alerts_until_they_clear() -> None:
    engine = engine_with([row("a", 10, "60.00")])  # above the $50 emergency in 5 minutes
    first = engine.snapshot(NOW, redis_state())
    assert first.alerts and first.new_critical
    engine.acknowledge([a.key for a in first.alerts] + ["not-an-alert"])
    again = engine.snapshot(NOW + timedelta(seconds=1), redis_state())
    assert again.alerts and all(a.acknowledged for a in again.alerts) and not again.new_critical
    assert {a.key for a in again.alerts} == {a.key for a in first.alerts}
    assert not engine.snapshot(NOW + timedelta(hours=1), redis_state()).alerts  # cleared: forgotten


def test_use_catalog_prices_flat_rate_calls_and_none_takes_it_away() -> None:
    from costtop.pricing.catalog import shipped

    engine = engine_with([call("a", 10, None, "openai", "gpt-4o", tokens=(1000, 100, 0))])
    assert engine.snapshot(NOW, redis_state()).models[0].shadow_cost is None
    engine.use_catalog(shipped())
    model = engine.snapshot(NOW, redis_state()).models[0]
    assert model.shadow_cost is not None and model.shadow_cost > 0 and model.priced_as
    engine.use_catalog(None)
    assert engine.catalog is None and engine.snapshot(NOW, redis_state()).models[0].shadow_cost is None


def test_note_counters_reconciles_against_the_rows_of_that_moment() -> None:
    from costtop.sources.records import GatewayCounters

    engine = engine_with([row("a", 10, "3.00")])
    engine.note_counters(GatewayCounters("2026-11-22", {"a": Decimal("3.00")}, 1))
    assert engine.counters is not None
    snap = engine.snapshot(NOW, redis_state())
    assert snap.reconciliation is not None and snap.reconciliation.table_calls == 1


def test_advance_clock_across_midnight_rolls_the_day_into_the_month_as_snapshot_does() -> None:
    rows = [row("a", 60, "3.00"), call("b", 30, "1.50", "openai", "gpt-4o")]
    stepped, snapped = engine_with(rows), engine_with(rows)
    midnight = datetime(2026, 11, 23, 0, 0, 1, tzinfo=UTC)
    stepped.advance_clock(midnight)
    assert stepped.day == "2026-11-23" and stepped.month == "2026-11"
    assert stepped.month_before_today == Decimal("4.50") and stepped.today.cost == 0
    assert stepped.days == {} and stepped.usage.models == {} and stepped.usage.providers == {}
    assert stepped.snapshot(midnight, redis_state()) == snapped.snapshot(midnight, redis_state())
    stepped.advance_clock(midnight)  # the same time again: nothing more moves
    assert stepped.month_before_today == Decimal("4.50")
    # Into December: a new month, and the chart's hours drop what slid out of them.
    stepped.advance_clock(datetime(2026, 12, 2, 0, 0, 1, tzinfo=UTC))
    assert stepped.month == "2026-12" and stepped.month_before_today == 0
    assert stepped.per_hour.costs == {} and stepped.per_minute.costs == {}


def test_a_snapshot_changes_nothing_a_second_one_at_the_same_time_would_see() -> None:
    engine = engine_with([row("a", 10, "1.00"), call("b", 20, "2.00", "openai", "gpt-4o")])
    first = engine.snapshot(NOW, redis_state())
    assert engine.snapshot(NOW, redis_state()) == first


def test_a_window_moved_on_holds_exactly_what_a_window_of_only_its_rows_holds() -> None:
    """Seconds leaving the window subtract every entry of theirs: finer-than-nano costs, unpriced
    calls, errors, calls without a latency, many agents per second, several seconds at once."""
    import random

    from costtop.engine.windows import SlidingWindow

    rng = random.Random(11)
    agents = [f"a{i}" for i in range(12)]
    rows = []
    for second in range(1_000, 1_700):
        for _ in range(rng.randrange(0, 30)):
            cost = rng.choice((None, Decimal(rng.randrange(0, 10_000)) / 10_000,
                               Decimal(rng.randrange(1, 10**6)) / 10**12))  # the last: an odd cost
            latency = rng.choice((None, rng.randrange(0, 9_000)))
            rows.append((second, rng.choice(agents), cost, rng.random() < 0.1, latency))
    moved = SlidingWindow()
    now = 1_000
    for row in rows:
        if row[0] > now:
            now = row[0]
            if rng.random() < 0.2:  # moved on now and then, sometimes by several seconds at once
                moved.advance(now - rng.randrange(0, 3))
        moved.add(*row)
    moved.advance(now)
    fresh = SlidingWindow()
    fresh.advance(now)
    for row in rows:
        fresh.add(*row)
    assert set(moved.totals) == set(fresh.totals)
    for agent, total in fresh.totals.items():
        kept = moved.totals[agent]
        assert (kept.cost, kept.calls, kept.errors, kept.priced) == (total.cost, total.calls, total.errors,
                                                                     total.priced), agent
        assert moved.p95(agent) == fresh.p95(agent), agent
    assert moved.overall.cost == fresh.overall.cost and moved.overall.calls == fresh.overall.calls
    assert moved.global_p95() == fresh.global_p95()


def test_calls_summed_per_second_at_start_up_hold_what_the_same_calls_one_by_one_hold() -> None:
    """`add_groups` (start-up: an agent's or a provider's calls of a second, latencies counted at once)
    against `add` (live, call by call), while the windows slide past every second: the same totals,
    finer-than-nano costs included, and the same percentiles, down to an empty window."""
    import random
    from array import array

    from costtop.engine.windows import KeyedSeconds, SlidingWindow

    rng = random.Random(5)
    calls = []
    for second in range(2_000, 2_300):
        for _ in range(rng.randrange(0, 40)):
            cost = rng.choice((None, Decimal(rng.randrange(0, 10_000)) / 10_000,
                               Decimal(rng.randrange(1, 10**6)) / 10**12))
            calls.append((second, rng.choice(("a", "b", None)), rng.choice(("p", "q", None)), cost,
                          rng.random() < 0.2, rng.choice((None, 7, 7, 300, rng.randrange(0, 9_000)))))
    one, grouped = SlidingWindow(), SlidingWindow()
    one_p, grouped_p = KeyedSeconds(), KeyedSeconds()
    agents: dict[tuple[int, str | None], list] = {}
    providers: dict[tuple[int, str | None], list] = {}
    for second, agent, provider, cost, error, latency in calls:
        one.add(second, agent, cost, error, latency)
        one_p.add(second, provider, 1, int(error), () if latency is None else (latency,))
        group = agents.setdefault((second, agent), [None, 0, 0, 0, array("i")])
        if cost is not None:
            group[0] = cost if group[0] is None else group[0] + cost
            group[1] += 1
        group[2] += 1
        group[3] += error
        p = providers.setdefault((second, provider), [0, 0, array("i")])
        p[0] += 1
        p[1] += error
        if latency is not None:
            group[4].append(latency)
            p[2].append(latency)
    grouped.add_groups((s, a, *g) for (s, a), g in agents.items())
    grouped_p.add_groups((s, k, *p) for (s, k), p in providers.items())
    for now in (2_299, 2_300, 2_350, 2_450, 2_598, 2_599, 2_600):
        for window in (one, grouped):
            window.advance(now)
        for window in (one_p, grouped_p):
            window.advance(now)
        assert set(one.totals) == set(grouped.totals), now
        for agent, total in one.totals.items():
            kept = grouped.totals[agent]
            assert (kept.cost, kept.calls, kept.errors, kept.priced) == (total.cost, total.calls, total.errors,
                                                                         total.priced), (now, agent)
            assert grouped.p95(agent) == one.p95(agent), (now, agent)
        assert (grouped.overall.cost, grouped.global_p95()) == (one.overall.cost, one.global_p95()), now
        assert grouped_p.totals == one_p.totals, now
        for key in one_p.totals:
            assert grouped_p.p95(key) == one_p.p95(key), (now, key)
            assert grouped_p.recent(key, now, 120) == one_p.recent(key, now, 120), (now, key)
    assert grouped.totals == {} and not grouped.all_latencies and grouped_p.totals == {}


def test_counted_latencies_merge_many_at_once_with_what_they_hold() -> None:
    from collections import Counter

    from costtop.engine.windows import CountedLatencies

    counts = CountedLatencies()
    for value in (5, 9, 9, 40):
        counts.add(value)
    counts.add_counts(Counter({9: 2, 1: 3, 40: 1}))
    assert (list(counts.values), list(counts.counts), counts.total) == ([1, 5, 9, 40], [3, 1, 4, 2], 10)
    assert counts.percentile() == percentile_disc([5, 9, 9, 40, 9, 9, 1, 1, 1, 40])
