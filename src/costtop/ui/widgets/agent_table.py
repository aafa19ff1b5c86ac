"""The agent table: one keyed row per agent, columns chosen by what the table can fill."""

from __future__ import annotations

from rich.text import Text

from costtop.engine.snapshot import AgentRow, AgentState, Snapshot
from costtop.text import clean
from costtop.ui.format import budget_bar, level_text, millis, state_text, usd
from costtop.ui.widgets.keyed_table import Cells, Column, KeyedTable

# Below this width the table drops the who/why column (the switch panel has it) and narrows bars.
WIDE = 110


def agent_columns(snap: Snapshot, wide: bool) -> list[Column]:
    columns: list[Column] = [("agent", "Agent", None), ("state", "State", 9)]
    if snap.has("cost_usd"):
        columns += [("today", "Today", 9), ("velocity", "$/min 5m", 12 if wide else 10),
                    ("budget", "Budget", 19 if wide else 9)]
    columns += [("calls", "Calls", 7 if wide else 6), ("errors", "Err", 5 if wide else 4)]
    if wide:
        columns += [("p95", "p95 5m", 7), ("why", "Switch: who / why", None)]
    return columns


def agent_cells(agent: AgentRow, money: bool, wide: bool) -> Cells:
    cells: list[Text | str] = [Text(clean(agent.agent_id), style="bold"), state_text(agent.state)]
    if money:
        cells += [
            Text(usd(agent.spend_today), justify="right"),
            level_text(usd(agent.velocity_per_min), agent.velocity_level),
            budget_bar(agent.budget, width=8 if wide else 4, words=wide),
        ]
    errors = Text(str(agent.errors_today), justify="right",
                  style="bold red" if agent.errors_today and agent.errors_today * 10 > agent.calls_today else "")
    why = Text("")
    if agent.switch is not None and agent.state in (AgentState.KILLED, AgentState.THROTTLED):
        source, who, reason = agent.switch.origin
        scope = "global " if agent.switch.scope == "global" else ""
        why = Text(f"{scope}{who} ({source}): {reason}", style="dim" if agent.state is AgentState.THROTTLED else "")
    cells += [Text(f"{agent.calls_today:,}", justify="right"), errors]
    if wide:
        cells += [Text(millis(agent.p95_ms), justify="right"), why]
    return tuple(cells)


class AgentTable(KeyedTable):
    def show(self, snap: Snapshot) -> None:
        wide = self.app.size.width >= WIDE
        self.set_columns(agent_columns(snap, wide))
        money = snap.has("cost_usd")
        self.apply([(a.agent_id, agent_cells(a, money, wide)) for a in snap.agents])
