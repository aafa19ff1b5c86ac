"""The unit half of tests/integration/test_numbers.py: the tests that need no server and no app."""

from __future__ import annotations

from decimal import Decimal

import pytest

from costtop.sources.numbers import parse_count, parse_usd
from costtop.sources.records import Unparsed

# `calls:{day}` must be a whole number of calls in [0, 1e15); everything else is unknown.
CALLS: dict[str, int | None] = {" 12 ": 12, "-0": 0, "12.0": 12, "-5": None, "0.5": None, "1e-999999": None,
                                "1e99999999": None, "1e5000": None, "NaN": None, "1e15": None}


@pytest.mark.parametrize("raw", list(CALLS))
def test_a_calls_counter_is_a_whole_count_or_unknown(raw: str) -> None:
    got = parse_count(raw)
    assert got == CALLS[raw] if CALLS[raw] is not None else isinstance(got, Unparsed)


def test_parse_usd_keeps_what_redis_writes() -> None:
    """INCRBYFLOAT drift and plain figures stay figures: the range flags only nonsense."""
    assert parse_usd(b"0.30000000000000004") == Decimal("0.30000000000000004")
    assert parse_usd(b"0.00000000000000006") == Decimal("6e-17")
    assert parse_usd(b"10.5") == Decimal("10.5") and parse_usd(b"1.5e+3") == Decimal(1500)
    assert parse_usd(None) is None
