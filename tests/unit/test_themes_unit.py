"""The unit half of tests/integration/test_themes.py: the tests that need no server and no app."""

from __future__ import annotations

from costtop.ui.themes import find_themes

SHIPPED = ["costtop-dark", "daylight", "incident", "wallboard"]


def test_the_shipped_themes_load_and_a_user_file_adds_one(tmp_path) -> None:
    assert sorted(find_themes(tmp_path / "none").themes) == SHIPPED
    (tmp_path / "mine.toml").write_text('name = "mine"\nprimary = "#123456"\ndark = false\n')
    (tmp_path / "bad.toml").write_text('name = "bad"\nprimary = "not-a-colour"\n')
    (tmp_path / "torn.toml").write_text('name = "torn\n')
    found = find_themes(tmp_path)
    assert sorted(found.themes) == sorted([*SHIPPED, "mine"]) and found.themes["mine"].dark is False
    assert len(found.errors) == 2
    assert any("bad.toml: primary = 'not-a-colour' is not a colour" in e for e in found.errors)
    assert any("torn.toml" in e for e in found.errors) and all("\n" not in e for e in found.errors)


def test_the_states_colours_a_theme_leaves_out_are_css_variables_of_the_colours_they_follow() -> None:
    from costtop.ui.themes import Palette, status_css_variables

    generated = {"success": "#00FF00", "warning": "#FFFF00", "error": "#FF0000", "background": "#000000"}
    assert status_css_variables(generated) == {"status-ok": "#00FF00", "status-warning": "#FFFF00",
                                               "status-critical": "#FF0000", "status-killed": "#FF0000"}
    own = {**generated, "status-killed": "#FF00FF"}
    assert "status-killed" not in status_css_variables(own)  # the theme's own colour is kept
    assert "status-unknown" not in status_css_variables(generated)  # unknown stays dim, not a colour
    # Filled in or not, the widgets' colours are the same: the .tcss and the Palette agree.
    assert Palette.from_variables(generated) == Palette.from_variables({**generated, **status_css_variables(generated)})
