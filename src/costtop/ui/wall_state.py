"""The whole fleet's state in one word and one colour, for the wall screen.

A wall screen is read from across the room: before any figure, its colour must say whether all is
well. That colour is the worst of the fleet's burn level, the active alerts, a global kill and the
data's freshness. Stale data ranks above a critical burn: figures that stopped moving can hide any
burn at all, and a wall that stays green while blind is the one failure it must never have. Every
reason is also said in words (for 16 colours, NO_COLOR and the person who walks up to it).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from costtop.engine.snapshot import Level, Severity, Snapshot
from costtop.ui.format import LEVEL_WORD, duration
from costtop.ui.widgets.alert_panel import SEVERITY_WORD
from costtop.ui.widgets.summary import connecting, fresh


class WallLevel(IntEnum):
    """Worse is larger. Each one is a CSS class on the wall screen (`-ok` ...), coloured in wall.tcss."""

    OK = 0
    UNKNOWN = 1  # nothing read yet, or the day still being summed: no colour claims anything
    WARNING = 2
    CRITICAL = 3
    STALE = 4
    EMERGENCY = 5  # an emergency burn rate, or the global kill

    @property
    def css_class(self) -> str:
        return f"-{self.name.lower()}"

    @property
    def word(self) -> str:
        return WORD[self]


WORD = {WallLevel.OK: "ALL OK", WallLevel.UNKNOWN: "UNKNOWN", WallLevel.WARNING: "WARNING",
        WallLevel.CRITICAL: "CRITICAL", WallLevel.STALE: "STALE", WallLevel.EMERGENCY: "EMERGENCY"}
FROM_LEVEL = {Level.OK: WallLevel.OK, Level.WARNING: WallLevel.WARNING, Level.CRITICAL: WallLevel.CRITICAL,
              Level.EMERGENCY: WallLevel.EMERGENCY, Level.UNKNOWN: WallLevel.UNKNOWN}
FROM_SEVERITY = {Severity.WARNING: WallLevel.WARNING, Severity.CRITICAL: WallLevel.CRITICAL,
                 Severity.EMERGENCY: WallLevel.EMERGENCY}


@dataclass(frozen=True, slots=True)
class WallState:
    level: WallLevel
    reasons: tuple[str, ...]  # why, worst first; empty when all is well
    stale: bool  # some figure on screen is the last known, not the current one


def wall_state(snap: Snapshot) -> WallState:
    found: list[tuple[WallLevel, str]] = []
    for source in snap.sources:
        if connecting(source):
            found.append((WallLevel.UNKNOWN, f"{source.name} connecting"))
        elif not fresh(source):
            age = f"last read {duration(source.age_seconds)} ago" if source.age_seconds is not None else "never read"
            found.append((WallLevel.STALE, f"{source.name} STALE ({age})"))
    h = snap.header
    if h.rows_silent:
        found.append((WallLevel.STALE, "no new rows: the gateway stopped writing"))
    if h.totals_pending:
        found.append((WallLevel.UNKNOWN, "reading today's rows"))
    burn = FROM_LEVEL[h.velocity_level]
    if burn is not WallLevel.OK:
        word = LEVEL_WORD[h.velocity_level] if h.velocity_level is not Level.UNKNOWN else "unknown"
        found.append((burn, f"fleet burn {word}"))
    if snap.global_kill is not None:
        found.append((WallLevel.EMERGENCY, "GLOBAL KILL ON: every call is refused"))
    if snap.alerts:
        worst = snap.alerts[0].severity  # most severe first: no pass over a flood of them
        count = len(snap.alerts)
        found.append((FROM_SEVERITY[worst], f"{count} alert{'s' if count > 1 else ''}, worst {SEVERITY_WORD[worst]}"))
    found.sort(key=lambda item: -item[0])  # stable: same level, the order above
    level = found[0][0] if found else WallLevel.OK
    stale = any(lvl is WallLevel.STALE for lvl, _ in found)
    return WallState(level, tuple(reason for _, reason in found), stale)
