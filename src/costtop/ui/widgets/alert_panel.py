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
MAX_LINES = 6  # lines, the `… N more` line included
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


def note_lines(snap: Snapshot, max_lines: int) -> int:
    """The lines the notes take in `max_lines`: up to two and never more than half, a `… N more notes`
    line among them, so a busy incident cannot push them out of sight nor they push out the alerts."""
    return min(len(snap.data_quality) + bool(snap.anomaly_note), 2, max_lines // 2)


def notes_of(snap: Snapshot, p: Palette = DEFAULT_PALETTE, max_lines: int = MAX_LINES) -> list[Text]:
    """Data quality (rows dated in the future, rows that came too late), and why anomalies are not
    judged, in `note_lines` lines."""
    notes = [Text(f"DATA  {clean(note, 200)}", style=p.warning) for note in snap.data_quality]
    if snap.anomaly_note:
        notes.append(Text(clean(snap.anomaly_note, 200), style="dim"))
    room = note_lines(snap, max_lines)
    if len(notes) <= room:
        return notes
    if not room:
        return []
    more = len(notes) - (room - 1)
    return [*notes[:room - 1], Text(f"… {more} more note{'s' if more > 1 else ''} (costtop snapshot lists them)",
                                    style="dim")]


def alert_window(count: int, lines: int) -> int:
    """How many alerts `lines` lines list: all of them, or one fewer than the lines and a `… N more`."""
    return count if count <= lines else max(0, lines - 1)


def alerts_text(snap: Snapshot, p: Palette = DEFAULT_PALETTE, max_lines: int = MAX_LINES, first: int = 0,
                cursor: int | None = None, cursor_style: Style | None = None) -> Text:
    """The alerts, most severe first, then the notes; `max_lines` lines at most, a `… N more` line
    included, so a panel given fewer lines still says how many it could not show. `first`: the first
    alert shown (the panel scrolls to its cursor); `cursor`: the alert under the cursor, drawn in
    `cursor_style`."""
    notes = notes_of(snap, p, max_lines)
    alerts = snap.alerts
    shown = alert_window(len(alerts), max_lines - len(notes))
    first = max(0, min(first, len(alerts) - shown))
    lines = []
    for index, alert in enumerate(alerts[first:first + shown], first):
        line = alert_line(alert, snap.at, p)
        if index == cursor and cursor_style is not None:
            line.stylize(cursor_style)
        lines.append(line)
    if len(alerts) > shown and max_lines - len(notes) > 0:
        lines.append(Text(f"… {len(alerts) - shown} more", style="dim"))
    return Text("\n").join(lines + notes)


class AlertPanel(TextLines, can_focus=True):
    """The alerts with a cursor (drawn while focused). Once moved it follows its alert's key through
    re-orders, as the tables' cursor does; on the first alert it stays on the first (the most severe).
    The screen's layout says how many lines it has (`room`); it asks for what it would fill (`wanted`)."""

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

    def __init__(self, text: str = "", *, lines: int = MAX_LINES, focusable: bool = True,
                 id: str | None = None) -> None:
        """`lines`: alerts and notes at most (the wall has room for more); `focusable`: False where
        nothing can be opened (the wall screen)."""
        super().__init__(text, id=id)
        self.can_focus = focusable
        self.most = lines
        self.room = lines  # the lines the screen's layout gives it now (at most `most`)
        self.wanted = 0  # the lines it would fill with `most`: what it asks the layout for
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
        notes = note_lines(snap, self.most)
        shown = alert_window(len(alerts), self.most - notes)
        self.wanted = shown + (len(alerts) > shown) + notes
        self._draw()
        if not alerts and self.has_focus:
            # The last alert cleared: its pane folds away (and Textual would leave nothing focused), so
            # the focus goes on to the next panel, the agents.
            self.screen.focus_next()

    def _draw(self) -> None:
        snap = self.snap
        if snap is None:
            return
        lines = max(1, min(self.room, self.most))
        # The alerts in view (the cursor's among them): the lines but the notes' and the `… more` one.
        visible = max(1, alert_window(len(snap.alerts), lines - note_lines(snap, lines)))
        if self.cursor < self.first:
            self.first = self.cursor
        elif self.cursor >= self.first + visible:
            self.first = self.cursor - visible + 1
        style = self.get_component_rich_style("alert-panel--cursor") if self.has_focus else None
        self.set_text(alerts_text(snap, palette(self.app), lines, self.first, self.cursor, style))

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
