"""Every kill and throttle switch, with who set it, why, the auto-recovery time left, and whether
the gateway honours a kill (its target's last call, and the calls that ignored it). A RowTable like
the agent, model and provider tables: its rows are the switches, keyed by their Redis key."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import compress
from operator import attrgetter, itemgetter

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


_key = attrgetter("key")
_value = attrgetter("value")
_switch = itemgetter(0)


def switch_columns(widths: tuple[int, int], wide: bool, key_width: int) -> list[Column]:
    """Fixed widths but for who and why (`widths`: the widest shown of each), each up to a cap."""
    who, why = widths
    columns: list[Column] = [("key", "Switch", key_width)]
    if wide:
        columns.append(("kind", "Kind", 8))
    return [*columns, ("last", "Last call", 9), ("who", "Who", max(3, min(MAX_WHO, who))),
            ("why", "Why", max(3, min(MAX_WHY, why))), ("ttl", "Expires in", 11)]


def origin_width(switch: SwitchRecord) -> tuple[int, int]:
    """How wide this switch's who and why columns are drawn."""
    return len(who_of(switch)), len(switch.origin[2])


def origin_widths(switches: Iterable[SwitchRecord]) -> tuple[int, int]:
    """The widest who and why among the switches (3 with none): the plain computation, every switch."""
    measured = [origin_width(switch) for switch in switches]
    return max((w for w, _ in measured), default=3), max((w for _, w in measured), default=3)


class OriginWidths:
    """`origin_widths`, remembered by the switch's value: who and why come from the value alone, and
    values repeat (a flood of 50,000 kill keys has one), while `origin` cleans three strings with
    regular expressions for every switch: with 50,000 switches, 0.3 to 0.8 s a show on a quiet machine
    and about 2 s in the flood benchmark. A set of the values is made in C, and only a value never seen
    is measured."""

    def __init__(self) -> None:
        self._by_value: dict[str | None, tuple[int, int]] = {}

    def widest(self, switches: Sequence[SwitchRecord]) -> tuple[int, int]:
        by_value = self._by_value
        values = set(map(_value, switches))
        new = values - by_value.keys()
        if new:
            for switch in compress(switches, map(new.__contains__, map(_value, switches))):
                if switch.value not in by_value:
                    by_value[switch.value] = origin_width(switch)
        if len(by_value) > 2 * len(values) + 1024:  # values long gone: keep those shown
            self._by_value = by_value = {value: by_value[value] for value in values}
        measured = [by_value[value] for value in values]
        return max((w for w, _ in measured), default=3), max((w for _, w in measured), default=3)


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
        self._paired: tuple[object, object] | None = None  # the snapshot's switches and checks `switches` pairs
        self._origins = OriginWidths()
        self._who_why = origin_widths(())

    def rows_of(self, snap: Snapshot) -> Sequence[SwitchRow]:
        self.wide = self.app.size.width >= WIDE
        self.now = int(snap.at.timestamp())
        return self.pair(snap.switches, snap.kill_checks)

    def pair(self, switches: Sequence[SwitchRecord], checks: Sequence[KillCheck]) -> Sequence[SwitchRow]:
        """The switches with their checks (and the who / why widths), made again only when the snapshot
        has other ones: with 50,000 kill keys a pair per switch and a dict of the checks at every show
        cost tens of ms, and the same list again lets RowTable skip measuring the keys."""
        paired = self._paired
        if paired is None or paired[0] is not switches or paired[1] is not checks:
            by_key = dict(zip(map(_key, checks), checks, strict=True))
            self.switches = list(zip(switches, map(by_key.get, map(_key, switches)), strict=True))
            self._who_why = self._origins.widest(switches)
            self._paired = (switches, checks)
        return self.switches

    def key_of(self, row: SwitchRow) -> str:
        return row[0].key

    def keys_of(self, rows: Sequence[SwitchRow]) -> Iterable[str]:
        return map(_key, map(_switch, rows))

    def columns_for(self, snap: Snapshot, name_width: int) -> list[Column]:
        return switch_columns(self._who_why, self.wide, name_width)

    def cells_of(self, row: SwitchRow) -> list[Text]:
        return switch_cells(row, self.wide, self.now, self.palette)

    def layout_key(self) -> tuple[object, ...]:
        return (self.wide, self.now)
