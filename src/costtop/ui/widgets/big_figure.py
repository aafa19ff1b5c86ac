"""One figure in large digits, for the wall screen: a label, the figure, a line of context.

Textual's `Digits` draws numbers three lines high, readable across a room. A figure that is not a
number is never drawn as one: unknown is a large "?" (an unknown spend drawn as $0 would say all is
well), and a missing budget is the words "no budget". The tone (a CSS class, coloured in wall.tcss)
says how the figure stands; a stale figure is marked STALE in its label as well as dimmed.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Digits, Static

# "?" is not in Digits' font (it would be one small character on the bottom line): drawn to its size.
UNKNOWN_GLYPH = "╭─╮\n ╭╯\n •"
TONES = ("ok", "warning", "critical", "killed", "unknown", "plain")


@dataclass(frozen=True, slots=True)
class Figure:
    digits: str | None  # in Digits' font (0-9 $ , . + - :); None: `words` instead
    note: Text  # a line under it: the same figure per minute, the forecast, the budget's dollars
    tone: str = "plain"  # one of TONES
    words: str = UNKNOWN_GLYPH  # drawn when there are no digits


UNKNOWN_FIGURE = Figure(None, Text("unknown", style="bold"), "unknown")


class BigFigure(Vertical):
    def __init__(self, label: str, *, id: str | None = None) -> None:
        super().__init__(id=id, classes="-plain -digits")
        self.caption = label
        self.shown: Figure | None = None
        self.stale = False

    def compose(self) -> ComposeResult:
        yield Static(Text(self.caption), classes="figure-label")
        yield Digits("", classes="figure-digits")
        yield Static("", classes="figure-words")
        yield Static("", classes="figure-note")

    def show(self, figure: Figure, stale: bool = False) -> None:
        """Only what changed is updated: a wall screen runs for days, redrawing every second."""
        if figure == self.shown and stale == self.stale:
            return
        before, was_stale = self.shown, self.stale
        self.shown, self.stale = figure, stale
        if stale != was_stale:
            self.query_one(".figure-label", Static).update(Text(f"{self.caption} — STALE" if stale else self.caption))
            self.set_class(stale, "-stale")
        if before is None or figure.tone != before.tone:
            for tone in TONES:
                self.set_class(tone == figure.tone, f"-{tone}")
        self.set_class(figure.digits is not None, "-digits")
        if figure.digits is not None:
            digits = self.query_one(Digits)
            if digits.value != figure.digits:
                digits.update(figure.digits)
        elif before is None or before.words != figure.words or before.digits is not None:
            self.query_one(".figure-words", Static).update(Text(figure.words))
        if before is None or before.note != figure.note:
            self.query_one(".figure-note", Static).update(figure.note)
