"""benchmarks.all's pure part: figures read from a benchmark's JSON, baselines, the table, the doc's markers.

The doc's table is what a reader trusts: a failed benchmark must read "not measured", never last run's
value; each row must say its commit; the baseline must be the previous file's; and rewriting the section
must leave the rest of docs/performance.md exactly as it was.
"""

from __future__ import annotations

from typing import Any

import pytest
from benchmarks.all import (
    BEGIN,
    END,
    Entry,
    Figure,
    Target,
    at,
    attach_baselines,
    merge,
    not_measured,
    number,
    plan,
    read_figures,
    render_section,
    render_table,
    replace_section,
    run_entry,
)

DRAW = Figure("frame: draw, median", "ms", at("draw_ms", "median"), Target("< 50 ms", "<", 50))
BYTES = Figure("terminal: costtop", "KB/s", at("results", ("app", "costtop"), "bytes_per_s", scale=1e-3),
               Target("< 3 KB/s", "<", 3), ("naive DataTable app", at("results", ("app", "naive"), "bytes_per_s",
                                                                      scale=1e-3)))


def record(name: str, commit: str, figures: list[dict[str, Any]], status: str = "ok") -> dict[str, Any]:
    return {"name": name, "command": f"python -m benchmarks.{name}", "commit": commit, "status": status,
            "reason": None, "seconds": 10.0, "figures": figures}


def cells(table: str, figure: str) -> list[str]:
    """The cells of the table's row for `figure` (exactly one such row)."""
    rows = [line for line in table.splitlines() if line.startswith(f"| {figure} |")]
    assert len(rows) == 1, table
    return [c.strip() for c in rows[0].strip("|").split("|")]


def test_a_failed_benchmark_reads_not_measured_with_its_reason_and_never_the_previous_value() -> None:
    previous = {"benchmarks": [record("frame", "aaa1111", read_figures([DRAW], {"draw_ms": {"median": 45.5}}, "c"))]}
    failed = record("frame", "bbb2222", not_measured([DRAW], "exit code 1: Traceback", "c"), status="failed")
    table = render_table({"benchmarks": [attach_baselines(failed, previous)]})
    _, now, baseline, target, commit = cells(table, "frame: draw, median")
    assert now == "not measured (exit code 1: Traceback)"
    assert "45.5" not in now
    assert baseline == "45.5 ms at aaa1111"  # the old value only as the baseline, with its commit
    assert target == "< 50 ms"  # no verdict on a figure that was not measured
    assert commit == "bbb2222"


def test_the_baseline_is_the_previous_files_figure_with_that_files_commit() -> None:
    previous = {"benchmarks": [record("frame", "abc1234", read_figures([DRAW], {"draw_ms": {"median": 61.0}}, "c"))]}
    other = Figure("frame: build, median", "ms", at("build"))
    now = record("frame", "def5678-dirty", read_figures([DRAW, other], {"draw_ms": {"median": 19.7}, "build": 204.3},
                                                      "python -m benchmarks.frame"))
    with_base = attach_baselines(now, previous)
    assert with_base["figures"][0]["baseline"] == {"value": 61.0, "unit": "ms", "commit": "abc1234", "command": "c"}
    assert with_base["figures"][1]["baseline"] is None
    table = render_table({"benchmarks": [with_base]})
    assert cells(table, "frame: draw, median") == ["frame: draw, median", "**19.7 ms**",
                                                   "61 ms at abc1234 (other arguments)", "< 50 ms: met",
                                                   "def5678-dirty"]
    same = attach_baselines(record("frame", "d", read_figures([DRAW], {"draw_ms": {"median": 1.0}}, "c")), previous)
    assert cells(render_table({"benchmarks": [same]}), "frame: draw, median")[2] == "61 ms at abc1234"
    assert cells(table, "frame: build, median")[2] == "none (no previous run)"
    assert with_base["figures"][0]["command"] == "python -m benchmarks.frame"


