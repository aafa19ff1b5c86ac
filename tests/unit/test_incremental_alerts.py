"""The shortcuts of the alert book and of the agents' kept alerts never show anything that evaluating
every rule for every agent and booking the lot from scratch would not.

The reference (`FullBook`, `FromScratch`) is the book as it was before it went incremental: every
alert of every agent, each frame, `replace`d and sorted. The cases that a shortcut gets wrong are the
ones where nothing new arrives for an agent: time alone clears its burn rate, Redis alone changes its
budget or its switch, a new history alone makes its day unusual."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from costtop.config import Thresholds
from costtop.engine.alerts import AgentAlerts, AlertBook, day_anomaly, fleet_agent_alerts
from costtop.engine.engine import NO_NORMS, Engine
from costtop.engine.snapshot import Alert, Severity, Snapshot
from costtop.sources.records import (
    Baseline,
    CallRecord,
    DayAggregate,
    RedisState,
    SourceStatus,
    SpendHistory,
    SwitchKind,
    SwitchRecord,
)

START = datetime(2026, 11, 22, 12, 0, 0, tzinfo=UTC)
DAY = "2026-11-22"
ALL = ("agent_id", "tool_name", "latency_ms", "created_at", "cost_usd", "status", "provider", "model")
AGENTS = ("a0", "a1", "a2", "a3", "a4")
_ids = iter(range(1, 10**9))


class FullBook:
    """The alert book before it kept its order: every alert booked again and sorted at every update."""

    def __init__(self) -> None:
        self.active: dict[str, Alert] = {}
        self.acknowledged: set[str] = set()

    def update(self, alerts: Iterable[Alert], now: datetime) -> tuple[tuple[Alert, ...], bool]:
        current: dict[str, Alert] = {}
        new_critical = False
        for alert in alerts:
            before = self.active.get(alert.key)
            if before is None:
                since = now
                new_critical = new_critical or alert.severity >= Severity.CRITICAL
            else:
                since = before.since or now
                if alert.severity > before.severity:
                    self.acknowledged.discard(alert.key)
                    new_critical = new_critical or alert.severity >= Severity.CRITICAL
            current[alert.key] = replace(alert, since=since, acknowledged=alert.key in self.acknowledged)
        self.acknowledged &= set(current)
        self.active = current
        return tuple(sorted(current.values(), key=lambda a: (-a.severity, a.since, a.key))), new_critical

    def acknowledge(self, keys: Iterable[str]) -> None:
        chosen = set(keys) & set(self.active)
        self.acknowledged |= chosen
        self.active = {k: replace(a, acknowledged=a.acknowledged or k in chosen) for k, a in self.active.items()}


class FromScratch(Engine):
    """The engine with every agent's rules evaluated at every snapshot and booked by `FullBook`."""

    def __init__(self, thresholds: Thresholds | None = None) -> None:
        super().__init__(thresholds, columns=ALL)
        self.full_book = FullBook()

    def snapshot(self, now: datetime, redis: RedisState | None, sources: Sequence[SourceStatus] = ()) -> Snapshot:
        self._agent_alerts = AgentAlerts()  # nothing kept: the agents erroring are counted afresh too
        return super().snapshot(now, redis, sources)

    def update_alert_book(self, active: Iterable[Alert], now: datetime) -> tuple[tuple[Alert, ...], bool]:
        rows = self._rows.rows
        own, _ = fleet_agent_alerts(rows.values(), self.thresholds)
        norms = self.day_norms if self.history_day == self.day else NO_NORMS
        for name, agent in rows.items():
            if name in self.days:
                unusual = day_anomaly(name, agent.spend_today, norms.get(name), self.thresholds)
                own += [unusual] if unusual is not None else []
        return self.full_book.update([*own, *active], now)  # the other rules after the agents', as evaluate had them

    def acknowledge(self, keys: Iterable[str]) -> None:
        self.full_book.acknowledge(keys)


def row(agent: str, at: datetime, cost: str, status: str = "success", latency: int = 100) -> CallRecord:
    return CallRecord(next(_ids), at, agent, "llm", latency, "p", "m", None, None, None, Decimal(cost), status)


def started(engine: Engine, spent: dict[str, str] | None = None) -> Engine:
    days = tuple(DayAggregate(agent, DAY, Decimal(cost), 1, 1, 0, 0, 0) for agent, cost in (spent or {}).items())
    engine.load(Baseline(DAY, days, Decimal(0), DAY[:7], (), ()))
    return engine


