"""The main screen: header, agent table, switch panel, footer."""

from __future__ import annotations

from operator import attrgetter

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.css.query import NoMatches
from textual.message import Message
from textual.widgets import Footer, Input, Static

from costtop.engine.snapshot import Snapshot, SortKey
from costtop.ui.display import Display
from costtop.ui.screens.base import CosttopScreen
from costtop.ui.widgets.agent_table import AgentTable
from costtop.ui.widgets.alert_panel import AlertPanel, nothing_to_open
from costtop.ui.widgets.row_table import RowTable
from costtop.ui.widgets.summary import Summary
from costtop.ui.widgets.switch_table import SwitchTable
from costtop.ui.widgets.usage_tables import ModelTable, ProviderTable
from costtop.ui.widgets.velocity_chart import VelocityChart

_acknowledged = attrgetter("acknowledged")

SHORT = 40  # lines
NARROW = 140  # columns: the provider and model panels share the width


class FilterBar(Input):
    """`/`: the text the agent, model and provider rows must hold; esc clears it."""

    HELP_SCOPE = "filter"
    BINDINGS = [Binding("escape", "screen.clear_filter", "Clear filter", id="filter.clear")]


COLUMN_SORT = {"agent": SortKey.NAME, "today": SortKey.TODAY, "velocity": SortKey.BURN, "runs_out": SortKey.RUNS_OUT}


class MainScreen(CosttopScreen):
    """The fleet at a glance. Its keys act on what it shows (order, chart range, filter, alerts, the
    agent to open); they ask the app through typed messages, and do nothing on other screens."""

    HELP_SCOPE = "main screen"
    BINDINGS = [
        Binding("s", "sort", "Sort", id="sort"),
        Binding("v", "chart_range", "60m/24h", id="chart_range"),
        Binding("a", "acknowledge", "Ack alerts", id="acknowledge"),
        Binding("enter", "drill_down", "Agent", id="drill_down", show=False),
        Binding("slash", "filter", "Filter", id="filter"),
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

    def __init__(self) -> None:
        super().__init__()
        self.shown: Snapshot | None = None  # the snapshot on screen (the frozen one while paused)

    def compose(self) -> ComposeResult:
        yield Summary("connecting…", id="summary")
        with Vertical(id="alerts-pane", classes="empty"):
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
        # On a short terminal the panels below the agents shrink, so the agents keep some rows.
        self.set_class(self.size.height < SHORT, "short")
        self.set_class(self.size.width < NARROW, "narrow")

    def show(self, snap: Snapshot, display: Display) -> None:
        self.shown = snap
        try:
            self._show(snap, display)
        except NoMatches:  # not composed yet, or torn down child by child at exit
            return

    def _show(self, snap: Snapshot, display: Display) -> None:
        self.query_one(Summary).show(snap, display)
        self.query_one("#alerts-pane").set_class(not snap.alerts and not snap.anomaly_note and not snap.data_quality,
                                                "empty")
        self.query_one(AlertPanel).show(snap)
        # Counted in C: a flood of 100,000 agents can hold tens of thousands of alerts, and a Python
        # generator over them cost tens of milliseconds a show.
        waiting = len(snap.alerts) - sum(map(_acknowledged, snap.alerts))
        self.pane_title("#alerts-pane", f"Alerts ({len(snap.alerts)}, {waiting} new — a: acknowledge)")
        agents = self.query_one(AgentTable)
        agents.show(snap)
        title = f"Agents — today, UTC — by {snap.sort.value}{' (reversed)' if snap.sort_reverse else ''}"
        if agents.filter:
            title += f" — filter “{agents.filter}”: {agents.row_count} of {agents.total} (/ to change)"
        self.pane_title("#agents-pane", title)
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
        self.query_one("#switches-pane").set_class(count == 0, "empty")

    def pane_title(self, pane: str, title: str) -> None:
        """Set a pane's title line, only when it changed (update() always lays the screen out again); as
        Text, never markup: a filter is typed text."""
        widget = self.query_one(f"{pane} .pane-title", Static)
        if str(widget.content) != title:
            widget.update(Text(title))
