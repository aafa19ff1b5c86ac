"""The active alerts: severity, subject, since when and the figure that tripped each one."""

from __future__ import annotations

from datetime import datetime

from rich.text import Text

from costtop.ages import span
from costtop.engine.snapshot import Alert, Severity, Snapshot
from costtop.text import clean, id_text
from costtop.ui.format import styled
from costtop.ui.themes import DEFAULT_PALETTE, Palette, palette
from costtop.ui.widgets.line_diff import TextLines

SEVERITY_STYLE = {Severity.WARNING: "strong_warning", Severity.CRITICAL: "strong_critical",
                  Severity.EMERGENCY: "killed"}  # the Palette's styles
SEVERITY_WORD = {Severity.WARNING: "WARN", Severity.CRITICAL: "CRIT", Severity.EMERGENCY: "EMERG"}
MAX_LINES = 6  # the `… N more` line included


def alert_line(alert: Alert, now: datetime, p: Palette = DEFAULT_PALETTE) -> Text:
    """`CRIT  burn rate  research-bot  $16.20 in 5 min  for 2m10s`; acknowledged ones are dimmed."""
    style = "dim" if alert.acknowledged else styled(p, SEVERITY_STYLE[alert.severity])
    line = Text(f"{SEVERITY_WORD[alert.severity]:<5}", style=style)
    line.append(f" {alert.rule}  ", style="bold" if not alert.acknowledged else "dim")
    line.append_text(id_text(alert.subject, 40, style="bold" if not alert.acknowledged else "dim"))
    line.append(f"  {clean(alert.figure, 200)}", style="" if not alert.acknowledged else "dim")
    if alert.since is not None:
        held = max(0, int((now - alert.since).total_seconds()))
        line.append(f"  for {span(held)}", style="dim")
    if alert.acknowledged:
        line.append("  (acknowledged)", style="dim")
    return line


def alerts_text(snap: Snapshot, p: Palette = DEFAULT_PALETTE, max_lines: int = MAX_LINES) -> Text:
    """The alerts, most severe first, then the notes: data quality (rows dated in the future, rows that
    came too late) and why anomalies are not judged; `max_lines` lines at most, a `… N more` line
    included, so a panel given fewer lines still says how many it could not show. Notes take up to
    two lines (and never more than half), so a busy incident cannot push them out of sight."""
    notes = [Text(f"DATA  {clean(note, 200)}", style=p.warning) for note in snap.data_quality]
    if snap.anomaly_note:
        notes.append(Text(clean(snap.anomaly_note, 200), style="dim"))
    note_room = min(len(notes), 2, max_lines // 2)
    if len(notes) > note_room:
        more = len(notes) - max(0, note_room - 1)
        notes = [*notes[:note_room - 1], Text(f"… {more} more note{'s' if more > 1 else ''} "
                                             "(costtop snapshot lists them)", style="dim")] if note_room else []
    alerts, room = snap.alerts, max_lines - len(notes)
    if len(alerts) > room:
        lines = [alert_line(a, snap.at, p) for a in alerts[:max(0, room - 1)]]
        if room > 0:
            lines.append(Text(f"… {len(alerts) - len(lines)} more", style="dim"))
    else:
        lines = [alert_line(a, snap.at, p) for a in alerts]
    return Text("\n").join(lines + notes)


class AlertPanel(TextLines):
    def __init__(self, *, lines: int = MAX_LINES, id: str | None = None) -> None:
        """`lines`: alerts and notes at most (the wall screen has room for more than the main screen)."""
        super().__init__(id=id)
        self.most = lines
        self.room = lines  # the lines the screen's layout gives it now (at most `most`)
        self.wanted = 0  # the lines it would fill with `most`: what it asks the layout for

    def show(self, snap: Snapshot) -> None:
        p = palette(self.app)
        full = alerts_text(snap, p, self.most)
        self.wanted = len(full.plain.split("\n")) if snap.alerts or snap.data_quality or snap.anomaly_note else 0
        self.set_text(full if self.room >= self.wanted else alerts_text(snap, p, max(1, self.room)))
