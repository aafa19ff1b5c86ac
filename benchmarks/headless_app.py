"""costtop headless, instrumented: one JSON line per render, and the app's own write path on command.

    python -m benchmarks.headless_app --redis-url URL --database-url URL --log FILE
                                      [--refresh 1] [--size 160x50] [--timeout 3] [--max-seconds 900]
                                      [--profile FILE] [--probe-every S] [--watch-lock]

Runs `CosttopApp` unchanged (same session, same thread, same timers) with Textual's headless driver, in a
process of its own so that benchmarks/live.py can read its CPU time and RSS from /proc. Subclassing
adds only observation:

- the engine is a subclass that remembers the newest row it has ingested (largest `id` and `created_at`
  over the rows of the baseline and of every RowsRead), and how long ingest and snapshot took;
- every snapshot drawn (`_show`) logs `{"ev": "render", "t": time.time() when it returned, "seq", "max_id",
  "max_created_at", "killed": [agents the snapshot shows killed], "stale": [sources not connected],
  "badges_stale": [sources whose header badge reads STALE], ...}`, and once the screen has been
  refreshed after it (`call_after_refresh`), `{"ev": "painted", "t", "seq"}`. The headless driver skips
  only the last step of a frame, turning the compositor's update into escape sequences and writing them;
- the feed is wrapped to log each Postgres read (`rows`), the baseline, and each switch write
  (`write_start`/`write_done` with times around `LiveFeed.write`).

Commands, one per line on stdin:
- `kill AGENT`: logs `{"ev": "write_call", "t", "agent"}` then calls the app's `_write` worker with
  `SwitchChange("set", "kill", "agent", AGENT, reason)`, exactly what confirming the kill dialog does;
- `key NAME` (`down`, `up`, `question_mark`, `escape`, `s`, `q`): the key posted to the app from the
  command thread, and `{"ev": "key_painted", "key", "t_post", "t"}` logged at the end of the first
  painted frame that shows its effect (benchmarks/key_probe.py; for `q`, `key_post` only: the end is
  the `exit` event and the process's exit);
- `quit` (or end of input): exit.

With `--probe-every S`, `{"ev": "memory", ...}` every S seconds (benchmarks/memory_probe.py). Every
garbage collection of 5 ms or more: `{"ev": "gc", "t", "gen", "s"}`; every ingest of a chunk of rows and
every snapshot build of 10 ms or more: `{"ev": "ingest", "t", "n", "s"}`, `{"ev": "build", "t", "s"}`.
With `--watch-lock`, `{"ev": "gil_wait", "t", "s"}` each time a thread sleeping 2 ms at a time wakes
20 ms or more late (the other threads held the interpreter lock that long; the watcher itself adds
500 wake-ups a second, so leave it off when measuring CPU).
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import faulthandler
import gc
import json
import signal
import sys
import threading
import time
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from benchmarks.key_probe import KeyProbe
from benchmarks.memory_probe import probe
from costtop import session as session_module
from costtop.allocator import pin_mmap_threshold
from costtop.collector import space_full_collections
from costtop.config import Settings, Thresholds
from costtop.engine.engine import Engine
from costtop.engine.snapshot import AgentState, Snapshot
from costtop.session import Session
from costtop.sources.feed import LiveFeed
from costtop.sources.records import Baseline, CallRecord, RedisState, SwitchChange, WriteResult
from costtop.ui.app import CosttopApp
from costtop.ui.widgets.summary import badge


class EventLog:
    """JSON lines, flushed one by one (a few per second), so a reader can tail the file."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.lock = threading.Lock()

    def __call__(self, ev: str, **fields: Any) -> None:
        line = json.dumps({"ev": ev, **fields}, default=str)
        with self.lock:
            self.stream.write(line + "\n")
            self.stream.flush()


