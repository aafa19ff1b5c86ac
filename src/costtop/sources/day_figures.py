"""The day's figures of the start-up baseline from layered groups (rollup/read.py): per agent and per
(model, provider) today, per agent and minute over the last hour, the fleet per hour over 24 hours,
each agent's last two clock hours, and the calls per minute and hour the next resynchronisation holds
its counts against. Pure: groups in, records out.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from costtop.rollup.read import Group
from costtop.sources.records import DayAggregate, MinuteAggregate, UsageAggregate


@dataclass(frozen=True, slots=True)
class DayFigures:
    days: tuple[DayAggregate, ...]
    usage: tuple[UsageAggregate, ...]
    minutes: tuple[MinuteAggregate, ...]
    hours: tuple[tuple[int, Decimal], ...]
    agent_hours: tuple[tuple[str, int, Decimal], ...]
    calls_per_minute: dict[int, int]
    calls_per_hour: dict[int, int]


def _sum(groups: Iterable[Group], key: Callable[[Group], Hashable]) -> dict[Hashable, Group]:
    out: dict[Hashable, Group] = {}
    for g in groups:
        k = key(g)
        found = out.get(k)
        if found is None:
            out[k] = g.copy()
        else:
            found.add(g)
    return out


def day_figures(hours: list[Group], last_hours: list[Group], agent_minutes: list[Group], day_start: datetime,
                day_end: datetime, minute_from: datetime) -> DayFigures:
    """`hours` per key and hour up to the last clock hour, `last_hours` per key and hour from then on, and
    `agent_minutes` per agent and minute from then on (rollup/read.py)."""
    every = [*hours, *last_hours]
    today = [g for g in every if day_start <= g.bucket < day_end]
    day = day_start.strftime("%Y-%m-%d")
    days = tuple(DayAggregate(agent, day, g.known_cost, g.calls, g.priced, g.errors, g.tin, g.cached, g.unusable,
                              g.negative)
                 for agent, g in _sum(today, lambda g: g.agent).items())
    usage = tuple(UsageAggregate(model, provider, g.known_cost, g.calls, g.priced, g.errors, g.tin, g.tout, g.cached,
                                 g.flat_tin, g.flat_tout, g.flat_cached, g.unusable)
                  for (model, provider), g in _sum(today, lambda g: (g.model, g.provider)).items())
    recent = [g for g in agent_minutes if g.bucket >= minute_from]
    minutes = tuple(MinuteAggregate(g.agent, int(g.bucket.timestamp()) // 60, g.known_cost, g.calls, g.errors)
                    for g in recent)
    by_hour = _sum(every, lambda g: g.bucket)
    hours_spend = tuple((int(hour.timestamp()) // 3600, g.cost) for hour, g in by_hour.items() if g.priced)
    agent_hours = tuple((agent, int(hour.timestamp()) // 3600, g.cost)
                        for (agent, hour), g in _sum(last_hours, lambda g: (g.agent, g.bucket)).items() if g.priced)
    per_minute: dict[int, int] = {}
    for g in recent:
        minute = int(g.bucket.timestamp()) // 60
        per_minute[minute] = per_minute.get(minute, 0) + g.calls
    per_hour = {int(hour.timestamp()) // 3600: g.calls for hour, g in by_hour.items()}
    return DayFigures(days, usage, minutes, hours_spend, agent_hours, per_minute, per_hour)