def test_a_naive_comparator_of_the_same_run_sits_beside_the_baseline_and_a_missed_target_says_so() -> None:
    data = {"results": [{"app": "costtop", "bytes_per_s": 12_400.0}, {"app": "naive", "bytes_per_s": 24_800.0}]}
    figures = read_figures([BYTES], data, "c")
    assert figures[0]["value"] == pytest.approx(12.4) and figures[0]["met"] is False
    row = cells(render_table({"benchmarks": [attach_baselines(record("t", "c0ffee0", figures), None)]}),
                "terminal: costtop")
    assert row[1] == "**12.4 KB/s**"
    assert row[2] == "none (no previous run); naive DataTable app, same run: 24.8 KB/s"
    assert row[3] == "< 3 KB/s: **not met**"


def test_a_failed_scenario_in_a_written_output_is_not_measured_and_its_siblings_are() -> None:
    rate = Figure("live 10,000: p99", "ms", at("runs", ("rate", 10_000), "freshness_ms", "p99"))
    low = Figure("live 2,000: p99", "ms", at("runs", ("rate", 2000), "freshness_ms", "p99"))
    gone = Figure("live 2,000: missing key", "ms", at("runs", ("rate", 2000), "nothing"))
    empty = Figure("live 2,000: no samples", "ms", at("runs", ("rate", 2000), "switch", "p99"))
    data = {"runs": [{"rate": 2000, "freshness_ms": {"p99": 1086.0}, "switch": {"n": 0}},
                     {"rate": 10_000, "error": "costtop showed no live row within 180 s"}]}
    high, measured, missing, none = read_figures([rate, low, gone, empty], data, "c")
    assert high["value"] is None and high["not_measured"] == "costtop showed no live row within 180 s"
    assert measured["value"] == 1086.0
    assert missing["value"] is None and missing["not_measured"].startswith("not in the output (KeyError")
    assert none["not_measured"] == "no samples"


def test_replacing_the_section_keeps_everything_outside_the_markers_byte_for_byte() -> None:
    before = "# Performance\r\n\n## The commands\n```bash\npython -m x   \n```\n\t\n"
    after = "\n\n## The results\nunicode: µs × —  \r\n| a | b |\n"
    doc = before + BEGIN + "\nold table | 45.5 ms |\n" + END + after
    section = render_section({"quick": None, "full": None})
    new = replace_section(doc, section)
    assert new == before + section + after
    assert "old table" not in new
    assert replace_section(new, section) == new  # a second run changes nothing else


def test_without_markers_the_section_is_made_right_after_the_commands_section() -> None:
    doc = "# P\nintro\n\n## The commands\n```bash\npython -m benchmarks.live\n```\n\n## The results\nrest\n"
    section = BEGIN + "\nx\n" + END
    new = replace_section(doc, section)
    cut = doc.index("## The results")
    assert new == doc[:cut] + section + "\n\n" + doc[cut:]
    with pytest.raises(ValueError):
        replace_section(doc.replace("## The commands", "## Commands"), section)
    with pytest.raises(ValueError):
        replace_section(doc + BEGIN, section)  # one marker without the other


def test_the_section_says_each_runs_commit_and_a_kind_never_run() -> None:
    figures = read_figures([DRAW], {"draw_ms": {"median": 20.0}}, "c")
    quick = {"kind": "quick", "commit": "1234abc", "finished": "2026-12-01T10:00:00+00:00", "seconds": 900.0,
             "benchmarks": [attach_baselines(record("frame", "1234abc", figures), None)]}
    section = render_section({"quick": quick, "full": None})
    assert section.startswith(BEGIN) and section.endswith(END)
    assert "Last run on commit **1234abc**" in section and "15.0 minutes" in section
    assert "| frame: draw, median | **20 ms** |" in section
    assert "Not run yet: no `benchmarks/results/all-full.json`." in section


def test_only_replaces_the_benchmarks_it_ran_and_the_others_keep_their_commit() -> None:
    old = {"benchmarks": [record("ingest", "aaa1111", read_figures([Figure("ingest", "µs/row", at("m"))],
                                                                    {"m": 16.7}, "c")),
                          record("frame", "aaa1111", read_figures([DRAW], {"draw_ms": {"median": 30.0}}, "c"))]}
    new = record("frame", "bbb2222", read_figures([DRAW], {"draw_ms": {"median": 20.0}}, "c"))
    merged = merge(old, [new], ["ingest", "frame", "keys"], {"kind": "quick"})
    assert [b["name"] for b in merged["benchmarks"]] == ["ingest", "frame"]
    table = render_table(merged)
    assert cells(table, "ingest")[1:] == ["**16.7 µs/row**", "none (no previous run)", "—", "aaa1111"]
    assert cells(table, "frame: draw, median")[4] == "bbb2222"


