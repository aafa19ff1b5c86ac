"""The keys every costtop screen shows first: help and quit.

Textual's footer lists the focused widget's keys, then the screen's, then the app's, and cuts the line
at the terminal's edge: at 80 columns the app's `? Help` and `q Quit` came last and were never seen.
Declared here, on the screens themselves, they come first on every screen (the keymap still moves
them by their ids, `help` and `quit`).
"""

from __future__ import annotations

from textual.binding import Binding
from textual.css.query import NoMatches
from textual.screen import Screen

from costtop.engine.snapshot import Snapshot
from costtop.ui.display import Display


class CosttopScreen(Screen[None]):
    HELP_SCOPE = "every screen"
    BINDINGS = [
        Binding("question_mark", "app.help", "Help", id="help"),
        Binding("q", "app.quit", "Quit", id="quit"),
    ]


class BoardScreen(CosttopScreen):
    """A screen drawn from every snapshot the app takes: the main screen, or the wall."""

    def __init__(self, classes: str | None = None) -> None:
        super().__init__(classes=classes)
        self.shown: Snapshot | None = None  # the snapshot on screen (the frozen one while paused)

    def show(self, snap: Snapshot, display: Display) -> None:
        self.shown = snap
        try:
            self._show(snap, display)
        except NoMatches:  # not composed yet, or torn down child by child at exit
            return

    def _show(self, snap: Snapshot, display: Display) -> None:
        raise NotImplementedError
