"""A terminal emulator for the tests that read what costtop writes: pyte, cell by cell with each cell's
look, and with dim (SGR 2, which pyte drops) kept in pyte's `blink` flag (costtop never blinks)."""

from __future__ import annotations

from collections.abc import Iterable

import pyte
from rich.color import ColorSystem
from rich.console import COLOR_SYSTEMS, Console
from textual.strip import Strip

Cell = tuple[str, str, str, bool, bool, bool, bool, bool, bool]


class _DimScreen(pyte.Screen):  # type: ignore[misc]  # pyte has no type hints
    def select_graphic_rendition(self, *attrs: int, **kwargs: object) -> None:
        codes: list[int] = []
        rest = list(attrs)
        while rest:
            code = rest.pop(0)
            if code in (38, 48) and rest:  # a colour's own parameters: 5;n or 2;r;g;b
                size = 2 if rest[0] == 5 else 4
                codes += [code, *rest[:size]]
                rest = rest[size:]
                continue
            codes.extend({2: [5], 22: [22, 25]}.get(code, [code]))
        super().select_graphic_rendition(*codes, **kwargs)


class Terminal:
    """A `width` x `height` terminal fed the bytes an app writes."""

    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        self.screen = _DimScreen(width, height)
        self.stream = pyte.Stream(self.screen)

    def feed(self, data: str | Iterable[str]) -> Terminal:
        for chunk in [data] if isinstance(data, str) else data:
            self.stream.feed(chunk)
        return self

    def cells(self) -> list[list[Cell]]:
        """Every cell: its character and look (colours, bold, italics, underline, strike, reverse, dim)."""
        return [[tuple(self.screen.buffer[y][x]) for x in range(self.width)]  # type: ignore[misc]
                for y in range(self.height)]

    def text(self) -> list[str]:
        return list(self.screen.display)


def full_repaint(strips: list[Strip], console: Console) -> str:
    """What Textual writes for a full repaint of these lines: each run of cells with its colour codes
    (`Strip.render_style`), in the console's colour system. The codes are worked out afresh: Textual
    keeps them on the style object for the colour system it first wrote that style in, and styles are
    shared by the apps one pytest process runs, not all in the same colour system."""
    system = COLOR_SYSTEMS[console.color_system] if console.color_system else ColorSystem.TRUECOLOR
    lines = []
    for y, strip in enumerate(strips):
        cells = []
        for text, style, control in strip:
            if control:
                continue
            codes = Strip.render_ansi(style, system) if style is not None else ""
            cells.append(f"\x1b[{codes}m{text}\x1b[0m" if codes else text)
        lines.append(f"\x1b[{y + 1};1H{''.join(cells)}")
    return "".join(lines)


def differences(got: list[list[Cell]], want: list[list[Cell]], limit: int = 5) -> list[str]:
    """The first cells that differ, said readably (for an assertion's message)."""
    found = []
    for y, (a, b) in enumerate(zip(got, want, strict=True)):
        for x, (c, d) in enumerate(zip(a, b, strict=True)):
            if c != d:
                found.append(f"({x},{y}): got {c}, want {d}")
                if len(found) >= limit:
                    return found
    return found
