"""costtop live, end to end: freshness, switch latency, CPU and memory under gateway load.

    python -m benchmarks.live [--seconds 60] [--rates 2000 10000] [--agents 200] [--models 20]
                              [--warmup 15] [--backfill 330] [--trials 10] [--method executemany|copy]
                              [--keep-logs DIR]

For each rate, against fresh servers (`ServerPair`):
1. schema, global budgets (`costtop.demo.run.prepare`) and per-agent budgets; `--backfill` seconds of
   history at the rate (so the 5-minute window is full from the start, as in front of a gateway that has
   been running for a while);
2. the load generator (benchmarks/load.py) in a child process, writing through `Gateway.record` every
   100 ms and logging each batch's commit time and largest id;
3. costtop headless (benchmarks/headless_app.py) in a child process at `--refresh` (1 s), logging one
   JSON line per render with the newest row it has ingested;
4. once costtop has caught up with the load (a render shows rows written less than --caught-up seconds
   before it: after a long baseline the first reads are a backlog), `--warmup` seconds, then `--seconds`
   of steady state during which costtop's CPU (utime+stime from /proc/<pid>/stat) and RSS
   (/proc/<pid>/status) are sampled every second; the load generator's, PostgreSQL's and the whole
   machine's CPU are sampled too (they share the machine's cores with costtop);
5. switch latency, load still running:
   (a) `kill AGENT` sent to the app, which calls its `_write` worker with SwitchChange("set", "kill",
       "agent", AGENT) (what confirming the kill dialog does); from the moment the app calls `_write`
       until the key exists in Redis, polled by this process with its own client every 1 ms (EXISTS,
       then sleep 1 ms: resolution about 1.2 ms). Also reported: until `LiveFeed.write` returned
       (Redis SET plus the audit INSERT), from the command being sent (includes the app's event-loop
       queueing, as a key press would) and until the first render showing the agent killed;
   (b) a key set by a separate Redis client (this process; like `redis-cli SET`), timed after SET
       returned, until the first render whose snapshot shows that agent killed.
Freshness: for every batch committed during steady state, the first "painted" event (the screen refresh
after the app drew a snapshot, `_show` then `call_after_refresh`) whose snapshot had ingested a row with
id >= the batch's largest id, minus the batch's commit time. One writer commits batches in order, so
that snapshot has every row of the batch. p50 and p99 over batches; batches never shown before the end
are counted apart.

All processes import one frozen copy of src/ taken at start (benchmarks/frozen.py; the git commit,
modified files and a hash of the copy go into the JSON), since src/ may change while this runs.

At the end: one line per figure, and the same figures as JSON in benchmarks/results/live-<timestamp>.json.
Only loopback traffic; every process it starts is stopped (try/finally), and the servers' directory
removed. Not part of pytest.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import itertools
import json
import math
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
import textual

import costtop
from benchmarks import frozen
from benchmarks.load import Fleet, backfill, set_budgets
from costtop.config import Settings
from costtop.demo.run import prepare
from costtop.demo.servers import ServerPair

RESULTS = Path(__file__).with_name("results")
CLK_TCK = os.sysconf("SC_CLK_TCK")


# -- /proc ---------------------------------------------------------------------------------------------------

def cpu_seconds(pid: int) -> float | None:
    """utime + stime of a process (all its threads), in seconds."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def parent_of(pid: int) -> int | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(raw[raw.rindex(")") + 2:].split()[1])


