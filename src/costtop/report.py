"""`costtop report --day YYYY-MM-DD`: the seeds' nightly "friction report" for one UTC day, in Markdown.

Everything comes from Postgres, so a report of a past day is the same whenever it is made:
- spend, calls and errors by agent, model and provider (one GROUPING SETS scan of the day);
- the costliest traces;
- the alerts of the day, recomputed from the rows: each agent's highest 5-minute spend against the
  velocity thresholds (from its per-minute sums), and error rates above the threshold over the day;
- the anomalies: the day against each agent's 7 days before (the same rule as the live screen);
- every switch change that day, with who and why, from the audit table.
Budgets live in Redis and change over time, so the report does not judge them.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import asyncpg

from costtop.config import Settings
from costtop.engine.anomalies import day_anomalies, day_norms
from costtop.engine.engine import velocity_level
from costtop.engine.snapshot import Level
from costtop.money import usd
from costtop.sources.history import daily_spend
from costtop.sources.postgres import PostgresReader, fetch
from costtop.sources.schema import qualified
from costtop.text import clean

TOP_TRACES = 10
WINDOW_MINUTES = 5


@dataclass(frozen=True, slots=True)
class Usage:
    name: str | None
    spend: Decimal
    calls: int
    errors: int


def usage_sql(reader: PostgresReader) -> str:
    ca = reader.column("created_at")
    return (
        f"SELECT {reader.column('agent_id')} AS agent, {reader.optional('model')} AS model, "
        f"{reader.optional('provider')} AS provider, GROUPING({reader.column('agent_id')}) AS g_agent, "
        f"GROUPING({reader.optional('model')}) AS g_model, coalesce(sum({reader.cost_sql()}), 0) AS spend, "
        f"count(*) AS calls, count(*) FILTER (WHERE {reader.error_sql()}) AS errors "
        f"FROM {reader.table_sql()} WHERE {ca} >= $1 AND {ca} < $2 "
        f"GROUP BY GROUPING SETS (({reader.column('agent_id')}), ({reader.optional('model')}), "
        f"({reader.optional('provider')}))"
    )


def minutes_sql(reader: PostgresReader) -> str:
    ca = reader.column("created_at")
    return (f"SELECT {reader.column('agent_id')} AS agent, date_trunc('minute', {ca}, 'UTC') AS minute, "
            f"sum({reader.cost_sql()}) AS cost FROM {reader.table_sql()} WHERE {ca} >= $1 AND {ca} < $2 "
            "GROUP BY 1, 2 HAVING sum(" + reader.cost_sql() + ") IS NOT NULL")


def traces_sql(reader: PostgresReader) -> str:
    ca, trace = reader.column("created_at"), reader.column("trace_id")
    return (f"SELECT {trace} AS trace, min({reader.column('agent_id')}) AS agent, count(*) AS steps, "
            f"sum({reader.cost_sql()}) AS cost, min({ca}) AS started, max({ca}) AS ended "
            f"FROM {reader.table_sql()} WHERE {ca} >= $1 AND {ca} < $2 AND {trace} IS NOT NULL "
            f"GROUP BY 1 HAVING sum({reader.cost_sql()}) IS NOT NULL ORDER BY 4 DESC, 1 LIMIT $3")


async def build(settings: Settings, day: str) -> str:
    start = datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=UTC)
    end = start + timedelta(days=1)
    reader = PostgresReader(settings)
    try:
        await reader.connect()
        assert reader.columns is not None
        rows = await fetch(reader, usage_sql, start, end, timeout=300)
        minutes = await fetch(reader, minutes_sql, start, end, timeout=300)
        traces = await fetch(reader, traces_sql, start, end, TOP_TRACES, timeout=300) \
            if reader.columns.has("trace_id") else []
        history = await daily_spend(reader, day)
        audit = await _audit(reader, settings, start, end)
    finally:
        await reader.close()
    agents = [Usage(r["agent"], r["spend"], r["calls"], r["errors"]) for r in rows if r["g_agent"] == 0]
    models = [Usage(r["model"], r["spend"], r["calls"], r["errors"])
              for r in rows if r["g_agent"] == 1 and r["g_model"] == 0]
    providers = [Usage(r["provider"], r["spend"], r["calls"], r["errors"])
                 for r in rows if r["g_agent"] == 1 and r["g_model"] == 1]
    return render(settings, day, agents, models, providers, minutes, traces, history, audit)


async def _audit(reader: PostgresReader, settings: Settings, start: datetime, end: datetime) -> list[asyncpg.Record]:
    table = qualified(settings.tables, settings.tables.audit)
    assert reader.pool is not None
    try:
        return await reader.pool.fetch(
            f"SELECT at, operator, ssh_client, action, key, reason, ttl_seconds, result FROM {table} "
            "WHERE at >= $1 AND at < $2 ORDER BY at, id", start, end, timeout=settings.timeout_seconds * 10)
    except asyncpg.UndefinedTableError:
        return []


def peaks(minutes: list[asyncpg.Record]) -> dict[str, tuple[Decimal, datetime]]:
    """Each agent's highest spend over any 5 consecutive minutes of the day, and when that window ended."""
    by_agent: dict[str, dict[datetime, Decimal]] = defaultdict(dict)
    for r in minutes:
        by_agent[r["agent"]][r["minute"]] = r["cost"]
    best: dict[str, tuple[Decimal, datetime]] = {}
    for agent, costs in by_agent.items():
        for minute in costs:
            total = sum((costs.get(minute - timedelta(minutes=i), Decimal(0)) for i in range(WINDOW_MINUTES)),
                        Decimal(0))
            if agent not in best or total > best[agent][0]:
                best[agent] = (total, minute)
    return best


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    out += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return out


