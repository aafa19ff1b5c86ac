"""Keys as an operator meets them: help, a keymap from the config file, read-only disabling."""

from __future__ import annotations

import sys
from decimal import Decimal

from textual.screen import ModalScreen

from appkit import fresh_snapshot, screen_text, wait_for_data, wait_until, writing_keys_refused
from costtop.config import Settings, load_settings
from costtop.demo.screenshots import NOW, static_app
from costtop.demo.static_feed import StaticFeed
from costtop.sources.records import CallRecord
from costtop.ui.app import CosttopApp
from costtop.ui.screens.drill_down import AgentScreen
from costtop.ui.screens.help import HelpScreen
from costtop.ui.screens.switch_dialog import SwitchDialog
from costtop.ui.widgets.agent_table import AgentTable
from costtop.ui.widgets.switch_table import SwitchTable
from costtop.ui.widgets.usage_tables import ModelTable


def make_app(**kw: object) -> CosttopApp:
    return static_app(Settings(**kw))  # type: ignore[arg-type]


async def test_question_mark_lists_every_key_and_the_colours() -> None:
    app = make_app()
    async with app.run_test(size=(160, 80)) as pilot:  # tall enough for the whole help screen at once
        await wait_for_data(pilot)
        await pilot.press("question_mark")
        await wait_until(pilot, lambda: isinstance(app.screen, HelpScreen))
        text = screen_text(app)
        for line in ("k  ", "Kill", "kill_all", "Open trace", "rows.pageup", "killed", "STALE", "EMERG",
                     "tab / shift+tab", "ctrl+p", "Moving around"):
            assert line in text, line
        await pilot.press("escape")
        await wait_until(pilot, lambda: not isinstance(app.screen, HelpScreen))


async def test_help_asked_for_while_the_kept_one_is_under_another_screen_opens_a_fresh_one() -> None:
    """The kept help screen cannot be in the stack twice: a fresh one goes on top, the kept one stays."""
    app = make_app()
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_for_data(pilot)
        await pilot.press("question_mark")
        await wait_until(pilot, lambda: isinstance(app.screen, HelpScreen))
        kept = app.screen
        app.push_screen(ModalScreen())
        await pilot.pause()
        app.action_help()
        await wait_until(pilot, lambda: isinstance(app.screen, HelpScreen))
        assert app.screen is not kept and app.screen_stack.count(kept) == 1
        await pilot.press("escape")
        await wait_until(pilot, lambda: not isinstance(app.screen, HelpScreen))
        app.pop_screen()
        await wait_until(pilot, lambda: app.screen is kept)
        await pilot.press("escape")
        await wait_until(pilot, lambda: not isinstance(app.screen, HelpScreen))
        await pilot.press("question_mark")
        await wait_until(pilot, lambda: isinstance(app.screen, HelpScreen))
        assert app.screen is kept


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
        await writing_keys_refused(pilot)  # shown disabled, and pressed anyway: it says why
        assert all("(disabled: read-only)" in what for _, what, bid in app.help_keys()
                   if bid in ("kill", "resume", "throttle", "kill_all"))


class TrickleFeed(StaticFeed):
    """The static demo data, plus rows the test lets through."""

    pending = 0

    async def new_rows(self) -> list[CallRecord]:
        n, self.pending = self.pending, 0
        return [CallRecord(f"x{i}", NOW, "research-bot", "llm", 100, cost_usd=Decimal("1")) for i in range(n)]


async def test_pause_freezes_the_screen_while_reading_goes_on() -> None:
    feed = TrickleFeed(NOW)
    app = static_app(feed=feed)
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_for_data(pilot)
        await pilot.press("p")
        await wait_until(pilot, lambda: "PAUSED" in screen_text(app))
        frozen = app.shown
        calls_before = app.session.engine.today.calls
        # Reading goes on: a row arrives and the engine counts it, the screen does not move.
        feed.pending = 5
        await wait_until(pilot, lambda: app.session.engine.today.calls == calls_before + 5)
        await fresh_snapshot(pilot)
        await pilot.pause()
        assert app.shown is frozen and app.snapshot is not frozen
        assert "PAUSED" in screen_text(app)
        await pilot.press("space")
        await wait_until(pilot, lambda: "PAUSED" not in screen_text(app))
        assert app.shown is app.snapshot


