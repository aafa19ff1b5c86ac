"""The changed-cells writer (ui/terminal_cells.py): after any sequence of Textual's partial updates,
the terminal holds exactly what Textual's own writes would leave there, in fewer bytes.

Each case plays the same updates twice into a VT100 emulator (pyte): once as Textual writes them
(`ChopsUpdate.render_segments`), once through `TerminalCells`; the two screens must match cell for
cell, looks included."""

from __future__ import annotations

import itertools
import random

import pytest
from rich.color import Color
from rich.console import Console
from rich.segment import Segment
from rich.style import Style
from textual._compositor import ChopsUpdate, Compositor, LayoutUpdate
from textual.geometry import Region
from textual.strip import Strip

from costtop.ui.terminal_cells import PLAIN, Look, Looks, TerminalCells, transition
from vt_screen import Terminal, differences, full_repaint

WIDTH, HEIGHT = 40, 6
CUTS = [0, 25, WIDTH]  # two widgets side by side: a chop each on every line
GRAY = Color.parse("color(254)")


def make_styles() -> list[Style | None]:
    """Styles of every kind, new objects each time: Textual keeps a style's codes on the style object
    for the first colour system it was written in."""
    return [
        None,
        Style(color=GRAY, bgcolor=Color.parse("color(16)")),
        Style(bold=True, color=GRAY, bgcolor=Color.parse("color(16)")),
        Style(dim=True, color=Color.parse("color(80)"), bgcolor=Color.parse("color(16)")),
        Style(italic=True, reverse=True, color=Color.parse("#ff8800")),
        Style(underline=True, bgcolor=Color.parse("color(58)")),
        Style(bold=True, dim=True, strike=True, color=Color.parse("red")),
        Style(color=GRAY, bgcolor=Color.parse("color(16)"), meta={"@click": "app.bell"}),  # looks as STYLES[1]
        Style(color=Color.default(), bgcolor=Color.default()),
        # The same colours with attributes on and off: a change of look that turns some off.
        Style(bold=True, dim=True, color=GRAY, bgcolor=Color.parse("color(16)")),
        Style(dim=True, color=GRAY, bgcolor=Color.parse("color(16)")),
        Style(strike=True, italic=True, color=GRAY, bgcolor=Color.parse("color(16)")),
        Style(reverse=True, underline=True, color=GRAY, bgcolor=Color.parse("color(16)")),
    ]


STYLES = make_styles()
# ASCII, block and box characters, double-width ones and a combining accent (e + U+0301).
CHARS = ["a", "b", "7", " ", " ", "$", "█", "▁", "─", "研", "究", "é"]


def console(system: str) -> Console:
    return Console(color_system=system, force_terminal=True, width=WIDTH)  # type: ignore[arg-type]


def random_line(rng: random.Random, width: int, styles: list[Style | None]) -> list[tuple[str, Style | None]]:
    """Cells (a character and its style) filling `width` columns; a double-width character counts two."""
    cells: list[tuple[str, Style | None]] = []
    used = 0
    style = rng.choice(styles)
    while used < width:
        if rng.random() < 0.3:
            style = rng.choice(styles)
        char = rng.choice(CHARS)
        size = 2 if char in "研究" else 1
        if used + size > width:
            char, size = " ", 1
        cells.append((char, style))
        used += size
    return cells


def strip_of(cells: list[tuple[str, Style | None]]) -> Strip:
    """The cells as segments, one per run of the same style (as a widget renders them)."""
    segments: list[Segment] = []
    for char, style in cells:
        if segments and segments[-1].style == style:
            segments[-1] = Segment(segments[-1].text + char, style)
        else:
            segments.append(Segment(char, style))
    return Strip(segments)


