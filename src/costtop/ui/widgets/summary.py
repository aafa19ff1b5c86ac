"""The header: spend, velocity, budgets, fleet health and one badge per source."""

from __future__ import annotations

from decimal import Decimal

from rich.text import Text

from costtop.ages import span, whole
from costtop.engine.snapshot import BudgetView, FallbackView, Snapshot, SourceView
from costtop.money import usd
from costtop.sources.records import ReplicaLag
from costtop.text import clean
from costtop.ui.display import Display
from costtop.ui.format import budget_bar, duration, level_text, millis, percent, runs_out
from costtop.ui.themes import DEFAULT_PALETTE, Palette, palette
from costtop.ui.widgets.line_diff import TextLines

# A source whose last good read is older than this is shown stale even if no read has failed yet.
STALE_AFTER_SECONDS = 5.0


def connecting(source: SourceView) -> bool:
    """Not read yet and nothing failed: the first read is still on its way."""
    return not source.connected and source.age_seconds is None and source.error is None


def fresh(source: SourceView) -> bool:
    """Read lately enough for its figures to be today's: else they are shown STALE (here and on the wall)."""
    return source.connected and source.age_seconds is not None and source.age_seconds <= STALE_AFTER_SECONDS


def badge(source: SourceView, p: Palette = DEFAULT_PALETTE) -> Text:
    if connecting(source):
        return Text(f"◌ {source.name} connecting…", style=p.strong_warning)
    if fresh(source):
        text = Text(f"● {source.name}", style=p.strong_ok)
        # Whole seconds: tenths would change the header at every poll for no one's benefit.
        text.append(f" {int(source.age_seconds or 0)}s", style=p.ok)  # fresh: never None
        if source.replica is not None:
            text.append_text(replica_lag(source.replica, p))
        return text
    text = Text(f"✖ {source.name} STALE", style=p.killed)
    text.append(f" last read {duration(source.age_seconds)} ago" if source.age_seconds is not None
                else " never read", style=p.critical)
    return text


def replica_lag(lag: ReplicaLag, p: Palette = DEFAULT_PALETTE) -> Text:
    """A standby's lag behind its primary (sources/replica.py): `replica 0s`, `replica ≤12s` for a replay
    backlog's upper bound, `replica lag ?` with why when it cannot be known. Over STALE_AFTER_SECONDS
    its figures are that old: a warning colour. Then, if so, that audit rows go to the local spool."""
    if lag.seconds is None:
        text = Text(f" replica lag ? ({clean(lag.why, 40)})", style=p.strong_warning)
    else:
        style = p.warning if lag.seconds > STALE_AFTER_SECONDS else p.ok
        text = Text(f" replica {'≤' if lag.at_most else ''}{whole(lag.seconds)}", style=style)
    if lag.spooled:  # a standby refuses audit rows, and no primary was named for them
        text.append(" · audit rows to the local spool: set audit_database_url", style=p.strong_warning)
    return text


def fallback_segment(view: FallbackView, p: Palette = DEFAULT_PALETTE) -> Text:
    """The gateway's fallback file in one segment: lines waiting and the oldest one's age. Empty is
    good news and said so; past the drain limit it is red; what could not be read is "?" or "≥"."""
    if view.error is not None and not view.lines:
        text = Text("Fallback ?", style=p.strong_warning)
        text.append(f" ({clean(view.error, 60)})", style=p.warning)
        return text
    if not view.lines:
        return Text("Fallback empty", style=p.ok)
    at_least = "" if view.caught_up and view.error is None else "≥"
    style = p.killed if view.overdue else p.strong_warning
    text = Text(f"{'▲ ' if view.overdue else ''}Fallback {at_least}{view.lines:,} "
                f"line{'s' if view.lines != 1 else ''}", style=style)
    age = view.oldest_age_seconds
    if age is not None:
        text.append(f" oldest {span(age)}", style=style)
    if view.overdue:
        text.append(" NOT DRAINED", style=style)
    if view.malformed:
        text.append(f" ({view.malformed:,} malformed)", style=p.critical)
    return text


def newest_row(age: float | None, silent: bool, p: Palette = DEFAULT_PALETTE) -> Text:
    """The newest row's age by costtop's clock: a Postgres badge can be green while the gateway has
    stopped writing, and only this says so. Silent: the alert's words, in red."""
    if silent:
        return Text(f"✖ no rows {'ever' if age is None else whole(age)}", style=p.killed)
    return _stat("Last row", Text("–" if age is None else whole(age), style="dim"))


def _budget(label: str, budget: BudgetView, p: Palette) -> Text:
    text = Text(f"{label} ", style="bold")
    text.append_text(budget_bar(budget, p, width=6))
    if budget.runs_out_in is not None and budget.runs_out_in > 0:
        text.append(" out in ", style="bold")
        text.append_text(runs_out(budget, p))
    return text


