"""The engine's cost per row read: `Engine.ingest` over rows as the live reads hand them over.

    python -m benchmarks.ingest [--rows 200000] [--agents 200] [--batch 2000] [--repeats 5]

No servers and no screen: an engine (all columns) is fed `--rows` rows, `--batch` at a time (one second
of reads at 2,000 calls/s), stamped one second apart per batch and ending now, over `--agents` agents and
20 models. Prints the best and median time per row over `--repeats` runs (each on a fresh engine), and
the calls per second one core could ingest at that cost. Run it on two commits to pair them.
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

from costtop.config import OPTIONAL_COLUMNS, REQUIRED_COLUMNS
from costtop.engine.engine import Engine
from costtop.sources.records import CallRecord


def batches(rows: int, agents: int, batch: int, now: datetime) -> list[list[CallRecord]]:
    rng = random.Random(3)
    names = [f"agent-{i:04d}" for i in range(agents)]
    models = [f"model-{i}" for i in range(20)]
    out: list[list[CallRecord]] = []
    count = (rows + batch - 1) // batch
    for b in range(count):
        second = now - timedelta(seconds=count - b)
        out.append([
            CallRecord(key=b * batch + i, created_at=second + timedelta(microseconds=rng.randrange(1_000_000)),
                       agent_id=rng.choice(names), tool_name="llm", latency_ms=rng.randrange(50, 5000),
                       provider=f"provider-{rng.randrange(4)}", model=rng.choice(models),
                       tokens_in=rng.randrange(10, 5000), tokens_out=rng.randrange(1, 800), cached_tokens=0,
                       cost_usd=Decimal(rng.randrange(1, 5000)) / 100000,
                       status="error" if rng.random() < 0.03 else "success", trace_id=f"t{rng.randrange(5000)}")
            for i in range(min(batch, rows - b * batch))])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--agents", type=int, default=200)
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    now = datetime.now(UTC)
    data = batches(args.rows, args.agents, args.batch, now)
    per_row: list[float] = []
    for _ in range(args.repeats):
        engine = Engine(columns=(*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS))
        started = time.perf_counter()
        for rows in data:
            engine.ingest(rows)
        per_row.append((time.perf_counter() - started) / args.rows)
    best, median = min(per_row), statistics.median(per_row)
    print(f"ingest: best {best * 1e6:.2f} us/row, median {median * 1e6:.2f} us/row "
          f"({1 / median:,.0f} rows/s on one core), {args.rows:,} rows over {args.agents} agents")
    out = args.out or Path("benchmarks/results") / f"ingest-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"rows": args.rows, "agents": args.agents, "batch": args.batch,
                               "per_row_seconds": per_row, "best": best, "median": median}, indent=1))
    print(f"-> {out}")


if __name__ == "__main__":
    main()
