"""The wall screen (`costtop --wall`): how it looks, that it cannot write, and its state's colour."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from decimal import Decimal

import pytest
from textual.color import Color
from textual.widgets import Digits, Footer

from appkit import fresh_snapshot, screen_text, wait_for_data, wait_until, writing_keys_refused
from costtop.config import Settings
from costtop.demo.screenshots import NOW, static_app
from costtop.demo.static_feed import StaticFeed
from costtop.engine.snapshot import Alert, BudgetState, BudgetView, Level, Severity, Snapshot, SourceView
from costtop.money import usd
from costtop.sources.errors import SourceError
from costtop.sources.records import RedisState
from costtop.ui.app import CosttopApp
from costtop.ui.screens.help import HelpScreen
from costtop.ui.screens.wall import WallScreen, budget_figure, burn_figure, today_figure
from costtop.ui.themes import DEFAULT_PALETTE
from costtop.ui.wall_state import WallLevel, wall_state
from costtop.ui.widgets.big_figure import UNKNOWN_GLYPH, BigFigure


def wall_app(feed: StaticFeed | None = None, theme: str = "costtop-dark") -> CosttopApp:
    return static_app(Settings(wall=True, theme=theme), feed)


@pytest.mark.parametrize("size", [(240, 67), (80, 24)], ids=lambda s: f"{s[0]}x{s[1]}")
def test_wall_screen(snap_compare, size: tuple[int, int]) -> None:
    """240x67: a 1920x1080 screen seen from 3 m; 80x24: still whole, nothing overlapping."""
    assert snap_compare(wall_app(), terminal_size=size, run_before=wait_for_data)


async def test_the_wall_shows_the_figures_in_large_digits_and_no_footer() -> None:
    app = wall_app()
    async with app.run_test(size=(240, 67)) as pilot:
        await wait_for_data(pilot)
        screen = app.screen
        assert isinstance(screen, WallScreen)
        assert not screen.query(Footer)
        header = app.snapshot.header if app.snapshot is not None else None
        assert header is not None and header.velocity_per_hour is not None
        digits = {f.id: f.query_one(Digits).value for f in screen.query(BigFigure)}
        fraction = header.day_budget.fraction
        assert fraction is not None and header.spend_today is not None
        # The header's figures (under $1,000: with cents), the budget in whole percent.
        assert digits == {"wall-burn": usd(header.velocity_per_hour), "wall-today": usd(header.spend_today),
                          "wall-budget": f"{fraction * 100:.0f}%"}
        assert all(f.query_one(Digits).display for f in screen.query(BigFigure))
        text = screen_text(app)
        assert "research-bot" in text and "Alerts (" in text and "read-only" in text


async def test_the_wall_cannot_write_and_says_why_a_writing_key_does_nothing() -> None:
    app = wall_app()
    assert app.read_only and app.settings.read_only
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for_data(pilot)
        await writing_keys_refused(pilot)
        assert isinstance(app.screen, WallScreen)
        await pilot.press("question_mark")  # help still opens (CosttopScreen's keys), and says read-only
        await wait_until(pilot, lambda: isinstance(app.screen, HelpScreen))
        assert "READ-ONLY" in screen_text(app)
        await pilot.press("escape")
        await wait_until(pilot, lambda: isinstance(app.screen, WallScreen))
        await pilot.press("p")  # pausing is no write: the band says the screen is frozen
        await wait_until(pilot, lambda: "PAUSED" in screen_text(app))


def test_wall_implies_read_only_whatever_the_config_says() -> None:
    assert Settings(wall=True, read_only=False).read_only
    assert Settings(wall="yes").read_only  # what pydantic reads as true is a wall, so read-only too
    assert not Settings().read_only and not Settings().wall


class LostRedisFeed(StaticFeed):
    """Redis answers the first read, then never again: its figures on screen are the last known."""

    def __init__(self, now: datetime) -> None:
        super().__init__(now)
        self.reads = 0

    async def read_redis(self) -> RedisState:
        self.reads += 1
        if self.reads > 1:
            raise SourceError("Redis: connection refused")
        return await super().read_redis()


async def test_stale_data_turns_the_whole_wall_the_stale_colour_and_says_so() -> None:
    app = wall_app(LostRedisFeed(NOW))
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_for_data(pilot)
        screen = app.screen
        assert isinstance(screen, WallScreen)
        await wait_until(pilot, lambda: screen.fleet_state is not None and screen.fleet_state.stale)
        await fresh_snapshot(pilot)
        killed = Color.parse(app.theme_variables["status-killed"])
        assert screen.styles.border_top[1] == killed
        assert screen.query_one("#wall-band-box").styles.background == killed
        text = screen_text(app)
        assert "STALE" in text and "Redis STALE" in text
        assert all(f.has_class("-stale") for f in screen.query(BigFigure))


def _snap(app: CosttopApp) -> Snapshot:
    assert app.snapshot is not None
    return app.snapshot


async def test_the_state_is_the_worst_of_burn_alerts_kill_and_staleness() -> None:
    app = wall_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for_data(pilot)
        snap = _snap(app)
    calm = dataclasses.replace(snap, alerts=(), global_kill=None,
                               header=dataclasses.replace(snap.header, velocity_level=Level.OK))
    assert wall_state(calm).level is WallLevel.OK and wall_state(calm).reasons == ()
    warned = dataclasses.replace(calm, alerts=(Alert("k", "burn rate", Severity.WARNING, "x", "$1"),))
    assert wall_state(warned).level is WallLevel.WARNING
    critical = dataclasses.replace(warned, header=dataclasses.replace(calm.header, velocity_level=Level.CRITICAL))
    assert wall_state(critical).level is WallLevel.CRITICAL
    gone = SourceView("Postgres", False, 40.0, "timeout")
    stale = dataclasses.replace(critical, sources=tuple(gone if s.name == "Postgres" else s for s in critical.sources))
    state = wall_state(stale)
    assert state.level is WallLevel.STALE and state.stale
    assert state.reasons[0].startswith("Postgres STALE")  # worst first
    silent = dataclasses.replace(calm, header=dataclasses.replace(calm.header, rows_silent=True))
    assert wall_state(silent).level is WallLevel.STALE  # a silent gateway is stale data, never green
    pending = dataclasses.replace(calm, header=dataclasses.replace(calm.header, totals_pending=True))
    assert wall_state(pending).level is WallLevel.UNKNOWN


async def test_unknown_figures_are_a_question_mark_never_zero_and_no_budget_is_said() -> None:
    app = wall_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for_data(pilot)
        snap = _snap(app)
    unknown = dataclasses.replace(snap, header=dataclasses.replace(
        snap.header, velocity_per_hour=None, velocity_per_min=None, spend_today=None,
        day_budget=BudgetView(BudgetState.UNKNOWN, Decimal(200))))
    for figure in (burn_figure(unknown, DEFAULT_PALETTE), today_figure(unknown),
                   budget_figure(unknown, DEFAULT_PALETTE)):
        assert figure.digits is None and figure.words == UNKNOWN_GLYPH and figure.tone == "unknown"
        assert figure.note.plain == "unknown"
    disabled = BudgetView(BudgetState.DISABLED)
    none = dataclasses.replace(snap, header=dataclasses.replace(snap.header, day_budget=disabled))
    figure = budget_figure(none, DEFAULT_PALETTE)
    assert figure.digits is None and figure.words == "no budget"


async def test_the_wall_draws_an_unknown_figure_as_a_large_question_mark() -> None:
    app = wall_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for_data(pilot)
        screen = app.screen
        assert isinstance(screen, WallScreen)
        snap = _snap(app)
        app.paused = True  # the session's next snapshots must not draw over this one
        unknown = dataclasses.replace(snap, header=dataclasses.replace(snap.header, spend_today=None))
        screen.show(unknown, app.display)
        await pilot.pause()
        today = screen.query_one("#wall-today", BigFigure)
        assert not today.has_class("-digits")
        assert not today.query_one(Digits).display and today.query_one(".figure-words").display
        assert "╭─╮" in screen_text(app)


async def test_agent_ids_are_drawn_as_text_never_as_markup_or_escapes() -> None:
    from costtop.ui.widgets.top_agents import top_agents_text

    app = wall_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for_data(pilot)
        snap = _snap(app)
    hostile = "[bold red]evil[/]\x1b]0;pwned\x07"
    agents = (dataclasses.replace(snap.agents[0], agent_id=hostile), *snap.agents[1:])
    text = top_agents_text(dataclasses.replace(snap, agents=agents), width=120)
    assert "[bold red]evil[/]" in text.plain  # as typed: not markup
    assert "\x1b" not in text.plain and "\x07" not in text.plain
