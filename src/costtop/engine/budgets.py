"""Budget states, burn-rate levels and forecasts. A missing, zero or negative budget is disabled, never
exceeded; a forecast with no burn, or past the budget's period, is "not in this period", never a
made-up time."""

from __future__ import annotations

from decimal import Decimal

from costtop.config import Thresholds
from costtop.engine.snapshot import BudgetState, BudgetView, Level
from costtop.engine.windows import VELOCITY_SECONDS
from costtop.money import exact
from costtop.sources.numbers import in_range
from costtop.sources.records import RedisNumber, Unparsed

FIVE = Decimal(VELOCITY_SECONDS // 60)  # the burn-rate window, in minutes: its spend / FIVE is $ per minute


def velocity_level(window_usd: Decimal | None, thresholds: Thresholds) -> Level:
    """Seed rule: more than $5 / $15 / $50 in the 5-minute window."""
    if window_usd is None:
        return Level.UNKNOWN
    if window_usd > thresholds.velocity_emergency:
        return Level.EMERGENCY
    if window_usd > thresholds.velocity_critical:
        return Level.CRITICAL
    if window_usd > thresholds.velocity_warning:
        return Level.WARNING
    return Level.OK


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


def projected(spent: Decimal | None, per_minute: Decimal | None, period_left: float) -> Decimal | None:
    """Spend at the end of the period if the current burn rate holds."""
    if spent is None or per_minute is None:
        return None
    return spent + per_minute * Decimal(period_left) / 60