def _name(value: str | None) -> str:
    return "(none)" if value is None else clean(value, 80)


def render(settings: Settings, day: str, agents: list[Usage], models: list[Usage], providers: list[Usage],
           minutes: list[asyncpg.Record], traces: list[asyncpg.Record], history: object,
           audit: list[asyncpg.Record]) -> str:
    th = settings.thresholds
    total = sum((a.spend for a in agents), Decimal(0))
    calls = sum(a.calls for a in agents)
    errors = sum(a.errors for a in agents)
    lines = [f"# costtop daily report: {day} (UTC)", "",
             f"Spend **{usd(total)}** over {calls:,} calls, {errors:,} of them errors.", ""]
    for title, usage in (("By agent", agents), ("By model", models), ("By provider", providers)):
        lines += [f"## {title}", ""]
        ordered = sorted(usage, key=lambda u: (-u.spend, -u.calls, u.name or ""))
        lines += _table(("name", "spend", "calls", "errors"),
                        [(_name(u.name), usd(u.spend), f"{u.calls:,}", f"{u.errors:,}") for u in ordered])
        lines.append("")
    lines += ["## Costliest traces", ""]
    if traces:
        lines += _table(("trace", "agent", "steps", "cost", "duration"),
                        [(clean(t["trace"], 60), clean(t["agent"], 60), f"{t['steps']:,}", usd(t["cost"]),
                          f"{(t['ended'] - t['started']).total_seconds():.0f} s") for t in traces])
    else:
        lines.append("No trace with a recorded cost.")
    lines += ["", "## Alerts of the day", ""]
    alerts = []
    for agent, (peak, ended) in sorted(peaks(minutes).items()):
        level = velocity_level(peak, th)
        if level is not Level.OK:
            alerts.append((level.value.upper(), "burn rate", clean(agent, 60),
                           f"{usd(peak)} in the 5 minutes to {ended:%H:%M}"))
    for a in sorted(agents, key=lambda u: u.name or ""):
        if a.calls and Decimal(a.errors) / a.calls > Decimal(str(th.error_rate_5m)):
            alerts.append(("WARNING", "error rate", _name(a.name), f"{a.errors} of {a.calls} calls failed"))
    norms = day_norms(history, th)  # type: ignore[arg-type]
    for alert in day_anomalies(norms, {a.name: a.spend for a in agents if a.name is not None}, th):
        alerts.append(("WARNING", alert.rule, clean(alert.subject, 60), alert.figure.replace("today", "that day")))
    lines += _table(("severity", "rule", "subject", "figure"), alerts) if alerts else ["None."]
    lines += ["", "## Switch changes", ""]
    if audit:
        lines += _table(("time", "who", "action", "key", "reason", "ttl", "result"),
                        [(f"{r['at'].astimezone(UTC):%H:%M:%S}",
                          clean(r["operator"], 40) + (f" ({clean(r['ssh_client'], 40)})" if r["ssh_client"] else ""),
                          clean(r["action"], 20), clean(r["key"], 80), clean(r["reason"] or "", 80),
                          "" if r["ttl_seconds"] is None else f"{r['ttl_seconds']} s", clean(r["result"], 20))
                         for r in audit])
    else:
        lines.append("None.")
    return "\n".join(lines) + "\n"