def status_kb(pid: int, key: str) -> int | None:
    """A `kB` field of /proc/<pid>/status, e.g. VmRSS or VmHWM."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def family(root: int) -> list[int]:
    """The process and its direct children (PostgreSQL's postmaster and its backends)."""
    pids = [root]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and parent_of(int(entry.name)) == root:
            pids.append(int(entry.name))
    return pids


def machine_busy_seconds() -> float:
    """CPU seconds spent busy by the whole machine (all cores), from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


def family_cpu(pids: list[int]) -> dict[int, float]:
    return {pid: cpu for pid in pids if (cpu := cpu_seconds(pid)) is not None}


# -- the app's log -------------------------------------------------------------------------------------------

class LogTail:
    """Reads the headless app's JSON lines as they are written."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.events: list[dict[str, Any]] = []
        self._file: Any = None
        self._partial = ""

    def poll(self) -> None:
        if self._file is None:
            if not self.path.exists():
                return
            self._file = open(self.path, encoding="utf-8")  # noqa: SIM115 - closed in close()
        chunk = self._file.read()
        if not chunk:
            return
        text = self._partial + chunk
        lines = text.split("\n")
        self._partial = lines.pop()
        for line in lines:
            if line.strip():
                self.events.append(json.loads(line))

    def wait_for(self, predicate: Callable[[dict[str, Any]], bool], timeout: float, start: int = 0,
                 alive: Callable[[], bool] = lambda: True) -> dict[str, Any] | None:
        deadline = time.monotonic() + timeout
        index = start
        while True:
            self.poll()
            while index < len(self.events):
                if predicate(self.events[index]):
                    return self.events[index]
                index += 1
            if time.monotonic() > deadline or not alive():
                return None
            time.sleep(0.002)

    def of(self, ev: str) -> list[dict[str, Any]]:
        self.poll()
        return [e for e in self.events if e["ev"] == ev]

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


# -- figures -------------------------------------------------------------------------------------------------

def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def dist(values: list[float], scale: float = 1000.0, digits: int = 1) -> dict[str, Any]:
    """p50 / p99 / max / n, in ms by default."""
    if not values:
        return {"n": 0}
    return {"p50": round(statistics.median(values) * scale, digits), "p99": round(pct(values, 0.99) * scale, digits),
            "max": round(max(values) * scale, digits), "n": len(values)}


def fmt(d: dict[str, Any], unit: str = "ms") -> str:
    if not d.get("n"):
        return "no samples"
    return f"p50 {d['p50']:g} {unit}, p99 {d['p99']:g} {unit}, max {d['max']:g} {unit} (n={d['n']})"


def freshness(batches: list[dict[str, Any]], renders: list[dict[str, Any]], painted: dict[int, float],
              since: float, until: float) -> dict[str, Any]:
    """Commit to first render (and first painted frame) that includes each batch of the steady window."""
    shown = [r for r in renders if r.get("max_id") is not None]
    ids = [r["max_id"] for r in shown]
    # max_id only grows, except after a re-baseline; keep it monotonic for the search.
    for i in range(1, len(ids)):
        ids[i] = max(ids[i], ids[i - 1])
    to_render: list[float] = []
    to_paint: list[float] = []
    missed = 0
    window = [b for b in batches if since <= b["commit"] < until and b["max_id"] is not None]
    for batch in window:
        i = bisect.bisect_left(ids, batch["max_id"])
        if i == len(ids):
            missed += 1
            continue
        render = shown[i]
        to_render.append(render["t"] - batch["commit"])
        paint = painted.get(render["seq"])
        to_paint.append((paint if paint is not None else render["t"]) - batch["commit"])
    return {"painted": dist(to_paint), "drawn": dist(to_render), "batches": len(window), "never_shown": missed}


@dataclass
class Sampler:
    """CPU and RSS of the app; CPU of the load generator and of PostgreSQL, over the steady window."""

    app: int
    load: int
    postgres: int
    samples: list[dict[str, float]] = field(default_factory=list)

    def run(self, seconds: float) -> dict[str, Any]:
        pg = family(self.postgres)
        t0 = time.monotonic()
        app0, load0, pg0 = cpu_seconds(self.app), cpu_seconds(self.load), family_cpu(pg)
        machine0, me0 = machine_busy_seconds(), time.process_time()
        last_t, last_cpu = t0, app0
        while time.monotonic() - t0 < seconds:
            time.sleep(max(0.0, 1.0 - (time.monotonic() - last_t)))
            now, cpu = time.monotonic(), cpu_seconds(self.app)
            if cpu is None or last_cpu is None:
                raise RuntimeError("costtop exited during the steady window")
            rss = status_kb(self.app, "VmRSS") or 0
            self.samples.append({"cpu_percent": 100 * (cpu - last_cpu) / (now - last_t), "rss_kb": rss})
            last_t, last_cpu = now, cpu
        elapsed = time.monotonic() - t0
        app1, load1, pg1 = cpu_seconds(self.app), cpu_seconds(self.load), family_cpu(pg)
        machine = machine_busy_seconds() - machine0
        me = time.process_time() - me0
        pg_delta = sum(pg1[p] - pg0[p] for p in pg1 if p in pg0)
        app_delta, load_delta = (app1 or 0) - (app0 or 0), (load1 or 0) - (load0 or 0)
        rss = [s["rss_kb"] for s in self.samples]
        cpus = [s["cpu_percent"] for s in self.samples]
        return {
            "seconds": round(elapsed, 1),
            "costtop_cpu_percent": round(100 * ((app1 or 0) - (app0 or 0)) / elapsed, 1),
            "costtop_cpu_percent_max_1s": round(max(cpus), 1) if cpus else None,
            "costtop_rss_mb_mean": round(statistics.mean(rss) / 1024, 1) if rss else None,
            "costtop_rss_mb_max": round(max(rss) / 1024, 1) if rss else None,
            "costtop_rss_mb_peak_hwm": round((status_kb(self.app, "VmHWM") or 0) / 1024, 1),
            "load_cpu_percent": round(100 * ((load1 or 0) - (load0 or 0)) / elapsed, 1)
            if load0 is not None and load1 is not None else None,
            "postgres_cpu_percent": round(100 * pg_delta / elapsed, 1),
            "machine_busy_percent": round(100 * machine / elapsed, 1),
            # Anything else on the machine (other benchmarks, the kernel); it competes for the same cores.
            "other_cpu_percent": round(100 * (machine - app_delta - load_delta - pg_delta - me) / elapsed, 1),
        }


# -- one rate ------------------------------------------------------------------------------------------------

def stop_process(proc: subprocess.Popen[Any] | None, timeout: float = 10) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def send(app: subprocess.Popen[str], line: str) -> float:
    assert app.stdin is not None
    app.stdin.write(line + "\n")
    app.stdin.flush()
    return time.time()


def switch_a(app: subprocess.Popen[str], tail: LogTail, client: redis.Redis, agent: str, key: str,
             timeout: float) -> dict[str, float] | None:
    """The app's own write path: command -> `_write` -> key in Redis (polled every 1 ms)."""
    start = len(tail.events)
    sent = send(app, f"kill {agent}")
    deadline = time.monotonic() + timeout
    seen = None
    while time.monotonic() < deadline:
        if client.exists(key):
            seen = time.time()
            break
        time.sleep(0.001)
    call = tail.wait_for(lambda e: e["ev"] == "write_call" and e.get("agent") == agent, timeout, start)
    done = tail.wait_for(lambda e: e["ev"] == "write_done" and e.get("target") == agent, timeout, start)
    shown = tail.wait_for(lambda e: e["ev"] == "render" and agent in e["killed"], timeout, start)
    if seen is None or call is None or done is None:
        return None
    return {
        "call_to_key": seen - call["t"],
        "call_to_write_return": done["t1"] - call["t"],
        "sent_to_key": seen - sent,
        "call_to_render": (shown["t"] - call["t"]) if shown else math.nan,
    }


def switch_b(tail: LogTail, client: redis.Redis, agent: str, key: str, timeout: float) -> float | None:
    """A key set from outside (like `redis-cli SET`) -> first render that shows the agent killed."""
    start = len(tail.events)
    client.set(key, "manual:bench:set_from_redis_cli")
    set_at = time.time()
    shown = tail.wait_for(lambda e: e["ev"] == "render" and e["t"] >= set_at and agent in e["killed"],
                          timeout, start)
    return None if shown is None else shown["t"] - set_at


def resume(tail: LogTail, client: redis.Redis, agent: str, key: str, timeout: float) -> None:
    start = len(tail.events)
    client.delete(key)
    tail.wait_for(lambda e: e["ev"] == "render" and agent not in e["killed"], timeout, start)


def run_rate(rate: float, args: argparse.Namespace, logs: Path) -> dict[str, Any]:
    print(f"\n== {rate:g} calls/s, {args.agents} agents, {args.models} models ==", flush=True)
    result: dict[str, Any] = {"rate": rate, "agents": args.agents, "models": args.models, "method": args.method}
    pair = ServerPair.start(prefix="costtop-live-")
    load: subprocess.Popen[bytes] | None = None
    app: subprocess.Popen[str] | None = None
    tail: LogTail | None = None
    client: redis.Redis | None = None
    logs.mkdir(parents=True, exist_ok=True)
    batch_log, load_summary, ready = logs / f"batches-{rate:g}.jsonl", logs / f"load-{rate:g}.json", logs / "ready"
    app_log = logs / f"app-{rate:g}.jsonl"
    ready.unlink(missing_ok=True)
    try:
        settings = Settings(redis_url=pair.redis.url, database_url=pair.postgres.url, refresh=args.refresh)
        fleet = Fleet(args.agents, args.models)

        async def setup() -> int:
            await prepare(settings)
            await set_budgets(settings, fleet)
            return await backfill(settings, fleet, args.backfill, rate)

        t = time.monotonic()
        result["backfill_rows"] = asyncio.run(setup())
        print(f"backfill: {result['backfill_rows']:,} rows ({args.backfill:g} s at {rate:g}/s) in "
              f"{time.monotonic() - t:.0f} s", flush=True)
        bound = args.start_timeout + args.warmup + args.seconds + args.switch_budget + 60
        with open(logs / f"load-{rate:g}.err", "wb") as err:
            load = subprocess.Popen(
                [sys.executable, "-m", "benchmarks.load", "--redis-url", settings.redis_url, "--database-url",
                 settings.database_url, "--rate", str(rate), "--agents", str(args.agents), "--models",
                 str(args.models), "--method", args.method, "--seconds", str(bound), "--batch-log", str(batch_log),
                 "--summary", str(load_summary), "--ready-file", str(ready)],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
            )
        deadline = time.monotonic() + 30
        while not ready.exists():
            if load.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the load generator did not start (see load.err)")
            time.sleep(0.05)
        started = time.time()
        timeout = ["--timeout", str(args.costtop_timeout)] if args.costtop_timeout else []
        if args.profile:
            args.profile.mkdir(parents=True, exist_ok=True)
            timeout += ["--profile", str(args.profile / f"costtop-{rate:g}.prof")]
        with open(logs / f"app-{rate:g}.err", "wb") as err:
            app = subprocess.Popen(
                [sys.executable, "-m", "benchmarks.headless_app", "--redis-url", settings.redis_url,
                 "--database-url", settings.database_url, "--log", str(app_log), "--refresh", str(args.refresh),
                 "--max-seconds", str(bound), *timeout],
                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=err, text=True,
            )
        tail = LogTail(app_log)
        running = app

        def alive() -> bool:
            return running.poll() is None

        first = tail.wait_for(lambda e: e["ev"] == "render" and e.get("max_id") is not None
                              and e["t"] > started, args.start_timeout, alive=alive)
        if first is None:
            failed = [e.get("error") for e in tail.of("baseline_failed")]
            raise RuntimeError(f"costtop showed no live row within {args.start_timeout:g} s"
                               + (f" (baseline failed: {failed[-1]})" if failed else ""))
        # After a long baseline the first reads are a backlog (READ_BATCH rows at a time): steady state
        # starts once a render shows rows written less than --caught-up seconds before it.
        caught = tail.wait_for(lambda e: e["ev"] == "render" and e.get("max_created_at") is not None
                               and e["t"] - e["max_created_at"] < args.caught_up, args.start_timeout, alive=alive)
        if caught is None:
            raise RuntimeError(f"costtop did not catch up with the load within {args.start_timeout:g} s")
        baseline = tail.of("baseline")
        result["startup_to_first_live_render_s"] = round(first["t"] - started, 2)
        result["startup_to_caught_up_s"] = round(caught["t"] - started, 2)
        if baseline:
            result["baseline_read_s"] = round(baseline[-1]["t1"] - baseline[-1]["t0"], 2)
            result["baseline_window_rows"] = baseline[-1]["rows"]
        print(f"costtop: first render with live rows {result['startup_to_first_live_render_s']} s after start, "
              f"caught up after {result['startup_to_caught_up_s']} s; warming up {args.warmup:g} s", flush=True)
        time.sleep(args.warmup)

        steady_from = time.time()
        sampler = Sampler(app.pid, load.pid, pair.postgres.proc.pid if pair.postgres.proc else 0)
        print(f"steady state: sampling {args.seconds:g} s", flush=True)
        result["steady"] = sampler.run(args.seconds)
        steady_until = time.time()

        client = redis.Redis.from_url(settings.redis_url, socket_timeout=5)
        rng = random.Random(1)
        a_trials: list[dict[str, float]] = []
        b_trials: list[float] = []
        switch_deadline = time.monotonic() + args.switch_budget
        print(f"switch latency: {args.trials} trials each", flush=True)
        for i in range(args.trials):
            if time.monotonic() > switch_deadline:
                break
            agent = fleet.agents[-(i + 1)]
            key = f"{settings.keys.kill}:agent:{agent}"
            time.sleep(rng.uniform(0, 1))
            trial = switch_a(app, tail, client, agent, key, args.trial_timeout)
            if trial is not None:
                a_trials.append(trial)
            resume(tail, client, agent, key, args.trial_timeout)
        for i in range(args.trials):
            if time.monotonic() > switch_deadline:
                break
            agent = fleet.agents[-(args.trials + i + 1)]
            key = f"{settings.keys.kill}:agent:{agent}"
            time.sleep(rng.uniform(0, 1))
            latency = switch_b(tail, client, agent, key, args.trial_timeout)
            if latency is not None:
                b_trials.append(latency)
            resume(tail, client, agent, key, args.trial_timeout)

        send(app, "quit")
        try:
            app.wait(20)
        except subprocess.TimeoutExpired:
            stop_process(app)
        load.send_signal(15)
        with contextlib.suppress(subprocess.TimeoutExpired):
            load.wait(20)
        tail.poll()

        batches = [json.loads(line) for line in batch_log.read_text().splitlines() if line.strip()]
        steady_batches = [b for b in batches if steady_from <= b["commit"] < steady_until]
        span = (steady_batches[-1]["commit"] - steady_batches[0]["commit"]) if len(steady_batches) > 1 else 0
        result["load_achieved_rate_steady"] = round(sum(b["n"] for b in steady_batches[1:]) / span, 1) if span else None
        result["load_max_lag_steady_s"] = round(max((b["lag_s"] for b in steady_batches), default=0.0), 3)
        if load_summary.exists():
            result["load_summary"] = json.loads(load_summary.read_text())
        renders = tail.of("render")
        painted = {e["seq"]: e["t"] for e in tail.of("painted")}
        result["freshness_ms"] = freshness(batches, renders, painted, steady_from, steady_until)
        steady_renders = [r for r in renders if steady_from <= r["t"] < steady_until]
        times = [r["t"] for r in steady_renders]
        result["renders_per_s"] = round(len(times) / (steady_until - steady_from), 2)
        result["max_gap_between_renders_s"] = round(max((b - a for a, b in itertools.pairwise(times)),
                                                       default=math.nan), 2)
        # Two parts on two threads: the session builds the snapshot, the UI draws it (`_show`).
        result["draw_ms"] = dist([r["render_s"] for r in steady_renders])
        result["engine_snapshot_ms"] = dist([r["snapshot_s"] for r in steady_renders])
        reads = [e for e in tail.of("rows") if steady_from <= e["t0"] < steady_until]
        result["postgres_read_ms"] = dist([e["t1"] - e["t0"] for e in reads])
        result["rows_per_read_median"] = statistics.median([e["n"] for e in reads]) if reads else None
        result["switch_a_call_to_key_ms"] = dist([t["call_to_key"] for t in a_trials], digits=2)
        result["switch_a_call_to_write_return_ms"] = dist([t["call_to_write_return"] for t in a_trials], digits=2)
        result["switch_a_sent_to_key_ms"] = dist([t["sent_to_key"] for t in a_trials], digits=2)
        result["switch_a_call_to_render_ms"] = dist([t["call_to_render"] for t in a_trials
                                                     if not math.isnan(t["call_to_render"])])
        result["switch_b_set_to_render_ms"] = dist(b_trials)
        result["switch_trials_failed"] = {"a": args.trials - len(a_trials), "b": args.trials - len(b_trials)}
    finally:
        if client is not None:
            client.close()
        if tail is not None:
            tail.close()
        stop_process(app)
        stop_process(load)
        pair.stop()
    return result


def lines(r: dict[str, Any]) -> list[str]:
    s = r.get("steady", {})
    f = r.get("freshness_ms", {})
    rate = f"{r['rate']:g}/s"
    out = [
        f"[{rate}] load achieved (steady window): {r.get('load_achieved_rate_steady')} calls/s "
        f"({r['method']}; max lag {r.get('load_max_lag_steady_s')} s)",
        f"[{rate}] freshness, commit -> first painted frame: {fmt(f.get('painted', {}))}; "
        f"{f.get('never_shown', '?')} of {f.get('batches', '?')} batches never shown",
        f"[{rate}] freshness, commit -> snapshot drawn (the app's _show returned): {fmt(f.get('drawn', {}))}",
        f"[{rate}] switch (a) app _write called -> key in Redis (1 ms poll): "
        f"{fmt(r.get('switch_a_call_to_key_ms', {}))}",
        f"[{rate}] switch (a) app _write called -> LiveFeed.write returned (SET + audit INSERT): "
        f"{fmt(r.get('switch_a_call_to_write_return_ms', {}))}",
        f"[{rate}] switch (a) command sent -> key in Redis (incl. event-loop queueing): "
        f"{fmt(r.get('switch_a_sent_to_key_ms', {}))}",
        f"[{rate}] switch (a) app _write called -> render shows killed: {fmt(r.get('switch_a_call_to_render_ms', {}))}",
        f"[{rate}] switch (b) key SET by another client -> render shows killed: "
        f"{fmt(r.get('switch_b_set_to_render_ms', {}))}",
        f"[{rate}] costtop CPU (steady, % of one core): {s.get('costtop_cpu_percent')} % "
        f"(max 1-s sample {s.get('costtop_cpu_percent_max_1s')} %)",
        f"[{rate}] costtop RSS: mean {s.get('costtop_rss_mb_mean')} MB, max {s.get('costtop_rss_mb_max')} MB, "
        f"peak (VmHWM) {s.get('costtop_rss_mb_peak_hwm')} MB",
        f"[{rate}] sharing the machine: load generator {s.get('load_cpu_percent')} %, PostgreSQL "
        f"{s.get('postgres_cpu_percent')} %, everything else {s.get('other_cpu_percent')} % of one core "
        f"({os.cpu_count()} cores; machine busy {s.get('machine_busy_percent')} %)",
        f"[{rate}] renders/s {r.get('renders_per_s')}, longest gap between renders "
        f"{r.get('max_gap_between_renders_s')} s; "
        f"draw (_show, UI loop) {fmt(r.get('draw_ms', {}))}; snapshot build (engine.snapshot, session "
        f"thread) {fmt(r.get('engine_snapshot_ms', {}))}",
        f"[{rate}] Postgres read per refresh: {fmt(r.get('postgres_read_ms', {}))}, median "
        f"{r.get('rows_per_read_median')} rows; start-up to first live render "
        f"{r.get('startup_to_first_live_render_s')} s, caught up with the load after "
        f"{r.get('startup_to_caught_up_s')} s (baseline read {r.get('baseline_read_s')} s, "
        f"{r.get('baseline_window_rows')} window groups)",
    ]
    return out


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60, help="steady-state window per rate (default 60)")
    parser.add_argument("--rates", type=float, nargs="+", default=[2000, 10000])
    parser.add_argument("--agents", type=int, default=200)
    parser.add_argument("--models", type=int, default=20)
    parser.add_argument("--refresh", type=float, default=1.0)
    parser.add_argument("--warmup", type=float, default=15, help="seconds after the first live render (default 15)")
    parser.add_argument("--backfill", type=float, default=330, help="seconds of history first (default 330)")
    parser.add_argument("--trials", type=int, default=10, help="switch-latency trials of each kind (default 10)")
    parser.add_argument("--trial-timeout", type=float, default=15)
    parser.add_argument("--switch-budget", type=float, default=150, help="stop switch trials after this long")
    parser.add_argument("--start-timeout", type=float, default=180)
    parser.add_argument("--caught-up", type=float, default=3.0, metavar="SECONDS",
                        help="steady state starts (after --warmup) once a render shows rows this fresh (default 3)")
    parser.add_argument("--method", choices=("executemany", "copy"), default="executemany")
    parser.add_argument("--costtop-timeout", type=float, help="costtop's query timeout (default its own)")
    parser.add_argument("--profile", type=Path, metavar="DIR",
                        help="cProfile costtop into DIR/costtop-<rate>.prof (slows it: not for the CPU figure)")
    parser.add_argument("--no-freeze", action="store_true",
                        help="import costtop from src/ as it is (default: a frozen copy, see benchmarks/frozen.py)")
    parser.add_argument("--keep-logs", type=Path, help="keep the batch and app logs in this directory")
    parser.add_argument("--out", type=Path, help="JSON path (default benchmarks/results/live-<timestamp>.json)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return frozen.run("benchmarks.live", args, _main)


def _main(args: argparse.Namespace, source: dict[str, Any]) -> int:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    logs = args.keep_logs or Path(tempfile.mkdtemp(prefix="costtop-live-logs-"))
    runs: list[dict[str, Any]] = []
    try:
        for rate in args.rates:
            try:
                runs.append(run_rate(rate, args, logs))
            except RuntimeError as exc:
                print(f"[{rate:g}/s] FAILED: {exc}", flush=True)
                runs.append({"rate": rate, "method": args.method, "error": str(exc)})
    finally:
        if args.keep_logs is None:
            shutil.rmtree(logs, ignore_errors=True)
    print("\n== results ==")
    for r in runs:
        for line in ([f"[{r['rate']:g}/s] FAILED: {r['error']}"] if "error" in r else lines(r)):
            print(line)
    out = args.out or RESULTS / f"live-{stamp}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "timestamp": stamp, "command": " ".join(sys.argv),
        "machine": {"cores": os.cpu_count(), "python": platform.python_version(), "textual": textual.__version__,
                    "platform": platform.platform()},
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "source": {**source, "imported_from": str(Path(costtop.__file__).parent),
                   "live_src_changed_since": frozen.changed_since(source)},
        "runs": runs,
    }
    out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"\nJSON: {out}")
    return 0 if all("error" not in r for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
