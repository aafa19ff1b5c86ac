"""A load generator that writes like a busy gateway: batched inserts every 100 ms, plus the Redis counters.

    python -m benchmarks.load [--rate 2000] [--agents 200] [--models 20] [--seconds 30]
                              [--method executemany|copy] [--redis-url URL --database-url URL]
                              [--batch-log FILE] [--summary FILE] [--backfill SECONDS]

Without `--redis-url`/`--database-url` it starts its own real servers (`ServerPair`), creates the schema
and budgets, runs, and stops them; with them it writes to those servers (that is how benchmarks/live.py
and benchmarks/terminal_bytes.py use it, in a child process).

Every batch goes through `costtop.gateway.Gateway.record`, so the rows and the `spent:{agent}:{day}` /
`calls:{day}` counters are exactly what a gateway built on that module writes. Only the transport of
the INSERT can be changed: `--method copy` turns the executemany that `Gateway.record` issues into one
`COPY ... FROM STDIN` (asyncpg `copy_records_to_table`) with the same columns and rows, for rates that
executemany cannot sustain. One writer, one batch at a time, so batches commit in order: a reader that
has seen a batch's largest id has seen every earlier batch.

For every batch it records (one JSON line in `--batch-log`): `commit` (time.time() right after the
insert returned, i.e. after the commit), `max_id` and `max_created_at` (epoch seconds) of the batch,
`n`, `insert_s` (insert round trip), `record_s` (whole `Gateway.record`, Redis included) and `lag_s`
(how far behind its schedule the batch was built). It stops by itself after `--seconds` (or on
SIGTERM/SIGINT) and prints, and writes to `--summary`, the rate it actually achieved.

`--backfill SECONDS` first inserts that much history at `--rate` (server side, `generate_series`, no
Redis counters: costtop does not read them), so that a reader starting afterwards finds a full
5-minute window, as it would in front of a gateway that has been running for a while.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import re
import signal
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from random import Random
from types import TracebackType
from typing import IO, Any

import asyncpg
from redis.asyncio import Redis

from costtop.config import Settings
from costtop.gateway import Call, Gateway
from costtop.sources.schema import qident, qualified

PROVIDERS = ("anthropic", "openai", "google", "mistral")
TOOLS = ("web_search", "fetch_url", "read_file", "run_sql", "send_email", "kb_search")
BATCH_SECONDS = 0.1
SHAPES_PER_MODEL = 256
ERROR_CODES = ("rate_limited", "timeout", "server_error", "overloaded")


@dataclass(frozen=True, slots=True)
class Shape:
    """Everything in a call but who made it and when: drawn once, reused, so that building a call is cheap."""

    tool_name: str
    latency_ms: int
    provider: str | None
    model: str | None
    tokens_in: int | None
    tokens_out: int | None
    cached_tokens: int | None
    cost_usd: Decimal | None
    status: str
    error_code: str | None


class Fleet:
    """`agents` agents with Zipf-like activity, each using one to three of `models` models over PROVIDERS."""

    def __init__(self, agents: int = 200, models: int = 20, seed: int = 7) -> None:
        self.rng = Random(seed)
        rng = self.rng
        self.agents = [f"agent-{i:04d}" for i in range(agents)]
        # Zipf weights over a shuffled order, so the busiest agent is not simply the first by name.
        order = list(range(agents))
        rng.shuffle(order)
        self.weights = [1.0 / (1 + order[i]) ** 0.8 for i in range(agents)]
        self.cum_weights: list[float] = []
        total = 0.0
        for w in self.weights:
            total += w
            self.cum_weights.append(total)
        self.models = [f"{PROVIDERS[j % len(PROVIDERS)]}-model-{j:02d}" for j in range(models)]
        self.provider_of = {m: PROVIDERS[j % len(PROVIDERS)] for j, m in enumerate(self.models)}
        prices = {m: (Decimal(rng.choice((25, 100, 300, 1250, 3000, 15000))) / Decimal(10**9),
                      Decimal(rng.choice((200, 500, 1500, 5000, 15000, 75000))) / Decimal(10**9)) for m in self.models}
        self.shapes: dict[str, list[Shape]] = {}
        for m in self.models:
            price_in, price_out = prices[m]
            shapes: list[Shape] = []
            for _ in range(SHAPES_PER_MODEL):
                if rng.random() < 0.2:
                    tool = rng.choice(TOOLS)
                    error = rng.random() < 0.03
                    shapes.append(Shape(tool, rng.randint(80, 3000), None, None, None, None, None,
                                        Decimal("0.001") if tool == "web_search" else None,
                                        "error" if error else "success", "tool_error" if error else None))
                    continue
                tin, tout = rng.randint(500, 60_000), rng.randint(50, 2_000)
                cached = rng.randint(0, tin // 2) if rng.random() < 0.4 else 0
                error = rng.random() < 0.03
                cost = ((tin - cached) * price_in + cached * price_in / 10 + tout * price_out).quantize(
                    Decimal("0.000001"))
                flat = self.provider_of[m] == "anthropic" and rng.random() < 0.1  # a flat-rate plan: NULL cost
                shapes.append(Shape("llm", rng.randint(150, 9000), self.provider_of[m], m, tin,
                                    0 if error else tout, cached, None if flat else cost,
                                    "error" if error else "success", rng.choice(ERROR_CODES) if error else None))
            self.shapes[m] = shapes
        self.agent_models = {a: rng.sample(self.models, rng.randint(1, min(3, len(self.models)))) for a in self.agents}

    def calls(self, n: int, start: float, end: float) -> list[Call]:
        """`n` calls with created_at spread evenly over (start, end], in order."""
        rng = self.rng
        agents = rng.choices(self.agents, cum_weights=self.cum_weights, k=n)
        step = (end - start) / n if n else 0.0
        out: list[Call] = []
        for i, agent in enumerate(agents):
            shape = rng.choice(self.shapes[rng.choice(self.agent_models[agent])])
            out.append(Call(
                agent_id=agent, tool_name=shape.tool_name, latency_ms=shape.latency_ms, provider=shape.provider,
                model=shape.model, tokens_in=shape.tokens_in, tokens_out=shape.tokens_out,
                cached_tokens=shape.cached_tokens, cost_usd=shape.cost_usd, status=shape.status,
                error_code=shape.error_code, created_at=datetime.fromtimestamp(start + step * (i + 1), UTC),
            ))
        return out


# -- a pool that times the insert Gateway.record issues, and can send it as COPY ---------------------------

_INSERT = re.compile(r"^INSERT INTO .+? \((.+?)\) VALUES", re.DOTALL)
_IDENT = re.compile(r'"((?:[^"]|"")*)"')


def insert_columns(sql: str) -> list[str]:
    """The column names of `INSERT INTO t ("a", "b") VALUES ...`, unquoted."""
    found = _INSERT.match(sql)
    if found is None:
        raise ValueError(f"not an INSERT this benchmark understands: {sql[:80]}")
    return [name.replace('""', '"') for name in _IDENT.findall(found.group(1))]


class _TimedConnection:
    """Passes everything through, except that executemany is timed (and optionally sent as COPY)."""

    def __init__(self, conn: asyncpg.Connection, pool: TimedPool) -> None:
        self._conn = conn
        self._pool = pool

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]], timeout: float | None = None) -> None:
        pool = self._pool
        start = time.time()
        if pool.method == "copy":
            await self._conn.copy_records_to_table(
                pool.settings.tables.calls, schema_name=pool.settings.tables.schema_name,
                columns=insert_columns(sql), records=rows, timeout=timeout)
        else:
            await self._conn.executemany(sql, rows, timeout=timeout)
        # Both are committed when they return: COPY autocommits, executemany is one implicit transaction.
        pool.committed_at = time.time()
        pool.insert_seconds = pool.committed_at - start
        pool.last_id = int(await self._conn.fetchval("SELECT currval($1::regclass)", pool.sequence)) \
            if pool.sequence else None


class _Acquire:
    def __init__(self, pool: TimedPool, timeout: float | None = None) -> None:
        self._pool = pool
        self._timeout = timeout
        self._inner: Any = None

    async def __aenter__(self) -> _TimedConnection:
        self._inner = self._pool.pool.acquire(timeout=self._timeout)
        conn = await self._inner.__aenter__()
        return _TimedConnection(conn, self._pool)

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self._inner.__aexit__(kind, exc, tb)


@dataclass
class TimedPool:
    """What `Gateway` needs of a pool (`acquire()`), around a real asyncpg pool."""

    pool: asyncpg.Pool
    settings: Settings
    method: str = "executemany"
    sequence: str | None = None  # the id column's sequence, for the batch's largest id
    committed_at: float = 0.0
    insert_seconds: float = 0.0
    last_id: int | None = None

    def acquire(self, timeout: float | None = None) -> _Acquire:
        return _Acquire(self, timeout)


@dataclass(frozen=True, slots=True)
class Batch:
    seq: int
    commit: float  # time.time() right after the insert returned
    max_id: int | None
    max_created_at: float  # epoch seconds
    n: int
    insert_s: float
    record_s: float
    lag_s: float  # how far behind its schedule the batch was built


@dataclass
class LoadResult:
    target_rate: float
    method: str
    agents: int
    models: int
    seconds: float
    rows: int
    achieved_rate: float
    batches: int
    insert_p50_ms: float
    insert_p99_ms: float
    insert_max_ms: float
    record_p50_ms: float
    max_lag_s: float
    final_lag_s: float
    cpu_percent: float  # of one core, this process
    batch_log: list[Batch] = field(default_factory=list, repr=False)

    def summary(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("batch_log")
        return out

    def line(self) -> str:
        return (f"load: target {self.target_rate:g} calls/s, achieved {self.achieved_rate:.0f} calls/s "
                f"({self.rows} rows in {self.seconds:.1f} s, {self.batches} batches, {self.method}); "
                f"insert p50 {self.insert_p50_ms:.1f} ms, p99 {self.insert_p99_ms:.1f} ms, max "
                f"{self.insert_max_ms:.1f} ms; max lag {self.max_lag_s:.2f} s; generator CPU "
                f"{self.cpu_percent:.0f}% of a core")


def _pct(values: list[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


async def id_sequence(conn: asyncpg.Connection, settings: Settings) -> str | None:
    tables = settings.tables
    return await conn.fetchval("SELECT pg_get_serial_sequence($1, $2)",
                               qualified(tables, tables.calls), tables.column("id"))


class LoadGenerator:
    def __init__(self, settings: Settings, rate: float, fleet: Fleet, method: str = "executemany",
                 log: IO[str] | None = None) -> None:
        self.settings = settings
        self.rate = rate
        self.fleet = fleet
        self.method = method
        self.log = log
        self.stop = asyncio.Event()
        self.batches: list[Batch] = []

    async def run(self, seconds: float) -> LoadResult:
        settings = self.settings
        pg = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=1,
                                       server_settings={"application_name": "costtop-bench-load"})
        redis = Redis.from_url(settings.redis_url, socket_timeout=10)
        try:
            async with pg.acquire() as conn:
                sequence = await id_sequence(conn, settings)
            pool = TimedPool(pg, settings, self.method, sequence)
            gateway = Gateway(redis, pool, settings.keys, settings.tables, timeout=60.0)  # type: ignore[arg-type]
            cpu0 = time.process_time()
            t0 = time.monotonic()
            wall0 = time.time()
            built_until = wall0
            sent = 0
            seq = 0
            deadline = t0 + seconds
            next_tick = t0 + BATCH_SECONDS
            while not self.stop.is_set():
                now = min(time.monotonic(), deadline)
                due = int(self.rate * (now - t0)) - sent
                if due > 0:
                    wall = time.time()
                    calls = self.fleet.calls(due, built_until, wall)
                    built_until = wall
                    started = time.time()
                    await gateway.record(calls)
                    record_s = time.time() - started
                    batch = Batch(seq, pool.committed_at, pool.last_id, wall, due, pool.insert_seconds, record_s,
                                  max(0.0, now - (t0 + sent / self.rate) - BATCH_SECONDS))
                    self.batches.append(batch)
                    if self.log is not None:
                        self.log.write(json.dumps(asdict(batch)) + "\n")
                        self.log.flush()
                    sent += due
                    seq += 1
                if now >= deadline:
                    break
                now = time.monotonic()
                if next_tick > now:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self.stop.wait(), next_tick - now)
                    next_tick += BATCH_SECONDS
                else:
                    next_tick = now + BATCH_SECONDS  # behind: the next batch catches up
            elapsed = time.monotonic() - t0
            cpu = time.process_time() - cpu0
            behind = max(0.0, self.rate * elapsed - sent) / self.rate
        finally:
            await redis.aclose()
            await pg.close()
        inserts = [b.insert_s * 1000 for b in self.batches]
        return LoadResult(
            target_rate=self.rate, method=self.method, agents=len(self.fleet.agents), models=len(self.fleet.models),
            seconds=elapsed, rows=sent, achieved_rate=sent / elapsed if elapsed else 0.0, batches=len(self.batches),
            insert_p50_ms=statistics.median(inserts) if inserts else math.nan, insert_p99_ms=_pct(inserts, 0.99),
            insert_max_ms=max(inserts, default=math.nan),
            record_p50_ms=statistics.median([b.record_s * 1000 for b in self.batches]) if self.batches else math.nan,
            max_lag_s=max((b.lag_s for b in self.batches), default=0.0), final_lag_s=behind,
            cpu_percent=100 * cpu / elapsed if elapsed else 0.0, batch_log=self.batches,
        )


async def backfill(settings: Settings, fleet: Fleet, seconds: float, rate: float, chunk_seconds: float = 20,
                   connections: int = 2) -> int:
    """History at `rate` calls/s from `seconds` ago up to (within half a second of) the moment it returns,
    inserted server side over `connections` connections. Returns the row count."""
    if seconds <= 0 or rate <= 0:
        return 0
    tables = settings.tables
    c = tables.column
    names = ["created_at", "agent_id", "tool_name", "latency_ms", "provider", "model", "tokens_in", "tokens_out",
             "cached_tokens", "cost_usd", "status", "error_code"]
    # Agents drawn by weight through a 4096-slot table; model and provider from the same index.
    total = fleet.cum_weights[-1]
    table = [fleet.agents[min(len(fleet.agents) - 1, next(i for i, cw in enumerate(fleet.cum_weights)
                                                           if cw >= total * (k + 0.5) / 4096))] for k in range(4096)]
    sql = (
        f"INSERT INTO {qualified(tables, tables.calls)} ({', '.join(qident(c(n)) for n in names)}) "
        "SELECT to_timestamp($1::float8 + g / $2::float8), "
        "  ($3::text[])[1 + (hashint8(g) & 4095)], "
        "  CASE WHEN r.u < 0.2 THEN 'web_search' ELSE 'llm' END, 150 + (r.u * 8000)::int, "
        "  CASE WHEN r.u < 0.2 THEN NULL ELSE ($4::text[])[r.m] END, "
        "  CASE WHEN r.u < 0.2 THEN NULL ELSE ($5::text[])[r.m] END, "
        "  500 + (r.u * 50000)::int, 50 + (r.u * 1500)::int, (r.u * 2000)::int, "
        "  round((r.u * 0.05)::numeric, 6), CASE WHEN r.u > 0.97 THEN 'error' ELSE 'success' END, "
        "  CASE WHEN r.u > 0.97 THEN 'rate_limited' END "
        "FROM generate_series($6::bigint, $7::bigint - 1) AS g, "
        "LATERAL (SELECT random() + 0 * g AS u, 1 + (hashint8(g + 7) & 2147483647) % $8 AS m) AS r"
    )
    providers = [fleet.provider_of[m] for m in fleet.models]
    start = time.time() - seconds
    step = max(1, int(chunk_seconds * rate))
    conns = [await asyncpg.connect(settings.database_url) for _ in range(connections)]
    done = 0
    try:
        while True:
            # Row g is at start + g / rate; insert up to now, then the rows that came due meanwhile.
            until = int((time.time() - start) * rate)
            if until - done < rate / 2:
                break
            chunks = [(first, min(until, first + step)) for first in range(done, until, step)]

            async def work(conn: asyncpg.Connection, mine: list[tuple[int, int]]) -> None:
                for first, last in mine:
                    await conn.execute(sql, start, rate, table, fleet.models, providers, first, last,
                                       len(fleet.models))

            await asyncio.gather(*(work(conn, chunks[i::connections]) for i, conn in enumerate(conns)))
            done = until
        await conns[0].execute(f"ANALYZE {qualified(tables, tables.calls)}")
    finally:
        for conn in conns:
            await conn.close()
    return done


async def set_budgets(settings: Settings, fleet: Fleet, redis_url: str | None = None) -> None:
    """A daily budget for most agents (one in ten has none, which costtop shows as disabled)."""
    redis = Redis.from_url(redis_url or settings.redis_url, socket_timeout=5)
    try:
        pipe = redis.pipeline(transaction=False)
        for i, agent in enumerate(fleet.agents):
            if i % 10 != 9:
                pipe.set(f"{settings.keys.budget}:{agent}", str(10 + 10 * (i % 7)))
        await pipe.execute()
    finally:
        await redis.aclose()


async def _run(args: argparse.Namespace, settings: Settings) -> LoadResult:
    fleet = Fleet(args.agents, args.models, args.seed)
    if args.backfill:
        t = time.monotonic()
        rows = await backfill(settings, fleet, args.backfill, args.rate)
        print(f"load: backfilled {rows} rows ({args.backfill:g} s of history) in {time.monotonic() - t:.1f} s",
              file=sys.stderr, flush=True)
    log = open(args.batch_log, "w", encoding="utf-8") if args.batch_log else None  # noqa: SIM115
    try:
        gen = LoadGenerator(settings, args.rate, fleet, args.method, log)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, gen.stop.set)
        if args.ready_file:
            Path(args.ready_file).write_text(str(time.time()), encoding="utf-8")
        return await gen.run(args.seconds)
    finally:
        if log is not None:
            log.close()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=2000, help="calls per second (default 2000)")
    parser.add_argument("--agents", type=int, default=200, help="distinct agents (default 200)")
    parser.add_argument("--models", type=int, default=20, help=f"distinct models over {len(PROVIDERS)} providers")
    parser.add_argument("--seconds", type=float, default=30, help="stop after this long (default 30)")
    parser.add_argument("--method", choices=("executemany", "copy"), default="executemany",
                        help="how the batch INSERT reaches Postgres (default executemany, as Gateway.record)")
    parser.add_argument("--redis-url", help="write to this Redis (default: start own servers)")
    parser.add_argument("--database-url", help="write to this Postgres (default: start own servers)")
    parser.add_argument("--batch-log", type=Path, help="one JSON line per batch")
    parser.add_argument("--summary", type=Path, help="the result as JSON")
    parser.add_argument("--backfill", type=float, default=0, metavar="SECONDS",
                        help="insert this much history at --rate first (default 0)")
    parser.add_argument("--ready-file", type=Path, help="written when the live load starts (for live.py)")
    parser.add_argument("--seed", type=int, default=7)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if (args.redis_url is None) != (args.database_url is None):
        print("load: give both --redis-url and --database-url, or neither", file=sys.stderr)
        return 2
    pair = None
    try:
        if args.redis_url is None:
            from costtop.demo.run import prepare
            from costtop.demo.servers import ServerPair

            pair = ServerPair.start(prefix="costtop-load-")
            settings = Settings(redis_url=pair.redis.url, database_url=pair.postgres.url)
            asyncio.run(prepare(settings))
            asyncio.run(set_budgets(settings, Fleet(args.agents, args.models, args.seed)))
        else:
            settings = Settings(redis_url=args.redis_url, database_url=args.database_url)
        result = asyncio.run(_run(args, settings))
    finally:
        if pair is not None:
            pair.stop()
    print(result.line(), flush=True)
    if args.summary:
        args.summary.write_text(json.dumps(result.summary(), indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
