"""The keys every costtop screen shows first: help and quit.

Textual's footer lists the focused widget's keys, then the screen's, then the app's, and cuts the line
at the terminal's edge: at 80 columns the app's `? Help` and `q Quit` came last and were never seen.
Declared here, on the screens themselves, they come first on every screen (the keymap still moves
them by their ids, `help` and `quit`).
"""

from __future__ import annotations

from textual.binding import Binding
from textual.screen import Screen


class CosttopScreen(Screen[None]):
    HELP_SCOPE = "every screen"
    BINDINGS = [
        Binding("question_mark", "app.help", "Help", id="help"),
        Binding("q", "app.quit", "Quit", id="quit"),
    ]
