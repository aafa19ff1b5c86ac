"""A DataTable updated by key: only changed cells are rewritten, and the cursor stays on its row.

Rewriting only what changed keeps the redraw traffic small over SSH; keeping the cursor on the same
key (not the same index) means a re-sort never moves the selection under the operator.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual import events
from textual.widgets import DataTable
from textual.widgets.data_table import CellDoesNotExist

Cells = tuple[Text | str, ...]
Column = tuple[str, str, int | None]  # key, label, fixed width (None: fit the content)


class KeyedTable(DataTable[Text | str]):
    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=False)
        self._rows: dict[str, Cells] = {}
        self._order: list[str] = []
        self._columns: list[Column] = []

    async def _on_idle(self, event: events.Idle) -> None:
        # DataTable widens columns on idle but may keep cells it rendered at the old width in its
        # cache; drop the cache when a width changed so no value is shown cut short.
        before = [c.content_width for c in self.columns.values()]
        await super()._on_idle(event)
        if [c.content_width for c in self.columns.values()] != before:
            self._clear_caches()
            self.refresh()

    def set_columns(self, columns: Sequence[Column]) -> None:
        """Changing the columns rebuilds the table. A fixed width keeps the layout still as values
        change (less redraw over SSH); None sizes the column to its content."""
        if list(columns) == self._columns:
            return
        self.clear(columns=True)
        self._rows = {}
        self._order = []
        self._columns = list(columns)
        for key, label, width in columns:
            self.add_column(label, key=key, width=width)

    @property
    def selected_key(self) -> str | None:
        if not self._order or self.cursor_row < 0:
            return None
        try:
            key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key
        except CellDoesNotExist:
            return None
        return str(key.value)

    def apply(self, rows: Sequence[tuple[str, Cells]]) -> None:
        """Make the table show exactly `rows`, in that order, with the fewest changes."""
        selected = self.selected_key
        column_keys = [c.key for c in self.columns.values()]
        wanted = dict(rows)
        for gone in [k for k in self._rows if k not in wanted]:
            self.remove_row(gone)
            del self._rows[gone]
        for key, cells in rows:
            old = self._rows.get(key)
            if old is None:
                self.add_row(*cells, key=key)
                self._rows[key] = cells
            elif old != cells:
                for column, before, after in zip(column_keys, old, cells, strict=False):
                    if before != after:
                        self.update_cell(key, column, after, update_width=True)
                # Keep the very objects the table holds (an equal cell was not replaced in it).
                self._rows[key] = tuple(b if b == a else a for b, a in zip(old, cells, strict=False))
        order = [k for k, _ in rows]
        if order != self._order and column_keys:
            # DataTable's sort sees cell values, not row keys; `_rows` holds the very objects the table
            # holds, so the first cell's identity names its row.
            position = {id(self._rows[k][0]): i for i, k in enumerate(order)}
            self.sort(column_keys[0], key=lambda first: position.get(id(first), 0))
            self._order = order
        if selected is not None and selected in wanted:
            index = self.get_row_index(selected)
            if index != self.cursor_row:
                self.move_cursor(row=index, animate=False, scroll=False)