def redis(budgets: dict[str, str], killed: tuple[str, ...] = ()) -> RedisState:
    switches = tuple(SwitchRecord(f"kill:agent:{a}", SwitchKind.KILL, "agent", a, "manual:test:x", None)
                     for a in killed)
    return RedisState(switches, {a: Decimal(b) for a, b in budgets.items()}, None, None)


def keys(snap: Snapshot) -> dict[str, Alert]:
    return {a.key: a for a in snap.alerts}


# -- what changes with no new call ----------------------------------------------------------------


def test_a_burn_alert_clears_when_its_calls_leave_the_window_with_no_new_call() -> None:
    engine = started(Engine(columns=ALL))
    engine.ingest([row("hot", START, "20.00"), row("calm", START, "0.01")])
    state = redis({})
    assert keys(engine.snapshot(START + timedelta(seconds=1), state))["velocity:hot"].severity is Severity.CRITICAL
    assert "velocity:hot" in keys(engine.snapshot(START + timedelta(seconds=299), state))
    engine.ingest([row("calm", START + timedelta(seconds=299), "0.01")])  # another agent moves, not this one
    assert "velocity:hot" in keys(engine.snapshot(START + timedelta(seconds=299, microseconds=500_000), state))
    assert "velocity:hot" not in keys(engine.snapshot(START + timedelta(seconds=300), state))


def test_a_burn_alert_follows_its_window_down_with_no_new_call() -> None:
    engine = started(Engine(columns=ALL))
    engine.ingest([row("hot", START, "20.00"), row("hot", START + timedelta(seconds=100), "20.00")])
    state = redis({})
    got = keys(engine.snapshot(START + timedelta(seconds=101), state))["velocity:hot"]
    assert (got.severity, got.figure) == (Severity.CRITICAL, "$40.00 in 5 min")
    got = keys(engine.snapshot(START + timedelta(seconds=300), state))["velocity:hot"]  # the first call left
    assert (got.severity, got.figure) == (Severity.CRITICAL, "$20.00 in 5 min")
    assert got.since == START + timedelta(seconds=101)


def test_a_budget_changed_in_redis_changes_the_alert_of_an_agent_with_no_new_call() -> None:
    engine = started(Engine(columns=ALL), {"idle": "9.00"})
    t = START
    assert "budget:daily:idle" not in keys(engine.snapshot(t, redis({"idle": "20"})))  # 45 %
    got = keys(engine.snapshot(t + timedelta(seconds=1), redis({"idle": "10"})))  # 90 %
    assert got["budget:daily:idle"].severity is Severity.WARNING and got["budget:daily:idle"].figure == "90 % of $10.00"
    snap = engine.snapshot(t + timedelta(seconds=2), redis({"idle": "9"}))  # 100 %: critical, and rings
    assert snap.new_critical and keys(snap)["budget:daily:idle"].figure == "100 % of $9.00"
    assert keys(snap)["budget:daily:idle"].since == t + timedelta(seconds=1)  # the same alert, worse
    # An equal budget as another read (another object) is no change: not new, not ringing.
    snap = engine.snapshot(t + timedelta(seconds=3), redis({"idle": "9.00"}))
    assert not snap.new_critical and keys(snap)["budget:daily:idle"].figure == "100 % of $9.00"
    got = keys(engine.snapshot(t + timedelta(seconds=4), redis({"idle": "10.5"})))  # still a warning, another limit
    assert got["budget:daily:idle"].figure == "86 % of $10.50" and got["budget:daily:idle"].severity is Severity.WARNING
    assert "budget:daily:idle" not in keys(engine.snapshot(t + timedelta(seconds=5), redis({})))  # no budget


def test_a_kill_set_in_redis_rewords_the_burn_alert_of_an_agent_with_no_new_call() -> None:
    engine = started(Engine(columns=ALL))
    engine.ingest([row("hot", START, "20.00")])
    assert keys(engine.snapshot(START + timedelta(seconds=1), redis({})))["velocity:hot"].figure == "$20.00 in 5 min"
    got = keys(engine.snapshot(START + timedelta(seconds=2), redis({}, killed=("hot",))))
    assert got["velocity:hot"].figure == "$20.00 in 5 min, killed"
    assert got["velocity:hot"].since == START + timedelta(seconds=1)


def test_a_new_history_makes_a_day_unusual_with_no_new_call() -> None:
    engine = started(Engine(columns=ALL), {"big": "50.00"})
    assert "anomaly-day:big" not in keys(engine.snapshot(START, redis({})))
    engine.load_history(SpendHistory(DAY, 7, tuple(("big", d, Decimal("1.00") + d % 2) for d in range(7))))
    assert keys(engine.snapshot(START + timedelta(seconds=1), redis({})))["anomaly-day:big"].agent == "big"


