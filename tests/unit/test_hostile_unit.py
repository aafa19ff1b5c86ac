"""The unit half of tests/integration/test_hostile.py: the tests that need no server and no app."""

from __future__ import annotations

import re
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from costtop.demo.screenshots import NOW
from costtop.engine.engine import Engine
from costtop.money import usd
from costtop.sources.records import Baseline, CallRecord
from costtop.text import clean
from costtop.ui.widgets.alert_panel import alerts_text

DAY = "2026-11-22"
ALL = ("agent_id", "tool_name", "latency_ms", "created_at", "cost_usd", "status", "provider", "model",
       "tokens_in", "tokens_out", "cached_tokens", "trace_id")
# Nothing from data may put these on screen: C0 and C1 controls, DEL, bidi and zero-width characters.
FORBIDDEN = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff\ud800-\udfff]")
NASTY = ["\x1b]0;pwned\x07", "\x1b[2J", "\x1b]52;c;ZXZpbA==\x07", "[/bold]", "[@click=app.quit]q[/]",
         "[link=https://evil.example]x[/link]", "\u202eevil", "a\u200bb", "\x00\x9b31m", "\ud800", "é" * 3]

hostile_text = st.one_of(
    st.text(max_size=40),
    st.sampled_from(NASTY),
    st.builds(lambda a, b: a + b, st.sampled_from(NASTY), st.text(max_size=10)),
    st.text(alphabet=st.characters(codec=None, categories=("Cc", "Cf", "Zl", "Zp", "Cs")), max_size=20),
    st.just("x" * 1_000_000),
)
# Numbers as another program may have written them: any mantissa, exponents up to ±10**8 (a Decimal
# parses `1e99999999`, but int() or format() of it builds a 100-million-digit string).
huge_number_text = st.builds(
    lambda sign, mantissa, exponent: f"{sign}{mantissa}e{exponent}",
    st.sampled_from(["", "-", "+"]),
    st.one_of(st.integers(0, 10**40).map(str), st.sampled_from(["0.1", "9.99", "1.", ".5", "12345678901234567890.5"])),
    st.one_of(st.integers(-(10**8), 10**8), st.sampled_from([999999, -999999, 5000, -5000, 15, 16, -18, -19])),
)


money = st.one_of(
    st.none(),
    st.decimals(allow_nan=True, allow_infinity=True),
    huge_number_text.map(Decimal),
    st.sampled_from([Decimal("1e30"), Decimal("-1e30"), Decimal("-0.01"), Decimal("1e-30"), Decimal("NaN"),
                     Decimal("sNaN"), Decimal("Infinity")]),
)


def assert_safe(text: str) -> None:
    """Line breaks between lines are the widget's own; inside a line nothing may act on the terminal."""
    for line in text.split("\n"):
        bad = FORBIDDEN.search(line)
        assert bad is None, f"{bad.group()!r} reached the screen"


def test_an_id_inside_an_alert_figure_is_shown_visibly_never_raw() -> None:
    """Found by the suite above on a fresh clone: a trace id `\x1f` with a context explosion reached
    the screen raw, inside the alert's figure (`trace \x1f: input tokens ...`)."""
    rows = [CallRecord(0, NOW, "a", "llm", None, tokens_in=tokens, trace_id="\x1f") for tokens in (0, 100_001)]
    engine = Engine(columns=ALL)
    engine.load(Baseline(DAY, (), Decimal(0), DAY[:7], (), ()))
    engine.ingest(rows)
    text = alerts_text(engine.snapshot(NOW, None)).plain
    assert "trace <U+001F>:" in text
    assert_safe(text)


@given(st.one_of(money, st.decimals()))
def test_money_is_a_figure_or_unknown(value: Decimal | None) -> None:
    shown = usd(value)
    assert shown == "?" if value is None or not value.is_finite() else shown.lstrip("-").startswith("$")


@given(st.one_of(hostile_text, st.binary(max_size=50)))
def test_clean_leaves_nothing_a_terminal_would_act_on(value: str | bytes) -> None:
    text = clean(value)
    assert_safe(text)
    assert len(text) <= 200