def _forecast(amount: Decimal | None) -> Text:
    return Text(f" → {usd(amount)}", style="dim") if amount is not None else Text("")


def _stat(label: str, value: Text | str) -> Text:
    text = Text(f"{label} ", style="bold")
    text.append_text(value if isinstance(value, Text) else Text(value))
    return text


def pack(items: list[Text], width: int, gap: int = 2) -> Text:
    """Items laid out in lines no wider than `width`, never split inside an item."""
    lines: list[Text] = []
    line = Text()
    for item in items:
        if line.cell_len and line.cell_len + gap + item.cell_len > width:
            lines.append(line)
            line = Text()
        if line.cell_len:
            line.append(" " * gap)
        line.append_text(item)
    if line.cell_len:
        lines.append(line)
    return Text("\n").join(lines)


def summary_text(snap: Snapshot, display: Display | None = None, width: int = 160,
                 p: Palette = DEFAULT_PALETTE) -> Text:
    display = display or Display()
    h = snap.header
    burn = level_text(f"{usd(h.velocity_per_min)}/min", h.velocity_level, p)
    burn.append(f" ({usd(h.velocity_per_hour, 0)}/h)", style="dim")
    if h.rows_silent:
        burn.append(" stale", style=p.strong_critical)  # the window holds the last rows, not the last 5 minutes
    first = [
        Text("costtop", style="bold reverse"),
        _stat("Today", Text(usd(h.spend_today)) + _forecast(h.projected_today)),
        _stat("Month", Text(usd(h.spend_month)) + _forecast(h.projected_month)),
        _stat("Burn 5m", burn),
        _budget("Day budget", h.day_budget, p),
        _budget("Month budget", h.month_budget, p),
    ]
    if display.read_only:
        first.insert(1, Text("READ-ONLY", style=p.warning_block))
    second = [
        _stat("Agents", f"{h.active_agents} active/{h.known_agents}"),
        _stat("Calls", f"{h.calls_per_min:.1f}/min"),
        _stat("Errors 1h", percent(h.error_rate_1h)),
        _stat("Cache hit", percent(h.cache_hit_rate)),
        _stat("p95 5m", millis(h.p95_ms)),
        newest_row(h.newest_row_age, h.rows_silent, p),
        *(badge(s, p) for s in snap.sources),
    ]
    if snap.fallback is not None:
        second.append(fallback_segment(snap.fallback, p))
    if width >= 120 or display.refresh != 1.0:  # on a small terminal only when it is not the usual second
        second.insert(5, _stat("Refresh", Text(f"{display.refresh:g}s", style="dim")))
    if snap.data_quality:
        # The notes themselves are in the alerts pane (and `costtop snapshot`); the count stays in sight
        # on a terminal too small for that pane.
        notes = len(snap.data_quality)
        second.append(Text(f"▲ {notes} data note{'s' if notes > 1 else ''}", style=p.strong_warning))
    if snap.audit_pending:
        waiting = Text(f"▲ {snap.audit_pending} audit row{'s' if snap.audit_pending > 1 else ''} "
                       "waiting for Postgres", style=p.strong_warning)
        if snap.audit_error:
            waiting.append(f" ({clean(snap.audit_error, 80)})", style=p.warning)
        second.append(waiting)
    if snap.audit_spool_error:
        # The safety net itself is torn: the next Postgres outage would lose audit rows.
        second.append(Text(f"▲ audit spool cannot be written ({clean(snap.audit_spool_error, 60)})",
                           style=p.strong_critical))
    if snap.rollup_note:  # start-up was slow, no figure is wrong: said quietly, in the header's last line
        second.append(Text(clean(snap.rollup_note, max(20, width - 1)), style="dim"))
    out = pack(first + second, width) if width < 150 else Text.assemble(pack(first, width), "\n",
                                                                         pack(second, width))
    out.no_wrap = True
    if display.paused:
        out.append("\n")
        out.append(" PAUSED ", style=p.warning_block)
        out.append(" the screen is frozen at this moment; data is still being read (p: resume)", style=p.strong_warning)
    if snap.global_kill is not None:
        source, who, why = snap.global_kill.origin
        out.append("\n")
        out.append(" GLOBAL KILL ON ", style=p.killed)
        out.append(f" every call is refused · by {who} ({source}): {why}", style=p.killed_text)
    if h.totals_pending:
        out.append("\n")
        out.append("Reading today's rows from Postgres: the day's and month's figures follow; the 5-minute "
                   "window is live.", style=p.strong_warning)
    for source in snap.sources:
        if source.error:
            out.append("\n")
            out.append(f"{source.name}: ", style=p.strong_critical)
            out.append(source.error, style=p.critical)
    return out


class Summary(TextLines):
    """Renders the header of a snapshot, repainting only the cells that changed."""

    def show(self, snap: Snapshot, display: Display | None = None) -> None:
        width = max(20, self.content_size.width or self.app.size.width - 2)
        self.set_text(summary_text(snap, display, width, palette(self.app)))
