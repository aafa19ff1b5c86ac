"""A long run against the demo gateway: memory and errors at intervals (not in CI).

    python -m benchmarks.soak --minutes 60 --rate 1000 [--interval 60]

Starts the demo's servers and its simulated gateway (`costtop.demo.simulator`, with its runaway
incident) at `--rate` calls/s, and costtop headless (benchmarks/headless_app.py: the real app and
feed, observed) against them. Every `--interval` seconds it prints one JSON line: minutes run, the
app's RSS, rows it has ingested, renders, and the errors so far: failed Postgres reads, renders that
showed a stale source, and anything on the app's stderr. At the end: the verdict on the issue's bar,
no error and RSS within 10 % of its value after the first five minutes, and the JSON in
benchmarks/results/soak-<time>.json. Each sample also carries the app's memory make-up
(benchmarks/memory_probe.py).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.live import RESULTS, LogTail, status_kb, stop_process
from costtop.config import Settings
from costtop.demo.run import prepare
from costtop.demo.servers import ServerPair

WARMUP_MINUTES = 5


def first_fresh(renders: list[dict[str, Any]]) -> int:
    return next((i for i, r in enumerate(renders) if not r.get("stale")), len(renders))


def sample(tail: LogTail, app: subprocess.Popen[str], stderr: Path, started: float) -> dict[str, Any]:
    renders = tail.of("render")
    last = renders[-1] if renders else {}
    memory = tail.of("memory")
    errors = {
        "rows_failed": len(tail.of("rows_failed")),
        "baseline_failed": len(tail.of("baseline_failed")),
        # Before both sources have answered once, "not connected" is start-up, not an error.
        "stale_renders": sum(1 for r in renders[first_fresh(renders):] if r.get("stale")),
        "source_errors": sum(1 for r in renders if r.get("source_errors")),
        "stderr_lines": len([ln for ln in stderr.read_text(errors="replace").splitlines() if ln.strip()]),
    }
    return {"minutes": round((time.monotonic() - started) / 60, 2), "rss_mb": round((status_kb(app.pid, "VmRSS") or 0)
            / 1024, 1), "rows": last.get("rows"), "agents": last.get("agents"), "renders": len(renders),
            "errors": errors, "alive": app.poll() is None, "memory": memory[-1] if memory else None}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=60)
    parser.add_argument("--rate", type=float, default=1000)
    parser.add_argument("--interval", type=float, default=60)
    parser.add_argument("--out", type=Path, help="JSON path (default benchmarks/results/soak-<time>.json)")
    args = parser.parse_args()
    pair = ServerPair.start(prefix="costtop-soak-")
    work = Path(tempfile.mkdtemp(prefix="costtop-soak-log-"))
    settings = Settings(redis_url=pair.redis.url, database_url=pair.postgres.url)
    sim = app = None
    samples: list[dict[str, Any]] = []
    try:
        import asyncio

        asyncio.run(prepare(settings, args.rate))
        sim = subprocess.Popen([sys.executable, "-m", "costtop.demo.simulator", "--redis-url", pair.redis.url,
                                "--database-url", pair.postgres.url, "--rate", str(args.rate)],
                               stdout=open(work / "simulator.log", "w"), stderr=subprocess.STDOUT)  # noqa: SIM115
        stderr = work / "app.stderr"
        app = subprocess.Popen([sys.executable, "-m", "benchmarks.headless_app", "--redis-url", pair.redis.url,
                                "--database-url", pair.postgres.url, "--log", str(work / "app.jsonl"),
                                "--max-seconds", str(args.minutes * 60 + 120), "--probe-every", str(args.interval)],
                               stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                               stderr=open(stderr, "w"), text=True)  # noqa: SIM115
        tail = LogTail(work / "app.jsonl")
        started = time.monotonic()
        end = started + args.minutes * 60
        while time.monotonic() < end and app.poll() is None:
            time.sleep(min(args.interval, max(0.0, end - time.monotonic())))
            line = sample(tail, app, stderr, started)
            samples.append(line)
            print(json.dumps(line), flush=True)
    finally:
        if app is not None and app.poll() is None and app.stdin is not None:
            app.stdin.write("quit\n")
            app.stdin.flush()
        stop_process(app)
        stop_process(sim)
        pair.stop()
    warm = next((s for s in samples if s["minutes"] >= WARMUP_MINUTES), None)
    final = samples[-1] if samples else None
    verdict: dict[str, Any] = {"rate": args.rate, "minutes": args.minutes, "logs": str(work)}
    if warm and final:
        errors = sum(final["errors"].values())
        growth = (final["rss_mb"] - warm["rss_mb"]) / warm["rss_mb"]
        verdict |= {"rss_after_5_min_mb": warm["rss_mb"], "rss_at_end_mb": final["rss_mb"],
                    "rss_change": round(growth, 4), "errors": final["errors"], "alive_at_end": final["alive"],
                    "met": errors == 0 and abs(growth) <= 0.10 and final["alive"]}
    print(json.dumps(verdict), flush=True)
    out = args.out or RESULTS / f"soak-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"verdict": verdict, "samples": samples}, indent=2) + "\n")
    return 0 if verdict.get("met") else 1


if __name__ == "__main__":
    sys.exit(main())
