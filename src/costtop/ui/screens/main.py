"""The main screen: header, agent table, switch panel, footer."""

from __future__ import annotations

from operator import attrgetter
from pathlib import Path

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.css.query import NoMatches
from textual.message import Message
from textual.widgets import Footer, Input, Static

from costtop.engine.snapshot import Snapshot, SortKey
from costtop.ui import layout
from costtop.ui.display import Display
from costtop.ui.layout import LayoutChoice, LayoutStateError, PaneNeed
from costtop.ui.screens.base import BoardScreen
from costtop.ui.widgets.agent_table import AgentTable
from costtop.ui.widgets.alert_panel import AlertPanel, nothing_to_open
from costtop.ui.widgets.row_table import RowTable
from costtop.ui.widgets.summary import Summary
from costtop.ui.widgets.switch_table import SwitchTable
from costtop.ui.widgets.usage_tables import ModelTable, ProviderTable
from costtop.ui.widgets.velocity_chart import VelocityChart

_acknowledged = attrgetter("acknowledged")

NARROW = 140  # columns: the provider and model panels share the width


class FilterBar(Input):
    """`/`: the text the agent, model and provider rows must hold; esc clears it."""

    HELP_SCOPE = "filter"
    BINDINGS = [Binding("escape", "screen.clear_filter", "Clear filter", id="filter.clear")]


COLUMN_SORT = {"agent": SortKey.NAME, "today": SortKey.TODAY, "velocity": SortKey.BURN, "runs_out": SortKey.RUNS_OUT}
SORT_COLUMN = {key: column for column, key in COLUMN_SORT.items()}


