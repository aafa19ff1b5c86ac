"""Every kill and throttle switch, with who set it, why, the auto-recovery time left, and whether
the gateway honours a kill (its target's last call, and the calls that ignored it). A RowTable like
the agent, model and provider tables: its rows are the switches, keyed by their Redis key."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text

from costtop.engine.snapshot import KillCheck, Snapshot
from costtop.sources.records import SwitchKind, SwitchRecord
from costtop.text import id_text
from costtop.ui.format import call_age, duration
from costtop.ui.themes import Palette
from costtop.ui.widgets.row_table import Column, RowTable

# Below this width the kind (the key says it, in its colour) gives its room to the last call, so that
# the expiry still fits at 80 columns.
WIDE = 110
MAX_KEY = 120
MAX_WHO = 40
MAX_WHY = 120

# A switch with its kill check (None for a throttle, or a kill not checked yet): a row is immutable and
# holds all it shows, so a line is drawn again only when its switch or its check changed.
SwitchRow = tuple[SwitchRecord, KillCheck | None]


def switch_columns(rows: Sequence[SwitchRow], wide: bool, key_width: int) -> list[Column]:
    """Fixed widths but for who and why, sized to the widest shown (up to a cap)."""
    who = max((len(who_of(s)) for s, _ in rows), default=3)
    why = max((len(s.origin[2]) for s, _ in rows), default=3)
    columns: list[Column] = [("key", "Switch", key_width)]
    if wide:
        columns.append(("kind", "Kind", 8))
    return [*columns, ("last", "Last call", 9), ("who", "Who", max(3, min(MAX_WHO, who))),
            ("why", "Why", max(3, min(MAX_WHY, why))), ("ttl", "Expires in", 11)]


def who_of(switch: SwitchRecord) -> str:
    source, who, _ = switch.origin
    return f"{who} ({source})"


def switch_cells(row: SwitchRow, wide: bool, now: float, p: Palette) -> list[Text]:
    switch, check = row
    style = p.killed_text if switch.kind is SwitchKind.KILL else p.strong_warning
    ttl = Text(duration(switch.ttl_seconds) if switch.ttl_seconds is not None else "manual only", style="dim")
    kind = [Text(switch.kind.value, style=style)] if wide else []
    return [id_text(switch.key, style=style), *kind, verified(check, now, p), Text(who_of(switch)),
            Text(switch.origin[2]), ttl]


def verified(check: KillCheck | None, now: float, p: Palette) -> Text:
    """The target's last call, and the calls that ignored the kill (`12s ✖14`): a kill is trusted only
    while its target's calls stop or come back refused. A throttle has no check: calls go on, slower."""
    if check is None:
        return Text("")
    text = call_age(check.last_call_at, now, check.known_from)
    text.justify = "left"
    if check.violations:
        text.append(f" ✖{check.violations:,}", style=p.strong_critical)  # the alert has the words
    return text


class SwitchTable(RowTable[SwitchRow]):
    # The key is what the gateway checks: shown whole (every character, made visible) up to this width.
    max_name = MAX_KEY

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.wide = True
        self.now = 0  # the snapshot's second: ages are drawn against it, so a line is redrawn each second
        self.switches: Sequence[SwitchRow] = ()

    def rows_of(self, snap: Snapshot) -> Sequence[SwitchRow]:
        self.wide = self.app.size.width >= WIDE
        self.now = int(snap.at.timestamp())
        checks = {check.key: check for check in snap.kill_checks}
        self.switches = [(switch, checks.get(switch.key)) for switch in snap.switches]
        return self.switches

    def key_of(self, row: SwitchRow) -> str:
        return row[0].key

    def columns_for(self, snap: Snapshot, name_width: int) -> list[Column]:
        return switch_columns(self.switches, self.wide, name_width)

    def cells_of(self, row: SwitchRow) -> list[Text]:
        return switch_cells(row, self.wide, self.now, self.palette)

    def layout_key(self) -> tuple[object, ...]:
        return (self.wide, self.now)
