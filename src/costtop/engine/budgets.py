"""Budget states. A missing, zero or negative budget is disabled, never exceeded."""

from __future__ import annotations

from decimal import Decimal

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
    elif fraction >= Decimal(str(warning)):
        state = BudgetState.WARNING
    else:
        state = BudgetState.OK
    return BudgetView(state, limit, used)
