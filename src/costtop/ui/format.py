"""Turning snapshot values into `Text`. Data is always appended as plain text, never as markup."""

from __future__ import annotations

from decimal import Decimal

from rich.style import Style
from rich.text import Text

from costtop.ages import span, whole
from costtop.engine.snapshot import AgentState, BudgetState, BudgetView, Level
from costtop.money import NO_BUDGET, UNKNOWN
from costtop.ui.themes import Palette

CENT = Decimal("0.01")

# A word for every state, so meaning survives 16 colours and NO_COLOR; its colour is the theme's (the
# Palette's style of that name: see ui/themes.py).
LEVEL_STYLE = {Level.OK: "ok", Level.WARNING: "strong_warning", Level.CRITICAL: "strong_critical",
               Level.EMERGENCY: "killed", Level.UNKNOWN: "unknown"}
LEVEL_WORD = {Level.OK: "", Level.WARNING: "WARN", Level.CRITICAL: "CRIT", Level.EMERGENCY: "EMERG",
              Level.UNKNOWN: "?"}
BUDGET_STYLE = {BudgetState.OK: "ok", BudgetState.WARNING: "strong_warning", BudgetState.EXCEEDED: "strong_critical",
                BudgetState.UNKNOWN: "unknown"}
STATE_STYLE = {AgentState.OK: "ok", AgentState.THROTTLED: "strong_warning", AgentState.KILLED: "killed",
               AgentState.UNKNOWN: "unknown"}


def styled(p: Palette, name: str) -> Style:
    """The palette's style of that name (the tables above name them)."""
    style: Style = getattr(p, name)
    return style


def percent(value: float | None, places: int = 1) -> str:
    return UNKNOWN if value is None else f"{value * 100:.{places}f}%"


def millis(value: int | None) -> str:
    if value is None:
        return UNKNOWN
    return f"{value} ms" if value < 1000 else f"{value / 1000:.1f} s"


def duration(seconds: float | None) -> str:
    return "never" if seconds is None else span(seconds, tenths=True)


def level_text(amount: str, level: Level, p: Palette) -> Text:
    style = styled(p, LEVEL_STYLE[level])
    text = Text(amount, style=style if level is not Level.OK else "")
    word = LEVEL_WORD[level]
    if word and word != UNKNOWN:
        text.append(f" {word}", style=style)
    return text


def budget_bar(budget: BudgetView, p: Palette, width: int = 8, words: bool = True) -> Text:
    """`████░░░░ 52%`, or the state in words when there is no usable fraction."""
    if budget.state is BudgetState.DISABLED:
        return Text(NO_BUDGET, style="dim")
    fraction = budget.fraction
    if budget.state is BudgetState.UNKNOWN or fraction is None:
        return Text(UNKNOWN, style=p.unknown)
    filled = max(0, min(width, round(fraction * width)))
    style = styled(p, BUDGET_STYLE[budget.state])
    text = Text("█" * filled, style=style)
    text.append("░" * (width - filled), style="dim")
    # A tiny budget makes the fraction huge: the cell keeps its width.
    text.append(f" {fraction * 100:3.0f}%" if fraction < 10 else " >999%", style=style)
    if words and budget.state is BudgetState.EXCEEDED:
        text.append(" OVER", style=style)
    return text


def state_text(state: AgentState, p: Palette) -> Text:
    return Text(state.value, style=styled(p, STATE_STYLE[state]))


def runs_out(budget: BudgetView, p: Palette, state: AgentState | None = None) -> Text:
    """When the budget is spent at the current burn rate: "SPENT", "14m", or "–" (not in its period);
    "killed" for a killed agent, which burns nothing more whatever its last five minutes say."""
    if state is AgentState.KILLED:
        return Text("killed", style=p.killed_text)
    left = budget.runs_out_in
    if budget.state in (BudgetState.DISABLED, BudgetState.UNKNOWN) or budget.limit is None:
        return Text("–", style="dim")
    if left is None:
        return Text("–", style="dim")
    if left <= 0:
        return Text("SPENT", style=p.strong_critical)
    style = p.strong_critical if left < 3600 else p.strong_warning if left < 3 * 3600 else ""
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