async def test_plus_and_minus_step_the_refresh_within_bounds() -> None:
    app = make_app(refresh=1.0)
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_for_data(pilot)
        assert "Refresh 1s" in screen_text(app)
        await pilot.press("plus")
        await wait_until(pilot, lambda: "Refresh 0.5s" in screen_text(app))
        await pilot.press("plus")  # already the fastest
        await pilot.pause()
        assert app.session.refresh_seconds == 0.5
        for _ in range(8):
            await pilot.press("minus")
        await wait_until(pilot, lambda: "Refresh 60s" in screen_text(app))
        assert app.session.refresh_seconds == 60


async def test_slash_filters_agents_models_and_providers_by_text() -> None:
    app = make_app()
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_for_data(pilot)
        await pilot.press("slash")
        await pilot.press(*"BOT")  # any case
        agents = app.screen.query_one(AgentTable)
        await wait_until(pilot, lambda: [a.agent_id for a in agents.rows] == ["research-bot", "email-bot"])
        assert "filter “BOT”: 2 of 8" in screen_text(app)
        await pilot.press("enter")  # keep it, back to the table: keys act on what is shown
        await wait_until(pilot, lambda: app.focused is agents)
        assert agents.selected_key == "research-bot"
        await pilot.press("slash", "backspace", "backspace", "backspace", *"gpt-5")
        models = app.screen.query_one(ModelTable)
        await wait_until(pilot, lambda: [m.model for m in models.rows] == ["gpt-5"] and not agents.rows)
        await pilot.press("escape")  # clears it
        await wait_until(pilot, lambda: len(agents.rows) == 8 and "filter" not in screen_text(app))


async def test_a_click_on_a_column_title_sorts_and_a_second_reverses() -> None:
    app = make_app()
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_for_data(pilot)
        agents = app.screen.query_one(AgentTable)
        await pilot.click(AgentTable, offset=(2, 0))  # "Agent"
        await wait_until(pilot, lambda: app.snapshot.sort.value == "name" and not app.snapshot.sort_reverse)
        names = [a.agent_id for a in agents.rows]
        assert names == sorted(names)
        await pilot.click(AgentTable, offset=(2, 0))
        await wait_until(pilot, lambda: app.snapshot.sort_reverse)
        assert [a.agent_id for a in agents.rows] == sorted(names, reverse=True)
        assert "by name (reversed)" in screen_text(app)
        await pilot.press("s")  # the next key, in its own order
        await wait_until(pilot, lambda: app.snapshot.sort.value == "$/min" and not app.snapshot.sort_reverse)


async def test_ctrl_s_saves_the_screen_as_svg(tmp_path) -> None:
    app = make_app(screenshot_dir=str(tmp_path / "shots"))
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for_data(pilot)
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: any((tmp_path / "shots").glob("*.svg")))
    (svg,) = (tmp_path / "shots").glob("*.svg")
    text = svg.read_text()
    assert text.startswith("<svg") and "research" in text


async def test_a_screenshot_that_cannot_be_written_says_so(tmp_path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    app = make_app(screenshot_dir=str(blocker / "shots"))  # a folder under a file: cannot exist
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for_data(pilot)
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: any(n.message.startswith("Screenshot not saved: Not a directory")
                                            for n in app._notifications))
        assert not list(tmp_path.glob("**/*.svg"))


async def test_the_palette_kills_by_name_through_the_same_dialog_and_jumps_to_an_agent() -> None:
    app = make_app()
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_for_data(pilot)
        await pilot.press("ctrl+p")
        await pilot.pause(0.2)
        await pilot.press(*"kill agent email")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, SwitchDialog))
        assert app.screen.change.target == "email-bot" and app.screen.change.kind == "kill"
        await pilot.press("escape")
        await wait_until(pilot, lambda: not isinstance(app.screen, SwitchDialog))
        assert app.session.feed.writes == []  # the dialog was cancelled: nothing written
        await pilot.press("ctrl+p")
        await pilot.pause(0.2)
        await pilot.press(*"jump to agent doc-writer")
        await pilot.pause(0.5)
        await pilot.press("enter")
        agents = app.screen.query_one(AgentTable)
        await wait_until(pilot, lambda: agents.selected_key == "doc-writer" and app.focused is agents)


async def test_read_only_offers_no_writing_command() -> None:
    from costtop.ui.commands import CosttopCommands

    app = make_app(read_only=True)
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_for_data(pilot)
        provider = CosttopCommands(app.screen)
        texts = [text for text, _, _ in provider.commands()]
        assert texts and all(t.startswith("Jump to agent") for t in texts)
    writer = make_app()
    async with writer.run_test(size=(160, 50)) as pilot:
        await wait_for_data(pilot)
        texts = [text for text, _, _ in CosttopCommands(writer.screen).commands()]
        assert "Kill model gpt-5" in texts and "Resume kill:agent:sales-outreach" in texts
        assert "Throttle agent research-bot" in texts


