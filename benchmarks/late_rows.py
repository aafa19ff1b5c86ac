"""What catching late rows costs, at 2,000 calls/s with the default lateness horizon (5 minutes).

    python -m benchmarks.late_rows [--rate 2000] [--seconds 60] [--horizon 300]

A `tool_calls` without an integer id (the hard case: reads go by created_at) is filled with the
horizon's worth of rows at --rate, then a writer inserts --rate rows a second, a fifth of them stamped
10-60 s before their commit, as a batching gateway does (LiteLLM flushes its spend log every 10-60 s).
The reader runs as the app does (one `new_rows` a second), twice over the same load:
- A: with the late-row check off: only the overlap re-read (the rows committed later are lost);
- B: with it on (every 10 s: the horizon's per-second counts against the rows taken, and a re-read of
  the seconds that differ).
For each: costtop's CPU (process time; the writer's work is server-side SQL, so it costs the client
almost nothing), the database's CPU for costtop's connections (utime + stime of their backends, read
from /proc), and, for B, the wall time spent in the check itself. The cost of catching late rows is B
minus A, per second of running. At the end of B every figure must equal SQL: the rows counted are
compared with `count(*)` of the day.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

from benchmarks.scale import fill
from costtop.config import Settings
from costtop.demo.servers import ServerPair
from costtop.engine.engine import Engine
from costtop.sources.postgres import PostgresReader
from costtop.sources.schema import init_db

TICK = os.sysconf("SC_CLK_TCK")
LATE_SHARE = 0.2

WRITE_SQL = """
INSERT INTO tool_calls (created_at, agent_id, tool_name, latency_ms, provider, model, tokens_in, tokens_out,
                        cached_tokens, cost_usd, status)
SELECT CASE WHEN g <= $2 THEN now() - (10 + random() * 50) * interval '1 second'
            ELSE now() - random() * interval '1 second' END,
       'agent-' || (g % 200), 'llm', 100 + (g % 5000), 'p' || (g % 3), 'model-' || (g % 20),
       1000, 100, 0, round((random() * 0.05)::numeric, 6), 'success'
FROM generate_series(1, $1::int) AS g
"""


async def backend_cpu(conn: asyncpg.Connection) -> float:
    """Seconds of CPU used so far by every backend serving costtop (application_name 'costtop')."""
    pids = [r["pid"] for r in await conn.fetch(
        "SELECT pid FROM pg_stat_activity WHERE application_name = 'costtop'")]
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / TICK


async def phase(url: str, rate: int, seconds: int, horizon: float, check: bool) -> dict[str, float | int]:
    settings = Settings(database_url=url, redis_url="redis://127.0.0.1:1/0", timeout_seconds=60,
                        max_lateness=horizon)
    reader = PostgresReader(settings)
    await reader.connect()
    assert reader.columns is not None
    engine = Engine(columns=reader.columns.present)
    engine.load(await reader.baseline(datetime.now(UTC)))
    if not check:
        reader.late_check_seconds = float("inf")
    reader._next_check = time.monotonic() + (reader.late_check_seconds if check else float("inf"))
    spent = {"wall": 0.0, "cpu": 0.0, "checks": 0}
    inner = reader._read_late

    async def timed(now: datetime) -> list:
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            return await inner(now)
        finally:
            spent["wall"] += time.perf_counter() - wall
            spent["cpu"] += time.process_time() - cpu
            spent["checks"] += 1

    reader._read_late = timed  # type: ignore[method-assign]
    writer = await asyncpg.connect(url)
    admin = await asyncpg.connect(url)
    try:
        db0, cpu0, t0 = await backend_cpu(admin), time.process_time(), time.perf_counter()
        for i in range(seconds):
            await writer.execute(WRITE_SQL, rate, int(rate * LATE_SHARE))
            engine.ingest(await reader.new_rows())
            await asyncio.sleep(max(0.0, t0 + i + 1 - time.perf_counter()))
        elapsed = time.perf_counter() - t0
        db, cpu = await backend_cpu(admin) - db0, time.process_time() - cpu0
        in_loop = dict(spent)
        # With the check on, one more check finds what came since; off, what it lost stays lost.
        if check:
            reader._next_check = 0.0
        engine.ingest(await reader.new_rows())
        now = datetime.now(UTC)
        snap = engine.snapshot(now, None)
        counted = sum(a.calls_today or 0 for a in snap.agents)
        day_start = now.replace(hour=0, minute=0, second=0, microsecond=0)
        want = await admin.fetchval("SELECT count(*) FROM tool_calls WHERE created_at >= $1 AND created_at <= $2",
                                    day_start, now)
    finally:
        await writer.close()
        await admin.close()
        await reader.close()
    return {"seconds": round(elapsed, 1), "costtop_cpu_s": round(cpu, 3), "db_cpu_s": round(db, 3),
            "check_wall_s": round(in_loop["wall"], 3), "check_cpu_s": round(in_loop["cpu"], 3),
            "checks": in_loop["checks"], "rows_counted": counted, "rows_in_sql": want,
            "late_rows_caught": reader.read_quality().late_rows}


async def run(rate: int, seconds: int, horizon: float, out: Path) -> dict[str, object]:
    pair = ServerPair.start(prefix="costtop-late-")
    try:
        conn = await asyncpg.connect(pair.postgres.url)
        await init_db(conn, Settings().tables)
        await conn.execute("ALTER TABLE tool_calls DROP COLUMN id")
        await conn.close()
        await fill(pair.postgres.url, int(rate * (horizon + 60)), 0, rate)
        off = await phase(pair.postgres.url, rate, seconds, horizon, check=False)
        print("A (check off):", json.dumps(off), flush=True)
        on = await phase(pair.postgres.url, rate, seconds, horizon, check=True)
        print("B (check on): ", json.dumps(on), flush=True)
    finally:
        pair.stop()
    per_second = {
        "costtop_cpu_share_of_one_core": round((on["costtop_cpu_s"] - off["costtop_cpu_s"]) / on["seconds"], 4),
        "db_cpu_ms_per_s": round((on["db_cpu_s"] - off["db_cpu_s"]) * 1000 / on["seconds"], 1),
        "check_wall_ms_per_s": round(on["check_wall_s"] * 1000 / on["seconds"], 1),
        "check_cpu_share_of_one_core": round(on["check_cpu_s"] / on["seconds"], 4),
    }
    result = {"rate": rate, "horizon_s": horizon, "late_share": LATE_SHARE, "off": off, "on": on,
              "cost_of_catching_late_rows": per_second}
    print(json.dumps(per_second), flush=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=int, default=2000)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--horizon", type=float, default=300.0)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/late_rows.json"))
    args = parser.parse_args()
    asyncio.run(run(args.rate, args.seconds, args.horizon, args.out))


if __name__ == "__main__":
    main()
