"""Data-quality lines: what the rows themselves got wrong, said in words rather than hidden.

A row dated in the future, a row that came later than the lateness horizon, a row dated before the
month: none of them may move a figure silently, so each kind is counted and said in one line.
"""

from __future__ import annotations

from datetime import datetime

from costtop.ages import span
from costtop.sources.numbers import MAX_USD, MIN_USD
from costtop.sources.records import ReadQuality
from costtop.text import none_last, visible_id

MAX_NAMED = 5  # agents named in a data-quality line; the rest are counted
COST_TROUBLE = (f"a cost left out (NaN, infinite, or outside {MIN_USD:.0e}..{MAX_USD:.0e} USD)",
                "a negative cost, counted as recorded")


def rows(n: int) -> str:
    return f"{n:,} row" + ("" if n == 1 else "s")


def data_quality_lines(quality: ReadQuality, before_month: int, now: datetime,
                       others: tuple[str, ...] = ()) -> tuple[str, ...]:
    """One line per kind of trouble, most consequential first (`others`, the engine's own, before the
    rows that came late but were counted, which changed no figure); none when the rows are clean."""
    lines: list[str] = []
    if quality.future_rows:
        ahead = f" (up to {span((quality.future_latest - now).total_seconds())} ahead)" \
            if quality.future_latest is not None else ""
        lines.append(f"{rows(quality.future_rows)} dated in the future{ahead}: counted when their time comes")
    if quality.missed_rows and quality.resync_at is not None:
        lines.append(f"{rows(quality.missed_rows)} arrived later than the {span(quality.horizon)} horizon: "
                     f"counted by the resync at {quality.resync_at:%H:%M:%S} UTC")
    if quality.unreadable:
        lines.append(quality.unreadable)
    if before_month:
        lines.append(f"{rows(before_month)} dated before this month arrived today: not counted")
    lines += others
    if quality.late_rows:
        whose = "its" if quality.late_rows == 1 else "their"
        lines.append(f"{rows(quality.late_rows)} committed late, up to {span(quality.latest_lateness)} after "
                     f"{whose} time stamp: counted")
    return tuple(lines)


def cost_quality(flagged: dict[str | None, tuple[int, int]]) -> tuple[str, ...]:
    """The lines about today's costs, from each flagged agent's (unusable, negative) row counts: which
    agents have costs left out (NaN, infinite, beyond the bounds) and which have negative costs (counted,
    as SQL's sum() counts them). Names in their visible form, the agents first: on a narrow terminal
    the end of a line is what is cut."""
    lines = []
    for i, what in enumerate(COST_TROUBLE):
        found = sorted((a for a, counts in flagged.items() if counts[i]),
                       key=lambda a: (-flagged[a][i], none_last(a)))
        if not found:
            continue
        n = sum(flagged[a][i] for a in found)
        names = ", ".join("(none)" if a is None else visible_id(a, 40) for a in found[:MAX_NAMED])
        more = f" and {len(found) - MAX_NAMED} more" if len(found) > MAX_NAMED else ""
        lines.append(f"{names}{more}: {rows(n)} with {what}")
    return tuple(lines)