def edit(rng: random.Random, cells: list[tuple[str, Style | None]], width: int,
         styles: list[Style | None]) -> list[tuple[str, Style | None]]:
    """A few cells changed (a digit ticking, a style flipping), or now and then the whole line."""
    if rng.random() < 0.1:
        return random_line(rng, width, styles)
    cells = list(cells)
    for _ in range(rng.randint(1, 4)):
        index = rng.randrange(len(cells))
        char, style = cells[index]
        old_size = 2 if char in "研究" else 1
        new = rng.choice(CHARS)
        new_size = 2 if new in "研究" else 1
        if new_size > old_size:  # a wide character takes the next cell's place, if there is one
            if index + 1 >= len(cells) or cells[index + 1][0] in "研究":
                new = "x"
            else:
                del cells[index + 1]
        elif new_size < old_size:
            cells.insert(index + 1, (" ", style))
        cells[index] = (new, rng.choice(styles) if rng.random() < 0.5 else style)
    return cells


class Screen:
    """Two widgets' lines, and the partial updates Textual's compositor would make of their changes."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.styles = make_styles()
        self.lines = [[random_line(rng, end - start, self.styles) for start, end in itertools.pairwise(CUTS)]
                      for _ in range(HEIGHT)]

    def strips(self, y: int) -> list[Strip]:
        return [strip_of(cells) for cells in self.lines[y]]

    def layout(self) -> LayoutUpdate:
        return LayoutUpdate([self.strips(y) for y in range(HEIGHT)], Region(0, 0, WIDTH, HEIGHT))

    def step(self) -> ChopsUpdate:
        """Some lines edited, each with a dirty region over its changed cells (widened at random, as far
        as the widget's edge); the chops rendered as `Compositor._render_chops` renders them: every
        widget the dirty regions' bounding box crosses, on the dirty lines."""
        regions = []
        for y in range(HEIGHT):
            if self.rng.random() < 0.5:
                continue
            chop = self.rng.randrange(len(CUTS) - 1)
            start, end = CUTS[chop], CUTS[chop + 1]
            before = strip_of(self.lines[y][chop])
            self.lines[y][chop] = edit(self.rng, self.lines[y][chop], end - start, self.styles)
            first, last = changed_cells(before, strip_of(self.lines[y][chop]))
            if first is None:
                continue
            x1 = self.rng.randint(start, start + first)
            x2 = self.rng.randint(start + last, end)
            regions.append(Region(x1, y, x2 - x1, 1))
        if not regions:
            regions.append(Region(0, 0, 1, 1))
        crop = Region.from_union(regions)
        spans = list(Compositor._regions_to_spans(regions))
        dirty = {y for y, _, _ in spans}
        chops: list[dict[int, Strip | None]] = []
        for y in range(HEIGHT):
            line: dict[int, Strip | None] = dict.fromkeys(CUTS[:-1])
            if y in dirty:
                for (start, end), strip in zip(itertools.pairwise(CUTS), self.strips(y), strict=True):
                    if start < crop.right and end > crop.x:
                        line[start] = strip
            chops.append(line)
        return ChopsUpdate(chops, spans, [CUTS[1:] for _ in range(HEIGHT)])

    def full_repaint(self, out: Console) -> str:
        return full_repaint([Strip.join(self.strips(y)) for y in range(HEIGHT)], out)


def changed_cells(before: Strip, after: Strip) -> tuple[int | None, int]:
    """The first changed cell and one past the last, a double-width character counted whole."""
    def cells(strip: Strip) -> list[tuple[str, Style | None]]:
        out: list[tuple[str, Style | None]] = []
        for text, style, _ in strip:
            for char in text:
                if char == "\u0301":
                    out[-1] = (out[-1][0] + char, style)
                    continue
                out.append((char, style))
                if char in "研究":
                    out.append(("", style))
        return out
    old, new = cells(before), cells(after)
    changed = [x for x, (a, b) in enumerate(zip(old, new, strict=True)) if a != b]
    if not changed:
        return None, 0
    first, last = changed[0], changed[-1] + 1
    while first > 0 and (old[first][0] == "" or new[first][0] == ""):
        first -= 1
    while last < len(new) and (old[last][0] == "" or new[last][0] == ""):
        last += 1
    return first, last


@pytest.mark.parametrize("orders", [("lines",), ("looks",), ("lines", "looks")], ids="+".join)
@pytest.mark.parametrize("system", ["256", "truecolor", "standard"])
@pytest.mark.parametrize("seed", range(6))
def test_the_changed_cells_leave_the_screen_as_a_full_repaint(seed: int, system: str, orders: tuple[str, ...]) -> None:
    """After each update, the terminal fed only the changed cells shows what a full repaint of the
    widgets' lines shows, cell for cell, whatever the order they are written in; and with fewer than
    half the bytes of Textual's own writes."""
    rng = random.Random(seed)
    out = console(system)
    screen = Screen(rng)
    cells = TerminalCells(orders)
    ours = Terminal(WIDTH, HEIGHT)
    ours.feed(cells.wrap(screen.layout()).render_segments(out))  # type: ignore[attr-defined]
    sent_textual = sent_ours = 0
    for step in range(40):
        update = screen.step()
        mine = cells.wrap(update).render_segments(out)  # type: ignore[attr-defined]
        sent_textual += len(update.render_segments(out).encode())
        sent_ours += len(mine.encode())
        ours.feed(mine)
        want = Terminal(WIDTH, HEIGHT).feed(screen.full_repaint(out)).cells()
        assert ours.cells() == want, (step, differences(ours.cells(), want))
    assert sent_ours < sent_textual / 2, (sent_ours, sent_textual)


def test_nothing_changed_sends_nothing() -> None:
    out = console("256")
    screen = Screen(random.Random(1))
    cells = TerminalCells()
    cells.wrap(screen.layout()).render_segments(out)  # type: ignore[attr-defined]
    strips = screen.strips(2)
    again = ChopsUpdate([dict(zip(CUTS[:-1], strips, strict=True)) if y == 2 else dict.fromkeys(CUTS[:-1])
                         for y in range(HEIGHT)], [(2, 0, WIDTH)], [CUTS[1:]] * HEIGHT)
    assert cells.wrap(again).render_segments(out) == ""  # type: ignore[attr-defined]


def test_one_changed_cell_is_one_move_and_one_character() -> None:
    """A digit ticking in the middle of a line: the move, the digit, nothing more (the look is the same as
    the cells around it, and the terminal was left in the defaults)."""
    out = console("256")
    style = STYLES[1]
    cells = TerminalCells()
    before = [Strip([Segment("calls 1234 age 5s".ljust(25), style)]), Strip([Segment(" " * 15, style)])]
    cells.wrap(LayoutUpdate([before] * HEIGHT, Region(0, 0, WIDTH, HEIGHT))).render_segments(out)  # type: ignore[attr-defined]
    after = [Strip([Segment("calls 1235 age 5s".ljust(25), style)]), before[1]]
    update = ChopsUpdate([dict(zip(CUTS[:-1], after, strict=True)) if y == 3 else dict.fromkeys(CUTS[:-1])
                          for y in range(HEIGHT)], [(3, 0, 25)], [CUTS[1:]] * HEIGHT)
    sent = cells.wrap(update).render_segments(out)  # type: ignore[attr-defined]
    assert sent == "\x1b[4;10H\x1b[0;38;5;254;48;5;16m5\x1b[0m"


def test_an_unknown_terminal_is_written_whole() -> None:
    """Before any full update (or after something else wrote) every cell in the update is sent."""
    out = console("256")
    cells = TerminalCells()
    strips = [Strip([Segment("x" * 25, STYLES[1])]), Strip([Segment("y" * 15, STYLES[2])])]
    update = ChopsUpdate([dict(zip(CUTS[:-1], strips, strict=True))] * HEIGHT, [(y, 0, WIDTH) for y in range(HEIGHT)],
                         [CUTS[1:]] * HEIGHT)
    terminal = Terminal(WIDTH, HEIGHT).feed(cells.wrap(update).render_segments(out))  # type: ignore[attr-defined]
    assert terminal.text() == ["x" * 25 + "y" * 15] * HEIGHT
    cells.wrap("something else")  # any other update: forgotten, so written whole again
    assert cells.wrap(update).render_segments(out).count("x") == 25 * HEIGHT  # type: ignore[attr-defined]


def look(*attributes: str, fg: str = "", bg: str = "") -> Look:
    return Look(tuple(attributes), fg, bg)


@pytest.mark.parametrize(("before", "after", "sent"), [
    (None, PLAIN, "\x1b[0m"),  # not known: reset
    (None, look("1", fg="38;5;254"), "\x1b[0;1;38;5;254m"),
    (look(fg="38;5;254", bg="48;5;16"), look("1", fg="38;5;254", bg="48;5;16"), "\x1b[1m"),  # only what is added
    (look(fg="38;5;254", bg="48;5;16"), look(fg="38;5;80", bg="48;5;16"), "\x1b[38;5;80m"),
    (look("1", fg="38;5;254"), look(fg="38;5;254"), "\x1b[22m"),  # bold off, not a reset and all again
    (look(fg="38;5;254", bg="48;5;16"), look(fg="38;5;254"), "\x1b[49m"),  # a colour gone: the default
    (look("1", "2", fg="31"), look("2", fg="31"), "\x1b[22;2m"),  # 22 ends bold and dim: dim back on
    (look("4", "21", fg="38;5;80"), look("4", fg="38;5;80"), "\x1b[24;4m"),  # 24 ends both underlines
    (look("2", fg="31"), PLAIN, "\x1b[0m"),  # a reset is shorter than turning each off
    (look("1", fg="38;5;254", bg="48;5;16"), look("7", fg="38;5;80", bg="48;5;16"), "\x1b[22;7;38;5;80m"),
    (look("4", "21"), look("4"), "\x1b[0;4m"),  # shorter than 24;4
])
def test_a_look_change_sends_only_what_it_must(before: Look | None, after: Look, sent: str) -> None:
    assert transition(before, after) == sent


def test_styles_that_look_the_same_are_one_look() -> None:
    """Meta (click actions, offsets) does not reach the terminal: it must not make a cell look changed."""
    looks = Looks()
    system = console("256")._color_system
    assert system is not None
    assert looks.of(STYLES[1], system) is looks.of(STYLES[7], system)
    assert looks.of(STYLES[1], system) is not looks.of(STYLES[2], system)


def test_a_wide_character_cut_by_the_range_is_still_known_whole() -> None:
    """Textual ends a range inside a double-width character: written, the character covers the cell
    after the range too. When narrow characters come back there, both cells must be written again."""
    out = console("256")
    style = STYLES[1]
    cells = TerminalCells()
    ours = Terminal(WIDTH, HEIGHT)

    def line(text: str) -> list[Strip]:
        return [Strip([Segment(text.ljust(25 - (1 if "研" in text else 0)), style)]),
                Strip([Segment(" " * 15, style)])]

    def update(strips: list[Strip], x2: int) -> ChopsUpdate:
        return ChopsUpdate([dict(zip(CUTS[:-1], strips, strict=True)) if y == 0 else dict.fromkeys(CUTS[:-1])
                            for y in range(HEIGHT)], [(0, 0, x2)], [CUTS[1:]] * HEIGHT)

    ours.feed(cells.wrap(LayoutUpdate([line("abcdpq")] * HEIGHT, Region(0, 0, WIDTH, HEIGHT)))
              .render_segments(out))  # type: ignore[attr-defined]
    ours.feed(cells.wrap(update(line("abcd研"), 5)).render_segments(out))  # type: ignore[attr-defined]
    ours.feed(cells.wrap(update(line("abcdpq"), 6)).render_segments(out))  # type: ignore[attr-defined]
    want = Terminal(WIDTH, HEIGHT).feed(full_repaint([Strip.join(line("abcdpq"))] * HEIGHT, out))
    assert ours.cells() == want.cells(), differences(ours.cells(), want.cells())
