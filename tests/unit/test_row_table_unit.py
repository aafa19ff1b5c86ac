"""RowTable's per-show bookkeeping (the first column's width, the `/` filter) without an app: the fast
paths must give what a fresh computation over every row gives."""

from __future__ import annotations

import random
from collections.abc import Sequence
from types import SimpleNamespace

from costtop.text import visible_id
from costtop.ui.widgets.agent_table import AgentTable
from costtop.ui.widgets.row_table import MAX_NAME
from costtop.ui.widgets.usage_tables import NO_NAME, ModelTable, ProviderTable


def agents(*names: str | None) -> tuple[SimpleNamespace, ...]:
    return tuple(SimpleNamespace(agent_id=name) for name in names)


def fresh_width(table: AgentTable, rows: Sequence[SimpleNamespace]) -> int:
    """The widest visible name over every row, the slow way."""
    return min(MAX_NAME, max((len(visible_id(table.name_of(row))) for row in rows), default=5))  # type: ignore[arg-type]


def test_the_name_column_follows_rows_added_and_removed() -> None:
    table = AgentTable()
    assert table._name_width(agents("a", "bb")) == 2
    assert table._name_width(agents("a", "bb", "a-much-longer-one")) == 17
    assert table._name_width(agents("a", "bb")) == 2  # the widest left: the column shrinks
    assert table._name_width(agents("a", "bb", "x" * 50)) == MAX_NAME  # capped
    assert table._name_width(agents("a", "bb", "ccc")) == 3
    assert table._name_width(agents()) == 5  # none: the default
    assert table._name_width(agents("a")) == 1


def test_a_row_without_a_name_is_measured_as_shown() -> None:
    table = AgentTable()
    assert table._name_width(agents(None, "ab")) == len("(none)")
    assert table.key_set(agents(None, "ab")) == {NO_NAME, "ab"}
    assert list(table.keys_of(agents(None, "ab"))) == [NO_NAME, "ab"]
    assert list(table.keys_of(agents("ab", "c"))) == ["ab", "c"]


def test_the_same_rows_object_is_not_walked_again() -> None:
    table = AgentTable()
    rows = agents("a", "bbbb")
    assert table._name_width(rows) == 4
    table.key_set = None  # type: ignore[assignment,method-assign]  # would fail if called
    assert table._name_width(rows) == 4


def test_the_name_width_equals_a_fresh_computation_through_random_changes() -> None:
    rng = random.Random(17)
    pool = [f"agent-{'x' * rng.randrange(0, 40)}-{i}" for i in range(60)] + [None, "a\u200bb"]
    table = AgentTable()
    rows: list[str | None] = []
    for _ in range(300):
        step = rng.random()
        if step < 0.4 and rows:
            rows.remove(rng.choice(rows))
        elif step < 0.8:
            name = rng.choice(pool)
            if name not in rows:
                rows.append(name)
        else:
            rng.shuffle(rows)
        shown = agents(*rows)
        assert table._name_width(shown) == fresh_width(table, shown), rows


def test_provider_and_model_keys_match_key_of() -> None:
    for table, field in ((ProviderTable(), "provider"), (ModelTable(), "model")):
        rows = tuple(SimpleNamespace(**{field: name}) for name in ("openai", None, "x"))
        assert list(table.keys_of(rows)) == [table.key_of(row) for row in rows]  # type: ignore[arg-type]
        assert table.key_set(rows) == {table.key_of(row) for row in rows}  # type: ignore[arg-type]


def test_the_filter_keeps_the_rows_whose_visible_name_holds_it() -> None:
    table = AgentTable()
    rows = agents("Pay-Bot", "search", None, "pay\u200bbot", "bot-pay")
    table.filter = "PAY"
    kept = table._filter(rows)
    assert [row.agent_id for row in kept] == ["Pay-Bot", "pay\u200bbot", "bot-pay"]
    assert table._filter(rows) is kept  # the same rows and filter: the same list, its width known
    table.filter = "none"
    assert [row.agent_id for row in table._filter(rows)] == [None]
    more = (*rows, *agents("paypal"))
    table.filter = "pay"
    assert [row.agent_id for row in table._filter(more)] == ["Pay-Bot", "pay\u200bbot", "bot-pay", "paypal"]


def test_a_row_is_found_by_its_key_wherever_it_moved() -> None:
    table = AgentTable()
    table.rows = agents("a", None, "c")  # type: ignore[assignment]
    table.cursor = 0
    assert [table._find(key) for key in ("a", NO_NAME, "c", "(none)", "zz")] == [0, 1, 2, None, None]
    table.rows = agents("c", "a", None)  # type: ignore[assignment]
    table._index = None  # as show() does for a new snapshot
    assert [table._find(key) for key in ("a", NO_NAME, "c")] == [1, 2, 0]
