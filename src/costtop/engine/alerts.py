"""The seed's alert rules, evaluated on every snapshot, and the book that remembers them.

A rule sees only figures that are known: an unknown figure (Redis down, the day still being summed,
no calls in the window) raises nothing, so missing data never cries wolf. An alert keeps the time it
first held; it stays until its condition clears, acknowledged or not, and comes back unacknowledged
if it clears and trips again.

With 10,000 agents, 7,000 of them over budget, a frame holds 7,000 alerts of which a handful change:
each agent's own alerts are kept until its figures change (`AgentAlerts`), and the book changes only
the alerts that did (`AlertBook`), so neither work nor `usd()` formatting grows with the alerts held.
What moves with the clock alone is not kept: an agent's row is rebuilt when its window loses a second
(and its alerts with it), and the alerts that are not an agent's own are evaluated whole every frame.
The book itself has no timer: an alert holds from the first snapshot that raised it, and leaves at the
first that did not.
"""

from __future__ import annotations

from collections.abc import Collection, Container, Iterable, Mapping
from dataclasses import replace
from datetime import datetime
from decimal import Decimal

from sortedcontainers import SortedKeyList

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


def budget_alert(subject: str, label: str, budget: BudgetView, agent: str | None = None,
                 limit_text: str | None = None) -> Alert | None:
    """80 % is a warning, 100 % critical; a disabled or unknown budget says nothing. `agent`: the agent
    whose budget it is (None: the fleet's). `limit_text`: `usd(budget.limit)` when the caller kept it."""
    if budget.state not in (BudgetState.WARNING, BudgetState.EXCEEDED) or budget.fraction is None:
        return None
    severity = Severity.CRITICAL if budget.state is BudgetState.EXCEEDED else Severity.WARNING
    return Alert(f"budget:{label}:{subject}", f"{label} budget", severity, subject,
                 f"{budget.fraction * 100:.0f} % of {limit_text or usd(budget.limit)}", agent=agent)


def fallback_alert(fallback: FallbackView) -> Alert:
    """The fallback file's oldest line is past the drain limit (seed: drained within an hour): rows are
    not reaching the table, and every figure read from it is short by what waits there."""
    waiting = f"{fallback.lines:,} line{'s' if fallback.lines != 1 else ''}"
    age = fallback.oldest_age_seconds or 0.0
    return Alert("fallback:file", "fallback not drained", Severity.CRITICAL, "gateway",
                 f"{waiting} waiting, the oldest {age / 60:.0f} min old")


def agent_alerts(a: AgentRow, th: Thresholds, limit_text: str | None = None) -> tuple[tuple[Alert, ...], bool]:
    """One agent's rules (burn rate, its daily budget, its error rate, slowness), and whether it counts
    among the agents erroring. `limit_text`: `usd()` of its budget's limit, when the caller kept it."""
    alerts: list[Alert] = []
    severity = LEVEL_SEVERITY.get(a.velocity_level)
    if severity is not None and a.window_usd is not None:
        # A killed agent's last five minutes still hold what it spent before the kill: said, so the alert
        # is not read as a fire still burning.
        killed = ", killed" if a.state is AgentState.KILLED else ""
        alerts.append(Alert(f"velocity:{a.agent_id}", "burn rate", severity, a.agent_id,
                            f"{usd(a.window_usd)} in 5 min{killed}", agent=a.agent_id))
    budget = budget_alert(a.agent_id, "daily", a.budget, a.agent_id, limit_text)
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


def alert_inputs(a: AgentRow, th: Thresholds) -> tuple[object, ...]:
    """What `agent_alerts` reads from a row, each part only where it can raise an alert: two rows with
    equal inputs get equal alerts. A row is rebuilt whenever its window changes, so most rebuilt rows
    of a busy fleet differ in figures no rule reads (calls, the trend, the forecast) or only in ones
    that raise nothing (the spend of an agent under its burn and budget limits)."""
    velocity = None
    if a.velocity_level in LEVEL_SEVERITY and a.window_usd is not None:
        velocity = (a.velocity_level, a.window_usd, a.state is AgentState.KILLED)
    b = a.budget
    budget = (b.state, b.limit, b.used) if b.state in (BudgetState.WARNING, BudgetState.EXCEEDED) else None
    erroring = a.calls_5m and a.errors_5m / a.calls_5m > th.error_rate_5m
    slow = a.p95_ms if a.p95_ms is not None and a.p95_ms > th.slow_p95_ms else None
    return velocity, budget, (a.errors_5m, a.calls_5m) if erroring else None, slow, a.spend_today


