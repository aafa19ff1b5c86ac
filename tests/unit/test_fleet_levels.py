"""The fleet's burn level has thresholds of its own (issue 18, point 4): one agent's $5/$15/$50 would
call a fleet of a dozen ordinary agents critical."""

from __future__ import annotations

from decimal import Decimal

import pytest
from pydantic import ValidationError

from costtop.config import Thresholds
from costtop.engine.budgets import FLEET_FIXED, fleet_levels
from costtop.engine.engine import Engine
from costtop.engine.snapshot import FleetLevels, Level
from test_engine import ALL, NOW, empty_baseline, redis_state, row


def test_the_fleets_levels_come_from_the_config_else_the_day_budget_else_the_fixed_rule() -> None:
    set_ = Thresholds(fleet_velocity_warning=Decimal(1), fleet_velocity_critical=Decimal(2),
                      fleet_velocity_emergency=Decimal(3))
    assert fleet_levels(set_, Decimal(1440)) == fleet_levels(set_, None) == FleetLevels(1, 2, 3)  # type: ignore[arg-type]
    # $1,440 a day: all of it gone in 12 h, 3 h, 1 h is $10, $40, $120 in five minutes.
    assert fleet_levels(Thresholds(), Decimal(1440)) == FleetLevels(10, 40, 120)  # type: ignore[arg-type]
    for no_budget in (None, Decimal(0), Decimal(-5)):
        assert fleet_levels(Thresholds(), no_budget) == FleetLevels(*FLEET_FIXED)


@pytest.mark.parametrize("given", [
    {"fleet_velocity_warning": Decimal(10)},  # one of three
    {"fleet_velocity_warning": Decimal(30), "fleet_velocity_critical": Decimal(20),
     "fleet_velocity_emergency": Decimal(40)},  # out of order
])
def test_fleet_thresholds_are_all_three_and_in_order(given: dict[str, Decimal]) -> None:
    with pytest.raises(ValidationError, match="fleet_velocity"):
        Thresholds(**given)


def header_level(spend_in_window: list[str], day_budget: Decimal | None) -> Level:
    engine = Engine(columns=ALL)
    engine.load(empty_baseline(), None, NOW)
    engine.ingest([row(f"agent-{i}", 30 + i, cost) for i, cost in enumerate(spend_in_window)])
    return engine.snapshot(NOW, redis_state(global_day_budget=day_budget)).header.velocity_level


def test_a_dozen_ordinary_agents_are_not_a_critical_fleet() -> None:
    """Twelve agents at $1.70 each in five minutes, $20.40 together: each is fine, and so is the fleet
    (one agent's thresholds called it critical), with or without a day budget of $5,000."""
    ordinary = ["1.70"] * 12
    assert header_level(ordinary, None) is Level.OK
    assert header_level(ordinary, Decimal(5000)) is Level.OK
    # The same fleet against a day budget of $500 would spend it all within 3 hours: critical.
    assert header_level(ordinary, Decimal(500)) is Level.CRITICAL
