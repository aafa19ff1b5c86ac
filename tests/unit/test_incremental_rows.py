"""The engine rebuilds only the agent rows that changed (issue 17's floods): whatever happens, a snapshot
must read exactly as one built from scratch at the same moment.

Each step of a random day (calls now and then, the clock moving seconds or minutes, Redis reads that
repeat, change a budget, set or lift a kill or a throttle with or without an expiry, a global kill,
Redis down, a week of history) takes a snapshot, then forces a full rebuild of the rows and takes
another at the same instant: agents, their order, alerts and kill checks must be equal.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from costtop.config import OPTIONAL_COLUMNS, REQUIRED_COLUMNS, Thresholds
from costtop.engine.agent_rows import sort_columns, sort_key
from costtop.engine.engine import Engine
from costtop.engine.snapshot import AgentRow, AgentState, BudgetState, BudgetView, Level, Snapshot, SortKey
from costtop.sources.records import Baseline, CallRecord, RedisState, SpendHistory, SwitchKind, SwitchRecord

START = datetime(2026, 11, 22, 10, 0, 0, tzinfo=UTC)
ALL = (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS)
AGENTS = [f"agent-{i}" for i in range(24)]


class World:
    """The random day's Redis: budgets and switches, read as a new object each time, as the reader does."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.budgets: dict[str, Decimal] = {a: Decimal(rng.choice((1, 5, 40))) for a in AGENTS[:8]}
        self.switches: dict[tuple[SwitchKind, str], SwitchRecord] = {}

    def change(self) -> None:
        rng = self.rng
        what = rng.randrange(5)
        agent = rng.choice(AGENTS)
        if what == 0:
            self.budgets[agent] = Decimal(rng.choice((0, 1, 3, 20)))
        elif what == 1:
            self.budgets.pop(agent, None)
        elif what == 2:
            kind = rng.choice((SwitchKind.KILL, SwitchKind.THROTTLE))
            ttl = rng.choice((None, 30.0, 600.0))
            self.switches[(kind, agent)] = SwitchRecord(f"{kind.value}:agent:{agent}", kind, "agent", agent,
                                                        f"manual:ops:{rng.randrange(3)}", ttl)
        elif what == 3 and self.switches:
            del self.switches[rng.choice(sorted(self.switches))]
        else:
            key = (SwitchKind.KILL, "*")
            if key in self.switches:
                del self.switches[key]
            else:
                self.switches[key] = SwitchRecord("kill:global", SwitchKind.KILL, "global", "*", "manual:ops:all",
                                                  None)

    def read(self) -> RedisState:
        return RedisState(tuple(self.switches.values()), dict(self.budgets), Decimal(100), None)


def same_picture(a: Snapshot, b: Snapshot) -> None:
    assert a.agents == b.agents  # every row, in the same order
    assert {x.key: (x.severity, x.figure) for x in a.alerts} == {x.key: (x.severity, x.figure) for x in b.alerts}
    assert a.kill_checks == b.kill_checks
    assert a.header.known_agents == b.header.known_agents


@pytest.mark.parametrize("seed", range(6))
def test_a_snapshot_of_changed_rows_reads_as_one_built_from_scratch(seed: int) -> None:
    rng = random.Random(seed)
    engine = Engine(Thresholds(anomaly_min_usd=Decimal("0.01")), columns=ALL)
    engine.load(Baseline(START.strftime("%Y-%m-%d"), (), Decimal(0), START.strftime("%Y-%m"), (), ()), at=START)
    day = START.strftime("%Y-%m-%d")
    engine.load_history(SpendHistory(day, 7, tuple((a, d, Decimal(rng.randrange(0, 300)) / 100)
                                                   for a in AGENTS[::2] for d in range(7))))
    world = World(rng)
    now, key = START, 0
    redis: RedisState | None = world.read()
    for _ in range(160):
        now += timedelta(seconds=rng.choice((1, 1, 2, 7, 45, 61, 130)))
        rows = []
        for _ in range(rng.randrange(0, 12)):
            key += 1
            agent = rng.choice(AGENTS)
            rows.append(CallRecord(key, now - timedelta(seconds=rng.uniform(0, 3)), agent, "llm",
                                   rng.choice((100, 900, 70_000)), "p", "m", 1000, 100, 0,
                                   Decimal(rng.choice(("0.01", "0.5", "3.10", "12"))),
                                   rng.choice(("success", "success", "error", "killed"))))
        engine.ingest(rows)
        roll = rng.random()
        if roll < 0.3:
            world.change()
            redis = world.read()
        elif roll < 0.4:
            redis = world.read()  # the same answer, a new object
        elif roll < 0.45:
            redis = None  # Redis down
        elif redis is None:
            redis = world.read()
        if rng.random() < 0.1:
            engine.sort_by(rng.choice(list(SortKey)), rng.random() < 0.3)
        kept = engine.snapshot(now, redis)
        engine._rows.invalidate()
        engine.liveness._stale = None
        fresh = engine.snapshot(now, redis)
        same_picture(kept, fresh)



@pytest.mark.parametrize("sort", list(SortKey))
def test_a_rows_key_is_the_one_its_column_sort_gives(sort: SortKey) -> None:
    """`sort_key` keys a rebuilt row directly; the full sort goes column by column (`sort_columns`):
    a row moved by the one must land where the other puts it."""
    rng = random.Random(sort.value)
    spends = (None, Decimal(0), Decimal("0.01"), Decimal("12.5"), Decimal("-3"))
    rows = [AgentRow(rng.choice((None, "a", "", "b")), rng.choice(spends), rng.choice(spends), None, Level.OK,
                     BudgetView(BudgetState.OK, runs_out_in=rng.choice((None, 0.0, 61.5))), None, None, None,
                     None, AgentState.OK, None) for _ in range(40)]
    columns = sort_columns(sort, rows)
    assert [sort_key(sort, row) for row in rows] == list(zip(*columns, strict=True))
    assert len({sort_key(sort, row)[0] for row in rows}) > 1 or sort is SortKey.NAME  # keys that differ