class TrackingEngine(Engine):
    """The real engine, plus the newest row it has ingested and the time spent in it."""

    def __init__(self, thresholds: Thresholds | None = None) -> None:
        super().__init__(thresholds)
        self.max_id: int | None = None
        self.max_created_at: float | None = None
        self.ingested = 0
        self.ingest_seconds = 0.0
        self.last_snapshot_seconds = 0.0
        self.marks: dict[int, tuple[Any, ...]] = {}
        self.log: EventLog | None = None  # ingests and builds of 10 ms or more are logged when set

    def ingest(self, rows: Iterable[CallRecord]) -> None:
        rows = list(rows)
        start = time.perf_counter()
        super().ingest(rows)
        took = time.perf_counter() - start
        self.ingest_seconds += took
        if self.log is not None and took >= 0.01:
            self.log("ingest", t=time.time(), n=len(rows), s=round(took, 4))
        self.ingested += len(rows)
        if rows:
            newest_id = max((r.key for r in rows if isinstance(r.key, int)), default=None)
            if newest_id is not None and (self.max_id is None or newest_id > self.max_id):
                self.max_id = newest_id
            newest = max(r.created_at for r in rows).timestamp()
            if self.max_created_at is None or newest > self.max_created_at:
                self.max_created_at = newest

    def snapshot(self, now: datetime, redis: RedisState | None, sources: Any = ()) -> Snapshot:
        start = time.perf_counter()
        snap = super().snapshot(now, redis, sources)
        self.last_snapshot_seconds = time.perf_counter() - start
        if self.log is not None and self.last_snapshot_seconds >= 0.01:
            self.log("build", t=time.time(), s=round(self.last_snapshot_seconds, 4))
        # What this snapshot holds, as of when it was built: the session's thread ingests on meanwhile.
        self.marks[id(snap)] = (self.max_id, self.max_created_at, self.ingested, self.last_snapshot_seconds,
                                self.ingest_seconds)
        while len(self.marks) > 64:  # snapshots the screen skipped
            del self.marks[next(iter(self.marks))]
        return snap


class TimedFeed:
    """`LiveFeed`, with every Postgres read and every write logged with its times."""

    def __init__(self, inner: LiveFeed, log: EventLog) -> None:
        self.inner = inner
        self.log = log
        self.read_only = inner.read_only

    async def read_redis(self) -> RedisState:
        return await self.inner.read_redis()

    async def read_fallback(self) -> object:
        return await self.inner.read_fallback()

    async def read_counters(self, day: str) -> object:
        return await self.inner.read_counters(day)

    async def agent_traces(self, agent: str, since: datetime) -> object:
        return await self.inner.agent_traces(agent, since)

    async def agent_steps(self, agent: str, since: datetime, traces: object = None) -> object:
        return await self.inner.agent_steps(agent, since, traces)  # type: ignore[arg-type]

    async def trace_steps(self, trace_id: str) -> object:
        return await self.inner.trace_steps(trace_id)

    async def agent_models(self, agent: str, since: datetime) -> object:
        return await self.inner.agent_models(agent, since)

    async def agent_calls(self, agent: str) -> object:
        return await self.inner.agent_calls(agent)

    async def connect_postgres(self) -> frozenset[str]:
        return await self.inner.connect_postgres()

    def read_quality(self) -> object:
        return self.inner.read_quality()

    def reads_per_refresh(self) -> int:
        return self.inner.reads_per_refresh()

    async def baseline(self, now: datetime) -> Baseline:
        t0 = time.time()
        try:
            baseline = await self.inner.baseline(now)
        except Exception as exc:
            self.log("baseline_failed", t0=t0, t1=time.time(), error=str(exc))
            raise
        # The baseline's row-by-row part has been renamed before (rows -> window); count whichever exists.
        rows = getattr(baseline, "window", None) or getattr(baseline, "rows", ())
        watermark = getattr(self.inner.postgres, "watermark", None)
        self.log("baseline", t0=t0, t1=time.time(), rows=len(rows), high=str(getattr(watermark, "high", None)))
        return baseline

    def audit_pending(self) -> int:
        return self.inner.audit_pending()

    async def drain_audit(self) -> tuple[int, str | None]:
        return await self.inner.drain_audit()

    async def spend_history(self, day: str) -> object:
        return await self.inner.spend_history(day)

    async def baseline_days(self) -> object:
        t0 = time.time()
        part = await self.inner.baseline_days()
        self.log("baseline_days", t0=t0, t1=time.time())
        return part

    async def new_rows(self) -> list[CallRecord]:
        t0 = time.time()
        try:
            rows = await self.inner.new_rows()
        except Exception as exc:
            self.log("rows_failed", t0=t0, t1=time.time(), error=str(exc))
            raise
        watermark = self.inner.postgres.watermark
        self.log("rows", t0=t0, t1=time.time(), n=len(rows), tracked=len(watermark) if watermark else None)
        return rows

    async def write(self, change: SwitchChange) -> WriteResult:
        t0 = time.time()
        self.log("write_start", t=t0, target=change.target)
        result = await self.inner.write(change)
        self.log("write_done", t0=t0, t1=time.time(), target=change.target, ok=result.ok,
                 audit=result.audit_written, message=result.message)
        return result

    async def close(self) -> None:
        await self.inner.close()


