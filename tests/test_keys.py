"""Keys as an operator meets them: help, a keymap from the config file, read-only disabling."""

from __future__ import annotations

from datetime import UTC, datetime

from appkit import screen_text, wait_for_data, wait_until
from costtop.cli import main
from costtop.config import Settings
from costtop.demo.static_feed import StaticFeed
from costtop.pricing.catalog import shipped
from costtop.ui.app import CosttopApp
from costtop.ui.screens.help import HelpScreen
from costtop.ui.screens.switch_dialog import SwitchDialog

NOW = datetime(2026, 11, 22, 14, 30, tzinfo=UTC)


def make_app(**kw: object) -> CosttopApp:
    return CosttopApp(Settings(**kw), StaticFeed(NOW), clock=lambda: NOW, catalog=shipped())


async def test_question_mark_lists_every_key_and_the_colours() -> None:
    app = make_app()
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_for_data(pilot)
        await pilot.press("question_mark")
        await wait_until(pilot, lambda: isinstance(app.screen, HelpScreen))
        text = screen_text(app)
        for line in ("k  ", "Kill", "kill_all", "Open trace", "rows.pageup", "killed", "STALE", "EMERG"):
            assert line in text, line
        await pilot.press("escape")
        await wait_until(pilot, lambda: not isinstance(app.screen, HelpScreen))


async def test_a_keymap_from_the_config_moves_a_key() -> None:
    app = make_app(keymap={"kill": "x", "help": "f1"})
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_for_data(pilot)
        await pilot.press("k")
        await pilot.pause()
        assert not isinstance(app.screen, SwitchDialog)
        await pilot.press("x")
        await wait_until(pilot, lambda: isinstance(app.screen, SwitchDialog))
        await pilot.press("escape")
        await wait_until(pilot, lambda: not isinstance(app.screen, SwitchDialog))
        await pilot.press("f1")
        await wait_until(pilot, lambda: isinstance(app.screen, HelpScreen))
        assert any(key == "x" and bid == "kill" for key, _, bid in app.help_keys())


async def test_read_only_disables_the_writing_keys() -> None:
    app = make_app(read_only=True)
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_for_data(pilot)
        for key in ("k", "u", "t", "K"):
            await pilot.press(key)
            await pilot.pause()
            assert not isinstance(app.screen, SwitchDialog), key
        assert app.feed.writes == []
        assert all("(disabled: read-only)" in what for _, what, bid in app.help_keys()
                   if bid in ("kill", "resume", "throttle", "kill_all"))


def test_an_unknown_binding_in_the_keymap_is_one_line(tmp_path, capsys) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[keymap]\nkil = "x"\n')
    assert main(["--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("costtop: keymap: no binding called kil (there are: ") and err.count("\n") == 1
