"""`?`: every key (as remapped by the config's keymap) with its binding id, and what each colour means."""

from __future__ import annotations

import sys
from collections.abc import Iterable

from rich.style import Style
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widget import Widget
from textual.widgets import Static

from costtop.ui.format import styled
from costtop.ui.themes import Palette, palette

# What each colour means, with the word that says the same for 16-colour terminals and NO_COLOR; the
# colour is the running theme's (the Palette's style of that name; "" no colour, "dim" dimmed).
LEGEND: tuple[tuple[str, str, str], ...] = (
    ("ok", "ok", "an agent, model or provider running normally"),
    ("throttled", "strong_warning", "a throttle switch is on: the gateway slows it down"),
    ("killed", "killed", "a kill switch is on: the gateway refuses its calls"),
    ("unknown", "unknown", "its switches cannot be read (Redis is stale)"),
    ("WARN", "strong_warning", "a warning: burn rate, 80 % of a budget, errors, an unusual day"),
    ("CRIT", "strong_critical", "critical: burn rate, a budget spent, a provider down; rings the bell once"),
    ("EMERG", "killed", "emergency burn rate: an agent's $50 in 5 minutes by default; the fleet's, all of "
                        "the day budget within the hour at that pace"),
    ("STALE", "killed", "a source's last good read is old: its figures are the last known"),
    ("?", "", "unknown, never shown as $0"),
    ("none", "dim", "no budget (missing, zero or negative): disabled, never 'exceeded'"),
)


# The keys Textual itself gives every screen (not costtop's bindings, so not in the table above them).
MOVING: tuple[tuple[str, str], ...] = (
    ("tab / shift+tab", "focus the next / previous panel (agents, switches, providers, models, alerts)"),
    ("↑ ↓  pgup pgdn  home end", "move the cursor in the focused table"),
    ("← →", "scroll the focused table a column at a time (← / → in its titles: more that way; the names stay)"),
    ("1 2 3 4  5", "main screen: show / hide alerts, chart, providers and models, switches; zoom the agents"),
    ("enter", "open the selected row: an agent's screen, a trace's steps"),
    ("escape", "back to the previous screen, or close a dialog"),
    ("enter on an alert", "open what it names: the trace of a loop or a context explosion, or the agent"),
)


def own_bindings(cls: type) -> list[Binding]:
    """The bindings a class declares itself (not those it inherits)."""
    return [b for b in cls.__dict__.get("BINDINGS", ()) if isinstance(b, Binding)]


def _subclasses(cls: type) -> list[type]:
    found = []
    for sub in cls.__subclasses__():
        found += [sub, *_subclasses(sub)]
    return found


def declared_bindings(app_class: type) -> list[tuple[str, list[Binding]]]:
    """Every binding costtop declares, with where it applies: the app's, then each costtop screen's and
    widget's, found by walking the classes (a new screen's keys appear without a list to keep). A class
    names its place with `HELP_SCOPE`."""
    groups = [("", own_bindings(app_class))]
    seen: set[type] = set()
    classes = [c for c in (*_subclasses(Screen), *_subclasses(Widget))
               if c.__module__.startswith("costtop.") and c.__module__ in sys.modules]
    # Screens, then widgets, then dialogs and help (stable: each in the order its module defines it).
    classes.sort(key=lambda c: 2 if issubclass(c, ModalScreen) else 0 if issubclass(c, Screen) else 1)
    for cls in classes:
        bindings = own_bindings(cls)
        if cls in seen or not bindings:
            continue
        seen.add(cls)
        groups.append((f" ({getattr(cls, 'HELP_SCOPE', cls.__name__)})", bindings))
    return groups


def legend_style(p: Palette, name: str) -> Style | str:
    return name if name in ("", "dim") else styled(p, name)


class HelpScreen(ModalScreen[None]):
    HELP_SCOPE = "help"
    BINDINGS = [Binding("escape,question_mark,q", "app.pop_screen", "Close", id="help.close")]

    def __init__(self, keys: Iterable[tuple[str, str, str]], read_only: bool) -> None:
        """keys: (key as shown, what it does, binding id)."""
        super().__init__()
        self.keys = list(keys)
        self.read_only = read_only

    def compose(self) -> ComposeResult:
        table = Table(box=None, show_header=True, header_style="bold", pad_edge=False)
        table.add_column("Key")
        table.add_column("Does")
        table.add_column(Text("Binding id (for [keymap])"), style="dim")  # Text: brackets are not markup
        for key, what, binding_id in self.keys:
            table.add_row(Text(key, style="bold"), Text(what), Text(binding_id))
        moving = Table(box=None, show_header=False, pad_edge=False)
        for key, what in MOVING:
            moving.add_row(Text(key, style="bold"), Text(what))
        legend = Table(box=None, show_header=False, pad_edge=False)
        colours = palette(self.app)
        for word, style, meaning in LEGEND:
            legend.add_row(Text(word, style=legend_style(colours, style)), Text(meaning))
        with VerticalScroll(id="help"):
            yield Static(Text("costtop keys (esc or ? to close)", style="bold"), classes="pane-title")
            if self.read_only:
                yield Static(Text("READ-ONLY: the keys that change switches are disabled.",
                                   style=colours.strong_warning))
            yield Static(table)
            yield Static(Text("Moving around", style="bold"), classes="pane-title")
            yield Static(moving)
            yield Static(Text("Colours and words", style="bold"), classes="pane-title")
            yield Static(legend)
