"""The active alerts: severity, subject, the figure that tripped each one, the rule and since when.

The panel takes the focus (tab) and has a cursor: `enter` on an alert opens what it names, the agent's
screen or the trace's steps (the main screen decides which, from the alert's typed `agent` / `trace`).
"""

from __future__ import annotations

from datetime import datetime

from rich.style import Style
from rich.text import Text
from textual.binding import Binding
from textual.message import Message

from costtop.ages import span
from costtop.engine.snapshot import Alert, Severity, Snapshot
from costtop.text import clean, id_text, visible_id
from costtop.ui.format import styled
from costtop.ui.themes import DEFAULT_PALETTE, Palette, palette
from costtop.ui.widgets.line_diff import TextLines

SEVERITY_STYLE = {Severity.WARNING: "strong_warning", Severity.CRITICAL: "strong_critical",
                  Severity.EMERGENCY: "killed"}  # the Palette's styles
SEVERITY_WORD = {Severity.WARNING: "WARN", Severity.CRITICAL: "CRIT", Severity.EMERGENCY: "EMERG"}
MAX_LINES = 5
SUBJECT_WIDTH = 24  # a longer agent id is cut the `visible_id` way (`…#hash`): two never look the same


def alert_line(alert: Alert, now: datetime, p: Palette = DEFAULT_PALETTE) -> Text:
    """`CRIT  research-bot  $16.20 in 5 min · burn rate  for 2m10s`: the useful part first. An 80-column
    line cuts the end, so what it cuts is what matters least: who (the subject, its id abbreviated), then
    what tripped (the figure), then the rule's name (which the figure mostly says again) and how long.
    Acknowledged ones are dimmed."""
    dim = alert.acknowledged
    style = "dim" if dim else styled(p, SEVERITY_STYLE[alert.severity])
    line = Text(f"{SEVERITY_WORD[alert.severity]:<5} ", style=style)
    line.append_text(id_text(alert.subject, SUBJECT_WIDTH, style="dim" if dim else "bold"))
    line.append(f"  {clean(alert.figure, 200)}", style="dim" if dim else "")
    line.append(f" · {alert.rule}", style="dim")
    if alert.since is not None:
        held = max(0, int((now - alert.since).total_seconds()))
        line.append(f"  for {span(held)}", style="dim")
    if dim:
        line.append("  (acknowledged)", style="dim")
    return line


def nothing_to_open(alert: Alert) -> str:
    """What `enter` says on an alert that names no agent and no trace (the fleet's, a provider's, the
    gateway's): plain text, for a notify without markup."""
    return f"“{alert.rule}” is about {visible_id(alert.subject, 40)}, not an agent or a trace: nothing to open."


def notes_of(snap: Snapshot, p: Palette = DEFAULT_PALETTE) -> list[Text]:
    """Data quality (rows dated in the future, rows that came too late), and why anomalies are not judged."""
    notes = [Text(f"DATA  {clean(note, 200)}", style=p.warning) for note in snap.data_quality]
    if snap.anomaly_note:
        notes.append(Text(clean(snap.anomaly_note, 200), style="dim"))
    return notes


def alert_room(snap: Snapshot) -> int:
    """How many alerts the panel lists at most: its lines, but for up to two notes."""
    return MAX_LINES - min(2, len(snap.data_quality) + bool(snap.anomaly_note))


