"""The day anomaly's one read: each agent's spend per UTC day over the week before today.

    python -m benchmarks.history --rows 1000000 10000000

For each size: `rows` calls spread evenly over the 7 whole days before today (200 agents, as in
benchmarks/scale.py), then `daily_spend` three times; the median and the maximum. costtop runs it in
the background once a UTC day, never per refresh, so this is a start-up and midnight cost.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg

from costtop.config import Settings
from costtop.demo.servers import ServerPair
from costtop.sources.history import daily_spend
from costtop.sources.postgres import PostgresReader
from costtop.sources.schema import init_db

AGENTS = 200
FILL_SQL = f"""
INSERT INTO tool_calls (created_at, agent_id, tool_name, latency_ms, model, cost_usd, status)
SELECT $1::timestamptz + (random() * interval '7 days'), 'agent-' || (g % {AGENTS}), 'llm', 100 + (g % 5000),
       'model-' || (g % 20), round((random() * 0.05)::numeric, 6), 'success'
FROM generate_series($2::bigint, $3::bigint) AS g
"""


async def run(sizes: list[int], out: Path) -> list[dict[str, object]]:
    pair = ServerPair.start(prefix="costtop-history-")
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    results: list[dict[str, object]] = []
    try:
        conn = await asyncpg.connect(pair.postgres.url)
        await init_db(conn, Settings().tables)
        have = 0
        for rows in sorted(sizes):
            for start in range(have, rows, 1_000_000):
                await conn.execute(FILL_SQL, today - timedelta(days=7), start, min(rows, start + 1_000_000) - 1,
                                   timeout=None)
            await conn.execute("VACUUM ANALYZE tool_calls", timeout=None)
            have = rows
            reader = PostgresReader(Settings(database_url=pair.postgres.url, timeout_seconds=60))
            times = []
            try:
                for _ in range(3):
                    t0 = time.perf_counter()
                    history = await daily_spend(reader, today.strftime("%Y-%m-%d"))
                    times.append(time.perf_counter() - t0)
            finally:
                await reader.close()
            result = {"rows_in_week": rows, "groups": len(history.sums),
                      "median_ms": round(statistics.median(times) * 1000, 1), "max_ms": round(max(times) * 1000, 1)}
            print(json.dumps(result), flush=True)
            results.append(result)
        await conn.close()
    finally:
        pair.stop()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/history.json"))
    args = parser.parse_args()
    asyncio.run(run(args.rows, args.out))


if __name__ == "__main__":
    main()
