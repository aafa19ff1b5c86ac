"""Budget states, burn-rate levels and forecasts. A missing, zero or negative budget is disabled, never
exceeded; a forecast with no burn, or past the budget's period, is "not in this period", never a
made-up time."""

from __future__ import annotations

from decimal import Decimal

from costtop.config import Thresholds
from costtop.engine.snapshot import BudgetState, BudgetView, FleetLevels, Level
from costtop.engine.windows import VELOCITY_SECONDS
from costtop.money import exact
from costtop.sources.numbers import in_range
from costtop.sources.records import RedisNumber, Unparsed

FIVE = Decimal(VELOCITY_SECONDS // 60)  # the burn-rate window, in minutes: its spend / FIVE is $ per minute


# Without a global day budget the fleet is judged by ten times one agent's default thresholds.
FLEET_FIXED = (Decimal(50), Decimal(150), Decimal(500))
# With a global day budget: the 5-minute spend at which all of it would be gone in 12, 3 and 1 hours.
FLEET_BUDGET_HOURS = (12, 3, 1)


def level_of(window_usd: Decimal | None, warning: Decimal, critical: Decimal, emergency: Decimal) -> Level:
    """More than `warning` / `critical` / `emergency` dollars in the 5-minute window."""
    if window_usd is None:
        return Level.UNKNOWN
    if window_usd > emergency:
        return Level.EMERGENCY
    if window_usd > critical:
        return Level.CRITICAL
    if window_usd > warning:
        return Level.WARNING
    return Level.OK


def velocity_level(window_usd: Decimal | None, thresholds: Thresholds) -> Level:
    """One agent's level, by the seed rule: more than $5 / $15 / $50 in the 5-minute window."""
    return level_of(window_usd, thresholds.velocity_warning, thresholds.velocity_critical,
                    thresholds.velocity_emergency)


def fleet_levels(thresholds: Thresholds, day_budget: Decimal | None) -> FleetLevels:
    """The fleet's levels: the config's, else from the global day budget (the pace that would spend it
    all in 12, 3 and 1 hours), else FLEET_FIXED. An agent's thresholds are for one agent: the whole
    fleet above $15 in five minutes is ordinary for a few dozen agents."""
    th = thresholds
    if th.fleet_velocity_warning is not None and th.fleet_velocity_critical is not None \
            and th.fleet_velocity_emergency is not None:
        return FleetLevels(th.fleet_velocity_warning, th.fleet_velocity_critical, th.fleet_velocity_emergency)
    if day_budget is not None and day_budget > 0:
        warning, critical, emergency = (day_budget * FIVE / (60 * hours) for hours in FLEET_BUDGET_HOURS)
        return FleetLevels(warning, critical, emergency)
    return FleetLevels(*FLEET_FIXED)


def budget_view(limit: RedisNumber, used: Decimal | None, warning: float, known: bool = True,
                per_minute: Decimal | None = None, period_left: float | None = None) -> BudgetView:
    """`known` is False when Redis could not be read: then every budget is unknown. With the burn
    rate (`per_minute`, dollars) and the seconds left in the budget's period, the view also says
    when the budget runs out at that rate."""
    if not known or isinstance(limit, Unparsed) or (limit is not None and not in_range(limit)):
        # Out of range is unknown, whoever built the state: `used / 1e-999999` overflows.
        return BudgetView(BudgetState.UNKNOWN, None, used)
    if limit is None or limit <= 0:
        return BudgetView(BudgetState.DISABLED, None, used)
    if used is None:
        return BudgetView(BudgetState.UNKNOWN, limit, None)
    fraction = used / limit
    if fraction >= 1:
        state = BudgetState.EXCEEDED
    elif fraction >= exact(warning):
        state = BudgetState.WARNING
    else:
        state = BudgetState.OK
    return BudgetView(state, limit, used, seconds_until_spent(limit, used, per_minute, period_left))


def seconds_until_spent(limit: Decimal, used: Decimal, per_minute: Decimal | None,
                        period_left: float | None) -> float | None:
    """0 when already spent; None when unknown, not burning, or lasting past the period's end."""
    if used >= limit:
        return 0.0
    if per_minute is None or per_minute <= 0 or period_left is None:
        return None
    seconds = float((limit - used) / per_minute * 60)
    return seconds if seconds <= period_left else None


def projected(spent: Decimal | None, per_minute: Decimal | None, period_left: float | Decimal) -> Decimal | None:
    """Spend at the end of the period if the current burn rate holds. `period_left` in seconds, as a
    float or as its exact Decimal (the same figure: for many rows, converted once)."""
    if spent is None or per_minute is None:
        return None
    return spent + per_minute * Decimal(period_left) / 60