def tracked_session(settings: Settings, log: EventLog) -> Session:
    """The real session on the real feed, with the tracking engine and the timed feed, logging to `log`."""
    engine = TrackingEngine(settings.thresholds)
    engine.log = log
    return Session(settings, TimedFeed(LiveFeed(settings), log), engine=engine)


class HeadlessCosttop(KeyProbe, CosttopApp):
    def __init__(self, settings: Settings, log: EventLog, max_seconds: float = 900, probe_every: float = 0,
                 session_log: str | None = None) -> None:
        session: Any
        if session_log is not None:  # the experiment of benchmarks/process_session.py
            from benchmarks.process_session import SessionProxy

            session = SessionProxy(settings, session_log)
            self.marks = session.marks
        else:
            session = tracked_session(settings, log)
            self.marks = session.engine.marks  # type: ignore[attr-defined]  # a TrackingEngine
        super().__init__(settings, session)
        self.probe_every = probe_every
        self.log_event = log
        self.max_seconds = max_seconds
        self.render_seq = 0
        self._init_probe()

    def on_mount(self) -> None:
        # Textual also calls CosttopApp.on_mount (handlers run for every class in the MRO): no super().
        self.log_event("started", t=time.time())
        self.set_timer(self.max_seconds, self.exit)
        if self.probe_every > 0:
            self.set_interval(self.probe_every, self._probe)
        threading.Thread(target=_stdin_commands, args=(self,), name="commands", daemon=True).start()

    def _probe(self) -> None:
        self.log_event("memory", t=time.time(), **probe())

    def _show(self, snap: Snapshot) -> None:
        """Drawing a snapshot on the UI's loop; `render_s` is this alone (the session built the
        snapshot on its thread: `snapshot_s`)."""
        start = time.perf_counter()
        super()._show(snap)
        took = time.perf_counter() - start
        mark = self.marks.get(id(snap))
        if mark is None:
            return
        max_id, max_created_at, ingested, snapshot_s, ingest_s = mark
        self.render_seq += 1
        seq = self.render_seq
        killed = [a.agent_id for a in snap.agents if a.state is AgentState.KILLED]
        self.log_event("render", t=time.time(), seq=seq, max_id=max_id,
                       max_created_at=max_created_at, rows=ingested, agents=len(snap.agents),
                       killed=killed[:50], render_s=round(took, 6),
                       stale=[v.name for v in snap.sources if not v.connected],
                       badges_stale=[v.name for v in snap.sources if "STALE" in badge(v).plain],
                       source_errors=[v.error for v in snap.sources if v.error],
                       snapshot_s=round(snapshot_s, 6),
                       ingest_total_s=round(ingest_s, 6))
        self.call_after_refresh(lambda: self.log_event("painted", t=time.time(), seq=seq))

    def command(self, line: str) -> None:
        verb, _, arg = line.strip().partition(" ")
        if verb == "kill" and arg:
            self.log_event("write_call", t=time.time(), agent=arg)
            self._write(SwitchChange("set", "kill", "agent", arg, reason="benchmark"))
        elif verb == "quit":
            self.exit()