def test_an_agent_crossing_its_budget_rings_again_even_when_acknowledged() -> None:
    engine = started(Engine(columns=ALL), {"b": "7.00"})
    state = redis({"b": "10"})
    engine.ingest([row("b", START, "1.00")])
    snap = engine.snapshot(START + timedelta(seconds=1), state)  # 80 %
    assert keys(snap)["budget:daily:b"].severity is Severity.WARNING and not snap.new_critical
    engine.acknowledge(["budget:daily:b"])
    engine.ingest([row("b", START + timedelta(seconds=1), "0.50")])  # 85 %: changed, not worse
    got = keys(engine.snapshot(START + timedelta(seconds=2), state))["budget:daily:b"]
    assert got.acknowledged and got.figure == "85 % of $10.00"
    engine.ingest([row("b", START + timedelta(seconds=2), "1.50")])  # 100 %
    snap = engine.snapshot(START + timedelta(seconds=3), state)
    got = keys(snap)["budget:daily:b"]
    assert snap.new_critical and got.severity is Severity.CRITICAL and not got.acknowledged
    assert got.since == START + timedelta(seconds=1)


def test_an_acknowledged_alert_stays_so_while_other_agents_change() -> None:
    engine = started(Engine(columns=ALL))
    engine.ingest([row("hot", START, "20.00"), row("warm", START, "6.00")])
    state = redis({})
    engine.snapshot(START, state)
    engine.acknowledge(["velocity:hot"])
    for second in range(1, 5):
        engine.ingest([row("warm", START + timedelta(seconds=second), "1.00")])
        got = keys(engine.snapshot(START + timedelta(seconds=second), state))
        assert got["velocity:hot"].acknowledged and not got["velocity:warm"].acknowledged
        assert got["velocity:warm"].figure == f"${6 + second}.00 in 5 min"


# -- the book on its own: kept in order against a full rebuild ----------------------------------------

RULES = (("velocity", "burn rate"), ("budget:daily", "daily budget"), ("errors", "error rate"))
alert_strategy = st.builds(
    lambda rule, subject, severity, figure: Alert(f"{rule[0]}:{subject}", rule[1], severity, subject, figure,
                                                  agent=subject),
    st.sampled_from(RULES), st.sampled_from(AGENTS), st.sampled_from(list(Severity)), st.sampled_from(("x", "y")))
frame_strategy = st.tuples(
    st.lists(alert_strategy, max_size=6),  # the agents' own alerts this frame
    st.lists(alert_strategy, max_size=3),  # the other rules' (the same keys, at times: theirs hold)
    st.lists(st.sampled_from([f"{r[0]}:{a}" for r in RULES for a in AGENTS]), max_size=3),  # acknowledged
    st.integers(0, 3),  # seconds on
    st.booleans(),  # the agents' changes not told (None): the book looks at all of them
)


@settings(max_examples=300, deadline=None)
@given(st.lists(frame_strategy, min_size=1, max_size=12))
def test_the_book_kept_in_order_equals_a_full_rebuild(frames: list) -> None:
    book, full = AlertBook(), FullBook()
    kept: dict[str, Alert] = {}
    now = START
    for own, rest, acknowledged, seconds, untold in frames:
        new_kept = {alert.key: alert for alert in own}
        changed = {key for key in kept.keys() | new_kept.keys() if kept.get(key) != new_kept.get(key)}
        # An unchanged alert may come as the same object or an equal one: both are the same alert.
        kept = {key: kept[key] if key not in changed and key in kept else alert for key, alert in new_kept.items()}
        now += timedelta(seconds=seconds)
        got = book.update(rest, now, kept, None if untold else changed)
        assert got == full.update([*kept.values(), *rest], now)
        book.acknowledge(acknowledged)
        full.acknowledge(acknowledged)
        assert book.active == full.active and book.acknowledged == full.acknowledged


