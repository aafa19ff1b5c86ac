"""A simulated fleet of LLM agents that writes only through `costtop.gateway.Gateway`.

The demo needs traffic that looks like a real fleet behind a real gateway, so the fleet checks the
switches before every call and records what a gateway would record, nothing more: if costtop's kill
switch would not stop a real gateway's traffic, it will not stop this one either.

What it produces:
- a dozen agents with their own models, tools and task shapes; six models over three providers priced
  per token (`PRICES`), two agents on a flat-rate plan (anthropic calls recorded with tokens but a NULL
  cost), a few percent of errors, provider-dependent latencies;
- multi-step traces: each task is a trace of LLM calls and tool calls linked by span ids, the context
  (tokens_in) growing step after step;
- a scripted incident: `incident_after` simulated seconds after start, one agent falls into a loop that
  calls the same tool and an expensive model over and over, spending about $6-10 per simulated minute,
  enough to cross the $15-per-5-minutes critical velocity within a few minutes. The loop ends when one
  of its calls is refused (the agent's framework gives up on the task), as it would in production.

Time: `rate` is calls per simulated second and `speed` is how many simulated seconds pass per real
second, so `rate * speed` calls are made per real second and the incident starts after
`incident_after / speed` real seconds. Timestamps (`created_at`) are always the real time of the call,
so the SQL windows costtop computes see the accelerated traffic as it really arrived.

Reproducibility: every agent draws from its own `random.Random` seeded with `seed` and its name, so the
same seed gives the same agents, models, token counts and costs whatever the interleaving. Trace and
span ids carry a per-run tag (`run_tag`) so two runs against one database never merge their traces.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import secrets
import signal
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from random import Random

import asyncpg
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from costtop.config import ConfigError, load_settings
from costtop.gateway import Call, Decision, Gateway

log = logging.getLogger("costtop.demo.simulator")

MILLION = Decimal(1_000_000)
MICRO = Decimal("0.000001")


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """List price in USD per million tokens, and a latency shape: time to first token plus a decode speed."""

    provider: str
    price_in: Decimal
    price_out: Decimal
    first_token_ms: int
    tokens_per_second: int


# USD per million tokens, input / output (list prices, rounded).
PRICES: dict[str, ModelInfo] = {
    "claude-opus-4": ModelInfo("anthropic", Decimal("15"), Decimal("75"), 900, 80),
    "claude-sonnet-4": ModelInfo("anthropic", Decimal("3"), Decimal("15"), 600, 160),
    "claude-haiku-4": ModelInfo("anthropic", Decimal("1"), Decimal("5"), 300, 300),
    "gpt-5": ModelInfo("openai", Decimal("1.25"), Decimal("10"), 1200, 150),
    "gpt-5-mini": ModelInfo("openai", Decimal("0.25"), Decimal("2"), 400, 250),
    "gemini-2.5-flash": ModelInfo("google", Decimal("0.30"), Decimal("2.50"), 250, 400),
}

# Error codes a provider returns, most frequent first (weights).
PROVIDER_ERRORS: dict[str, tuple[tuple[str, int], ...]] = {
    "anthropic": (("rate_limited", 5), ("overloaded", 3), ("timeout", 1), ("server_error", 1)),
    "openai": (("rate_limited", 6), ("timeout", 2), ("server_error", 2)),
    "google": (("rate_limited", 4), ("timeout", 2), ("server_error", 1)),
}

MIN_LATENCY_MS = 100
MAX_LATENCY_MS = 8000  # the simulated gateway's request timeout: a timed-out call ends here


@dataclass(frozen=True, slots=True)
class ToolInfo:
    """A tool an agent calls through the gateway: latency range in ms, price per call, how it fails."""

    latency: tuple[int, int]
    cost: Decimal = Decimal(0)
    error_code: str = "tool_error"
    output_tokens: tuple[int, int] = (300, 2000)  # what its result adds to the agent's context


TOOLS: dict[str, ToolInfo] = {
    "web_search": ToolInfo((250, 1200), Decimal("0.005"), "rate_limited", (800, 2500)),
    "fetch_url": ToolInfo((150, 3000), error_code="http_404", output_tokens=(1000, 4000)),
    "run_tests": ToolInfo((2000, 8000), error_code="timeout", output_tokens=(300, 1500)),
    "read_file": ToolInfo((100, 300), error_code="not_found", output_tokens=(500, 3000)),
    "git_diff": ToolInfo((100, 400), output_tokens=(400, 2500)),
    "read_inbox": ToolInfo((200, 900), error_code="timeout", output_tokens=(300, 1200)),
    "send_email": ToolInfo((300, 1500), Decimal("0.001"), "smtp_error", (20, 60)),
    "create_ticket": ToolInfo((200, 800), output_tokens=(30, 100)),
    "search_docs": ToolInfo((150, 700), output_tokens=(500, 2000)),
    "kb_search": ToolInfo((120, 600), output_tokens=(400, 1500)),
    "run_sql": ToolInfo((100, 5000), error_code="query_error", output_tokens=(200, 2500)),
    "plot_chart": ToolInfo((300, 1500), output_tokens=(20, 80)),
    "crm_lookup": ToolInfo((150, 700), Decimal("0.002"), "timeout", (200, 800)),
    "transcribe": ToolInfo((1500, 7000), Decimal("0.012"), "timeout", (2000, 6000)),
    "run_scanner": ToolInfo((1000, 6000), error_code="timeout", output_tokens=(500, 3000)),
    "write_file": ToolInfo((100, 250), output_tokens=(10, 40)),
}


@dataclass(frozen=True, slots=True)
class AgentProfile:
    """How one agent works: which models it uses, which tools, how its tasks are shaped, how busy it is."""

    name: str
    weight: float  # its share of the fleet's calls
    models: tuple[tuple[str, float], ...]  # model, weight; a task uses one model throughout
    tools: tuple[str, ...]
    steps: tuple[int, int]  # LLM steps per task
    context: tuple[int, int]  # tokens_in of the first step
    output: tuple[int, int]  # tokens_out of each LLM step
    tool_chance: float = 0.7  # chance that an LLM step (other than the last) calls a tool
    flat_rate: frozenset[str] = frozenset()  # providers billed by a subscription: cost_usd NULL
    error_rate: float = 0.03


MAX_PLAN = frozenset({"anthropic"})

AGENTS: tuple[AgentProfile, ...] = (
    AgentProfile("research-bot", 0.2, (("claude-sonnet-4", 0.92), ("claude-opus-4", 0.08)),
                 ("web_search", "fetch_url"), (2, 5), (2000, 5000), (150, 600)),
    AgentProfile("code-review", 0.5, (("claude-sonnet-4", 0.6), ("gpt-5", 0.4)),
                 ("read_file", "git_diff", "run_tests"), (2, 5), (1500, 4000), (150, 600)),
    AgentProfile("email-bot", 2.4, (("claude-haiku-4", 0.5), ("gpt-5-mini", 0.5)),
                 ("read_inbox", "send_email"), (1, 3), (800, 2500), (80, 400), tool_chance=0.8),
    AgentProfile("task-planner", 0.6, (("gpt-5", 0.6), ("claude-sonnet-4", 0.4)),
                 ("create_ticket", "search_docs"), (2, 4), (1000, 3000), (200, 700)),
    AgentProfile("support-agent", 2.6, (("claude-haiku-4", 0.4), ("gemini-2.5-flash", 0.6)),
                 ("kb_search", "create_ticket"), (2, 4), (1200, 3000), (100, 500), error_rate=0.04),
    AgentProfile("data-analyst", 0.8, (("gpt-5", 0.4), ("gemini-2.5-flash", 0.6)),
                 ("run_sql", "plot_chart"), (2, 6), (2000, 5000), (150, 900)),
    AgentProfile("sales-outreach", 1.2, (("gpt-5-mini", 1.0),),
                 ("crm_lookup", "send_email", "web_search"), (1, 4), (1000, 3000), (150, 600)),
    AgentProfile("doc-writer", 0.8, (("claude-sonnet-4", 0.8), ("claude-haiku-4", 0.2)),
                 ("fetch_url", "write_file"), (2, 5), (3000, 6000), (300, 1000), flat_rate=MAX_PLAN),
    AgentProfile("test-generator", 0.9, (("claude-sonnet-4", 0.6), ("claude-haiku-4", 0.4)),
                 ("read_file", "run_tests"), (2, 6), (2000, 6000), (300, 1200), flat_rate=MAX_PLAN),
    AgentProfile("translator", 1.5, (("gemini-2.5-flash", 0.7), ("gpt-5-mini", 0.3)),
                 ("fetch_url",), (1, 2), (500, 3000), (300, 1500), tool_chance=0.2),
    AgentProfile("summarizer", 1.5, (("claude-haiku-4", 0.3), ("gemini-2.5-flash", 0.7)),
                 ("fetch_url",), (1, 3), (2000, 6000), (150, 500), tool_chance=0.6),
    AgentProfile("security-scanner", 0.25, (("gpt-5", 0.6), ("claude-sonnet-4", 0.3), ("claude-opus-4", 0.1)),
                 ("read_file", "run_scanner"), (2, 5), (3000, 6000), (200, 800)),
    AgentProfile("meeting-notes", 0.7, (("gemini-2.5-flash", 0.8), ("gpt-5-mini", 0.2)),
                 ("transcribe", "send_email"), (1, 3), (1000, 2000), (300, 1200)),
    AgentProfile("sql-assistant", 0.9, (("gpt-5-mini", 0.7), ("gpt-5", 0.3)),
                 ("run_sql",), (2, 4), (1000, 3000), (100, 500), error_rate=0.05),
)

# The runaway loop: one agent, an expensive model and one tool, over and over, with a growing context
# that its framework trims to a window (so the spend rate settles at about $7-8 per minute).
INCIDENT_AGENT = "research-bot"
INCIDENT_MODEL = "claude-opus-4"
INCIDENT_TOOL = "web_search"
INCIDENT_CONTEXT_START = 12_000
INCIDENT_CONTEXT_GROWTH = (1500, 2500)
INCIDENT_CONTEXT_CAP = 40_000
INCIDENT_OUTPUT = (80, 220)

THROTTLE_FACTOR = 4  # a throttled agent calls this many times less often
MAX_LAG_SECONDS = 1.0  # an agent that fell this far behind its schedule skips ahead instead of bursting
SHUTDOWN_GRACE_SECONDS = 3.0  # how long the agents get to stop (a backoff sleep is at most 2 s)
FINAL_FLUSH_SECONDS = 5.0  # how long the last write may take before the remaining rows are given up


def call_cost(model: str, tokens_in: int, tokens_out: int) -> Decimal:
    """List-price cost of one call: tokens times the per-million price, to the micro-dollar."""
    info = PRICES[model]
    return ((tokens_in * info.price_in + tokens_out * info.price_out) / MILLION).quantize(MICRO)


def _clamp_latency(ms: float) -> int:
    return int(min(MAX_LATENCY_MS, max(MIN_LATENCY_MS, ms)))


def llm_latency_ms(rng: Random, model: str, tokens_in: int, tokens_out: int) -> int:
    """Time to first token (longer with a longer prompt) plus decoding time, with some jitter."""
    info = PRICES[model]
    ms = info.first_token_ms + tokens_in * 0.03 + tokens_out * 1000 / info.tokens_per_second
    return _clamp_latency(ms * rng.uniform(0.8, 1.25))


class Ids:
    """Trace and span ids: a per-run tag, then random hex from the agent's own generator."""

    def __init__(self, run_tag: str) -> None:
        self.run_tag = run_tag

    def trace(self, rng: Random) -> str:
        return f"{self.run_tag}{rng.getrandbits(96):024x}"

    def span(self, rng: Random) -> str:
        return f"{rng.getrandbits(64):016x}"