async def test_a_keymap_in_the_config_file_reaches_the_app(tmp_path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[keymap]\nkill = "x"\npause = "f5"\n')
    settings = load_settings({}, env={}, config_path=config)
    app = static_app(settings)
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_for_data(pilot)
        await pilot.press("f5")
        await wait_until(pilot, lambda: app.paused)
        await pilot.press("f5", "x")
        await wait_until(pilot, lambda: isinstance(app.screen, SwitchDialog))


async def test_a_snapshot_during_a_screens_teardown_does_not_crash() -> None:
    """Quitting removes a screen's children before the screen itself; a snapshot rendered in between
    once raised NoMatches (the rare failure of the screenshot test)."""
    app = make_app()
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_for_data(pilot)
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, AgentScreen) and app.screen.is_mounted)
        screen = app.screen
        await screen.query_one("#agent-figures").remove()
        await screen.query_one("#traces").remove()
        await fresh_snapshot(pilot)  # raised NoMatches when the screen queried its children
        await pilot.pause()
        assert app.screen is screen and app.return_code is None
        await pilot.press("escape")
        await wait_until(pilot, lambda: not isinstance(app.screen, AgentScreen))
        await app.screen.query_one(SwitchTable).remove()  # the main screen, half torn down
        await fresh_snapshot(pilot)
        await pilot.pause()
        assert app.return_code is None


async def test_k_with_no_agent_row_on_screen_opens_nothing() -> None:
    """A filter that hides every agent, or a terminal with room only for the table's header: the
    selection is nowhere on screen, so `k` must not offer to kill it."""
    app = make_app()
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_for_data(pilot)
        await pilot.press("down", "slash", *"zzz", "enter")
        agents = app.screen.query_one(AgentTable)
        await wait_until(pilot, lambda: not agents.rows and app.focused is agents)
        await pilot.press("k")
        await pilot.pause()
        assert not isinstance(app.screen, SwitchDialog)
    app = make_app()
    async with app.run_test(size=(40, 8)) as pilot:  # the header's 5 lines, the footer: 2 for the agents
        await wait_for_data(pilot)
        assert app.screen.query_one(AgentTable).selected_key is not None  # selected, but not drawn
        await pilot.press("k")
        await wait_until(pilot, lambda: any(n.message == "No agent selected." for n in app._notifications))
        assert not isinstance(app.screen, SwitchDialog)


async def test_a_terminal_too_small_for_the_dialog_says_so_and_opens_none() -> None:
    app = make_app()
    async with app.run_test(size=(40, 10)) as pilot:
        await wait_for_data(pilot)
        await pilot.press("K")
        await wait_until(pilot, lambda: any(n.message.startswith("Terminal too small for the confirm dialog (40x10)")
                                            for n in app._notifications))
        assert not isinstance(app.screen, SwitchDialog)
        assert not any(n.message.startswith("Cancelled") for n in app._notifications)
        assert all("\n" not in n.message for n in app._notifications)
    app = make_app()
    async with app.run_test(size=(80, 30)) as pilot:  # room for it: it stays, both buttons on screen
        await wait_for_data(pilot)
        await pilot.press("K")
        await wait_until(pilot, lambda: isinstance(app.screen, SwitchDialog))
        await pilot.pause(0.2)
        dialog = app.screen
        assert isinstance(dialog, SwitchDialog)
        for button in dialog.query("Button"):
            assert dialog.region.contains_region(button.region), button.id
        await pilot.press("escape")
        await wait_until(pilot, lambda: not isinstance(app.screen, SwitchDialog))


