"""The gateway side of the contract: check the switches, record the call.

A real gateway (a LiteLLM callback, a Portkey hook, a home-grown proxy) can import this module; the
demo's simulated fleet uses it too, so the demo writes exactly what a production gateway would.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import ResponseError

from costtop.config import KeyNames, TableNames

if TYPE_CHECKING:  # the LiteLLM proxy imports this module for the switches and counters only: no asyncpg there
    import asyncpg

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


def switch_keys(keys: KeyNames, agent_id: str | None, providers: Iterable[str] = (),
                models: Iterable[str] = ()) -> list[str]:
    """The kill keys that refuse one call: global, its agent (when known), each provider and model name it
    may go by (LiteLLM knows a model by its public name and by its deployment's)."""
    k = keys.kill
    out = [f"{k}:global"]
    if agent_id:
        out.append(f"{k}:agent:{agent_id}")
    out += [f"{k}:provider:{p}" for p in dict.fromkeys(providers) if p]
    out += [f"{k}:model:{m}" for m in dict.fromkeys(models) if m]
    return out


WRONG_TYPE = object()  # a switch key that holds a hash, a list, ...: on, its value unknown


async def _read_switches(redis: Redis, names: list[str]) -> list[object]:
    """Each key's value in one round trip, WRONG_TYPE for a key of another type than a string. MGET answers
    nil for such a key, which would let calls through a switch that costtop's screen shows as on
    (sources/redis_state.py reads a WRONGTYPE key as on); a GET per key, pipelined, tells the two apart.
    Any other error (a denied command, a lost connection) is raised: the caller's fail mode applies."""
    pipe = redis.pipeline(transaction=False)
    for name in names:
        pipe.get(name)
    out: list[object] = []
    for answer in await pipe.execute(raise_on_error=False):
        if isinstance(answer, ResponseError) and str(answer).startswith("WRONGTYPE"):
            out.append(WRONG_TYPE)
        elif isinstance(answer, Exception):
            raise answer
        else:
            out.append(answer)
    return out


async def check_switches(redis: Redis, keys: KeyNames, agent_id: str | None, providers: Iterable[str] = (),
                         models: Iterable[str] = ()) -> tuple[Decision, str | None]:
    """One round trip: the first kill key set refuses the call, else the agent's throttle key slows it. Returns
    the decision and the value of the switch that decided (who set it and why), to word the refusal with."""
    kill_keys = switch_keys(keys, agent_id, providers, models)
    throttle_key = f"{keys.throttle}:agent:{agent_id}" if agent_id else None
    values = await _read_switches(redis, [*kill_keys, throttle_key] if throttle_key else kill_keys)
    for key, value in zip(kill_keys, values, strict=False):
        if value is not None:
            return Decision(allowed=False, blocked_by=key), _text(value)
    if throttle_key and values[-1] is not None:
        return Decision(allowed=True, throttled=True, blocked_by=throttle_key), _text(values[-1])
    return Decision(allowed=True), None


def _text(value: object) -> str | None:
    if value is WRONG_TYPE:
        return None
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def day_of(when: datetime) -> str:
    """The UTC day a counter is kept under (a naive time is the machine's local time, as datetime.now())."""
    return when.astimezone(UTC).strftime("%Y-%m-%d")


def queue_counters(pipe: Pipeline, keys: KeyNames, spent: Mapping[str, Decimal],
                   per_day: Mapping[str, int]) -> None:
    """Queue the live counters' increments on a pipeline: `spent:{agent}:{day}` by (agent, day) -> USD
    key already built, `calls:{day}` by day -> calls. Each gets the counters' TTL."""
    for key, amount in spent.items():
        pipe.incrbyfloat(key, float(amount))
        pipe.expire(key, COUNTER_TTL_SECONDS)
    for day, count in per_day.items():
        pipe.incrby(f"{keys.calls}:{day}", count)
        pipe.expire(f"{keys.calls}:{day}", COUNTER_TTL_SECONDS)


@dataclass
class Gateway:
    redis: Redis
    pool: asyncpg.Pool
    keys: KeyNames = field(default_factory=KeyNames)
    tables: TableNames = field(default_factory=TableNames)

    async def check(self, agent_id: str, provider: str | None = None, model: str | None = None) -> Decision:
        """One round trip: any kill key refuses the call; a throttle key slows it."""
        decision, _ = await check_switches(self.redis, self.keys, agent_id, [provider] if provider else [],
                                           [model] if model else [])
        return decision

    async def record(self, calls: Sequence[Call]) -> None:
        """Insert the rows, then bump the live counters, as a gateway does after each call."""
        from costtop.sources.schema import qident, qualified  # asyncpg's side, imported only where rows are written

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
            day = day_of(call.created_at or now)
            per_day[day] += 1
            if call.cost_usd is not None:
                spent[f"{self.keys.spent}:{call.agent_id}:{day}"] += call.cost_usd
        pipe = self.redis.pipeline(transaction=False)
        queue_counters(pipe, self.keys, spent, per_day)
        await pipe.execute()