def _weighted(rng: Random, options: Sequence[tuple[str, float]]) -> str:
    return rng.choices([name for name, _ in options], weights=[w for _, w in options])[0]


def _llm_call(profile: AgentProfile, rng: Random, model: str, tokens_in: int, trace_id: str, span_id: str,
              parent: str | None, error_rate: float) -> Call:
    """One model call. A failed one sent its prompt but got nothing back: no output, nothing billed."""
    info = PRICES[model]
    flat = info.provider in profile.flat_rate
    if rng.random() < error_rate:
        code = _weighted(rng, PROVIDER_ERRORS[info.provider])
        latency = MAX_LATENCY_MS if code == "timeout" else _clamp_latency(rng.uniform(100, 1500))
        return Call(profile.name, "llm", latency, provider=info.provider, model=model, tokens_in=tokens_in,
                    tokens_out=0, cost_usd=None if flat else Decimal("0.000000"), status="error",
                    error_code=code, trace_id=trace_id, span_id=span_id, parent_span_id=parent)
    tokens_out = rng.randint(*profile.output)
    return Call(profile.name, "llm", llm_latency_ms(rng, model, tokens_in, tokens_out), provider=info.provider,
                model=model, tokens_in=tokens_in, tokens_out=tokens_out,
                cost_usd=None if flat else call_cost(model, tokens_in, tokens_out),
                trace_id=trace_id, span_id=span_id, parent_span_id=parent)


