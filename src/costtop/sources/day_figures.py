"""The day's figures of the start-up baseline from layered groups (rollup/read.py): per agent and per
(model, provider) today, per agent and minute over the last hour, the fleet per hour over 24 hours,
each agent's last two clock hours, and the calls per minute and hour the next resynchronisation holds
its counts against. Pure: groups in, records out.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from costtop.rollup.plan import floor
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


def _sum(groups: Iterable[Group], key) -> dict:  # type: ignore[no-untyped-def]
    out: dict[object, Group] = {}
    for g in groups:
        k = key(g)
        found = out.get(k)
        if found is None:
            out[k] = Group(g.agent, g.provider, g.model, g.bucket, g.cost, g.priced, g.calls, g.errors, g.unusable,
                           g.negative, g.tin, g.tout, g.cached, g.flat_tin, g.flat_tout, g.flat_cached)
        else:
            found.add(g)
    return out


def day_figures(hour_groups: list[Group], minute_groups: list[Group], day_start: datetime, day_end: datetime,
                minute_from: datetime, agent_hours_from: datetime) -> DayFigures:
    """`hour_groups` per hour before the last clock hour began, `minute_groups` per minute since then."""
    every = [*hour_groups, *minute_groups]
    today = [g for g in every if day_start <= g.bucket < day_end]
    day = day_start.strftime("%Y-%m-%d")
    days = tuple(DayAggregate(agent, day, g.known_cost, g.calls, g.priced, g.errors, g.tin, g.cached, g.unusable,
                              g.negative)
                 for agent, g in _sum(today, lambda g: g.agent).items())
    usage = tuple(UsageAggregate(model, provider, g.known_cost, g.calls, g.priced, g.errors, g.tin, g.tout, g.cached,
                                 g.flat_tin, g.flat_tout, g.flat_cached, g.unusable)
                  for (model, provider), g in _sum(today, lambda g: (g.model, g.provider)).items())
    recent = [g for g in minute_groups if g.bucket >= minute_from]
    minutes = tuple(MinuteAggregate(agent, int(minute.timestamp()) // 60, g.known_cost, g.calls, g.errors)
                    for (agent, minute), g in _sum(recent, lambda g: (g.agent, g.bucket)).items())
    by_hour = _sum(every, lambda g: floor(g.bucket, "hour"))
    hours = tuple((int(hour.timestamp()) // 3600, g.cost) for hour, g in by_hour.items() if g.priced)
    latest = [g for g in minute_groups if g.bucket >= agent_hours_from]
    agent_hours = tuple((agent, int(hour.timestamp()) // 3600, g.cost)
                        for (agent, hour), g in _sum(latest, lambda g: (g.agent, floor(g.bucket, "hour"))).items()
                        if g.priced)
    per_minute = {int(g.bucket.timestamp()) // 60: g.calls for g in _sum(recent, lambda g: g.bucket).values()}
    per_hour = {int(hour.timestamp()) // 3600: g.calls for hour, g in by_hour.items()}
    return DayFigures(days, usage, minutes, hours, agent_hours, per_minute, per_hour)
