"""Issue 16 in the engine, time passed in: kills verified against the calls that follow them, and a
gateway that stops writing rows never shown as healthy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from costtop.config import OPTIONAL_COLUMNS, REQUIRED_COLUMNS, Settings, Thresholds
from costtop.engine.engine import Engine
from costtop.engine.snapshot import Health, Severity, Snapshot
from costtop.sources.records import (
    Baseline,
    CallRecord,
    GatewayCounters,
    RedisState,
    SwitchKind,
    SwitchRecord,
    WindowGroup,
)

T0 = datetime(2026, 11, 22, 10, 26, 30, tzinfo=UTC)
ALL = (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS)
_keys = iter(range(10**9))


def call(agent: str, at: datetime, status: str = "success", model: str = "gpt-5",
         provider: str = "openai") -> CallRecord:
    return CallRecord(key=next(_keys), created_at=at, agent_id=agent, tool_name="llm", latency_ms=100,
                      cost_usd=Decimal("0.01"), status=status, model=model, provider=provider)


def kill(scope: str, target: str) -> SwitchRecord:
    key = "kill:global" if scope == "global" else f"kill:{scope}:{target}"
    return SwitchRecord(key, SwitchKind.KILL, scope, target, "manual:ops:runaway", None)


def state(*switches: SwitchRecord) -> RedisState:
    return RedisState(tuple(switches), {}, None, None)


def engine(**thresholds: object) -> Engine:
    e = Engine(Thresholds(**thresholds), ALL)  # type: ignore[arg-type]
    e.load(Baseline(day="2026-11-22", days=(), month_before_today=Decimal(0), month="2026-11", minutes=(),
                    window=()), at=T0 - timedelta(minutes=10))
    return e


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def alert(snap: Snapshot, key: str) -> str | None:
    found = next((a for a in snap.alerts if a.key == key), None)
    return None if found is None else f"{found.severity.name} {found.rule}: {found.figure}"


# -- kills ------------------------------------------------------------------------------------------

def test_a_gateway_that_ignores_a_kill_raises_a_critical_alert() -> None:
    e = engine()
    switch = kill("agent", "a")
    e.snapshot(at(0), state(switch))  # first seen at 10:26:30
    e.ingest([call("a", at(s)) for s in (1, 5, 11, 15, 20)])  # 11, 15, 20: after the 10 s grace
    snap = e.snapshot(at(21), state(switch))
    assert alert(snap, "unhonoured:kill:agent:a") == (
        "CRITICAL kill not honoured: 3 calls since 10:26:30 UTC despite kill:agent:a: the gateway is not "
        "checking it")
    check = snap.kill_check("kill:agent:a")
    assert check is not None and check.violations == 3 and check.last_call_at == at(20).timestamp()
    assert not check.written  # costtop did not set it: its time is the first sighting
    assert snap.new_critical


def test_a_gateway_that_obeys_refuses_the_calls_and_raises_nothing() -> None:
    e = engine()
    switch = kill("agent", "a")
    e.snapshot(at(0), state(switch))
    e.ingest([call("a", at(s), status="killed") for s in range(11, 60, 5)])
    e.ingest([call("b", at(30))])  # another agent carries on
    snap = e.snapshot(at(61), state(switch))
    assert alert(snap, "unhonoured:kill:agent:a") is None
    check = snap.kill_check("kill:agent:a")
    assert check is not None and check.violations == 0 and check.last_call_at == at(56).timestamp()
    assert next(a for a in snap.agents if a.agent_id == "a").last_call_at == at(56).timestamp()


def test_batch_delayed_rows_that_started_before_the_kill_are_not_violations() -> None:
    e = engine()
    switch = kill("agent", "a")
    e.snapshot(at(0), state(switch))
    # A LiteLLM batch commits a minute later, rows stamped with their calls' start: before the kill,
    # or within the grace.
    e.ingest([call("a", at(s)) for s in (-50, -20, -1, 0, 9)])
    assert alert(e.snapshot(at(70), state(switch)), "unhonoured:kill:agent:a") is None


def test_the_kill_counts_from_when_costtop_set_it_not_when_it_saw_it() -> None:
    e = engine()
    e.note_switch_set("kill:agent:a", at(0))
    e.snapshot(at(30), state(kill("agent", "a")))  # the first read that shows it, 30 s later
    e.ingest([call("a", at(15))])  # started 15 s after costtop set it
    snap = e.snapshot(at(31), state(kill("agent", "a")))
    check = snap.kill_check("kill:agent:a")
    assert check is not None and check.written and check.since == at(0) and check.violations == 1


def test_model_provider_and_global_kills_are_checked_too() -> None:
    e = engine()
    switches = (kill("model", "gpt-5"), kill("provider", "anthropic"), kill("global", "*"))
    e.snapshot(at(0), state(*switches))
    e.ingest([call("x", at(20), model="gpt-5", provider="openai"),
              call("y", at(21), model="claude", provider="anthropic"),
              call("z", at(22), model="claude", provider="anthropic", status="killed")])
    snap = e.snapshot(at(23), state(*switches))
    assert {c.key: c.violations for c in snap.kill_checks} == {
        "kill:model:gpt-5": 1, "kill:provider:anthropic": 1, "kill:global": 2}
    assert alert(snap, "unhonoured:kill:global") is not None


def test_a_resumed_kill_forgets_its_violations_and_no_call_is_judged_while_redis_is_down() -> None:
    e = engine()
    switch = kill("agent", "a")
    e.snapshot(at(0), state(switch))
    e.ingest([call("a", at(20))])
    assert alert(e.snapshot(at(21), state(switch)), "unhonoured:kill:agent:a") is not None
    e.snapshot(at(22), None)  # Redis down: the switch may be gone
    e.ingest([call("a", at(23))])
    assert e.snapshot(at(24), state(switch)).kill_check("kill:agent:a").violations == 1  # type: ignore[union-attr]
    snap = e.snapshot(at(25), state())  # resumed
    assert alert(snap, "unhonoured:kill:agent:a") is None and snap.kill_checks == ()


def test_last_call_of_an_agent_not_read_since_watching_began_is_before_that() -> None:
    e = engine()
    e.ingest([call("a", at(-5))])
    snap = e.snapshot(at(0), state())
    assert snap.calls_seen_from == (T0 - timedelta(minutes=15)).timestamp()
    assert next(a for a in snap.agents if a.agent_id == "a").last_call_at == at(-5).timestamp()


# -- silence ----------------------------------------------------------------------------------------

def flowing(e: Engine, until: float = 0, calls: int = 30) -> None:
    """`calls` rows over the minute before `until`."""
    e.ingest([call(f"agent-{i % 3}", at(until - 60 + 2 * i)) for i in range(calls)])


def test_rows_stopping_after_traffic_is_silence_until_they_resume() -> None:
    e = engine(silence_seconds=60)
    flowing(e)
    snap = e.snapshot(at(30), state())
    assert snap.header.newest_row_age == 32 and not snap.header.rows_silent
    assert all(p.health is Health.HEALTHY for p in snap.providers)
    snap = e.snapshot(at(63), state())  # 65 s since the newest row
    assert snap.header.rows_silent
    assert alert(snap, "silence:gateway") == (
        "WARNING rows stopped: no row for 1m after 30 in the 1m before: the gateway stopped writing the "
        "table, or every agent stopped at once")
    assert [p.health for p in snap.providers] == [Health.NO_DATA]
    e.ingest([call("agent-0", at(64))])
    snap = e.snapshot(at(65), state())
    assert not snap.header.rows_silent and alert(snap, "silence:gateway") is None
    assert [p.health for p in snap.providers] == [Health.HEALTHY]


def test_calls_counter_rising_without_rows_is_critical() -> None:
    e = engine(silence_seconds=60)
    e.ingest([call("a", at(-100))])  # one old row: no traffic flowing by the rows alone
    for second, calls in ((0, 10), (10, 25), (20, 40)):
        e.note_counters(GatewayCounters("2026-11-22", {}, calls))
        e.snapshot(at(second), state())
    snap = e.snapshot(at(45), state())
    assert snap.header.rows_silent
    assert alert(snap, "silence:gateway") == (
        "CRITICAL gateway not writing rows: calls:2026-11-22 rose by 15 but no row for 2m: the gateway "
        "stopped writing the table, or calls bypass it")


def test_a_quiet_fleet_is_not_silence() -> None:
    e = engine(silence_seconds=60)
    snap = e.snapshot(at(0), state())  # no row at all, no counter
    assert snap.header.newest_row_age is None and not snap.header.rows_silent and not snap.alerts
    e.ingest([call("a", at(-300)), call("a", at(-200))])  # a trickle, long ago
    for second in (0, 10, 20, 30):
        e.note_counters(GatewayCounters("2026-11-22", {}, 2))  # the gateway counted nothing since either
        snap = e.snapshot(at(second), state())
    assert not snap.header.rows_silent and not snap.alerts
    assert snap.header.newest_row_age == 230


def test_traffic_that_stops_while_the_counter_stops_too_is_the_fleet_going_quiet() -> None:
    e = engine(silence_seconds=60)
    flowing(e)
    for second in (0, 10, 20, 30, 40, 50, 60, 70):
        e.note_counters(GatewayCounters("2026-11-22", {}, 500))
        snap = e.snapshot(at(second), state())
    assert not snap.header.rows_silent and alert(snap, "silence:gateway") is None


def test_the_litellm_preset_waits_past_its_batches() -> None:
    assert Settings().thresholds.silence_seconds == 60
    assert Settings(preset="litellm").thresholds.silence_seconds == 240
    assert Settings(preset="litellm", thresholds={"silence_seconds": 90}).thresholds.silence_seconds == 90


def test_baseline_window_counts_as_traffic_and_sets_the_newest_row() -> None:
    e = Engine(Thresholds(silence_seconds=60), ALL)
    groups = tuple(WindowGroup(int(at(-s).timestamp()), "a", Decimal("0.1"), 1, 1, 0, (100,)) for s in range(20))
    e.load(Baseline(day="2026-11-22", days=(), month_before_today=Decimal(0), month="2026-11", minutes=(),
                    window=groups), at=at(0))
    assert e.snapshot(at(1), state()).header.newest_row_age == 1
    snap = e.snapshot(at(70), state())
    assert snap.header.rows_silent and alert(snap, "silence:gateway") is not None
    assert next(a.severity for a in snap.alerts if a.key == "silence:gateway") == Severity.WARNING
