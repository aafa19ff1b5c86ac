"""Fixed data served through the Feed interface, for snapshot tests and screenshots.

Everything is derived from one frozen `now`, so the rendered screen is the same on every run.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal

from costtop.config import OPTIONAL_COLUMNS, REQUIRED_COLUMNS
from costtop.sources.day_report import DayRecords
from costtop.sources.errors import SourceError
from costtop.sources.records import (
    Baseline,
    CallRecord,
    DayAggregate,
    FallbackState,
    GatewayCounters,
    MinuteAggregate,
    ModelShare,
    ProviderSecond,
    ReadQuality,
    RedisState,
    SpendHistory,
    Step,
    SwitchChange,
    SwitchKind,
    SwitchRecord,
    TraceSummary,
    Unparsed,
    UsageAggregate,
    WindowGroup,
    WriteResult,
)

AGENTS = {
    # name: (calls in the last 5 minutes, USD per call, errors every n calls, daily budget)
    "research-bot": (120, Decimal("0.1450"), 0, Decimal("50")),
    "code-review": (60, Decimal("0.0420"), 20, Decimal("40")),
    "email-bot": (40, Decimal("0.0031"), 0, Decimal("10")),
    "task-planner": (30, Decimal("0.0210"), 10, Decimal("0")),
    "support-triage": (50, Decimal("0.0088"), 0, None),
    "data-analyst": (25, Decimal("0.0640"), 5, Decimal("25")),
    "doc-writer": (15, Decimal("0.0122"), 0, Decimal("15")),
    "sales-outreach": (0, Decimal("0"), 0, Decimal("20")),
}
ROUTES = {  # agent: (provider, model)
    "research-bot": ("anthropic", "claude-sonnet-4"), "code-review": ("openai", "gpt-5"),
    "email-bot": ("openai", "gpt-4o-mini"), "task-planner": ("anthropic", "claude-haiku-4"),
    "support-triage": ("google", "gemini-2.5-flash"), "data-analyst": ("openai", "gpt-5"),
    "doc-writer": ("anthropic", "claude-sonnet-4"), "sales-outreach": ("google", "gemini-2.5-flash"),
}
DAY_SPEND = {
    "research-bot": Decimal("38.40"), "code-review": Decimal("12.25"), "email-bot": Decimal("2.10"),
    "task-planner": Decimal("4.05"), "support-triage": Decimal("3.30"), "data-analyst": Decimal("21.70"),
    "doc-writer": Decimal("1.95"), "sales-outreach": Decimal("6.80"),
}


class StaticFeed:
    read_only = False

    def __init__(self, now: datetime, read_only: bool = False) -> None:
        self.now = now
        self.read_only = read_only
        self.writes: list[SwitchChange] = []

    async def read_redis(self) -> RedisState:
        switches = (
            SwitchRecord("kill:agent:sales-outreach", SwitchKind.KILL, "agent", "sales-outreach",
                         "manual:adam:runaway_loop", 540.0),
            SwitchRecord("throttle:agent:code-review", SwitchKind.THROTTLE, "agent", "code-review",
                         "auto:velocity:6.20_usd_in_5m", None),
            SwitchRecord("kill:model:gpt-5", SwitchKind.KILL, "model", "gpt-5", "manual:oncall:provider_errors",
                         3600.0),
        )
        budgets = {name: b for name, (_, _, _, b) in AGENTS.items() if b is not None}
        return RedisState(switches, budgets, Decimal("200"), Decimal("3000"))

    async def read_fallback(self) -> FallbackState | None:
        return None  # the demo's gateway watches no fallback file

    def reads_per_refresh(self) -> int:
        return 1  # the same fixed rows at every read

    async def read_counters(self, day: str) -> GatewayCounters:
        # email-bot's counter runs ahead of its rows: the reconciliation flags it.
        spent: dict[str, Decimal | Unparsed] = {**DAY_SPEND, "email-bot": Decimal("2.64")}
        return GatewayCounters(day, spent, Decimal(8 * 900 + 3))

    async def connect_postgres(self) -> frozenset[str]:
        return frozenset((*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS))

    async def baseline(self, now: datetime) -> Baseline:
        rng = random.Random(7)
        rows: list[CallRecord] = []
        key = 0
        for name, (count, cost, every, _) in AGENTS.items():
            for i in range(count):
                key += 1
                rows.append(CallRecord(
                    key=key, created_at=self.now - timedelta(seconds=(i * 290 / max(count, 1)) + 1),
                    agent_id=name, tool_name="llm", latency_ms=rng.randint(300, 4000), provider=ROUTES[name][0],
                    model=ROUTES[name][1], tokens_in=2000, tokens_out=300, cached_tokens=800,
                    cost_usd=cost, status="error" if every and i % every == 0 else "success", trace_id=f"t{key}",
                ))
        rows.sort(key=lambda r: r.created_at)
        day = self.now.strftime("%Y-%m-%d")
        days = tuple(DayAggregate(name, day, spend, 900, 880, 12, 1_800_000, 650_000)
                     for name, spend in DAY_SPEND.items())
        window = tuple(WindowGroup(int(r.created_at.timestamp()), r.agent_id, r.cost_usd,
                                   0 if r.cost_usd is None else 1, 1, int(r.status == "error"),
                                   (r.latency_ms,) if r.latency_ms is not None else ()) for r in rows)
        providers = tuple(ProviderSecond(int(r.created_at.timestamp()), r.provider, 1, int(r.status == "error"),
                                         (r.latency_ms,) if r.latency_ms is not None else ()) for r in rows)
        # Each agent's day on its route: 900 calls, 20 of them flat-rate (no recorded cost).
        usage: dict[tuple[str, str], list[object]] = {}
        for name, spend in DAY_SPEND.items():
            provider, model = ROUTES[name]
            acc = usage.setdefault((model, provider), [Decimal(0), 0, 0, 0, 0, 0, 0, 0, 0, 0])
            for i, value in enumerate((spend, 900, 880, 12, 1_800_000, 270_000, 650_000, 40_000, 6_000, 16_000)):
                acc[i] += value  # type: ignore[operator]
        usage_rows = tuple(UsageAggregate(model, provider, *acc) for (model, provider), acc in usage.items())  # type: ignore[arg-type]
        per_minute: dict[tuple[str, int], list[object]] = {}
        for r in rows:
            sums = per_minute.setdefault((r.agent_id, int(r.created_at.timestamp()) // 60), [0, 0, Decimal(0)])
            sums[0] += 1  # type: ignore[operator]
            sums[1] += r.status == "error"  # type: ignore[operator]
            sums[2] += r.cost_usd or 0  # type: ignore[operator]
        # The hour before the window: research-bot's loop starting 40 minutes ago, the rest steady.
        for minutes_ago in range(6, 60):
            minute = int(self.now.timestamp()) // 60 - minutes_ago
            for name, (count, cost, _, _) in AGENTS.items():
                growth = Decimal(max(1, 45 - minutes_ago)) / 10 if name == "research-bot" else Decimal(1)
                per_minute[(name, minute)] = [count // 5, 0, cost * count / 5 * growth]
        minutes = tuple(MinuteAggregate(agent, minute, cost, calls, errors)  # type: ignore[arg-type]
                        for (agent, minute), (calls, errors, cost) in sorted(per_minute.items()))
        hour_now = int(self.now.timestamp()) // 3600
        hours = tuple((hour_now - h, Decimal(60 + (23 - h) * 7)) for h in range(24))
        # Each agent's last two hours: a tenth of its day in each, but research-bot spent most of its
        # day in this hour, five times the hour before: the hour anomaly flags it.
        agent_hours = {(name, hour_now - back): spend / 10 for name, spend in DAY_SPEND.items() for back in (0, 1)}
        agent_hours[("research-bot", hour_now)] = Decimal("31.20")
        agent_hours[("research-bot", hour_now - 1)] = Decimal("6.10")
        return Baseline(day=day, days=days, month_before_today=Decimal("1523.37"), month=day[:7],
                        minutes=minutes, window=window, usage=usage_rows, providers=providers, hours=hours,
                        agent_hours=tuple((a, h, cost) for (a, h), cost in agent_hours.items()))

    async def spend_history(self, day: str) -> SpendHistory:
        """A week of days near today's spend for every agent, but research-bot's usual day is a third
        of today's: the day anomaly flags it."""
        shape = (Decimal("0.9"), Decimal("1.1"), Decimal("1.0"), Decimal("1.2"), Decimal("0.8"), Decimal("1.0"),
                 Decimal("1.05"))
        sums = tuple((name, d, (spend / 3 if name == "research-bot" else spend) * f)
                     for name, spend in DAY_SPEND.items() for d, f in enumerate(shape))
        return SpendHistory(day, len(shape), sums)

    async def new_rows(self) -> list[CallRecord]:
        return []

    def read_quality(self) -> ReadQuality:
        return ReadQuality()

    async def agent_traces(self, agent: str, since: datetime) -> list[TraceSummary]:
        """Three traces, newest first, each summed from the steps trace_steps returns for it."""
        summaries = []
        for i in (2, 1, 0):
            steps = self._steps(i)
            summaries.append(TraceSummary(
                f"{agent}-t{i}", steps[0].created_at, steps[-1].created_at, len(steps),
                sum(s.tokens_in or 0 for s in steps), sum(s.tokens_out or 0 for s in steps),
                sum((s.cost_usd or Decimal(0) for s in steps), Decimal(0)), sum(s.status != "success" for s in steps)))
        return summaries

    async def agent_steps(self, agent: str, since: datetime,
                          traces: Sequence[str] | None = None) -> dict[str, list[Step]]:
        steps = {f"{agent}-t{i}": self._steps(i) for i in (2, 1, 0)}
        return steps if traces is None else {t: s for t, s in steps.items() if t in traces}

    async def agent_models(self, agent: str, since: datetime) -> list[ModelShare]:
        model = ROUTES.get(agent, ("openai", "gpt-5"))[1]
        return [ModelShare(model, 110, Decimal("15.95")), ModelShare("gpt-4o-mini", 12, Decimal("0.04"))]

    async def agent_calls(self, agent: str) -> list[CallRecord]:
        provider, model = ROUTES.get(agent, ("openai", "gpt-5"))

        def call(i: int) -> CallRecord:
            if i % 3 == 0:  # a tool: no model, no tokens
                return CallRecord(i, self.now - timedelta(seconds=3 * i + 1), agent, "search", 300 + 10 * i,
                                  None, None, None, None, None, Decimal("0.005"), "success", f"{agent}-t2")
            return CallRecord(i, self.now - timedelta(seconds=3 * i + 1), agent, "llm", 800 + 10 * i, provider,
                              model, 2000 + 100 * i, 300, 800, Decimal("0.1450"), "error" if i == 4 else "success",
                              f"{agent}-t2")

        return [call(i) for i in range(8)]

    async def trace_steps(self, trace_id: str) -> list[Step]:
        number = trace_id.rpartition("-t")[2]
        return self._steps(int(number) if number.isdigit() else 0)

    def _steps(self, number: int) -> list[Step]:
        """Trace 0 (the oldest) is the runaway: a planner; then seven rounds of a model call, its context
        growing half again each round, asking for the same search tool; then three failed model calls.
        The others are healthy: a planner and a few model calls, each with one lookup."""
        start = self.now - timedelta(minutes=3) + timedelta(seconds=40 * number)
        at = iter(start + timedelta(seconds=i) for i in range(30))
        steps = [Step(next(at), "plan", "root", None, "claude-sonnet-4", 1000, 80, Decimal("0.0042"), 900, "success")]
        tokens = 1000
        rounds = 7 if number == 0 else 2 + number
        for i in range(rounds):
            tokens = tokens * 3 // 2 if number == 0 else tokens + 150
            steps.append(Step(next(at), "llm", f"l{i}", "root", "claude-sonnet-4", tokens, 40,
                              Decimal(tokens) * Decimal("0.000003"), 600 + 50 * i, "success"))
            tool = "search" if number == 0 else ("search", "fetch")[i % 2]
            steps.append(Step(next(at), tool, f"s{i}", f"l{i}", None, None, None, Decimal("0.005"), 300 + 20 * i,
                              "success"))
        if number == 0:
            steps += [Step(next(at), "llm", f"e{i}", "root", "claude-sonnet-4", None, None, None, 30_000, "timeout")
                      for i in range(3)]
        return steps

    async def read_day(self, day: str) -> DayRecords:
        raise SourceError("the static demo data holds no past day to report")

    def audit_pending(self) -> int:
        return 0

    async def drain_audit(self) -> tuple[int, str | None]:
        return 0, None

    async def write(self, change: SwitchChange) -> WriteResult:
        self.writes.append(change)
        return WriteResult(False, "Static demo data: nothing was changed", False)

    async def close(self) -> None:
        return None
