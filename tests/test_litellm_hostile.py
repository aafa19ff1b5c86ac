"""Hostile LiteLLM data and requests, against the real PostgreSQL (LiteLLM's migration-built schema) and
Redis: what LiteLLM's columns can hold, and what a client can put in a request, never blinds the reader,
never shows a wrong value, and never makes the screen and the proxy callback name different agents."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from costtop.engine.engine import Engine
from costtop.sources.postgres import PostgresReader
from test_litellm_preset import Spend, insert, litellm_db, preset, read_rules
from test_sources_postgres import NO_REDIS


async def test_token_counts_at_the_integer_limit_do_not_blind_the_reader(empty_db_url) -> None:
    """`prompt_tokens` and `completion_tokens` are `integer`: the unpriced-call rule must not add them in
    integer (2^31-1 + 2^31-1 failed every read with "integer out of range"). Tokens that are not zero,
    negative ones included, with spend 0 are an unpriced call: unknown, never a true $0."""
    now = datetime.now(UTC)
    t = now - timedelta(seconds=30)
    top = 2**31 - 1
    rows = [Spend("max", t, prompt=top, completion=top, spend=0.5, extra={"total_tokens": 0}),
            Spend("max-unpriced", t, prompt=top, completion=top, spend=0, extra={"total_tokens": 0}),
            Spend("negative", t, prompt=-5, completion=0, spend=0, extra={"total_tokens": 0}),
            Spend("ok", t, spend=0.25)]
    got = await read_rules(empty_db_url, rows)
    assert {k: v["cost_usd"] for k, v in got.items()} == {"max": Decimal("0.5"), "max-unpriced": None,
                                                          "negative": None, "ok": Decimal("0.25")}
    reader = PostgresReader(preset(empty_db_url))
    try:
        await reader.connect()
        assert reader.columns is not None
        engine = Engine(columns=reader.columns.present)
        engine.load(await reader.baseline(now))
        agents = engine.snapshot(now, NO_REDIS).agents
    finally:
        await reader.close()
    assert [(a.calls_today, a.spend_today) for a in agents] == [(4, Decimal("0.75"))]
