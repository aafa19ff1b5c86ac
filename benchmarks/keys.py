"""Key press to the painted frame that shows its effect, under gateway load; costtop's CPU, RSS, freshness.

    python -m benchmarks.keys [--rate 10000] [--rounds 60] [--steady 30] [--backfill 330]
                              [--method copy|executemany] [--costtop-timeout 30] [--keep-logs DIR] [--out FILE]

Real servers of its own (`ServerPair`), then as benchmarks/live.py: schema and budgets, `--backfill`
seconds of history at the rate, the load generator (benchmarks/load.py) in a child process writing
`--rate` calls/s through the gateway module, and costtop headless (benchmarks/headless_app.py, the real
`CosttopApp` with its session thread, refresh 1 s, 160x50) in a child process. Once costtop has caught
up with the load and warmed up:

1. `--steady` seconds without keys: costtop's CPU (utime+stime of the whole process, all its threads,
   from /proc/<pid>/stat) and RSS (/proc/<pid>/status), and freshness (commit -> first painted frame
   with the row, as live.py measures it);
2. `--rounds` rounds of `down`, `up`, `?`, `escape`, `s`, `s`, each press after a random pause of
   0.1-0.6 s (so presses land anywhere between reads). A key is posted to the app from its command
   thread (as a terminal driver's input thread posts it) with `time.time()` taken at the post; the end
   is the end of the first painted frame (`App._display` with a real update) composed after the key's
   effect is in the app's state (benchmarks/key_probe.py says how each effect is recognised):
   - cursor (`down`, `up`): drawn by the UI alone (the agent table's cursor);
   - help (`?`, `escape`): drawn by the UI alone (the help screen pushed and popped);
   - sort (`s`): through the session: the order changes in the next snapshot built on its thread, then
     drawn. p50 / p99 / max per kind. CPU, RSS and freshness over this phase too;
3. `q`: from the key's post to the app's `run()` returning (its `exit` event), and to the process's exit
   (seen by this process's `wait()`).

The headless driver skips turning the last update into escape sequences and writing them (a few ms at
160x50; benchmarks/terminal_bytes.py measures the bytes). The machine's two cores are shared with the
servers and the load generator (and whatever else runs): the figures are noisy; compare runs made back
to back. Results in benchmarks/results/keys-<timestamp>.json. Not part of pytest.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import textual

from benchmarks import frozen
from benchmarks.live import LogTail, Sampler, cpu_seconds, dist, fmt, freshness, send, status_kb, stop_process
from benchmarks.load import Fleet, backfill, set_budgets
from costtop.config import Settings
from costtop.demo.run import prepare
from costtop.demo.servers import ServerPair

RESULTS = Path(__file__).with_name("results")
KINDS = {"down": "cursor", "up": "cursor", "question_mark": "help", "escape": "help", "s": "sort"}
ROUND = ("down", "up", "question_mark", "escape", "s", "s")


@dataclass
class Rig:
    """Servers, the load generator and costtop headless, each in a process of its own."""

    logs: Path
    pair: ServerPair = field(default_factory=lambda: ServerPair.start(prefix="costtop-keys-"))
    load: subprocess.Popen[bytes] | None = None
    app: subprocess.Popen[str] | None = None
    tail: LogTail | None = None
    batch_log: Path | None = None

    @property
    def settings(self) -> Settings:
        return Settings(redis_url=self.pair.redis.url, database_url=self.pair.postgres.url)

    def start_load(self, rate: float, agents: int, models: int, method: str, seconds: float) -> None:
        ready = self.logs / "ready"
        ready.unlink(missing_ok=True)
        self.batch_log = self.logs / "batches.jsonl"
        with open(self.logs / "load.err", "wb") as err:
            self.load = subprocess.Popen(
                [sys.executable, "-m", "benchmarks.load", "--redis-url", self.pair.redis.url, "--database-url",
                 self.pair.postgres.url, "--rate", str(rate), "--agents", str(agents), "--models", str(models),
                 "--method", method, "--seconds", str(seconds), "--batch-log", str(self.batch_log),
                 "--summary", str(self.logs / "load.json"), "--ready-file", str(ready)],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
        deadline = time.monotonic() + 30
        while not ready.exists():
            if self.load.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the load generator did not start (see load.err)")
            time.sleep(0.05)

    def start_app(self, refresh: float, seconds: float, timeout: float | None = None,
                  app_args: tuple[str, ...] = ()) -> float:
        log = self.logs / "app.jsonl"
        extra = [*(["--timeout", str(timeout)] if timeout else []), *app_args]
        started = time.time()
        with open(self.logs / "app.err", "wb") as err:
            self.app = subprocess.Popen(
                [sys.executable, "-m", "benchmarks.headless_app", "--redis-url", self.pair.redis.url,
                 "--database-url", self.pair.postgres.url, "--log", str(log), "--refresh", str(refresh),
                 "--max-seconds", str(seconds), *extra],
                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=err, text=True)
        self.tail = LogTail(log)
        return started

    def alive(self) -> bool:
        """costtop runs, and so does the load generator if there is one."""
        return (self.app is not None and self.app.poll() is None
                and (self.load is None or self.load.poll() is None))

    def wait_live(self, started: float, timeout: float, caught_up: float | None) -> dict[str, float]:
        """Until a drawn snapshot holds live rows (and, with `caught_up`, rows that fresh)."""
        assert self.tail is not None
        first = self.tail.wait_for(lambda e: e["ev"] == "render" and e.get("max_id") is not None
                                   and e["t"] > started, timeout, alive=self.alive)
        if first is None:
            raise RuntimeError(f"costtop drew no live row within {timeout:g} s")
        out = {"startup_to_first_live_render_s": round(first["t"] - started, 2)}
        if caught_up is not None:
            caught = self.tail.wait_for(lambda e: e["ev"] == "render" and e.get("max_created_at") is not None
                                        and e["t"] - e["max_created_at"] < caught_up, timeout, alive=self.alive)
            if caught is None:
                raise RuntimeError(f"costtop did not catch up with the load within {timeout:g} s")
            out["startup_to_caught_up_s"] = round(caught["t"] - started, 2)
        return out

    def stop(self) -> None:
        stop_process(self.app)
        if self.load is not None and self.load.poll() is None:
            self.load.send_signal(15)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.load.wait(20)
            stop_process(self.load)
        if self.tail is not None:
            self.tail.close()
        self.pair.stop()


@contextlib.contextmanager
def rig(logs: Path) -> Iterator[Rig]:
    logs.mkdir(parents=True, exist_ok=True)
    r = Rig(logs)
    try:
        yield r
    finally:
        r.stop()


class Meter:
    """costtop's CPU (all threads) and RSS between `start()` and `stop()`, from /proc."""

    def __init__(self, pid: int) -> None:
        self.pid = pid

    def start(self) -> None:
        self.t0, self.cpu0 = time.monotonic(), cpu_seconds(self.pid) or 0.0

    def stop(self) -> dict[str, Any]:
        elapsed = time.monotonic() - self.t0
        cpu = (cpu_seconds(self.pid) or 0.0) - self.cpu0
        return {"seconds": round(elapsed, 1), "costtop_cpu_percent": round(100 * cpu / elapsed, 1),
                "costtop_rss_mb": round((status_kb(self.pid, "VmRSS") or 0) / 1024, 1),
                "costtop_rss_mb_peak_hwm": round((status_kb(self.pid, "VmHWM") or 0) / 1024, 1)}


