"""What every test needs, unit and integration alike. The real servers' fixtures are in
tests/integration/conftest.py, out of tests/unit's reach: a unit test that asks for one fails with
"fixture not found"."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _state_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Audit spools and other state go to a directory of the test's own, never the user's."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path_factory.mktemp("state")))