def _tool_call(agent: str, rng: Random, tool: str, trace_id: str, span_id: str, parent: str,
               error_rate: float) -> Call:
    """One tool call through the gateway: no tokens, a per-call price for paid APIs (0 for free tools)."""
    info = TOOLS[tool]
    latency = _clamp_latency(rng.uniform(*info.latency))
    if rng.random() < error_rate:
        return Call(agent, tool, latency, cost_usd=Decimal(0), status="error", error_code=info.error_code,
                    trace_id=trace_id, span_id=span_id, parent_span_id=parent)
    return Call(agent, tool, latency, cost_usd=info.cost, trace_id=trace_id, span_id=span_id, parent_span_id=parent)


def task_calls(profile: AgentProfile, rng: Random, ids: Ids) -> Iterator[Call]:
    """One task as the gateway sees it: LLM steps under the first one, each tool call under the step
    that asked for it, the context growing with every answer and tool result. A failed LLM call is
    retried once, as agent frameworks do."""
    model = _weighted(rng, profile.models)
    trace_id = ids.trace(rng)
    steps = rng.randint(*profile.steps)
    context = rng.randint(*profile.context)
    root: str | None = None
    for step in range(steps):
        call = _llm_call(profile, rng, model, context, trace_id, ids.span(rng), root, profile.error_rate)
        if call.status == "error":
            yield call
            call = _llm_call(profile, rng, model, context, trace_id, ids.span(rng), root, 0.0)
        yield call
        root = root or call.span_id
        context += call.tokens_out or 0
        if step < steps - 1 and profile.tools and rng.random() < profile.tool_chance:
            tool = rng.choice(profile.tools)
            assert call.span_id is not None
            yield _tool_call(profile.name, rng, tool, trace_id, ids.span(rng), call.span_id, profile.error_rate / 2)
            context += rng.randint(*TOOLS[tool].output_tokens)


