"""What the operator has set for the display, as opposed to what the data says."""

from __future__ import annotations

from dataclasses import dataclass

REFRESH_STEPS = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0)  # seconds, for `+` and `-`


@dataclass(frozen=True, slots=True)
class Display:
    read_only: bool = False
    paused: bool = False  # the screen is frozen; reading goes on
    refresh: float = 1.0


def next_refresh(current: float, faster: bool) -> float:
    """The next step faster or slower than `current`, staying within the steps."""
    if faster:
        return max([s for s in REFRESH_STEPS if s < current] or [REFRESH_STEPS[0]])
    return min([s for s in REFRESH_STEPS if s > current] or [REFRESH_STEPS[-1]])
