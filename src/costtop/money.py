"""Money and fractions as the screen and SQL agree on them, shared by the engine and the widgets."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import cache

UNKNOWN = "?"
NO_BUDGET = "none"  # no budget set (missing, zero or negative); one that cannot be read is UNKNOWN


def usd(value: Decimal | None, places: int = 2) -> str:
    """Dollars rounded half away from zero, as Postgres' round(numeric, 2) does; unknown as "?"."""
    if value is None or not value.is_finite():
        return UNKNOWN
    quantum = Decimal(1).scaleb(-places)
    try:
        rounded = value.quantize(quantum, rounding=ROUND_HALF_UP)
    except InvalidOperation:  # more digits than the context holds: an absurd sum, still shown as one
        # copy_abs(), not abs(): abs() applies the context, and past its Emax (1e1000000) overflows.
        return f"{'-' if value.is_signed() else ''}${value.copy_abs():.3e}"
    sign = "-" if rounded < 0 else ""
    return f"{sign}${abs(rounded):,.{places}f}"


@cache
def exact(fraction: float) -> Decimal:
    """0.8 as the Decimal 0.8, not 0.8000000000000000444: "exactly 80 %" must be a warning."""
    return Decimal(str(fraction))