def runaway_calls(rng: Random, ids: Ids, agent: str = INCIDENT_AGENT) -> Iterator[Call]:
    """The incident: an endless trace of the same search and an expensive model, the context growing
    until the framework's window trims it. Each call's latency is also the loop's pace."""
    trace_id = ids.trace(rng)
    profile = AgentProfile(agent, 0, ((INCIDENT_MODEL, 1),), (INCIDENT_TOOL,), (1, 1), (0, 0), INCIDENT_OUTPUT)
    context = INCIDENT_CONTEXT_START
    root: str | None = None
    while True:
        call = _llm_call(profile, rng, INCIDENT_MODEL, context, trace_id, ids.span(rng), root, 0.0)
        yield call
        root = root or call.span_id
        assert call.span_id is not None
        yield _tool_call(agent, rng, INCIDENT_TOOL, trace_id, ids.span(rng), call.span_id, 0.0)
        context = min(INCIDENT_CONTEXT_CAP, context + rng.randint(*INCIDENT_CONTEXT_GROWTH))


@dataclass
class FleetStats:
    """Counters for tests and for the demo's own status line."""

    recorded: int = 0  # rows the gateway wrote
    refused: int = 0  # calls a switch refused (not recorded)
    refused_by: Counter[str] = field(default_factory=Counter)  # switch key -> refusals
    throttled: int = 0  # calls made while the agent was throttled
    check_errors: int = 0  # switch checks that failed (Redis unreachable)
    write_errors: int = 0  # batch inserts that failed and were kept for a retry
    counter_errors: int = 0  # batches inserted whose Redis counters could not be bumped
    dropped: int = 0  # rows given up on because the buffer was full
    incident_started_at: datetime | None = None
    incident_ended_at: datetime | None = None