def press(app: subprocess.Popen[str], tail: LogTail, key: str, timeout: float) -> float | None:
    """One key: its post to the end of the painted frame showing its effect, in seconds (None: never)."""
    start = len(tail.events)
    send(app, f"key {key}")
    shown = tail.wait_for(lambda e: e["ev"] == "key_painted" and e["key"] == key, timeout, start)
    return None if shown is None else shown["t"] - shown["t_post"]


def key_trials(app: subprocess.Popen[str], tail: LogTail, rounds: int, timeout: float, seed: int = 1,
               sequence: tuple[str, ...] = ROUND, gap: tuple[float, float] = (0.1, 0.6),
               alive: Callable[[], bool] = lambda: True) -> dict[str, Any]:
    rng = random.Random(seed)
    by_kind: dict[str, list[float]] = {}
    by_key: dict[str, list[float]] = {}
    missed: dict[str, int] = {}
    for _ in range(rounds):
        for key in sequence:
            if not alive():
                raise RuntimeError("costtop exited during the key trials")
            time.sleep(rng.uniform(*gap))
            took = press(app, tail, key, timeout)
            if took is None:
                missed[key] = missed.get(key, 0) + 1
                continue
            by_kind.setdefault(KINDS[key], []).append(took)
            by_key.setdefault(key, []).append(took)
    return {"by_kind_ms": {k: dist(v) for k, v in by_kind.items()},
            "by_key_ms": {k: dist(v) for k, v in by_key.items()},
            "over_100ms": {k: sum(1 for x in v if x > 0.1) for k, v in by_kind.items()},
            "never_painted": missed}


