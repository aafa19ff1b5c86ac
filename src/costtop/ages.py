"""Lengths of time as the screen and the alerts write them, short enough for a line of 80 columns.

One place for both forms, used by the engine (alert and data-note wording) and the widgets alike."""

from __future__ import annotations


def span(seconds: float, tenths: bool = False) -> str:
    """Two units: `58s`, `4m10s`, `2h03m`, `3d04h` (`tenths`: `4.2s` under ten seconds)."""
    s = max(0, int(seconds))
    if s < 60:
        return f"{max(0.0, seconds):.1f}s" if tenths and seconds < 10 else f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86_400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86_400}d{s % 86_400 // 3600:02d}h"


def whole(seconds: float) -> str:
    """The largest whole unit only: `12s`, `4m`, `3h`, `2d` (a compact column at 80 columns)."""
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m"
    if s < 86_400:
        return f"{s // 3600}h"
    return f"{s // 86_400}d"
