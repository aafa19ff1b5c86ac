"""The gateway side of the contract: check the switches, record the call.

A real gateway (a LiteLLM callback, a Portkey hook, a home-grown proxy) can import this module; the
demo's simulated fleet uses it too, so the demo writes exactly what a production gateway would.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

import asyncpg
from redis.asyncio import Redis

from costtop.config import KeyNames, TableNames
from costtop.sources.schema import qident, qualified

# Gateway-side counters are kept a little over a month, enough for month-to-date reconciliation.
COUNTER_TTL_SECONDS = 40 * 86400


@dataclass(frozen=True, slots=True)
class Call:
    """One LLM or tool call as the gateway records it."""

    agent_id: str
    tool_name: str
    latency_ms: int
    provider: str | None = None
    model: str | None = None
    tokens_in: int | None = None
    tokens_out: int | None = None
    cached_tokens: int | None = None
    cost_usd: Decimal | None = None  # None: a flat-rate call
    status: str = "success"
    error_code: str | None = None
    trace_id: str | None = None
    span_id: str | None = None
    parent_span_id: str | None = None
    created_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    throttled: bool = False
    blocked_by: str | None = None  # the switch key that refused the call


@dataclass
class Gateway:
    redis: Redis
    pool: asyncpg.Pool
    keys: KeyNames = field(default_factory=KeyNames)
    tables: TableNames = field(default_factory=TableNames)

    def switch_keys(self, agent_id: str, provider: str | None, model: str | None) -> list[str]:
        k = self.keys.kill
        keys = [f"{k}:global", f"{k}:agent:{agent_id}"]
        if provider:
            keys.append(f"{k}:provider:{provider}")
        if model:
            keys.append(f"{k}:model:{model}")
        return keys

    async def check(self, agent_id: str, provider: str | None = None, model: str | None = None) -> Decision:
        """One round trip: any kill key refuses the call; a throttle key slows it."""
        kill_keys = self.switch_keys(agent_id, provider, model)
        throttle_key = f"{self.keys.throttle}:agent:{agent_id}"
        values = await self.redis.mget([*kill_keys, throttle_key])
        for key, value in zip(kill_keys, values, strict=False):
            if value is not None:
                return Decision(allowed=False, blocked_by=key)
        return Decision(allowed=True, throttled=values[-1] is not None)

    async def record(self, calls: Sequence[Call]) -> None:
        """Insert the rows, then bump the live counters, as a gateway does after each call."""
        if not calls:
            return
        now = datetime.now(UTC)
        c = self.tables.column
        names = ["created_at", "agent_id", "tool_name", "latency_ms", "provider", "model", "tokens_in",
                 "tokens_out", "cached_tokens", "cost_usd", "status", "error_code", "trace_id", "span_id",
                 "parent_span_id"]
        rows = [
            (call.created_at or now, call.agent_id, call.tool_name, call.latency_ms, call.provider, call.model,
             call.tokens_in, call.tokens_out, call.cached_tokens, call.cost_usd, call.status, call.error_code,
             call.trace_id, call.span_id, call.parent_span_id)
            for call in calls
        ]
        async with self.pool.acquire() as conn:
            await conn.executemany(
                f"INSERT INTO {qualified(self.tables, self.tables.calls)} "
                f"({', '.join(qident(c(n)) for n in names)}) "
                f"VALUES ({', '.join(f'${i}' for i in range(1, len(names) + 1))})",
                rows,
            )
        spent: dict[str, Decimal] = defaultdict(Decimal)
        per_day: dict[str, int] = defaultdict(int)
        for call in calls:
            day = (call.created_at or now).astimezone(UTC).strftime("%Y-%m-%d")
            per_day[day] += 1
            if call.cost_usd is not None:
                spent[f"{self.keys.spent}:{call.agent_id}:{day}"] += call.cost_usd
        pipe = self.redis.pipeline(transaction=False)
        for key, amount in spent.items():
            pipe.incrbyfloat(key, float(amount))
            pipe.expire(key, COUNTER_TTL_SECONDS)
        for day, count in per_day.items():
            pipe.incrby(f"{self.keys.calls}:{day}", count)
            pipe.expire(f"{self.keys.calls}:{day}", COUNTER_TTL_SECONDS)
        await pipe.execute()