def quit_time(app: subprocess.Popen[str], tail: LogTail, timeout: float = 30) -> dict[str, Any]:
    """`q`: from its post to the app's run() returning, and to the process's exit."""
    start = len(tail.events)
    send(app, "key q")
    try:
        app.wait(timeout)
        exited = time.time()
    except subprocess.TimeoutExpired:
        app.send_signal(signal.SIGUSR1)  # the headless app writes every thread's stack to its stderr
        time.sleep(1)
        return {"quit_s": None, "error": f"still running {timeout:g} s after q (stacks in app.err)"}
    posted = tail.wait_for(lambda e: e["ev"] == "key_post" and e["key"] == "q", 1, start)
    done = tail.wait_for(lambda e: e["ev"] == "exit", 1, start)
    if posted is None:
        return {"quit_s": None, "error": "q was not posted"}
    return {"to_run_returned_s": round(done["t"] - posted["t_post"], 3) if done else None,
            "to_process_exit_s": round(exited - posted["t_post"], 3)}


def stale_renders(tail: LogTail, since: float, until: float) -> dict[str, Any]:
    """Snapshots drawn in the window with a source not connected, or a header badge reading STALE."""
    renders = [r for r in tail.of("render") if since <= r["t"] < until]
    return {"renders": len(renders),
            "not_connected": sum(1 for r in renders if r.get("stale")),
            "badge_stale": sum(1 for r in renders if r.get("badges_stale")),
            "errors": sorted({e for r in renders for e in r.get("source_errors", [])})[:5]}


def fresh(rig: Rig, since: float, until: float) -> dict[str, Any]:
    assert rig.tail is not None and rig.batch_log is not None
    batches = [json.loads(line) for line in rig.batch_log.read_text().splitlines() if line.strip()]
    painted = {e["seq"]: e["t"] for e in rig.tail.of("painted")}
    return freshness(batches, rig.tail.of("render"), painted, since, until)


def run(args: argparse.Namespace, logs: Path) -> dict[str, Any]:
    result: dict[str, Any] = {"rate": args.rate, "agents": args.agents, "models": args.models,
                              "method": args.method, "backfill_s": args.backfill}
    with rig(logs) as r:
        settings = r.settings
        fleet = Fleet(args.agents, args.models)

        async def setup() -> int:
            await prepare(settings)
            await set_budgets(settings, fleet)
            return await backfill(settings, fleet, args.backfill, args.rate)

        t = time.monotonic()
        result["backfill_rows"] = asyncio.run(setup())
        print(f"backfill: {result['backfill_rows']:,} rows in {time.monotonic() - t:.0f} s", flush=True)
        bound = args.start_timeout + args.warmup + args.steady + args.rounds * len(ROUND) * 3 + 120
        r.start_load(args.rate, args.agents, args.models, args.method, bound)
        started = r.start_app(args.refresh, bound, args.costtop_timeout, tuple(args.app_arg or ()))
        result.update(r.wait_live(started, args.start_timeout, args.caught_up or None))
        print(f"costtop caught up after {result.get('startup_to_caught_up_s')} s; warming up {args.warmup:g} s",
              flush=True)
        time.sleep(args.warmup)
        assert r.app is not None and r.tail is not None and r.load is not None
        postgres = r.pair.postgres.proc.pid if r.pair.postgres.proc else 0

        steady_from = time.time()
        print(f"steady, no keys: {args.steady:g} s", flush=True)
        result["steady"] = Sampler(r.app.pid, r.load.pid, postgres).run(args.steady)
        steady_until = time.time()
        result["steady_freshness_ms"] = fresh(r, steady_from, steady_until)

        print(f"keys: {args.rounds} rounds of {' '.join(ROUND)}", flush=True)
        meter = Meter(r.app.pid)
        keys_from = time.time()
        meter.start()
        result["keys"] = key_trials(r.app, r.tail, args.rounds, args.key_timeout, alive=r.alive)
        result["keys_phase"] = meter.stop()
        keys_until = time.time()
        result["keys_phase_freshness_ms"] = fresh(r, keys_from, keys_until)
        result["stale"] = stale_renders(r.tail, steady_from, keys_until)
        last = [e for e in r.tail.of("render") if e.get("max_created_at") is not None and e["t"] < keys_until]
        result["lag_at_end_s"] = round(last[-1]["t"] - last[-1]["max_created_at"], 1) if last else None
        result["quit"] = quit_time(r.app, r.tail)
    return result