class _Backoff:
    """Exponential backoff with jitter, so a fleet of retries does not hammer a server coming back."""

    def __init__(self, rng: Random, first: float = 0.1, cap: float = 2.0) -> None:
        self.rng, self.first, self.cap, self.current = rng, first, cap, 0.0

    def next(self) -> float:
        self.current = min(self.cap, self.current * 2 if self.current else self.first)
        return self.current * self.rng.uniform(0.5, 1.0)

    def reset(self) -> None:
        self.current = 0.0


class _Throttled:
    """Warn at most once per interval per kind, so an outage gives a few lines, not thousands."""

    def __init__(self, interval: float = 10.0) -> None:
        self.interval = interval
        self.last: dict[str, float] = {}

    def warn(self, kind: str, message: str, *args: object) -> None:
        now = time.monotonic()
        if now - self.last.get(kind, -self.interval) >= self.interval:
            self.last[kind] = now
            log.warning(message, *args)


@dataclass
class _OpenTask:
    """A task in progress: its remaining calls and the next one, kept when a check could not be made."""

    calls: Iterator[Call]
    pending: Call | None = None

    def peek(self) -> Call | None:
        if self.pending is None:
            self.pending = next(self.calls, None)
        return self.pending


CHECK_ERRORS = (RedisError, OSError, TimeoutError)
WRITE_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError)


