"""The agents burning fastest, for the wall screen: name, state, $/min over 5 minutes, today, budget.

A short list, not the agent table: nobody scrolls a wall screen. The ids come from other programs, so
they are drawn with `id_text` (as rich Text, invisible characters shown as markers), never in markup.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from decimal import Decimal

from rich.text import Text

from costtop.engine.snapshot import AgentRow, Snapshot, SortKey
from costtop.money import usd
from costtop.text import id_text
from costtop.ui.format import budget_bar, level_text, state_text
from costtop.ui.themes import DEFAULT_PALETTE, Palette, palette
from costtop.ui.widgets.line_diff import TextLines
from costtop.ui.widgets.usage_tables import name_text

TOP = 10
# (title, width, justify): the name takes what is left.
COLUMNS: tuple[tuple[str, int, str], ...] = (("State", 9, "left"), ("$/min 5m", 14, "right"),
                                             ("Today", 11, "right"), ("Day budget", 16, "left"))
NAME_MIN = 12
NAME_MAX = 48
GAP = 2
_NO_BURN = Decimal(-1)


def _burn(agent: AgentRow) -> Decimal:
    return agent.velocity_per_min if agent.velocity_per_min is not None else _NO_BURN


def top_agents(snap: Snapshot, count: int = TOP) -> Sequence[AgentRow]:
    """The `count` highest burn rates. The engine's order when it is already by burn (the wall's, unless
    the keymap gave it a sort key): no pass over 100,000 agents each second."""
    if snap.sort is SortKey.BURN and not snap.sort_reverse:
        return snap.agents[:count]
    return heapq.nlargest(count, snap.agents, key=_burn)


def top_agents_text(snap: Snapshot, width: int, count: int = TOP, p: Palette = DEFAULT_PALETTE) -> Text:
    agents = top_agents(snap, count)
    if not agents:
        return Text("No agent seen today.", style="dim")
    # As wide as the longest name shown (up to what is left): the figures stay next to their names. On a
    # narrow screen the budget goes first: a name cut short is worse than a missing bar.
    longest = min(NAME_MAX, max(len(a.agent_id or "(none)") for a in agents))
    fixed = sum(w + GAP for _, w, _ in COLUMNS)
    columns = [c for c in COLUMNS if width - fixed >= max(NAME_MIN, min(longest, 20)) or c[0] != "Day budget"]
    name_width = max(NAME_MIN, min(longest, width - sum(w + GAP for _, w, _ in columns)))
    header = Text("Agent".ljust(name_width), style="bold")
    for title, cell, justify in columns:
        header.append(" " * GAP + (title.rjust(cell) if justify == "right" else title.ljust(cell)), style="bold")
    lines = [header]
    for agent in agents:
        cells = {"State": state_text(agent.state, p),
                 "$/min 5m": level_text(usd(agent.velocity_per_min), agent.velocity_level, p),
                 "Today": Text(usd(agent.spend_today)),
                 "Day budget": budget_bar(agent.budget, p, width=8)}
        # A long id keeps its tag (a hash of the whole id): two ids cut to the same prefix stay apart.
        line = name_text(None) if agent.agent_id is None else id_text(agent.agent_id, name_width, style="bold")
        line.truncate(name_width, pad=True)
        for title, cell, justify in columns:
            text = cells[title].copy()
            text.truncate(cell)
            text.align("right" if justify == "right" else "left", cell)
            line.append(" " * GAP)
            line.append_text(text)
        lines.append(line)
    if len(snap.agents) > len(agents):
        lines.append(Text(f"… {len(snap.agents) - len(agents):,} more agents", style="dim"))
    return Text("\n").join(lines)


class TopAgents(TextLines):
    def show(self, snap: Snapshot) -> None:
        width = max(20, self.content_size.width or self.app.size.width - 4)
        self.set_text(top_agents_text(snap, width, TOP, palette(self.app)))
