"""The session: the read loops between the sources and the engine, and the snapshots they make.

One object owns the feed (every reader and the one writer) and the engine. It runs the read loops with
one backoff policy, hands the engine what they read through its named methods, and publishes each new
`Snapshot`. The app, `costtop snapshot`, `costtop report` and the benchmarks all go through it, so the
steps from a read to a figure exist once.

The live app runs the session on an event loop of its own, in a thread (`run_in_thread`): decoding
rows, ingesting them and building snapshots then never hold the UI's event loop, and a key press waits
for the interpreter lock at most a switch interval, not behind a read. The engine is only ever touched
on the session's loop. The UI talks to the session through the methods marked *thread-safe* below,
and gets snapshots back with `take()` after `on_snapshot` says one is waiting (a fast source never
queues more than one for the screen). Rows are ingested in chunks, so an operator's sort or
acknowledgement waits for one chunk at most, not a whole read.

Without a thread (`read_once`, `read_day`, tests of the loops themselves) the same methods run on the
caller's loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import replace
from datetime import UTC, datetime
from typing import TypeVar

from costtop.collector import Settler
from costtop.config import Settings
from costtop.engine.engine import Engine, day_of
from costtop.engine.snapshot import Snapshot, SortKey
from costtop.engine.traces import with_patterns
from costtop.pricing.catalog import Catalog
from costtop.pricing.catalog import current as current_catalog
from costtop.sources.day_report import DayRecords
from costtop.sources.errors import SourceError
from costtop.sources.feed import Feed, LiveFeed
from costtop.sources.records import (
    CallRecord,
    FallbackState,
    ModelShare,
    Outcome,
    RedisState,
    SourceStatus,
    Step,
    SwitchChange,
    TraceSummary,
    WriteResult,
    switch_key,
)
from costtop.text import one_line

COUNTERS_SECONDS = 10.0  # the gateway's tallies move slowly: read every few seconds
HISTORY_CHECK_SECONDS = 1.0  # how soon after a new UTC day (or the start) the week is read
HISTORY_RETRY_SECONDS = 30.0  # a week too big to sum in time: tried again after 1 minute, doubling
HISTORY_MAX_RETRY_SECONDS = 3600.0
AUDIT_RETRY_SECONDS = 60.0  # a table that refuses the kept audit rows is asked again a minute later
REDIS_POLL_SECONDS = 0.5  # a switch set from outside shows within one poll plus one frame
REDIS_READ_SHARE = 3.0  # the pause after a switch read is at least this many times the read (redis_pause)
REDIS_MAX_PAUSE = 2.0  # and at most this: a healthy Redis never waits long enough to look stale
MAX_BACKOFF_SECONDS = 30.0
INGEST_CHUNK = 2_000  # rows ingested between two looks at the operator's requests
STOP_SECONDS = 1.5  # closing the connections at quit: never longer than this
SOURCES = ("Redis", "Postgres")

T = TypeVar("T")
log = logging.getLogger(__name__)


def utc_now() -> datetime:
    return datetime.now(UTC)


def redis_pause(read_seconds: float) -> float:
    """The wait before the next switch read: REDIS_POLL_SECONDS, or longer when a read is long (50,000
    switches are half a second of the session's time), so reading Redis takes at most a quarter of it;
    but never over REDIS_MAX_PAUSE, so a healthy Redis is read well within the badge's 5 s."""
    return min(REDIS_MAX_PAUSE, max(REDIS_POLL_SECONDS, REDIS_READ_SHARE * read_seconds))


class Backoff:
    """The one retry policy of every read loop: after each failure in a row the wait doubles from the
    loop's own base, up to a cap; a good read starts over."""

    def __init__(self, cap: float = MAX_BACKOFF_SECONDS) -> None:
        self.cap = cap
        self.failures = 0

    def failed(self, base: float) -> float:
        """Count a failure; the seconds to wait before the next try."""
        self.failures += 1
        return min(self.cap, base * 2 ** min(self.failures, 30))

    def ok(self) -> None:
        self.failures = 0


class Session:
    stop_seconds = STOP_SECONDS  # how long stop() may take to close the connections

    def __init__(self, settings: Settings, feed: Feed, clock: Callable[[], datetime] = utc_now,
                 catalog: Catalog | None = None, engine: Engine | None = None) -> None:
        self.settings = settings
        self.feed = feed
        self.clock = clock
        self.read_only = settings.read_only or feed.read_only
        self.engine = engine if engine is not None else Engine(settings.thresholds)
        self.engine.use_catalog(catalog if catalog is not None else current_catalog())
        self.redis_state: RedisState | None = None  # None: the switches are unknown (Redis failed)
        self.status = {name: SourceStatus(name, False, None) for name in SOURCES}
        self.refresh_seconds = settings.refresh  # the operator's `+` and `-` change it
        # Called on the session's thread when a snapshot is waiting to be taken; the app posts a message.
        self.on_snapshot: Callable[[], None] = lambda: None
        self.latest: Snapshot | None = None  # the last snapshot built
        self.published = 0  # snapshots built so far
        self.taken = 0  # the number of the last snapshot the UI took
        self._lock = threading.Lock()  # guards what take() hands across threads
        self._settler = Settler()  # big reads' objects out of the garbage collector's way (collector.py)
        self._waiting = False  # a snapshot was announced and not taken yet
        self._ring = False  # a critical alert tripped in a snapshot not taken yet
        self._loop: asyncio.AbstractEventLoop | None = None
        self._running = threading.Event()  # set once the session's loop runs
        self.finished = threading.Event()  # set when run() has ended and closed the connections
        self._stop: asyncio.Event | None = None
        self._stop_asked = False  # stop() came, perhaps before run() had begun
        self._last_publish = 0.0
        self._need_baseline = True
        self._baseline_day = ""  # the UTC day of the last baseline: a new day reads everything again
        self._generation = 0  # baselines read so far: a late half of an old one is ignored
        self._day_task: asyncio.Task[None] | None = None
        self._reads_in_flight = 0  # short reads waiting for their answer: no snapshot is built meanwhile
        self._publish_pending = False  # a snapshot was asked for while one was
        self._next_drain = 0.0  # monotonic time of the next try at writing kept audit rows
        # The open agent screen's traces, each as judged: (its steps then, its runaway patterns).
        self._judged_traces: dict[str, tuple[int, frozenset[str]]] = {}

    @classmethod
    def live(cls, settings: Settings, clock: Callable[[], datetime] | None = None) -> Session:
        """A session on the real servers; `clock` (default: the system's) for both it and the readers."""
        return cls(settings, LiveFeed(settings, clock), clock or utc_now)

    # -- running ---------------------------------------------------------------------------------

    def run_in_thread(self) -> None:
        """The session's own event loop until `stop()`: the body of the app's session thread."""
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(self.run())
        finally:
            # What still winds down after run()'s bound (a query whose cancellation a busy server has not
            # answered yet) is dropped with the loop, quietly: quitting does not wait for it.
            loop.set_exception_handler(lambda _loop, _context: None)
            loop.close()

    async def run(self) -> None:
        """Every read loop, until `stop()`; then the connections are closed (within STOP_SECONDS)."""
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        if self._stop_asked:  # quit before the thread got here: start nothing, end at once
            self._stop.set()
        self.finished.clear()
        self.engine.note_audit(self.feed.audit_pending(), None)  # rows an earlier session kept, perhaps
        loops: dict[str, Callable[[], Awaitable[None]]] = {
            "redis": self._redis_loop, "postgres": self._postgres_loop, "counters": self._counters_loop,
            "history": self._history_loop, "tick": self._tick_loop}
        if self.settings.fallback_file:
            loops["fallback"] = self._fallback_loop
        tasks = [asyncio.create_task(self._supervised(name, body), name=f"session-{name}")
                 for name, body in loops.items()]
        self._running.set()
        try:
            await self._stop.wait()
        finally:
            self._running.clear()
            deadline = time.monotonic() + STOP_SECONDS
            for task in [*tasks, self._day_task]:
                if task is not None:
                    task.cancel()
            # A loop cancelled in the middle of a query ends when the server answers the cancellation,
            # which a busy server can take long to do (a quit waited for it for more than 30 s at 10,000
            # calls/s): the loops and the close get STOP_SECONDS between them, never more.
            await asyncio.wait(tasks, timeout=STOP_SECONDS / 2)
            try:
                close = asyncio.ensure_future(self.feed.close())
                await asyncio.wait([close], timeout=max(0.1, deadline - time.monotonic()))
                if close.done() and not close.cancelled():
                    close.exception()  # quitting: a close that failed must not hold it either
            finally:
                self.finished.set()

    @property
    def started(self) -> bool:
        """Thread-safe: run() has begun (it may have ended since)."""
        return self._loop is not None

    def stop(self) -> None:
        """Thread-safe: end `run()` (its loops are cancelled, the connections closed), or, if it has
        not begun yet, make it end as soon as it does."""
        self._stop_asked = True
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nothing left to stop
                loop.call_soon_threadsafe(stop.set)

    async def _supervised(self, name: str, body: Callable[[], Awaitable[None]]) -> None:
        """A loop that fails on something unforeseen (a bug) is started again after a backoff, never
        left silently dead; its source shows the error meanwhile."""
        backoff = Backoff()
        while True:
            try:
                await body()
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.exception("session loop %s failed", name)
                source = "Redis" if name in ("redis", "counters") else "Postgres"
                self._source_failed(source, f"{name} loop: {self._failure(exc)}")
                await asyncio.sleep(backoff.failed(1.0))

    # -- what the UI asks (thread-safe) ------------------------------------------------------------

    def submit(self, change: Callable[[], object], at_once: bool = False) -> None:
        """Thread-safe: run `change` on the session's loop, then publish a snapshot that shows it.
        `at_once`: built even while a read is in flight, for what the operator waits to see (a new
        order): a build is tens of milliseconds, far inside a read's timeout, since it rebuilds only the
        rows that changed."""
        def apply() -> None:
            change()
            if at_once:
                self.build()
            else:
                self.publish()

        loop = self._loop
        if loop is None or not self._running.is_set():
            apply()  # not running (a test, or before the start): nothing else touches the engine
        else:
            loop.call_soon_threadsafe(apply)

    def sort_by(self, key: SortKey, reverse: bool = False) -> None:
        self.submit(lambda: self.engine.sort_by(key, reverse), at_once=True)

    def acknowledge(self, keys: Iterable[str]) -> None:
        keys = tuple(keys)
        self.submit(lambda: self.engine.acknowledge(keys), at_once=True)

    def resync(self) -> None:
        """Read every figure again from Postgres (a new baseline) at the next read."""
        self.submit(self._ask_baseline)

    def set_refresh(self, seconds: float) -> None:
        def change() -> None:
            self.refresh_seconds = seconds

        self.submit(change)

    def request_snapshot(self) -> None:
        """Thread-safe: publish a snapshot now (the screen was resized, a filter changed...)."""
        self.submit(lambda: None)

    async def publish_now(self) -> int:
        """From any loop: a snapshot of now, after everything asked before; its number (see `taken`)."""
        async def publish() -> int:
            self.build()
            return self.published

        return await self.call(publish)

    def take(self) -> tuple[Snapshot | None, bool]:
        """Thread-safe: the latest snapshot, and whether a critical alert tripped since the last take."""
        with self._lock:
            snap, ring = self.latest, self._ring
            self._waiting = self._ring = False
            self.taken = self.published
        return snap, ring

    async def call(self, work: Callable[..., Awaitable[T]], *args: object) -> T:
        """Await `work(*args)` on the session's loop, from any loop: the feed's connections belong there."""
        loop = self._loop
        here = asyncio.get_running_loop()
        if loop is None and not self._running.is_set():
            # The app starts its session thread at mount; a key pressed before it runs waits for it.
            await asyncio.to_thread(self._running.wait, 5.0)
            loop = self._loop
        if loop is None or loop is here or not self._running.is_set():
            return await work(*args)
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(work(*args), loop))  # type: ignore[arg-type]

    async def write(self, change: SwitchChange) -> tuple[WriteResult, SwitchChange]:
        """A switch change through the feed's one writer; returns the result and the change with the
        key written. Its effect comes back the ordinary way, from a read of Redis right after."""
        return await self.call(self._write, change)

    async def agent_traces(self, agent: str | None, since: datetime) -> list[TraceSummary]:
        """The agent's traces, each with the runaway patterns its steps show: both reads and the judging
        run on the session's loop, so the screen's loop never sums thousands of steps."""
        return await self.call(self._agent_traces, agent, since)

    async def _agent_traces(self, agent: str | None, since: datetime) -> list[TraceSummary]:
        """Only the traces that grew since they were judged (or are new) have their steps read again:
        an open agent screen reloads every few seconds, and a quiet hour's traces do not change."""
        traces = await self.feed.agent_traces(agent, since)  # type: ignore[arg-type]
        judged = self._judged_traces
        grown = [t for t in traces if judged.get(t.trace_id, (-1, frozenset()))[0] != t.steps]
        if grown:
            steps = await self.feed.agent_steps(agent, since, [t.trace_id for t in grown])  # type: ignore[arg-type]
            th = self.settings.thresholds
            for t in with_patterns(grown, steps, th.loop_calls, th.context_tokens):
                judged[t.trace_id] = (t.steps, t.patterns)
        # Kept for the traces listed now only: the next agent's screen starts afresh.
        self._judged_traces = {t.trace_id: judged[t.trace_id] for t in traces}
        return [replace(t, patterns=judged[t.trace_id][1]) for t in traces]

    async def agent_models(self, agent: str | None, since: datetime) -> list[ModelShare]:
        return await self.call(self.feed.agent_models, agent, since)

    async def agent_calls(self, agent: str | None) -> list[CallRecord]:
        return await self.call(self.feed.agent_calls, agent)

    async def trace_steps(self, trace_id: str) -> list[Step]:
        return await self.call(self.feed.trace_steps, trace_id)

    # -- publishing ----------------------------------------------------------------------------------

    def publish(self) -> None:
        """A snapshot of now for the UI, built at once, or as soon as no short read is in flight.

        Building a snapshot is CPU work on the session's loop (seconds with 100,000 agents). A read that
        is waiting for its answer meanwhile would find its timeout spent when the loop comes back to it,
        and a healthy server would turn STALE: so no build starts while one is in flight (`_reading`)."""
        if self._reads_in_flight:
            self._publish_pending = True
        else:
            self.build()

    @contextlib.asynccontextmanager
    async def _reading(self) -> AsyncIterator[None]:
        """Around a read with a tight timeout: snapshots asked for meanwhile are built after it."""
        self._reads_in_flight += 1
        try:
            yield
        finally:
            self._reads_in_flight -= 1
            if not self._reads_in_flight and self._publish_pending:
                self._publish_pending = False
                self.build()

    def build(self) -> Snapshot:
        """Build the snapshot of now, whatever is in flight, and tell the UI one is waiting (once until it
        takes it). On the session's loop: `publish()` is what the loops call; this, for one-shot reads,
        tests and benchmarks that need the snapshot itself."""
        self._publish_pending = False
        self._last_publish = time.monotonic()
        snap = self.engine.snapshot(self.clock(), self.redis_state, list(self.status.values()))
        self._settler.settle(snap.header.known_agents)  # 50,000 switches are as many agent rows
        with self._lock:
            self.latest = snap
            self.published += 1
            self._ring = self._ring or snap.new_critical
            announce = not self._waiting
            self._waiting = True
        if announce:
            self.on_snapshot()
        return snap

    async def _tick_loop(self) -> None:
        """Ages and sliding windows move on when no data arrives; quiet while reads keep coming."""
        while True:
            await asyncio.sleep(self.refresh_seconds / 2)
            if time.monotonic() - self._last_publish >= self.refresh_seconds * 1.4:
                self.publish()

    # -- the read loops ------------------------------------------------------------------------------

    def _failure(self, exc: Exception) -> str:
        """One line for the badge: a source's own message, or any other error made safe to show."""
        if isinstance(exc, SourceError):
            return str(exc)
        return one_line(exc, (self.settings.redis_url, self.settings.database_url))

    def _epoch(self) -> float:
        return self.clock().timestamp()

    def _source_ok(self, source: str) -> None:
        self.status[source] = SourceStatus(source, True, self._epoch())

    def _source_failed(self, source: str, error: str) -> None:
        previous = self.status[source]
        self.status[source] = SourceStatus(source, False, previous.last_ok, error)
        if source == "Redis":
            # Switch states are unknown now; showing the last ones as current would be a lie.
            self.redis_state = None
        self.publish()

    def _redis_read(self, state: RedisState) -> None:
        old = self.redis_state
        changed = old is None or state.switches != old.switches
        if old is not None and not changed:
            # The same answer keeps the same objects, so the engine's lookups over 50,000 switches or
            # budgets are kept too (they follow the read by identity).
            budgets_same = (state.budgets == old.budgets and state.global_day_budget == old.global_day_budget
                            and state.global_month_budget == old.global_month_budget)
            state = old if budgets_same else replace(state, switches=old.switches)
        self.redis_state = state
        self._source_ok("Redis")
        if changed:
            self.publish()

    async def _redis_loop(self) -> None:
        backoff = Backoff()
        while True:
            started = time.monotonic()
            try:
                async with self._reading():
                    state = await self.feed.read_redis()
            except Exception as exc:  # a client bug or an unforeseen error must not take the screen down
                self._source_failed("Redis", self._failure(exc))
                await asyncio.sleep(backoff.failed(REDIS_POLL_SECONDS))
                continue
            backoff.ok()
            self._redis_read(state)
            await asyncio.sleep(redis_pause(time.monotonic() - started))

    async def _counters_loop(self) -> None:
        """The gateway's own tallies, for the reconciliation. A failure here is the Redis badge's
        business (the switch loop reports it)."""
        while True:
            day = self.engine.day
            if day:  # the day is known once Postgres answered
                with contextlib.suppress(SourceError):
                    async with self._reading():
                        counters = await self.feed.read_counters(day)
                    self.engine.note_counters(counters)
                    self.publish()
                await asyncio.sleep(COUNTERS_SECONDS)
            else:
                await asyncio.sleep(REDIS_POLL_SECONDS)

    async def _history_loop(self) -> None:
        """The agents' trailing week, read once a UTC day after the day's own sums are in (they share
        the disk). Until it arrives, or while it cannot be read, the day anomaly is simply not judged."""
        backoff = Backoff(HISTORY_MAX_RETRY_SECONDS)
        while True:
            day = self.engine.day
            if day and not self.engine.day_pending and self.engine.history_day != day:
                try:
                    history = await self.feed.spend_history(day)
                except Exception as exc:
                    self.engine.note_history_failed(self._failure(exc))
                    self.publish()
                    await asyncio.sleep(backoff.failed(HISTORY_RETRY_SECONDS))
                    continue
                backoff.ok()
                self.engine.load_history(history)
                self.publish()
                self._settler.settle(len(self.engine.days), big_read=True)
            await asyncio.sleep(HISTORY_CHECK_SECONDS)

    async def _fallback_loop(self) -> None:
        """The gateway's fallback file, once per refresh: a stat per file and the bytes appended since
        (sources/fallback_file.py), so a large file costs nothing more once read."""
        while True:
            started = time.monotonic()
            try:
                state = await self.feed.read_fallback()
            except Exception as exc:  # the reader says its trouble itself; this is a bug's safety net
                state = FallbackState(self.settings.fallback_file or "", error=self._failure(exc))
            if self.engine.note_fallback(state):
                self.publish()
            await asyncio.sleep(max(0.1, self.refresh_seconds - (time.monotonic() - started)))

    def _ask_baseline(self) -> None:
        self._need_baseline = True

    async def _read_baseline(self) -> None:
        """The quick half of a baseline into the engine: the window and the watermark."""
        if self._day_task is not None:
            self._day_task.cancel()
            self._day_task = None
        async with self._reading():
            columns = await self.feed.connect_postgres()
            baseline = await self.feed.baseline(self.clock())
        self.engine.load(baseline, columns, self.clock())
        self.engine.note_read_quality(self.feed.read_quality())
        self._need_baseline = False
        self._baseline_day = baseline.day
        self._generation += 1
        self._source_ok("Postgres")
        self.publish()
        self._settler.settle(len(self.engine.days), big_read=True)

    async def _ingest(self, rows: list[CallRecord]) -> None:
        """Rows into the engine a chunk at a time, so the operator's requests wait for one chunk."""
        for start in range(0, len(rows), INGEST_CHUNK):
            if start:
                await asyncio.sleep(0)
            self.engine.ingest(rows[start:start + INGEST_CHUNK])

    async def _postgres_loop(self) -> None:
        """New rows every `period`, a snapshot once per refresh after the read that ends it. Where reads
        are cheap (by id) there are several per refresh: what a frame waits for after its read is then
        a fraction of a refresh's rows (read, ingested), not all of them. At 10,000 calls/s a second's
        rows took 300-450 ms to read and ingest, all between a batch's read and its frame; in quarters,
        most of that is done before the frame's read begins. Frames stay one per refresh. A feed says
        how many reads a refresh is worth with `reads_per_refresh()`."""
        backoff = Backoff()
        self._need_baseline = True
        while True:
            started = time.monotonic()
            period = self.refresh_seconds / max(1, self.feed.reads_per_refresh())
            try:
                if self._need_baseline:
                    await self._read_baseline()
                    if self.engine.day_pending:
                        self._day_task = asyncio.create_task(self._day_totals(self._generation))
                elif self._baseline_day < day_of(self.clock()):
                    # A new UTC day: read everything again, so rows that came later than the lateness
                    # horizon yesterday are in the month, and the day starts exact.
                    self._need_baseline = True
                    continue
                else:
                    async with self._reading():
                        rows = await self.feed.new_rows()
                    await self._ingest(rows)
                    self.engine.note_read_quality(self.feed.read_quality())
                    self._source_ok("Postgres")
                    if time.monotonic() - self._last_publish >= self.refresh_seconds - period / 2:
                        self.publish()
                await self._drain_audit()
            except Exception as exc:
                # After any failure start again from a fresh baseline: nothing double-counted or skipped.
                self._need_baseline = True
                self._source_failed("Postgres", self._failure(exc))
                await asyncio.sleep(backoff.failed(self.refresh_seconds))
                continue
            backoff.ok()
            # `period` apart, however long the read took.
            await asyncio.sleep(max(0.0, period - (time.monotonic() - started)))

    async def _drain_audit(self) -> None:
        """Postgres answers again: the audit rows kept during an outage go in now. A table that refuses
        them (a missing column or grant) is asked again a minute later."""
        if not self.engine.audit_pending or self.read_only or time.monotonic() < self._next_drain:
            return
        async with self._reading():
            left, error = await self.feed.drain_audit()
        self._next_drain = time.monotonic() + (AUDIT_RETRY_SECONDS if error else 0)
        if self.engine.note_audit(left, error):
            self.publish()

    async def _day_totals(self, generation: int) -> None:
        """The day's sums, read in the background: the window is live meanwhile."""
        try:
            part = await self.feed.baseline_days()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._need_baseline = True  # the snapshot is gone: the loop starts over
            self._source_failed("Postgres", self._failure(exc))
            return
        if generation != self._generation:
            return  # it completes a baseline that has been replaced since
        self.engine.complete(part)
        self.engine.note_read_quality(self.feed.read_quality())
        self.publish()
        self._settler.settle(len(self.engine.days), big_read=True)

    async def _write(self, change: SwitchChange) -> tuple[WriteResult, SwitchChange]:
        key = change.key or switch_key(self.settings, change.kind, change.scope, change.target or "")
        # The time before the write: a kill set at some moment of the round trip is on from then at the
        # latest, and a call that started before this is never taken for one that ignored it.
        sent = self.clock()
        result = await self.feed.write(change)
        if result.outcome is Outcome.DONE and change.action == "set" and change.kind == "kill":
            self.engine.note_switch_set(key, sent)
        if self.engine.note_audit_write(result.audit_pending, result.spool_error):
            self.publish()
        if result.outcome is not Outcome.NOT_DONE:
            # Show the effect now, from Redis itself, rather than waiting for the next poll.
            with contextlib.suppress(SourceError):
                self._redis_read(await self.feed.read_redis())
        return result, replace(change, key=key)

    # -- one read, for the commands ------------------------------------------------------------------

    async def read_once(self) -> Snapshot:
        """Every source once, into the engine, on the caller's loop: `costtop snapshot`. What failed is
        said in the snapshot's sources, and what it could not read is unknown."""
        try:
            try:
                self._redis_read(await self.feed.read_redis())
            except SourceError as exc:
                self._source_failed("Redis", str(exc))
            try:
                await self._read_baseline()
                if self.engine.day_pending:
                    self.engine.complete(await self.feed.baseline_days())
                    self.engine.note_read_quality(self.feed.read_quality())
            except SourceError as exc:
                self._source_failed("Postgres", str(exc))
            if self.status["Postgres"].connected:
                try:
                    self.engine.load_history(await self.feed.spend_history(self.engine.day))
                except SourceError as exc:
                    self.engine.note_history_failed(str(exc))  # shown as the snapshot's anomaly note
                if self.redis_state is not None:
                    try:
                        self.engine.note_counters(await self.feed.read_counters(self.engine.day))
                    except SourceError as exc:  # the switches were read: they stay shown
                        last_ok = self.status["Redis"].last_ok
                        self.status["Redis"] = SourceStatus("Redis", False, last_ok, f"counters: {exc}")
        finally:
            await self.feed.close()
        return self.build()

    async def read_day(self, day: str) -> DayRecords:
        """One UTC day's records for `costtop report`, through the feed's Postgres connection."""
        try:
            return await self.feed.read_day(day)
        finally:
            await self.feed.close()