def test_of_two_alerts_with_one_key_the_later_holds_and_the_other_still_rings() -> None:
    """An agent named "fleet" has an error-rate alert keyed as the fleet's own: as when every alert was
    booked in turn, the fleet's (given after) is the one shown, and the agent's rings if it is worse."""
    agents = {"errors:fleet": Alert("errors:fleet", "error rate", Severity.WARNING, "fleet", "agent")}
    fleet = Alert("errors:fleet", "agents erroring", Severity.WARNING, "fleet", "the fleet")
    book, full = AlertBook(), FullBook()
    assert book.update([fleet], START, agents, set(agents)) == full.update([*agents.values(), fleet], START)
    book.acknowledge(["errors:fleet"])
    full.acknowledge(["errors:fleet"])
    worse = {"errors:fleet": replace(agents["errors:fleet"], severity=Severity.CRITICAL)}
    shown, ring = book.update([fleet], START + timedelta(seconds=1), worse, set(worse))
    assert (shown, ring) == full.update([*worse.values(), fleet], START + timedelta(seconds=1))
    assert ring and shown[0].figure == "the fleet" and not shown[0].acknowledged
    twice = [replace(fleet, severity=Severity.EMERGENCY), fleet]  # the same within the other rules
    shown, ring = book.update(twice, START + timedelta(seconds=2), worse, ())
    assert (shown, ring) == full.update([*worse.values(), *twice], START + timedelta(seconds=2)) and ring


def test_the_book_without_kept_alerts_is_the_full_list() -> None:
    book = AlertBook()
    warn = Alert("errors:b", "error rate", Severity.WARNING, "b", "…")
    crit = Alert("velocity:a", "burn rate", Severity.CRITICAL, "a", "$16.00 in 5 min")
    shown, ring = book.update([warn, crit], START)
    assert ring and [a.key for a in shown] == ["velocity:a", "errors:b"]
    # The same alerts again: the same tuple, nothing booked anew.
    again, ring = book.update([warn, crit], START + timedelta(seconds=1))
    assert again is shown and not ring
    book.acknowledge()  # all of them
    shown, _ = book.update([warn, crit], START + timedelta(seconds=2))
    assert all(a.acknowledged for a in shown) and shown[0].since == START


# -- the engine: kept alerts against every rule evaluated every frame ---------------------------------

call_strategy = st.tuples(st.sampled_from(AGENTS), st.sampled_from(("0.40", "2.00", "6.00", "20.00", "60.00")),
                          st.sampled_from(("success", "success", "error")), st.sampled_from((100, 100, 20_000)))
budget_strategy = st.dictionaries(st.sampled_from(AGENTS), st.sampled_from(("0", "1", "5", "10", "25", "100")),
                                  max_size=5)
redis_strategy = st.one_of(
    st.just("same"),  # the last read itself, as when Redis was not read again
    st.just("equal"),  # a new read that says the same
    st.just("down"),  # Redis unreadable: every budget unknown
    st.tuples(budget_strategy, st.lists(st.sampled_from(AGENTS), max_size=2, unique=True).map(tuple)),
)
engine_frame = st.tuples(
    st.lists(call_strategy, max_size=4),
    st.sampled_from((0.2, 1, 7, 61, 150, 301)),  # seconds on: windows slide, minutes and the trend turn
    redis_strategy,
    st.booleans(),  # acknowledge the first alert shown
    st.booleans(),  # a new week of history (new norms)
)


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(st.sampled_from(AGENTS), st.sampled_from(("0.50", "8.00", "30.00")), max_size=5),
       st.lists(engine_frame, min_size=1, max_size=10))
def test_the_engine_books_what_every_rule_for_every_agent_gives(spent: dict[str, str], frames: list) -> None:
    th = Thresholds(anomaly_min_usd=Decimal("1"))
    kept, scratch = started(Engine(th, columns=ALL), spent), started(FromScratch(th), spent)
    now = START
    state: RedisState | None = redis({})
    for number, (calls, seconds, read, acknowledge, history) in enumerate(frames):
        rows = [row(agent, now, cost, status, latency) for agent, cost, status, latency in calls]
        kept.ingest(rows)
        scratch.ingest(rows)
        if history:
            week = SpendHistory(DAY, 7, tuple((a, d, Decimal(d + number % 3)) for a in AGENTS for d in range(7)))
            kept.load_history(week)
            scratch.load_history(week)
        now += timedelta(seconds=seconds)
        if read == "equal" and state is not None:
            state = RedisState(state.switches, dict(state.budgets), None, None)
        elif read == "down":
            state = None
        elif isinstance(read, tuple):
            state = redis(*read)
        got, expected = kept.snapshot(now, state), scratch.snapshot(now, state)
        assert got.alerts == expected.alerts and got.new_critical == expected.new_critical
        if acknowledge and got.alerts:
            kept.acknowledge([got.alerts[0].key])
            scratch.acknowledge([got.alerts[0].key])
