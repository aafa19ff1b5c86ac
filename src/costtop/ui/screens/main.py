"""The main screen: header, agent table, switch panel, footer."""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.css.query import NoMatches
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Input, Static

from costtop.config import Thresholds
from costtop.engine.snapshot import Snapshot
from costtop.ui.display import Display
from costtop.ui.widgets.agent_table import AgentTable
from costtop.ui.widgets.alert_panel import AlertPanel
from costtop.ui.widgets.row_table import RowTable
from costtop.ui.widgets.summary import Summary
from costtop.ui.widgets.switch_table import SwitchTable
from costtop.ui.widgets.usage_tables import ModelTable, ProviderTable
from costtop.ui.widgets.velocity_chart import VelocityChart

SHORT = 40  # lines
NARROW = 140  # columns: the provider and model panels share the width


class FilterBar(Input):
    """`/`: the text the agent, model and provider rows must hold; esc clears it."""

    BINDINGS = [Binding("escape", "screen.clear_filter", "Clear filter", id="filter.clear")]


class MainScreen(Screen[None]):
    def __init__(self, thresholds: Thresholds) -> None:
        super().__init__()
        self.thresholds = thresholds

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
            yield VelocityChart(self.thresholds, id="chart")
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

    def open_filter(self) -> None:
        bar = self.query_one(FilterBar)
        bar.display = True
        bar.focus()

    def _tables(self) -> list[RowTable[object]]:
        return [self.query_one(AgentTable), self.query_one(ProviderTable), self.query_one(ModelTable)]  # type: ignore[list-item]

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        for table in self._tables():
            table.filter = event.value.strip()
        self.post_message(self.FilterChanged())

    @on(Input.Submitted, "#filter")
    def _filter_kept(self) -> None:
        self.query_one(AgentTable).focus()

    def action_clear_filter(self) -> None:
        bar = self.query_one(FilterBar)
        bar.value = ""  # fires Input.Changed: the tables show everything again
        bar.display = False
        self.query_one(AgentTable).focus()

    class FilterChanged(Message):
        """The rows to show changed without new data: the app draws the snapshot on screen again."""

    def on_resize(self) -> None:
        # On a short terminal the panels below the agents shrink, so the agents keep some rows.
        self.set_class(self.size.height < SHORT, "short")
        self.set_class(self.size.width < NARROW, "narrow")

    def show(self, snap: Snapshot, display: Display) -> None:
        try:
            self._show(snap, display)
        except NoMatches:  # not composed yet, or torn down child by child at exit
            return

    def _show(self, snap: Snapshot, display: Display) -> None:
        self.query_one(Summary).show(snap, display)
        self.query_one("#alerts-pane").set_class(not snap.alerts and not snap.anomaly_note and not snap.data_quality,
                                                "empty")
        self.query_one(AlertPanel).show(snap)
        waiting = sum(1 for a in snap.alerts if not a.acknowledged)
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
