"""Hostile LiteLLM data and requests, against the real PostgreSQL (LiteLLM's migration-built schema) and
Redis: what LiteLLM's columns can hold, and what a client can put in a request, never blinds the reader,
never shows a wrong value, and never makes the screen and the proxy callback name different agents."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import asyncpg
import pytest
from litellm.proxy._types import ProxyException, UserAPIKeyAuth
from redis.asyncio import Redis

from costtop.config import LiteLLMSettings, Settings
from costtop.integrations.litellm import CosttopCallback, logged_agent, request_agent
from costtop.refusals import refusal_message
from costtop.report import render
from costtop.session import Session
from costtop.sources import litellm_daily as daily
from costtop.sources.redis_state import RedisReader
from test_litellm_daily import TODAY, tables_of
from test_litellm_daily import litellm_db as litellm_db
from test_litellm_preset import Spend, loaded_engine, preset, read_rules
from test_litellm_preset import litellm_db as litellm_db_schema
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
    agents = (await loaded_engine(empty_db_url, now)).snapshot(now, NO_REDIS).agents
    assert [(a.calls_today, a.spend_today) for a in agents] == [(4, Decimal("0.75"))]


# Identity values that are not a JSON string: what a client can put in `spend_logs_metadata` (LiteLLM keeps
# it as sent, a number, an object, or the whole thing as a JSON string) or a key alias of another type.
ODD_IDENTITY = {
    "number": {"spend_logs_metadata": {"agent_id": 42}, "user_api_key_alias": "alias"},
    "boolean": {"spend_logs_metadata": {"agent_id": True}, "user_api_key_alias": "alias"},
    "object": {"spend_logs_metadata": {"agent_id": {"a": 1}}, "user_api_key_alias": "alias"},
    "array": {"spend_logs_metadata": {"agent_id": ["x"]}, "user_api_key_alias": "alias"},
    "json-text": {"spend_logs_metadata": json.dumps({"agent_id": "s"}), "user_api_key_alias": "alias"},
    "metadata-array": {"spend_logs_metadata": [{"agent_id": "s"}], "user_api_key_alias": "alias"},
    "alias-number": {"spend_logs_metadata": {"agent_id": ""}, "user_api_key_alias": 7,
                     "user_api_key_user_id": "owner"},
    "string": {"spend_logs_metadata": {"agent_id": "sl"}, "user_api_key_alias": "alias"},
}


async def test_the_screen_and_the_callback_name_the_same_agent_whatever_the_metadata_holds(empty_db_url) -> None:
    """The agent a kill names (the screen's, from the row) must be the agent the callback checks (from the
    request, and from the logging hook's kwargs), or `k` writes a key the proxy never reads. A value that is
    not a string names no agent on either side: the next identity source decides."""
    t = datetime.now(UTC) - timedelta(seconds=30)
    rows = [Spend(name, t, user=str(meta.get("user_api_key_user_id") or ""), extra={"metadata": json.dumps(meta)})
            for name, meta in ODD_IDENTITY.items()]
    got = await read_rules(empty_db_url, rows)
    lite = LiteLLMSettings()
    for name, meta in ODD_IDENTITY.items():
        screen = got[name]["agent_id"]
        proxy_sees = request_agent({"model": "m", "metadata": dict(meta)}, lite)
        logged = logged_agent({"litellm_params": {"metadata": dict(meta)}}, lite)
        assert (name, screen) == (name, proxy_sees) == (name, logged)
    assert {n: got[n]["agent_id"] for n in ("number", "json-text", "alias-number", "string")} == {
        "number": "alias", "json-text": "alias", "alias-number": "owner", "string": "sl"}


async def test_a_failure_that_echoes_the_marker_is_an_error_not_a_refusal(empty_db_url) -> None:
    """A provider's or the proxy's error can echo what a client wrote (a prompt, a model or tool name): a
    message holding "[costtop switch: killed]" from any other exception than the callback's `Refused` is
    an error, or a client could hide its failures from the error rates by wording them as kills."""
    t = datetime.now(UTC) - timedelta(seconds=30)
    forged = "litellm.BadRequestError: OpenAIException - Invalid 'messages': [costtop switch: killed] kill:agent:x"
    rows = [Spend("forged-kill", t, failed=True, spend=0, prompt=0, completion=0, error_message=forged,
                  error_class="BadRequestError"),
            Spend("forged-throttle", t, failed=True, spend=0, prompt=0, completion=0, error_class="APIError",
                  error_message=refusal_message("throttled", "throttle:agent:x")),
            Spend("real", t, failed=True, spend=0, prompt=0, completion=0, error_class="Refused",
                  error_message=refusal_message("killed", "kill:agent:x", "manual:ops:loop"))]
    got = await read_rules(empty_db_url, rows)
    assert {k: v["status"] for k, v in got.items()} == {"forged-kill": "error", "forged-throttle": "error",
                                                        "real": "killed"}


async def _spoil(conn: asyncpg.Connection, table: str, day: str, assignment: str) -> None:
    await conn.execute(f'UPDATE "{table}" SET {assignment} WHERE id = (SELECT id FROM "{table}" WHERE date = $1 '
                       "ORDER BY id LIMIT 1)", day)


@pytest.mark.parametrize("spend", ["'NaN'", "'Infinity'", "'-Infinity'", "1e300", "1e-30"])
async def test_a_daily_row_whose_spend_is_no_figure_leaves_the_range_to_the_spend_log(litellm_db, spend) -> None:
    """LiteLLM's daily `spend` is a double: NaN, Infinity or an absurd magnitude in one row made the month's
    closed days, a day's total and its model's spend NaN. Such a range is not answered from the table
    (None: the caller reads the spend log, which flags the bad row), as the spend log's cost rule."""
    tables = await tables_of(litellm_db)
    await _spoil(litellm_db, daily.USER_TABLE, "2026-11-10", f"spend = {spend}")
    await _spoil(litellm_db, daily.AGENT_TABLE, "2026-11-11", f"spend = {spend}")
    assert await daily.fleet_spend(litellm_db.fetch, tables, date(2026, 11, 1), TODAY, TODAY) is None
    assert await daily.day_spend(litellm_db.fetch, tables, ["agent_id"], "2026-11-10", TODAY) is None
    assert await daily.agent_days(litellm_db.fetch, tables, ["agent_id"], date(2026, 11, 1), TODAY, TODAY) is None
    other = await daily.day_spend(litellm_db.fetch, tables, ["agent_id"], "2026-11-11", TODAY)
    assert other is not None and other.total.is_finite() and other.agents is None
    # A day the bad rows are not in still answers, and a negative spend is a figure (summed, as the log's).
    assert await daily.fleet_spend(litellm_db.fetch, tables, date(2026, 11, 12), TODAY, TODAY) is not None
    await _spoil(litellm_db, daily.USER_TABLE, "2026-11-13", "spend = -1")
    got = await daily.day_spend(litellm_db.fetch, tables, ["agent_id"], "2026-11-13", TODAY)
    assert got is not None and got.total.is_finite()


async def test_a_daily_row_whose_date_is_not_a_day_leaves_the_range_to_the_spend_log(litellm_db) -> None:
    """`date` is text: '2026-11-12junk' sorts inside November and reached the week's strptime (a
    traceback). A range holding text that is no day is not answered from the table."""
    tables = await tables_of(litellm_db)
    await _spoil(litellm_db, daily.AGENT_TABLE, "2026-11-12", "date = '2026-11-12junk'")
    assert await daily.agent_days(litellm_db.fetch, tables, ["agent_id"], date(2026, 11, 1), TODAY, TODAY) is None
    await _spoil(litellm_db, daily.USER_TABLE, "2026-11-12", "date = '2026-11-12 '")
    assert await daily.fleet_spend(litellm_db.fetch, tables, date(2026, 11, 1), TODAY, TODAY) is None
    assert await daily.fleet_spend(litellm_db.fetch, tables, date(2026, 11, 13), TODAY, TODAY) is not None


@pytest.mark.parametrize("kind", ["hash", "list", "set"])
async def test_a_switch_key_of_another_type_is_on_for_the_callback_as_on_the_screen(redis: Redis, redis_url: str,
                                                                                 kind: str) -> None:
    """costtop's screen shows a `kill:` or `throttle:` key holding a hash (a hand-written HSET) as a switch
    that is on, its value unknown; MGET answers nil for it, so the callback let the agent's calls through
    while the screen said it was killed. The callback now reads such a key as on too."""
    write = {"hash": lambda k: redis.hset(k, "by", "adam"), "list": lambda k: redis.rpush(k, "adam"),
             "set": lambda k: redis.sadd(k, "adam")}[kind]
    await write("kill:agent:odd")
    state = await RedisReader(Settings(redis_url=redis_url), redis).read()
    assert [(s.scope, s.target) for s in state.switches] == [("agent", "odd")]  # the screen: killed
    cb = CosttopCallback(Settings(redis_url=redis_url, litellm=LiteLLMSettings(throttle_per_minute=1)),
                         router=lambda: None)
    try:
        data = {"model": "m", "metadata": {"agent_id": "odd"}}
        with pytest.raises(ProxyException) as info:
            await cb.async_pre_call_hook(UserAPIKeyAuth(), None, data, "acompletion")
        assert info.value.code == "403" and "kill:agent:odd" in info.value.message
        await write("throttle:agent:slow")
        slow = {"model": "m", "metadata": {"agent_id": "slow"}}
        assert await cb.async_pre_call_hook(UserAPIKeyAuth(), None, slow, "acompletion") is slow
        with pytest.raises(ProxyException) as info:
            await cb.async_pre_call_hook(UserAPIKeyAuth(), None, slow, "acompletion")
        assert info.value.code == "429"
        other = {"model": "m", "metadata": {"agent_id": "fine"}}
        assert await cb.async_pre_call_hook(UserAPIKeyAuth(), None, other, "acompletion") is other
    finally:
        await cb.aclose()


async def test_a_report_on_litellms_database_without_costtops_audit_table_says_so(empty_db_url) -> None:
    """A LiteLLM database where `costtop db init` never ran has no audit table: the report said
    "LiteLLM_SpendLogs changed while costtop ran (... costtop_audit does not exist)", a wrong reason, and
    made the reader learn its columns again."""
    await litellm_db_schema(empty_db_url, None)
    settings = preset(empty_db_url)
    yesterday = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%d")
    records = await Session.live(settings).read_day(yesterday)
    assert records.audit == "not there: no table public.costtop_audit (`costtop db init` creates it)"
    assert "changed while costtop ran" not in render(settings, records)


async def test_a_real_proxy_without_end_user_tracking_checks_the_agent_its_rows_name(servers, tmp_path, redis) -> None:
    """The same against LiteLLM itself: with end-user tracking off, the row names no end user and the kill
    that refuses the call is the key owner's (the master key's `default_user_id`), the agent the screen shows."""
    import asyncio

    import httpx

    from litellm_proxy import start_proxy

    proxy = start_proxy(tmp_path / "proxy", servers.redis.url,
                        litellm_settings={"disable_end_user_cost_tracking": True})
    try:
        await redis.set("kill:agent:customer-9", "manual:tester:end-user")
        body = {"model": "claude", "messages": [{"role": "user", "content": "hi"}], "user": "customer-9"}
        async with httpx.AsyncClient(base_url=proxy.url, headers=proxy.headers(), timeout=30.0) as client:
            assert (await client.post("/v1/chat/completions", json=body)).status_code == 200
            for _ in range(300):
                if proxy.rows():
                    break
                await asyncio.sleep(0.05)
            row = proxy.rows()[0]
            assert (row["end_user"], row["user"]) == ("", "default_user_id")
            await redis.set("kill:agent:default_user_id", "manual:tester:end-user")
            response = await client.post("/v1/chat/completions", json=body)
            assert response.status_code == 403 and "kill:agent:default_user_id" in response.json()["error"]["message"]
    finally:
        proxy.stop()


async def test_a_blank_user_names_no_agent_on_either_side(servers, tmp_path, redis) -> None:
    """A request's `user` of blanks: LiteLLM drops it (its row's end_user is ''), so the screen names the key
    owner; the callback read the raw field and checked `kill:agent:   `, a key no screen shows."""
    import asyncio

    import httpx

    from litellm_proxy import start_proxy

    blank = {"model": "m", "user": "   ", "metadata": {"user_api_key_user_id": "owner"}}
    assert request_agent(blank, LiteLLMSettings()) == "owner"
    proxy = start_proxy(tmp_path / "proxy", servers.redis.url)
    try:
        await redis.set("kill:agent:   ", "manual:tester:blank")
        body = {"model": "claude", "messages": [{"role": "user", "content": "hi"}], "user": "   "}
        async with httpx.AsyncClient(base_url=proxy.url, headers=proxy.headers(), timeout=30.0) as client:
            assert (await client.post("/v1/chat/completions", json=body)).status_code == 200
            for _ in range(300):
                if proxy.rows():
                    break
                await asyncio.sleep(0.05)
            assert (proxy.rows()[0]["end_user"], proxy.rows()[0]["user"]) == ("", "default_user_id")
            await redis.set("kill:agent:default_user_id", "manual:tester:blank")
            assert (await client.post("/v1/chat/completions", json=body)).status_code == 403
    finally:
        proxy.stop()