async def test_main_screen_keys_do_nothing_on_an_agents_screen() -> None:
    """s, v, a and / act on what the main screen shows: on an agent's screen they are not bindings at
    all (no hidden re-sort, chart change or filter behind it)."""
    app = make_app()
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_for_data(pilot)
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, AgentScreen))
        sort, chart = app.snapshot.sort, app.screen_stack[1].query_one("#chart").hours
        for key in ("s", "v", "a", "slash"):
            await pilot.press(key)
        await fresh_snapshot(pilot)
        assert isinstance(app.screen, AgentScreen)
        assert app.snapshot.sort is sort and app.session.engine.sort is sort
        assert app.screen_stack[1].query_one("#chart").hours == chart
        assert not app.screen_stack[1].query_one("#filter").display
        assert not any(a.acknowledged for a in app.snapshot.alerts)
        footer = screen_text(app).splitlines()[-1]
        # The agent screen's own `s` sorts its traces; the main screen's Sort is not there.
        assert footer.count("Sort") == 1 and "Sort traces" in footer
        assert "60m/24h" not in footer and "Filter" not in footer
        await pilot.press("escape")
        await wait_until(pilot, lambda: not isinstance(app.screen, AgentScreen))
        await pilot.press("s")
        await wait_until(pilot, lambda: app.snapshot.sort is not sort)


def test_help_collects_the_bindings_of_every_costtop_screen_without_a_list(monkeypatch) -> None:
    """A screen added to costtop shows its keys in help without anyone adding it to a list."""
    from types import ModuleType

    from textual.binding import Binding
    from textual.screen import Screen

    from costtop.ui.app import binding_groups

    monkeypatch.setitem(sys.modules, "costtop.ui.screens.probe", ModuleType("costtop.ui.screens.probe"))
    probe = type("ProbeScreen", (Screen,), {"__module__": "costtop.ui.screens.probe", "HELP_SCOPE": "probe view",
                                            "BINDINGS": [Binding("z", "app.bell", "Ring", id="probe.ring")]})
    groups = dict(binding_groups())
    assert [b.id for b in groups[" (probe view)"]] == ["probe.ring"]
    assert [b.id for b in groups[" (main screen)"]] == ["sort", "chart_range", "acknowledge", "drill_down", "filter",
                                                    "pane.alerts", "pane.chart", "pane.usage", "pane.switches",
                                                    "pane.zoom"]
    del probe, groups
    monkeypatch.delitem(sys.modules, "costtop.ui.screens.probe")  # the probe must not reach later tests
    assert " (probe view)" not in dict(binding_groups())


async def test_the_palette_offers_to_resume_a_killed_agent_and_k_says_it_already_is() -> None:
    """sales-outreach is killed in the static feed: the palette offers to resume it rather than kill it,
    and `k` on it says it already is, and asks nothing."""
    from costtop.ui.commands import CosttopCommands

    app = make_app()
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_for_data(pilot)
        texts = [text for text, _, _ in CosttopCommands(app.screen).commands()]
        assert "Resume agent sales-outreach" in texts and "Kill agent sales-outreach" not in texts
        assert "Kill agent research-bot" in texts and "Resume agent research-bot" not in texts
        app.jump_to_agent("sales-outreach")
        await pilot.pause()
        await pilot.press("k")
        await pilot.pause()
        assert not isinstance(app.screen, SwitchDialog)
        assert any("already killed" in str(n.message) for n in app._notifications)
        app.jump_to_agent("research-bot")  # not killed: `k` asks as before
        await pilot.pause()
        await pilot.press("k")
        await wait_until(pilot, lambda: isinstance(app.screen, SwitchDialog))


async def test_at_80_columns_every_screens_footer_still_shows_help_and_quit() -> None:
    """Textual's footer is cut at the edge; `?` and `q` come first on every costtop screen."""
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for_data(pilot)
        footer = screen_text(app).splitlines()[-1]
        assert "? Help" in footer and "q Quit" in footer, footer
        assert [bid for _, _, bid in app.help_keys()].count("quit") == 1  # listed once
        app.push_screen(AgentScreen("research-bot", app.drill_context(), app.shown))
        await wait_until(pilot, lambda: isinstance(app.screen, AgentScreen))
        await pilot.pause()
        footer = screen_text(app).splitlines()[-1]
        assert "? Help" in footer and "q Quit" in footer, footer


async def test_the_demo_says_where_its_servers_listen_on_the_screen() -> None:
    """The demo's greeting (its servers' URLs, printed too) is shown once the screen is up."""
    from costtop.demo.run import servers_line
    from costtop.demo.screenshots import NOW
    from costtop.pricing.catalog import shipped
    from costtop.session import Session

    settings = Settings()
    where = servers_line("redis://127.0.0.1:6390/0", "postgresql://postgres@127.0.0.1:5439/postgres")
    app = CosttopApp(settings, Session(settings, StaticFeed(NOW), clock=lambda: NOW, catalog=shipped()),
                     greeting=where)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for_data(pilot)
        assert [n.message for n in app._notifications] == [where]
