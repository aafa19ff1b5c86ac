"""Repaint only the cells that changed, for widgets that paint themselves line by line.

Textual rewrites a dirty line from the widget's left edge up to the right edge of the dirty
region. Marking each changed line only up to its last changed cell keeps a quiet column, a
scrollbar or a blank tail off the wire: what a slow SSH link or a week-long wall screen pays for.
"""

from __future__ import annotations

from collections.abc import Callable

from rich.console import Console
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.geometry import Region, Size
from textual.strip import Strip
from textual.widget import Widget


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



NULL_STYLE = Style.null()

def segments_of(text: Text, console: Console) -> list[Segment]:
    """A line's segments, each with a style: Textual's NO_COLOR (monochrome) filter needs one on every
    segment, and Rich leaves some without (a crash under NO_COLOR until this)."""
    return [seg if seg.style is not None else Segment(seg.text, NULL_STYLE, seg.control)
            for seg in text.render(console)]


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


class TextLines(Widget):
    """A widget showing a `Text` of a few lines, repainting only the cells that changed: set_text()
    with the next text and only the difference goes to the terminal."""

    def __init__(self, text: str = "", *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._text = Text(text)
        self._lines: list[Strip] = []
        self._width = 0
        self._painted = PaintedLines()

    def set_text(self, text: Text) -> None:
        before = len(self._lines)
        self._text = text
        self._lines = self._render_lines(self.content_size.width)
        if len(self._lines) != before or not self._painted.lines:
            self.refresh(layout=True)  # it grew or shrank
            return
        gutter = self.styles.gutter
        regions = self._painted.dirty(len(self._lines), self._line, gutter.left, gutter.top)
        if regions:
            self.refresh(*regions)

    def _render_lines(self, width: int) -> list[Strip]:
        self._width = width
        style = self.rich_style
        lines = []
        for line in self._text.split("\n", allow_blank=True):
            line.no_wrap, line.overflow = True, "crop"
            line.style = style
            lines.append(Strip(segments_of(line, self.app.console)).extend_cell_length(width, style).crop(0, width))
        return lines

    def _line(self, y: int) -> Strip:
        return self._lines[y] if y < len(self._lines) else Strip.blank(self._width, self.rich_style)

    @property
    def line_count(self) -> int:
        """The text's lines: known as soon as it is set, before a layout has sized the widget."""
        return max(1, len(self._text.split("\n", allow_blank=True)))

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return self.line_count

    def render_line(self, y: int) -> Strip:
        if self._width != self.content_size.width:
            self._lines = self._render_lines(self.content_size.width)
        return self._painted.record(y, self._line(y))

    def on_resize(self) -> None:
        self._painted.forget()
