"""Many costtops watching one database: the load each one adds to PostgreSQL and Redis.

    python -m benchmarks.many [--costtops 20] [--rate 500] [--agents 200] [--seconds 30] [--quiet 20]
                              [--backfill 330] [--out FILE]

Fresh servers (`ServerPair`), schema and budgets, `--backfill` seconds of history at `--rate`, then the
load generator (benchmarks/load.py) writing `--rate` calls/s through the gateway module in a child
process, as benchmarks/live.py does. Then:

1. `--quiet` seconds with the load alone: PostgreSQL's CPU (the postmaster and all its children, utime +
   stime from /proc) and redis-server's, per second: what the gateway alone costs them;
2. `--costtops` costtop sessions, each in a process of its own (`Session.live`, the app's whole read
   path: rows by id several times a refresh, switches, counters, history, a standby's lag when there is
   one; the UI adds no query, so none runs here), started together. Start-up: the CPU their backends
   (`application_name` 'costtop') used until every session showed its first live row, per costtop;
3. `--seconds` of steady state with the load and every costtop: PostgreSQL's and Redis's CPU per second
   again, and the CPU of costtop's own backends.

Reported per costtop per second of running: its backends' CPU (the direct figure), and the rise of the
servers' whole CPU over the quiet phase divided by the number of costtops (which also counts what their
reads cost the server's shared processes). Each costtop's own CPU and RSS are reported too. The two
cores are shared by everything here (20 Python processes, the load generator, both servers): the
figures are those of a busy machine. Results in benchmarks/results/many-<timestamp>.json. Not part of
pytest.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

from benchmarks import frozen
from benchmarks.live import cpu_seconds, family, family_cpu, status_kb, stop_process
from benchmarks.load import Fleet, backfill, set_budgets
from costtop.config import Settings
from costtop.demo.run import prepare
from costtop.demo.servers import ServerPair

RESULTS = Path(__file__).resolve().parent / "results"


# -- one costtop (a child process) ---------------------------------------------------------------------------

async def watch(settings: Settings, seconds: float, ready: Path) -> None:
    """One costtop's session for `seconds`; `ready` is written once a snapshot holds the day's sums and a
    live row (what its screen would show complete)."""
    from costtop.session import Session

    session = Session.live(settings)
    runner = asyncio.create_task(session.run())
    started = time.monotonic()
    marked = False
    while time.monotonic() - started < seconds:
        await asyncio.sleep(0.1)
        snap = session.latest
        if not marked and snap is not None and not snap.header.totals_pending \
                and snap.header.newest_row_age is not None and snap.header.newest_row_age < 5:
            ready.write_text(json.dumps({"t": time.time()}))
            marked = True
    session.stop()
    await runner


# -- the run -------------------------------------------------------------------------------------------------

def server_cpu(pg_root: int, redis_pid: int) -> tuple[float, float]:
    """CPU seconds so far of PostgreSQL (the postmaster and its children now) and of redis-server."""
    return sum(family_cpu(family(pg_root)).values()), cpu_seconds(redis_pid) or 0.0


async def costtop_backends(url: str) -> list[int]:
    conn = await asyncpg.connect(url)
    try:
        return [r["pid"] for r in await conn.fetch(
            "SELECT pid FROM pg_stat_activity WHERE application_name LIKE 'costtop%' "
            "AND application_name NOT LIKE 'costtop-bench%'")]
    finally:
        await conn.close()


def measure(pair: ServerPair, seconds: float) -> dict[str, float]:
    assert pair.postgres.proc is not None and pair.redis.proc is not None
    pg_root, redis_pid = pair.postgres.proc.pid, pair.redis.proc.pid
    backends = asyncio.run(costtop_backends(pair.postgres.url))
    pg0, redis0 = server_cpu(pg_root, redis_pid)
    b0 = family_cpu(backends)
    t0 = time.monotonic()
    time.sleep(seconds)
    elapsed = time.monotonic() - t0
    pg1, redis1 = server_cpu(pg_root, redis_pid)
    b1 = family_cpu(backends)
    return {"seconds": elapsed, "postgres_cpu_s": pg1 - pg0, "redis_cpu_s": redis1 - redis0,
            "costtop_backends": len(backends),
            "costtop_backends_cpu_s": sum(b1[p] - b0[p] for p in b1 if p in b0)}


def run(args: argparse.Namespace, logs: Path) -> dict[str, Any]:
    pair = ServerPair.start(prefix="costtop-many-")
    load: subprocess.Popen[bytes] | None = None
    children: list[subprocess.Popen[bytes]] = []
    result: dict[str, Any] = {"costtops": args.costtops, "rate": args.rate, "agents": args.agents}
    try:
        settings = Settings(redis_url=pair.redis.url, database_url=pair.postgres.url, refresh=args.refresh)
        fleet = Fleet(args.agents, args.models)

        async def setup() -> int:
            await prepare(settings)
            await set_budgets(settings, fleet)
            return await backfill(settings, fleet, args.backfill, args.rate)

        result["backfill_rows"] = asyncio.run(setup())
        ready = logs / "load-ready"
        bound = args.quiet + args.seconds + args.start_timeout + 60
        with open(logs / "load.err", "wb") as err:
            load = subprocess.Popen(
                [sys.executable, "-m", "benchmarks.load", "--redis-url", settings.redis_url, "--database-url",
                 settings.database_url, "--rate", str(args.rate), "--agents", str(args.agents), "--models",
                 str(args.models), "--seconds", str(bound), "--ready-file", str(ready)],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
        deadline = time.monotonic() + 30
        while not ready.exists():
            if load.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the load generator did not start (see load.err)")
            time.sleep(0.05)
        time.sleep(3)
        quiet = measure(pair, args.quiet)
        print(f"load alone: PostgreSQL {quiet['postgres_cpu_s'] / quiet['seconds'] * 100:.1f} % of a core, "
              f"Redis {quiet['redis_cpu_s'] / quiet['seconds'] * 100:.1f} %", flush=True)

        marks = [logs / f"ready-{i}" for i in range(args.costtops)]
        started = time.time()
        for i, mark in enumerate(marks):
            with open(logs / f"costtop-{i}.err", "wb") as err:
                children.append(subprocess.Popen(
                    [sys.executable, "-m", "benchmarks.many", "--child", "--redis-url", settings.redis_url,
                     "--database-url", settings.database_url, "--refresh", str(args.refresh),
                     "--seconds", str(bound), "--ready-file", str(mark)],
                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err))
        deadline = time.monotonic() + args.start_timeout
        backends_at_start: dict[int, float] = {}
        while not all(m.exists() for m in marks):
            if any(c.poll() is not None for c in children):
                raise RuntimeError("a costtop exited at start (see costtop-*.err)")
            if time.monotonic() > deadline:
                raise RuntimeError(f"not every costtop showed a live row within {args.start_timeout:g} s")
            # Their backends' CPU as they start: the last sample before the last one is ready.
            backends_at_start = family_cpu(asyncio.run(costtop_backends(pair.postgres.url)))
            time.sleep(0.2)
        ready_at = [json.loads(m.read_text())["t"] - started for m in marks]
        result["start_to_ready_s"] = {"median": round(statistics.median(ready_at), 2),
                                      "max": round(max(ready_at), 2)}
        result["startup_backend_cpu_ms_per_costtop"] = round(
            1000 * sum(backends_at_start.values()) / args.costtops, 1)
        time.sleep(args.warmup)
        cpu0 = {c.pid: cpu_seconds(c.pid) or 0.0 for c in children}
        busy = measure(pair, args.seconds)
        cpu1 = {c.pid: cpu_seconds(c.pid) or 0.0 for c in children}
        rss = [(status_kb(c.pid, "VmRSS") or 0) / 1024 for c in children]
        n, s = args.costtops, busy["seconds"]
        result.update({
            "quiet": quiet, "busy": busy,
            # The direct figure: what costtop's own connections cost the server, per costtop per second.
            "backend_cpu_ms_per_costtop_per_s": round(1000 * busy["costtop_backends_cpu_s"] / s / n, 2),
            # The rise of the whole server's CPU over the load alone, shared out among the costtops.
            "postgres_rise_ms_per_costtop_per_s": round(
                1000 * (busy["postgres_cpu_s"] / s - quiet["postgres_cpu_s"] / quiet["seconds"]) / n, 2),
            "redis_rise_ms_per_costtop_per_s": round(
                1000 * (busy["redis_cpu_s"] / s - quiet["redis_cpu_s"] / quiet["seconds"]) / n, 2),
            "postgres_cpu_percent": {"load alone": round(100 * quiet["postgres_cpu_s"] / quiet["seconds"], 1),
                                     "with the costtops": round(100 * busy["postgres_cpu_s"] / s, 1)},
            "costtop_cpu_percent_median": round(100 * statistics.median(
                [(cpu1[p] - cpu0[p]) / s for p in cpu1]), 1),
            "costtop_rss_mb_median": round(statistics.median(rss), 1),
        })
        return result
    finally:
        for child in children:
            stop_process(child)
        stop_process(load)
        pair.stop()


def lines(r: dict[str, Any]) -> list[str]:
    return [
        f"{r['costtops']} costtops at {r['rate']:g} calls/s: each costtop's backends "
        f"{r['backend_cpu_ms_per_costtop_per_s']} ms of PostgreSQL CPU per second; the whole server "
        f"{r['postgres_rise_ms_per_costtop_per_s']} ms/s more per costtop "
        f"({r['postgres_cpu_percent']['load alone']} % of a core with the load alone, "
        f"{r['postgres_cpu_percent']['with the costtops']} % with them); Redis "
        f"{r['redis_rise_ms_per_costtop_per_s']} ms/s more per costtop",
        f"start-up: {r['startup_backend_cpu_ms_per_costtop']} ms of PostgreSQL CPU per costtop; ready after "
        f"{r['start_to_ready_s']['median']} s (median), {r['start_to_ready_s']['max']} s (the last); each costtop "
        f"{r['costtop_cpu_percent_median']} % of a core, {r['costtop_rss_mb_median']} MB (medians)",
    ]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--costtops", type=int, default=20)
    parser.add_argument("--rate", type=float, default=500.0, help="the gateway's calls per second (default 500)")
    parser.add_argument("--agents", type=int, default=200)
    parser.add_argument("--models", type=int, default=20)
    parser.add_argument("--refresh", type=float, default=1.0)
    parser.add_argument("--quiet", type=float, default=20.0, help="seconds of the load alone (default 20)")
    parser.add_argument("--seconds", type=float, default=30.0, help="seconds measured with every costtop (default 30)")
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--backfill", type=float, default=330.0)
    parser.add_argument("--start-timeout", type=float, default=120.0)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--no-freeze", action="store_true",
                        help="import costtop from src/ as it is (default: a frozen copy, see benchmarks/frozen.py)")
    # One costtop: what the parent starts --costtops times.
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--redis-url", help=argparse.SUPPRESS)
    parser.add_argument("--database-url", help=argparse.SUPPRESS)
    parser.add_argument("--ready-file", type=Path, help=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.child:
        settings = Settings(redis_url=args.redis_url, database_url=args.database_url, refresh=args.refresh,
                            read_only=True)
        asyncio.run(watch(settings, args.seconds, args.ready_file))
        return 0
    return frozen.run("benchmarks.many", args, _main)


def _main(args: argparse.Namespace, source: dict[str, Any]) -> int:
    logs = Path(tempfile.mkdtemp(prefix="costtop-many-logs-"))
    try:
        result = run(args, logs)
    except RuntimeError as exc:
        print(f"FAILED: {exc}", flush=True)
        return 1
    finally:
        shutil.rmtree(logs, ignore_errors=True)
    print("\n== results ==")
    for line in lines(result):
        print(line)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    out = args.out or RESULTS / f"many-{stamp}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "timestamp": stamp, "command": " ".join(sys.argv),
        "machine": {"cores": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "source": source, "result": result}, indent=2) + "\n", encoding="utf-8")
    print(f"\nJSON: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
