"""`costtop snapshot`: the numbers the screen would show, read once, for scripts and cron.

The same sources and engine as the app: one full baseline from Postgres (the day's sums and the
5-minute window from one snapshot), one read of Redis and of the gateway's counters, the trailing
week for the anomalies. Output as a table, JSON or CSV. Exit code 0 when both sources answered, 3
when one did not (what could be read is still printed, and unknown figures are null / `?`).

JSON shape (version 1; money as exact decimal strings without trailing zeros; unknown as null):
    {"version": 1, "at": ISO 8601 UTC,
     "sources": {"redis": {"ok": bool, "error": str|null}, "postgres": {...}},
     "header": {"spend_today", "spend_month", "burn_per_min", "projected_today", "projected_month",
                "calls_per_min", "error_rate_1h", "p95_ms", "day_budget", "month_budget",
                "day_budget_state", "month_budget_state"},  (a null budget: "disabled" is none set, "unknown"
                                                             is one costtop could not read)
     "agents": [{"agent", "state", "spend_today", "burn_per_min", "level", "calls_today",
                 "errors_today", "p95_ms", "budget", "budget_used", "budget_state"}],
     "models": [{"model", "state", "spend_today", "calls_today", "flat_calls"}],
     "providers": [{"provider", "health", "state", "spend_today", "calls_today", "error_rate_5m"}],
     "switches": [{"key", "kind", "scope", "target", "who", "why", "ttl_seconds"}],
     "alerts": [{"key", "severity", "rule", "subject", "figure"}],
     "notes": [str],  (what could not be judged, e.g. the week behind the day anomaly)
     "data_quality": [str]}  (what the rows got wrong: dated in the future, later than the lateness
                              horizon, unreadable values, NaN or negative costs naming the agents)
Names are exact (as stored) in JSON; the table cleans them for the terminal and the CSV for spreadsheets
(costtop/escape.py). A budget with no limit reads "none" (none set) or "?" (unknown) in the table and the
CSV, as on the screen; JSON says which in budget_state.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from costtop.config import Settings
from costtop.engine.engine import Engine
from costtop.engine.snapshot import AgentRow, BudgetState, BudgetView, Snapshot
from costtop.escape import csv_cell
from costtop.money import NO_BUDGET, UNKNOWN, usd
from costtop.sources.errors import SourceError
from costtop.sources.feed import LiveFeed
from costtop.sources.records import RedisState, SourceStatus
from costtop.text import clean, visible_id

FORMATS = ("table", "json", "csv")
AGENT_FIELDS = ("agent", "state", "spend_today", "burn_per_min", "level", "calls_today", "errors_today", "p95_ms",
                "budget", "budget_used", "budget_state")


MAX_PLAIN_DIGITS = 60  # past this, an exponent: "1E+99999999" in full would be 100 million digits


def money(value: Decimal | None) -> str | None:
    """Exact, without trailing zeros or an exponent: "5.5", "10", "0.000125"; unknown as None. A
    figure too long to write out (only a corrupt one) keeps its exponent, still a valid decimal."""
    if value is None or not value.is_finite():
        return None
    if abs(value.adjusted()) > MAX_PLAIN_DIGITS:
        return str(value.normalize())
    return format(value.normalize(), "f")


async def read_once(settings: Settings, now: datetime | None = None) -> Snapshot:
    """Both sources once, into the engine, with what failed said in the snapshot's sources."""
    feed = LiveFeed(settings)
    engine = Engine(settings.thresholds)
    now = now or datetime.now(UTC)
    status: dict[str, SourceStatus] = {}
    redis: RedisState | None = None
    try:
        try:
            redis = await feed.read_redis()
            status["Redis"] = SourceStatus("Redis", True, now.timestamp())
        except SourceError as exc:
            status["Redis"] = SourceStatus("Redis", False, None, str(exc))
        try:
            columns = await feed.connect_postgres()
            engine.load(await feed.postgres.baseline(now), columns)
            await feed.count_unreadable(engine.day)
            engine.note_read_quality(feed.read_quality())
            status["Postgres"] = SourceStatus("Postgres", True, now.timestamp())
        except SourceError as exc:
            status["Postgres"] = SourceStatus("Postgres", False, None, str(exc))
        if status["Postgres"].connected:
            try:
                engine.load_history(await feed.spend_history(engine.day))
            except SourceError as exc:
                engine.note_history_failed(str(exc))  # shown as the snapshot's anomaly note
            if redis is not None:
                try:
                    engine.note_counters(await feed.read_counters(engine.day))
                except SourceError as exc:
                    status["Redis"] = SourceStatus("Redis", False, None, f"counters: {exc}")
    finally:
        await feed.close()
    return engine.snapshot(now, redis, list(status.values()))