def _stdin_commands(app: HeadlessCosttop) -> None:
    for line in sys.stdin:
        verb, _, arg = line.strip().partition(" ")
        if verb == "key":  # posted from this thread, as a terminal driver's input thread posts keys
            app.press(arg)
            continue
        try:
            app.call_from_thread(app.command, line)
        except RuntimeError:  # the app has stopped
            return
    try:
        app.call_from_thread(app.exit)
    except RuntimeError:
        return


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--log", type=Path, required=True, help="JSON lines: renders, reads, writes")
    parser.add_argument("--refresh", type=float, default=1.0)
    parser.add_argument("--size", default="160x50", help="virtual screen, COLUMNSxLINES (default 160x50)")
    parser.add_argument("--timeout", type=float, default=None,
                        help="costtop's per-query timeout in seconds (default: costtop's own, 3)")
    parser.add_argument("--max-seconds", type=float, default=900, help="exit by itself after this long")
    parser.add_argument("--profile", type=Path, help="write cProfile stats here at exit (slows the app)")
    parser.add_argument("--probe-every", type=float, default=0, help="log memory statistics every S seconds")
    parser.add_argument("--ingest-chunk", type=int, help="costtop.session.INGEST_CHUNK for this run (an experiment)")
    parser.add_argument("--switch-interval", type=float, help="sys.setswitchinterval for this run (an experiment)")
    parser.add_argument("--session-process", action="store_true",
                        help="an experiment: the session in a process of its own (benchmarks/process_session.py)")
    parser.add_argument("--watch-lock", action="store_true",
                        help="log each time a 2 ms sleeper thread wakes 20 ms or more late (gil_wait)")
    return parser


def watch_collections(log: EventLog, at_least: float = 0.005) -> None:
    """`{"ev": "gc", "t", "gen", "s"}` for each garbage collection of at least `at_least` seconds: a full
    collection walks every object of a big heap with the interpreter lock held, so both threads stop."""
    started: list[float] = []

    def callback(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started[:] = [time.perf_counter()]
        elif started:
            took = time.perf_counter() - started[0]
            if took >= at_least:
                with contextlib.suppress(ValueError):  # a collection at exit, after the log was closed
                    log("gc", t=time.time(), gen=info["generation"], s=round(took, 4))

    gc.callbacks.append(callback)


def watch_interpreter_lock(log: EventLog, at_least: float = 0.02) -> None:
    """`{"ev": "gil_wait", "t", "s"}` whenever a thread that sleeps 2 ms at a time wakes `at_least`
    seconds late: the longest any other thread kept the interpreter lock (or a collection stopped all)."""
    def watch() -> None:
        while True:
            start = time.perf_counter()
            time.sleep(0.002)
            late = time.perf_counter() - start - 0.002
            if late >= at_least:
                log("gil_wait", t=time.time(), s=round(late, 4))

    threading.Thread(target=watch, name="lock-watch", daemon=True).start()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    faulthandler.register(signal.SIGUSR1, all_threads=True)  # every thread's stack to stderr, on demand
    if args.ingest_chunk:
        session_module.INGEST_CHUNK = args.ingest_chunk
    if args.switch_interval:
        sys.setswitchinterval(args.switch_interval)
    pin_mmap_threshold()  # as `costtop` does
    space_full_collections()
    width, _, height = args.size.partition("x")
    extra: dict[str, Any] = {} if args.timeout is None else {"timeout_seconds": args.timeout}
    settings = Settings(redis_url=args.redis_url, database_url=args.database_url, refresh=args.refresh, **extra)
    with open(args.log, "w", encoding="utf-8") as stream:
        log = EventLog(stream)
        watch_collections(log)
        if args.watch_lock:
            watch_interpreter_lock(log)
        app = HeadlessCosttop(settings, log, args.max_seconds, args.probe_every,
                              f"{args.log}.session" if args.session_process else None)
        profiler = cProfile.Profile() if args.profile else None
        if profiler is not None:
            profiler.enable()
        try:
            app.run(headless=True, size=(int(width), int(height)))
        finally:
            if profiler is not None:
                profiler.disable()
                profiler.dump_stats(str(args.profile))
            log("exit", t=time.time())
    return 0


if __name__ == "__main__":
    sys.exit(main())
