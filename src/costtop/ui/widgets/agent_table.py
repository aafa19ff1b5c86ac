"""The agent table: a virtual list that formats only the rows on screen.

With 10,000 agents a DataTable would build 100,000 cells per refresh; this widget keeps the
snapshot's rows and renders the ~40 visible ones, each cached by its (immutable) AgentRow, so a
frame costs the same with 20 agents or 10,000. Once the operator moves the cursor it follows its
agent's key, never an index, so a re-sort cannot move the selection under them; on the first row
it stays on the top spender.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from costtop.engine.snapshot import AgentRow, AgentState, Snapshot
from costtop.text import clean
from costtop.ui.format import UNKNOWN, budget_bar, level_text, millis, runs_out, sparkline, state_text, usd
from costtop.ui.widgets.line_diff import PaintedLines

# Below this width the table drops the p95 and who/why columns (the switch panel has them).
WIDE = 110
MAX_NAME = 32
STRIP_CACHE = 512

Column = tuple[str, str, int]  # key, label, width


def agent_columns(snap: Snapshot, wide: bool, name_width: int) -> list[Column]:
    columns: list[Column] = [("agent", "Agent", name_width), ("state", "State", 9)]
    if snap.has("cost_usd"):
        columns += [("today", "Today", 10), ("velocity", "$/min 5m", 12 if wide else 11)]
        if wide:
            columns += [("trend", "Last 10m", 10)]
        columns += [("budget", "Budget", 19 if wide else 9)]
        if wide:
            columns += [("runs_out", "Out in", 7)]
    columns += [("calls", "Calls", 8 if wide else 7), ("errors", "Err", 6 if wide else 5)]
    if wide:
        columns += [("p95", "p95 5m", 8), ("why", "Switch: who / why", 26)]
    return columns


def agent_cells(agent: AgentRow, money: bool, wide: bool) -> list[Text]:
    cells: list[Text] = [Text(clean(agent.agent_id), style="bold"), state_text(agent.state)]
    if money:
        cells += [Text(usd(agent.spend_today), justify="right"),
                  level_text(usd(agent.velocity_per_min), agent.velocity_level)]
        if wide:
            cells.append(sparkline(agent.trend))
        cells.append(budget_bar(agent.budget, width=8 if wide else 4, words=wide))
        if wide:
            cells.append(runs_out(agent.budget))
    calls, errors_today = agent.calls_today, agent.errors_today
    many = bool(errors_today and calls and errors_today * 10 > calls)
    errors = Text(UNKNOWN if errors_today is None else str(errors_today), justify="right",
                  style="bold red" if many else "")
    cells += [Text(UNKNOWN if calls is None else f"{calls:,}", justify="right"), errors]
    if wide:
        why = Text("")
        if agent.switch is not None and agent.state in (AgentState.KILLED, AgentState.THROTTLED):
            source, who, reason = agent.switch.origin
            scope = "global " if agent.switch.scope == "global" else ""
            why = Text(f"{scope}{who} ({source}): {reason}")
        cells += [Text(millis(agent.p95_ms), justify="right"), why]
    return cells


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


class AgentTable(ScrollView, can_focus=True):
    BINDINGS = [
        Binding("up", "cursor(-1)", "Up", show=False, id="agents.up"),
        Binding("down", "cursor(1)", "Down", show=False, id="agents.down"),
        Binding("pageup", "page(-1)", "Page up", show=False, id="agents.pageup"),
        Binding("pagedown", "page(1)", "Page down", show=False, id="agents.pagedown"),
        Binding("home", "edge(0)", "First", show=False, id="agents.home"),
        Binding("end", "edge(1)", "Last", show=False, id="agents.end"),
    ]
    COMPONENT_CLASSES = {"agent-table--header", "agent-table--cursor"}

    class Selected(Message):
        """The cursor moved to another agent."""

        def __init__(self, agent_id: str | None) -> None:
            super().__init__()
            self.agent_id = agent_id

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.rows: tuple[AgentRow, ...] = ()
        self.columns: list[Column] = []
        self.money = False
        self.wide = True
        self.cursor = 0
        # On the first row the cursor stays on the top spender, as in htop; moved elsewhere, it
        # follows its agent through re-sorts (and the dialog's target is fixed at the key press).
        self._top = True
        self._selected: str | None = None
        self._index: dict[str, int] | None = None
        self._names: frozenset[str] = frozenset()
        self._widest = 0
        self._cache: OrderedDict[tuple[object, ...], Strip] = OrderedDict()
        self._shown: tuple[object, ...] = ()
        self._frame: tuple[object, ...] = ()
        self._painted = PaintedLines()
        self._name_widths: dict[str, int] = {}

    @property
    def selected_key(self) -> str | None:
        return self._selected

    def show(self, snap: Snapshot) -> None:
        self.wide = self.app.size.width >= WIDE
        self.money = snap.has("cost_usd")
        name_width = self._name_width(snap.agents)
        columns = agent_columns(snap, self.wide, max(5, name_width))
        if columns != self.columns:
            self.columns = columns
            self._cache.clear()
        self.rows = snap.agents
        self._index = None
        found = self._find(self._selected) if self._selected is not None and not self._top else None
        if found is not None:
            self.cursor = found
        else:
            self.cursor = min(self.cursor, max(0, len(self.rows) - 1))
            self._selected = self.rows[self.cursor].agent_id if self.rows else None
        self.virtual_size = Size(sum(w + 1 for _, _, w in columns), len(self.rows) + 1)
        self._scroll_to_cursor()
        self._refresh_if_visible_changed()

    def _name_width(self, rows: tuple[AgentRow, ...]) -> int:
        """The widest (cleaned) name, measured again only when the set of agents changed."""
        widths = self._name_widths
        new = [row.agent_id for row in rows if row.agent_id not in widths]
        for name in new:
            widths[name] = len(clean(name))
        if new or len(rows) != len(self._names):
            self._names = frozenset(row.agent_id for row in rows)
            self._widest = max((widths[name] for name in self._names), default=5)
        return min(MAX_NAME, self._widest)

    def _find(self, agent_id: str) -> int | None:
        """The row of an agent: where the cursor was (the usual case), else looked up once per snapshot."""
        if self.cursor < len(self.rows) and self.rows[self.cursor].agent_id == agent_id:
            return self.cursor
        if self._index is None:
            self._index = {row.agent_id: i for i, row in enumerate(self.rows)}
        return self._index.get(agent_id)

    def _visible(self) -> tuple[object, ...]:
        top = int(self.scroll_offset.y)
        height = max(0, self.size.height - 1)
        return (self.cursor, top, tuple(self.columns), self.rows[top: top + height])

    def _refresh_if_visible_changed(self) -> None:
        """Repaint only what changed on screen, each line up to its last changed cell."""
        shown = self._visible()
        frame = (int(self.scroll_offset.y), self.size, self.has_focus)
        if frame != self._frame or not self._shown:
            self.refresh()  # scrolled, resized or (un)focused: every line moves or restyles
        elif shown != self._shown:
            regions = self._painted.dirty(self.size.height, self.render_line)
            if regions:  # refresh() with no region would repaint everything
                self.refresh(*regions)
        self._shown, self._frame = shown, frame

    def _scroll_to_cursor(self) -> None:
        top = int(self.scroll_offset.y)
        height = max(1, self.size.height - 1)
        if self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False)
        elif self.cursor >= top + height:
            self.scroll_to(y=self.cursor - height + 1, animate=False)

    def _move(self, index: int) -> None:
        if not self.rows:
            return
        self.cursor = max(0, min(len(self.rows) - 1, index))
        self._top = self.cursor == 0
        self._selected = self.rows[self.cursor].agent_id
        self._scroll_to_cursor()
        self._refresh_if_visible_changed()
        self.post_message(self.Selected(self._selected))

    def action_cursor(self, step: int) -> None:
        self._move(self.cursor + step)

    def action_page(self, direction: int) -> None:
        self._move(self.cursor + direction * max(1, self.size.height - 2))

    def action_edge(self, end: int) -> None:
        self._move(len(self.rows) - 1 if end else 0)

    def on_click(self, event: events.Click) -> None:
        if event.y >= 1:
            self._move(int(self.scroll_offset.y) + event.y - 1)

    def watch_scroll_y(self, old: float, new: float) -> None:
        super().watch_scroll_y(old, new)
        self._shown = ()
        self.refresh()

    def render_line(self, y: int) -> Strip:
        return self._painted.record(y, self._render_line(y))

    def _render_line(self, y: int) -> Strip:
        width = self.size.width
        if y == 0:
            header = self.get_component_rich_style("agent-table--header")
            return self._strip(("header",), lambda: line_of([Text(label) for _, label, _ in self.columns],
                                                            self.columns), header, width)
        index = int(self.scroll_offset.y) + y - 1
        if index >= len(self.rows):
            return Strip.blank(width, self.rich_style)
        row = self.rows[index]
        if index == self.cursor:
            style = self.get_component_rich_style("agent-table--cursor")
            if not self.has_focus:
                style += Style(dim=True)
        else:
            style = self.rich_style
        return self._strip((row, index == self.cursor, self.has_focus),
                           lambda: line_of(agent_cells(row, self.money, self.wide), self.columns), style, width)

    def _strip(self, key: tuple[object, ...], build: Callable[[], Text], style: Style, width: int) -> Strip:
        """A rendered line, cached by what it shows (an AgentRow is immutable, so it is its own key)."""
        full_key = (*key, width, self.wide, self.money, tuple(self.columns))
        strip = self._cache.get(full_key)
        if strip is not None:
            self._cache.move_to_end(full_key)
            return strip
        text = build()
        text.style = style  # under the cells' own colours
        strip = Strip(list(text.render(self.app.console))).extend_cell_length(width, style).crop(0, width)
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

