"""Which panels the main screen shows, and how tall: the agents come first, always.

An on-call's terminal is often 80x24, and the agents are what they came for. So the agent table
keeps `AGENT_LINES` (its title, its header and 8 rows); the other panels share what is left in
`KEEP_ORDER` (alerts, then switches, then providers and models, then the chart): each gets its
smallest useful height while that fits, then they grow toward the height they want in the same
order. As the terminal shrinks, the chart folds first, then providers and models, then the
switches, then the alerts. The operator can also hide or show each panel with the pane keys and zoom
the agents; that choice is kept in a state file (never the user's config) and comes back next time.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import platformdirs

AGENT_LINES = 10  # title, column header and 8 agent rows
KEEP_ORDER = ("alerts", "switches", "usage", "chart")  # the last folds first
PANE_KEYS = {"1": "alerts", "2": "chart", "3": "usage", "4": "switches"}  # and 5: zoom the agents
PANE_NAMES = {"alerts": "alerts", "chart": "chart", "usage": "providers and models", "switches": "switches"}


@dataclass(frozen=True, slots=True)
class PaneNeed:
    """How tall a panel would like to be, and the least that is still of use (its title included)."""

    want: int
    least: int


def plan(room: int, needs: dict[str, PaneNeed], hidden: frozenset[str] = frozenset(),
         zoom: bool = False, agent_rows: int | None = None) -> dict[str, int]:
    """Each panel's height (0: folded) in `room` lines, after the agents' `AGENT_LINES`. First each
    panel in `KEEP_ORDER` gets its least while that fits (a panel that does not fit folds, and the
    ones after it may still fit); then each grows toward what it wants, in the same order. So in an
    incident at 80x24 the switches keep three lines rather than the alerts taking them all."""
    spare = room - AGENT_LINES
    heights = dict.fromkeys(KEEP_ORDER, 0)
    if zoom:
        return heights
    for pane in KEEP_ORDER:
        need = needs.get(pane, PaneNeed(0, 0))
        least = min(need.least, need.want)
        if pane not in hidden and need.want > 0 and least <= spare:
            heights[pane] = least
            spare -= least
    for pane in KEEP_ORDER:
        if heights[pane]:
            grow = min(spare, needs[pane].want - heights[pane])
            heights[pane] += grow
            spare -= grow
    if agent_rows is not None and heights["chart"]:
        # Lines the agents cannot fill (a fleet of 8 on a wall screen) go to the chart, not to blank rows.
        heights["chart"] += max(0, spare - max(0, agent_rows + 2 - AGENT_LINES))
    return heights


@dataclass(frozen=True, slots=True)
class LayoutChoice:
    """What the operator chose with the pane keys: the panels hidden, and whether the agents are zoomed."""

    hidden: frozenset[str] = field(default_factory=frozenset)
    zoom: bool = False

    def toggled(self, pane: str) -> LayoutChoice:
        return LayoutChoice(self.hidden ^ {pane}, False)

    def zoomed(self) -> LayoutChoice:
        return LayoutChoice(self.hidden, not self.zoom)


def state_path() -> Path:
    """The layout's state file: the user's state directory (XDG_STATE_HOME), not their config."""
    return Path(platformdirs.user_state_dir("costtop")) / "layout.json"


class LayoutStateError(Exception):
    """The state file could not be read or written: said in one line, and the layout goes on."""


def load(path: Path) -> LayoutChoice:
    """The layout saved last time; none saved is the default layout. A file that cannot be read, or
    that holds something else, raises LayoutStateError (the caller says so and uses the default)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return LayoutChoice()
    except (OSError, ValueError) as exc:
        raise LayoutStateError(f"layout state {path} could not be read ({exc}); using the default layout") from exc
    hidden = data.get("hidden") if isinstance(data, dict) else None
    zoom = data.get("zoom") if isinstance(data, dict) else None
    if not isinstance(hidden, list) or not all(h in PANE_NAMES for h in hidden) or not isinstance(zoom, bool):
        raise LayoutStateError(f"layout state {path} is not a costtop layout; using the default layout")
    return LayoutChoice(frozenset(hidden), zoom)


def save(path: Path, choice: LayoutChoice) -> None:
    """Write the choice atomically (a rename), so a crash mid-write leaves the old file whole."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".json.partial")
        partial.write_text(json.dumps({"hidden": sorted(choice.hidden), "zoom": choice.zoom}) + "\n",
                           encoding="utf-8")
        partial.replace(path)
    except OSError as exc:
        raise LayoutStateError(f"layout state {path} could not be written ({exc}); the layout holds until exit") \
            from exc