class AgentAlerts:
    """Each agent's own alerts (its rules and its unusual day), redone only for the agents whose row the
    last build touched, and of those only for the ones whose figures the rules read changed
    (`alert_inputs`): with 100,000 agents a snapshot evaluates the few that changed, not all.

    `by_key` holds every agent's alerts by key; an alert that did not change stays the same object, so
    the book can tell it is the same at a glance. `take_changed` says which keys changed since it was
    last asked: the book updates those and keeps the rest."""

    def __init__(self) -> None:
        self.by_key: dict[str, Alert] = {}
        self._by_agent: dict[str, tuple[Alert, ...]] = {}  # only agents with alerts
        self._inputs: dict[str, tuple[object, ...]] = {}  # what each agent's alerts were made from
        self._limits: dict[str, tuple[Decimal, str]] = {}  # an agent's budget limit and its usd() text
        self._erroring: set[str] = set()
        self._context: tuple[Thresholds, Mapping[str, DayNorm]] | None = None
        self._changed: set[str] | None = set()  # keys of `by_key` changed since take_changed(); None: all

    def update(self, rows: Mapping[str, AgentRow], touched: Iterable[str] | None, th: Thresholds,
               norms: Mapping[str, DayNorm], days: Container[str]) -> tuple[Mapping[str, Alert], int]:
        """`touched`: the agents rebuilt or removed since the last update (None: all of them). `norms`:
        the usual days (one object per history read), `days`: the agents with calls today. Returns
        `by_key` (read only) and how many agents are erroring."""
        context = self._context
        if touched is None or context is None or context[0] != th or context[1] is not norms:
            self._context = (th, norms)
            self.by_key, self._by_agent, self._inputs, self._limits = {}, {}, {}, {}
            self._erroring = set()
            self._changed = None
            touched = rows.keys()
        by_key, by_agent, inputs, erroring = self.by_key, self._by_agent, self._inputs, self._erroring
        changed = self._changed
        for name in touched:
            row = rows.get(name)
            before = by_agent.get(name, ())
            if row is None:
                inputs.pop(name, None)
                self._limits.pop(name, None)
                erroring.discard(name)
                alerts: tuple[Alert, ...] = ()
            else:
                norm = norms.get(name) if name in days else None
                now_in = (*alert_inputs(row, th), norm)
                if inputs.get(name) == now_in:
                    continue  # the same figures: the same alerts, and the same erroring
                inputs[name] = now_in
                alerts, is_erroring = agent_alerts(row, th, self._limit_text(name, row))
                unusual = day_anomaly(name, row.spend_today, norm, th)
                if unusual is not None:
                    alerts = (*alerts, unusual)
                if is_erroring:
                    erroring.add(name)
                else:
                    erroring.discard(name)
            if alerts == before:
                continue  # equal alerts from other figures: the ones held stay, as the same objects
            if alerts:
                by_agent[name] = alerts
            else:
                by_agent.pop(name, None)
            kept = {alert.key for alert in alerts}
            for old in before:
                if old.key not in kept and by_key.get(old.key) is old:
                    del by_key[old.key]
                    if changed is not None:
                        changed.add(old.key)
            for alert in alerts:
                by_key[alert.key] = alert
                if changed is not None:
                    changed.add(alert.key)
        return by_key, len(erroring)

    def _limit_text(self, name: str, row: AgentRow) -> str | None:
        """`usd()` of the agent's budget limit, made again only when the limit changes: an agent over its
        budget has its row, and its alert's percentage, redone at each call it makes."""
        limit = row.budget.limit
        if limit is None:
            return None
        kept = self._limits.get(name)
        if kept is None or kept[0] != limit:
            kept = self._limits[name] = (limit, usd(limit))
        return kept[1]

    def take_changed(self) -> set[str] | None:
        """The keys of `by_key` added, changed or removed since the last call (None: any of them)."""
        changed, self._changed = self._changed, set()
        return changed


def fleet_agent_alerts(agents: Iterable[AgentRow], th: Thresholds) -> tuple[list[Alert], int]:
    """Every agent's own alerts at once, and how many are erroring (no cache, no history)."""
    alerts: list[Alert] = []
    erroring = 0
    for a in agents:
        found, is_erroring = agent_alerts(a, th)
        alerts += found
        erroring += is_erroring
    return alerts, erroring


