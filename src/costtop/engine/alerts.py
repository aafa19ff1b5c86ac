"""The seed's alert rules, evaluated on every snapshot, and the book that remembers them.

A rule sees only figures that are known: an unknown figure (Redis down, the day still being summed,
no calls in the window) raises nothing, so missing data never cries wolf. An alert keeps the time it
first held; it stays until its condition clears, acknowledged or not, and comes back unacknowledged
if it clears and trips again.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Mapping
from dataclasses import replace
from datetime import datetime

from costtop.config import Thresholds
from costtop.engine.anomalies import DayNorm, day_anomaly
from costtop.engine.snapshot import (
    AgentRow,
    AgentState,
    Alert,
    BudgetState,
    BudgetView,
    FallbackView,
    HeaderStats,
    Health,
    Level,
    ProviderRow,
    Reconciliation,
    Severity,
)
from costtop.money import usd

LEVEL_SEVERITY = {Level.WARNING: Severity.WARNING, Level.CRITICAL: Severity.CRITICAL,
                  Level.EMERGENCY: Severity.EMERGENCY}


def budget_alert(subject: str, label: str, budget: BudgetView, agent: str | None = None) -> Alert | None:
    """80 % is a warning, 100 % critical; a disabled or unknown budget says nothing. `agent`: the agent
    whose budget it is (None: the fleet's)."""
    if budget.state not in (BudgetState.WARNING, BudgetState.EXCEEDED) or budget.fraction is None:
        return None
    severity = Severity.CRITICAL if budget.state is BudgetState.EXCEEDED else Severity.WARNING
    return Alert(f"budget:{label}:{subject}", f"{label} budget", severity, subject,
                 f"{budget.fraction * 100:.0f} % of {usd(budget.limit)}", agent=agent)


def fallback_alert(fallback: FallbackView) -> Alert:
    """The fallback file's oldest line is past the drain limit (seed: drained within an hour): rows are
    not reaching the table, and every figure read from it is short by what waits there."""
    waiting = f"{fallback.lines:,} line{'s' if fallback.lines != 1 else ''}"
    age = fallback.oldest_age_seconds or 0.0
    return Alert("fallback:file", "fallback not drained", Severity.CRITICAL, "gateway",
                 f"{waiting} waiting, the oldest {age / 60:.0f} min old")


def agent_alerts(a: AgentRow, th: Thresholds) -> tuple[tuple[Alert, ...], bool]:
    """One agent's rules (burn rate, its daily budget, its error rate, slowness), and whether it counts
    among the agents erroring."""
    alerts: list[Alert] = []
    severity = LEVEL_SEVERITY.get(a.velocity_level)
    if severity is not None and a.window_usd is not None:
        # A killed agent's last five minutes still hold what it spent before the kill: said, so the alert
        # is not read as a fire still burning.
        killed = ", killed" if a.state is AgentState.KILLED else ""
        alerts.append(Alert(f"velocity:{a.agent_id}", "burn rate", severity, a.agent_id,
                            f"{usd(a.window_usd)} in 5 min{killed}", agent=a.agent_id))
    budget = budget_alert(a.agent_id, "daily", a.budget, a.agent_id)
    if budget is not None:
        alerts.append(budget)
    erroring = bool(a.calls_5m and a.errors_5m / a.calls_5m > th.error_rate_5m)
    if erroring:
        alerts.append(Alert(f"errors:{a.agent_id}", "error rate", Severity.WARNING, a.agent_id,
                            f"{a.errors_5m} of {a.calls_5m} calls failed in 5 min "
                            f"({a.errors_5m / a.calls_5m * 100:.0f} %)", agent=a.agent_id))
    if a.p95_ms is not None and a.p95_ms > th.slow_p95_ms:
        alerts.append(Alert(f"slow:{a.agent_id}", "slow", Severity.WARNING, a.agent_id,
                            f"p95 {a.p95_ms / 1000:.1f} s over 5 min", agent=a.agent_id))
    return tuple(alerts), erroring


class AgentAlerts:
    """Each agent's own alerts (its rules and its unusual day), redone only for the agents whose row the
    last build touched: with 100,000 agents a snapshot evaluates the few that changed, not all. Their
    order does not matter: the alert book orders what holds."""

    def __init__(self) -> None:
        self._by_agent: dict[str, tuple[Alert, ...]] = {}  # only agents with alerts
        self._erroring: set[str] = set()
        self._context: tuple[Thresholds, Mapping[str, DayNorm]] | None = None

    def update(self, rows: Mapping[str, AgentRow], touched: Iterable[str] | None, th: Thresholds,
               norms: Mapping[str, DayNorm], days: Container[str]) -> tuple[list[Alert], int]:
        """`touched`: the agents rebuilt or removed since the last update (None: all of them). `norms`:
        the usual days (one object per history read), `days`: the agents with calls today."""
        context = self._context
        if touched is None or context is None or context[0] != th or context[1] is not norms:
            self._context = (th, norms)
            self._by_agent, self._erroring = {}, set()
            touched = rows.keys()
        by_agent, erroring = self._by_agent, self._erroring
        for name in touched:
            row = rows.get(name)
            if row is None:
                by_agent.pop(name, None)
                erroring.discard(name)
                continue
            alerts, is_erroring = agent_alerts(row, th)
            unusual = day_anomaly(name, row.spend_today, norms.get(name), th) if name in days else None
            if unusual is not None:
                alerts = (*alerts, unusual)
            if alerts:
                by_agent[name] = alerts
            else:
                by_agent.pop(name, None)
            if is_erroring:
                erroring.add(name)
            else:
                erroring.discard(name)
        return [alert for alerts in by_agent.values() for alert in alerts], len(erroring)


def fleet_agent_alerts(agents: Iterable[AgentRow], th: Thresholds) -> tuple[list[Alert], int]:
    """Every agent's own alerts at once, and how many are erroring (no cache, no history)."""
    alerts: list[Alert] = []
    erroring = 0
    for a in agents:
        found, is_erroring = agent_alerts(a, th)
        alerts += found
        erroring += is_erroring
    return alerts, erroring


def evaluate(per_agent: tuple[list[Alert], int], providers: Iterable[ProviderRow], header: HeaderStats,
             reconciliation: Reconciliation | None, th: Thresholds,
             patterns: Iterable[tuple[str, str, str, str]] = ()) -> list[Alert]:
    """Every rule that holds now. `per_agent`: the agents' own alerts and how many agents are erroring
    (`AgentAlerts.update`, or `fleet_agent_alerts`); `patterns`: (kind, trace, agent, figure) from live
    traces."""
    agent_alerts_now, erroring = per_agent
    alerts: list[Alert] = []
    for kind, trace, agent, figure in patterns:
        if kind == "loop":
            alerts.append(Alert(f"loop:{trace}", "stuck loop", Severity.WARNING, agent, figure, agent=agent,
                                trace=trace))
        else:
            alerts.append(Alert(f"context:{trace}", "context explosion", Severity.WARNING, agent, figure,
                                agent=agent, trace=trace))
    alerts += agent_alerts_now
    if erroring > th.erroring_agents:
        alerts.append(Alert("errors:fleet", "agents erroring", Severity.CRITICAL, "fleet",
                            f"{erroring} agents above {th.error_rate_5m * 100:.0f} % errors"))
    for p in providers:
        if p.health is Health.DOWN and p.error_rate_2m is not None:
            name = p.provider or "(no provider)"
            alerts.append(Alert(f"provider:{name}", "provider down", Severity.CRITICAL, name,
                                f"{p.error_rate_2m * 100:.0f} % errors in 2 min ({p.calls_2m} calls)"))
    for label, budget in (("day", header.day_budget), ("month", header.month_budget)):
        found = budget_alert("fleet", label, budget)
        if found is not None:
            alerts.append(found)
    if reconciliation is not None:
        for check in reconciliation.flagged:
            alerts.append(Alert(f"reconcile:{check.agent_id}", "counters ≠ rows", Severity.WARNING,
                                check.agent_id, f"Redis {usd(check.gateway)} vs rows {usd(check.table)}: calls "
                                "bypassing attribution, or rows not written yet", agent=check.agent_id))
        if reconciliation.calls_flagged:
            gateway = "?" if reconciliation.gateway_calls is None else f"{reconciliation.gateway_calls:,}"
            alerts.append(Alert("reconcile:calls", "counters ≠ rows", Severity.WARNING, "fleet",
                                f"calls {gateway} vs {reconciliation.table_calls:,} rows"))
    return alerts


class AlertBook:
    """Which alerts hold, since when, and which the operator has acknowledged."""

    def __init__(self) -> None:
        self.active: dict[str, Alert] = {}
        self.acknowledged: set[str] = set()

    def update(self, alerts: Iterable[Alert], now: datetime) -> tuple[tuple[Alert, ...], bool]:
        """The active alerts, most severe and oldest first, and whether a critical one is new."""
        current: dict[str, Alert] = {}
        new_critical = False
        for alert in alerts:
            before = self.active.get(alert.key)
            if before is None:
                since = now
                new_critical = new_critical or alert.severity >= Severity.CRITICAL
            else:
                since = before.since or now
                if alert.severity > before.severity:  # it got worse: ask again
                    self.acknowledged.discard(alert.key)
                    new_critical = new_critical or alert.severity >= Severity.CRITICAL
            current[alert.key] = replace(alert, since=since, acknowledged=alert.key in self.acknowledged)
        self.acknowledged &= set(current)  # a cleared alert forgets its acknowledgement
        self.active = current
        ordered = sorted(current.values(), key=lambda a: (-a.severity, a.since, a.key))
        return tuple(ordered), new_critical

    def acknowledge(self, keys: Iterable[str] | None = None) -> None:
        """The given alerts, or all active ones."""
        chosen = set(self.active) if keys is None else set(keys) & set(self.active)
        self.acknowledged |= chosen
        self.active = {k: replace(a, acknowledged=a.acknowledged or k in chosen) for k, a in self.active.items()}
