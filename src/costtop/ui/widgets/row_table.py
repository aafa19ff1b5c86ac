"""A virtual table: it keeps the snapshot's rows and formats only the ones on screen.

With 10,000 agents (or 500 models) a DataTable would build every cell at every refresh; this widget
renders the ~40 visible rows, each line cached by its immutable row object, so a frame costs the
same with 20 rows or 10,000, and only the cells that changed are repainted. Once the operator moves
the cursor it follows its row's key, never an index, so a re-sort cannot move the selection under
them; on the first row it stays on the first (the top spender).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from itertools import compress, repeat
from typing import Generic, TypeVar

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from costtop.engine.snapshot import Snapshot
from costtop.text import id_text, visible_id
from costtop.ui.themes import DEFAULT_PALETTE, palette
from costtop.ui.widgets.line_diff import PaintedLines, segments_of

MAX_NAME = 32
STRIP_CACHE = 512

Column = tuple[str, str, int]  # key, label, width
R = TypeVar("R")


def line_of(cells: list[Text], columns: list[Column]) -> Text:
    """Cells laid out in their columns: each cut or padded to its width, one space apart."""
    line = Text(no_wrap=True, overflow="crop")
    for cell, (_, _, width) in zip(cells, columns, strict=False):
        cell = cell.copy()
        cell.truncate(width, overflow="ellipsis")
        if cell.justify == "right":
            line.append(" " * (width - cell.cell_len))
            line.append_text(cell)
        else:
            line.append_text(cell)
            line.append(" " * (width - cell.cell_len))
        line.append(" ")
    return line


def fit_columns(columns: Sequence[Column], priority: Sequence[str], width: int) -> list[int]:
    """The order to draw the columns in, for a table `width` cells wide: the most important columns
    that fit (taken in `priority` order, stopping at the first that does not fit), in their own
    order; then the others, in their own order, past the right edge where `→` reaches them. So a
    narrow terminal drops the least important columns from view first, and loses none of them."""
    if not priority:
        return list(range(len(columns)))
    rank = {key: index for index, key in enumerate(priority)}
    kept: set[int] = set()
    used = -1  # no space before the first column
    for index in sorted(range(len(columns)), key=lambda i: rank.get(columns[i][0], len(rank))):
        used += columns[index][2] + 1
        if used > width:
            break
        kept.add(index)
    return sorted(kept) + [index for index in range(len(columns)) if index not in kept]


class RowTable(ScrollView, Generic[R], can_focus=True):
    """Subclasses say which rows a snapshot has, their keys and names, and their cells."""

    HELP_SCOPE = "tables"
    BINDINGS = [
        Binding("up", "cursor(-1)", "Up", show=False, id="rows.up"),
        Binding("down", "cursor(1)", "Down", show=False, id="rows.down"),
        Binding("pageup", "page(-1)", "Page up", show=False, id="rows.pageup"),
        Binding("pagedown", "page(1)", "Page down", show=False, id="rows.pagedown"),
        Binding("home", "edge(0)", "First", show=False, id="rows.home"),
        Binding("end", "edge(1)", "Last", show=False, id="rows.end"),
        Binding("right", "column(1)", "Next column", show=False, id="rows.right"),
        Binding("left", "column(-1)", "Previous column", show=False, id="rows.left"),
    ]
    COMPONENT_CLASSES = {"row-table--header", "row-table--cursor"}
    max_name = MAX_NAME  # the first column's widest; a longer name is cut the `visible_id` way
    # Column keys, most important first: on a narrow terminal the others go past the right edge
    # (`fit_columns`). Empty: the columns keep their own order.
    priority: tuple[str, ...] = ()

    class Selected(Message):
        """The cursor moved to another row."""

        def __init__(self, key: str | None) -> None:
            super().__init__()
            self.key = key

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.rows: Sequence[R] = ()
        self.columns: list[Column] = []
        self.cursor = 0
        self._top = True  # on the first row: stays on the first row through re-sorts
        self._selected: str | None = None
        self._index: dict[str, int] | None = None
        self._names: set[str] = set()
        self._widest = 0
        self._sized: Sequence[R] | None = None  # the rows `_widest` was measured on
        self._filtered: tuple[Sequence[R], str, Sequence[R]] | None = None  # (rows, filter, the rows it keeps)
        self._cache: OrderedDict[tuple[object, ...], Strip] = OrderedDict()
        self._shown: tuple[object, ...] = ()
        self._frame: tuple[object, ...] = ()
        self._painted = PaintedLines()
        self._name_widths: dict[str, int] = {}
        self._folded: dict[str, str] = {}
        self._layout: tuple[object, ...] = ()
        self._order: list[int] = []  # where each drawn column is among `columns_for`'s (`fit_columns`)
        self.filter = ""  # `/`: only rows whose name holds this text (any case)
        self.total = 0  # rows before the filter
        self.palette = DEFAULT_PALETTE  # the theme's state colours, taken at each show()

    # -- what a subclass says ----------------------------------------------------------------------

    def rows_of(self, snap: Snapshot) -> Sequence[R]:
        raise NotImplementedError

    def key_of(self, row: R) -> str:
        raise NotImplementedError

    def keys_of(self, rows: Sequence[R]) -> Iterable[str]:
        """Every row's key, in order. A subclass whose key is an attribute says so with C-level
        `map(attrgetter(...))`: with 100,000 rows a Python call per row costs tens of milliseconds."""
        return map(self.key_of, rows)

    def key_set(self, rows: Sequence[R]) -> set[str]:
        """The rows' keys as a set (for the name width): a subclass may make it without the order."""
        return set(self.keys_of(rows))

    def name_of(self, row: R) -> str:
        """The first column's text, to size it."""
        return self.key_of(row)

    def columns_for(self, snap: Snapshot, name_width: int) -> list[Column]:
        raise NotImplementedError

    def cells_of(self, row: R) -> list[Text]:
        raise NotImplementedError

    def layout_key(self) -> tuple[object, ...]:
        """Anything besides the row and the columns that changes how a row is drawn."""
        return ()

    # -- the machinery -----------------------------------------------------------------------------

    @property
    def selected_key(self) -> str | None:
        return self._selected

    @property
    def row_count(self) -> int:
        return len(self.rows)

    def show(self, snap: Snapshot) -> None:
        self.palette = palette(self.app)
        rows = self.rows_of(snap)
        self.total = len(rows)
        if self.filter:
            rows = self._filter(rows)
        else:
            self._filtered = None  # holds an old snapshot's rows: not kept past the filter
        natural = self.columns_for(snap, max(5, self._name_width(rows)))
        self._order = fit_columns(natural, self.priority, self.scrollable_content_region.width)
        columns = [natural[index] for index in self._order]
        layout = (*self.layout_key(), self.palette)  # a new theme draws every line again
        if columns != self.columns or layout != self._layout:
            self.columns, self._layout = columns, layout
            self._cache.clear()
        self.rows = rows
        self._index = None
        found = self._find(self._selected) if self._selected is not None and not self._top else None
        if found is not None:
            self.cursor = found
        else:
            self.cursor = min(self.cursor, max(0, len(rows) - 1))
            self._selected = self.key_of(rows[self.cursor]) if rows else None
        # The space after the last column separates nothing: a table that fits but for it scrolls for nothing.
        self.virtual_size = Size(max(0, sum(w + 1 for _, _, w in columns) - 1), len(rows) + 1)
        self._scroll_to_cursor()
        self._refresh_if_visible_changed()

    def _filter(self, rows: Sequence[R]) -> Sequence[R]:
        """The rows whose visible name holds the filter (any case). The same rows and filter as last
        time keep the same list (so the name width is not measured again); otherwise one pass of
        C-level maps, and a Python call only for a row never seen before."""
        last = self._filtered
        if last is not None and last[0] is rows and last[1] == self.filter:
            return last[2]
        keys = list(self.keys_of(rows))
        folded, needle = self._folded, self.filter.casefold()
        try:
            kept = list(compress(rows, map(str.__contains__, map(folded.__getitem__, keys), repeat(needle))))
        except KeyError:  # a row never seen: its folded name is made once, then the pass again
            for key, row in zip(keys, rows, strict=True):
                if key not in folded:
                    folded[key] = visible_id(self.name_of(row)).casefold()
            kept = list(compress(rows, map(str.__contains__, map(folded.__getitem__, keys), repeat(needle))))
        self._filtered = (rows, self.filter, kept)
        return kept

    def name_width_of(self, row: R) -> int:
        """How wide the first column must be for this row's name as shown."""
        return len(visible_id(self.name_of(row)))

    def _fitted_cells(self, row: R) -> list[Text]:
        """The row's cells, its name cut to the column the `visible_id` way (`…#` and a hash of the exact
        id), not by plain truncation: two long ids that differ only past the cut must not look the same."""
        cells = self.cells_of(row)
        if self.priority:
            cells = [cells[index] for index in self._order if index < len(cells)]
        if cells and self.columns:
            width, name = self.columns[0][2], self.name_of(row)
            if cells[0].cell_len > width and cells[0].plain == visible_id(name):
                cells[0] = id_text(name, width, style=str(cells[0].style))
        return cells

    def _name_width(self, rows: Sequence[R]) -> int:
        """The widest (visible) name, capped at `max_name`. Each name is measured once; the widest is
        found again only when the set of names changed, and over all the names only when a name as
        wide as the widest left (the column shrinks). Every show of 100,000 agents comes here, so:
        nothing at all for the rows measured last time (the same object), else C-level set
        operations, and a Python call only for a name never measured."""
        if rows is self._sized:
            return min(self.max_name, self._widest)
        names, old = self.key_set(rows), self._names
        if names != old:
            widths = self._name_widths
            added = names - old
            new = added - widths.keys()
            if new:
                keys = list(self.keys_of(rows))
                fresh = list(map(new.__contains__, keys))
                for key, row in zip(compress(keys, fresh), compress(rows, fresh), strict=True):
                    widths[key] = self.name_width_of(row)
            removed = old - names
            if not old or not names or (removed and max(map(widths.__getitem__, removed)) >= self._widest):
                self._widest = max(map(widths.__getitem__, names), default=5)
            elif added:
                self._widest = max(self._widest, max(map(widths.__getitem__, added)))
            self._names = names
        self._sized = rows
        return min(self.max_name, self._widest)

    def _find(self, key: str) -> int | None:
        """A row's index: where the cursor was (the usual case), else looked up once per snapshot."""
        if self.cursor < len(self.rows) and self.key_of(self.rows[self.cursor]) == key:
            return self.cursor
        if self._index is None:  # C-level: a re-sort of 100,000 agents moves the cursor's row at most shows
            self._index = dict(zip(self.keys_of(self.rows), range(len(self.rows)), strict=True))
        return self._index.get(key)

    def _visible(self) -> tuple[object, ...]:
        top = int(self.scroll_offset.y)
        height = max(0, self._rows_height())
        return (self.cursor, top, tuple(self.columns), self._layout, tuple(self.rows[top: top + height]))

    def _refresh_if_visible_changed(self) -> None:
        """Repaint only what changed on screen, each line up to its last changed cell."""
        shown = self._visible()
        frame = (int(self.scroll_offset.y), int(self.scroll_offset.x), self.size, self.has_focus)
        if frame != self._frame or not self._shown:
            self.refresh()  # scrolled, resized or (un)focused: every line moves or restyles
        elif shown != self._shown:
            regions = self._painted.dirty(self.size.height, self.render_line)
            if regions:  # refresh() with no region would repaint everything
                self.refresh(*regions)
        self._shown, self._frame = shown, frame

    def _rows_height(self) -> int:
        """Lines for rows: below the header, and above a horizontal scrollbar when columns overflow."""
        return self.scrollable_content_region.height - 1

    def _scroll_to_cursor(self) -> None:
        top = int(self.scroll_offset.y)
        height = max(1, self._rows_height())
        if self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False)
        elif self.cursor >= top + height:
            self.scroll_to(y=self.cursor - height + 1, animate=False)

    def _move(self, index: int) -> None:
        if not self.rows:
            return
        self.cursor = max(0, min(len(self.rows) - 1, index))
        self._top = self.cursor == 0
        self._selected = self.key_of(self.rows[self.cursor])
        self._scroll_to_cursor()
        self._refresh_if_visible_changed()
        self.post_message(self.Selected(self._selected))

    def select_key(self, key: str) -> bool:
        """Put the cursor on the row with this key, if it is shown."""
        found = self._find(key)
        if found is not None:
            self._move(found)
        return found is not None

    def action_cursor(self, step: int) -> None:
        self._move(self.cursor + step)

    def action_page(self, direction: int) -> None:
        self._move(self.cursor + direction * max(1, self._rows_height() - 1))

    def action_edge(self, end: int) -> None:
        self._move(len(self.rows) - 1 if end else 0)

    def action_column(self, step: int) -> None:
        """`→` / `←`: scroll sideways by a whole column (beside the frozen names), not by a cell."""
        frozen, left = self._frozen(), int(self.scroll_offset.x)
        starts = [start - frozen for _, start, _ in self._spans() if start >= frozen]
        if step > 0:
            target = next((start for start in starts if start > left), self.max_scroll_x)
        else:
            target = next((start for start in reversed(starts) if start < left), 0)
        self.scroll_to(x=max(0, min(self.max_scroll_x, target)), animate=False)

    class HeaderClicked(Message):
        """A click on a column's title: the app may sort by it."""

        def __init__(self, table: RowTable[object], column: str) -> None:
            super().__init__()
            self.table = table
            self.column = column

        @property
        def control(self) -> RowTable[object]:
            return self.table

    def on_click(self, event: events.Click) -> None:
        if event.y >= 1:
            self._move(int(self.scroll_offset.y) + event.y - 1)
            return
        x = event.x if event.x < self._frozen() else event.x + int(self.scroll_offset.x)
        for key, start, width in self._spans():
            if x < start + width + 1:
                self.post_message(self.HeaderClicked(self, key))  # type: ignore[arg-type]
                return

    def watch_scroll_y(self, old: float, new: float) -> None:
        super().watch_scroll_y(old, new)
        self._shown = ()
        self.refresh()

    class ScrolledSideways(Message):
        """The columns in view changed: a title that names one may say something else now."""

        def __init__(self, table: RowTable[object]) -> None:
            super().__init__()
            self.table = table

        @property
        def control(self) -> RowTable[object]:
            return self.table

    def watch_scroll_x(self, old: float, new: float) -> None:
        super().watch_scroll_x(old, new)
        self._shown = ()
        self.refresh()
        if int(old) != int(new):
            self.post_message(self.ScrolledSideways(self))  # type: ignore[arg-type]

    def column_side(self, key: str) -> str | None:
        """Where a column is, scrolled sideways: "" wholly in view, "←" or "→" the way to scroll to it;
        None when the table has no such column."""
        left, frozen = int(self.scroll_offset.x), self._frozen()
        for name, start, width in self._spans():
            if name == key:
                if start < frozen:
                    return ""
                if start - left < frozen:
                    return "←"
                return "" if start + width - left <= self.scrollable_content_region.width else "→"
        return None

    def _spans(self) -> list[tuple[str, int, int]]:
        """Each drawn column's key, first cell and width on the whole (unscrolled) line."""
        spans, start = [], 0
        for key, _, width in self.columns:
            spans.append((key, start, width))
            start += width + 1
        return spans

    def _frozen(self) -> int:
        """The cells that stay put when the table scrolls sideways: the first column (the row's name)
        and its space, so every row still says whose figures it shows."""
        if not self.columns or self.columns[0][2] + 1 >= self.scrollable_content_region.width:
            return 0
        return self.columns[0][2] + 1

    def render_line(self, y: int) -> Strip:
        return self._painted.record(y, self._render_line(y))

    def _render_line(self, y: int) -> Strip:
        width = self.size.width
        if y == 0:
            return self._header(width)
        index = int(self.scroll_offset.y) + y - 1
        if index >= len(self.rows):
            return Strip.blank(width, self.rich_style)
        row = self.rows[index]
        if index == self.cursor:
            style = self.get_component_rich_style("row-table--cursor")
            if not self.has_focus:
                style += Style(dim=True)
        else:
            style = self.rich_style
        return self._strip((row, index == self.cursor, self.has_focus),
                           lambda: line_of(self._fitted_cells(row), self.columns), style, width)

    def _header(self, width: int) -> Strip:
        """The column titles, with `←` / `→` at an edge past which more columns lie: the horizontal
        scrollbar is hidden (on a 24-line terminal its line is worth an agent's row)."""
        header = self.get_component_rich_style("row-table--header")
        strip = self._strip(("header",), lambda: line_of([Text(label) for _, label, _ in self.columns],
                                                         self.columns), header, width)
        left, frozen = int(self.scroll_offset.x), self._frozen()
        more_right = self.virtual_size.width > left + width
        if width < 2 or not (left or more_right):
            return strip
        arrow = header + Style(bold=True)
        # `←` on the space after the frozen name column; `→` on the last cell.
        before = frozen - 1 if left and frozen else 0
        parts = [strip.crop(0, before)] if before else []
        parts.append(Strip([Segment("←", arrow)]) if left else strip.crop(0, 1))
        parts.append(strip.crop(before + 1, width - 1))
        parts.append(Strip([Segment("→", arrow)]) if more_right else strip.crop(width - 1, width))
        return Strip.join(parts)

    def _strip(self, key: tuple[object, ...], build: Callable[[], Text], style: Style, width: int) -> Strip:
        """A rendered line, cached by what it shows (a row is immutable, so it is its own key), cut to
        the window the table is scrolled to sideways."""
        left = int(self.scroll_offset.x)
        full_key = (*key, width, left, self._layout, tuple(self.columns))
        strip = self._cache.get(full_key)
        if strip is not None:
            self._cache.move_to_end(full_key)
            return strip
        text = build()
        text.style = style  # under the cells' own colours
        strip = Strip(segments_of(text, self.app.console)).extend_cell_length(left + width, style)
        frozen = self._frozen()
        strip = Strip.join([strip.crop(0, frozen), strip.crop(frozen + left, left + width)]) if left and frozen \
            else strip.crop(left, left + width)
        self._cache[full_key] = strip
        if len(self._cache) > STRIP_CACHE:
            self._cache.popitem(last=False)
        return strip

    def on_focus(self) -> None:
        self._shown = ()
        self.refresh()

    def on_blur(self) -> None:
        self._shown = ()
        self.refresh()
