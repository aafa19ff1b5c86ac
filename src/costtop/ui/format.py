"""Turning snapshot values into `Text`. Data is always appended as plain text, never as markup."""

from __future__ import annotations

from decimal import Decimal

from rich.text import Text

from costtop.ages import span, whole
from costtop.engine.snapshot import AgentState, BudgetState, BudgetView, Level
from costtop.money import NO_BUDGET, UNKNOWN

CENT = Decimal("0.01")

# Colour and a word for every state, so meaning survives 16 colours and NO_COLOR.
LEVEL_STYLE = {
    Level.OK: "green",
    Level.WARNING: "bold yellow",
    Level.CRITICAL: "bold red",
    Level.EMERGENCY: "bold white on red",
    Level.UNKNOWN: "dim",
}
LEVEL_WORD = {Level.OK: "", Level.WARNING: "WARN", Level.CRITICAL: "CRIT", Level.EMERGENCY: "EMERG",
              Level.UNKNOWN: "?"}
BUDGET_STYLE = {
    BudgetState.OK: "green",
    BudgetState.WARNING: "bold yellow",
    BudgetState.EXCEEDED: "bold red",
    BudgetState.DISABLED: "dim",
    BudgetState.UNKNOWN: "dim",
}
STATE_STYLE = {
    AgentState.OK: "green",
    AgentState.THROTTLED: "bold yellow",
    AgentState.KILLED: "bold white on red",
    AgentState.UNKNOWN: "dim",
}


def percent(value: float | None, places: int = 1) -> str:
    return UNKNOWN if value is None else f"{value * 100:.{places}f}%"


def millis(value: int | None) -> str:
    if value is None:
        return UNKNOWN
    return f"{value} ms" if value < 1000 else f"{value / 1000:.1f} s"


def duration(seconds: float | None) -> str:
    return "never" if seconds is None else span(seconds, tenths=True)


def level_text(amount: str, level: Level) -> Text:
    text = Text(amount, style=LEVEL_STYLE[level] if level is not Level.OK else "")
    word = LEVEL_WORD[level]
    if word and word != UNKNOWN:
        text.append(f" {word}", style=LEVEL_STYLE[level])
    return text


def budget_bar(budget: BudgetView, width: int = 8, words: bool = True) -> Text:
    """`████░░░░ 52%`, or the state in words when there is no usable fraction."""
    if budget.state is BudgetState.DISABLED:
        return Text(NO_BUDGET, style="dim")
    fraction = budget.fraction
    if budget.state is BudgetState.UNKNOWN or fraction is None:
        return Text(UNKNOWN, style="dim")
    filled = max(0, min(width, round(fraction * width)))
    style = BUDGET_STYLE[budget.state]
    text = Text("█" * filled, style=style)
    text.append("░" * (width - filled), style="dim")
    # A tiny budget makes the fraction huge: the cell keeps its width.
    text.append(f" {fraction * 100:3.0f}%" if fraction < 10 else " >999%", style=style)
    if words and budget.state is BudgetState.EXCEEDED:
        text.append(" OVER", style=style)
    return text


def state_text(state: AgentState) -> Text:
    return Text(state.value, style=STATE_STYLE[state])


def runs_out(budget: BudgetView) -> Text:
    """When the budget is spent at the current burn rate: "SPENT", "14m", or "–" (not in its period)."""
    left = budget.runs_out_in
    if budget.state in (BudgetState.DISABLED, BudgetState.UNKNOWN) or budget.limit is None:
        return Text("–", style="dim")
    if left is None:
        return Text("–", style="dim")
    if left <= 0:
        return Text("SPENT", style="bold red")
    style = "bold red" if left < 3600 else "bold yellow" if left < 3 * 3600 else ""
    return Text(duration(left), style=style)


SPARKS = " ▁▂▃▄▅▆▇█"


def sparkline(values: tuple[Decimal, ...]) -> Text:
    """Each value against the largest one: the shape of the last minutes, not their size (a blank
    is a minute with no recorded spend)."""
    top = max(values, default=Decimal(0))
    if top <= 0:
        return Text(" " * len(values))
    steps = len(SPARKS) - 1
    return Text("".join(SPARKS[0 if v <= 0 else max(1, round(v / top * steps))] for v in values), style="cyan")


def call_age(last: float | None, now: float, seen_from: float | None, words: bool = False) -> Text:
    """How long ago a target's last call started: `12s` (or `12s ago` when there is room). No call
    read: `>7m` when costtop has read every call since a moment that long ago, else `?`."""
    if last is not None:
        shown = whole(now - last)
        return Text(f"{shown} ago" if words else shown, justify="right")
    if seen_from is not None:
        return Text(f">{whole(now - seen_from)}", style="dim", justify="right")
    return Text("?", style="dim", justify="right")
