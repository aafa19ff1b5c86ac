"""The unit half of tests/integration/test_keys.py: the tests that need no server and no app."""

from __future__ import annotations

from costtop.cli import main


def test_an_unknown_binding_in_the_keymap_is_one_line(tmp_path, capsys) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[keymap]\nkil = "x"\n')
    assert main(["--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("costtop: keymap: no binding called kil (there are: ") and err.count("\n") == 1