def lines(r: dict[str, Any]) -> list[str]:
    k, s = r.get("keys", {}), r.get("steady", {})
    out = [f"at {r['rate']:g} calls/s ({r['method']}), {r['agents']} agents; started "
           f"{r.get('startup_to_first_live_render_s')} s, caught up "
           f"{r.get('startup_to_caught_up_s', 'not waited for')}; "
           f"behind the load at the end of the key phase by {r.get('lag_at_end_s')} s:"]
    for kind, d in k.get("by_kind_ms", {}).items():
        out.append(f"  key -> painted frame, {kind}: {fmt(d)}; over 100 ms: {k['over_100ms'].get(kind)}")
    out.append(f"  never painted: {k.get('never_painted')}")
    out.append(f"  steady (no keys): costtop CPU {s.get('costtop_cpu_percent')} % of a core, RSS mean "
               f"{s.get('costtop_rss_mb_mean')} MB; freshness painted {fmt(r['steady_freshness_ms']['painted'])}")
    kp = r.get("keys_phase", {})
    out.append(f"  keys phase: costtop CPU {kp.get('costtop_cpu_percent')} %, RSS {kp.get('costtop_rss_mb')} MB; "
               f"freshness painted {fmt(r['keys_phase_freshness_ms']['painted'])}")
    out.append(f"  stale: {r.get('stale')}; quit: {r.get('quit')}")
    return out


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=10_000)
    parser.add_argument("--agents", type=int, default=200)
    parser.add_argument("--models", type=int, default=20)
    parser.add_argument("--refresh", type=float, default=1.0)
    parser.add_argument("--backfill", type=float, default=330,
                        help="seconds of history first (default 330: the 5-minute window is full, so every "
                             "snapshot also expires a second of calls, as it does after five minutes live)")
    parser.add_argument("--warmup", type=float, default=10)
    parser.add_argument("--steady", type=float, default=30, help="seconds without keys (default 30)")
    parser.add_argument("--rounds", type=int, default=60, help=f"rounds of {' '.join(ROUND)} (default 60)")
    parser.add_argument("--key-timeout", type=float, default=10)
    parser.add_argument("--start-timeout", type=float, default=300)
    parser.add_argument("--caught-up", type=float, default=3.0, metavar="SECONDS",
                        help="start once a drawn snapshot holds rows this fresh (0: once it holds live rows; "
                             "a costtop that cannot keep up, on a busy machine, is then measured behind)")
    parser.add_argument("--method", choices=("executemany", "copy"), default="copy")
    parser.add_argument("--costtop-timeout", type=float, default=30,
                        help="costtop's query timeout (default 30 s: on a busy machine the start-up's reads at "
                             "10,000 calls/s can exceed costtop's own 3 s, and each failure starts over)")
    parser.add_argument("--app-arg", action="append", metavar="ARG",
                        help="passed to benchmarks/headless_app.py, e.g. --app-arg=--ingest-chunk=500")
    parser.add_argument("--no-freeze", action="store_true", help="import costtop from src/ as it is")
    parser.add_argument("--keep-logs", type=Path)
    parser.add_argument("--out", type=Path)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return frozen.run("benchmarks.keys", args, _main)


def _main(args: argparse.Namespace, source: dict[str, Any]) -> int:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    logs = args.keep_logs or Path(tempfile.mkdtemp(prefix="costtop-keys-logs-"))
    try:
        result = run(args, logs)
    except RuntimeError as exc:
        result = {"error": str(exc)}
    finally:
        if args.keep_logs is None:
            shutil.rmtree(logs, ignore_errors=True)
    print("\n== results ==")
    print("\n".join([f"FAILED: {result['error']}"] if "error" in result else lines(result)))
    out = args.out or RESULTS / f"keys-{stamp}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "timestamp": stamp, "command": " ".join(sys.argv),
        "machine": {"cores": os.cpu_count(), "python": platform.python_version(), "textual": textual.__version__,
                    "platform": platform.platform()},
        "source": source, "result": result}, indent=2) + "\n", encoding="utf-8")
    print(f"\nJSON: {out}")
    return 0 if "error" not in result else 1


if __name__ == "__main__":
    sys.exit(main())
