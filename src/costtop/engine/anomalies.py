"""Spend that is unusual for the agent itself, beside the fixed thresholds (seed: "Anomaly Detection").

- the day: an agent's spend today above the mean of its trailing seven days plus two standard
  deviations (the sample deviation, the cautious one over a week);
- the hour: its spend this clock hour (UTC) more than three times its spend the hour before.

Statistics, not ML. No history is no anomaly: the day rule needs `anomaly_min_days` days from the
agent's first day with rows in the week (later idle days count as $0), and the hour rule needs spend in
the hour before. Below `anomaly_min_usd` nothing is unusual: $0.04 after $0.01 is not news. The norms
are computed once per history read (once a day), so a refresh only compares.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from costtop.config import Thresholds
from costtop.engine.snapshot import Alert, Severity
from costtop.money import usd
from costtop.sources.records import SpendHistory


@dataclass(frozen=True, slots=True)
class DayNorm:
    mean: Decimal
    limit: Decimal  # the mean plus `anomaly_sigmas` standard deviations
    days: int


def day_norms(history: SpendHistory, th: Thresholds) -> dict[str, DayNorm]:
    """Each agent's usual day, from the days since its first one in the history."""
    by_agent: dict[str, dict[int, Decimal]] = {}
    for agent, day, cost in history.sums:
        days = by_agent.setdefault(agent, {})
        days[day] = days.get(day, Decimal(0)) + cost
    norms = {}
    for agent, days in by_agent.items():
        values = [days.get(d, Decimal(0)) for d in range(min(days), history.days)]
        if len(values) < max(2, th.anomaly_min_days):
            continue
        mean = sum(values, Decimal(0)) / len(values)
        norms[agent] = DayNorm(mean, mean + th.anomaly_sigmas * statistics.stdev(values, mean), len(values))
    return norms


def day_anomaly(agent: str, today: Decimal | None, norm: DayNorm | None, th: Thresholds) -> Alert | None:
    """One agent's day against its norm (None: no norm, or today's spend unknown)."""
    if norm is None or today is None or today <= norm.limit or today < th.anomaly_min_usd:
        return None
    return Alert(f"anomaly-day:{agent}", "unusual day", Severity.WARNING, agent,
                 f"{usd(today)} today; {norm.days}-day mean {usd(norm.mean)}, usual up to {usd(norm.limit)}",
                 agent=agent)


def day_anomalies(norms: Mapping[str, DayNorm], spend_today: Mapping[str, Decimal], th: Thresholds) -> list[Alert]:
    found = (day_anomaly(agent, spend_today.get(agent), norm, th) for agent, norm in norms.items())
    return [alert for alert in found if alert is not None]


def hour_anomalies(before: Mapping[str, Decimal], now: Mapping[str, Decimal], th: Thresholds) -> list[Alert]:
    """`before`, `now`: each agent's spend the hour before and this hour so far."""
    alerts = []
    for agent, spent in now.items():
        previous = before.get(agent)
        if previous and previous > 0 and spent > previous * th.anomaly_hour_factor and spent >= th.anomaly_min_usd:
            alerts.append(Alert(f"anomaly-hour:{agent}", "hour jump", Severity.WARNING, agent,
                                f"{usd(spent)} this hour, {usd(previous)} the hour before "
                                f"({spent / previous:.1f}x)", agent=agent))
    return alerts
