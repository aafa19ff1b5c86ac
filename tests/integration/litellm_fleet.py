"""A LiteLLM deployment's rows, written as LiteLLM writes them: each call to `LiteLLM_SpendLogs`, and its
roll-up into the daily tables the way LiteLLM's DB writer makes it (litellm/proxy/db/
db_spend_update_writer.py and daily_spend_bulk_upsert.py, 1.108):

- the spend log's `user` is the key owner's user id or '' (never NULL), `end_user` the request's `user`
  field or '', `agent_id` the request's agent or NULL;
- a daily row per (entity, date, api_key, model, custom_llm_provider, mcp tool, endpoint), every one of
  them stored NULL-free ('' for None), `spend` summed as a double in the order the calls came;
- `date` is the call's startTime cut at 'T' (startTime holds UTC); the user table gets every call
  (user_id '' without an owner), the agent table only calls with an agent_id, the end-user table only
  calls with a non-empty end user.

Only the tests build these; nothing here runs against a real LiteLLM.
"""

from __future__ import annotations

import json
import random
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

ROUTES = (("claude-sonnet-4", "anthropic", 3e-6, 15e-6), ("gpt-4o", "openai", 2.5e-6, 10e-6),
          ("gpt-4o-mini", "openai", 0.15e-6, 0.6e-6), ("gemini-2.5-pro", "vertex_ai", 1.25e-6, 10e-6))
ENDPOINT = "/chat/completions"  # ROUTE_ENDPOINT_MAPPING["acompletion"]
COUNTERS = ("prompt_tokens", "completion_tokens", "api_requests", "successful_requests", "failed_requests")


@dataclass(frozen=True)
class LiteLLMCall:
    request_id: str
    start: datetime  # naive, UTC: what LiteLLM stores in "startTime"
    api_key: str
    model: str
    provider: str
    prompt_tokens: int
    completion_tokens: int
    spend: float
    user: str  # '' without a key owner
    end_user: str  # '' without one
    agent_id: str | None
    key_alias: str | None
    status: str  # 'success' or 'failure'


def make_calls(rng: random.Random, days: list[datetime], per_day: int) -> list[LiteLLMCall]:
    """Calls spread over each of `days` (naive UTC midnights), priced per token as LiteLLM prices them,
    some failed (spend 0), some without an owner, an end user or an agent."""
    calls = []
    for day in days:
        for _ in range(per_day):
            model, provider, price_in, price_out = rng.choice(ROUTES)
            tin, tout = rng.randrange(10, 20_000), rng.randrange(1, 2_000)
            failed = rng.random() < 0.1
            agent = rng.choice(("planner", "coder", "reviewer", None))
            calls.append(LiteLLMCall(
                request_id=f"chatcmpl-{uuid.UUID(int=rng.getrandbits(128))}",
                start=day + timedelta(seconds=rng.randrange(0, 86_400), milliseconds=rng.randrange(1000)),
                api_key=rng.choice(("88dc28d0f030c55ed4ab77ed8faf098196cb1c05df778539800c9f1243fe6b4b",
                                    "5b2b4a6a8c0f1e9d7a3c2b1e0f9d8c7b6a5e4d3c2b1a0f9e8d7c6b5a4e3d2c1b")),
                model=model, provider=provider, prompt_tokens=tin, completion_tokens=tout,
                spend=0.0 if failed else tin * price_in + tout * price_out,
                user=rng.choice(("u-alice", "u-bob", "")), end_user=rng.choice(("cust-1", "cust-2", "")),
                agent_id=agent, key_alias=rng.choice(("team-a-key", None)),
                status="failure" if failed else "success"))
    return calls


async def write_spend_log(conn: asyncpg.Connection, calls: list[LiteLLMCall]) -> None:
    await conn.executemany(
        'INSERT INTO "LiteLLM_SpendLogs" (request_id, call_type, api_key, spend, total_tokens, prompt_tokens, '
        'completion_tokens, "startTime", "endTime", model, model_group, custom_llm_provider, "user", metadata, '
        'end_user, status, agent_id) '
        "VALUES ($1, 'acompletion', $2, $3, $4, $5, $6, $7, $8, $9, $9, $10, $11, $12::jsonb, $13, $14, $15)",
        [(c.request_id, c.api_key, c.spend, c.prompt_tokens + c.completion_tokens, c.prompt_tokens,
          c.completion_tokens, c.start, c.start + timedelta(seconds=2), c.model, c.provider, c.user,
          json.dumps({"user_api_key_alias": c.key_alias, "user_api_key": c.api_key,
                      "spend_logs_metadata": {"agent_id": c.agent_id} if c.agent_id else None}),
          c.end_user, c.status, c.agent_id) for c in calls])


def _entity(table: str, call: LiteLLMCall) -> str | None:
    """The entity a call is rolled up under in `table`, or None when LiteLLM writes it no row there."""
    if table == "LiteLLM_DailyUserSpend":
        return call.user
    if table == "LiteLLM_DailyAgentSpend":
        return call.agent_id
    return call.end_user or None


ENTITY_COLUMN = {"LiteLLM_DailyUserSpend": "user_id", "LiteLLM_DailyAgentSpend": "agent_id",
                 "LiteLLM_DailyEndUserSpend": "end_user_id"}


async def write_daily(conn: asyncpg.Connection, calls: list[LiteLLMCall],
                      tables: tuple[str, ...] = tuple(ENTITY_COLUMN)) -> None:
    """The daily rows LiteLLM's writer would have upserted for `calls`."""
    for table in tables:
        rows: dict[tuple[str, ...], dict[str, float | int]] = {}
        for c in calls:
            entity = _entity(table, c)
            if entity is None:
                continue
            key = (entity, c.start.strftime("%Y-%m-%d"), c.api_key, c.model, c.provider, "", ENDPOINT)
            acc = rows.setdefault(key, {"spend": 0.0, **{name: 0 for name in COUNTERS}})
            acc["spend"] += c.spend
            acc["prompt_tokens"] += c.prompt_tokens
            acc["completion_tokens"] += c.completion_tokens
            acc["api_requests"] += 1
            acc["successful_requests" if c.status == "success" else "failed_requests"] += 1
        await conn.executemany(
            f'INSERT INTO "{table}" (id, {ENTITY_COLUMN[table]}, date, api_key, model, custom_llm_provider, '
            "mcp_namespaced_tool_name, endpoint, model_group, spend, prompt_tokens, completion_tokens, api_requests, "
            "successful_requests, failed_requests, updated_at) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $5, $9, $10, $11, $12, $13, $14, (now() AT TIME ZONE 'UTC'))",
            [(str(uuid.uuid4()), *key, acc["spend"], *(acc[name] for name in COUNTERS))
             for key, acc in rows.items()])