class Fleet:
    """The simulated agents, their incident, and the batching writer behind them.

    Each agent is an asyncio task that makes calls at its share of the fleet's rate (Poisson arrivals),
    interleaving a few open tasks as a busy agent does; rows are buffered and written every
    `flush_interval` seconds in one `Gateway.record` call, which is what lets it sustain thousands of
    calls per second. A Redis outage makes the agents wait (the switches cannot be read, so calls are
    not made, unless `fail_open`); a Postgres outage keeps rows in memory, up to `max_buffer`.

    rate: calls per simulated second for the whole fleet. speed: simulated seconds per real second.
    incident_after: simulated seconds before the runaway loop starts (None or negative: never).
    seed: for reproducible agents, models, tokens and costs. run_tag: the prefix of trace ids.
    The gateway's clients should have timeouts (command_timeout, socket_timeout): the fleet relies on
    them to notice a server that stopped answering.
    """

    def __init__(self, gateway: Gateway, *, rate: float = 40.0, speed: float = 1.0,
                 incident_after: float | None = 30.0, seed: int | None = None,
                 agents: Sequence[AgentProfile] = AGENTS, incident_agent: str = INCIDENT_AGENT,
                 flush_interval: float = 0.1, max_buffer: int = 200_000, max_batch: int = 5000,
                 fail_open: bool = False, run_tag: str | None = None) -> None:
        if rate <= 0 or speed <= 0:
            raise ValueError("rate and speed must be positive")
        self.gateway = gateway
        self.rate = rate
        self.speed = speed
        self.incident_after = incident_after if incident_after is None or incident_after >= 0 else None
        self.seed = seed if seed is not None else secrets.randbits(32)
        self.agents = tuple(agents)
        self.incident_agent = incident_agent
        self.flush_interval = flush_interval
        self.max_buffer = max_buffer
        self.max_batch = max_batch
        self.fail_open = fail_open
        self.ids = Ids(run_tag if run_tag is not None else secrets.token_hex(4))
        self.stats = FleetStats()
        self._stopping = False  # set on stop: the agents' loops end at their next step
        self._abandoned = False  # set when the last write took too long: the writer gives up
        self._buffer: list[Call] = []
        self._warn = _Throttled()
        total = sum(a.weight for a in self.agents)
        # Calls per simulated second for each agent.
        self._agent_rate = {a.name: rate * a.weight / total for a in self.agents}

    @property
    def incident_running(self) -> bool:
        return self.stats.incident_started_at is not None and self.stats.incident_ended_at is None

    def _rng(self, name: str) -> Random:
        return Random(f"{self.seed}:{name}")

    async def run(self, stop: asyncio.Event) -> None:
        """Run until `stop` is set, then write what is buffered (for a few seconds at most) and return."""
        self._stopping = self._abandoned = False
        closing = asyncio.Event()
        workers = [asyncio.create_task(self._agent_loop(a), name=f"agent:{a.name}") for a in self.agents]
        if self.incident_after is not None:
            workers.append(asyncio.create_task(self._incident_loop(), name="incident"))
        flusher = asyncio.create_task(self._flush_loop(closing), name="flusher")
        stopper = asyncio.create_task(stop.wait())
        failed: BaseException | None = None
        try:
            pending: set[asyncio.Task[object]] = {stopper, flusher, *workers}  # type: ignore[arg-type]
            while failed is None and stopper in pending and flusher in pending:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                # Only `stop` ends the run. A worker may finish on its own (the incident's loop gives up
                # once it is refused: the rest of the fleet goes on); one that raised is a bug to surface.
                for task in done:
                    if task is not stopper and not task.cancelled() and task.exception() is not None:
                        failed = task.exception()
        finally:
            await self._shut_down(stopper, workers, flusher, closing)
        if failed is not None:
            raise failed

    async def _shut_down(self, stopper: asyncio.Task[object], workers: list[asyncio.Task[None]],
                         flusher: asyncio.Task[None], closing: asyncio.Event) -> None:
        """Stop the agents, then give the writer a bounded time to write what is left.

        Cancelling is not enough on its own: redis-py's asyncio client (8.1 on Python 3.11) can swallow
        a cancel that lands inside a command when a socket timeout is set. So the loops also watch
        `_stopping`, and nothing here waits without a time limit (`asyncio.wait_for` would: on timeout
        it waits for the cancelled task to finish)."""
        self._stopping = True
        stopper.cancel()
        for task in workers:
            task.cancel()
        await asyncio.wait([stopper, *workers], timeout=SHUTDOWN_GRACE_SECONDS)
        closing.set()
        await asyncio.wait([flusher], timeout=max(FINAL_FLUSH_SECONDS, self.flush_interval * 2))
        if not flusher.done():
            self._abandoned = True
            flusher.cancel()
            self.stats.dropped += len(self._buffer)
            self._buffer.clear()
        for task in [*workers, flusher]:  # retrieve late exceptions so asyncio does not log them
            if task.done() and not task.cancelled():
                task.exception()

    def _queue(self, call: Call) -> None:
        """Stamp the call with the real time it happened and buffer it for the next batch."""
        self._buffer.append(replace(call, created_at=datetime.now(UTC)))
        excess = len(self._buffer) - self.max_buffer
        if excess > 0:
            del self._buffer[:excess]
            self.stats.dropped += excess
            self._warn.warn("dropped", "buffer full: dropped the oldest %d rows", excess)

    async def _check(self, call: Call, backoff: _Backoff) -> Decision | None:
        """Ask the gateway before the call; None means the switches could not be read (Redis down)."""
        try:
            decision = await self.gateway.check(call.agent_id, call.provider, call.model)
        except CHECK_ERRORS as exc:
            self.stats.check_errors += 1
            self._warn.warn("check", "switch check failed (%s: %s); retrying", type(exc).__name__, exc)
            if self.fail_open:
                return Decision(allowed=True)
            await asyncio.sleep(backoff.next())
            return None
        backoff.reset()
        if not decision.allowed:
            self.stats.refused += 1
            self.stats.refused_by[decision.blocked_by or "?"] += 1
        elif decision.throttled:
            self.stats.throttled += 1
        return decision

    def _refusal_pause(self) -> float:
        """A refused agent backs off for about a simulated second before its next task."""
        return max(0.02, 1.0 / self.speed)

    async def _agent_loop(self, profile: AgentProfile) -> None:
        """Make this agent's calls at its rate, a few tasks open at once; slowed down while throttled."""
        rng = self._rng(profile.name)
        backoff = _Backoff(Random(rng.random()))
        sim_rate = self._agent_rate[profile.name]
        # As many open tasks as a call's typical duration (~2 s) holds at this rate.
        slots: list[_OpenTask | None] = [None] * max(1, min(16, round(sim_rate * 2)))
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        throttled = False
        while not self._stopping:
            wall_rate = sim_rate * self.speed / (THROTTLE_FACTOR if throttled else 1)
            next_at += rng.expovariate(wall_rate)
            now = loop.time()
            if next_at > now:
                await asyncio.sleep(next_at - now)
            elif now - next_at > MAX_LAG_SECONDS:
                next_at = now
            index = rng.randrange(len(slots))
            task = slots[index]
            call = task.peek() if task else None
            if task is None or call is None:
                task = slots[index] = _OpenTask(task_calls(profile, rng, self.ids))
                call = task.peek()
                assert call is not None  # every task has at least one LLM step
            decision = await self._check(call, backoff)
            if decision is None:  # switches unreadable: try the same call again later
                next_at = loop.time()
                continue
            if not decision.allowed:  # refused: this task fails; pause before the next one
                slots[index] = None
                await asyncio.sleep(self._refusal_pause())
                next_at = loop.time()
                continue
            # The decision says whether the agent is throttled now; it sets the pace of its next calls.
            throttled = decision.throttled
            task.pending = None
            self._queue(call)

    async def _incident_loop(self) -> None:
        """Wait, then run the runaway loop at the pace of its own calls until one of them is refused."""
        assert self.incident_after is not None
        await asyncio.sleep(self.incident_after / self.speed)
        rng = self._rng("incident")
        backoff = _Backoff(Random(rng.random()))
        self.stats.incident_started_at = datetime.now(UTC)
        log.info("incident: %s started a runaway loop", self.incident_agent)
        calls = runaway_calls(rng, self.ids, self.incident_agent)
        call = next(calls)
        while not self._stopping:
            decision = await self._check(call, backoff)
            if decision is None:
                continue
            if not decision.allowed:
                self.stats.incident_ended_at = datetime.now(UTC)
                log.info("incident: %s's loop was refused and gave up", self.incident_agent)
                return
            delay = call.latency_ms / 1000 / self.speed
            await asyncio.sleep(delay * (THROTTLE_FACTOR if decision.throttled else 1))
            self._queue(call)
            call = next(calls)

    async def _flush_loop(self, closing: asyncio.Event) -> None:
        """Write the buffer every `flush_interval`; on failure keep the rows and back off. After
        `closing` is set, write what is left (the caller bounds how long that may take)."""
        backoff = _Backoff(Random(self.seed))
        while not self._abandoned:
            if self._buffer and not await self._flush_once():
                await asyncio.sleep(backoff.next())
                continue
            backoff.reset()
            if closing.is_set() and not self._buffer:
                return
            if len(self._buffer) < self.max_batch:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(closing.wait(), self.flush_interval)

    async def _flush_once(self) -> bool:
        batch = self._buffer[: self.max_batch]
        try:
            await self.gateway.record(batch)
        except RedisError as exc:
            # `record` inserts the rows before it bumps the counters: the rows are in, do not repeat them.
            self.stats.counter_errors += 1
            self._warn.warn("counters", "rows written but counters not updated (%s: %s)", type(exc).__name__, exc)
        except WRITE_ERRORS as exc:
            self.stats.write_errors += 1
            self._warn.warn("write", "database write failed (%s: %s); %d rows kept for a retry",
                            type(exc).__name__, exc, len(self._buffer))
            return False
        del self._buffer[: len(batch)]
        self.stats.recorded += len(batch)
        return True


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m costtop.demo.simulator",
                                     description="A simulated fleet of LLM agents writing through costtop's gateway.")
    parser.add_argument("--redis-url", help="Redis URL (default: costtop's settings)")
    parser.add_argument("--database-url", help="PostgreSQL URL (default: costtop's settings)")
    parser.add_argument("--config", help="costtop config file, for key, table and column names")
    parser.add_argument("--rate", type=float, default=40.0, help="calls per simulated second (default 40)")
    parser.add_argument("--speed", type=float, default=1.0, help="simulated seconds per real second (default 1)")
    parser.add_argument("--incident-after", type=float, default=30.0,
                        help="simulated seconds before the runaway loop starts; negative: no incident (default 30)")
    parser.add_argument("--seed", type=int, default=None, help="random seed, for a reproducible run")
    args = parser.parse_args(argv)
    if args.rate <= 0 or args.speed <= 0:
        parser.error("--rate and --speed must be positive")
    return args


