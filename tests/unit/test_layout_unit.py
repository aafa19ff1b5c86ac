"""The main screen's layout: the agents keep their rows, the other panels fold in a fixed order, and
the operator's pane choice survives a restart in a state file of its own."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from costtop.ui import layout
from costtop.ui.layout import AGENT_LINES, KEEP_ORDER, LayoutChoice, LayoutStateError, PaneNeed, plan
from costtop.ui.widgets.row_table import fit_columns

# An incident: six alerts (title and up to 7 lines), three switches, a few providers and models.
INCIDENT = {"alerts": PaneNeed(8, 3), "switches": PaneNeed(5, 3), "usage": PaneNeed(7, 4), "chart": PaneNeed(11, 7)}


def test_an_incident_at_80x24_keeps_eight_agent_rows_and_shows_alerts_and_switches() -> None:
    room = 24 - 5 - 1  # the header's five lines at 80 columns, the footer's one
    heights = plan(room, INCIDENT)
    assert room - sum(heights.values()) >= AGENT_LINES  # title, column titles and 8 rows
    assert heights["alerts"] >= 3 and heights["switches"] >= 3
    assert heights["usage"] == 0 and heights["chart"] == 0


@pytest.mark.parametrize("room", range(5, 60))
def test_panels_fold_from_the_end_of_the_keep_order_first(room: int) -> None:
    heights = plan(room, INCIDENT)
    folded = [pane for pane in KEEP_ORDER if heights[pane] == 0]
    # What folds is always a tail of the keep order: the chart first, the alerts last.
    assert folded == list(KEEP_ORDER[len(KEEP_ORDER) - len(folded):])
    assert sum(heights.values()) <= max(0, room - AGENT_LINES)
    for pane, height in heights.items():
        assert height == 0 or INCIDENT[pane].least <= height <= INCIDENT[pane].want


def test_a_tall_terminal_gives_every_panel_what_it_wants() -> None:
    assert plan(80, INCIDENT) == {pane: need.want for pane, need in INCIDENT.items()}


def test_hidden_panels_give_their_room_to_the_others_and_zoom_leaves_only_the_agents() -> None:
    room = 24 - 5 - 1
    shown, heights = plan(room, INCIDENT), plan(room, INCIDENT, hidden=frozenset({"alerts"}))
    assert heights["alerts"] == 0 and sum(heights.values()) == sum(shown.values())  # the room is used
    assert heights["switches"] > shown["switches"] and heights["usage"] > shown["usage"]
    assert set(plan(80, INCIDENT, zoom=True).values()) == {0}


def test_a_panel_with_nothing_to_show_takes_no_line() -> None:
    assert plan(80, {**INCIDENT, "alerts": PaneNeed(0, 0)})["alerts"] == 0


def test_the_choice_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "state" / "layout.json"
    assert layout.load(path) == LayoutChoice()  # nothing saved yet: the default
    choice = LayoutChoice().toggled("chart").toggled("usage")
    layout.save(path, choice)
    assert layout.load(path) == choice
    assert layout.load(path).zoomed().zoom is True
    assert choice.zoomed().toggled("chart") == LayoutChoice(frozenset({"usage"}), False)  # a pane key leaves the zoom


@pytest.mark.parametrize("content", ["{not json", "[]", '{"hidden": ["nope"], "zoom": false}',
                                     '{"hidden": [], "zoom": "yes"}', '{"zoom": false}'])
def test_a_state_file_that_is_not_a_layout_is_one_line_error(tmp_path: Path, content: str) -> None:
    path = tmp_path / "layout.json"
    path.write_text(content)
    with pytest.raises(LayoutStateError) as caught:
        layout.load(path)
    assert "\n" not in str(caught.value) and str(path) in str(caught.value)


def test_a_state_file_that_cannot_be_written_is_one_line_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(LayoutStateError):
        layout.save(blocker / "layout.json", LayoutChoice())  # its directory is a file


def test_save_writes_the_whole_file_or_nothing(tmp_path: Path) -> None:
    path = tmp_path / "layout.json"
    layout.save(path, LayoutChoice(frozenset({"chart"}), True))
    assert json.loads(path.read_text()) == {"hidden": ["chart"], "zoom": True}
    assert [p.name for p in tmp_path.iterdir()] == ["layout.json"]


COLUMNS = [("agent", "Agent", 16), ("state", "State", 9), ("today", "Today", 10), ("velocity", "$/min", 11),
           ("trend", "Last 10m", 10), ("budget", "Budget", 9), ("runs_out", "Out in", 7), ("calls", "Calls", 7)]
PRIORITY = ("agent", "state", "velocity", "today", "budget", "runs_out", "calls", "trend")


def test_columns_that_do_not_fit_go_past_the_right_edge_in_priority_order() -> None:
    order = fit_columns(COLUMNS, PRIORITY, 80)
    assert sorted(order) == list(range(len(COLUMNS)))  # none lost
    drawn = [COLUMNS[i][0] for i in order]
    # 17+10+12+11+10+8 = 68 fit; calls (8 more) fits too; the trend does not: it goes last.
    assert drawn == ["agent", "state", "today", "velocity", "budget", "runs_out", "calls", "trend"]
    narrow = [COLUMNS[i][0] for i in fit_columns(COLUMNS, PRIORITY, 50)]
    assert narrow[:4] == ["agent", "state", "today", "velocity"]  # in reading order among the kept
    assert narrow[4:] == ["trend", "budget", "runs_out", "calls"]  # the rest in reading order


def test_a_table_without_priority_keeps_its_order() -> None:
    assert fit_columns(COLUMNS, (), 10) == list(range(len(COLUMNS)))


def test_lines_the_agents_cannot_fill_go_to_the_chart() -> None:
    tall = plan(80, INCIDENT, agent_rows=8)
    assert tall["chart"] == 80 - (8 + 2) - sum(h for pane, h in tall.items() if pane != "chart")
    assert plan(80, INCIDENT, agent_rows=500) == plan(80, INCIDENT)  # a long table takes the room itself
    assert plan(80, INCIDENT, agent_rows=8, hidden=frozenset({"chart"}))["chart"] == 0
