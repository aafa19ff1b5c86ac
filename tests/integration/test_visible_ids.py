"""Two different ids never look the same (issue 14): ids that differ only by an invisible character,
by Unicode normalisation (NFC/NFD) or by a look-alike letter from another script, through the widgets,
the dialog, the palette, the drill-down and `costtop snapshot` against real servers."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from textual.geometry import Region
from textual.widget import Widget

from appkit import wait_until
from costtop.cli import main
from costtop.demo.screenshots import static_app
from costtop.gateway import Call, Gateway
from costtop.sources.records import RedisState, SwitchKind, SwitchRecord
from costtop.ui.commands import CosttopCommands
from costtop.ui.screens.drill_down import AgentScreen
from costtop.ui.screens.switch_dialog import SwitchDialog
from test_hostile import HostileFeed
from test_hostile_unit import FORBIDDEN
from test_visible_ids_unit import look_alike_pairs, looks


def widget_text(widget: Widget) -> str:
    """The widget's lines as the terminal would get them."""
    size = widget.size
    return "\n".join(strip.text for strip in widget.render_lines(Region(0, 0, size.width, size.height)))


class NamedFeed(HostileFeed):
    """The one id everywhere, its model killed (the switch panel names it)."""

    def __init__(self, name: str) -> None:
        super().__init__([name], "loop")
        self.name = name

    async def read_redis(self) -> RedisState:
        return RedisState((SwitchRecord(f"kill:model:{self.name}", SwitchKind.KILL, "model", self.name,
                                        "manual:alice:loop", None),), {}, None, None)


async def views_of(name: str) -> dict[str, str]:
    """The text of every place the id is shown, with the id as agent, model, provider, tool, trace and
    switch target (the feed's erroring calls also raise an alert naming it)."""
    app = static_app(feed=NamedFeed(name))
    views: dict[str, str] = {}
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_until(pilot, lambda: app.snapshot is not None and bool(app.snapshot.agents))
        await wait_until(pilot, lambda: bool(app.snapshot and app.snapshot.switches and app.snapshot.alerts))
        await pilot.pause()
        for widget_id in ("agents", "providers", "models", "switches", "alerts"):
            views[widget_id] = widget_text(app.screen.query_one(f"#{widget_id}", Widget))
        views["palette"] = "\n".join(text for text, _, _ in CosttopCommands(app.screen).commands())
        await pilot.press("k")
        await wait_until(pilot, lambda: isinstance(app.screen, SwitchDialog))
        views["dialog"] = "\n".join(widget_text(app.screen.query_one(f"#dialog-{part}", Widget))
                                    for part in ("title", "key"))
        await pilot.press("escape")
        await wait_until(pilot, lambda: not isinstance(app.screen, SwitchDialog))
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, AgentScreen))
        await pilot.pause()
        views["drill-down"] = widget_text(app.screen.query_one("#agent-head", Widget))
    return views


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(look_alike_pairs())
def test_look_alike_ids_look_different_everywhere_on_screen(pair: tuple[str, str]) -> None:
    a, b = pair
    shown_a, shown_b = asyncio.run(views_of(a)), asyncio.run(views_of(b))
    for view in shown_a:
        assert looks(shown_a[view]) != looks(shown_b[view]), f"{a!r} and {b!r} look the same in the {view}"


PAIRS = [("pay-bot", "pay-bot\u200b"), ("caf\u00e9-bot", "cafe\u0301-bot"), ("paypal-bot", "p\u0430ypal-bot"),
         ("ops\u00a0bot", "ops bot"), ("\u212bngstrom", "\u00c5ngstrom")]


async def test_snapshot_outputs_show_look_alike_ids_apart(pg, redis, db_url, redis_url, capsys) -> None:
    """All of them in one database: the table's and the CSV's agent cells all look different, and the
    JSON keeps each exact id."""
    at = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=30)
    if at.date() != datetime.now(UTC).date():
        pytest.skip("too close to midnight UTC for a fixed day")
    names = [name for pair in PAIRS for name in pair]
    await Gateway(redis, pg).record([Call(name, "llm", 100, provider="openai", model="gpt-5",
                                          cost_usd=Decimal("0.01") * (i + 1), created_at=at)
                                     for i, name in enumerate(names)])
    urls = ["--redis-url", redis_url, "--database-url", db_url]
    assert await asyncio.to_thread(main, ["snapshot", "--format", "json", *urls]) == 0
    agents = json.loads(capsys.readouterr().out)["agents"]
    assert sorted(a["agent"] for a in agents) == sorted(names)
    assert all(looks(a["agent_display"]) != looks(b["agent_display"]) for a in agents for b in agents if a != b)
    assert await asyncio.to_thread(main, ["snapshot", "--format", "table", *urls]) == 0
    table = capsys.readouterr().out.splitlines()
    start = next(i for i, line in enumerate(table) if line.startswith("AGENT"))
    width = table[start].index("STATE")
    cells = [line[:width].rstrip() for line in table[start + 1: start + 1 + len(names)]]
    assert len({looks(cell) for cell in cells}) == len(names), cells
    assert await asyncio.to_thread(main, ["snapshot", "--format", "csv", *urls]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len({looks(row["agent"]) for row in rows}) == len(names), [row["agent"] for row in rows]
    for row in rows:
        assert FORBIDDEN.search(row["agent"]) is None


async def test_two_long_ids_look_different_in_the_agent_table() -> None:
    a, b = "invoice-reconciliation-agent-v2\u200b", "invoice-reconciliation-agent-v2-canary"
    shown_a, shown_b = await views_of(a), await views_of(b)
    assert shown_a["agents"] != shown_b["agents"]
    assert "…#" in shown_a["agents"]
