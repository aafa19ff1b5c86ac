"""The costtop app: bindings, screens and rendering of the snapshots a session publishes.

Data flows one way. The session (costtop/session.py) reads the sources and runs the engine on a
thread of its own; the app takes each new snapshot and draws it. A key press becomes an action here or
on the screen where it acts; a switch change goes through the session to the one writer, and its
effect comes back on the next read of Redis, so the screen shows what Redis holds.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from textual import on, work
from textual.actions import parse as parse_action
from textual.app import App
from textual.binding import Binding

from costtop.config import Settings
from costtop.engine.snapshot import Snapshot
from costtop.sources.records import Outcome, SwitchChange, WriteResult, switch_key
from costtop.ui.commands import CosttopCommands
from costtop.ui.display import Display, next_refresh
from costtop.ui.messages import SnapshotReady
from costtop.ui.screens.base import BoardScreen
from costtop.ui.screens.drill_down import AgentScreen, DrillContext, TraceScreen
from costtop.ui.screens.help import HelpScreen, declared_bindings
from costtop.ui.screens.main import MainScreen
from costtop.ui.screens.switch_dialog import SwitchDialog
from costtop.ui.screens.wall import WallScreen
from costtop.ui.targets import resume_target, switch_target
from costtop.ui.terminal_cells import TerminalCells
from costtop.ui.themes import DEFAULT_THEME, find_themes, status_css_variables
from costtop.ui.widgets.agent_table import AgentTable
from costtop.ui.widgets.usage_tables import NO_NAME

if TYPE_CHECKING:
    from collections.abc import Mapping

    from rich.console import RenderableType
    from textual.actions import ActionParseResult
    from textual.dom import DOMNode
    from textual.screen import Screen

    from costtop.session import Session


def binding_groups() -> list[tuple[str, list[Binding]]]:
    """Every binding costtop declares, with where it applies: for help, and to check a keymap."""
    return declared_bindings(CosttopApp)


def unknown_binding_ids(keymap: dict[str, str]) -> list[str]:
    known = {b.id for _, group in binding_groups() for b in group}
    return sorted(set(keymap) - known)


HELP_SCREEN = "costtop-help"


class CosttopApp(App[None]):
    CSS_PATH = [Path(__file__).with_name("costtop.tcss"), Path(__file__).with_name("wall.tcss")]
    TITLE = "costtop"
    COMMANDS = App.COMMANDS | {CosttopCommands}
    BINDINGS = [
        Binding("k", "kill", "Kill", id="kill"),
        Binding("u", "resume", "Resume", id="resume"),
        Binding("t", "throttle", "Throttle", id="throttle"),
        Binding("K", "kill_all", "Kill ALL", id="kill_all"),
        Binding("r", "resync", "Resync", id="resync", show=False),
        Binding("p,space", "pause", "Pause", id="pause"),
        Binding("plus,equals_sign", "refresh_step(1)", "Faster", id="faster", show=False),
        Binding("minus", "refresh_step(0)", "Slower", id="slower", show=False),
        Binding("ctrl+s", "screenshot", "Screenshot", id="screenshot", show=False),
    ]
    WRITE_ACTIONS = frozenset({"kill", "resume", "throttle", "kill_all"})

    def __init__(self, settings: Settings, session: Session, theme_dir: Path | None = None,
                 greeting: str | None = None, layout_path: Path | None = None) -> None:
        """`greeting`: said once at the start (the demo says where its servers listen). `layout_path`:
        where the pane keys' choice is kept (None: the user's state directory, ui/layout.py)."""
        super().__init__()
        self.greeting = greeting
        self.layout_path = layout_path
        self.settings = settings
        self.session = session
        self.read_only = session.read_only
        self.snapshot: Snapshot | None = None  # the latest snapshot taken from the session
        self.last_write: WriteResult | None = None
        self.paused = False
        self._frozen: Snapshot | None = None
        self.theme_dir = theme_dir  # where the user's own themes are; None: the config dir's
        self._help_variables: dict[str, str] | None = None  # the theme's variables the kept help was made in
        self.terminal_cells = TerminalCells()  # what the terminal shows, so only changed cells are sent
        session.on_snapshot = lambda: self.post_message(SnapshotReady())  # from the session's thread

    # -- lifecycle ---------------------------------------------------------------------------------

    def on_mount(self) -> None:
        # asyncpg logs a traceback each time its pool fails to reconnect in the background; a dead
        # Postgres is already on screen as a stale badge, and a traceback there would be a bug.
        logging.getLogger("asyncpg").addHandler(logging.NullHandler())
        logging.getLogger("asyncpg").propagate = False
        self.set_keymap(self.settings.keymap)
        self._apply_themes()
        self.push_screen(WallScreen() if self.settings.wall else MainScreen(self.layout_path))
        if self.greeting:
            self.notify(self.greeting, title="costtop demo", timeout=15, markup=False)
        # The reads, the engine and the snapshots run on the session's own loop, in this thread.
        self.run_worker(self.session.run_in_thread, thread=True, group="session", name="session")

    def on_resize(self) -> None:
        self.call_after_refresh(self.session.request_snapshot)

    def _display(self, screen: Screen[object], renderable: RenderableType | None) -> None:
        """Every screen update reaches the terminal here: a partial one goes as the cells that changed
        (ui/terminal_cells.py), a slow link's bytes; a full one is recorded as it is written."""
        super()._display(screen, self.terminal_cells.wrap(renderable, self.is_inline))  # type: ignore[arg-type]

    async def on_unmount(self) -> None:
        """Stop the session and wait for its thread (which closes the connections), boundedly."""
        self.session.stop()
        if self.session.started:
            # Not the worker's wait(): Textual cancels its workers before this, and a cancelled worker's
            # wait() returns at once, raising an error nobody retrieves (printed after the app is gone).
            await asyncio.to_thread(self.session.finished.wait, self.session.stop_seconds + 0.5)

    def get_css_variables(self) -> dict[str, str]:
        """Textual's theme variables, with the states' colours the theme leaves out filled in from those
        they follow (`status_css_variables`): the .tcss can then colour a state with `$status-…` in
        every theme, the same colour the widgets' Palette gives it."""
        variables = super().get_css_variables()
        filled = status_css_variables(variables)
        if filled:
            variables = {**variables, **filled}
            self.theme_variables = variables
        return variables

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

    # -- snapshots in ------------------------------------------------------------------------------

    @on(SnapshotReady)
    def _snapshot_ready(self) -> None:
        snap, ring = self.session.take()
        if snap is None:
            return
        self.snapshot = snap
        if ring and self.settings.bell:
            self.bell()  # once, when a critical alert trips: paused or not
        if not self.paused:
            self._show(snap)

    @property
    def shown(self) -> Snapshot | None:
        """What the screen shows: the frozen snapshot while paused, else the latest."""
        return self._frozen if self.paused else self.snapshot

    @property
    def display(self) -> Display:
        return Display(self.read_only, self.paused, self.session.refresh_seconds)

    def _main(self) -> MainScreen | None:
        return next((s for s in self.screen_stack if isinstance(s, MainScreen)), None)

    def _board(self) -> BoardScreen | None:
        """The screen that draws every snapshot: the main screen, or the wall screen in its place."""
        return next((s for s in self.screen_stack if isinstance(s, BoardScreen)), None)

    def _show(self, snap: Snapshot) -> None:
        board = self._board()
        if board is not None and board.is_mounted:
            # Also under an open dialog: the table moves on, the dialog's target does not.
            with self.batch_update():
                board.show(snap, self.display)
                if isinstance(self.screen, AgentScreen) and self.screen.is_mounted:
                    self.screen.show(snap)

    def _reshow(self) -> None:
        if self.shown is not None:
            self._show(self.shown)

    # -- what the main screen asks -----------------------------------------------------------------

    @on(MainScreen.ViewChanged)
    def _view_changed(self) -> None:
        self._reshow()

    @on(MainScreen.SortChanged)
    def _sort_changed(self, message: MainScreen.SortChanged) -> None:
        self.session.sort_by(message.key, message.reverse)

    @on(MainScreen.AlertsAcknowledged)
    def _acknowledged(self, message: MainScreen.AlertsAcknowledged) -> None:
        self.session.acknowledge(message.keys)

    @on(MainScreen.AgentOpened)
    def _agent_opened(self, message: MainScreen.AgentOpened) -> None:
        self.push_screen(AgentScreen(message.agent, self.drill_context(), self.shown))

    @on(MainScreen.TraceOpened)
    def _trace_opened(self, message: MainScreen.TraceOpened) -> None:
        """The trace's steps over its agent's screen: esc goes back to the agent's traces, and k / u / t
        act on that agent from either."""
        context = self.drill_context()
        self.push_screen(AgentScreen(NO_NAME if message.agent is None else message.agent, context, self.shown))
        self.push_screen(TraceScreen(message.trace, context, self.shown))

    def drill_context(self) -> DrillContext:
        return DrillContext(self.session, self.session.clock, self.settings.thresholds,
                            self.session.refresh_seconds * 2)

    # -- display actions ---------------------------------------------------------------------------

    def action_pause(self) -> None:
        """Freeze the screen on what it shows now (reading goes on); again to catch up."""
        self._frozen = None if self.paused else self.snapshot
        self.paused = not self.paused
        self._reshow()  # paused: the same figures, with the PAUSED banner

    def action_refresh_step(self, faster: int) -> None:
        seconds = next_refresh(self.session.refresh_seconds, bool(faster))
        self.session.set_refresh(seconds)
        self.notify(f"Refresh every {seconds:g} s", timeout=3)

    def action_resync(self) -> None:
        """Read every figure again from Postgres (a new baseline): rows that came later than the
        lateness horizon are counted, and the screen says how many there were."""
        self.session.resync()
        self.notify("Reading every figure again from Postgres", title="Resync", timeout=4, markup=False)

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

    def jump_to_agent(self, agent: str) -> None:
        main = self._main()
        if main is None:
            self.notify("The wall screen has no agent table to select it in (costtop without --wall has).",
                        timeout=5, markup=False)
            return
        while self.screen is not main:
            self.pop_screen()
        table = main.query_one(AgentTable)
        table.select_key(agent)
        table.focus()

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(self._help_screen())

    def _help_screen(self) -> HelpScreen:
        """One help screen, kept (installed) while what it shows is the same: building and laying out
        its tables again took ~100 ms of the UI loop at every `?` (600 ms under load). It shows the
        keys (the keymap), the read-only flag and the theme's colours, so a new theme (Textual makes
        new `theme_variables` for it; an installed screen off the stack would keep the old CSS) or new
        keys build a new one. Under another screen it stays there: a fresh one goes on top."""
        keys = self.help_keys()
        kept = self.get_screen(HELP_SCREEN) if self.is_screen_installed(HELP_SCREEN) else None
        if kept is not None and kept in self.screen_stack:
            return HelpScreen(keys, self.read_only)
        if isinstance(kept, HelpScreen) and kept.keys == keys and kept.read_only == self.read_only \
                and self._help_variables is self.theme_variables:
            return kept
        if kept is not None:
            self.uninstall_screen(HELP_SCREEN)
            kept.remove()  # an uninstalled screen off the stack is ours to drop
        screen = HelpScreen(keys, self.read_only)
        self.install_screen(screen, HELP_SCREEN)
        self._help_variables = self.theme_variables
        return screen

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

    # -- switches ----------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Read-only (the wall screen): the writing keys are shown disabled; pressed, they change nothing
        and say why (`run_action`)."""
        return None if self.read_only and action in self.WRITE_ACTIONS else True

    async def run_action(self, action: str | ActionParseResult, default_namespace: DOMNode | None = None,
                         namespaces: Mapping[str, DOMNode] | None = None) -> bool:
        """As Textual runs it; a writing key pressed in read-only mode (its action disabled, so Textual
        would do nothing at all) says why nothing happened."""
        handled = await super().run_action(action, default_namespace, namespaces)
        name = parse_action(action)[1] if isinstance(action, str) else action[1]
        if not handled and self.read_only and name in self.WRITE_ACTIONS:
            self._refuse_if_read_only()
        return handled

    def _refuse_if_read_only(self) -> bool:
        if self.read_only:
            self.notify("Read-only mode: switches cannot be changed here.", severity="warning",
                        title="Read-only")
        return self.read_only

    def ask(self, change: SwitchChange) -> None:
        """A write picked in the command palette: the same dialog as the keys, and never in read-only."""
        if not self._refuse_if_read_only():
            self._ask(change)

    def _ask(self, change: SwitchChange) -> None:
        key = change.key or switch_key(self.settings, change.kind, change.scope, change.target or "")
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

    def _drilled_agent(self) -> tuple[bool, str | None]:
        """Whether an agent's screen is open, and its agent (None: the calls without one)."""
        drilled = next((s for s in reversed(self.screen_stack) if isinstance(s, AgentScreen)), None)
        return drilled is not None, drilled.agent_id if drilled is not None else None

    def _switch_selected(self, kind: str) -> None:
        """The target is read here, at the key press; the dialog can only confirm that one."""
        if self._refuse_if_read_only():
            return
        main = self._main()
        agents = main.query_one(AgentTable) if main is not None and self.screen is main else None
        drilled_open, drilled = self._drilled_agent()
        target = switch_target(kind, self.focused, agents, drilled, drilled_open, self.shown)
        if isinstance(target, str):
            self.notify(target, severity="warning")
        else:
            self._ask(target)

    def action_kill(self) -> None:
        self._switch_selected("kill")

    def action_throttle(self) -> None:
        self._switch_selected("throttle")

    def action_kill_all(self) -> None:
        if not self._refuse_if_read_only():
            self._ask(SwitchChange("set", "kill", "global", "*"))

    def action_resume(self) -> None:
        if self._refuse_if_read_only():
            return
        snap = self.shown  # what the operator sees, also while paused
        drilled_open, drilled = self._drilled_agent()
        main = self._main()
        agent = drilled if drilled_open else (main.query_one(AgentTable).selected_key if main is not None else None)
        change = resume_target(snap, self.focused, agent) if snap is not None and main is not None else None
        if change is None:
            self.notify("Nothing to resume: the selection has no switch.", severity="warning")
            return
        self._ask(change)

    @work(group="write", exclusive=False)
    async def _write(self, change: SwitchChange) -> None:
        result, _ = await self.session.write(change)
        self.last_write = result
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
