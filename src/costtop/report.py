"""`costtop report --day YYYY-MM-DD`: the seeds' nightly "friction report" for one UTC day, in Markdown.

Everything comes from Postgres, so a report of a past day is the same whenever it is made:
- spend, calls and errors by agent, model and provider (one GROUPING SETS scan of the day);
- the costliest traces;
- the alerts of the day, recomputed from the rows: each agent's highest 5-minute spend against the
  velocity thresholds (rollup/days.py), and error rates above the threshold over the day;
- the anomalies: the day against each agent's 7 days before (the same rule as the live screen);
- every switch change that day, with who and why, from the audit table.
Budgets live in Redis and change over time, so the report does not judge them.
"""

from __future__ import annotations

from datetime import UTC
from decimal import Decimal

from costtop.config import Settings
from costtop.engine.anomalies import day_anomalies, day_norms
from costtop.engine.budgets import velocity_level
from costtop.engine.snapshot import Level
from costtop.escape import markdown
from costtop.money import UNKNOWN, usd
from costtop.rollup.days import PEAK_MINUTES
from costtop.session import Session
from costtop.sources.day_report import DayRecords
from costtop.text import clean, none_last, visible_id

TABLE_CELL = 1000  # cells are cut to their column's length by the caller; this only bounds the escaping


async def build(settings: Settings, day: str) -> str:
    return render(settings, await Session.live(settings).read_day(day))


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> list[str]:
    """Every cell is escaped here, ours and the data's alike, so no caller can forget one: a name cannot
    add a column, a link, an image or HTML to the report."""
    out = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    out += ["| " + " | ".join(markdown(cell, TABLE_CELL) for cell in row) + " |" for row in rows]
    return out


def _name(value: str | None) -> str:
    return "(none)" if value is None else visible_id(value, 80)


def _count(value: int | None) -> str:
    return UNKNOWN if value is None else f"{value:,}"


def render(settings: Settings, records: DayRecords) -> str:
    """The Markdown: pure, from what Session.read_day returned."""
    th = settings.thresholds
    day, agents, models, providers = records.day, records.agents, records.models, records.providers
    traces, history, audit = records.traces, records.history, records.audit
    total = records.total if records.total is not None else sum((a.spend for a in agents), Decimal(0))
    calls = sum(a.calls or 0 for a in agents)
    errors = sum(a.errors or 0 for a in agents)
    # Not known when LiteLLM's spend log lost the day (records.note says so): no "0 calls".
    known = all(u.calls is not None for u in (*agents, *models))
    headline = f"Spend **{usd(total)}**" + (f" over {calls:,} calls, {errors:,} of them errors." if known else ".")
    lines = [f"# costtop daily report: {day} (UTC)", "", headline, ""]
    if records.note:
        lines += [markdown(records.note, 400), ""]
    for title, usage in (("By agent", agents), ("By model", models), ("By provider", providers)):
        lines += [f"## {title}", ""]
        ordered = sorted(usage, key=lambda u: (-u.spend, -(u.calls or 0), none_last(u.name)))
        lines += _table(("name", "spend", "calls", "errors"),
                        [(_name(u.name), usd(u.spend), _count(u.calls), _count(u.errors)) for u in ordered])
        lines.append("")
    lines += ["## Costliest traces", ""]
    if traces:
        lines += _table(("trace", "agent", "steps", "cost", "duration"),
                        [(visible_id(t["trace"], 60), _name(t["agent"]), f"{t['steps']:,}", usd(t["cost"]),
                          f"{(t['ended'] - t['started']).total_seconds():.0f} s") for t in traces])
    else:
        lines.append("No trace with a recorded cost.")
    lines += ["", "## Alerts of the day", ""]
    alerts = []
    # An agent may be None (a LiteLLM call with no identity): sorted after the named ones, shown `(none)`.
    for peak in sorted(records.peaks, key=lambda p: none_last(p.agent)):
        level = velocity_level(peak.cost, th)
        if level is not Level.OK:
            alerts.append((level.value.upper(), "burn rate", _name(peak.agent),
                           f"{usd(peak.cost)} in the {PEAK_MINUTES} minutes to {peak.ended:%H:%M}"))
    for a in sorted(agents, key=lambda u: none_last(u.name)):
        if a.calls and a.errors is not None and Decimal(a.errors) / a.calls > Decimal(str(th.error_rate_5m)):
            alerts.append(("WARNING", "error rate", _name(a.name), f"{a.errors} of {a.calls} calls failed"))
    norms = day_norms(history, th)
    for alert in day_anomalies(norms, {a.name: a.spend for a in agents if a.name is not None}, th):
        alerts.append(("WARNING", alert.rule, visible_id(alert.subject, 60), alert.figure.replace("today", "that day")))
    lines += _table(("severity", "rule", "subject", "figure"), alerts) if alerts else ["None."]
    lines += ["", "## Switch changes", ""]
    if isinstance(audit, str):
        lines.append(f"The audit table is {markdown(audit, 200)}.")
    elif audit:
        lines += _table(("time", "who", "action", "key", "reason", "ttl", "result"),
                        [(f"{r['at'].astimezone(UTC):%H:%M:%S}",
                          clean(r["operator"], 40) + (f" ({clean(r['ssh_client'], 40)})" if r["ssh_client"] else ""),
                          clean(r["action"], 20), visible_id(r["key"], 80), clean(r["reason"] or "", 80),
                          "" if r["ttl_seconds"] is None else f"{r['ttl_seconds']} s", clean(r["result"], 20))
                         for r in audit])
    else:
        lines.append("None.")
    return "\n".join(lines) + "\n"
