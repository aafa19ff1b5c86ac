"""Every kill and throttle switch, with who set it, why, the auto-recovery time left, and whether
the gateway honours a kill (its target's last call, and the calls that ignored it)."""

from __future__ import annotations

from rich.text import Text

from costtop.engine.snapshot import KillCheck, Snapshot
from costtop.sources.records import SwitchKind
from costtop.text import id_text
from costtop.ui.format import call_age, duration
from costtop.ui.widgets.keyed_table import KeyedTable

COLUMNS = [("key", "Switch", None), ("kind", "Kind", 8), ("last", "Last call", 9), ("who", "Who", None),
           ("why", "Why", None), ("ttl", "Expires in", 11)]
# Below this width the kind (the key says it, in its colour) gives its room to the last call, so that
# the expiry still fits at 80 columns.
NARROW = [column for column in COLUMNS if column[0] != "kind"]
WIDE = 110


class SwitchTable(KeyedTable):
    def show(self, snap: Snapshot) -> None:
        wide = self.app.size.width >= WIDE
        self.set_columns(COLUMNS if wide else NARROW)
        rows = []
        now = snap.at.timestamp()
        checks = {check.key: check for check in snap.kill_checks}  # one look-up per switch, not a scan
        for switch in snap.switches:
            source, who, why = switch.origin
            style = "bold red" if switch.kind is SwitchKind.KILL else "bold yellow"
            ttl = Text(duration(switch.ttl_seconds), style="dim") if switch.ttl_seconds is not None \
                else Text("manual only", style="dim")
            kind = (Text(switch.kind.value, style=style),) if wide else ()
            rows.append((switch.key, (id_text(switch.key, style=style), *kind,
                                      verified(checks.get(switch.key), now),
                                      Text(f"{who} ({source})"), Text(why), ttl)))
        self.apply(rows)


def verified(check: KillCheck | None, now: float) -> Text:
    """The target's last call, and the calls that ignored the kill (`12s ✖14`): a kill is trusted only
    while its target's calls stop or come back refused. A throttle has no check: calls go on, slower."""
    if check is None:
        return Text("")
    text = call_age(check.last_call_at, now, check.known_from)
    text.justify = "left"
    if check.violations:
        text.append(f" ✖{check.violations:,}", style="bold red")  # the alert has the words
    return text
