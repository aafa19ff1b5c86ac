"""Frame time and memory of one refresh with many agents and models (no servers involved).

    python -m benchmarks.frame --agents 10000 --models 500
    python -m benchmarks.frame --agents 10000 --models 500 --over-budget 7000

Feeds the app fixed records for N agents (a day of sums each, then 5 minutes of rows at 2,000 calls/s
spread over them, a second at a time) through the same Feed interface the live sources use. Then, for
each frame, one second of rows goes to the session's loop (`session.call`, so the engine is touched only
on the session's thread, as in the app) and is measured in two parts on two threads:

- session thread: `ingest_ms` (`Engine.ingest` of the second's rows) and `snapshot_build_ms`
  (`session.publish`: `Engine.snapshot` and handing it over);
- UI loop: `draw_ms` (the app's `_show`: the widgets given the snapshot) and `draw_until_painted_ms`
  (from the start of `_show` to the end of the first screen refresh after it, `call_after_refresh`);
- `rows_until_painted_ms`: both, from handing the rows over to that painted frame.

Before issue 17 one figure, `render_snapshot`, was the snapshot build plus the draw, on the one loop.
Also the process's resident memory, and `frame_ms`: the snapshot build and the draw of each frame
added (median and p95), the figure issue 20's 30 ms is about.

Budgets: by default agent i's daily budget is $10 + i mod 50 against a day of $0.01-$99.99 drawn at
random, which leaves about two thirds of the agents over it (the count is in the output). With
`--over-budget N` the budgets are chosen instead: the first N agents get half their day's spend (a live
critical budget alert each, whose figure moves as they spend), the others twice it plus $10 (never
near 80 %), so the alert book holds a known number of alerts.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import math
import random
import resource
import statistics
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from costtop.config import OPTIONAL_COLUMNS, REQUIRED_COLUMNS, Settings
from costtop.engine.snapshot import Snapshot
from costtop.session import Session
from costtop.sources.records import (
    Baseline,
    CallRecord,
    DayAggregate,
    GatewayCounters,
    ReadQuality,
    RedisState,
    SpendHistory,
    SwitchChange,
    WriteResult,
)
from costtop.ui.app import CosttopApp

NOW = datetime.now(UTC).replace(microsecond=0)


class ManyAgentsFeed:
    read_only = True

    def __init__(self, agents: int, models: int, rate: float, over_budget: int | None = None) -> None:
        self.agents = [f"agent-{i:05d}" for i in range(agents)]
        self.models = [f"model-{i}" for i in range(models)]
        self.rate = rate
        self.rng = random.Random(1)
        self.key = 0
        # The day's spend per agent, drawn once so the budgets can be set against it.
        self.day_spend = [Decimal(self.rng.randrange(1, 10_000)) / 100 for _ in self.agents]
        if over_budget is None:
            self.budgets = {a: Decimal(10 + i % 50) for i, a in enumerate(self.agents)}
        else:
            self.budgets = {a: spend / 2 if i < over_budget else spend * 2 + 10
                            for i, (a, spend) in enumerate(zip(self.agents, self.day_spend, strict=True))}
        self.over_budget = sum(budget <= spend for budget, spend in zip(self.budgets.values(), self.day_spend,
                                                                           strict=True))

    async def read_redis(self) -> RedisState:
        return RedisState((), self.budgets, Decimal("5000"), Decimal("100000"))

    async def read_fallback(self) -> None:
        return None

    def reads_per_refresh(self) -> int:
        return 1  # each frame is handed its second of rows by the benchmark itself

    async def read_counters(self, day: str) -> GatewayCounters:
        return GatewayCounters(day, {}, None)

    async def connect_postgres(self) -> frozenset[str]:
        return frozenset((*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS))

    async def baseline(self, now: datetime) -> Baseline:
        day = now.strftime("%Y-%m-%d")
        days = tuple(DayAggregate(a, day, spend, 500, 480, 5, 10**6, 10**5)
                     for a, spend in zip(self.agents, self.day_spend, strict=True))
        return Baseline(day, days, Decimal(0), day[:7], (), ())

    async def new_rows(self, now: datetime | None = None) -> list[CallRecord]:
        rows = []
        now = now or datetime.now(UTC)
        for _ in range(int(self.rate)):
            self.key += 1
            rows.append(CallRecord(self.key, now, self.rng.choice(self.agents), "llm", self.rng.randrange(100, 8000),
                                   "p0", self.rng.choice(self.models), 1000, 100, 0, Decimal("0.0125"), "success"))
        return rows

    def read_quality(self) -> ReadQuality:
        return ReadQuality()

    async def spend_history(self, day: str) -> SpendHistory:
        """A week for every agent, so each frame also compares every agent with its usual day."""
        return SpendHistory(day, 7, tuple((a, d, Decimal(self.rng.randrange(1, 10_000)) / 100)
                                          for a in self.agents for d in range(7)))

    async def agent_traces(self, agent: str, since: datetime) -> list[object]:
        return []

    async def agent_steps(self, agent: str, since: datetime, traces: object = None) -> dict[str, list[object]]:
        return {}

    def audit_pending(self) -> int:
        return 0

    async def drain_audit(self) -> tuple[int, str | None]:
        return 0, None

    async def trace_steps(self, trace_id: str) -> list[object]:
        return []

    async def agent_models(self, agent: str, since: datetime) -> list[object]:
        return []

    async def agent_calls(self, agent: str) -> list[object]:
        return []

    async def write(self, change: SwitchChange) -> WriteResult:
        return WriteResult(False, "benchmark", False)

    async def close(self) -> None:
        return None


def current_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class TimedApp(CosttopApp):
    """The app, timing each draw of a snapshot (`_show`, on the UI's loop) and the frame painted after it."""

    def __init__(self, settings: Settings, session: Session) -> None:
        super().__init__(settings, session)
        self.draws: list[tuple[int, float, float]] = []  # (id of the snapshot, start, end), perf_counter
        self.painted: dict[int, float] = {}  # id of the snapshot -> end of the first frame painted after it

    def _show(self, snap: Snapshot) -> None:
        start = time.perf_counter()
        super()._show(snap)
        self.draws.append((id(snap), start, time.perf_counter()))
        self.call_after_refresh(lambda: self.painted.setdefault(id(snap), time.perf_counter()))


async def measure(agents: int, models: int, rate: float, frames: int,
                  over_budget: int | None = None) -> dict[str, object]:
    feed = ManyAgentsFeed(agents, models, rate, over_budget)
    settings = Settings(read_only=True, refresh=3600)
    app = TimedApp(settings, Session(settings, feed))  # type: ignore[arg-type]
    session = app.session
    async with app.run_test(size=(160, 50)) as pilot:
        while app.snapshot is None or len(app.snapshot.agents) < agents:
            await pilot.pause(0.05)

        # The engine is only touched on the session's loop (its thread), as the app's reads do.
        async def ingest(rows: list[CallRecord]) -> None:
            session.engine.ingest(rows)

        async def ingest_and_publish(rows: list[CallRecord]) -> tuple[float, float, Snapshot, int]:
            start = time.perf_counter()
            session.engine.ingest(rows)
            mid = time.perf_counter()
            snap = session.build()
            return mid - start, time.perf_counter() - mid, snap, session.published

        # Fill the 5-minute window a second at a time, as the live reader would.
        start = datetime.now(UTC) - timedelta(seconds=300)
        for second in range(300):
            await session.call(ingest, await feed.new_rows(start + timedelta(seconds=second)))
        await pilot.pause(0.5)
        ingests, builds, draws, to_frame, whole, frame = [], [], [], [], [], []
        superseded = 0
        while len(frame) < frames:
            rows = await feed.new_rows()
            t0 = time.perf_counter()
            ingest_s, build_s, snap, number = await session.call(ingest_and_publish, rows)
            deadline = time.perf_counter() + 60
            while id(snap) not in app.painted:
                # The session's own loops publish too (the gateway's counters every 10 s): one built after
                # this one and taken first means this one is never drawn. That frame is not counted.
                if session.taken > number and all(d[0] != id(snap) for d in app.draws):
                    break
                if time.perf_counter() > deadline:
                    raise RuntimeError("the snapshot was never drawn")
                await pilot.pause(0.005)
            if id(snap) not in app.painted:
                superseded += 1
                continue
            drawn = next(d for d in reversed(app.draws) if d[0] == id(snap))
            ingests.append(ingest_s)
            builds.append(build_s)
            draws.append(drawn[2] - drawn[1])
            frame.append(build_s + drawn[2] - drawn[1])
            to_frame.append(app.painted[id(snap)] - drawn[1])
            whole.append(app.painted[id(snap)] - t0)
        alerts = len(snap.alerts)
        gc.collect()
        rss_mb = current_rss_mb()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    def summary(values: list[float]) -> dict[str, float]:
        return {"median": round(statistics.median(values) * 1000, 1), "max": round(max(values) * 1000, 1)}

    def with_p95(values: list[float]) -> dict[str, float]:
        ranked = sorted(values)  # the nearest rank, as percentile_disc: a frame that was measured
        return {**summary(values), "p95": round(ranked[math.ceil(0.95 * len(ranked)) - 1] * 1000, 1)}

    return {
        "agents": agents, "models": models, "rate": rate,
        # Agents over their daily budget at the start (each one a budget alert), and the alerts at the end.
        "over_budget": feed.over_budget, "alerts": alerts,
        # Frames whose snapshot a newer one, published by the session's own loops, replaced before the
        # UI took it (not counted: never drawn).
        "superseded_frames": superseded,
        # The session's snapshot build and the UI's draw of it, added per frame.
        "frame_ms": with_p95(frame),
        # The session's thread: one second of rows into the engine, then the snapshot (`session.publish`).
        "ingest_ms": summary(ingests),
        "snapshot_build_ms": summary(builds),
        # The UI's loop: the widgets given the snapshot (`_show`), and from its start to the painted frame.
        "draw_ms": summary(draws),
        "draw_until_painted_ms": summary(to_frame),
        # Both: rows handed to the session -> the frame showing them painted.
        "rows_until_painted_ms": summary(whole),
        "rss_mb_after_frames": round(rss_mb, 1),
        "peak_rss_mb_including_generated_data": round(peak_mb, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agents", type=int, default=10_000)
    parser.add_argument("--models", type=int, default=500)
    parser.add_argument("--rate", type=float, default=2000.0)
    parser.add_argument("--frames", type=int, default=20)
    parser.add_argument("--over-budget", type=int, metavar="N",
                        help="the first N agents over their daily budget, the others well under it")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    result = asyncio.run(measure(args.agents, args.models, args.rate, args.frames, args.over_budget))
    print(json.dumps(result))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
