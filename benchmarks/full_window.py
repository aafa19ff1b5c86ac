"""The engine's snapshot once its 5-minute window is full: every build then also expires a second of calls.

    python -m benchmarks.full_window [--rate 10000] [--agents 200] [--seconds 330] [--out FILE]

No servers and no screen: an engine (all columns) is fed `--rate` rows per simulated second over
`--agents` agents (20 models, 4 providers, latencies 50-5,000 ms, 20,000 traces), one batch and one
snapshot per second, for `--seconds` seconds (past 300 the window is full and each snapshot subtracts
the second that left it). Prints the median and the largest ingest of a second's rows and build of a
snapshot, before and after the window filled. A run takes `--seconds` times the ingest of a second's
rows (about 2 minutes at the defaults on a 2-core machine). Run it on two commits to pair them.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from costtop.collector import space_full_collections
from costtop.config import OPTIONAL_COLUMNS, REQUIRED_COLUMNS, Thresholds
from costtop.engine.engine import Engine
from costtop.engine.windows import VELOCITY_SECONDS
from costtop.sources.records import Baseline, CallRecord, DayAggregate, RedisState, SourceStatus


def summary(values: list[float]) -> dict[str, float]:
    return {"median_ms": round(1000 * statistics.median(values), 1), "max_ms": round(1000 * max(values), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=int, default=10_000, help="rows per simulated second")
    parser.add_argument("--agents", type=int, default=200)
    parser.add_argument("--seconds", type=int, default=330, help="simulated seconds (past 300 the window is full)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    space_full_collections()  # as `costtop` does
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=args.seconds + 1)
    day = start.strftime("%Y-%m-%d")
    agents = [f"agent-{i:05d}" for i in range(args.agents)]
    models = [f"model-{i}" for i in range(20)]
    engine = Engine(Thresholds(), columns=(*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS))
    engine.load(Baseline(day, tuple(DayAggregate(a, day, Decimal(1), 10, 0, 0, 1000, 0) for a in agents),
                         Decimal(0), day[:7], (), ()), None, start)
    redis = RedisState((), {a: Decimal(50) for a in agents}, None, None)
    sources = [SourceStatus("Redis", True, start.timestamp()), SourceStatus("Postgres", True, start.timestamp())]
    rng = random.Random(7)
    key = 0
    ingest: list[tuple[int, float]] = []
    build: list[tuple[int, float]] = []
    for second in range(args.seconds):
        at = start + timedelta(seconds=second)
        rows = []
        for _ in range(args.rate):
            key += 1
            rows.append(CallRecord(key, at + timedelta(microseconds=rng.randrange(1_000_000)), rng.choice(agents),
                                   "llm", rng.randrange(50, 5000), f"provider-{rng.randrange(4)}",
                                   rng.choice(models), 100, 10, 0, Decimal(rng.randrange(1, 5000)) / 100_000,
                                   "success", trace_id=f"t{rng.randrange(20_000)}"))
        began = time.perf_counter()
        engine.ingest(rows)
        ingested = time.perf_counter()
        engine.snapshot(at + timedelta(seconds=1), redis, sources)
        ingest.append((second, ingested - began))
        build.append((second, time.perf_counter() - ingested))
    filling = [s for second, s in build if 10 <= second < VELOCITY_SECONDS]
    full = [s for second, s in build if second >= VELOCITY_SECONDS + 5]
    result = {"rate": args.rate, "agents": args.agents, "seconds": args.seconds,
              "ingest_per_second": summary([s for _, s in ingest]),
              "build_while_filling": summary(filling) if filling else None,
              "build_window_full": summary(full) if full else None}
    print(json.dumps(result, indent=1))
    out = args.out or Path("benchmarks/results") / f"full_window-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(f"-> {out}")


if __name__ == "__main__":
    main()
