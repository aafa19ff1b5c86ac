"""Repaint only the cells that changed, for widgets that paint themselves line by line.

Textual rewrites a dirty line from the widget's left edge up to the right edge of the dirty
region. Marking each changed line only up to its last changed cell keeps a quiet column, a
scrollbar or a blank tail off the wire: what a slow SSH link or a week-long wall screen pays for.
"""

from __future__ import annotations

from collections.abc import Callable

from textual.geometry import Region
from textual.strip import Strip


def changed_until(before: Strip, after: Strip) -> int:
    """One past the last cell where two lines differ (text or style); 0 when they are the same."""
    if before is after:
        return 0
    old = [(char, segment.style) for segment in before for char in segment.text]
    new = [(char, segment.style) for segment in after for char in segment.text]
    if len(old) != len(new) or len(new) != after.cell_length:
        return after.cell_length  # different lengths or wide characters: the whole line
    for index in range(len(new) - 1, -1, -1):
        if old[index] != new[index]:
            return index + 1
    return 0


class PaintedLines:
    """What each line of a widget shows now, and the regions to repaint for what it shows next."""

    def __init__(self) -> None:
        self.lines: dict[int, Strip] = {}

    def record(self, y: int, strip: Strip) -> Strip:
        self.lines[y] = strip
        return strip

    def forget(self) -> None:
        self.lines.clear()

    def dirty(self, height: int, line: Callable[[int], Strip], x: int = 0, top: int = 0) -> list[Region]:
        """Regions (in the widget's own coordinates: `x`, `top` are its gutter) that changed."""
        regions = []
        for y in range(height):
            before = self.lines.get(y)
            after = line(y)
            end = after.cell_length if before is None else changed_until(before, after)
            if end:
                regions.append(Region(x, top + y, end, 1))
        return regions
