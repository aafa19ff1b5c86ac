"""The agent table: the agents' figures, in the order the engine sorted them (see RowTable)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from operator import attrgetter

from rich.text import Text

from costtop.engine.snapshot import AgentRow, AgentState, Snapshot
from costtop.money import UNKNOWN, usd
from costtop.ui.format import budget_bar, call_age, level_text, millis, runs_out, sparkline, state_text
from costtop.ui.themes import DEFAULT_PALETTE, Palette
from costtop.ui.widgets.row_table import Column, RowTable
from costtop.ui.widgets.usage_tables import name_text, row_key, row_key_set, row_keys

# Below this width the columns take their compact forms (the budget without words).
WIDE = 110
# What an on-call needs first, when the terminal cannot show every column: the columns left out go
# past the right edge, in this order (`fit_columns`), and `→` scrolls to them.
AGENT_PRIORITY = ("agent", "state", "velocity", "today", "budget", "runs_out", "last", "calls", "errors",
                  "p95", "trend", "why")


def agent_columns(snap: Snapshot, wide: bool, name_width: int) -> list[Column]:
    """Every column, in reading order; at narrow widths the compact forms."""
    columns: list[Column] = [("agent", "Agent", name_width), ("state", "State", 9)]
    if snap.has("cost_usd"):
        columns += [("today", "Today", 10), ("velocity", "$/min 5m", 12 if wide else 11),
                    ("trend", "Last 10m", 10), ("budget", "Budget", 19 if wide else 9), ("runs_out", "Out in", 7)]
    columns += [("calls", "Calls", 8 if wide else 7), ("errors", "Err", 6 if wide else 5),
                ("last", "Last call", 9), ("p95", "p95 5m", 8),
                ("why", "Switch: who / why", 34)]
    return columns


def agent_cells(agent: AgentRow, money: bool, wide: bool, now: float = 0.0,
                seen_from: float | None = None, p: Palette = DEFAULT_PALETTE) -> list[Text]:
    cells: list[Text] = [name_text(agent.agent_id), state_text(agent.state, p)]
    if money:
        cells += [Text(usd(agent.spend_today), justify="right"),
                  level_text(usd(agent.velocity_per_min), agent.velocity_level, p), sparkline(agent.trend),
                  budget_bar(agent.budget, p, width=8 if wide else 4, words=wide),
                  runs_out(agent.budget, p, agent.state)]
    calls, errors_today = agent.calls_today, agent.errors_today
    many = bool(errors_today and calls and errors_today * 10 > calls)
    errors = Text(UNKNOWN if errors_today is None else str(errors_today), justify="right",
                  style=p.strong_critical if many else "")
    why = Text("")
    if agent.switch is not None and agent.state in (AgentState.KILLED, AgentState.THROTTLED):
        source, who, reason = agent.switch.origin
        scope = "global " if agent.switch.scope == "global" else ""
        why = Text(f"{scope}{who} ({source}): {reason}")
    cells += [Text(UNKNOWN if calls is None else f"{calls:,}", justify="right"), errors,
              call_age(agent.last_call_at, now, seen_from, words=wide), Text(millis(agent.p95_ms), justify="right"),
              why]
    return cells


class AgentTable(RowTable[AgentRow]):
    priority = AGENT_PRIORITY
    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.money = False
        self.wide = True
        self.now = 0  # the snapshot's second: ages are drawn against it, so a line is redrawn each second
        self.seen_from: float | None = None

    def rows_of(self, snap: Snapshot) -> Sequence[AgentRow]:
        self.wide = self.app.size.width >= WIDE
        self.money = snap.has("cost_usd")
        self.now = int(snap.at.timestamp())
        self.seen_from = snap.calls_seen_from
        return snap.agents

    def key_of(self, row: AgentRow) -> str:
        """The agent id as stored; the calls without one (a NULL agent_id) have a key no id can take."""
        return row_key(row.agent_id)

    def keys_of(self, rows: Sequence[AgentRow]) -> Iterable[str]:
        return row_keys(tuple(map(attrgetter("agent_id"), rows)))

    def key_set(self, rows: Sequence[AgentRow]) -> set[str]:
        return row_key_set(map(attrgetter("agent_id"), rows))

    def name_of(self, row: AgentRow) -> str:
        return "(none)" if row.agent_id is None else row.agent_id

    def columns_for(self, snap: Snapshot, name_width: int) -> list[Column]:
        return agent_columns(snap, self.wide, name_width)

    def cells_of(self, row: AgentRow) -> list[Text]:
        return agent_cells(row, self.money, self.wide, self.now, self.seen_from, self.palette)

    def layout_key(self) -> tuple[object, ...]:
        return (self.wide, self.money, self.now)
