"""The confirm dialog for every switch change: the most dangerous moment in the app.

It names the target and the consequence, starts on Cancel, takes a reason and an optional TTL, and
for a global kill demands the word KILL. The target is fixed when the key is pressed, so a refresh
that re-sorts the table underneath cannot change what is killed.
"""

from __future__ import annotations

import re
from dataclasses import replace

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from costtop.sources.records import SwitchChange
from costtop.text import id_text, visible_id
from costtop.ui.themes import palette

_TTL = re.compile(r"^\s*(\d+)\s*([smhd]?)\s*$")
_UNIT = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_TTL = 7 * 86400


def parse_ttl(raw: str) -> int | None:
    """'' -> None (no expiry); '90', '10m', '2h', '1d' -> seconds; anything else raises ValueError."""
    if not raw.strip():
        return None
    match = _TTL.match(raw.lower())
    if not match:
        raise ValueError("TTL must be a number with an optional unit: 90, 10m, 2h, 1d")
    seconds = int(match.group(1)) * _UNIT[match.group(2)]
    if not 1 <= seconds <= MAX_TTL:
        raise ValueError("TTL must be between 1 second and 7 days")
    return seconds


def consequence(change: SwitchChange) -> tuple[str, str]:
    """(title, what happens) in plain words."""
    target = visible_id(change.target)
    if change.action == "remove":
        what = "every call" if change.scope == "global" else f"{change.scope} {target}"
        return (f"Resume {what}", f"Removes the {change.kind} switch: calls are accepted again on the next "
                                  "request.")
    if change.scope == "global":
        return ("KILL EVERYTHING", "Every LLM call through the gateway is refused until the switch is removed.")
    if change.kind == "throttle":
        return (f"Throttle {change.scope} {target}", "Its calls run at the gateway's reduced rate.")
    return (f"Kill {change.scope} {target}", "Its next request through the gateway is refused.")


DEFAULT_REASON = {"kill": "runaway_spend", "throttle": "slow_down", "remove": "resolved"}


class SwitchDialog(ModalScreen[SwitchChange | None]):
    HELP_SCOPE = "dialogs"
    BINDINGS = [Binding("escape", "cancel", "Cancel", id="dialog.cancel")]

    def __init__(self, change: SwitchChange, key: str) -> None:
        super().__init__()
        self.change = change
        self.key = key
        self.needs_word = change.action == "set" and change.kind == "kill" and change.scope == "global"
        self.too_small = False  # closed at once because the buttons did not fit on the terminal

    def compose(self) -> ComposeResult:
        title, what = consequence(self.change)
        default = DEFAULT_REASON["remove" if self.change.action == "remove" else self.change.kind]
        with Vertical(id="dialog"):
            yield Static(Text(title, style="bold"), id="dialog-title")
            yield Static(Text(what), id="dialog-what")
            # The exact key the gateway will be checked against, invisible characters shown as <U+XXXX>.
            yield Static(Text.assemble(Text("Key: ", style="dim"), id_text(self.key)), id="dialog-key")
            yield Label("Reason")
            yield Input(value=default, id="reason", max_length=200)
            if self.change.action == "set":
                yield Label("Auto-recover after (optional: 90, 10m, 2h, 1d)")
                yield Input(placeholder="no expiry", id="ttl", max_length=12)
            if self.needs_word:
                yield Label("Type KILL to confirm")
                yield Input(placeholder="KILL", id="word", max_length=8)
            yield Static("", id="dialog-error")
            with Horizontal(id="dialog-buttons"):
                yield Button("Cancel", id="cancel", variant="primary")
                yield Button("Confirm", id="confirm", variant="error", disabled=self.needs_word)

    def on_mount(self) -> None:
        self.query_one("#cancel", Button).focus()
        self.call_after_refresh(self._close_unless_it_fits)

    def _close_unless_it_fits(self) -> None:
        """A terminal too small for the whole dialog would cut off the buttons (the last lines): a
        change nobody can confirm or cancel with the mouse, under text nobody can read. Closed
        unused; the app says why (`too_small`)."""
        screen = self.region
        if all(screen.contains_region(button.region) and button.region.area for button in self.query(Button)):
            return
        self.too_small = True
        self.dismiss(None)

    @on(Input.Changed, "#word")
    def _word_typed(self, event: Input.Changed) -> None:
        self.query_one("#confirm", Button).disabled = event.value.strip() != "KILL"

    @on(Input.Submitted)
    def _no_submit(self, event: Input.Submitted) -> None:
        """Enter in a field moves on; it never confirms by itself."""
        event.stop()
        self.focus_next()

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed, "#confirm")
    def _confirm(self) -> None:
        error = self.query_one("#dialog-error", Static)
        if self.needs_word and self.query_one("#word", Input).value.strip() != "KILL":
            error.update(Text("Type KILL to confirm", style=palette(self.app).strong_critical))
            return
        ttl = None
        if self.change.action == "set":
            try:
                ttl = parse_ttl(self.query_one("#ttl", Input).value)
            except ValueError as exc:
                error.update(Text(str(exc), style=palette(self.app).strong_critical))
                return
        reason = self.query_one("#reason", Input).value.strip()
        self.dismiss(replace(self.change, reason=reason, ttl_seconds=ttl))