class MainScreen(BoardScreen):
    """The fleet at a glance. Its keys act on what it shows (order, chart range, filter, alerts, the
    agent to open); they ask the app through typed messages, and do nothing on other screens."""

    HELP_SCOPE = "main screen"
    BINDINGS = [
        Binding("s", "sort", "Sort", id="sort"),
        Binding("v", "chart_range", "60m/24h", id="chart_range"),
        Binding("a", "acknowledge", "Ack alerts", id="acknowledge"),
        Binding("enter", "drill_down", "Agent", id="drill_down", show=False),
        Binding("slash", "filter", "Filter", id="filter"),
        *(Binding(key, f"pane('{pane}')", f"Show/hide {layout.PANE_NAMES[pane]}", show=False, id=f"pane.{pane}")
          for key, pane in layout.PANE_KEYS.items()),
        Binding("5", "zoom", "Zoom the agents", show=False, id="pane.zoom"),
    ]

    class SortChanged(Message):
        """The agents' order the operator asked for."""

        def __init__(self, key: SortKey, reverse: bool) -> None:
            super().__init__()
            self.key = key
            self.reverse = reverse

    class AgentOpened(Message):
        """`enter` on an agent: open its screen."""

        def __init__(self, agent: str) -> None:
            super().__init__()
            self.agent = agent

    class TraceOpened(Message):
        """`enter` on an alert naming a trace: open its steps (over its agent's screen)."""

        def __init__(self, trace: str, agent: str | None) -> None:
            super().__init__()
            self.trace = trace
            self.agent = agent

    class AlertsAcknowledged(Message):
        """`a`: the alerts on screen now, acknowledged."""

        def __init__(self, keys: tuple[str, ...]) -> None:
            super().__init__()
            self.keys = keys

    def __init__(self, layout_path: Path | None = None) -> None:
        super().__init__()
        self.layout_path = layout_path or layout.state_path()
        self.layout_problem: str | None = None
        try:
            self.choice = layout.load(self.layout_path)
        except LayoutStateError as exc:
            self.choice, self.layout_problem = LayoutChoice(), str(exc)
        self.heights: dict[str, int] = {}  # each panel's height now (layout.plan); 0: folded
        self.folded: list[str] = []  # the panels with something to show that found no room

    def compose(self) -> ComposeResult:
        yield Summary("connecting…", id="summary")
        with Vertical(id="alerts-pane"):
            yield Static("Alerts (a: acknowledge)", classes="pane-title")
            yield AlertPanel(id="alerts")
        with Vertical(id="agents-pane"):
            yield Static("Agents — today, UTC — by $/min", classes="pane-title")
            yield AgentTable(id="agents")
        with Vertical(id="chart-pane"):
            yield Static("Burn $/min — completed minutes, last hour (v: 24 hours)", classes="pane-title")
            yield VelocityChart(id="chart")
        with Horizontal(id="usage-pane"):
            with Vertical(id="providers-pane"):
                yield Static("Providers", classes="pane-title")
                yield ProviderTable(id="providers")
            with Vertical(id="models-pane"):
                yield Static("Models — today, UTC", classes="pane-title")
                yield ModelTable(id="models")
        with Vertical(id="switches-pane"):
            yield Static("Switches", classes="pane-title")
            yield SwitchTable(id="switches")
        yield FilterBar(placeholder="filter agents, models, providers (enter: keep, esc: clear)", id="filter")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(AgentTable).focus()
        if self.layout_problem:
            self.notify(self.layout_problem, severity="warning", timeout=10, markup=False)

    def action_pane(self, pane: str) -> None:
        """1-4: show or hide a panel (and leave the zoom). Kept in the state file for the next start."""
        self._choose(self.choice.toggled(pane))
        if pane not in self.choice.hidden and not self.heights.get(pane):
            self.notify(f"No room for the {layout.PANE_NAMES[pane]} at {self.size.height} lines: the agents keep "
                        f"{layout.AGENT_LINES - 2} rows. 5 zooms the agents; a taller terminal shows more.",
                        timeout=5, markup=False)

    def action_zoom(self) -> None:
        """5: the agents alone under the header, or back."""
        self._choose(self.choice.zoomed())

    def _choose(self, choice: LayoutChoice) -> None:
        self.choice = choice
        try:
            layout.save(self.layout_path, choice)
        except LayoutStateError as exc:
            self.notify(str(exc), severity="warning", timeout=10, markup=False)
        self._refit()

    def needs(self) -> dict[str, PaneNeed]:
        """What each panel would show now: the alerts' lines, the switches, the provider and model rows."""
        snap = self.shown
        alerts = self.query_one(AlertPanel).wanted
        switches = len(snap.switches) if snap is not None else 0
        usage = max(self.query_one(ProviderTable).row_count, self.query_one(ModelTable).row_count)
        return {
            "alerts": PaneNeed(1 + alerts, 3) if alerts else PaneNeed(0, 0),
            "switches": PaneNeed(min(9, 2 + switches), 3) if switches else PaneNeed(1, 1),
            "usage": PaneNeed(min(9, 2 + max(usage, 2)), 4),
            "chart": PaneNeed(11, 7),
        }

    def layout_note(self) -> str:
        """What the pane keys changed, or what the terminal's height folded, in the agents' title."""
        if self.choice.zoom:
            return " — zoomed (5: back)"
        folded, hidden = len(self.folded), len(self.choice.hidden)
        parts = ([f"{folded} folded"] if folded else []) + ([f"{hidden} hidden"] if hidden else [])
        return f" — panels {', '.join(parts)} (1-5)" if parts else ""

    def fit_panels(self) -> None:
        """Give each panel its height from `layout.plan`; the agents take the rest. Only when a height
        changes: a new height lays the screen out again."""
        try:
            # The header's lines from its text, not its last layout: a layout behind by one show would
            # plan on a stale height (and the plan would depend on when the screen was last drawn).
            header = self.query_one(Summary)
            limit = header.styles.max_height
            summary = min(header.line_count, int(limit.value)) if limit is not None else header.line_count
            bar = 1 if self.query_one(FilterBar).display else 0
            room = self.size.height - summary - 1 - bar  # the footer's line
            needs = self.needs()
            heights = layout.plan(room, needs, self.choice.hidden, self.choice.zoom,
                                  self.query_one(AgentTable).row_count)
        except NoMatches:
            return
        self.folded = [pane for pane, height in heights.items()
                       if not height and needs[pane].want and pane not in self.choice.hidden]
        if heights == self.heights:
            return
        self.heights = heights
        panel = self.query_one(AlertPanel)
        room = max(1, heights["alerts"] - 1)  # below its title
        if panel.room != room and self.shown is not None:
            panel.room = room
            panel.show(self.shown)  # fewer lines: its `… N more` says what did not fit
        for pane, height in heights.items():
            widget = self.query_one(f"#{pane}-pane")
            widget.display = height > 0
            if height:
                widget.styles.height = height

    def action_filter(self) -> None:
        bar = self.query_one(FilterBar)
        bar.display = True
        bar.focus()

    def action_sort(self) -> None:
        """The agents' order: burn rate, when the daily budget runs out, spend today, name."""
        keys = list(SortKey)
        current = self.shown.sort if self.shown is not None else SortKey.BURN
        self.post_message(self.SortChanged(keys[(keys.index(current) + 1) % len(keys)], False))

    @on(RowTable.HeaderClicked)
    def _header_clicked(self, message: RowTable.HeaderClicked) -> None:
        """A click on an agent column's title sorts by it; a second click on it reverses the order."""
        key = COLUMN_SORT.get(message.column)
        if not isinstance(message.control, AgentTable) or key is None or self.shown is None:
            return
        reverse = not self.shown.sort_reverse if self.shown.sort is key else False
        self.post_message(self.SortChanged(key, reverse))

    @on(RowTable.ScrolledSideways, "#agents")
    def _agents_scrolled(self) -> None:
        self.agents_title()

    def action_chart_range(self) -> None:
        chart = self.query_one(VelocityChart)
        chart.hours = not chart.hours
        self.post_message(self.ViewChanged())

    def action_acknowledge(self) -> None:
        """Acknowledged alerts stay listed, dimmed, until their condition clears; no bell for them.
        Only the alerts on screen (while paused, not ones that tripped since)."""
        if self.shown is None or not self.shown.alerts:
            self.notify("No alert to acknowledge.", timeout=3)
            return
        self.post_message(self.AlertsAcknowledged(tuple(a.key for a in self.shown.alerts)))

    def action_drill_down(self) -> None:
        """enter on the agent table: that agent's screen (its traces, then a trace's steps)."""
        if isinstance(self.focused, AgentTable) and self.focused.selected_key is not None:
            self.post_message(self.AgentOpened(self.focused.selected_key))

    @on(AlertPanel.Opened)
    def _alert_opened(self, message: AlertPanel.Opened) -> None:
        """enter on an alert: the trace it names (a loop, a context explosion), else its agent; the fleet's,
        a provider's or the gateway's alerts name neither, and say so."""
        alert = message.alert
        if alert.trace is not None:
            self.post_message(self.TraceOpened(alert.trace, alert.agent))
        elif alert.agent is not None:
            self.post_message(self.AgentOpened(alert.agent))
        else:
            self.notify(nothing_to_open(alert), timeout=4, markup=False)

    def _tables(self) -> list[RowTable[object]]:
        return [self.query_one(AgentTable), self.query_one(ProviderTable), self.query_one(ModelTable)]  # type: ignore[list-item]

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        for table in self._tables():
            table.filter = event.value.strip()
        self.post_message(self.ViewChanged())

    @on(Input.Submitted, "#filter")
    def _filter_kept(self) -> None:
        self.query_one(AgentTable).focus()

    def action_clear_filter(self) -> None:
        bar = self.query_one(FilterBar)
        bar.value = ""  # fires Input.Changed: the tables show everything again
        bar.display = False
        self.query_one(AgentTable).focus()

    class ViewChanged(Message):
        """What to show changed without new data (a filter, the chart's range): drawn again."""

    def on_resize(self) -> None:
        self.set_class(self.size.width < NARROW, "narrow")
        self.call_after_refresh(self._refit)

    def _refit(self) -> None:
        self.fit_panels()
        try:
            self.agents_title()
        except NoMatches:
            return

    def _show(self, snap: Snapshot, display: Display) -> None:
        self.query_one(Summary).show(snap, display)
        self.query_one(AlertPanel).show(snap)
        # Counted in C: a flood of 100,000 agents can hold tens of thousands of alerts, and a Python
        # generator over them cost tens of milliseconds a show.
        waiting = len(snap.alerts) - sum(map(_acknowledged, snap.alerts))
        self.pane_title("#alerts-pane", f"Alerts ({len(snap.alerts)}, {waiting} new — a: acknowledge)")
        agents = self.query_one(AgentTable)
        agents.show(snap)
        self.query_one(SwitchTable).show(snap)
        self.query_one(ProviderTable).show(snap)
        chart = self.query_one(VelocityChart)
        chart.show(snap)
        self.pane_title("#chart-pane", "Burn $/min — completed hours, last 24 (v: minutes)" if chart.hours
                        else "Burn $/min — completed minutes, last hour (v: 24 hours)")
        self.query_one(ModelTable).show(snap)
        for pane, name in (("#providers-pane", "Providers"), ("#models-pane", "Models — today, UTC")):
            table = self.query_one(f"{pane} RowTable", RowTable)
            self.pane_title(pane, f"{name} — filter “{table.filter}”: {table.row_count} of {table.total}"
                            if table.filter else name)
        count = len(snap.switches)
        self.pane_title("#switches-pane", f"Switches ({count})" if snap.switches_known
                        else "Switches (unknown: Redis unavailable)")
        self.fit_panels()
        self.agents_title()

    def agents_title(self) -> None:
        """The order (and whether its column is in view), the filter, and what the layout folded."""
        snap, agents = self.shown, self.query_one(AgentTable)
        if snap is None:
            return
        title = f"Agents — today, UTC — by {snap.sort.value}{' (reversed)' if snap.sort_reverse else ''}"
        column = SORT_COLUMN.get(snap.sort)
        side = agents.column_side(column) if column is not None else None
        if side:
            label = next(label for key, label, _ in agents.columns if key == column)
            title += f" ({label} is off screen: {side})"
        if agents.filter:
            title += f" — filter “{agents.filter}”: {agents.row_count} of {agents.total} (/ to change)"
        title += self.layout_note()
        self.pane_title("#agents-pane", title)

    def pane_title(self, pane: str, title: str) -> None:
        """Set a pane's title line, only when it changed (update() always lays the screen out again); as
        Text, never markup: a filter is typed text."""
        widget = self.query_one(f"{pane} .pane-title", Static)
        if str(widget.content) != title:
            widget.update(Text(title))
