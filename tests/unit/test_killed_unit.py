"""A killed agent reads killed wherever its row or its alerts speak of it (issue 18, point 5)."""

from __future__ import annotations

from decimal import Decimal

from costtop.config import Thresholds
from costtop.engine.alerts import agent_alerts
from costtop.engine.snapshot import AgentRow, AgentState, BudgetState, BudgetView, Level
from costtop.sources.records import SwitchKind, SwitchRecord
from costtop.ui.widgets.agent_table import agent_cells

KILL = SwitchRecord("kill:agent:runaway", SwitchKind.KILL, "agent", "runaway", "manual:oncall:loop", None)


def burning(state: AgentState, switch: SwitchRecord | None) -> AgentRow:
    """An agent burning at the emergency level, its budget running out in ten minutes."""
    return AgentRow("runaway", Decimal("40"), Decimal("300"), Decimal("60"), Level.EMERGENCY,
                    BudgetView(BudgetState.WARNING, Decimal("50"), Decimal("40"), 600.0), 900, 3, 0, 800,
                    state, switch, calls_5m=400)


def out_in(row: AgentRow) -> str:
    cells = agent_cells(row, money=True, wide=True)
    return cells[6].plain  # agent, state, today, $/min, last 10m, budget, out in (agent_columns)


def test_a_killed_agents_out_in_reads_killed_not_a_time() -> None:
    assert out_in(burning(AgentState.OK, None)) == "10m00s"
    assert out_in(burning(AgentState.KILLED, KILL)) == "killed"


def test_a_killed_agents_burn_alert_says_it_is_killed() -> None:
    def burn_detail(row: AgentRow) -> str:
        alerts, _ = agent_alerts(row, Thresholds())
        return next(a for a in alerts if a.key.startswith("velocity:")).figure

    assert "killed" not in burn_detail(burning(AgentState.OK, None))
    assert "killed" in burn_detail(burning(AgentState.KILLED, KILL))