def evaluate(per_agent: tuple[Iterable[Alert], int], providers: Iterable[ProviderRow], header: HeaderStats,
             reconciliation: Reconciliation | None, th: Thresholds,
             patterns: Iterable[tuple[str, str, str, str]] = ()) -> list[Alert]:
    """Every rule that holds now. `per_agent`: the agents' own alerts and how many agents are erroring
    (`fleet_agent_alerts`; the engine passes no alerts here and hands `AgentAlerts.by_key` to the book
    instead); `patterns`: (kind, trace, agent, figure) from live traces."""
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


def book_order(alert: Alert) -> tuple[int, datetime | None, str]:
    """Most severe first, then the oldest, then by key (keys are unique: no two alerts tie)."""
    return -alert.severity, alert.since, alert.key


class AlertBook:
    """Which alerts hold, since when, and which the operator has acknowledged.

    Kept in order from one update to the next: an update books only the alerts that came, went or
    changed (each in O(log n)), and the ordered tuple is made again only when one did."""

    def __init__(self) -> None:
        self.active: dict[str, Alert] = {}  # booked: with `since` and `acknowledged`
        self.acknowledged: set[str] = set()
        self._raw: dict[str, Alert] = {}  # each active alert as the rules last gave it
        self._rest: dict[str, Alert] = {}  # the last update's `alerts`, by key
        self._order = SortedKeyList(key=book_order)
        self._shown: tuple[Alert, ...] | None = ()  # `_order` as a tuple; None: to make again

    def update(self, alerts: Iterable[Alert], now: datetime, kept: Mapping[str, Alert] | None = None,
               kept_changed: Collection[str] | None = ()) -> tuple[tuple[Alert, ...], bool]:
        """The active alerts, most severe and oldest first, and whether a critical one is new.

        `alerts`: every alert that holds now, or, with `kept`, every one but those in `kept` (the
        agents' own, by key), of which only `kept_changed` are looked at: the keys added, changed or
        removed there since the last update (None: any may have been). Where both name a key, the one
        in `alerts` holds (and of two there, the later), but the others still ring if new or worse,
        as when every alert was booked in turn."""
        active, raw, order, acknowledged = self.active, self._raw, self._order, self.acknowledged
        kept = kept if kept is not None else {}
        new_critical = False
        rest: dict[str, Alert] = {}
        shadowed: list[Alert] = []  # alerts whose key a later one takes (two rules naming one key)
        for alert in alerts:
            if alert.key in rest:
                shadowed.append(rest[alert.key])
            elif alert.key in kept:
                shadowed.append(kept[alert.key])
            rest[alert.key] = alert
        forced: set[str] = set()
        for alert in shadowed:
            # Still judged against what was booked, as when every alert was booked in turn: one new or
            # worse rings, and one worse takes the acknowledgement from the key.
            before = active.get(alert.key)
            if before is None:
                new_critical = new_critical or alert.severity >= Severity.CRITICAL
            elif alert.severity > before.severity:
                if alert.key in acknowledged:
                    acknowledged.discard(alert.key)
                    forced.add(alert.key)
                new_critical = new_critical or alert.severity >= Severity.CRITICAL
        if kept_changed is None:
            candidates: Iterable[str] = active.keys() | kept.keys() | rest.keys()
        else:
            candidates = self._rest.keys() | rest.keys() | set(kept_changed)
        self._rest = rest
        for key in candidates:
            alert = rest[key] if key in rest else kept.get(key)
            before = active.get(key)
            if alert is None:
                if before is not None:  # cleared: it forgets its acknowledgement
                    order.remove(before)
                    del active[key], raw[key]
                    acknowledged.discard(key)
                    self._shown = None
                continue
            if before is not None:
                held = raw[key]
                if (held is alert or held == alert) and key not in forced:
                    continue  # the same alert: booked as it was
                since = before.since or now
                if alert.severity > before.severity:  # it got worse: ask again
                    acknowledged.discard(key)
                    new_critical = new_critical or alert.severity >= Severity.CRITICAL
                order.remove(before)
            else:
                since = now
                new_critical = new_critical or alert.severity >= Severity.CRITICAL
            booked = active[key] = replace(alert, since=since, acknowledged=key in acknowledged)
            raw[key] = alert
            order.add(booked)
            self._shown = None
        if self._shown is None:
            self._shown = tuple(order)
        return self._shown, new_critical

    def acknowledge(self, keys: Iterable[str] | None = None) -> None:
        """The given alerts, or all active ones."""
        chosen = set(self.active) if keys is None else set(keys) & set(self.active)
        self.acknowledged |= chosen
        for key in chosen:
            before = self.active[key]
            if not before.acknowledged:
                self._order.remove(before)
                self.active[key] = replace(before, acknowledged=True)
                self._order.add(self.active[key])
                self._shown = None
