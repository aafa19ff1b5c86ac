"""How the main screen and the kill dialog look, from fixed data and a frozen clock."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from textual.pilot import Pilot

from appkit import wait_for_data
from costtop.config import Settings
from costtop.demo.static_feed import StaticFeed
from costtop.ui.app import CosttopApp

NOW = datetime(2026, 11, 22, 14, 30, tzinfo=UTC)
SIZES = [(80, 24), (160, 50)]


def make_app(read_only: bool = False) -> CosttopApp:
    return CosttopApp(Settings(read_only=read_only), StaticFeed(NOW), clock=lambda: NOW)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_main_screen(snap_compare, size: tuple[int, int]) -> None:
    assert snap_compare(make_app(), terminal_size=size, run_before=wait_for_data)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_kill_dialog(snap_compare, size: tuple[int, int]) -> None:
    async def open_dialog(pilot: Pilot[None]) -> None:
        await wait_for_data(pilot)
        await pilot.press("k")
        await pilot.pause()

    assert snap_compare(make_app(), terminal_size=size, run_before=open_dialog)


def test_kill_all_dialog(snap_compare) -> None:
    async def open_dialog(pilot: Pilot[None]) -> None:
        await wait_for_data(pilot)
        await pilot.press("K")
        await pilot.pause()

    assert snap_compare(make_app(), terminal_size=(100, 30), run_before=open_dialog)


def test_read_only_header(snap_compare) -> None:
    assert snap_compare(make_app(read_only=True), terminal_size=(120, 30), run_before=wait_for_data)