def as_dict(snap: Snapshot) -> dict[str, Any]:
    h = snap.header
    return {
        "version": 1,
        "at": snap.at.astimezone(UTC).isoformat(),
        "sources": {s.name.lower(): {"ok": s.connected, "error": s.error} for s in snap.sources},
        "header": {
            "spend_today": money(h.spend_today), "spend_month": money(h.spend_month),
            "burn_per_min": money(h.velocity_per_min), "projected_today": money(h.projected_today),
            "projected_month": money(h.projected_month), "calls_per_min": money(h.calls_per_min),
            "error_rate_1h": h.error_rate_1h, "p95_ms": h.p95_ms,
            "day_budget": money(h.day_budget.limit), "month_budget": money(h.month_budget.limit),
            "day_budget_state": h.day_budget.state.value, "month_budget_state": h.month_budget.state.value,
        },
        "agents": [{
            "agent": a.agent_id, "agent_display": None if a.agent_id is None else visible_id(a.agent_id),
            "state": a.state.value, "spend_today": money(a.spend_today),
            "burn_per_min": money(a.velocity_per_min), "level": a.velocity_level.value,
            "calls_today": a.calls_today, "errors_today": a.errors_today, "p95_ms": a.p95_ms,
            "budget": money(a.budget.limit), "budget_used": a.budget.fraction, "budget_state": a.budget.state.value,
        } for a in snap.agents],
        "models": [{"model": m.model, "state": m.state.value, "spend_today": money(m.spend_today),
                    "calls_today": m.calls_today, "flat_calls": m.flat_calls} for m in snap.models],
        "providers": [{"provider": p.provider, "health": p.health.value, "state": p.state.value,
                       "spend_today": money(p.spend_today), "calls_today": p.calls_today,
                       "error_rate_5m": p.error_rate_5m} for p in snap.providers],
        "switches": [{"key": s.key, "kind": s.kind.value, "scope": s.scope, "target": s.target,
                      "who": s.origin[1], "why": s.origin[2], "ttl_seconds": s.ttl_seconds} for s in snap.switches],
        "alerts": [{"key": a.key, "severity": a.severity.name, "rule": a.rule, "subject": a.subject,
                    "figure": a.figure} for a in snap.alerts],
        "notes": [n for n in (snap.anomaly_note,) if n],
        "data_quality": list(snap.data_quality),
    }


def budget_cell(budget: BudgetView) -> str:
    """`none` only for a disabled budget; one Redis holds but costtop cannot read is unknown, `?`."""
    if budget.state is BudgetState.DISABLED:
        return NO_BUDGET
    return UNKNOWN if budget.state is BudgetState.UNKNOWN else usd(budget.limit)


def _csv_row(row: dict[str, Any], agent: AgentRow) -> dict[str, Any]:
    """The JSON row, escaped for spreadsheets, with the budget as the table says it when it has no
    usable limit ("none" or "?", not an empty cell that reads the same for both)."""
    budget = agent.budget
    if budget.state in (BudgetState.DISABLED, BudgetState.UNKNOWN) or budget.limit is None:
        row = {**row, "budget": budget_cell(budget)}
    return {key: csv_cell(value) for key, value in row.items()}


def render(snap: Snapshot, fmt: str) -> str:
    data = as_dict(snap)
    if fmt == "json":
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=AGENT_FIELDS, lineterminator="\n", extrasaction="ignore")
        writer.writeheader()
        # The visible form of the id: a CSV opened in a spreadsheet would hide a zero-width character too.
        writer.writerows(_csv_row({**row, "agent": "(none)" if row["agent"] is None else row["agent_display"]}, agent)
                         for row, agent in zip(data["agents"], snap.agents, strict=True))
        return out.getvalue()
    h = snap.header
    lines = [f"costtop snapshot {data['at']}",
             f"today {usd(h.spend_today)}  month {usd(h.spend_month)}  burn {usd(h.velocity_per_min)}/min  "
             f"calls {h.calls_per_min:.1f}/min"]
    lines += [f"{s.name}: {'ok' if s.connected else 'UNREACHABLE: ' + clean(s.error or '')}" for s in snap.sources]
    rows = [("AGENT", "STATE", "TODAY", "$/MIN", "CALLS", "ERR", "BUDGET")]
    rows += [(visible_id(a.agent_id, 40), a.state.value, usd(a.spend_today), usd(a.velocity_per_min),
              UNKNOWN if a.calls_today is None else str(a.calls_today),
              UNKNOWN if a.errors_today is None else str(a.errors_today),
              budget_cell(a.budget)) for a in snap.agents]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:  # names and states to the left, figures to the right
        cells = [cell.ljust(w) if i < 2 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths, strict=True))]
        lines.append("  ".join(cells).rstrip())
    lines += [f"{a.severity.name} {a.rule} {visible_id(a.subject, 40)}: {clean(a.figure, 120)}" for a in snap.alerts]
    lines += [f"DATA {clean(note, 200)}" for note in snap.data_quality]
    return "\n".join(lines) + "\n"


def exit_code(snap: Snapshot) -> int:
    return 0 if all(s.connected for s in snap.sources) else 3