async def _serve(args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not on Windows' loop
            loop.add_signal_handler(sig, stop.set)
    settings = load_settings({"redis_url": args.redis_url, "database_url": args.database_url},
                             config_path=None if args.config is None else Path(args.config))
    # min_size=0: nothing connects yet, so a database that is down at start is retried like any outage.
    pool = await asyncpg.create_pool(settings.database_url, min_size=0, max_size=4, command_timeout=10,
                                     timeout=5)
    # No retries inside the client: the fleet has its own backoff, and a check must fail fast.
    redis = Redis.from_url(settings.redis_url, socket_timeout=2, socket_connect_timeout=2,
                           retry=Retry(NoBackoff(), 0))
    try:
        # The gateway keeps costtop's rollup, as a production gateway would (README, "The rollup").
        gateway = Gateway(redis, pool, keys=settings.keys, tables=settings.tables, rollup=True)
        fleet = Fleet(gateway, rate=args.rate,
                      speed=args.speed, incident_after=args.incident_after, seed=args.seed)
        await fleet.run(stop)
    finally:
        try:
            await asyncio.wait_for(pool.close(), 5)
        except (TimeoutError, *WRITE_ERRORS):
            pool.terminate()
        with contextlib.suppress(*CHECK_ERRORS):
            await redis.aclose()


def main(argv: Sequence[str] | None = None) -> int:
    """Run as a child process of `costtop demo`: until SIGTERM or SIGINT, then exit 0 without noise."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="costtop-simulator: %(message)s", stream=sys.stderr)
    try:
        asyncio.run(_serve(args))
    except ConfigError as exc:
        print(f"costtop-simulator: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
