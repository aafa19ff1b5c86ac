"""Key press to the painted frame that shows its effect: the instrument of benchmarks/keys.py and floods.py.

A mixin for the headless app (benchmarks/headless_app.py). `press(name)` is called on a thread other
than the UI's (the app's stdin-command thread), as a terminal driver's input thread is: it notes what
the key must change, takes `time.time()` and posts the `events.Key` to the app, exactly as the driver
posts a key read from the terminal. The end point is `App._display`, the last step of every screen
refresh (the compositor's update of the screen is in hand; a real driver then turns it into escape
sequences, which the headless driver skips): the first call with a real update, outside a batch, at
which the key's effect is in the state that update was composed from logs
`{"ev": "key_painted", "key", "t_post", "t"}` (`t` when that `_display` returned). The effects:

- `down`, `up`: the agent table's selected agent is another one (the cursor follows an agent, not an
  index, so a re-sort between the post and the frame does not count as the key's effect);
- `question_mark`: the help screen is the one refreshed; `escape` (help open): the main screen is;
- `s`: the main screen has drawn a snapshot sorted by the next key (the sort goes through the session:
  its effect is the next snapshot built on the session's thread, drawn by the app).

Each frame is composed on the UI's loop from the widgets' state at that moment, and a state change
marks its widget dirty synchronously, so a frame composed after the change shows it. Only observation
is added: nothing here changes what the app does.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from textual import events
from textual.screen import Screen

from costtop.engine.snapshot import SortKey
from costtop.ui.screens.help import HelpScreen
from costtop.ui.screens.main import MainScreen
from costtop.ui.widgets.agent_table import AgentTable

CHARACTERS = {"question_mark": "?", "escape": "\x1b", "s": "s", "q": "q", "down": None, "up": None}


class KeyProbe:
    """Mixed into a `CosttopApp` subclass before it (its `_display` comes first)."""

    log_event: Callable[..., None]
    _batch_count: int

    def _init_probe(self) -> None:
        self._trial: tuple[str, float, Callable[[Screen[Any]], bool]] | None = None
        self._trial_lock = threading.Lock()
        self._agents: AgentTable | None = None  # found on the UI's loop; its selection read from anywhere

    # -- what the app has drawn ----------------------------------------------------------------------

    def _main_screen(self) -> MainScreen | None:
        return next((s for s in self.screen_stack if isinstance(s, MainScreen)), None)  # type: ignore[attr-defined]

    def _selected_agent(self) -> str | None:
        """The agent under the cursor: one attribute read, safe from the pressing thread too."""
        return self._agents.selected_key if self._agents is not None else None

    def _drawn_sort(self) -> SortKey | None:
        main = self._main_screen()
        shown = getattr(main, "shown", None)  # the main screen's own record of what it drew
        if shown is None:
            shown = getattr(self, "snapshot", None)  # before issue 17 the app drew its engine's snapshot
        return shown.sort if shown is not None else None

    # -- a press ------------------------------------------------------------------------------------

    def press(self, key: str) -> None:
        """From a thread other than the UI's: note the key's expected effect, then post it."""
        if key in ("down", "up"):
            before = self._selected_agent()

            def moved(screen: Screen[Any]) -> bool:
                return isinstance(screen, MainScreen) and self._selected_agent() != before

            effect = moved
        elif key == "question_mark":
            def opened(screen: Screen[Any]) -> bool:
                return isinstance(screen, HelpScreen)

            effect = opened
        elif key == "escape":
            def closed(screen: Screen[Any]) -> bool:
                return isinstance(screen, MainScreen) and not isinstance(self.screen, HelpScreen)  # type: ignore[attr-defined]

            effect = closed
        elif key == "s":
            keys = list(SortKey)
            current = self._drawn_sort() or SortKey.BURN
            wanted = keys[(keys.index(current) + 1) % len(keys)]

            def sorted_by(screen: Screen[Any]) -> bool:
                return isinstance(screen, MainScreen) and self._drawn_sort() is wanted

            effect = sorted_by
        elif key == "q":  # the end point is the process's exit, seen by the benchmark
            self.log_event("key_post", key=key, t_post=time.time())
            self.post_message(events.Key(key, CHARACTERS[key]))  # type: ignore[attr-defined]
            return
        else:
            raise ValueError(f"no effect known for {key}")
        t_post = time.time()
        with self._trial_lock:
            self._trial = (key, t_post, effect)
        self.post_message(events.Key(key, CHARACTERS[key]))  # type: ignore[attr-defined]

    def _display(self, screen: Screen[Any], renderable: Any) -> None:
        super()._display(screen, renderable)  # type: ignore[misc]
        if renderable is None or self._batch_count:
            return  # nothing painted
        if self._agents is None:
            main = self._main_screen()
            found = main.query(AgentTable) if main is not None else None
            self._agents = found.first() if found else None
        trial = self._trial
        if trial is None:
            return
        key, t_post, effect = trial
        if effect(screen):
            with self._trial_lock:
                if self._trial is trial:
                    self._trial = None
            self.log_event("key_painted", key=key, t_post=t_post, t=time.time())
