"""Two different ids never look the same (issue 14): ids that differ only by an invisible character,
by Unicode normalisation (NFC/NFD) or by a look-alike letter from another script, through the widgets,
the dialog, the palette, the drill-down and `costtop snapshot` against real servers."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import unicodedata
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
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
from test_hostile import FORBIDDEN, HostileFeed

# Characters a terminal draws as nothing or as a blank: controls, format (zero-width, bidi, soft hyphen),
# non-ASCII spaces, Hangul fillers, the braille blank, variation selectors, the grapheme joiner.
INVISIBLE = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u202e", "\u2066", "\u061c", "\u00ad", "\u00a0",
             "\u3000", "\u2800", "\u3164", "\ufe0f", "\U000e0100", "\u034f", "\u180e", "\x1b", "\x7f", "\x9b"]
# (Latin letter, a letter of another script drawn the same)
LOOK_ALIKES = [("a", "\u0430"), ("e", "\u0435"), ("o", "\u043e"), ("p", "\u0440"), ("c", "\u0441"),
               ("x", "\u0445"), ("y", "\u0443"), ("i", "\u0456"), ("o", "\u03bf"), ("v", "\u03bd")]
SKELETON = str.maketrans({other: latin for latin, other in LOOK_ALIKES})
# Precomposed letters (NFC) and the singletons NFC replaces (U+212B ANGSTROM SIGN, U+2126 OHM SIGN)
COMPOSED = ["é", "å", "ñ", "ü", "ç", "ö", "\u00c5", "\u03a9"]
SINGLETON = {"\u00c5": "\u212b", "\u03a9": "\u2126"}

stem = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_.", max_size=10)


@st.composite
def look_alike_pairs(draw: st.DrawFn) -> tuple[str, str]:
    """Two ids a person could not tell apart if each character were drawn as itself."""
    left, right = draw(stem), draw(stem)
    kind = draw(st.sampled_from(["invisible", "space", "normalisation", "confusable"]))
    if kind == "invisible":
        hidden = draw(st.one_of(st.sampled_from([c for c in INVISIBLE if not c.isspace()]),
                                st.characters(codec=None, categories=("Cc", "Cf"))))
        return "bot" + left + right, "bot" + left + hidden + right
    if kind == "space":
        space = draw(st.characters(codec=None, categories=("Zs",), exclude_characters=" "))
        return "bot" + left + " " + right, "bot" + left + space + right
    if kind == "normalisation":
        letter = draw(st.sampled_from(COMPOSED))
        composed = "bot" + left + letter + right
        decomposed = unicodedata.normalize("NFD", composed)
        return composed, draw(st.sampled_from([decomposed, composed.replace(letter, SINGLETON.get(letter, letter))])
                              .filter(lambda other: other != composed))
    latin, other = draw(st.sampled_from(LOOK_ALIKES))
    return "bot" + left + latin + right, "bot" + left + other + right


def looks(text: str) -> str:
    """What a person sees: NFC and NFD drawn alike, invisible characters not drawn, spaces as spaces,
    look-alike letters as their Latin twin."""
    shown = []
    for char in unicodedata.normalize("NFC", text):
        category = unicodedata.category(char)
        if category.startswith("Z"):
            shown.append(" ")
        elif not (category in ("Cc", "Cf", "Cs", "Co", "Cn") or char in INVISIBLE):
            shown.append(char)
    return "".join(shown).translate(SKELETON)


@given(look_alike_pairs())
def test_look_alike_ids_are_shown_apart(pair: tuple[str, str]) -> None:
    from costtop.text import visible_id

    a, b = pair
    assert a != b and looks(a) == looks(b)  # the pair really does look the same when drawn as is
    assert looks(visible_id(a)) != looks(visible_id(b))
    assert FORBIDDEN.search(visible_id(a) + visible_id(b)) is None


@given(st.text(max_size=40), st.text(max_size=40))
def test_any_two_ids_are_shown_apart(a: str, b: str) -> None:
    """The visible form is one-to-one: each marker stands for one character, and no id can fake one."""
    from costtop.text import visible_id

    if a != b:
        assert visible_id(a) != visible_id(b)


def test_the_visible_form_names_what_is_hidden() -> None:
    from costtop.text import visible_id

    assert visible_id("pay-bot\u200b") == "pay-bot<U+200B>"
    assert (visible_id("caf\u00e9"), visible_id("cafe\u0301")) == ("caf\u00e9", "cafe<U+0301>")
    assert visible_id("p\u0430y-bot") == "⚠ p\u0430y-bot"  # Cyrillic а among Latin letters
    assert visible_id("<U+200B>") == "<U+003C>U+200B>" and visible_id("⚠ x") == "<U+26A0> x"
    assert visible_id("日本語-bot") == "日本語-bot" and visible_id("gpt-4o") == "gpt-4o"


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


def test_spaces_at_the_edges_punctuation_look_alikes_and_fake_markers_are_shown() -> None:
    """Found by review: `pay-bot ` passed as `pay-bot`, `pay‐bot` (U+2010) as `pay-bot`, and `˂U+200B˃`
    (modifier letter brackets) as a real marker."""
    from costtop.text import visible_id
    assert visible_id("pay-bot ") == "pay-bot<U+0020>" and visible_id(" pay-bot") == "<U+0020>pay-bot"
    assert visible_id("pay  bot") == "pay<U+0020><U+0020>bot" and visible_id("pay bot") == "pay bot"
    assert visible_id("pay\u2010bot") == "pay<U+2010>bot" and visible_id("\uff50ay") == "<U+FF50>ay"
    spoof = visible_id("pay-bot\u02c2U+200B\u02c3")
    assert spoof != visible_id("pay-bot\u200b") and "<U+02C2>" in spoof


def test_two_long_ids_cut_to_a_column_still_look_different() -> None:
    """Cut to fit, an id keeps a hash of the whole: a difference past the cut still shows."""
    from costtop.text import id_text, visible_id
    a, b = "invoice-reconciliation-agent-v2\u200b", "invoice-reconciliation-agent-v2-canary"
    assert visible_id(a, 32) != visible_id(b, 32) and len(visible_id(a, 32)) == 32
    assert id_text(a, 32).plain != id_text(b, 32).plain


async def test_two_long_ids_look_different_in_the_agent_table() -> None:
    a, b = "invoice-reconciliation-agent-v2\u200b", "invoice-reconciliation-agent-v2-canary"
    shown_a, shown_b = await views_of(a), await views_of(b)
    assert shown_a["agents"] != shown_b["agents"]
    assert "…#" in shown_a["agents"]
