"""Database work per refresh against a naive dashboard, and start-up time, at 1M and 10M rows.

    python -m benchmarks.scale --rows 1000000 10000000

For each size: fill a fresh `tool_calls` with that many rows, written as by a gateway at --rate calls/s
(SQL generate_series, 200 agents, 20 models), then measure on the same data in the same run:
- costtop's per-refresh read (`PostgresReader.new_rows`) after one second of writes at 2,000 calls/s:
  time and rows read;
- the naive dashboard's refresh, the GROUP BY over today that a SQL panel or `watch psql` re-runs:
  time and rows it aggregates; and the ratio of the two times;
- start-up: `PostgresReader.connect` + `start_baseline` (the 5-minute window) and the engine's first
  snapshot: the first screen, live velocity with the day's figures marked unknown; then
  `finish_baseline` (the day's and month's sums, same snapshot) and the snapshot that completes it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

from costtop.config import Settings
from costtop.demo.servers import ServerPair
from costtop.engine.engine import Engine
from costtop.sources.postgres import PostgresReader
from costtop.sources.schema import init_db

AGENTS = 200
MODELS = 20
REFRESH_ROWS = 2000  # one second of writes at 2,000 calls/s
NAIVE_SQL = """
SELECT agent_id, sum(cost_usd) AS spend, count(*) AS calls, count(*) FILTER (WHERE status = 'error') AS errors,
       sum(cost_usd) FILTER (WHERE created_at > now() - interval '5 minutes') AS window_spend,
       percentile_disc(0.95) WITHIN GROUP (ORDER BY latency_ms) AS p95
FROM tool_calls WHERE created_at >= date_trunc('day', now() AT TIME ZONE 'utc') AT TIME ZONE 'utc'
GROUP BY agent_id
"""

FILL_SQL = f"""
INSERT INTO tool_calls (created_at, agent_id, tool_name, latency_ms, provider, model, tokens_in, tokens_out,
                        cached_tokens, cost_usd, status, trace_id)
SELECT $1::timestamptz - (random() * $4::double precision * interval '1 second'),
       'agent-' || (g % {AGENTS}), 'llm', 100 + (g % 5000), 'p' || (g % 3), 'model-' || (g % {MODELS}),
       1000 + g % 3000, 100 + g % 500, g % 700, round((random() * 0.05)::numeric, 6),
       CASE WHEN g % 37 = 0 THEN 'error' ELSE 'success' END, 't' || (g / 5)
FROM generate_series($2::bigint, $3::bigint) AS g
"""

RECENT_SQL = f"""
INSERT INTO tool_calls (created_at, agent_id, tool_name, latency_ms, provider, model, tokens_in, tokens_out,
                        cached_tokens, cost_usd, status)
SELECT now() - (random() * interval '1 second'), 'agent-' || (g % {AGENTS}), 'llm', 100 + (g % 5000), 'p0',
       'model-' || (g % {MODELS}), 1000, 100, 0, 0.001, 'success'
FROM generate_series(1, $1::int) AS g
"""


def summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {"median_ms": round(statistics.median(ordered) * 1000, 2),
            "max_ms": round(ordered[-1] * 1000, 2), "n": len(ordered)}


async def fill(url: str, rows: int, have: int, rate: float) -> None:
    """The table as a gateway at `rate` calls/s would have written it: `rows` calls over the last
    rows/rate seconds (10M rows at 2,000 calls/s: the last 83 minutes, all of them today)."""
    conn = await asyncpg.connect(url)
    try:
        now = datetime.now(UTC)
        chunk = 1_000_000
        span = rows / rate
        for start in range(have, rows, chunk):
            await conn.execute(FILL_SQL, now, start, min(rows, start + chunk) - 1, span, timeout=None)
        await conn.execute("VACUUM ANALYZE tool_calls", timeout=None)
    finally:
        await conn.close()


async def measure(url: str, rows: int) -> dict[str, object]:
    settings = Settings(database_url=url, redis_url="redis://127.0.0.1:1/0", timeout_seconds=60)
    reader = PostgresReader(settings)
    start = time.perf_counter()
    await reader.connect()
    first = await reader.start_baseline(datetime.now(UTC))
    assert reader.columns is not None
    engine = Engine(columns=reader.columns.present)
    engine.load(first)
    engine.snapshot(datetime.now(UTC), None)
    first_screen_s = time.perf_counter() - start  # the window live, the day's figures still unknown
    engine.complete(await reader.finish_baseline())
    engine.snapshot(datetime.now(UTC), None)
    complete_s = time.perf_counter() - start

    conn = await asyncpg.connect(url)
    costtop_times, costtop_rows, naive_times = [], [], []
    naive_rows = 0
    try:
        for _ in range(10):
            await conn.execute(RECENT_SQL, REFRESH_ROWS)
            t0 = time.perf_counter()
            new = await reader.new_rows()
            costtop_times.append(time.perf_counter() - t0)
            costtop_rows.append(len(new))
            engine.ingest(new)
        for _ in range(3):
            t0 = time.perf_counter()
            await conn.fetch(NAIVE_SQL, timeout=None)
            naive_times.append(time.perf_counter() - t0)
        naive_rows = await conn.fetchval("SELECT count(*) FROM tool_calls WHERE created_at >= "
                                         "date_trunc('day', now() AT TIME ZONE 'utc') AT TIME ZONE 'utc'")
    finally:
        await conn.close()
        await reader.close()
    costtop = summary(costtop_times)
    naive = summary(naive_times)
    return {
        "rows": rows,
        "startup_first_screen_ms": round(first_screen_s * 1000, 1),
        "startup_complete_ms": round(complete_s * 1000, 1),
        "costtop_refresh": {**costtop, "rows_read_median": statistics.median(costtop_rows)},
        "naive_refresh": {**naive, "rows_aggregated": naive_rows},
        "naive_over_costtop": round(naive["median_ms"] / costtop["median_ms"], 1),
    }


async def run(sizes: list[int], out: Path, rate: float) -> list[dict[str, object]]:
    pair = ServerPair.start(prefix="costtop-scale-")
    results = []
    try:
        conn = await asyncpg.connect(pair.postgres.url)
        await init_db(conn, Settings().tables)
        await conn.close()
        have = 0
        for rows in sorted(sizes):
            t0 = time.perf_counter()
            await fill(pair.postgres.url, rows, have, rate)
            have = rows
            print(f"filled {rows:,} rows in {time.perf_counter() - t0:.0f} s", flush=True)
            result = await measure(pair.postgres.url, rows)
            print(json.dumps(result), flush=True)
            results.append(result)
    finally:
        pair.stop()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--rate", type=float, default=2000.0, help="the gateway's calls/s the table reflects")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/scale.json"))
    args = parser.parse_args()
    asyncio.run(run(args.rows, args.out, args.rate))


if __name__ == "__main__":
    main()
