"""What a writing key acts on: the row the operator sees selected, read at the key press.

`k`, `t` and `u` name one target, and the confirm dialog can only confirm that one. It is the row under
the cursor of the focused table, and only if that row is drawn on screen: a filter that hides every row,
or a terminal too short to show one, keeps a selection that is nowhere to be seen. On an agent's own
screen the target is that agent; on the alert panel, the agent the alert under its cursor names.
"""

from __future__ import annotations

from typing import Any

from costtop.engine.snapshot import AgentState, ProviderRow, Snapshot
from costtop.sources.records import SwitchChange
from costtop.text import visible_id
from costtop.ui.widgets.agent_table import AgentTable
from costtop.ui.widgets.alert_panel import AlertPanel
from costtop.ui.widgets.row_table import RowTable
from costtop.ui.widgets.switch_table import SwitchTable
from costtop.ui.widgets.usage_tables import NO_NAME, SwitchableTable

# A target, or the one line that says why there is none.
Target = SwitchChange | str


def row_on_screen(table: RowTable[Any]) -> bool:
    """Whether the table's selected row is drawn now."""
    rows_height = table.scrollable_content_region.height - 1  # below the header line
    top = int(table.scroll_offset.y)
    return bool(table.rows) and table.display and table.region.height > 1 and rows_height >= 1 \
        and top <= table.cursor < top + rows_height


def switch_target(kind: str, focused: object, agents: AgentTable | None, drilled: str | None,
                  drilled_open: bool, shown: Snapshot | None = None) -> Target:
    """`k` (kind "kill") or `t` ("throttle"): the focused model or provider row, else the agent.
    `agents`: the main screen's agent table; `drilled`: the agent of an open agent screen; `shown`: what
    the operator sees, where an agent already killed is said to be, rather than killed again."""
    if isinstance(focused, SwitchableTable):
        name = focused.selected_name if row_on_screen(focused) else None
        if kind != "kill":
            return f"Throttling applies to agents; `k` kills the selected {focused.scope}."
        if name is None:
            return f"No {focused.scope} selected (calls without a {focused.scope} have no switch)."
        return SwitchChange("set", "kill", focused.scope, name)
    on_screen = agents is not None and row_on_screen(agents)
    agent = drilled if drilled_open else (agents.selected_key if agents is not None and on_screen else None)
    if isinstance(focused, AlertPanel) and not drilled_open:
        alert = focused.selected
        if alert is None or alert.agent is None:
            return "No alert selected." if alert is None else \
                f"This alert names no agent; `{kind[0]}` acts on the agent, model or provider selected in its table."
        agent = alert.agent
    if agent is None:
        return "No agent selected."
    if agent == NO_NAME:
        return (f"(none) is the calls without an agent_id: they have no {kind} switch "
                "(kill their model or provider instead).")
    row = next((a for a in shown.agents if a.agent_id == agent), None) \
        if kind == "kill" and shown is not None else None
    if row is not None and row.state is AgentState.KILLED:
        by = "by the global kill" if row.switch is not None and row.switch.scope == "global" else "by its switch"
        return f"{visible_id(agent, 40)} is already killed ({by}); `u` resumes it."
    return SwitchChange("set", kind, "agent", agent)


def resume_target(snap: Snapshot, focused: object, agent: str | None) -> SwitchChange | None:
    """`u`: the switch under the cursor in the switch panel, else the focused model's or provider's
    own switch, else the agent of the alert under the alert panel's cursor, else the selected agent's.
    `snap` is what the operator sees (also while paused)."""
    if isinstance(focused, AlertPanel):
        alert = focused.selected
        agent = alert.agent if alert is not None else None
    if isinstance(focused, SwitchTable):
        found = next((s for s in snap.switches if s.key == focused.selected_key), None)
        return None if found is None else SwitchChange.removing(found)
    if isinstance(focused, SwitchableTable):
        rows = snap.providers if focused.scope == "provider" else snap.models
        name = focused.selected_name
        row = next((r for r in rows if (r.provider if isinstance(r, ProviderRow) else r.model) == name), None)
        if name is None or row is None or row.switch is None or row.switch.scope != focused.scope:
            return None
        return SwitchChange.removing(row.switch)
    found_agent = next((a for a in snap.agents if a.agent_id == agent), None)
    if found_agent is None or found_agent.switch is None \
            or found_agent.state not in (AgentState.KILLED, AgentState.THROTTLED):
        return None
    return SwitchChange.removing(found_agent.switch)
