"""The active alerts: severity, subject, since when and the figure that tripped each one."""

from __future__ import annotations

from datetime import datetime

from rich.text import Text

from costtop.engine.snapshot import Alert, Severity, Snapshot
from costtop.text import clean
from costtop.ui.format import duration
from costtop.ui.widgets.line_diff import TextLines

SEVERITY_STYLE = {Severity.WARNING: "bold yellow", Severity.CRITICAL: "bold red",
                  Severity.EMERGENCY: "bold white on red"}
SEVERITY_WORD = {Severity.WARNING: "WARN", Severity.CRITICAL: "CRIT", Severity.EMERGENCY: "EMERG"}
MAX_LINES = 5


def alert_line(alert: Alert, now: datetime) -> Text:
    """`CRIT  burn rate  research-bot  $16.20 in 5 min  for 2m10s`; acknowledged ones are dimmed."""
    style = "dim" if alert.acknowledged else SEVERITY_STYLE[alert.severity]
    line = Text(f"{SEVERITY_WORD[alert.severity]:<5}", style=style)
    line.append(f" {alert.rule}  ", style="bold" if not alert.acknowledged else "dim")
    line.append(clean(alert.subject, 40), style="bold" if not alert.acknowledged else "dim")
    line.append(f"  {alert.figure}", style="" if not alert.acknowledged else "dim")
    if alert.since is not None:
        held = max(0, int((now - alert.since).total_seconds()))
        line.append(f"  for {held}s" if held < 60 else f"  for {duration(held)}", style="dim")
    if alert.acknowledged:
        line.append("  (acknowledged)", style="dim")
    return line


def alerts_text(snap: Snapshot) -> Text:
    """The alerts, then the notes (what is not judged, bad data named by agent). The notes take the
    place of alerts past the first few, so the pane's fixed height never cuts them off."""
    notes = [Text(clean(snap.anomaly_note, 200), style="dim")] if snap.anomaly_note else []
    notes += [Text(clean(line, 300), style="yellow") for line in snap.data_quality]
    alerts = snap.alerts
    room = max(1, MAX_LINES - len(notes)) if len(alerts) + len(notes) > MAX_LINES else MAX_LINES
    lines = [alert_line(a, snap.at) for a in alerts[:room]]
    if len(alerts) > room:
        lines.append(Text(f"… {len(alerts) - room} more", style="dim"))
    return Text("\n").join(lines + notes)


class AlertPanel(TextLines):
    def show(self, snap: Snapshot) -> None:
        self.set_text(alerts_text(snap))