def alerts_text(snap: Snapshot, p: Palette = DEFAULT_PALETTE, first: int = 0, cursor: int | None = None,
                cursor_style: Style | None = None) -> Text:
    """The alerts, most severe first, then the notes: data quality (rows dated in the future, rows that
    came too late) and why anomalies are not judged. Notes take up to two of the pane's lines, so a
    busy incident cannot push them out of sight. `first`: the first alert shown (the panel scrolls to
    its cursor); `cursor`: the alert under the cursor, drawn in `cursor_style`."""
    notes = notes_of(snap, p)
    shown_notes = notes[:2]
    alerts = snap.alerts
    room = alert_room(snap)
    first = max(0, min(first, len(alerts) - 1))
    lines = []
    for index, alert in enumerate(alerts[first:first + room], first):
        line = alert_line(alert, snap.at, p)
        if index == cursor and cursor_style is not None:
            line.stylize(cursor_style)
        lines.append(line)
    hidden = len(alerts) - len(lines)
    if hidden:
        lines.append(Text(f"… {hidden} more", style="dim"))
    lines += shown_notes
    if len(notes) > len(shown_notes):
        more = len(notes) - len(shown_notes)
        lines.append(Text(f"… {more} more note{'s' if more > 1 else ''} (costtop snapshot lists them)", style="dim"))
    return Text("\n").join(lines)


class AlertPanel(TextLines, can_focus=True):
    """The alerts with a cursor (drawn while focused). Once moved it follows its alert's key through
    re-orders, as the tables' cursor does; on the first alert it stays on the first (the most severe)."""

    HELP_SCOPE = "alerts"
    BINDINGS = [
        Binding("up", "cursor(-1)", "Up", show=False, id="alerts.up"),
        Binding("down", "cursor(1)", "Down", show=False, id="alerts.down"),
        Binding("enter", "open", "Open alert", id="alerts.open"),
    ]
    COMPONENT_CLASSES = {"alert-panel--cursor"}

    class Opened(Message):
        """`enter` on an alert: open what it names."""

        def __init__(self, alert: Alert) -> None:
            super().__init__()
            self.alert = alert

    def __init__(self, text: str = "", *, id: str | None = None) -> None:
        super().__init__(text, id=id)
        self.snap: Snapshot | None = None
        self.cursor = 0
        self.first = 0  # the first alert shown
        self._key: str | None = None  # the cursor's alert
        self._top = True  # on the first alert: stays on the first

    def show(self, snap: Snapshot) -> None:
        self.snap = snap
        alerts = snap.alerts
        found = None if self._top or self._key is None else \
            next((i for i, a in enumerate(alerts) if a.key == self._key), None)
        self.cursor = found if found is not None else min(self.cursor, max(0, len(alerts) - 1))
        self._key = alerts[self.cursor].key if alerts else None
        self._draw()
        if not alerts and self.has_focus:
            # The last alert cleared: its pane folds away (and Textual would leave nothing focused), so
            # the focus goes on to the next panel, the agents.
            self.screen.focus_next()

    def _draw(self) -> None:
        snap = self.snap
        if snap is None:
            return
        # Lines the pane shows (a short terminal gives it two): the cursor's alert is one of them.
        room = alert_room(snap)
        visible = max(1, min(room, self.size.height or room))
        if self.cursor < self.first:
            self.first = self.cursor
        elif self.cursor >= self.first + visible:
            self.first = self.cursor - visible + 1
        style = self.get_component_rich_style("alert-panel--cursor") if self.has_focus else None
        self.set_text(alerts_text(snap, palette(self.app), self.first, self.cursor, style))

    @property
    def selected(self) -> Alert | None:
        alerts = self.snap.alerts if self.snap is not None else ()
        return alerts[self.cursor] if self.cursor < len(alerts) else None

    def action_cursor(self, step: int) -> None:
        alerts = self.snap.alerts if self.snap is not None else ()
        if not alerts:
            return
        self.cursor = max(0, min(len(alerts) - 1, self.cursor + step))
        self._top = self.cursor == 0
        self._key = alerts[self.cursor].key
        self._draw()

    def action_open(self) -> None:
        alert = self.selected
        if alert is not None:
            self.post_message(self.Opened(alert))

    def on_focus(self) -> None:
        self._draw()

    def on_blur(self) -> None:
        self._draw()

    def on_resize(self) -> None:
        super().on_resize()
        self._draw()
