"""Reading the switches and budgets from Redis: SCAN (never KEYS) and one pipeline per read."""

from __future__ import annotations

import contextlib
from decimal import Decimal

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError

from costtop.config import Settings
from costtop.sources.errors import SourceError
from costtop.sources.numbers import parse_count, parse_usd
from costtop.sources.records import GatewayCounters, RedisNumber, RedisState, SwitchKind, SwitchRecord, Unparsed
from costtop.text import clean, mask_url, one_line

SCAN_COUNT = 1000


def connect_redis(settings: Settings) -> Redis:
    """A client whose every call is bounded by the configured timeout, and that retries once on a
    connection the server closed (a restart, an idle timeout, a proxy) instead of failing a kill."""
    return Redis.from_url(
        settings.redis_url, socket_timeout=settings.timeout_seconds,
        socket_connect_timeout=settings.timeout_seconds, decode_responses=False,
        retry=Retry(NoBackoff(), 1), retry_on_error=[RedisConnectionError],
    )


def decode_key(raw: bytes) -> str:
    """A key as text that encodes back to the very same bytes (see `encode_key`)."""
    return raw.decode("utf-8", errors="surrogateescape")


def encode_key(key: str) -> bytes:
    return key.encode("utf-8", errors="surrogateescape")


def parse_switch_key(key: str, kind: SwitchKind) -> tuple[str, str]:
    """`kill:agent:x` -> ("agent", "x"); `kill:global` -> ("global", "*")."""
    rest = key.split(":", 1)[1] if ":" in key else ""
    scope, _, target = rest.partition(":")
    if scope == "global" and not target:
        return ("global", "*")
    return (scope or "?", target)


class RedisReader:
    def __init__(self, settings: Settings, client: Redis | None = None) -> None:
        self.settings = settings
        self.keys = settings.keys
        self.client = client or connect_redis(settings)

    def _error(self, exc: BaseException) -> SourceError:
        url = self.settings.redis_url
        if isinstance(exc, TimeoutError) or "Timeout" in type(exc).__name__:
            return SourceError(f"Redis timed out after {self.settings.timeout_seconds:g} s")
        if isinstance(exc, OSError) or "Connection" in type(exc).__name__:
            return SourceError(f"Redis unreachable at {mask_url(url)}")
        return SourceError(one_line(exc, (url,)))

    async def _scan(self, pattern: str) -> list[bytes]:
        return [key async for key in self.client.scan_iter(match=pattern, count=SCAN_COUNT)]

    async def read(self) -> RedisState:
        try:
            return await self._read()
        except (RedisError, OSError, TimeoutError) as exc:
            raise self._error(exc) from None

    async def _read(self) -> RedisState:
        k = self.keys
        kill_keys = await self._scan(f"{k.kill}:*")
        throttle_keys = await self._scan(f"{k.throttle}:*")
        budget_keys = await self._scan(f"{k.budget}:*")
        switch_keys = [(key, SwitchKind.KILL) for key in kill_keys] + [
            (key, SwitchKind.THROTTLE) for key in throttle_keys]
        pipe = self.client.pipeline(transaction=False)
        for key, _ in switch_keys:
            pipe.get(key)
            pipe.pttl(key)
        for key in budget_keys:
            pipe.get(key)
        # A key of the wrong type answers WRONGTYPE: that switch is on, its value unknown.
        answers = await pipe.execute(raise_on_error=False)
        switches: list[SwitchRecord] = []
        for i, (raw_key, kind) in enumerate(switch_keys):
            value, pttl = answers[2 * i], answers[2 * i + 1]
            if value is None and not isinstance(pttl, ResponseError) and pttl == -2:
                continue  # expired or deleted between SCAN and GET
            # The key stays exact (resume must delete this very key); only the value is display text.
            key = decode_key(raw_key)
            scope, target = parse_switch_key(key, kind)
            text = None if isinstance(value, Exception) or value is None else clean(value, 400)
            ttl = pttl / 1000 if isinstance(pttl, int) and pttl >= 0 else None
            switches.append(SwitchRecord(key, kind, scope, target, text, ttl))
        budgets: dict[str, Decimal | Unparsed] = {}
        global_day: RedisNumber = None
        global_month: RedisNumber = None
        offset = 2 * len(switch_keys)
        for j, raw_key in enumerate(budget_keys):
            raw = answers[offset + j]
            amount = Unparsed("wrong type") if isinstance(raw, Exception) else parse_usd(raw)
            if amount is None:
                continue
            name = decode_key(raw_key).split(":", 1)[1]
            if name == "global:day":
                global_day = amount
            elif name == "global:month":
                global_month = amount
            else:
                budgets[name] = amount
        switches.sort(key=lambda s: (s.scope != "global", s.kind.value, s.scope, s.target))
        return RedisState(tuple(switches), budgets, global_day, global_month)

    async def read_counters(self, day: str) -> GatewayCounters:
        """`spent:{agent}:{day}` for every agent and `calls:{day}`: SCAN plus one pipeline."""
        try:
            k = self.keys
            suffix = f":{day}"
            keys = [key for key in await self._scan(f"{k.spent}:*{suffix}")
                    if decode_key(key).count(":") >= 2]
            pipe = self.client.pipeline(transaction=False)
            for key in keys:
                pipe.get(key)
            pipe.get(f"{k.calls}{suffix}")
            answers = await pipe.execute(raise_on_error=False)
        except (RedisError, OSError, TimeoutError) as exc:
            raise self._error(exc) from None
        spent: dict[str, Decimal | Unparsed] = {}
        for raw_key, raw in zip(keys, answers, strict=False):
            amount = Unparsed("wrong type") if isinstance(raw, Exception) else parse_usd(raw)
            if amount is not None:
                # The agent id is what lies between the prefix and the day; it may hold colons itself.
                spent[decode_key(raw_key)[len(k.spent) + 1: -len(suffix)]] = amount
        raw_calls = answers[-1]
        calls = Unparsed("wrong type") if isinstance(raw_calls, Exception) else parse_count(raw_calls)
        return GatewayCounters(day, spent, calls)

    async def close(self) -> None:
        with contextlib.suppress(RedisError, OSError):
            await self.client.aclose()
