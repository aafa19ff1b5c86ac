"""The complete first screen at a day's size, with and without the rollup (issue 19).

    python -m benchmarks.startup --rows 10000000 30000000 [--yesterday 10000000] [--database-url URL]

For each size: a database with `rows` calls today, written in time order as a gateway writes them (ids
rise with created_at; 200 agents, 3 providers, 20 models, traces of 5 steps), and `--yesterday` calls
the day before (the 24-hour chart reaches into it; the week, the month and a past day's report read
it). Then, on the same data in the same run:
- `raw`: costtop's start-up with no rollup: `PostgresReader.connect` + `start_baseline` +
  `finish_baseline` + the engine's complete snapshot, and the bytes Postgres wrote to temporary files
  meanwhile (a sort that spills shows there);
- `job`: `costtop rollup` filling the rollup from nothing (of which: working out yesterday's peaks and
  costliest traces), then a run with nothing new (its check of the last hours' counts);
- `rollup`: the same start-up reading the buckets, five times: median and maximum;
- history from the buckets: the anomalies' week (`daily_spend`), and yesterday's report
  (`day_records`: its peaks and costliest traces from the job's summary of the day), with the raw read
  of each beside it once;
- the gateway's added cost per 2,000-row batch: `Gateway.record` with and without `rollup=True`,
  alternating, on a table of its own.
The slope of the rollup's start-up between the sizes, per million rows, extrapolates a day of 173M rows.
Without --database-url the benchmark starts its own PostgreSQL and removes it at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import asyncpg

from costtop.config import Settings, TableNames
from costtop.demo.servers import PostgresServer, RedisServer
from costtop.engine.engine import Engine
from costtop.sources.postgres import PostgresReader
from costtop.sources.records import RedisState
from costtop.sources.schema import init_db

AGENTS, PROVIDERS, MODELS = 200, 3, 20
NO_REDIS = RedisState(switches=(), budgets={}, global_day_budget=None, global_month_budget=None)
# Rows g = first..last spread evenly over [$1, $1 + $4 seconds): ids rise with time, as a gateway writes.
FILL_SQL = f"""
INSERT INTO tool_calls (created_at, agent_id, tool_name, latency_ms, provider, model, tokens_in, tokens_out,
                        cached_tokens, cost_usd, status, trace_id)
SELECT $1::timestamptz + ((g - $2::bigint) * $4::double precision / $5::double precision) * interval '1 second',
       'agent-' || (g % {AGENTS}), 'llm', 100 + (g % 5000), 'p' || (g % {PROVIDERS}), 'model-' || (g % {MODELS}),
       1000 + g % 3000, 100 + g % 500, g % 700, round(((g % 997) * 0.00005)::numeric, 6),
       CASE WHEN g % 37 = 0 THEN 'error' ELSE 'success' END, 't' || (g / 5)
