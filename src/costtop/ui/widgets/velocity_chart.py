"""The fleet's burn rate over time ($/min), with the seed's warning, critical and emergency lines.

Two ranges: the last hour, one point per completed minute, and the last 24 hours, one point per
completed hour (that hour's average $/min). The bucket still running is left out: its rate would
change at every refresh and redraw the chart each second, and the header already shows the live
5-minute rate. Drawn with plotext, rebuilt only when the figures or the size change.
"""

from __future__ import annotations

import plotext as plt
from rich.style import Style
from rich.text import Text

from costtop.engine.budgets import FIVE
from costtop.engine.snapshot import FleetLevels, Snapshot
from costtop.ui.themes import DEFAULT_PALETTE, Palette, palette
from costtop.ui.widgets.line_diff import TextLines


def rates(snap: Snapshot, hours: bool) -> list[float]:
    """$/min per completed bucket, oldest first."""
    if hours:
        return [float(v / 60) for v in snap.header.per_hour[:-1]]
    return [float(v) for v in snap.header.per_minute[:-1]]


def rgb(style: Style) -> tuple[int, int, int]:
    """A palette style's colour for plotext (the killed style's is its background)."""
    colour = style.bgcolor or style.color
    if colour is None:
        return (255, 255, 255)
    red, green, blue = colour.get_truecolor()
    return (red, green, blue)


def chart(points: list[float], levels: FleetLevels, width: int, height: int, hours: bool,
          p: Palette = DEFAULT_PALETTE) -> Text:
    """The plot as Text (plotext draws ANSI; Text.from_ansi turns it into styled cells). The fleet's
    warning, critical and emergency levels (the header's, as $ per minute) are drawn in the theme's
    warning, critical and killed colours."""
    lines = [(float(levels.warning / FIVE), rgb(p.warning)),
             (float(levels.critical / FIVE), rgb(p.critical)),
             (float(levels.emergency / FIVE), rgb(p.killed))]
    top = max([*points, 0.0])
    shown = [(level, color) for level, color in lines if level <= max(top * 1.5, lines[0][0])]
    plt.clf()
    plt.limitsize(False, False)  # the widget's size, not the terminal plotext guesses
    plt.theme("clear")
    plt.plotsize(max(20, width), max(5, height))
    n = len(points)
    xs = list(range(-n, 0))
    plt.plot(xs, points, marker="braille", color="cyan")
    for level, color in shown:
        plt.hline(level, color)
    plt.ylim(0, max(top, shown[-1][0] if shown else 1.0) * 1.1)
    unit = "h" if hours else "m"
    ticks = [x for x in xs if x % (6 if hours else 15) == 0 or x == -1]
    plt.xticks(ticks, [f"{x}{unit}" for x in ticks])
    return Text.from_ansi(plt.build(), no_wrap=True)


class VelocityChart(TextLines):
    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("", id=id)
        self.hours = False
        self._key: tuple[object, ...] = ()
        self._snap: Snapshot | None = None

    def show(self, snap: Snapshot) -> None:
        self._snap = snap
        width, height = self.content_size.width, self.content_size.height
        points = rates(snap, self.hours)
        colours = palette(self.app)
        levels = snap.header.fleet_levels
        key = (tuple(points), width, height, self.hours, colours, levels)
        if key == self._key:
            return
        self._key = key
        if not points:
            self.set_text(Text("Reading the day's rows: the chart follows.", style="dim"))
            return
        self.set_text(chart(points, levels, width, height, self.hours, colours))

    def on_resize(self) -> None:
        """Drawn again at the new size: the plot is made for a width and a height, and a layout that
        gives the chart other lines (a panel folding, the header growing) came after the last show."""
        super().on_resize()
        if self._snap is not None:
            self.show(self._snap)
