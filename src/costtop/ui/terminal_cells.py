"""Send the terminal only the cells that changed, as curses does.

Textual repaints a dirty line from the left edge of each widget it crosses up to the right end of the
dirty region, and gives every run of one style its full colour code and a reset. With 200 busy agents
nearly every visible line changes every second, by a few digits here and there: Textual sent 12 KB/s
at 160x50 (docs/performance.md), more than a slow SSH link or a week-long wall screen should carry.

This module keeps what each cell of the terminal shows (its character and its look) as written, and
turns each of Textual's partial updates into the changed cells only: a short cursor move to each run
of changed cells, the colour codes only where the look changes (and only the part of it that
changes), no reset after every run. The cells compared are exactly those Textual would have rewritten,
so the terminal ends up holding what Textual's own update would leave there, cell for cell; a full
update is written whole, the same way, and recorded. What the app has not written itself (at start,
after a suspend, in inline mode, after anything this module does not know) is unknown, and an
unknown cell is always written.

`CosttopApp._display` passes every update through `TerminalCells.wrap` (the one place Textual writes
the screen). It relies on the shape of Textual's `ChopsUpdate` and `LayoutUpdate` (textual 8); an
update of any other shape is passed on untouched, and forgets what the terminal holds.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from rich.cells import get_character_cell_size
from rich.color import ColorSystem
from rich.console import COLOR_SYSTEMS, Console
from rich.style import Style
from textual._compositor import ChopsUpdate, CompositorUpdate, LayoutUpdate
from textual.strip import Strip

# Rich's attributes with their SGR codes, in the order Textual writes them (textual.strip.SGR_STYLES).
ATTRIBUTES = (("bold", "1"), ("dim", "2"), ("italic", "3"), ("underline", "4"), ("blink", "5"),
              ("blink2", "6"), ("reverse", "7"), ("conceal", "8"), ("strike", "9"), ("underline2", "21"),
              ("frame", "51"), ("encircle", "52"), ("overline", "53"))
WIDE = ""  # the second cell of a double-width character: the character in the cell before covers it
LOOK_CACHE = 4096  # styles remembered; past this the cache starts again (styles carrying meta are many)


@dataclass(frozen=True, eq=False)
class Look:
    """What a cell looks like: the SGR codes Textual would write for its style, in parts. One object per
    distinct look (`Looks.intern`), so two cells look the same exactly when their looks are the same
    object, whatever meta (click actions, offsets) their styles carried."""

    attributes: tuple[str, ...]
    fg: str
    bg: str
    link: str = ""
    link_id: str = ""

    @property
    def codes(self) -> str:
        return ";".join([*self.attributes, *(c for c in (self.fg, self.bg) if c)])


PLAIN = Look((), "", "")  # a segment without a style: the terminal's defaults


# The SGR code that turns each attribute off; some turn off two (22: bold and dim, 24: both
# underlines, 25: both blinks, 54: frame and encircle), and what the look keeps is added back.
OFF = {"1": "22", "2": "22", "3": "23", "4": "24", "21": "24", "5": "25", "6": "25", "7": "27", "8": "28",
       "9": "29", "51": "54", "52": "54", "53": "55"}


def transition(before: Look | None, after: Look) -> str:
    """The SGR sequence that takes the terminal from `before` (None: not known) to `after`: nothing when
    they are the same; else the shorter of what changes (attributes turned off and on, the colours
    that differ) and a reset with all of `after`."""
    if before is after:
        return ""
    codes = after.codes
    reset = f"\x1b[0;{codes}m" if codes else "\x1b[0m"
    if before is None:
        return reset
    on = set(after.attributes)
    gone = [code for code in before.attributes if code not in on]
    off = sorted({OFF[code] for code in gone}, key=int)
    cleared = {code for code, off_code in OFF.items() if off_code in off}  # all that those codes turned off
    added = [code for code in after.attributes if code not in before.attributes or code in cleared]
    if after.fg != before.fg:
        added.append(after.fg or "39")
    if after.bg != before.bg:
        added.append(after.bg or "49")
    delta = f"\x1b[{';'.join(off + added)}m" if off or added else ""
    return delta if len(delta) < len(reset) else reset


class Looks:
    """Styles to looks, for one colour system, each style worked out once (until the cache is full)."""

    def __init__(self) -> None:
        self._system: ColorSystem | None = None
        self._by_style: dict[Style, Look] = {}
        self._interned: dict[tuple[object, ...], Look] = {}

    def of(self, style: Style | None, system: ColorSystem) -> Look:
        if style is None:
            return PLAIN
        if system is not self._system:
            self._system, self._by_style = system, {}
        look = self._by_style.get(style)
        if look is None:
            attributes = tuple(code for name, code in ATTRIBUTES if getattr(style, name))
            fg = ";".join(style.color.downgrade(system).get_ansi_codes()) if style.color is not None else ""
            bg = ";".join(style.bgcolor.downgrade(system).get_ansi_codes(False)) \
                if style.bgcolor is not None else ""
            link = style.link or ""
            key = (attributes, fg, bg, link, style.link_id if link else "")
            look = self._interned.get(key)
            if look is None:
                look = self._interned[key] = Look(*key)  # type: ignore[arg-type]
            if len(self._by_style) >= LOOK_CACHE:
                self._by_style = {}
            self._by_style[style] = look
        return look


def color_system(console: Console) -> ColorSystem:
    """The colour system Textual renders strips in (`Strip.render`): the console's, else truecolor."""
    name = console.color_system
    return COLOR_SYSTEMS[name] if name else ColorSystem.TRUECOLOR