FROM generate_series($2::bigint, $3::bigint) AS g
"""
CHUNK = 2_000_000


def commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


async def fill(conn: asyncpg.Connection, start: datetime, seconds: float, rows: int, first_id: int) -> None:
    for a in range(0, rows, CHUNK):
        b = min(rows, a + CHUNK)
        offset = start + timedelta(seconds=seconds * a / rows)
        await conn.execute(FILL_SQL, offset, first_id + a, first_id + b - 1, seconds * (b - a) / rows, b - a,
                           timeout=None)


async def database(admin_url: str, name: str, today_rows: int, yesterday_rows: int, now: datetime) -> str:
    """A database of that name holding exactly these rows, filled if it does not already."""
    admin = await asyncpg.connect(admin_url)
    try:
        if not await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = admin_url.rsplit("/", 1)[0] + "/" + name
    conn = await asyncpg.connect(url)
    try:
        await init_db(conn, TableNames())
        day = now.replace(hour=0, minute=0, second=0, microsecond=0)
        have = await conn.fetchval("SELECT count(*) FILTER (WHERE created_at >= $1), count(*) FROM tool_calls", day)
        if have != today_rows or await conn.fetchval("SELECT count(*) FROM tool_calls") != today_rows + yesterday_rows:
            await conn.execute("TRUNCATE tool_calls RESTART IDENTITY")
            await conn.execute("DROP SCHEMA IF EXISTS costtop_rollup CASCADE")
            started = time.perf_counter()
            await fill(conn, day - timedelta(days=1), 86_400, yesterday_rows, 1)
            await fill(conn, day, (now - day).total_seconds() - 60, today_rows, yesterday_rows + 1)
            await conn.execute("VACUUM ANALYZE tool_calls", timeout=None)
            print(f"filled {name}: {today_rows:,} today, {yesterday_rows:,} yesterday in "
                  f"{time.perf_counter() - started:.0f} s", flush=True)
        await init_db(conn, TableNames())  # the rollup's schema too
    finally:
        await conn.close()
    return url


async def temp_bytes(url: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        await asyncio.sleep(0.6)  # the statistics collector's flush
        return int(await conn.fetchval("SELECT temp_bytes FROM pg_stat_database WHERE datname = current_database()"))
    finally:
        await conn.close()


def no_rollup() -> TableNames:
    """Table names whose rollup schema is not there; on a commit before the rollup, the defaults."""
    try:
        return TableNames(rollup_schema="costtop_benchmark_no_rollup")
    except ValueError:  # pydantic's ValidationError: no such setting before issue 19
        return TableNames()


async def first_screen(url: str, rollup: bool) -> dict[str, float]:
    """Start-up to the complete first snapshot; `rollup=False` reads a rollup schema that is not there."""
    tables = TableNames() if rollup else no_rollup()
    settings = Settings(database_url=url, tables=tables, timeout_seconds=600)
    spilled = await temp_bytes(url)
    started = time.perf_counter()
    reader = PostgresReader(settings)
    try:
        await reader.connect()
        now = datetime.now(UTC)
        first = await reader.start_baseline(now)
        window = time.perf_counter() - started
        assert reader.columns is not None
        engine = Engine(columns=reader.columns.present)
        engine.load(first)
        engine.complete(await reader.finish_baseline())
        snap = engine.snapshot(datetime.now(UTC), NO_REDIS)
        total = time.perf_counter() - started
        note = getattr(reader, "rollup_note", None)
    finally:
        await reader.close()
    return {"window_ms": ms(window), "complete_ms": ms(total), "agents": len(snap.agents),
            "spilled_mib": round((await temp_bytes(url) - spilled) / 2**20, 1), "note": note}


async def history(url: str, rollup: bool, day: str) -> dict[str, float]:
    """The anomalies' week, the month to date as it stood at the end of `day`, and `day`'s report, whole
    (from the buckets and the job's day summary, or from the rows); without the rollup, also its
    costliest-traces read alone (the scan the summary saves)."""
    from costtop.rollup.days import traces_sql
    from costtop.sources.day_report import READ_TIMEOUT, day_records
    from costtop.sources.history import daily_spend
    from costtop.sources.postgres import fetch

    tables = TableNames() if rollup else no_rollup()
    settings = Settings(database_url=url, tables=tables, timeout_seconds=600)
    reader = PostgresReader(settings)
    start = datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=UTC)
    out: dict[str, float] = {}
    try:
        await reader.connect()
        today = datetime.now(UTC).strftime("%Y-%m-%d")
        started = time.perf_counter()
        await daily_spend(reader, today)
        out["week_ms"] = ms(time.perf_counter() - started)
        started = time.perf_counter()
        await reader.read_layered(start.replace(day=1), start + timedelta(days=1), "day", READ_TIMEOUT, by=())
        out["month_ms"] = ms(time.perf_counter() - started)
        started = time.perf_counter()
        await day_records(reader, settings, day)
        out["report_ms"] = ms(time.perf_counter() - started)
        if not rollup:
            started = time.perf_counter()
            await fetch(reader, traces_sql, start, start + timedelta(days=1), timeout=READ_TIMEOUT)
            out["report_traces_ms"] = ms(time.perf_counter() - started)
    finally:
        await reader.close()
    return out


async def gateway_cost(admin_url: str, batches: int) -> dict[str, object]:
    """Median ms of `Gateway.record` per 2,000-row batch, with and without the rollup, alternating."""
    from redis.asyncio import Redis

    from costtop.gateway import Call, Gateway

    url = await database(admin_url, "startup_gateway", 0, 0, datetime.now(UTC))
    conn = await asyncpg.connect(url)
    try:  # a gateway that starts keeping the rollup now: its hours are summed by the job, not per batch
        await conn.execute("TRUNCATE tool_calls; DROP SCHEMA IF EXISTS costtop_rollup CASCADE")
        await init_db(conn, TableNames())
    finally:
        await conn.close()
    redis_server = RedisServer(Path(tempfile.mkdtemp(prefix="costtop-startup-redis-"))).start()
    pool = await asyncpg.create_pool(url, min_size=2, max_size=2)
    redis = Redis.from_url(redis_server.url)
    times: dict[bool, list[float]] = {False: [], True: []}
    try:
        gateways = {False: Gateway(redis, pool), True: Gateway(redis, pool, rollup=True)}
        for i in range(batches * 2):
            keep = i % 2 == 1
            now = datetime.now(UTC)
            calls = [Call(f"agent-{(i * 2000 + j) % AGENTS}", "llm", 100 + j % 900, provider=f"p{j % PROVIDERS}",
                          model=f"model-{j % MODELS}", tokens_in=1000, tokens_out=100, cached_tokens=j % 7,
                          cost_usd=Decimal("0.0012"), trace_id=f"t{i}-{j // 5}",
                          created_at=now - timedelta(milliseconds=j % 1000)) for j in range(2000)]
            started = time.perf_counter()
            await gateways[keep].record(calls)
            if i >= 4:  # the first batches warm the connections and register the rollup
                times[keep].append(time.perf_counter() - started)
        assert gateways[True].rollup_error is None, gateways[True].rollup_error
    finally:
        await redis.aclose()
        await pool.close()
        redis_server.stop()
    plain, kept = statistics.median(times[False]), statistics.median(times[True])
    return {"batches": len(times[True]), "plain_ms": ms(plain), "with_rollup_ms": ms(kept),
            "added_ms": ms(kept - plain)}


async def run(args: argparse.Namespace) -> dict[str, object]:
    own: PostgresServer | None = None
    admin_url = args.database_url
    if admin_url is None:
        own = PostgresServer(Path(tempfile.mkdtemp(prefix="costtop-startup-"))).start()
        admin_url = own.url
    out: dict[str, object] = {"commit": commit(), "sizes": []}
    try:
        now = datetime.now(UTC)
        yesterday = (now - timedelta(days=1)).strftime("%Y-%m-%d")
        for rows in args.rows:
            url = await database(admin_url, f"startup_{rows}", rows, args.yesterday, now)
            result: dict[str, object] = {"rows_today": rows, "rows_yesterday": args.yesterday}
            result["raw"] = [await first_screen(url, rollup=False) for _ in range(args.raw_runs)]
            print(json.dumps({"rows": rows, "raw": result["raw"]}), flush=True)
            if args.raw_only:
                out["sizes"].append(result)  # type: ignore[union-attr]
                continue
            from costtop.rollup.job import run_rollup

            conn = await asyncpg.connect(url)
            await conn.execute("DROP SCHEMA IF EXISTS costtop_rollup CASCADE")
            await init_db(conn, TableNames())
            await conn.close()
            settings = Settings(database_url=url)
            started = time.perf_counter()
            filled = await run_rollup(settings)
            result["job_fill_s"] = round(time.perf_counter() - started, 1)
            result["job_rows"] = filled.rows
            result["job_days_s"] = filled.days_seconds  # of the fill: the closed days' peaks and traces
            started = time.perf_counter()
            await run_rollup(settings)
            result["job_next_run_s"] = round(time.perf_counter() - started, 1)
            runs = [await first_screen(url, rollup=True) for _ in range(5)]
            result["rollup"] = runs
            result["rollup_median_ms"] = statistics.median(r["complete_ms"] for r in runs)
            result["rollup_max_ms"] = max(r["complete_ms"] for r in runs)
            if args.yesterday:
                result["history_rollup"] = [await history(url, True, yesterday) for _ in range(3)]
                if not args.skip_raw_history:
                    result["history_raw"] = await history(url, False, yesterday)
            print(json.dumps(result), flush=True)
            out["sizes"].append(result)  # type: ignore[union-attr]
        sizes = out["sizes"]
        if len(sizes) >= 2 and not args.raw_only:  # type: ignore[arg-type]
            a, b = sizes[0], sizes[-1]  # type: ignore[index]
            slope = (b["rollup_median_ms"] - a["rollup_median_ms"]) / ((b["rows_today"] - a["rows_today"]) / 1e6)
            out["rollup_ms_per_million_rows"] = round(slope, 2)
            out["rollup_173m_ms_extrapolated"] = round(b["rollup_median_ms"] + slope * (173 - b["rows_today"] / 1e6), 1)
        if args.gateway_batches and not args.raw_only:
            out["gateway"] = await gateway_cost(admin_url, args.gateway_batches)
            print(json.dumps(out["gateway"]), flush=True)
    finally:
        if own is not None:
            own.stop()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2, default=str) + "\n")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000_000, 30_000_000], help="calls today, per size")
    parser.add_argument("--yesterday", type=int, default=10_000_000, help="calls the day before (default 10M)")
    parser.add_argument("--raw-runs", type=int, default=2, help="start-ups without the rollup per size (slow)")
    parser.add_argument("--skip-raw-history", action="store_true", help="do not time the week and report raw")
    parser.add_argument("--gateway-batches", type=int, default=50, help="2,000-row batches each way (0: skip)")
    parser.add_argument("--raw-only", action="store_true",
                        help="only start-up without a rollup: runs on a commit from before it too (the baseline: "
                             "PYTHONPATH=<that commit's src>:. python -m benchmarks.startup --raw-only ...)")
    parser.add_argument("--database-url", help="an existing server to build the databases on (kept afterwards)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/startup.json"))
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args)), indent=2, default=str))


if __name__ == "__main__":
    main()
