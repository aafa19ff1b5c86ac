"""The costtop app: polling workers feed the engine, the engine's snapshot feeds the screen.

Data flows one way. A key press becomes an app action; a switch change goes through the feed's one
writer; its effect comes back on the next Redis read, so the screen shows what Redis holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from textual import on, work
from textual.app import App
from textual.binding import Binding

from costtop.config import Settings
from costtop.engine.engine import Engine, day_of
from costtop.engine.snapshot import AgentState, ProviderRow, Snapshot, SortKey
from costtop.pricing.catalog import Catalog
from costtop.pricing.catalog import current as current_catalog
from costtop.sources.errors import SourceError
from costtop.sources.feed import Feed
from costtop.sources.records import FallbackState, RedisState, SourceStatus
from costtop.sources.writer import Outcome, SwitchChange, WriteResult, switch_key
from costtop.text import one_line
from costtop.ui.commands import CosttopCommands
from costtop.ui.display import Display, next_refresh
from costtop.ui.messages import (
    AuditDrained,
    BaselineRead,
    CountersRead,
    DayTotalsRead,
    FallbackRead,
    HistoryFailed,
    HistoryRead,
    RedisRead,
    RowsRead,
    SourceFailed,
    SwitchWritten,
)
from costtop.ui.screens.drill_down import AgentScreen, TraceScreen
from costtop.ui.screens.help import HelpScreen
from costtop.ui.screens.main import FilterBar, MainScreen
from costtop.ui.screens.switch_dialog import SwitchDialog
from costtop.ui.themes import DEFAULT_THEME, find_themes
from costtop.ui.widgets.agent_table import AgentTable
from costtop.ui.widgets.row_table import RowTable
from costtop.ui.widgets.switch_table import SwitchTable
from costtop.ui.widgets.usage_tables import NO_NAME, SwitchableTable
from costtop.ui.widgets.velocity_chart import VelocityChart

COUNTERS_SECONDS = 10.0
HISTORY_CHECK_SECONDS = 1.0  # how soon after a new UTC day (or the start) the week is read
HISTORY_RETRY_SECONDS = 60.0
AUDIT_RETRY_SECONDS = 60.0
REDIS_POLL_SECONDS = 0.5  # a switch set from outside shows within one poll plus one render
MAX_BACKOFF_SECONDS = 30.0


def utc_now() -> datetime:
    return datetime.now(UTC)


COLUMN_SORT = {"agent": SortKey.NAME, "today": SortKey.TODAY, "velocity": SortKey.BURN, "runs_out": SortKey.RUNS_OUT}


def binding_groups() -> list[tuple[str, list[Binding]]]:
    """Every binding costtop declares, with where it applies: for help, and to check a keymap."""
    return [("", [b for b in CosttopApp.BINDINGS if isinstance(b, Binding)]),
            (" (tables)", [b for b in RowTable.BINDINGS if isinstance(b, Binding)]),
            (" (agent screen)", [b for b in AgentScreen.BINDINGS if isinstance(b, Binding)]),
            (" (trace view)", [b for b in TraceScreen.BINDINGS if isinstance(b, Binding)]),
            (" (dialogs)", [b for b in SwitchDialog.BINDINGS if isinstance(b, Binding)]),
            (" (filter)", [b for b in FilterBar.BINDINGS if isinstance(b, Binding)]),
            (" (help)", [b for b in HelpScreen.BINDINGS if isinstance(b, Binding)])]


def unknown_binding_ids(keymap: dict[str, str]) -> list[str]:
    known = {b.id for _, group in binding_groups() for b in group}
    return sorted(set(keymap) - known)


def _row_on_screen(table: RowTable[Any]) -> bool:
    """Whether the table's selected row is drawn now. A kill must name a row the operator can see: a
    filter that hides every row, or a terminal short enough to show only the header, keeps a
    selection that is nowhere on screen."""
    rows_height = table.scrollable_content_region.height - 1  # below the header line
    top = int(table.scroll_offset.y)
    return bool(table.rows) and table.display and table.region.height > 1 and rows_height >= 1 \
        and top <= table.cursor < top + rows_height


def backoff(failures: int, base: float) -> float:
    return min(MAX_BACKOFF_SECONDS, base * (2 ** min(failures, 6)))


class CosttopApp(App[None]):
    CSS_PATH = Path(__file__).with_name("costtop.tcss")
    TITLE = "costtop"
    COMMANDS = App.COMMANDS | {CosttopCommands}
    BINDINGS = [
        Binding("k", "kill", "Kill", id="kill"),
        Binding("u", "resume", "Resume", id="resume"),
        Binding("t", "throttle", "Throttle", id="throttle"),
        Binding("K", "kill_all", "Kill ALL", id="kill_all"),
        Binding("s", "sort", "Sort", id="sort"),
        Binding("v", "chart_range", "60m/24h", id="chart_range"),
        Binding("a", "acknowledge", "Ack alerts", id="acknowledge"),
        Binding("r", "resync", "Resync", id="resync", show=False),
        Binding("enter", "drill_down", "Agent", id="drill_down", show=False),
        Binding("slash", "filter", "Filter", id="filter"),
        Binding("p,space", "pause", "Pause", id="pause"),
        Binding("plus,equals_sign", "refresh_step(1)", "Faster", id="faster", show=False),
        Binding("minus", "refresh_step(0)", "Slower", id="slower", show=False),
        Binding("ctrl+s", "screenshot", "Screenshot", id="screenshot", show=False),
        Binding("question_mark", "help", "Help", id="help"),
        Binding("q", "quit", "Quit", id="quit"),
    ]
    WRITE_ACTIONS = frozenset({"kill", "resume", "throttle", "kill_all"})

    def __init__(self, settings: Settings, feed: Feed, clock: Callable[[], datetime] = utc_now,
                 catalog: Catalog | None = None, theme_dir: Path | None = None) -> None:
        super().__init__()
        self.settings = settings
        self.feed = feed
        self.clock = clock
        self.read_only = settings.read_only or feed.read_only
        self.engine = Engine(settings.thresholds)
        self.engine.use_catalog(catalog if catalog is not None else current_catalog())
        self.redis_state: RedisState | None = None
        self.status = {name: SourceStatus(name, False, None) for name in ("Redis", "Postgres")}
        self.snapshot: Snapshot | None = None
        self.last_write: WriteResult | None = None
        self.paused = False
        self._frozen: Snapshot | None = None
        self.refresh_seconds = settings.refresh  # `+` and `-` change it, within REFRESH_STEPS
        self._next_drain = 0.0  # monotonic time of the next try at writing kept audit rows
        self.theme_dir = theme_dir  # where the user's own themes are; None: the config dir's
        self._last_render = 0.0
        self._need_baseline = True
        self._baseline_day = ""  # the UTC day of the last baseline: a new day reads everything again
        self._generation = 0  # baselines read so far: a late half of an old one is ignored

    # -- lifecycle ---------------------------------------------------------------------------------

    def on_mount(self) -> None:
        # asyncpg logs a traceback each time its pool fails to reconnect in the background; a dead
        # Postgres is already on screen as a stale badge, and a traceback there would be a bug.
        logging.getLogger("asyncpg").addHandler(logging.NullHandler())
        logging.getLogger("asyncpg").propagate = False
        self.set_keymap(self.settings.keymap)
        self._apply_themes()
        self.engine.note_audit(self.feed.audit_pending(), None)  # left by an earlier session, perhaps
        self.push_screen(MainScreen(self.settings.thresholds))
        self.run_worker(self._redis_loop(), group="redis", name="redis", exclusive=True)
        self.run_worker(self._postgres_loop(), group="postgres", name="postgres", exclusive=True)
        self.run_worker(self._counters_loop(), group="counters", name="counters", exclusive=True)
        self.run_worker(self._history_loop(), group="history", name="history", exclusive=True)
        if self.settings.fallback_file:
            self.run_worker(self._fallback_loop(), group="fallback", name="fallback", exclusive=True)
        # New rows render at once (freshness = one read interval); this timer only keeps ages and the
        # sliding windows moving when no data arrives, so it stays quiet while reads keep coming.
        self._render_timer = self.set_interval(self.refresh_seconds / 2, self._tick, name="render")

    def on_resize(self) -> None:
        self.call_after_refresh(self.render_snapshot)

    async def on_unmount(self) -> None:
        await self.feed.close()

    def _apply_themes(self) -> None:
        """Register every theme found; a broken file or an unknown name is said once, then the default."""
        found = find_themes(self.theme_dir)
        for theme in found.themes.values():
            self.register_theme(theme)
        for error in found.errors:
            self.notify(error, title="Theme file left out", severity="warning", timeout=10, markup=False)
        wanted = self.settings.theme
        if wanted not in found.themes:
            self.notify(f"No theme called {wanted} (there are: {', '.join(sorted(found.themes))}); "
                        f"using {DEFAULT_THEME}", title="Theme", severity="warning", timeout=10, markup=False)
            wanted = DEFAULT_THEME
        self.theme = wanted

    def _failure(self, exc: Exception) -> str:
        """One line for the badge: a source's own message, or any other error made safe to show."""
        if isinstance(exc, SourceError):
            return str(exc)
        return one_line(exc, (self.settings.redis_url, self.settings.database_url))

    def _epoch(self) -> float:
        return self.clock().timestamp()

    async def _redis_loop(self) -> None:
        failures = 0
        while True:
            try:
                state = await self.feed.read_redis()
            except Exception as exc:  # a client bug or an unforeseen error must not take the screen down
                failures += 1
                self.post_message(SourceFailed("Redis", self._failure(exc)))
                await asyncio.sleep(backoff(failures, REDIS_POLL_SECONDS))
                continue
            failures = 0
            self.post_message(RedisRead(state, self._epoch()))
            await asyncio.sleep(REDIS_POLL_SECONDS)

    async def _counters_loop(self) -> None:
        """The gateway's own tallies, for the reconciliation: slow-moving, so read every few seconds.
        A failure here is the Redis badge's business (the switch loop reports it)."""
        while True:
            if not self.engine.day:  # the day is known once Postgres answered
                await asyncio.sleep(REDIS_POLL_SECONDS)
                continue
            with contextlib.suppress(SourceError):
                self.post_message(CountersRead(await self.feed.read_counters(self.engine.day)))
            await asyncio.sleep(COUNTERS_SECONDS)

    async def _history_loop(self) -> None:
        """The agents' trailing week, read once a UTC day after the day's own sums are in (they share
        the disk). Until it arrives, or while it cannot be read, the day anomaly is simply not judged."""
        failures = 0
        while True:
            day = self.engine.day
            if day and not self.engine.day_pending and self.engine.history_day != day:
                try:
                    history = await self.feed.spend_history(day)
                except Exception as exc:
                    failures += 1
                    self.post_message(HistoryFailed(self._failure(exc)))
                    # A week too big to sum in time is not tried again at once: 1 minute, doubling to 1 hour.
                    await asyncio.sleep(min(3600.0, HISTORY_RETRY_SECONDS * 2 ** (failures - 1)))
                    continue
                failures = 0
                self.post_message(HistoryRead(history))
            await asyncio.sleep(HISTORY_CHECK_SECONDS)

    async def _fallback_loop(self) -> None:
        """The gateway's fallback file, once per refresh: a stat per file and the bytes appended since
        (sources/fallback_file.py), so a large file costs nothing more once read."""
        while True:
            started = time.monotonic()
            try:
                self.post_message(FallbackRead(await self.feed.read_fallback()))
            except Exception as exc:  # the reader says its trouble itself; this is a bug's safety net
                self.post_message(FallbackRead(FallbackState(self.settings.fallback_file or "",
                                                             error=self._failure(exc))))
            await asyncio.sleep(max(0.1, self.refresh_seconds - (time.monotonic() - started)))

    async def _postgres_loop(self) -> None:
        failures = 0
        self._need_baseline = True
        while True:
            started = time.monotonic()
            try:
                if self._need_baseline:
                    self.workers.cancel_group(self, "postgres-day")
                    columns = await self.feed.connect_postgres()
                    baseline = await self.feed.baseline(self.clock())
                    self.post_message(BaselineRead(baseline, columns, self._epoch(), self.feed.read_quality()))
                    self._need_baseline = False
                    self._baseline_day = baseline.day
                    self._generation += 1
                    if baseline.pending:
                        self.run_worker(self._day_totals(self._generation), group="postgres-day",
                                        name="postgres-day", exclusive=True)
                elif self._baseline_day < day_of(self.clock()):
                    # A new UTC day: read everything again, so rows that came later than the lateness
                    # horizon yesterday are in the month, and the day starts exact.
                    self._need_baseline = True
                    continue
                else:
                    rows = await self.feed.new_rows()
                    self.post_message(RowsRead(rows, self._epoch(), self.feed.read_quality()))
                if self.engine.audit_pending and not self.read_only and time.monotonic() >= self._next_drain:
                    # Postgres answers again: the audit rows kept during the outage go in now. A table
                    # that refuses them (a missing column or grant) is asked again a minute later.
                    left, error = await self.feed.drain_audit()
                    self._next_drain = time.monotonic() + (AUDIT_RETRY_SECONDS if error else 0)
                    self.post_message(AuditDrained(left, error))
            except Exception as exc:
                failures += 1
                # After any failure start again from a fresh baseline: nothing double-counted or skipped.
                self._need_baseline = True
                self.post_message(SourceFailed("Postgres", self._failure(exc)))
                await asyncio.sleep(backoff(failures, self.refresh_seconds))
                continue
            failures = 0
            # One read per refresh interval, however long the read took.
            await asyncio.sleep(max(0.0, self.refresh_seconds - (time.monotonic() - started)))

    async def _day_totals(self, generation: int) -> None:
        """The day's sums, read in the background: the window is live meanwhile."""
        try:
            part = await self.feed.baseline_days()
        except Exception as exc:
            self._need_baseline = True  # the snapshot is gone: the loop starts over
            self.post_message(SourceFailed("Postgres", self._failure(exc)))
            return
        self.post_message(DayTotalsRead(part, generation, self.feed.read_quality()))

    # -- data in -----------------------------------------------------------------------------------

    @on(RedisRead)
    def _redis_read(self, message: RedisRead) -> None:
        changed = self.redis_state is None or message.state.switches != self.redis_state.switches
        self.redis_state = message.state
        self.status["Redis"] = SourceStatus("Redis", True, message.at)
        if changed:
            self.render_snapshot()

    @on(BaselineRead)
    def _baseline_read(self, message: BaselineRead) -> None:
        self.engine.load(message.baseline, message.columns, datetime.fromtimestamp(message.at, UTC))
        self.engine.note_read_quality(message.quality)
        self.status["Postgres"] = SourceStatus("Postgres", True, message.at)
        self.render_snapshot()

    @on(DayTotalsRead)
    def _day_totals_read(self, message: DayTotalsRead) -> None:
        if message.generation != self._generation:
            return  # it completes a baseline that has been replaced since
        self.engine.complete(message.part)
        self.engine.note_read_quality(message.quality)
        self.render_snapshot()

    @on(AuditDrained)
    def _audit_drained(self, message: AuditDrained) -> None:
        if self.engine.note_audit(message.left, message.error):
            self.render_snapshot()

    @on(FallbackRead)
    def _fallback_read(self, message: FallbackRead) -> None:
        if self.engine.note_fallback(message.state):
            self.render_snapshot()

    @on(HistoryRead)
    def _history_read(self, message: HistoryRead) -> None:
        self.engine.load_history(message.history)
        self.render_snapshot()

    @on(HistoryFailed)
    def _history_failed(self, message: HistoryFailed) -> None:
        self.engine.note_history_failed(message.error)
        self.render_snapshot()

    @on(CountersRead)
    def _counters_read(self, message: CountersRead) -> None:
        self.engine.note_counters(message.counters)
        self.render_snapshot()

    @on(RowsRead)
    def _rows_read(self, message: RowsRead) -> None:
        self.engine.ingest(message.rows)
        self.engine.note_read_quality(message.quality)
        self.status["Postgres"] = SourceStatus("Postgres", True, message.at)
        self.render_snapshot()

    def _tick(self) -> None:
        if time.monotonic() - self._last_render >= self.refresh_seconds * 1.4:
            self.render_snapshot()

    @on(SourceFailed)
    def _source_failed(self, message: SourceFailed) -> None:
        previous = self.status[message.source]
        self.status[message.source] = SourceStatus(message.source, False, previous.last_ok, message.error)
        if message.source == "Redis":
            # Switch states are unknown now; showing the last ones as current would be a lie.
            self.redis_state = None
        self.render_snapshot()

    @property
    def display(self) -> Display:
        return Display(self.read_only, self.paused, self.refresh_seconds)

    def render_snapshot(self) -> None:
        self._last_render = time.monotonic()
        self.snapshot = self.engine.snapshot(self.clock(), self.redis_state, list(self.status.values()))
        if self.snapshot.new_critical and self.settings.bell:
            self.bell()  # once, when a critical alert trips: paused or not
        if not self.paused:
            self._show(self.snapshot)

    def _show(self, snap: Snapshot) -> None:
        main = self._main()
        if main is not None and main.is_mounted:
            # Also under an open dialog: the table moves on, the dialog's target does not.
            with self.batch_update():
                main.show(snap, self.display)
                if isinstance(self.screen, AgentScreen) and self.screen.is_mounted:
                    self.screen.show(snap)

    def action_pause(self) -> None:
        """Freeze the screen on what it shows now (reading goes on); again to catch up."""
        self._frozen = None if self.paused else self.snapshot
        self.paused = not self.paused
        if self.paused and self._frozen is not None:
            self._show(self._frozen)  # the same figures, with the PAUSED banner
        else:
            self.render_snapshot()

    @property
    def shown(self) -> Snapshot | None:
        """What the screen shows: the frozen snapshot while paused, else the latest."""
        return self._frozen if self.paused else self.snapshot

    def action_refresh_step(self, faster: int) -> None:
        self.refresh_seconds = next_refresh(self.refresh_seconds, bool(faster))
        self._render_timer.stop()
        self._render_timer = self.set_interval(self.refresh_seconds / 2, self._tick, name="render")
        self.notify(f"Refresh every {self.refresh_seconds:g} s", timeout=3)
        if self.shown is not None:
            self._show(self.shown)

    # -- actions -----------------------------------------------------------------------------------

    def _main(self) -> MainScreen | None:
        return next((s for s in self.screen_stack if isinstance(s, MainScreen)), None)

    def _selected_agent(self) -> str | None:
        """On an agent's own screen, that agent; else the one selected in the agent table."""
        drilled = next((s for s in reversed(self.screen_stack) if isinstance(s, AgentScreen)), None)
        if drilled is not None:
            return drilled.agent_id
        main = self._main()
        return None if main is None else main.query_one(AgentTable).selected_key

    def action_drill_down(self) -> None:
        """enter on the agent table: that agent's screen (its traces, then a trace's steps)."""
        if not isinstance(self.screen, MainScreen) or not isinstance(self.focused, AgentTable):
            return
        agent = self.focused.selected_key
        if agent is not None:
            self.push_screen(AgentScreen(agent))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Read-only (the wall screen): the writing keys are shown disabled and do nothing."""
        if self.read_only and action in self.WRITE_ACTIONS:
            return None
        return action != "filter" or isinstance(self.screen, MainScreen)  # the filter is the main screen's

    def action_filter(self) -> None:
        main = self._main()
        if main is not None and self.screen is main:
            main.open_filter()

    @on(MainScreen.FilterChanged)
    def _filter_changed(self) -> None:
        if self.shown is not None:
            self._show(self.shown)

    def action_screenshot(self) -> None:
        """ctrl+s: the screen as it is, an SVG in `screenshot_dir`."""
        folder = Path(self.settings.screenshot_dir).expanduser()
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path = self.save_screenshot(path=str(folder))
        except OSError as exc:
            self.notify(f"Screenshot not saved: {exc.strerror or exc}", severity="error", markup=False)
            return
        self.notify(f"Screenshot saved: {path}", title="Screenshot", markup=False)

    def ask(self, change: SwitchChange) -> None:
        """A write picked in the command palette: the same dialog as the keys, and never in read-only."""
        if not self._refuse_if_read_only():
            self._ask(change)

    def jump_to_agent(self, agent: str) -> None:
        main = self._main()
        if main is None:
            return
        while self.screen is not main:
            self.pop_screen()
        table = main.query_one(AgentTable)
        table.select_key(agent)
        table.focus()

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.help_keys(), self.read_only))

    def help_keys(self) -> list[tuple[str, str, str]]:
        """(key as the keymap has it, what it does, binding id) for every binding costtop declares."""
        rows = []
        for where, bindings in binding_groups():
            for b in bindings:
                if b.id is None:
                    continue
                keys = self.settings.keymap.get(b.id, b.key)
                shown = ", ".join(self.get_key_display(Binding(k.strip(), b.action)) for k in keys.split(","))
                disabled = self.read_only and b.action in self.WRITE_ACTIONS
                rows.append((shown, f"{b.description or b.action}{where}{' (disabled: read-only)' if disabled else ''}",
                             b.id))
        rows.append(("ctrl+p", "Command palette: kill, throttle or resume any target by name (asks first), "
                     "jump to an agent, change the theme", "(Textual's)"))
        return rows

    def _refuse_if_read_only(self) -> bool:
        if self.read_only:
            self.notify("Read-only mode: switches cannot be changed here.", severity="warning",
                        title="Read-only")
        return self.read_only

    def _ask(self, change: SwitchChange) -> None:
        key = change.key or switch_key(self.settings, change.kind, change.scope, change.target)

        dialog = SwitchDialog(change, key)

        def done(result: SwitchChange | None) -> None:
            if dialog.too_small:
                width, height = self.size
                self.notify(f"Terminal too small for the confirm dialog ({width}x{height}): enlarge it; "
                            "nothing was changed.", severity="warning", timeout=8, markup=False)
            elif result is None:
                self.notify("Cancelled: nothing was changed.", timeout=3)
            else:
                self._write(result)

        self.push_screen(dialog, done)

    def _focused_usage_table(self) -> SwitchableTable | None:
        focused = self.focused
        return focused if isinstance(focused, SwitchableTable) else None

    def _switch_selected_agent(self, kind: str) -> None:
        """The target is read here, at the key press; the dialog can only confirm that one."""
        if self._refuse_if_read_only():
            return
        table = self._focused_usage_table()
        if table is not None:
            name = table.selected_name if _row_on_screen(table) else None
            if kind != "kill":
                self.notify(f"Throttling applies to agents; `k` kills the selected {table.scope}.",
                            severity="warning")
            elif name is None:
                self.notify(f"No {table.scope} selected (calls without a {table.scope} have no switch).",
                            severity="warning")
            else:
                self._ask(SwitchChange("set", "kill", table.scope, name))
            return
        agent = self._selected_agent()
        main = self._main()
        if agent is not None and self.screen is main and main is not None \
                and not _row_on_screen(main.query_one(AgentTable)):
            agent = None  # selected, but not on screen (filtered out, or a terminal too short for a row)
        if agent is None:
            self.notify("No agent selected.", severity="warning")
            return
        if agent == NO_NAME:
            self.notify(f"(none) is the calls without an agent_id: they have no {kind} switch "
                        "(kill their model or provider instead).", severity="warning")
            return
        self._ask(SwitchChange("set", kind, "agent", agent))

    def action_kill(self) -> None:
        self._switch_selected_agent("kill")

    def action_throttle(self) -> None:
        self._switch_selected_agent("throttle")

    def action_sort(self) -> None:
        """The agents' order: burn rate, when the daily budget runs out, spend today, name."""
        keys = list(SortKey)
        self.engine.sort_by(keys[(keys.index(self.engine.sort) + 1) % len(keys)])
        self.render_snapshot()

    @on(RowTable.HeaderClicked)
    def _header_clicked(self, message: RowTable.HeaderClicked) -> None:
        """A click on an agent column's title sorts by it; a second click on it reverses the order."""
        if not isinstance(message.control, AgentTable):
            return
        key = COLUMN_SORT.get(message.column)
        if key is None:
            return
        self.engine.sort_by(key, reverse=self.engine.sort is key and not self.engine.sort_reverse)
        self.render_snapshot()

    def action_acknowledge(self) -> None:
        """Acknowledged alerts stay listed, dimmed, until their condition clears; no bell for them."""
        shown = self.shown  # while paused: only the alerts on screen, not ones that tripped since
        if shown is None or not shown.alerts:
            self.notify("No alert to acknowledge.", timeout=3)
            return
        self.engine.acknowledge(a.key for a in shown.alerts)
        self.render_snapshot()

    def action_resync(self) -> None:
        """Read every figure again from Postgres (a new baseline): rows that came later than the
        lateness horizon are counted, and the screen says how many there were."""
        self._need_baseline = True
        self.notify("Reading every figure again from Postgres", title="Resync", timeout=4, markup=False)

    def action_chart_range(self) -> None:
        main = self._main()
        if main is not None:
            chart = main.query_one(VelocityChart)
            chart.hours = not chart.hours
            self.render_snapshot()

    def action_kill_all(self) -> None:
        if self._refuse_if_read_only():
            return
        self._ask(SwitchChange("set", "kill", "global", "*"))

    def action_resume(self) -> None:
        if self._refuse_if_read_only():
            return
        change = self._resume_target()
        if change is None:
            self.notify("Nothing to resume: the selection has no switch.", severity="warning")
            return
        self._ask(change)

    def _resume_target(self) -> SwitchChange | None:
        """The switch under the cursor in the switch panel, else the selected agent's own switch."""
        main = self._main()
        snap = self.shown  # what the operator sees, also while paused
        if main is None or snap is None:
            return None
        switches = main.query_one(SwitchTable)
        if switches.has_focus and switches.selected_key:
            found = next((s for s in snap.switches if s.key == switches.selected_key), None)
            if found is not None:
                return SwitchChange("remove", found.kind.value, found.scope, found.target, key=found.key)
            return None
        table = self._focused_usage_table()
        if table is not None:
            rows = snap.providers if table.scope == "provider" else snap.models
            name = table.selected_name
            found = next((r for r in rows if (r.provider if isinstance(r, ProviderRow) else r.model) == name), None)
            if name is None or found is None or found.switch is None or found.switch.scope != table.scope:
                return None
            sw = found.switch
            return SwitchChange("remove", sw.kind.value, sw.scope, sw.target, key=sw.key)
        agent = self._selected_agent()
        row = next((a for a in snap.agents if a.agent_id == agent), None)
        if row is None or row.switch is None or row.state not in (AgentState.KILLED, AgentState.THROTTLED):
            return None
        sw = row.switch
        return SwitchChange("remove", sw.kind.value, sw.scope, sw.target, key=sw.key)

    @work(group="write", exclusive=False)
    async def _write(self, change: SwitchChange) -> None:
        key = change.key or switch_key(self.settings, change.kind, change.scope, change.target or "")
        # The time before the write: a kill set at some moment of the round trip is on from then at the
        # latest, and a call that started before this is never taken for one that ignored it.
        sent = self.clock()
        result = await self.feed.write(change)
        self.post_message(SwitchWritten(result, replace(change, key=key), sent))
        if result.outcome is not Outcome.NOT_DONE:
            # Show the effect now, from Redis itself, rather than waiting for the next poll.
            try:
                state = await self.feed.read_redis()
            except SourceError:
                return
            self.post_message(RedisRead(state, self._epoch()))

    @on(SwitchWritten)
    def _written(self, message: SwitchWritten) -> None:
        self.last_write = message.result
        result = message.result
        change = message.change
        if change is not None and change.key and message.at is not None and result.outcome is Outcome.DONE \
                and change.action == "set" and change.kind == "kill":
            self.engine.note_switch_set(change.key, message.at)
        if self.engine.note_audit_write(result.audit_pending, result.spool_error):
            self.render_snapshot()
        if result.outcome is Outcome.UNKNOWN:
            # Redis may hold the switch or not, and could not be asked: neither "done" nor "not done".
            self.notify(result.message, severity="error", title="UNKNOWN: check Redis", timeout=20, markup=False)
        elif not result.ok:
            self.notify(result.message, severity="error", title="NOT DONE", timeout=15, markup=False)
        elif result.spool_error and not result.audit_written:
            self.notify(result.message, severity="error", title="Done, audit row LOST", timeout=20, markup=False)
        elif result.audit_pending:
            self.notify(result.message, severity="warning", title="Done, audit row kept locally", timeout=10,
                        markup=False)
        elif not result.audit_written:
            self.notify(result.message, severity="warning", title="Done, audit missing", timeout=10, markup=False)
        else:
            self.notify(result.message, title="Done", timeout=6, markup=False)
