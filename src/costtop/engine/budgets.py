"""Budget states. A missing, zero or negative budget is disabled, never exceeded."""

from __future__ import annotations

from decimal import Decimal
from functools import cache

from costtop.engine.snapshot import BudgetState, BudgetView
from costtop.sources.records import RedisNumber, Unparsed


def budget_view(limit: RedisNumber, used: Decimal | None, warning: float, known: bool = True) -> BudgetView:
    """`known` is False when Redis could not be read: then every budget is unknown."""
    if not known or isinstance(limit, Unparsed):
        return BudgetView(BudgetState.UNKNOWN, None, used)
    if limit is None or limit <= 0:
        return BudgetView(BudgetState.DISABLED, None, used)
    if used is None:
        return BudgetView(BudgetState.UNKNOWN, limit, None)
    fraction = used / limit
    if fraction >= 1:
        state = BudgetState.EXCEEDED
    elif fraction >= _exact(warning):
        state = BudgetState.WARNING
    else:
        state = BudgetState.OK
    return BudgetView(state, limit, used)


@cache
def _exact(fraction: float) -> Decimal:
    """0.8 as the Decimal 0.8, not 0.8000000000000000444: "exactly 80 %" must be a warning."""
    return Decimal(str(fraction))
