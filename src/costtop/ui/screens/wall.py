"""The wall screen (`costtop --wall`): the fleet for a monitor across the room that nobody touches.

From 3 m away the eye takes the colour first, then the large figures, then the lists: so a band and a
thick border in the colour of the worst state (`wall_state`), the burn rate, today's spend and the day
budget in large digits, then the top agents and the active alerts in plain text. It is read-only (the
wall implies `--read-only`) and has no footer: no key there is meant to be pressed, and a line of
disabled keys would only take room from the figures. `?` and `q` still work (CosttopScreen).
"""

from __future__ import annotations

from decimal import Decimal

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Static

from costtop.engine.snapshot import BudgetState, Level, Snapshot
from costtop.money import usd
from costtop.ui.display import Display
from costtop.ui.format import level_text, runs_out
from costtop.ui.screens.base import BoardScreen
from costtop.ui.themes import Palette, palette
from costtop.ui.wall_state import WallLevel, WallState, wall_state
from costtop.ui.widgets.alert_panel import AlertPanel
from costtop.ui.widgets.big_figure import UNKNOWN_FIGURE, BigFigure, Figure
from costtop.ui.widgets.line_diff import TextLines
from costtop.ui.widgets.summary import pack
from costtop.ui.widgets.top_agents import TopAgents
from costtop.ui.widgets.velocity_chart import VelocityChart

ALERT_LINES = 12
NARROW = 140  # columns: below, the agents and the alerts are stacked, not side by side
SHORT = 40  # lines: below, no blank lines around the band and the figures
LEVEL_TONE = {Level.OK: "ok", Level.WARNING: "warning", Level.CRITICAL: "critical", Level.EMERGENCY: "killed",
              Level.UNKNOWN: "unknown"}
BUDGET_TONE = {BudgetState.OK: "ok", BudgetState.WARNING: "warning", BudgetState.EXCEEDED: "critical"}


def _dollars(amount: Decimal) -> str:
    """Cents while they matter; whole dollars once they only make the digits wider than the eye needs."""
    return usd(amount, 0 if abs(amount) >= 1000 else 2)


def burn_figure(snap: Snapshot, p: Palette) -> Figure:
    h = snap.header
    if h.velocity_per_hour is None or not h.velocity_per_hour.is_finite():
        return UNKNOWN_FIGURE
    note = level_text(f"{usd(h.velocity_per_min)}/min", h.velocity_level, p)
    return Figure(_dollars(h.velocity_per_hour), note, LEVEL_TONE[h.velocity_level])


def today_figure(snap: Snapshot) -> Figure:
    h = snap.header
    if h.totals_pending:
        return Figure(None, Text("reading today's rows…", style="bold"), "unknown")
    if h.spend_today is None or not h.spend_today.is_finite():
        return UNKNOWN_FIGURE
    note = Text(f"→ {usd(h.projected_today)} by midnight" if h.projected_today is not None
                else "no forecast: no burn now")
    return Figure(_dollars(h.spend_today), note)


def budget_figure(snap: Snapshot, p: Palette) -> Figure:
    budget = snap.header.day_budget
    if budget.state is BudgetState.DISABLED:
        return Figure(None, Text("no day budget is set", style="dim"), "plain", words="no budget")
    fraction = budget.fraction
    if budget.state is BudgetState.UNKNOWN or fraction is None:
        return UNKNOWN_FIGURE
    note = Text(f"{usd(budget.used)} of {usd(budget.limit)}")
    if budget.state is BudgetState.EXCEEDED:
        note.append(" · OVER", style=p.strong_critical)
    elif budget.runs_out_in is not None and budget.runs_out_in > 0:
        note.append(" · out in ")
        note.append_text(runs_out(budget, p))
    digits = f"{fraction * 100:.0f}%" if fraction < 10 else "999+%"
    return Figure(digits, note, BUDGET_TONE.get(budget.state, "unknown"))


def band_text(state: WallState, snap: Snapshot, display: Display, width: int) -> Text:
    """The state in one word, then why, then what the screen is: the band's colour is the tcss's."""
    items = [Text(f"{'●' if state.level is WallLevel.OK else '▲'} {state.level.word}", style="bold")]
    items += [Text(reason, style="bold") for reason in state.reasons]
    if display.paused:
        items.append(Text("PAUSED: the screen is frozen (p: resume)", style="bold reverse"))
    # The time moves every refresh: a frozen wall (a hung session, a lost SSH link) is seen to be frozen.
    items.append(Text(f"costtop wall · read-only · {snap.at:%H:%M:%S} UTC · ? help"))
    return pack(items, width, gap=4)


class WallScreen(BoardScreen):
    HELP_SCOPE = "wall screen"

    def __init__(self) -> None:
        super().__init__(classes=WallLevel.UNKNOWN.css_class)
        self.fleet_state: WallState | None = None  # what the colour says now

    def compose(self) -> ComposeResult:
        with Vertical(id="wall-band-box"):  # the padding is the box's: TextLines repaints lines, not padding
            yield TextLines("connecting…", id="wall-band")
        with Horizontal(id="wall-figures"):
            yield BigFigure("BURN $/HOUR (5 MIN)", id="wall-burn")
            yield BigFigure("SPENT TODAY (UTC)", id="wall-today")
            yield BigFigure("DAY BUDGET USED", id="wall-budget")
        with Horizontal(id="wall-lists"):
            with Vertical(id="wall-agents-pane"):
                yield Static(Text("Top agents — by $/min"), classes="pane-title")
                yield TopAgents(id="wall-agents")
            with Vertical(id="wall-alerts-pane"):
                yield Static(Text("Alerts"), classes="pane-title")
                yield AlertPanel(lines=ALERT_LINES, focusable=False, id="wall-alerts")
        with Vertical(id="wall-chart-pane"):  # the room below the lists: the last hour's burn, drawn
            yield Static(Text("Burn $/min — completed minutes, last hour"), classes="pane-title")
            yield VelocityChart(id="wall-chart")

    def on_resize(self) -> None:
        width, height = self.app.size
        self.set_class(width < NARROW, "narrow")
        self.set_class(height < SHORT, "short")

    def _show(self, snap: Snapshot, display: Display) -> None:
        state = wall_state(snap)
        self.fleet_state = state
        for level in WallLevel:
            self.set_class(level is state.level, level.css_class)
        p = palette(self.app)
        band = self.query_one("#wall-band", TextLines)
        band.set_text(band_text(state, snap, display, max(20, band.content_size.width or self.app.size.width - 6)))
        self.query_one("#wall-burn", BigFigure).show(burn_figure(snap, p), state.stale)
        self.query_one("#wall-today", BigFigure).show(today_figure(snap), state.stale)
        self.query_one("#wall-budget", BigFigure).show(budget_figure(snap, p), state.stale)
        self.query_one(TopAgents).show(snap)
        self.query_one(AlertPanel).show(snap)
        self.query_one(VelocityChart).show(snap)
        count = len(snap.alerts)
        self._title("#wall-alerts-pane", f"Alerts ({count})" if count else "Alerts: none active")

    def _title(self, pane: str, title: str) -> None:
        widget = self.query_one(f"{pane} .pane-title", Static)
        if str(widget.content) != title:
            widget.update(Text(title))