def lay_out(strips: Iterable[tuple[int, Strip]], width: int, chars: list[str | None],
            looks: list[Look | None], system: ColorSystem, styles: Looks) -> None:
    """Each strip's cells into `chars` / `looks` from its column on: a double-width character takes its
    cell and a `WIDE` one after it; a zero-width one joins the character before it."""
    for x, strip in strips:
        for text, style, control in strip:
            if control or not text:
                continue
            look = styles.of(style, system)
            if text.isascii() and text.isprintable():
                if x < width:
                    end = min(width, x + len(text))
                    chars[x:end] = text[: end - x]
                    looks[x:end] = [look] * (end - x)
                x += len(text)
                continue
            for char in text:
                size = get_character_cell_size(char)
                if size == 0:
                    if 0 < x <= width and chars[x - 1] is not None:
                        chars[x - 1] = (chars[x - 1] or "") + char
                    continue
                if x + size > width:
                    x += size
                    continue
                chars[x], looks[x] = char, look
                if size == 2:
                    chars[x + 1], looks[x + 1] = WIDE, look
                x += size


class TerminalCells:
    """What the terminal shows, cell by cell, as this app wrote it (None: not known)."""

    def __init__(self, orders: tuple[str, ...] = ("lines", "looks")) -> None:
        """`orders`: the orders to write the changed cells in, the shortest taken: "lines" (top to
        bottom, left to right) and "looks" (each look's cells together); a test tries each alone."""
        self.orders = orders
        self.width = 0
        self.height = 0
        self.chars: list[list[str | None]] = []
        self.looks: list[list[Look | None]] = []
        self.styles = Looks()

    def forget(self, width: int | None = None, height: int | None = None) -> None:
        """Nothing known: the next update writes every cell it covers."""
        self.width = self.width if width is None else width
        self.height = self.height if height is None else height
        self.chars = [[None] * self.width for _ in range(self.height)]
        self.looks = [[None] * self.width for _ in range(self.height)]

    def wrap(self, update: object, inline: bool = False) -> object:
        """The update to write instead of `update`: the changed cells of a partial update, a full
        update recorded as it is written; anything else is passed on and the terminal is not known."""
        if not inline and isinstance(update, ChopsUpdate | LayoutUpdate):
            return RecordedUpdate(update, self)
        if update is not None:
            self.forget()
        return update

    # -- a full update -----------------------------------------------------------------------------

    def layout(self, update: LayoutUpdate, system: ColorSystem) -> str:
        """A full update: every cell in it written, and recorded. Written from the cells with the codes
        worked out here, as a partial update's are, not with Textual's: Textual keeps a style's codes on
        the style object for the first colour system it wrote it in (a screenshot's truecolor, say), and
        the terminal would then hold cells that look other than the ones recorded."""
        region = update.region
        width, height = region.right, region.bottom
        if region.x or region.y or (width, height) != (self.width, self.height):
            self.forget(max(width, self.width), max(height, self.height))
        chunks: list[Chunk] = []
        for y, line in enumerate(update.strips, region.y):
            x, placed = region.x, []
            for strip in line:
                placed.append((x, strip))
                x += strip.cell_length
            new_chars: list[str | None] = [None] * self.width
            new_looks: list[Look | None] = [None] * self.width
            lay_out(placed, width, new_chars, new_looks, system, self.styles)
            chunks += self._chunks(y, [(region.x, width)], new_chars, new_looks)
        return self._emit(chunks) if chunks else ""

    # -- a partial update --------------------------------------------------------------------------

    def changed(self, update: ChopsUpdate, system: ColorSystem) -> str:
        """The terminal sequences that turn what it shows into what `update` would leave there."""
        chops: Sequence[Mapping[int, Strip | None]] = update.chops
        ends: list[list[int]] = update.chop_ends
        width = len(chops) and max((e[-1] for e in ends if e), default=0)
        if (width, len(chops)) != (self.width, self.height):
            self.forget(width, len(chops))
        # The cells Textual would write: on each line, every chop the span crosses, from the chop's
        # first cell to the span's end (`ChopsUpdate.render_segments`).
        ranges: dict[int, list[tuple[int, int]]] = {}
        for y, x1, x2 in update.spans:
            for end, (x, strip) in zip(ends[y], chops[y].items(), strict=False):
                if strip is None or x > x2 or end <= x1:
                    continue
                ranges.setdefault(y, []).append((x, min(end, x2)))
        chunks: list[Chunk] = []
        for y in sorted(ranges):
            new_chars: list[str | None] = [None] * width
            new_looks: list[Look | None] = [None] * width
            lay_out([(x, s) for x, s in chops[y].items() if s is not None], width, new_chars, new_looks,
                    system, self.styles)
            runs = self._runs(y, merge(ranges[y]), new_chars, new_looks)
            chunks += self._chunks(y, runs, new_chars, new_looks)
        if not chunks:
            return ""
        # Line by line, or each look's cells together (one colour code for all the digits of one
        # colour, a longer move between them): whichever is shorter this time.
        written = []
        if "lines" in self.orders:
            written.append(self._emit(chunks))
        if "looks" in self.orders:
            first_seen: dict[Look, int] = {}
            for chunk in chunks:
                first_seen.setdefault(chunk.look, len(first_seen))
            written.append(self._emit(sorted(chunks, key=lambda chunk: first_seen[chunk.look])))
        return min(written, key=len)

    def _runs(self, y: int, spans: list[tuple[int, int]], new_chars: list[str | None],
              new_looks: list[Look | None]) -> list[tuple[int, int]]:
        """The runs of cells in `spans` that differ from what the terminal shows, joined where writing
        the cells between is shorter than moving over them. A range starts at a chop's first cell,
        never inside a character; a changed double-width character changes both its cells."""
        old_chars, old_looks = self.chars[y], self.looks[y]
        runs: list[tuple[int, int]] = []
        for start, end in spans:
            x = start
            while x < end:
                if new_chars[x] is None or (new_chars[x] == old_chars[x] and new_looks[x] is old_looks[x]):
                    x += 1
                    continue
                first = x
                while x < end and new_chars[x] is not None and \
                        (new_chars[x] != old_chars[x] or new_looks[x] is not old_looks[x]):
                    x += 1
                # A double-width character written, or one overwritten by its first half, takes the
                # cell after it too, even past the update's range (Textual cuts a range's last
                # character in half): the cell is in the same chop, so it is known.
                while x < self.width and new_chars[x] is not None and (new_chars[x] == WIDE or old_chars[x] == WIDE):
                    x += 1
                if runs and first <= runs[-1][1]:
                    runs[-1] = (runs[-1][0], max(x, runs[-1][1]))
                elif runs and self._cheaper_to_write(runs[-1][1], first, new_chars, new_looks):
                    runs[-1] = (runs[-1][0], x)
                else:
                    runs.append((first, x))
        return runs

    def _cheaper_to_write(self, end: int, start: int, chars: list[str | None], looks: list[Look | None]) -> bool:
        """Whether the unchanged cells between two runs cost fewer bytes than the move over them: plain
        characters in the look the first run ends in."""
        gap = chars[end:start]
        if any(c is None or c == WIDE for c in gap) or any(look is not looks[end - 1] for look in looks[end:start]):
            return False
        return sum(len(c.encode()) for c in gap if c is not None) <= len(f"\x1b[{start + 1}G")

    def _chunks(self, y: int, runs: list[tuple[int, int]], new_chars: list[str | None],
                new_looks: list[Look | None]) -> list[Chunk]:
        """The runs' cells as chunks of one look each, and the runs recorded as written."""
        old_chars, old_looks = self.chars[y], self.looks[y]
        chunks: list[Chunk] = []
        for start, end in runs:
            current: Chunk | None = None
            for x in range(start, end):
                char, look = new_chars[x], new_looks[x]
                if char == WIDE or char is None or look is None:
                    continue  # the character before covers it (or nothing is known to write)
                if current is not None and current.look is look and current.end == x:
                    current.text.append(char)
                else:
                    current = Chunk(y, x, look, [char])
                    chunks.append(current)
                current.end = x + (2 if x + 1 < self.width and new_chars[x + 1] == WIDE else 1)
            old_chars[start:end] = new_chars[start:end]
            old_looks[start:end] = new_looks[start:end]
        return chunks

    def _emit(self, chunks: Iterable[Chunk]) -> str:
        """The chunks as terminal sequences: a move where the cursor is not already, a look change where
        the look is not already; the defaults at the end, as Textual leaves the terminal."""
        out: list[str] = []
        state: Look | None = None  # not known at the start: the first colour code resets
        at: tuple[int, int] | None = None  # where the cursor is
        for chunk in chunks:
            if at is None or at[0] != chunk.y:
                out.append(f"\x1b[{chunk.y + 1};{chunk.x + 1}H")
            elif at[1] != chunk.x:
                out.append(f"\x1b[{chunk.x + 1}G")
            look = chunk.look
            out.append(transition(state, look))
            state = look
            if look.link:
                out.append(f"\x1b]8;id={look.link_id};{look.link}\x1b\\")
            out.append("".join(chunk.text))
            if look.link:
                out.append("\x1b]8;;\x1b\\")
            at = (chunk.y, chunk.end) if chunk.end < self.width else None  # the last column: it would wrap
        if state is not PLAIN:
            out.append("\x1b[0m")
        return "".join(out)


@dataclass
class Chunk:
    """Cells of one look side by side on one line, to be written in one go."""

    y: int
    x: int
    look: Look
    text: list[str]
    end: int = 0  # one past its last cell


def merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Overlapping or touching spans as one, in order."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


class RecordedUpdate(CompositorUpdate):
    """Textual's update written through the recorder: a partial one as its changed cells
    (`TerminalCells.changed`), a full one whole and recorded (`TerminalCells.layout`)."""

    def __init__(self, update: ChopsUpdate | LayoutUpdate, cells: TerminalCells) -> None:
        self.update = update
        self.cells = cells

    def render_segments(self, console: Console) -> str:
        if isinstance(self.update, ChopsUpdate):
            return self.cells.changed(self.update, color_system(console))
        return self.cells.layout(self.update, color_system(console))

    def __rich_console__(self, console: Console, options: object) -> Iterable[object]:
        self.cells.forget()  # printed some other way: what reaches the terminal is not known here
        return self.update.__rich_console__(console, options)  # type: ignore[arg-type]
