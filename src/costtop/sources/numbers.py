"""Tolerant parsing of numbers that other programs wrote, and the one range every figure must lie in.

A `Decimal` parses `1e999999` without complaint, but the arithmetic after it does not: `x / 5` or
`used / limit` raise `decimal.Overflow`, `float(x)` is infinite, `int(x)` or `format(x, "f")` of
`1e99999999` builds a string of a hundred million digits and freezes the process for minutes. So no
number enters the engine unless it is within the bounds below; anything else is unknown (`Unparsed`
from Redis, a flagged cost from Postgres), never a crash and never a silent zero.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from costtop.sources.records import Unparsed
from costtop.text import clean

# No budget, counter or single cost is a quadrillion dollars (ten times the world's yearly output).
# Below it, a day of a million such figures still sums to 1e21, which the default 28-digit context
# quantizes to cents exactly, converts to float and formats without raising; above it lie only
# corrupt values and the exponents that freeze the process.
MAX_USD = Decimal("1e15")
# Redis' INCRBYFLOAT writes at most 17 decimals, so its drift (0.1 + 0.2 - 0.3) is never finer than
# 1e-17; a non-zero magnitude below 1e-18 was not written by a counter or a price, and as a budget
# it would make `used / limit` overflow.
MIN_USD = Decimal("1e-18")
# Counts (`calls:{day}`): whole, not negative, and below the same bound (1,000 calls a second for
# 31,000 years), so that `int()` of the value is cheap.
MAX_COUNT = 10**15
# What Redis and Postgres accept as a number: digits, one point, an exponent. Python's Decimal also
# takes `1_000`, `NaN` and `Infinity`; the gateway's `INCRBYFLOAT` and SQL do not, so neither do we.
NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
RAW_LIMIT = 400  # longer text is not a number anyone wrote on purpose: not parsed at all


def in_range(value: Decimal) -> bool:
    """Finite, and zero or with a magnitude in [MIN_USD, MAX_USD): a figure the engine may add up,
    divide and format. Compares exponents first, so a 100-million-digit exponent costs nothing."""
    if not value.is_finite():
        return False
    if value.is_zero():
        return True
    magnitude = value.copy_abs()
    return MIN_USD <= magnitude < MAX_USD


def _decimal(raw: bytes | str) -> tuple[Decimal | None, str]:
    """The value as SQL or Redis would read it, or None; with its text for an Unparsed."""
    text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else str(raw)
    stripped = text.strip()
    if len(stripped) > RAW_LIMIT or NUMBER.fullmatch(stripped) is None:
        return None, text
    try:
        return Decimal(stripped), text
    except (InvalidOperation, ValueError):
        return None, text


def parse_usd(raw: bytes | str | None) -> Decimal | Unparsed | None:
    """A Redis decimal (INCRBYFLOAT drifts in the last digits); None when absent, Unparsed when it is
    not a number or lies outside [MIN_USD, MAX_USD) (NaN, Infinity, `1e999999`, `1e-999999`)."""
    if raw is None:
        return None
    value, text = _decimal(raw)
    if value is None:
        return Unparsed(clean(text, 40))
    if not in_range(value):
        return Unparsed(f"out of range: {clean(text, 40)}")
    return value


def parse_count(raw: bytes | str | None) -> int | Unparsed | None:
    """A Redis counter (INCR): a whole number in [0, MAX_COUNT); None when absent, else Unparsed.
    `12.0` is twelve; `-5`, `0.5`, `1e-30` and `1e99999999` are not counts of calls."""
    if raw is None:
        return None
    value, text = _decimal(raw)
    if value is None:
        return Unparsed(clean(text, 40))
    if (value.is_signed() and not value.is_zero()) or not value.copy_abs() < MAX_COUNT:
        return Unparsed(f"out of range: {clean(text, 40)}")
    if value != value.to_integral_value():
        return Unparsed(f"not a whole number: {clean(text, 40)}")
    return int(value)


def finite_or_none(value: Decimal | None) -> Decimal | None:
    """NaN, infinite and out-of-range costs are unknown, not numbers to add up."""
    if value is None or not in_range(value):
        return None
    return value


MAX_LATENCY_MS = 2**31 - 1  # the contract's `latency_ms integer`; the windows keep latencies as int32
