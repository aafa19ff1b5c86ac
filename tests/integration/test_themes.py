"""Themes: the shipped files load, a user's file adds one, a broken file or a wrong name never crashes."""

from __future__ import annotations

from textual.geometry import Region
from textual.widget import Widget
from textual.widgets import Static

from appkit import screen_text, wait_for_data, wait_until
from costtop.config import Settings, load_settings
from costtop.demo.screenshots import static_app
from costtop.ui.app import CosttopApp
from costtop.ui.screens.help import HelpScreen
from costtop.ui.themes import DEFAULT_THEME, find_themes
from test_themes_unit import SHIPPED


async def test_a_broken_file_and_an_unknown_name_are_said_once_and_the_default_is_used(tmp_path) -> None:
    (tmp_path / "bad.toml").write_text("this is not toml [")
    app = static_app(Settings(theme="no-such-theme"), theme_dir=tmp_path)
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_for_data(pilot)
        messages = [n.message for n in app._notifications]
        assert any(m.startswith(f"theme file {tmp_path / 'bad.toml'}") for m in messages)
        assert any(m.startswith("No theme called no-such-theme (there are: costtop-dark, daylight, incident, "
                                "wallboard); using costtop-dark") for m in messages)
        assert app.theme == DEFAULT_THEME


async def test_a_theme_by_setting_and_by_flag(tmp_path) -> None:
    app = static_app(Settings(theme="incident"), theme_dir=tmp_path)
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_for_data(pilot)
        assert app.theme == "incident" and app.current_theme.background == "#000000"
    assert load_settings({"theme": "daylight"}, env={}).theme == "daylight"
    assert load_settings({}, env={"COSTTOP_THEME": "wallboard"}).theme == "wallboard"


async def test_the_palette_offers_the_themes_and_no_color_keeps_every_state_in_words(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    app = static_app(theme_dir=tmp_path)
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_for_data(pilot)
        assert set(SHIPPED) <= set(app.available_themes)
        assert any(c.title == "Theme" for c in app.get_system_commands(app.screen))  # ctrl+p: change theme
        assert app.no_color  # Textual draws through its monochrome filter
        text = screen_text(app)
        for word in ("ok", "throttled", "killed", "CRIT", "WARN", "none"):
            assert word in text, word


LOUD = {"status-ok": "#11AA22", "status-warning": "#CCBB01", "status-critical": "#DD0102",
        "status-killed": "#9900EE", "status-unknown": "#778899"}


def colours_of(widget: Widget) -> set[str]:
    """Every foreground and background colour the widget draws, as #rrggbb."""
    found: set[str] = set()
    for strip in widget.render_lines(Region(0, 0, widget.size.width, widget.size.height)):
        for segment in strip:
            style = segment.style
            for colour in (style.color, style.bgcolor) if style is not None else ():
                if colour is not None and colour.triplet is not None:
                    found.add(colour.triplet.hex.upper())
    return found


async def test_a_theme_file_sets_the_state_colours_everywhere(tmp_path) -> None:
    """The five status-* variables of a theme file colour the states in every widget and the help legend."""
    lines = [f'{name} = "{colour}"' for name, colour in LOUD.items()]
    (tmp_path / "loud.toml").write_text('name = "loud"\nprimary = "#5FA8D3"\n' + "\n".join(lines) + "\n")
    assert find_themes(tmp_path).themes["loud"].variables == LOUD
    app = static_app(Settings(theme="loud"), theme_dir=tmp_path)
    ok, warning, critical, killed, unknown = LOUD.values()
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_for_data(pilot)
        assert app.theme == "loud"
        screen = app.screen
        agents = colours_of(screen.query_one("#agents", Widget))
        assert {ok, warning, killed} <= agents  # ok, throttled, killed (its background)
        assert {warning, killed} <= colours_of(screen.query_one("#switches", Widget))  # throttle, kill
        assert critical in colours_of(screen.query_one("#alerts", Widget))
        assert ok in colours_of(screen.query_one("#summary", Widget))  # the sources' fresh badges
        await pilot.press("question_mark")
        await wait_until(pilot, lambda: isinstance(app.screen, HelpScreen))
        await pilot.pause()
        legend = set().union(*(colours_of(w) for w in app.screen.query(Static)))
        assert {ok, warning, critical, killed, unknown} <= legend


def help_lines(app: CosttopApp) -> list[str]:
    """The help screen's own text (not the main screen dimmed under it), line by line."""
    return [strip.text for widget in app.screen.query(Static)
            for strip in widget.render_lines(Region(0, 0, widget.size.width, widget.size.height))]


async def test_help_is_kept_while_the_same_and_made_again_for_a_new_theme(tmp_path) -> None:
    """`?` shows the same help screen again (building it cost the UI loop ~100 ms); a new theme
    makes a new one in its colours."""
    lines = [f'{name} = "{colour}"' for name, colour in LOUD.items()]
    (tmp_path / "loud.toml").write_text('name = "loud"\nprimary = "#5FA8D3"\n' + "\n".join(lines) + "\n")
    app = static_app(Settings(), theme_dir=tmp_path)
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_for_data(pilot)

        async def open_help() -> tuple[HelpScreen, list[str], set[str]]:
            await pilot.press("question_mark")
            await wait_until(pilot, lambda: isinstance(app.screen, HelpScreen))
            await pilot.pause()
            screen = app.screen
            assert isinstance(screen, HelpScreen)
            colours = set().union(*(colours_of(w) for w in screen.query(Static)))
            return screen, help_lines(app), colours

        async def close_help() -> None:
            await pilot.press("escape")
            await wait_until(pilot, lambda: not isinstance(app.screen, HelpScreen))

        first, text, colours = await open_help()
        assert any("kill_all" in line for line in text) and any("EMERG" in line for line in text)
        await close_help()
        again, text_again, colours_again = await open_help()
        assert again is first and text_again == text and colours_again == colours
        await close_help()
        app.theme = "loud"
        await pilot.pause()
        loud, loud_text, loud_colours = await open_help()
        assert loud is not first and loud_text == text
        assert set(LOUD.values()) <= loud_colours and not set(LOUD.values()) <= colours
        await close_help()
        assert not first.is_attached  # the old one is dropped, not kept beside the new one
        assert (await open_help())[0] is loud
