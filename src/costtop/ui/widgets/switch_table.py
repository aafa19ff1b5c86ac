"""Every kill and throttle switch, with who set it, why, and the auto-recovery time left."""

from __future__ import annotations

from rich.text import Text

from costtop.engine.snapshot import Snapshot
from costtop.sources.records import SwitchKind
from costtop.text import id_text
from costtop.ui.format import duration
from costtop.ui.widgets.keyed_table import KeyedTable

COLUMNS = [("key", "Switch", None), ("kind", "Kind", 8), ("who", "Who", None), ("why", "Why", None),
           ("ttl", "Expires in", 11)]


class SwitchTable(KeyedTable):
    def show(self, snap: Snapshot) -> None:
        self.set_columns(COLUMNS)
        rows = []
        for switch in snap.switches:
            source, who, why = switch.origin
            style = "bold red" if switch.kind is SwitchKind.KILL else "bold yellow"
            ttl = Text(duration(switch.ttl_seconds), style="dim") if switch.ttl_seconds is not None \
                else Text("manual only", style="dim")
            rows.append((switch.key, (id_text(switch.key, style=style), Text(switch.kind.value, style=style),
                                      Text(f"{who} ({source})"), Text(why), ttl)))
        self.apply(rows)
