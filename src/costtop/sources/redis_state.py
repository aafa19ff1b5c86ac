"""Reading the switches and budgets from Redis: SCAN (never KEYS) and one pipeline per read.

On a Redis Cluster (`cluster = true`, or a `redis+cluster://` URL) the same reads: SCAN on every
primary at once, then the keys grouped by node (a script call per KEY_BATCH of a node's keys, sent to
it) or, where a node will not run a script over keys of several slots, by slot; the cluster client
sends each node's calls as one round trip, to all the nodes at once.
"""

from __future__ import annotations

import asyncio
import contextlib
from decimal import Decimal
from operator import itemgetter

from redis.asyncio import Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.crc import key_slot
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import (
    NoPermissionError,
    NoScriptError,
    RedisClusterException,
    RedisError,
    ResponseError,
)

from costtop.config import Settings, cluster_seeds, plain_redis_url
from costtop.sources.errors import SourceError
from costtop.sources.numbers import parse_count, parse_usd
from costtop.sources.records import GatewayCounters, RedisNumber, RedisState, SwitchKind, SwitchRecord, Unparsed
from costtop.text import clean, mask_url, one_line

SCAN_COUNT = 1000
KEY_BATCH = 1000  # keys per script call: 50,000 switches are 50 commands, not 100,000

# For each key of the batch: its value (0 when the key holds another type: a switch that is on, its
# value unreadable; nil when it is gone) and its PTTL. One command per batch instead of a GET and a PTTL
# per key: the client's cost is per command and per reply (redis-py spent 2.5-3 s on 50,000 switches
# read key by key, against 0.1 s batched). It only reads.
READ_SCRIPT = """
local out = {}
for i, key in ipairs(KEYS) do
  local ok, value = pcall(redis.call, 'GET', key)
  if not ok then value = 0 end
  out[2 * i - 1] = value
  out[2 * i] = redis.call('PTTL', key)
end
return out
"""


# The same, for keys named in ARGV: on a cluster, one call reads keys of many slots held by the node it
# is sent to (Redis 6.2 allows it; Redis 7 and Valkey too for a script without flags, which keep the
# old rules). A key the node does not hold fails the whole call at its PTTL: "non local key".
NODE_SCRIPT = READ_SCRIPT.replace("ipairs(KEYS)", "ipairs(ARGV)")


class WrongType:
    """A key that holds another type than a string."""


WRONG_TYPE = WrongType()
KeyValue = tuple[bytes | WrongType | None, int]  # (value, PTTL in ms: -1 no expiry, -2 gone)


# One Redis or a Redis Cluster: both take the same commands and pipelines (a cluster's groups its
# commands by node, one round trip each); what differs is said where it matters (SCAN, scripts, PING).
RedisClient = Redis | RedisCluster
# Every failure a Redis call may raise: the cluster client's own (no node reachable at start, a slot no
# node serves during a failover) are no RedisError.
REDIS_ERRORS = (RedisError, RedisClusterException, OSError, TimeoutError)


def connect_redis(settings: Settings, timeout: float | None = None) -> RedisClient:
    """A client whose every call is bounded by the timeout (the configured one by default), and that
    retries once on a connection the server closed (a restart, an idle timeout, a proxy) instead of
    failing a kill. On a cluster, that one retry first asks a live node where the slots are now: after a
    failover the next call goes to the new primary, and until then the call fails (stale, not waiting)."""
    timeout = settings.timeout_seconds if timeout is None else timeout
    if settings.redis_cluster:
        first, seeds = cluster_seeds(settings.redis_url)  # every node the URL names: the first may be down
        return RedisCluster.from_url(
            first, startup_nodes=[ClusterNode(host, port) for host, port in seeds], socket_timeout=timeout,
            socket_connect_timeout=timeout, decode_responses=False, retry=Retry(NoBackoff(), 1))
    return Redis.from_url(
        plain_redis_url(settings.redis_url), socket_timeout=timeout, socket_connect_timeout=timeout,
        decode_responses=False, retry=Retry(NoBackoff(), 1), retry_on_error=[RedisConnectionError],
    )


async def ping_for(client: RedisClient, key: bytes) -> None:
    """PING the server that holds `key`: on a cluster the node serving its slot (a plain PING goes to
    every node, and one node down would refuse a kill that another node would take)."""
    if isinstance(client, RedisCluster):
        await client.initialize()
        await client.ping(target_nodes=client.get_node_from_key(key))
    else:
        await client.ping()


