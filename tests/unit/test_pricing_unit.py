"""The unit half of tests/integration/test_pricing.py: the tests that need no server and no app."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from costtop.pricing.catalog import Price, shadow_cost, shipped

M = Decimal(1_000_000)


def test_models_are_matched_tolerantly_and_unknown_ones_have_no_price() -> None:
    catalog = shipped()
    assert catalog.source and catalog.as_of
    for name in ("gpt-4o", "openai/gpt-4o", "GPT-4o-2024-08-06", "gpt-4o@2024-08-06", "azure/gpt-4o"):
        found = catalog.find(name)
        assert found is not None and found[0] == "openai/gpt-4o", name
    assert catalog.find("gpt-4o-mini")[0] == "openai/gpt-4o-mini"  # not taken for gpt-4o
    assert catalog.find("claude-3-5-haiku-20241022")[0] == "anthropic/claude-3.5-haiku"
    assert catalog.find("claude-sonnet-4-20250514")[0] == "anthropic/claude-sonnet-4"
    assert catalog.find("my-finetune-v3") is None and catalog.find(None) is None and catalog.find("") is None


def test_shadow_cost_charges_cached_input_at_the_cache_price() -> None:
    price = Price(Decimal(3) / M, Decimal(15) / M, Decimal("0.3") / M)
    # 10,000 in of which 4,000 cached, 1,000 out: 6,000 * $3 + 4,000 * $0.30 + 1,000 * $15 per 1M.
    assert shadow_cost(price, 10_000, 1_000, 4_000) == Decimal("0.018") + Decimal("0.0012") + Decimal("0.015")
    no_cache_price = Price(Decimal(3) / M, Decimal(15) / M)
    assert shadow_cost(no_cache_price, 10_000, 1_000, 4_000) == Decimal("0.045")


def test_the_catalog_prices_flat_rate_calls_only_and_says_no_price_when_it_cannot() -> None:
    from costtop.engine.engine import Engine
    from costtop.sources.records import Baseline, CallRecord, RedisState

    now = datetime(2026, 11, 22, 12, tzinfo=UTC)
    engine = Engine(columns=("agent_id", "tool_name", "latency_ms", "created_at", "cost_usd", "model",
                             "tokens_in", "tokens_out", "cached_tokens"))
    engine.use_catalog(shipped())
    engine.load(Baseline("2026-11-22", (), Decimal(0), "2026-11", (), ()))
    row = lambda key, model, cost: CallRecord(  # noqa: E731
        key, now, "a", "llm", 100, None, model, 1_000_000, 100_000, 0, None if cost is None else Decimal(cost),
        "success")
    engine.ingest([row(1, "gpt-4o", None), row(2, "gpt-4o", "0.01"), row(3, "house-model", None)])
    snap = engine.snapshot(now, RedisState((), {}, None, None))
    by = {m.model: m for m in snap.models}
    # The recorded $0.01 stays the spend; the flat-rate call is priced at list as an estimate apart.
    assert by["gpt-4o"].spend_today == Decimal("0.01") and snap.header.spend_today == Decimal("0.01")
    assert by["gpt-4o"].shadow_cost == Decimal("2.5") + Decimal("1.0") and by["gpt-4o"].priced_as == "openai/gpt-4o"
    assert by["house-model"].shadow_cost is None and by["house-model"].flat_calls == 1
