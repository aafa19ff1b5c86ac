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
