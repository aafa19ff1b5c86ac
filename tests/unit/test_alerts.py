"""The seed's alert rules at, just below and just above their thresholds, and the alert book."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from costtop.config import Thresholds
from costtop.engine.alerts import AgentAlerts, AlertBook, evaluate, fleet_agent_alerts
from costtop.engine.anomalies import DayNorm
from costtop.engine.engine import Engine
from costtop.engine.live_traces import FORGET_SECONDS, SWEEP_SECONDS, LiveTraces
from costtop.engine.snapshot import Alert, Severity
from costtop.sources.records import Baseline, CallRecord, GatewayCounters, RedisState
from costtop.text import visible_id
from costtop.ui.widgets.alert_panel import alert_line

NOW = datetime(2026, 11, 22, 12, 0, 0, 500000, tzinfo=UTC)
ALL = ("agent_id", "tool_name", "latency_ms", "created_at", "cost_usd", "status", "provider", "model")
_keys = iter(range(1, 10**9))


def call(agent: str, seconds_ago: float, cost: str = "0.01", status: str = "success", latency: int = 100,
         provider: str = "p") -> CallRecord:
    return CallRecord(next(_keys), NOW - timedelta(seconds=seconds_ago), agent, "llm", latency, provider, "m",
                      None, None, None, Decimal(cost), status)


def alerts_for(rows: list[CallRecord], budgets: dict[str, Decimal] | None = None, day: Decimal | None = None,
               counters: GatewayCounters | None = None, thresholds: Thresholds | None = None) -> dict[str, Alert]:
    engine = Engine(thresholds, columns=ALL)
    engine.load(Baseline("2026-11-22", (), Decimal(0), "2026-11", (), ()))
    engine.ingest(rows)
    engine.note_counters(counters)
    snap = engine.snapshot(NOW, RedisState((), budgets or {}, day, None))
    return {a.key: a for a in snap.alerts}


def test_burn_rate_levels_at_and_around_the_seed_thresholds() -> None:
    # $5 / $15 / $50 in the 5-minute window: "more than", so exactly $5 is not yet a warning.
    got = alerts_for([call("at5", 1, "5.00"), call("over5", 1, "5.01"), call("over15", 1, "15.01"),
                      call("at50", 1, "50.00"), call("over50", 1, "50.01")])
    assert "velocity:at5" not in got
    assert got["velocity:over5"].severity is Severity.WARNING
    assert got["velocity:over15"].severity is Severity.CRITICAL
    assert got["velocity:at50"].severity is Severity.CRITICAL
    assert got["velocity:over50"].severity is Severity.EMERGENCY and got["velocity:over50"].figure == "$50.01 in 5 min"


def test_budgets_warn_at_80_percent_and_are_critical_at_100() -> None:
    rows = [call("b79", 1, "7.99"), call("b80", 1, "8.00"), call("b100", 1, "10.00"), call("none", 1, "9")]
    budgets = {"b79": Decimal(10), "b80": Decimal(10), "b100": Decimal(10), "none": Decimal(0)}
    got = alerts_for(rows, budgets, day=Decimal("40"))
    assert "budget:daily:b79" not in got and "budget:daily:none" not in got  # disabled: never exceeded
    assert got["budget:daily:b80"].severity is Severity.WARNING
    assert got["budget:daily:b100"].severity is Severity.CRITICAL
    assert got["budget:daily:b100"].figure == "100 % of $10.00"
    # The fleet spent $34.99 of a $40 day: 87 %.
    assert got["budget:day:fleet"].severity is Severity.WARNING


def test_error_rate_above_ten_percent_and_more_than_three_agents_erroring() -> None:
    def agent(name: str, errors: int, calls: int) -> list[CallRecord]:
        return [call(name, 10 + i, status="error" if i < errors else "success") for i in range(calls)]

    got = alerts_for(agent("at10", 1, 10) + agent("over10", 2, 19) + agent("old", 0, 5)
                     + [call("old", 400, status="error")])  # an error from before the window
    assert "errors:at10" not in got and "errors:old" not in got
    assert got["errors:over10"].figure == "2 of 19 calls failed in 5 min (11 %)"
    assert "errors:fleet" not in got
    three = [row for i in range(3) for row in agent(f"e{i}", 2, 10)]
    assert "errors:fleet" not in alerts_for(three)  # 3 is not "more than 3"
    four = [row for i in range(4) for row in agent(f"e{i}", 2, 10)]
    assert alerts_for(four)["errors:fleet"].severity is Severity.CRITICAL


def test_provider_down_and_slow_agents() -> None:
    rows = [call("a", 5, provider="down", status="error"), call("a", 6, provider="down", status="error"),
            call("a", 7, provider="down"),  # 67 % in 2 min
            call("b", 5, provider="half", status="error"), call("b", 6, provider="half"),  # 50 %: not down
            call("slow", 5, latency=10_001), call("edge", 5, latency=10_000)]
    got = alerts_for(rows)
    assert got["provider:down"].severity is Severity.CRITICAL and "67 % errors in 2 min" in got["provider:down"].figure
    assert "provider:half" not in got
    assert "slow:slow" in got and "slow:edge" not in got


def test_reconciliation_gap_is_a_warning_only_when_counters_exist() -> None:
    rows = [call("a", 1, "10.00")]
    assert not any(k.startswith("reconcile") for k in alerts_for(rows))
    got = alerts_for(rows, counters=GatewayCounters("2026-11-22", {"a": Decimal("12.00")}, Decimal(1)))
    assert got["reconcile:a"].severity is Severity.WARNING and "calls" not in " ".join(got)


def test_missing_data_raises_nothing() -> None:
    engine = Engine(columns=ALL)
    engine.load(Baseline("2026-11-22", (), None, "2026-11", (), (), pending=True))  # the day still summing
    engine.ingest([call("a", 1, "60.00")])
    snap = engine.snapshot(NOW, None)  # and Redis unreadable
    assert [a.key for a in snap.alerts] == ["velocity:a"]  # the window is known; budgets are not


def test_the_book_keeps_since_acknowledgements_and_rings_once() -> None:
    book = AlertBook()
    crit = Alert("velocity:a", "burn rate", Severity.CRITICAL, "a", "$16.00 in 5 min")
    warn = Alert("errors:b", "error rate", Severity.WARNING, "b", "…")
    t0 = NOW
    shown, ring = book.update([crit, warn], t0)
    assert ring and [a.key for a in shown] == ["velocity:a", "errors:b"] and shown[0].since == t0
    shown, ring = book.update([crit, warn], t0 + timedelta(seconds=1))
    assert not ring and shown[0].since == t0  # still the same alert, still since t0
    book.acknowledge(["velocity:a"])
    shown, ring = book.update([crit], t0 + timedelta(seconds=2))
    assert shown[0].acknowledged and not ring and [a.key for a in shown] == ["velocity:a"]
    worse = Alert("velocity:a", "burn rate", Severity.EMERGENCY, "a", "$51.00 in 5 min")
    shown, ring = book.update([worse], t0 + timedelta(seconds=3))
    assert ring and not shown[0].acknowledged and shown[0].since == t0  # worse: asked again
    shown, ring = book.update([], t0 + timedelta(seconds=4))
    assert shown == () and not ring
    shown, ring = book.update([crit], t0 + timedelta(seconds=5))
    assert ring and shown[0].since == t0 + timedelta(seconds=5) and not shown[0].acknowledged


def test_thresholds_are_configurable() -> None:
    rows = [call("a", 1, "2.00")]
    engine = Engine(Thresholds(velocity_warning=Decimal("1")), columns=ALL)
    engine.load(Baseline("2026-11-22", (), Decimal(0), "2026-11", (), ()))
    engine.ingest(rows)
    snap = engine.snapshot(NOW, RedisState((), {}, None, None))
    assert [a.key for a in snap.alerts] == ["velocity:a"]
    assert evaluate(([], 0), (), snap.header, None, Thresholds()) == []


def test_the_agents_alerts_kept_between_frames_are_those_a_fresh_evaluation_gives() -> None:
    """Only the rows a build touched are evaluated again; the alerts are those of evaluating every agent."""
    th = Thresholds()
    engine = Engine(th, columns=ALL)
    engine.load(Baseline("2026-11-22", (), Decimal(0), "2026-11", (), ()))
    engine.ingest([call("hot", 1, "20.00"), call("slow", 2, latency=60_000), call("calm", 3),
                   *[call("bad", 4, status="error") for _ in range(3)]])
    budgets = {"calm": Decimal("0.01")}
    cache = AgentAlerts()
    rows = engine._rows
    norms: dict[str, DayNorm] = {}  # one object: new norms (another object) evaluate every agent again
    for step, extra in enumerate(([], [call("calm", 0, "0.02")], [call("hot", 0, "40.00")], [])):
        engine.ingest(extra)
        snap = engine.snapshot(NOW + timedelta(seconds=step), RedisState((), budgets, None, None))
        kept, erroring = cache.update(rows.rows, rows.touched, th, norms, engine.days)
        fresh, fresh_erroring = fleet_agent_alerts(snap.agents, th)
        assert sorted(kept.values(), key=key_of) == sorted(fresh, key=key_of) and erroring == fresh_erroring == 1
        assert all(key == alert.key for key, alert in kept.items())
        assert {"velocity:hot", "slow:slow", "errors:bad", "budget:daily:calm"} <= set(kept)
        assert rows.touched is None or len(rows.touched) <= 2  # after the first build, only what changed
    first = dict(cache.update(rows.rows, set(), th, norms, engine.days)[0])
    cache.take_changed()
    again = cache.update(rows.rows, set(rows.rows), th, norms, engine.days)[0]  # every row, none changed
    assert again.keys() == first.keys() and all(again[key] is first[key] for key in first)
    assert cache.take_changed() == set()
    # An agent gone from the table leaves the cache too, and the book is told.
    gone = {name: row for name, row in rows.rows.items() if name != "slow"}
    assert "slow:slow" not in cache.update(gone, {"slow"}, th, norms, engine.days)[0]
    assert cache.take_changed() == {"slow:slow"}
    # Other thresholds: every agent again.
    strict = Thresholds(slow_p95_ms=86_400_000)
    assert "slow:slow" not in cache.update(rows.rows, set(), strict, norms, engine.days)[0]
    assert cache.take_changed() is None


def key_of(alert: Alert) -> str:
    return alert.key


def trace_call(agent: str, seconds_ago: float, trace: str, tool: str = "search", tokens: int | None = None,
               model: str | None = None) -> CallRecord:
    """A tool row (no model) by default; with a model it is the model call itself."""
    return CallRecord(next(_keys), NOW - timedelta(seconds=seconds_ago), agent, tool, 100, "p", model, tokens, 10,
                      None, Decimal("0.01"), "success", trace)


def test_a_stuck_loop_in_a_live_trace_is_a_warning_from_the_sixth_tool_call() -> None:
    five = [trace_call("a", 50 - i, "t1") for i in range(5)]
    assert "loop:t1" not in alerts_for(five)
    got = alerts_for([*five, trace_call("a", 40, "t1")])
    assert got["loop:t1"].severity is Severity.WARNING and got["loop:t1"].subject == "a"
    assert got["loop:t1"].figure == "trace t1: search called 6 times"
    # Six calls spread over six traces are no loop.
    assert not any(k.startswith("loop") for k in alerts_for([trace_call("a", 10, f"t{i}") for i in range(6)]))
    # Nor are ten model calls in one trace: an agent thinking in steps is not a tool in a loop.
    thinking = [trace_call("a", 30 - i, "t-llm", tool="llm", tokens=1000, model="m") for i in range(10)]
    assert not any(k.startswith("loop") for k in alerts_for(thinking))


def test_a_context_explosion_in_a_live_trace_is_above_100k_and_growing() -> None:
    def steps(trace: str, *tokens: int) -> list[CallRecord]:
        return [trace_call("b", 30 - i, trace, tool="llm", tokens=t, model="m") for i, t in enumerate(tokens)]

    # Growing fast below 100K is marked in the trace view but is no alarm: healthy agents do it.
    assert "context:small" not in alerts_for(steps("small", 1000, 1300, 1700, 2300, 3000))
    got = alerts_for(steps("g", 90_000, 100_001, 100_002))
    assert got["context:g"].severity is Severity.WARNING and got["context:g"].subject == "b"
    assert got["context:g"].figure == "trace g: input tokens 90,000 → 100,001, above 100,000"
    assert "context:edge" not in alerts_for(steps("edge", 90_000, 100_000))  # at the limit, not above
    assert "context:flat" not in alerts_for(steps("flat", 150_000, 150_000, 120_000))  # big but not growing
    assert "context:one" not in alerts_for(steps("one", 150_000))  # one big step: nothing to grow from
    # The limit is a setting.
    low = Thresholds(context_tokens=10_000)
    assert "context:s" in alerts_for(steps("s", 9_000, 10_001), thresholds=low)


def test_a_trace_quiet_for_five_minutes_no_longer_alerts() -> None:
    old = [trace_call("a", 400 + i, "t-old") for i in range(7)]
    assert "loop:t-old" not in alerts_for(old)


def test_live_traces_forget_quiet_ones_and_a_refresh_reads_only_the_flagged() -> None:
    traces = LiveTraces()
    for _ in range(6):
        traces.add(trace_call("a", 0, "loop"), 1000)
    traces.add(trace_call("a", 0, "quiet"), 1000)
    assert list(traces.flagged) == ["loop"]
    traces.advance(1000)
    for _ in range(6):
        traces.add(trace_call("a", 0, "late"), 1300)
    traces.advance(1301)  # swept: "loop" and "quiet" have been quiet past five minutes
    assert set(traces.traces) == {"late"} and list(traces.flagged) == ["late"]
    assert [kind for kind, *_ in traces.patterns(1301)] == ["loop"]
    traces.advance(1595)  # swept, "late" still recent
    traces.advance(1300 + FORGET_SECONDS + 2)  # 7 s after that sweep: no sweep yet, "late" kept...
    assert "late" in traces.traces
    assert traces.patterns(1300 + FORGET_SECONDS + 2) == []  # ...but no longer alerted
    traces.advance(1595 + SWEEP_SECONDS)
    assert not traces.traces and not traces.flagged
    traces.add(trace_call("a", 0, "new"), 1700)
    traces.advance(0)  # a clock that went back sweeps at once and drops nothing recent
    assert "new" in traces.traces and traces.last_sweep == 0


def test_an_alert_names_the_agent_and_the_trace_it_is_about() -> None:
    """What `enter` on an alert opens comes from typed fields, never from parsing the key."""
    rows = [call("hot", 1, "16.00"), call("broke", 1, "8.00"), *[call("flaky", i, status="error") for i in range(5)]]
    long = "3f2a9c1e-7b4d-4c1a-9e2b-0123456789ab"
    rows += [trace_call("looper", 50 - i, long) for i in range(6)]
    rows += [trace_call("grower", 30 - i, "g", tool="llm", tokens=t, model="m")
             for i, t in enumerate((90_000, 100_001, 100_002))]
    got = alerts_for(rows, {"broke": Decimal(10)}, day=Decimal(20))
    assert (got["velocity:hot"].agent, got["velocity:hot"].trace) == ("hot", None)
    assert got["budget:daily:broke"].agent == "broke" and got["errors:flaky"].agent == "flaky"
    assert (got[f"loop:{long}"].agent, got[f"loop:{long}"].trace) == ("looper", long)
    assert (got["context:g"].agent, got["context:g"].trace) == ("grower", "g")
    assert (got["budget:day:fleet"].agent, got["budget:day:fleet"].trace) == (None, None)
    # The trace's id is cut short in the figure (one-to-one still: `…#` and a hash); enter shows it whole.
    figure = got[f"loop:{long}"].figure
    assert long not in figure and figure.startswith("trace 3f2a9c1e-7…#") and figure.endswith("called 6 times")


def test_an_alert_line_reads_who_and_what_first_and_cuts_a_long_id() -> None:
    alert = Alert("velocity:research-bot", "burn rate", Severity.CRITICAL, "research-bot", "$16.20 in 5 min",
                  since=NOW - timedelta(seconds=130))
    assert alert_line(alert, NOW).plain == "CRIT  research-bot  $16.20 in 5 min · burn rate  for 2m10s"
    long = "agent-" + "x" * 40
    line = alert_line(replace(alert, subject=long), NOW).plain
    assert long not in line and line.startswith(f"CRIT  {visible_id(long, 24)}  $16.20")
    assert visible_id(long, 24) != visible_id(long + "y", 24)  # cut, two ids still never look the same
