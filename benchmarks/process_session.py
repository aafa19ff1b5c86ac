"""An experiment for issue 17: the session in a process of its own, its snapshots pickled to the UI.

    python -m benchmarks.keys ... --app-arg=--session-process

Not part of costtop. `SessionProxy` answers what `CosttopApp` asks of its session (snapshots, sort,
refresh, stop) for a `Session` that runs in a child process (`child_main`, started with `spawn`), so
the two no longer share an interpreter lock: the question this answers is whether the UI's keys are
answered within 100 ms at 10,000 calls/s when nothing else runs Python in its process. Each snapshot
the child builds is pickled whole and sent through a pipe (a few milliseconds at 200 agents; at
100,000 agents a snapshot takes seconds to pickle, so this is not a design for large fleets). The
child logs its reads, ingests and builds to `<log>.session`, with `{"ev": "session_cpu", "t", "cpu"}`
every second (its CPU time: the UI process's is what benchmarks/keys.py reads from /proc).
Drill-down screens and switch writes are not forwarded.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import pickle
import threading
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from typing import Any

from costtop.config import Settings
from costtop.engine.snapshot import Snapshot, SortKey
from costtop.session import STOP_SECONDS

MARKS_KEPT = 64


def utc_now() -> datetime:
    return datetime.now(UTC)


class SessionProxy:
    """The UI's side: a reader thread (`run_in_thread`, the app's session worker) keeps the newest
    snapshot; requests go to the child as small pickled tuples."""

    stop_seconds = STOP_SECONDS

    def __init__(self, settings: Settings, log_path: str) -> None:
        context = multiprocessing.get_context("spawn")
        self.settings = settings
        self.read_only = True
        self.refresh_seconds = settings.refresh
        self.clock = utc_now
        self.on_snapshot: Any = lambda: None
        self.marks: dict[int, tuple[Any, ...]] = {}  # id(snapshot) -> what the child's engine had ingested
        self.finished = threading.Event()
        self._conn, child = context.Pipe()
        self._process = context.Process(target=child_main, args=(child, settings, log_path), daemon=True)
        self._lock = threading.Lock()
        self._latest: Snapshot | None = None
        self._ring = False
        self._waiting = False
        # Started here, before the app runs: once Textual has replaced stdout and stderr, spawning fails
        # ("bad value(s) in fds_to_keep").
        self._process.start()
        self._started = True

    @property
    def started(self) -> bool:
        return self._started

    def run_in_thread(self) -> None:
        try:
            while True:
                try:
                    data = self._conn.recv_bytes()
                except (EOFError, OSError):
                    break
                snap, mark, ring = pickle.loads(data)
                with self._lock:
                    self.marks[id(snap)] = mark
                    while len(self.marks) > MARKS_KEPT:
                        del self.marks[next(iter(self.marks))]
                    self._latest = snap
                    self._ring = self._ring or ring
                    announce = not self._waiting
                    self._waiting = True
                if announce:
                    self.on_snapshot()
        finally:
            self._process.join(STOP_SECONDS)
            if self._process.is_alive():
                self._process.kill()
            self.finished.set()

    def take(self) -> tuple[Snapshot | None, bool]:
        with self._lock:
            snap, ring = self._latest, self._ring
            self._waiting = self._ring = False
        return snap, ring

    def _send(self, *message: object) -> None:
        with contextlib.suppress(OSError, ValueError):  # the child has gone: nothing to ask it any more
            self._conn.send(message)

    def sort_by(self, key: SortKey, reverse: bool = False) -> None:
        self._send("sort", key, reverse)

    def acknowledge(self, keys: Iterable[str]) -> None:
        self._send("ack", tuple(keys))

    def request_snapshot(self) -> None:
        self._send("snapshot")

    def set_refresh(self, seconds: float) -> None:
        self.refresh_seconds = seconds
        self._send("refresh", seconds)

    def resync(self) -> None:
        self._send("resync")

    def stop(self) -> None:
        self._send("stop")


def child_main(conn: Connection, settings: Settings, log_path: str) -> None:
    """The child: the same session, feed and engine as the headless app's, on its own main thread."""
    from benchmarks.headless_app import EventLog, TrackingEngine, tracked_session
    from costtop.allocator import pin_mmap_threshold
    from costtop.collector import space_full_collections

    pin_mmap_threshold()
    space_full_collections()
    with open(log_path, "w", encoding="utf-8") as stream:
        log = EventLog(stream)
        session = tracked_session(settings, log)
        engine: TrackingEngine = session.engine  # type: ignore[assignment]
        lock = threading.Lock()

        def on_snapshot() -> None:
            snap, ring = session.take()
            if snap is None:
                return
            data = pickle.dumps((snap, engine.marks.get(id(snap)), ring), protocol=pickle.HIGHEST_PROTOCOL)
            with lock:
                conn.send_bytes(data)

        def commands() -> None:
            while True:
                try:
                    verb, *args = conn.recv()
                except (EOFError, OSError):
                    session.stop()
                    return
                if verb == "sort":
                    session.sort_by(*args)
                elif verb == "ack":
                    session.acknowledge(*args)
                elif verb == "snapshot":
                    session.request_snapshot()
                elif verb == "refresh":
                    session.set_refresh(*args)
                elif verb == "resync":
                    session.resync()
                elif verb == "stop":
                    session.stop()
                    return

        def cpu() -> None:
            while not session.finished.is_set():
                log("session_cpu", t=time.time(), cpu=time.process_time())
                time.sleep(1.0)

        session.on_snapshot = on_snapshot
        threading.Thread(target=commands, name="commands", daemon=True).start()
        threading.Thread(target=cpu, name="cpu", daemon=True).start()
        session.run_in_thread()
        conn.close()
