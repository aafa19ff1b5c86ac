"""Make screenshots/ from fixed demo data and a frozen clock: `python -m costtop.demo.screenshots`.

The same static feed as the snapshot tests, so every run draws the same pixels: the main screen, an
agent's screen, the kill dialog, the 24-hour chart, and the main screen in two more themes.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

from textual.pilot import Pilot

from costtop.config import Settings
from costtop.demo.static_feed import StaticFeed
from costtop.pricing.catalog import shipped
from costtop.session import Session
from costtop.ui.app import CosttopApp

NOW = datetime(2026, 11, 22, 14, 30, tzinfo=UTC)
SIZE = (160, 50)


def static_app(settings: Settings | None = None, feed: StaticFeed | None = None,
               theme_dir: Path | None = None, layout_path: Path | None = None) -> CosttopApp:
    """The app on the static demo data (or a variant of it) at a frozen `NOW`: the screenshots' and
    the UI tests'."""
    settings = settings or Settings()
    session = Session(settings, feed or StaticFeed(NOW), clock=lambda: NOW, catalog=shipped())
    return CosttopApp(settings, session, theme_dir=theme_dir, layout_path=layout_path)


async def settle(app: CosttopApp, pilot: Pilot[None]) -> None:
    engine = app.session.engine
    for _ in range(200):
        if app.snapshot is not None and app.snapshot.agents and not engine.day_pending \
                and engine.history_day == engine.day and engine.counters is not None:
            break
        await pilot.pause(0.05)
    number = await app.session.publish_now()
    for _ in range(200):
        if app.session.taken >= number:
            break
        await pilot.pause(0.05)
    await pilot.pause(0.2)


async def main_screen(app: CosttopApp, pilot: Pilot[None]) -> None:
    await settle(app, pilot)


async def agent_screen(app: CosttopApp, pilot: Pilot[None]) -> None:
    await settle(app, pilot)
    await pilot.press("enter")
    await pilot.pause(0.5)


async def kill_dialog(app: CosttopApp, pilot: Pilot[None]) -> None:
    await settle(app, pilot)
    await pilot.press("k")
    await pilot.pause(0.5)


async def chart_24h(app: CosttopApp, pilot: Pilot[None]) -> None:
    await settle(app, pilot)
    await pilot.press("v")
    await pilot.pause(0.3)


Scene = Callable[[CosttopApp, Pilot[None]], Awaitable[None]]
SCENES: list[tuple[str, str, Scene]] = [
    ("main-screen.svg", "costtop-dark", main_screen),
    ("agent-screen.svg", "costtop-dark", agent_screen),
    ("kill-dialog.svg", "costtop-dark", kill_dialog),
    ("velocity-24h.svg", "costtop-dark", chart_24h),
    ("theme-incident.svg", "incident", main_screen),
    ("theme-daylight.svg", "daylight", main_screen),
    ("main-screen-80x24.svg", "costtop-dark", main_screen),
    ("wall-screen.svg", "costtop-dark", main_screen),
]
# The on-call's terminal, and a 1920x1080 wall screen (`costtop --wall`); the others are 160x50.
SIZES = {"main-screen-80x24.svg": (80, 24), "wall-screen.svg": (240, 67)}


async def make(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    made = []
    with tempfile.TemporaryDirectory(prefix="costtop-screenshots-") as state:
        for name, theme, scene in SCENES:
            # The default layout, whatever the pane keys chose on this machine: a state file of its own.
            app = static_app(Settings(theme=theme, wall=name.startswith("wall")),
                             layout_path=Path(state) / "layout.json")
            async with app.run_test(size=SIZES.get(name, SIZE)) as pilot:
                await scene(app, pilot)
                (folder / name).write_text(app.export_screenshot(title="costtop"), encoding="utf-8")
            made.append(folder / name)
    return made


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("screenshots"))
    args = parser.parse_args()
    for path in asyncio.run(make(args.out)):
        print(path)


if __name__ == "__main__":
    main()