def test_startup_figures_come_from_its_sizes_with_the_raw_start_up_as_the_comparator() -> None:
    def run(ms: float) -> dict[str, float]:
        return {"window_ms": 1.0, "complete_ms": ms}

    size = {"rows_today": 1_000_000, "raw": [run(9000.0), run(7000.0)], "job_fill_s": 12.5, "job_next_run_s": 0.4,
            "job_days_s": 3.5,
            "rollup": [run(300.0)] * 5, "rollup_median_ms": 310.0, "rollup_max_ms": 400.0,
            "history_rollup": [{"week_ms": 20.0, "report_ms": 90.0}, {"week_ms": 40.0, "report_ms": 70.0},
                               {"week_ms": 30.0, "report_ms": 80.0}],
            "history_raw": {"week_ms": 2000.0, "report_ms": 5000.0}}
    data = {"commit": "x", "sizes": [size], "gateway": {"plain_ms": 30.0, "with_rollup_ms": 33.0}}
    entry = next(e for e in plan("quick") if e.name == "startup")
    got = {f["name"]: f for f in read_figures(entry.figures, data, "c")}
    first = got["startup (1,000,000 rows today): complete first screen with the rollup, median"]
    assert first["value"] == 310.0 and first["met"] is True
    assert first["comparator"] == {"what": "without the rollup", "value": 8000.0}  # the median of the raw runs
    week = got["startup (1,000,000 rows today): the week of daily sums from the rollup, median"]
    assert week["value"] == 30.0 and week["comparator"]["value"] == 2000.0
    report = got["startup (1,000,000 rows today): yesterday's report from the rollup, median"]
    assert report["value"] == 80.0 and report["met"] is True and report["comparator"]["value"] == 5000.0
    assert got["startup: a gateway batch of 2,000 rows keeping the rollup, median"]["value"] == 33.0
    assert all(f["value"] is not None for f in got.values()), got
    assert entry.args[:4] == ("--rows", "1000000", "--yesterday", "1000000")


def test_a_benchmark_module_that_does_not_exist_yet_is_recorded_missing_without_running() -> None:
    entry = Entry("startup", ("--rows", "1000000"), 1, (DRAW,), module="benchmarks.not_written_yet")
    result = run_entry(entry, "quick")
    assert result["status"] == "missing" and result["exit_code"] is None and result["seconds"] is None
    assert result["figures"][0]["value"] is None
    assert result["figures"][0]["not_measured"].startswith("missing: benchmarks/not_written_yet.py does not exist")


def test_the_quick_plan_builds_no_10m_rows_and_runs_no_soak_and_the_full_plan_runs_everything() -> None:
    quick, full = plan("quick"), plan("full")
    assert "soak" not in [e.name for e in quick]
    for entry in quick:
        sizes = [int(a) for a in entry.args if a.isdigit() and int(a) >= 10_000_000]
        assert not sizes, entry
    assert {"soak", "floods", "scale", "startup", "live", "keys"} <= {e.name for e in full}
    startup = {k: next(e for e in p if e.name == "startup") for k, p in (("quick", quick), ("full", full))}
    assert startup["full"].command("F") == "python -m benchmarks.startup --rows 10000000 30000000 --out F"
    assert startup["quick"].command("F").startswith("python -m benchmarks.startup --rows 1000000 --yesterday 1000000 ")
    assert "--million" in next(e for e in full if e.name == "floods").args


def test_numbers_read_as_the_doc_writes_them() -> None:
    assert [number(v) for v in (1086.4, 45.54, 1.494, 0.003, 3237.3, 0.0, 12.0)] == [
        "1,086", "45.5", "1.49", "0.003", "3,237", "0", "12"]
