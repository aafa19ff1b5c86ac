"""The main screen: header, agent table, switch panel, footer."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import Footer, Static

from costtop.engine.snapshot import Snapshot
from costtop.ui.widgets.agent_table import AgentTable
from costtop.ui.widgets.summary import Summary
from costtop.ui.widgets.switch_table import SwitchTable


class MainScreen(Screen[None]):
    def compose(self) -> ComposeResult:
        yield Summary("connecting…", id="summary")
        with Vertical(id="agents-pane"):
            yield Static("Agents — today, UTC", classes="pane-title")
            yield AgentTable(id="agents")
        with Vertical(id="switches-pane"):
            yield Static("Switches", classes="pane-title")
            yield SwitchTable(id="switches")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(AgentTable).focus()

    def show(self, snap: Snapshot, read_only: bool) -> None:
        try:
            summary = self.query_one(Summary)
        except NoMatches:  # not composed yet, or being torn down at exit
            return
        summary.show(snap, read_only)
        self.query_one(AgentTable).show(snap)
        self.query_one(SwitchTable).show(snap)
        count = len(snap.switches)
        title = f"Switches ({count})" if snap.switches_known else "Switches (unknown: Redis unavailable)"
        pane_title = self.query_one("#switches-pane .pane-title", Static)
        if str(pane_title.content) != title:  # update() always lays the screen out again
            pane_title.update(title)
        self.query_one("#switches-pane").set_class(count == 0, "empty")
