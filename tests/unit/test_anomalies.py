"""Anomalies through the engine: an agent's day against its trailing week, its hour against the one
before, each at, just below and just above its limit, and silence where there is no history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from costtop.config import Thresholds
from costtop.engine.engine import Engine
from costtop.engine.snapshot import Alert, Severity
from costtop.sources.records import Baseline, CallRecord, DayAggregate, DayBaseline, RedisState, SpendHistory

NOW = datetime(2026, 11, 22, 12, 30, tzinfo=UTC)
DAY = "2026-11-22"
HOUR = int(NOW.timestamp()) // 3600
ALL = ("agent_id", "tool_name", "latency_ms", "created_at", "cost_usd", "status")
# Mean 10, sample standard deviation 2 (six days 2 away from the mean, one on it): usual up to 14.
WEEK = ("8", "12", "8", "12", "8", "12", "10")


def engine_with(today: dict[str, str], history: SpendHistory | None = None,
                hours: tuple[tuple[str, int, Decimal], ...] = (), thresholds: Thresholds | None = None,
                pending: bool = False) -> Engine:
    engine = Engine(thresholds, columns=ALL)
    days = tuple(DayAggregate(a, DAY, Decimal(v), 10, 10, 0, 0, 0) for a, v in today.items())
    engine.load(Baseline(DAY, () if pending else days, Decimal(0), DAY[:7], (), (), pending=pending,
                         agent_hours=() if pending else hours))
    if history is not None:
        engine.load_history(history)
    return engine


def week(agent: str, values: tuple[str, ...] = WEEK, first: int = 0) -> SpendHistory:
    return SpendHistory(DAY, 7, tuple((agent, first + i, Decimal(v)) for i, v in enumerate(values)))


def alerts(engine: Engine, at: datetime = NOW) -> dict[str, Alert]:
    return {a.key: a for a in engine.snapshot(at, RedisState((), {}, None, None)).alerts}


def test_a_day_above_the_weeks_mean_plus_two_sigma_is_unusual() -> None:
    assert "anomaly-day:a" not in alerts(engine_with({"a": "14"}, week("a")))  # at the limit
    assert "anomaly-day:a" not in alerts(engine_with({"a": "13.99"}, week("a")))
    got = alerts(engine_with({"a": "14.01"}, week("a")))["anomaly-day:a"]
    assert got.severity is Severity.WARNING and got.subject == "a"
    assert got.figure == "$14.01 today; 7-day mean $10.00, usual up to $14.00"


def test_the_limits_are_settings() -> None:
    one_sigma = Thresholds(anomaly_sigmas=Decimal("1"))
    assert "anomaly-day:a" in alerts(engine_with({"a": "12.01"}, week("a"), thresholds=one_sigma))
    assert "anomaly-day:a" not in alerts(engine_with({"a": "12"}, week("a"), thresholds=one_sigma))


def test_no_history_no_anomaly() -> None:
    # No week read yet, an agent not in it, or a week for another day: nothing is judged.
    assert not [k for k in alerts(engine_with({"a": "500"})) if k.startswith("anomaly")]
    assert "anomaly-day:new" not in alerts(engine_with({"new": "500"}, week("a")))
    stale = SpendHistory("2026-11-21", 7, week("a").sums)
    assert "anomaly-day:a" not in alerts(engine_with({"a": "500"}, stale))
    # Two days since its first is too little history; three is enough. Idle days after the first count as $0.
    assert "anomaly-day:a" not in alerts(engine_with({"a": "500"}, week("a", ("10", "10"), first=5)))
    assert "anomaly-day:a" in alerts(engine_with({"a": "500"}, week("a", ("10", "10", "10"), first=4)))
    sparse = SpendHistory(DAY, 7, (("a", 2, Decimal("10")), ("a", 6, Decimal("10"))))  # days 2..6: 10,0,0,0,10
    norm = engine_with({"a": "1"}, sparse).day_norms["a"]
    assert (norm.days, norm.mean) == (5, Decimal(4))
    # While the day's own sums are still being read, today is unknown: no anomaly either way.
    assert "anomaly-day:a" not in alerts(engine_with({"a": "500"}, week("a"), pending=True))


def test_tiny_sums_are_not_news() -> None:
    tiny = SpendHistory(DAY, 7, tuple(("a", d, Decimal("0.01")) for d in range(7)))
    assert "anomaly-day:a" not in alerts(engine_with({"a": "0.99"}, tiny))  # 99x its usual day, under $1
    assert "anomaly-day:a" in alerts(engine_with({"a": "1.00"}, tiny))


def test_this_hour_above_three_times_the_last_is_a_jump() -> None:
    def hours(before: str, now: str) -> tuple[tuple[str, int, Decimal], ...]:
        return (("a", HOUR - 1, Decimal(before)), ("a", HOUR, Decimal(now)))

    assert "anomaly-hour:a" not in alerts(engine_with({"a": "20"}, hours=hours("2", "6")))  # exactly 3x
    got = alerts(engine_with({"a": "20"}, hours=hours("2", "6.01")))["anomaly-hour:a"]
    assert got.figure == "$6.01 this hour, $2.00 the hour before (3.0x)" and got.severity is Severity.WARNING
    # No spend the hour before: no history for the comparison, not an infinite jump.
    assert "anomaly-hour:a" not in alerts(engine_with({"a": "20"}, hours=(("a", HOUR, Decimal("50")),)))
    # Under $1 this hour: not news.
    assert "anomaly-hour:a" not in alerts(engine_with({"a": "20"}, hours=hours("0.10", "0.99")))


def test_rows_read_live_move_the_hour_and_the_next_hour_starts_over() -> None:
    engine = engine_with({"a": "20"}, hours=(("a", HOUR - 1, Decimal("2")), ("a", HOUR, Decimal("5"))))
    assert "anomaly-hour:a" not in alerts(engine)
    engine.ingest([CallRecord(1, NOW - timedelta(seconds=5), "a", "llm", 100, cost_usd=Decimal("1.50"))])
    assert alerts(engine)["anomaly-hour:a"].figure == "$6.50 this hour, $2.00 the hour before (3.2x)"
    # Half an hour on, a new clock hour: $6.50 is now the hour before, and nothing is spent yet.
    assert "anomaly-hour:a" not in alerts(engine, NOW + timedelta(minutes=30))


def test_the_hours_arrive_with_the_days_sums() -> None:
    engine = engine_with({}, pending=True)
    assert "anomaly-hour:a" not in alerts(engine)
    engine.complete(DayBaseline(DAY, (DayAggregate("a", DAY, Decimal("20"), 10, 10, 0, 0, 0),), Decimal(0),
                                DAY[:7], (), agent_hours=(("a", HOUR - 1, Decimal("1")), ("a", HOUR, Decimal("4")))))
    assert alerts(engine)["anomaly-hour:a"].figure == "$4.00 this hour, $1.00 the hour before (4.0x)"
