"""Tolerant parsing of numbers that other programs wrote."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from costtop.sources.records import Unparsed
from costtop.text import clean


def parse_usd(raw: bytes | str | None) -> Decimal | Unparsed | None:
    """A Redis decimal (INCRBYFLOAT drifts in the last digits); None when absent, Unparsed when bad."""
    if raw is None:
        return None
    text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else str(raw)
    try:
        value = Decimal(text.strip())
    except (InvalidOperation, ValueError):
        return Unparsed(clean(text, 40))
    if not value.is_finite():
        return Unparsed(clean(text, 40))
    return value


def finite_or_none(value: Decimal | None) -> Decimal | None:
    """NaN and infinite costs are unknown, not numbers to add up."""
    if value is None or not value.is_finite():
        return None
    return value