def decode_key(raw: bytes) -> str:
    """A key as text that encodes back to the very same bytes (see `encode_key`)."""
    return raw.decode("utf-8", errors="surrogateescape")


def encode_key(key: str) -> bytes:
    return key.encode("utf-8", errors="surrogateescape")


def scripts_refused(exc: ResponseError) -> bool:
    """The server does not let this client run scripts: an ACL without them (NOPERM), or the commands
    renamed away (a managed Redis may do either). Any other error is the read's failure."""
    return isinstance(exc, NoPermissionError) or "unknown command" in str(exc).lower()


def parse_switch_key(key: str, kind: SwitchKind) -> tuple[str, str]:
    """`kill:agent:x` -> ("agent", "x"); `kill:global` -> ("global", "*")."""
    rest = key.split(":", 1)[1] if ":" in key else ""
    scope, _, target = rest.partition(":")
    if scope == "global" and not target:
        return ("global", "*")
    return (scope or "?", target)


class RedisReader:
    def __init__(self, settings: Settings, client: RedisClient | None = None) -> None:
        self.settings = settings
        self.keys = settings.keys
        self.client = client or connect_redis(settings)
        self._sha: str | None = None  # READ_SCRIPT's digest, once loaded
        self._node_sha: str | None = None  # NODE_SCRIPT's, on a cluster
        # On a cluster: read a node's keys KEY_BATCH at a time (NODE_SCRIPT), or one call per slot where
        # the server wants a script's keys in one slot.
        self._by_node = True
        # How the script is called; None once the server refused scripts to this user: key by key.
        self._script_command: str | None = "EVALSHA_RO"
        # (raw key, kind) -> (value, expiry, its record, its place in the list), as last read
        self._switches: dict[tuple[bytes, SwitchKind], tuple[object, float | None, SwitchRecord, str]] = {}

    async def _batched_values(self, keys: list[bytes]) -> list[KeyValue]:
        if self._sha is None:
            self._sha = await self.client.script_load(READ_SCRIPT)  # on a cluster: on every primary
            if isinstance(self.client, RedisCluster):
                self._node_sha = await self.client.script_load(NODE_SCRIPT)
        if isinstance(self.client, RedisCluster):
            if self._by_node:
                try:
                    return await self._node_batched_values(keys)
                except ResponseError as exc:
                    text = str(exc)
                    if "same slot" in text or "CROSSSLOT" in text:  # this server keeps a script to one slot
                        self._by_node = False
                    elif "non local key" not in text:
                        raise
                    # Otherwise a key is no longer where the client thought (a slot moved, a failover):
                    # this read goes by slot, which follows the cluster's redirections.
            return await self._cluster_batched_values(keys)
        pipe = self.client.pipeline(transaction=False)
        for start in range(0, len(keys), KEY_BATCH):
            batch = keys[start:start + KEY_BATCH]
            pipe.execute_command(self._script_command, self._sha, len(batch), *batch)
        out: list[KeyValue] = []
        for answer in await pipe.execute():
            out += _pairs(answer)
        return out

    async def _node_batched_values(self, keys: list[bytes]) -> list[KeyValue]:
        """On a cluster: each node's keys KEY_BATCH at a time (NODE_SCRIPT, sent to that node), every
        node's calls in one round trip, all at once. 50,000 switches are some 50 calls, as on one Redis."""
        assert isinstance(self.client, RedisCluster)
        await self.client.initialize()
        by_node: dict[str, tuple[object, list[int]]] = {}
        for i, key in enumerate(keys):
            node = self.client.get_node_from_key(key)
            by_node.setdefault(node.name, (node, []))[1].append(i)
        pipe = self.client.pipeline(transaction=False)
        order: list[list[int]] = []
        for node, places in by_node.values():
            for start in range(0, len(places), KEY_BATCH):
                batch = places[start:start + KEY_BATCH]
                order.append(batch)
                pipe.execute_command(self._script_command, self._node_sha, 0, *(keys[i] for i in batch),
                                     target_nodes=node)
        out: list[KeyValue] = [(None, -2)] * len(keys)
        for batch, answer in zip(order, await pipe.execute(), strict=True):
            for i, pair in zip(batch, _pairs(answer), strict=True):
                out[i] = pair
        return out

    async def _cluster_batched_values(self, keys: list[bytes]) -> list[KeyValue]:
        """A script call over declared keys reads keys of one slot: one call per slot (and per KEY_BATCH
        keys of it), each sent to the node serving the slot, the calls of a node in one round trip.
        Keys are spread over 16,384 slots, so 50,000 switches are some 15,000 calls (not 100,000 GETs
        and PTTLs): what is left where a node refuses NODE_SCRIPT, or for one read after a slot moved."""
        assert isinstance(self.client, RedisCluster)
        await self.client.initialize()
        by_slot: dict[int, list[int]] = {}
        for i, key in enumerate(keys):
            by_slot.setdefault(key_slot(key), []).append(i)
        pipe = self.client.pipeline(transaction=False)
        order: list[list[int]] = []
        for places in by_slot.values():
            node = self.client.get_node_from_key(keys[places[0]])
            for start in range(0, len(places), KEY_BATCH):
                batch = places[start:start + KEY_BATCH]
                order.append(batch)
                pipe.execute_command(self._script_command, self._sha, len(batch), *(keys[i] for i in batch),
                                     target_nodes=node)
        out: list[KeyValue] = [(None, -2)] * len(keys)
        for batch, answer in zip(order, await pipe.execute(), strict=True):
            for i, pair in zip(batch, _pairs(answer), strict=True):
                out[i] = pair
        return out

    async def _values(self, keys: list[bytes]) -> list[KeyValue]:
        """Each key's value and PTTL, in order: a script call per KEY_BATCH keys in one pipeline, or a
        GET and a PTTL per key where the server does not run scripts for this user.

        EVALSHA_RO first (Redis 7, Valkey): a read-only call, allowed on read-only key patterns (`%R~`);
        EVALSHA where the server does not know it (Redis 6, which has no such patterns either)."""
        if not keys:
            return []
        while self._script_command is not None:
            try:
                return await self._batched_values(keys)
            except ResponseError as exc:
                text = str(exc)
                if isinstance(exc, NoScriptError) and self._sha is not None:
                    self._sha = None  # the server lost its scripts (a restart, SCRIPT FLUSH): load it again
                elif "unknown command" in text.lower() and self._script_command == "EVALSHA_RO":
                    self._script_command = "EVALSHA"
                elif scripts_refused(exc):
                    self._script_command = None
                else:
                    raise
        pipe = self.client.pipeline(transaction=False)
        for key in keys:
            pipe.get(key)
            pipe.pttl(key)
        answers = await pipe.execute(raise_on_error=False)
        return [(WRONG_TYPE if isinstance(answers[2 * i], Exception) else answers[2 * i],
                 answers[2 * i + 1] if isinstance(answers[2 * i + 1], int) else -1) for i in range(len(keys))]

    def _error(self, exc: BaseException) -> SourceError:
        url = self.settings.redis_url
        if isinstance(exc, RedisClusterException):  # no node answers, or no node serves a slot (a failover)
            text = one_line(exc, (url,))
            if "not enabled" in text:  # what the client says, too, of a user refused CLUSTER SLOTS
                text += " (or this user may not run CLUSTER SLOTS: README, \"Least privilege\")"
            return SourceError(f"Redis Cluster at {mask_url(url)}: {text}"[:400])
        if isinstance(exc, TimeoutError) or "Timeout" in type(exc).__name__:
            return SourceError(f"Redis timed out after {self.settings.timeout_seconds:g} s")
        if isinstance(exc, OSError) or "Connection" in type(exc).__name__:
            return SourceError(f"Redis unreachable at {mask_url(url)}")
        return SourceError(one_line(exc, (url,)))

    async def _scan(self, pattern: str) -> list[bytes]:
        if isinstance(self.client, RedisCluster):
            return await self._scan_cluster(self.client, pattern)
        return [key async for key in self.client.scan_iter(match=pattern, count=SCAN_COUNT)]

    @staticmethod
    async def _scan_cluster(client: RedisCluster, pattern: str) -> list[bytes]:
        """SCAN every primary, all at once: each holds its own slots' keys. A key seen twice (a slot
        moving during the scan) is kept once; a primary that does not answer fails the read (stale),
        since its switches would otherwise vanish from the screen."""
        await client.initialize()

        async def scan(node: object) -> list[bytes]:
            found: list[bytes] = []
            cursor = 0
            while True:
                cursors, keys = await client.scan(cursor, match=pattern, count=SCAN_COUNT, target_nodes=node)
                found += keys
                cursor = next(iter(cursors.values()))
                if cursor == 0:
                    return found

        per_node = await asyncio.gather(*(scan(node) for node in client.get_primaries()))
        return list(dict.fromkeys(key for keys in per_node for key in keys))

    async def read(self) -> RedisState:
        try:
            return await self._read()
        except REDIS_ERRORS as exc:
            raise self._error(exc) from None

    async def _read(self) -> RedisState:
        k = self.keys
        kill_keys = await self._scan(f"{k.kill}:*")
        throttle_keys = await self._scan(f"{k.throttle}:*")
        budget_keys = await self._scan(f"{k.budget}:*")
        switch_keys = [(key, SwitchKind.KILL) for key in kill_keys] + [
            (key, SwitchKind.THROTTLE) for key in throttle_keys]
        answers = await self._values([key for key, _ in switch_keys] + budget_keys)
        # A switch read as last time is the same record object: 50,000 unchanged switches are neither
        # decoded again nor compared field by field downstream (the session keeps an equal read).
        before, kept = self._switches, {}
        for (raw_key, kind), (value, pttl) in zip(switch_keys, answers, strict=False):
            if value is None and pttl == -2:
                continue  # expired or deleted between SCAN and GET
            ttl = pttl / 1000 if pttl >= 0 else None
            found = before.get((raw_key, kind))
            if found is None or found[0] != value or found[1] != ttl:
                # The key stays exact (resume must delete this very key); only the value is display
                # text. A key of another type: that switch is on, its value unknown.
                key = decode_key(raw_key)
                scope, target = parse_switch_key(key, kind)
                text = clean(value, 400) if isinstance(value, bytes) else None
                record = SwitchRecord(key, kind, scope, target, text, ttl)
                # Global first, then by kind, scope, target (the key last: two keys may parse alike).
                found = (value, ttl, record, "\0".join((str(scope != "global"), kind, scope, target, key)))
            kept[(raw_key, kind)] = found
        self._switches = kept
        switches = [found[2] for found in sorted(kept.values(), key=itemgetter(3))]
        budgets: dict[str, Decimal | Unparsed] = {}
        global_day: RedisNumber = None
        global_month: RedisNumber = None
        offset = len(switch_keys)
        for j, raw_key in enumerate(budget_keys):
            raw = answers[offset + j][0]
            amount = Unparsed("wrong type") if isinstance(raw, WrongType) else parse_usd(raw)
            if amount is None:
                continue
            name = decode_key(raw_key).split(":", 1)[1]
            if name == "global:day":
                global_day = amount
            elif name == "global:month":
                global_month = amount
            else:
                budgets[name] = amount
        return RedisState(tuple(switches), budgets, global_day, global_month)

    async def read_counters(self, day: str) -> GatewayCounters:
        """`spent:{agent}:{day}` for every agent and `calls:{day}`: SCAN plus one pipeline."""
        try:
            k = self.keys
            suffix = f":{day}"
            keys = [key for key in await self._scan(f"{k.spent}:*{suffix}")
                    if decode_key(key).count(":") >= 2]
            answers = [value for value, _ in await self._values([*keys, encode_key(f"{k.calls}{suffix}")])]
        except REDIS_ERRORS as exc:
            raise self._error(exc) from None
        spent: dict[str, Decimal | Unparsed] = {}
        for raw_key, raw in zip(keys, answers, strict=False):
            amount = Unparsed("wrong type") if isinstance(raw, WrongType) else parse_usd(raw)
            if amount is not None:
                # The agent id is what lies between the prefix and the day; it may hold colons itself.
                spent[decode_key(raw_key)[len(k.spent) + 1: -len(suffix)]] = amount
        raw_calls = answers[-1]
        calls = Unparsed("wrong type") if isinstance(raw_calls, WrongType) else parse_count(raw_calls)
        return GatewayCounters(day, spent, calls)

    async def close(self) -> None:
        with contextlib.suppress(*REDIS_ERRORS):
            await self.client.aclose()


def _pairs(answer: list[object]) -> list[KeyValue]:
    """READ_SCRIPT's flat answer as (value, PTTL) pairs; a number for a value is a key of another type."""
    return [(WRONG_TYPE if isinstance(answer[i], int) else answer[i], answer[i + 1])  # type: ignore[misc]
            for i in range(0, len(answer), 2)]
