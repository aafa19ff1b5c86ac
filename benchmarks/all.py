"""Every benchmark from one commit, its key figures beside their baselines, and the table in docs/performance.md.

    python -m benchmarks.all --quick              # minutes: small sizes; no 10M-row build, no soak
    python -m benchmarks.all                      # everything, with the documented arguments (hours)
    python -m benchmarks.all --quick --only frame keys   # a subset of that plan
    python -m benchmarks.all --list [--quick]     # the plan: each entry's command and time limit

Why: the figures in docs/performance.md were measured by hand over many commits, so a reader could not
tell a current number from an old one. This runs the benchmarks one after the other, each in a process of
its own with a time limit (they start their own servers and share two cores: never two at once), takes
each one's key figures from the JSON it writes, and records them with the commit they were measured on
(`git rev-parse --short HEAD`, "-dirty" when the tree has changes) in benchmarks/results/all-quick.json
(or all-full.json). That file is committed: the next run's baseline is the one in HEAD. Then it rewrites
the section of docs/performance.md between the two markers (BEGIN, END) from the files.

A benchmark that failed, timed out, was skipped or does not exist in the checkout (benchmarks.startup
came after this file) gives "not measured (why)" for its figures, never the last value. `--only` runs a
subset and keeps the other benchmarks' records from the file as they were, each row saying its commit.

The pure part (reading figures from a benchmark's JSON, baselines, the markdown, the marker replacement)
is separate from the running part, and tested in tests/unit/test_benchmarks_all.py.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shlex
import signal
import statistics
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"
DOC = REPO / "docs" / "performance.md"
BEGIN = "<!-- benchmarks.all: begin -->"
END = "<!-- benchmarks.all: end -->"
KINDS = ("quick", "full")

Getter = Callable[[Any], float]


# -- figures: what to read from each benchmark's JSON ----------------------------------------------------------

class NotMeasured(Exception):
    """A figure the benchmark's output does not hold, and why (its scenario failed, no samples...)."""


def walk(data: Any, path: Sequence[str | int | tuple[str, Any]]) -> Any:
    """`data[path[0]][path[1]]...`; a (key, value) step picks the item of a list whose `key` is `value`.

    A dict on the way that carries an "error" (a failed scenario or rate) or a distribution without
    samples stops the walk with NotMeasured, so the table says why instead of a KeyError.
    """
    node = data
    for step in path:
        if isinstance(step, tuple):
            key, value = step
            found = [x for x in node if isinstance(x, dict) and x.get(key) == value]
            if not found:
                raise NotMeasured(f"no {key} {value} in the output")
            node = found[0]
        else:
            node = node[step]
        if isinstance(node, dict):
            if node.get("error"):
                raise NotMeasured(str(node["error"]))
            if node.get("n") == 0:
                raise NotMeasured("no samples")
    if node is None:
        raise NotMeasured("null in the output")
    return node


def at(*path: str | int | tuple[str, Any], scale: float = 1.0) -> Getter:
    """A getter for one number of the output, times `scale` (bytes/s -> KB/s, seconds -> µs...)."""
    return lambda data: float(walk(data, path)) * scale


def median_of(*path: str | int | tuple[str, Any], key: str) -> Getter:
    """The median of `key` over the list of repeated runs at `path` (a benchmark that keeps every run)."""
    return lambda data: float(statistics.median(float(run[key]) for run in walk(data, path)))


@dataclass(frozen=True)
class Target:
    """A bound from the issue or the doc, in the figure's unit; `text` is how the doc says it."""

    text: str
    op: str  # "<", "<=", ">=" or "=="
    bound: float

    def met(self, value: float) -> bool:
        return {"<": value < self.bound, "<=": value <= self.bound, ">=": value >= self.bound,
                "==": value == self.bound}[self.op]


@dataclass(frozen=True)
class Figure:
    name: str
    unit: str
    get: Getter
    target: Target | None = None
    # A naive counterpart measured in the same run (the DataTable app, the GROUP BY): (what, getter).
    comparator: tuple[str, Getter] | None = None


@dataclass(frozen=True)
class Entry:
    """One benchmark run: `python -m <module> <args> --out <file>`, killed after `timeout` seconds."""

    name: str
    args: tuple[str, ...]
    timeout: float
    figures: tuple[Figure, ...] = ()
    module: str = ""
    # Why it cannot run here (a missing virtualenv), or None.
    requires: Callable[[], str | None] = field(default=lambda: None)

    @property
    def module_name(self) -> str:
        return self.module or f"benchmarks.{self.name}"

    def command(self, out: str) -> str:
        return shlex.join(["python", "-m", self.module_name, *self.args, "--out", out])


def read_figures(figures: Sequence[Figure], data: Any, command: str) -> list[dict[str, Any]]:
    """Each figure's value (or why there is none), its target and whether it is met, and the comparator."""
    out = []
    for f in figures:
        record: dict[str, Any] = {"name": f.name, "unit": f.unit, "value": None, "command": command,
                                  "target": None, "met": None, "comparator": None}
        try:
            record["value"] = round(f.get(data), 4)
        except NotMeasured as exc:
            record["not_measured"] = str(exc)
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            record["not_measured"] = f"not in the output ({type(exc).__name__}: {exc})"
        if f.target is not None:
            record["target"] = {"text": f.target.text, "op": f.target.op, "bound": f.target.bound}
            if record["value"] is not None:
                record["met"] = f.target.met(record["value"])
        if f.comparator is not None:
            what, get = f.comparator
            try:
                record["comparator"] = {"what": what, "value": round(get(data), 4)}
            except (NotMeasured, KeyError, IndexError, TypeError, ValueError):
                record["comparator"] = {"what": what, "value": None}
        out.append(record)
    return out


def not_measured(figures: Sequence[Figure], reason: str, command: str) -> list[dict[str, Any]]:
    """Every figure of a benchmark that gave no output (failed, timed out, skipped, not written yet)."""
    out = read_figures(figures, None, command)
    for record in out:
        record["value"], record["met"], record["not_measured"] = None, None, reason
        if record["comparator"] is not None:
            record["comparator"]["value"] = None
    return out


# -- the plan ----------------------------------------------------------------------------------------------------

def _litellm_venv() -> str | None:
    venv = Path(os.environ.get("COSTTOP_LITELLM_VENV", REPO / ".venv-litellm-proxy"))
    if (venv / "bin" / "litellm").exists():
        return None
    return (f"no LiteLLM proxy virtualenv at {venv} (scripts/litellm-proxy-env builds it; or set "
            "COSTTOP_LITELLM_VENV)")


MS_100 = Target("< 100 ms (issue 17)", "<", 100)
MS_200 = Target("< 200 ms (floods)", "<", 200)
Q_2S = Target("< 2 s", "<", 2)
NONE_STALE = Target("0 (servers healthy)", "==", 0)


def frame(agents: int, models: int, frames: int, over_budget: int = 7_000) -> Entry:
    """The frame with `over_budget` agents over their daily budget, each with a live alert (issue 20)."""
    n = f"frame ({agents:,} agents, {models} models, {over_budget:,} over budget)"
    args = ("--agents", str(agents), "--models", str(models), "--frames", str(frames),
            "--over-budget", str(over_budget))
    return Entry("frame", args, 900, (
        Figure(f"{n}: snapshot build + draw, median", "ms", at("frame_ms", "median"), Target("< 30 ms", "<", 30)),
        Figure(f"{n}: draw of a snapshot (UI loop), median", "ms", at("draw_ms", "median"),
               Target("< 50 ms", "<", 50)),
        Figure(f"{n}: snapshot build (session thread), median", "ms", at("snapshot_build_ms", "median")),
        Figure(f"{n}: rows handed over -> frame painted, median", "ms", at("rows_until_painted_ms", "median")),
        Figure(f"{n}: RSS after the frames", "MB", at("rss_mb_after_frames"), Target("< 150 MB", "<", 150)),
    ))


def ingest() -> Entry:
    return Entry("ingest", (), 600, (
        Figure("ingest (200,000 rows, 200 agents): Engine.ingest per row, median of 5", "µs/row",
               at("median", scale=1e6)),
        Figure("ingest (200,000 rows, 200 agents): Engine.ingest per row, best of 5", "µs/row",
               at("best", scale=1e6)),
    ))


def full_window(seconds: int) -> Entry:
    n = "full_window (10,000 rows/s, 200 agents)"
    return Entry("full_window", ("--seconds", str(seconds)), 900, (
        Figure(f"{n}: snapshot build, window full, median", "ms", at("build_window_full", "median_ms")),
        Figure(f"{n}: snapshot build, window full, max", "ms", at("build_window_full", "max_ms")),
        Figure(f"{n}: snapshot build while the window fills, median", "ms", at("build_while_filling", "median_ms")),
        Figure(f"{n}: ingest of a second's rows, median", "ms", at("ingest_per_second", "median_ms")),
    ))


def trace_view() -> Entry:
    return Entry("trace_view", ("--steps", "10000"), 600, (
        Figure("trace_view (10,000 steps): open, enter -> painted", "ms", at("open_ms")),
        Figure("trace_view (10,000 steps): scroll key -> next frame, median", "ms", at("key_ms_median")),
    ))


def terminal_bytes(measure: int) -> Entry:
    n = "terminal_bytes (160x50, 200 agents at 200 calls/s)"
    return Entry("terminal_bytes", ("--measure", str(measure)), 300 + 4 * measure, (
        Figure(f"{n}: costtop's output at steady state", "KB/s",
               at("results", ("app", "costtop"), "bytes_per_s", scale=1e-3), Target("< 3 KB/s", "<", 3),
               ("naive DataTable app", at("results", ("app", "naive"), "bytes_per_s", scale=1e-3))),
    ))


def keys(rate: int, args: tuple[str, ...], timeout: float) -> Entry:
    n, r = f"keys ({rate:,} calls/s, window full)", "result"
    cpu = Target("< 20 %", "<", 20) if rate <= 2000 else Target("< 60 %", "<", 60)  # the doc's, by rate
    return Entry("keys", ("--rate", str(rate), *args), timeout, (
        Figure(f"{n}: cursor key -> painted frame, p99", "ms", at(r, "keys", "by_kind_ms", "cursor", "p99"), MS_100),
        Figure(f"{n}: help key -> painted frame, p99", "ms", at(r, "keys", "by_kind_ms", "help", "p99"), MS_100),
        Figure(f"{n}: sort key -> painted frame, p99", "ms", at(r, "keys", "by_kind_ms", "sort", "p99"), MS_100),
        Figure(f"{n}: costtop CPU without keys", "% of a core", at(r, "steady", "costtop_cpu_percent"), cpu),
        Figure(f"{n}: freshness without keys, commit -> painted, p99", "ms",
               at(r, "steady_freshness_ms", "painted", "p99")),
        Figure(f"{n}: renders with a STALE badge", "", at(r, "stale", "badge_stale"), NONE_STALE),
        Figure(f"{n}: q -> process exit", "s", at(r, "quit", "to_process_exit_s"), Q_2S),
    ))


def history(sizes: Sequence[int]) -> Entry:
    return Entry("history", ("--rows", *map(str, sizes)), 600 + sum(sizes) / 5_000, tuple(
        Figure(f"history ({rows:,} rows in the week): daily_spend, median", "ms",
               at(("rows_in_week", rows), "median_ms")) for rows in sizes))


def scale(sizes: Sequence[int]) -> Entry:
    figures: list[Figure] = []
    for rows in sizes:
        n, big = f"scale ({rows:,} rows)", rows >= 10_000_000
        figures += [
            Figure(f"{n}: costtop's read per refresh, median", "ms", at(("rows", rows), "costtop_refresh", "median_ms"),
                   comparator=("naive GROUP BY", at(("rows", rows), "naive_refresh", "median_ms"))),
            Figure(f"{n}: naive GROUP BY / costtop's read", "×", at(("rows", rows), "naive_over_costtop"),
                   Target(">= 50×", ">=", 50) if big else None),
            Figure(f"{n}: rows read per refresh", "rows", at(("rows", rows), "costtop_refresh", "rows_read_median"),
                   Target("2,000 (the new rows)", "==", 2000)),
            Figure(f"{n}: start-up, first screen", "ms", at(("rows", rows), "startup_first_screen_ms"),
                   Target("< 2 s", "<", 2000) if big else None),
            Figure(f"{n}: start-up, with the day's and month's totals", "ms",
                   at(("rows", rows), "startup_complete_ms"), Target("< 2 s", "<", 2000) if big else None),
        ]
    return Entry("scale", ("--rows", *map(str, sizes)), 900 + sum(sizes) / 2_000, tuple(figures))


def startup(sizes: Sequence[int], args: tuple[str, ...] = ()) -> Entry:
    """The complete first screen with and without the rollup (issue 19). The benchmark also writes
    `--yesterday` calls the day before, 10M by default: the quick run asks for fewer."""
    figures: list[Figure] = []
    for rows in sizes:
        n, s = f"startup ({rows:,} rows today)", ("sizes", ("rows_today", rows))
        figures += [
            Figure(f"{n}: complete first screen with the rollup, median", "ms", at(*s, "rollup_median_ms"),
                   Target("< 2 s", "<", 2000), ("without the rollup", median_of(*s, "raw", key="complete_ms"))),
            Figure(f"{n}: the rollup job filling it from nothing", "s", at(*s, "job_fill_s")),
            Figure(f"{n}: the rollup job's next run", "s", at(*s, "job_next_run_s")),
            Figure(f"{n}: of the job's first run, working out yesterday's peaks and costliest traces", "s",
                   at(*s, "job_days_s")),
            Figure(f"{n}: the week of daily sums from the rollup, median", "ms",
                   median_of(*s, "history_rollup", key="week_ms"),
                   comparator=("raw", at(*s, "history_raw", "week_ms"))),
            Figure(f"{n}: yesterday's report from the rollup, median", "ms",
                   median_of(*s, "history_rollup", key="report_ms"), Target("< 1 s", "<", 1000),
                   ("raw", at(*s, "history_raw", "report_ms"))),
        ]
    if len(sizes) >= 2:
        figures.append(Figure("startup: complete first screen with the rollup, extrapolated to a day of 173M rows",
                              "ms", at("rollup_173m_ms_extrapolated"), Target("< 2 s", "<", 2000)))
    figures.append(Figure("startup: a gateway batch of 2,000 rows keeping the rollup, median", "ms",
                          at("gateway", "with_rollup_ms"),
                          comparator=("without the rollup", at("gateway", "plain_ms"))))
    yesterday = int(args[args.index("--yesterday") + 1]) if "--yesterday" in args else 10_000_000
    built = sum(sizes) + len(sizes) * yesterday
    return Entry("startup", ("--rows", *map(str, sizes), *args), 900 + built / 4_000, tuple(figures))


def live(args: tuple[str, ...], rates: Sequence[int], timeout: float) -> Entry:
    figures: list[Figure] = []
    for rate in rates:
        n, run = f"live ({rate:,} calls/s)", ("runs", ("rate", rate))
        low = rate == 2000  # the doc's targets are at 2,000 calls/s unless it says otherwise
        figures += [
            Figure(f"{n}: freshness, commit -> painted frame, p99", "ms", at(*run, "freshness_ms", "painted", "p99"),
                   Target("<= 1,150 ms", "<=", 1150)),
            Figure(f"{n}: freshness, commit -> painted frame, p50", "ms", at(*run, "freshness_ms", "painted", "p50")),
            Figure(f"{n}: switch confirmed -> key in Redis, p99", "ms", at(*run, "switch_a_call_to_key_ms", "p99"),
                   Target("< 50 ms", "<", 50) if low else None),
            Figure(f"{n}: key set by another client -> on screen, p99", "ms",
                   at(*run, "switch_b_set_to_render_ms", "p99"), Target("< 1 s", "<", 1000) if low else None),
            Figure(f"{n}: costtop CPU", "% of a core", at(*run, "steady", "costtop_cpu_percent"),
                   Target("< 20 %", "<", 20) if low else Target("< 60 %", "<", 60)),
            Figure(f"{n}: costtop RSS, mean", "MB", at(*run, "steady", "costtop_rss_mb_mean"),
                   Target("< 200 MB", "<", 200) if low else Target("< 300 MB", "<", 300)),
            Figure(f"{n}: start-up to the first live frame", "s", at(*run, "startup_to_first_live_render_s"),
                   None if low else Target("< 5 s", "<", 5)),
        ]
    return Entry("live", args, timeout, tuple(figures))


def faults(runs: int) -> Entry:
    figures: list[Figure] = []
    for fault, what in (("postgres_kill", "Postgres SIGKILL"), ("redis_kill", "Redis SIGKILL"),
                        ("postgres_freeze", "Postgres frozen")):
        figures += [
            Figure(f"faults ({what}): fault -> first failed read, median", "s",
                   at(f"{fault}_to_failed_read_s", "median")),
            Figure(f"faults ({what}): failed read -> STALE on screen, median", "s",
                   at(f"{fault}_failed_read_to_stale_badge_s", "median")),
            Figure(f"faults ({what}): server back -> exact totals, median", "s",
                   at(f"{fault}_back_to_exact_totals_s", "median")),
        ]
    return Entry("faults", ("--runs", str(runs)), 300 + 120 * runs, tuple(figures))


def litellm_callback(requests: int, warmup: int) -> Entry:
    n = "litellm_callback (mock models, sequential)"
    without = ("without the callback", at("without", "p50_ms"))
    return Entry("litellm_callback", ("--requests", str(requests), "--warmup", str(warmup)), 600 + requests / 2, (
        Figure(f"{n}: p50 with the callback, agent not switched", "ms", at("with", "p50_ms"), comparator=without),
        Figure(f"{n}: p99 with the callback, agent not switched", "ms", at("with", "p99_ms"),
               comparator=("without the callback", at("without", "p99_ms"))),
        Figure(f"{n}: p50 with the callback, agent throttled", "ms", at("throttled", "p50_ms"), comparator=without),
        Figure(f"{n}: the pre-call hook alone, p50, not switched", "ms", at("hook_alone", "free", "p50_ms")),
    ), requires=_litellm_venv)


def _lost(phase: str) -> Getter:
    return lambda d: float(walk(d, (phase, "rows_in_sql"))) - float(walk(d, (phase, "rows_counted")))


def late_rows(seconds: int) -> Entry:
    n, cost = "late_rows (2,000 calls/s, a fifth late)", "cost_of_catching_late_rows"
    return Entry("late_rows", ("--seconds", str(seconds)), 600 + 4 * seconds, (
        Figure(f"{n}: costtop CPU of the check", "% of a core", at(cost, "costtop_cpu_share_of_one_core", scale=100),
               Target("< 10 %", "<", 10)),
        Figure(f"{n}: database CPU of the check", "ms/s", at(cost, "db_cpu_ms_per_s"),
               Target("< 50 ms per second", "<", 50)),
        Figure(f"{n}: rows lost with the check on", "rows", _lost("on"), Target("0", "==", 0),
               ("check off", _lost("off"))),
    ))


def floods(args: tuple[str, ...], scenarios: Sequence[tuple[str, str]], timeout: float) -> Entry:
    figures: list[Figure] = []
    for scenario, what in scenarios:
        n, s = f"floods ({what})", ("results", ("scenario", scenario))
        figures += [
            Figure(f"{n}: on screen after start", "s", at(*s, "startup_to_flood_drawn_s")),
            *(Figure(f"{n}: {kind} key -> painted frame, p99", "ms", at(*s, "keys", "by_kind_ms", kind, "p99"), MS_200)
              for kind in ("cursor", "help", "sort")),
            Figure(f"{n}: renders with a STALE badge", "", at(*s, "stale", "badge_stale"), NONE_STALE),
            Figure(f"{n}: RSS, peak", "MB", at(*s, "keys_phase", "costtop_rss_mb_peak_hwm")),
            Figure(f"{n}: q -> process exit", "s", at(*s, "quit", "to_process_exit_s"), Q_2S),
        ]
    return Entry("floods", args, timeout, tuple(figures))


def soak(minutes: int) -> Entry:
    def errors(d: Any) -> float:
        return float(sum(walk(d, ("verdict", "errors")).values()))

    return Entry("soak", ("--minutes", str(minutes)), 60 * minutes + 900, (
        Figure(f"soak ({minutes} min at 1,000 calls/s): RSS change after the first 5 minutes", "%",
               at("verdict", "rss_change", scale=100), Target("<= 10 %", "<=", 10)),
        Figure(f"soak ({minutes} min at 1,000 calls/s): errors", "", errors, Target("0", "==", 0)),
    ))


def refresh() -> Entry:
    n = "refresh (the demo, 40 calls/s)"
    return Entry("refresh", (), 600, (
        Figure(f"{n}: rows written per second", "rows/s", at("demo_rows_per_s")),
        Figure(f"{n}: Postgres read per refresh, median", "ms", at("postgres_read", "median_ms")),
        Figure(f"{n}: snapshot build, median", "ms", at("engine_snapshot", "median_ms")),
        Figure(f"{n}: render, median", "ms", at("render", "median_ms")),
    ))


FLOODS_ALL = (("agents", "100,000 agents"), ("switches", "50,000 switches"), ("million", "1,000,000 agents"))


def plan(kind: str) -> list[Entry]:
    """The benchmarks of a run, cheapest first. Quick: seconds to a few minutes each; full: the doc's commands."""
    if kind == "quick":
        return [
            ingest(),
            trace_view(),
            full_window(330),
            frame(10_000, 500, 10),
            history([1_000_000]),
            scale([1_000_000]),
            startup([1_000_000], ("--yesterday", "1000000", "--raw-runs", "1", "--gateway-batches", "20")),
            faults(3),
            late_rows(20),
            terminal_bytes(20),
            litellm_callback(200, 20),
            live(("--rates", "2000", "--seconds", "20", "--warmup", "5", "--trials", "3"), [2000], 900),
            # At 10,000 calls/s the backfill alone is 3.3M rows, and on the busy two cores costtop did not
            # catch up with the load within the benchmark's 300 s: the quick run presses keys at 2,000.
            keys(2000, ("--rounds", "10", "--steady", "10"), 900),
            # 100,000 agents are on screen within 20 s when all is well: give up after 3 minutes, not 10.
            floods(("--only", "agents", "--rounds", "10", "--start-timeout", "180"), FLOODS_ALL[:1], 900),
        ]
    return [
        ingest(),
        trace_view(),
        full_window(330),
        frame(10_000, 500, 20),
        refresh(),
        history([1_000_000, 10_000_000]),
        scale([1_000_000, 10_000_000]),
        startup([10_000_000, 30_000_000]),
        faults(5),
        late_rows(60),
        terminal_bytes(60),
        litellm_callback(1000, 50),
        live(("--seconds", "60"), [2000, 10_000], 3600),
        keys(10_000, (), 2400),
        floods(("--million",), FLOODS_ALL, 3 * 3600),
        soak(60),
    ]


# -- baselines, merging, markdown (pure) ---------------------------------------------------------------------------

def attach_baselines(record: dict[str, Any], previous: dict[str, Any] | None) -> dict[str, Any]:
    """The record with each figure's baseline: the same figure in the previous results file, with its commit."""
    before: dict[str, tuple[dict[str, Any], str]] = {}
    for bench in (previous or {}).get("benchmarks", []):
        for fig in bench.get("figures", []):
            before[fig["name"]] = (fig, bench.get("commit", "?"))
    figures = []
    for fig in record["figures"]:
        old = before.get(fig["name"])
        baseline = None
        if old is not None:
            baseline = {"value": old[0].get("value"), "unit": old[0].get("unit"), "commit": old[1],
                        "command": old[0].get("command")}
            if old[0].get("value") is None:
                baseline["not_measured"] = old[0].get("not_measured", "?")
        figures.append({**fig, "baseline": baseline})
    return {**record, "figures": figures}


def merge(previous: dict[str, Any] | None, records: Sequence[dict[str, Any]], order: Sequence[str],
          header: dict[str, Any]) -> dict[str, Any]:
    """The new results file: this run's records, and the previous file's for benchmarks not run this time."""
    by_name = {b["name"]: b for b in (previous or {}).get("benchmarks", [])}
    by_name.update({r["name"]: r for r in records})
    return {**header, "benchmarks": [by_name[name] for name in order if name in by_name]}


def number(value: float) -> str:
    """A figure as the doc writes them: thousands separated, about three significant digits."""
    size = abs(value)
    if size >= 100 or value == int(value):
        return f"{value:,.0f}"
    if size >= 10:
        return f"{value:.1f}"
    if size >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def with_unit(value: float, unit: str) -> str:
    return f"{number(value)}×" if unit == "×" else f"{number(value)} {unit}".rstrip()


def cell(text: str) -> str:
    """Text safe inside a markdown table cell: one line, no pipes, not endless."""
    text = " ".join(str(text).split()).replace("|", "/")
    return text if len(text) <= 160 else text[:157] + "..."


def figure_row(fig: dict[str, Any], commit: str) -> str:
    if fig.get("value") is None:
        now = f"not measured ({cell(fig.get('not_measured', 'no value'))})"
    else:
        now = f"**{with_unit(fig['value'], fig['unit'])}**"
    base = fig.get("baseline")
    if base is None:
        baseline = "none (no previous run)"
    elif base.get("value") is None:
        baseline = f"not measured at {base['commit']}"
    else:
        baseline = f"{with_unit(base['value'], base.get('unit') or fig['unit'])} at {base['commit']}"
    if base is not None and base.get("command") not in (None, fig.get("command")):
        baseline += " (other arguments)"  # a plan changed since: a difference may be the arguments'
    comparator = fig.get("comparator")
    if comparator is not None:
        same = "not measured" if comparator["value"] is None else with_unit(comparator["value"], fig["unit"])
        baseline += f"; {comparator['what']}, same run: {same}"
    target = fig.get("target")
    if target is None:
        goal = "—"
    elif fig.get("met") is None:
        goal = target["text"]
    else:
        goal = f"{target['text']}: {'met' if fig['met'] else '**not met**'}"
    return f"| {cell(fig['name'])} | {now} | {baseline} | {goal} | {commit} |"


def render_table(results: dict[str, Any]) -> str:
    """One row per figure of every benchmark in the results file, each with the commit it was measured on."""
    lines = ["| figure | this run | baseline | target | commit |", "| --- | --- | --- | --- | --- |"]
    for bench in results.get("benchmarks", []):
        for fig in bench.get("figures", []):
            lines.append(figure_row(fig, bench.get("commit", "?")))
    return "\n".join(lines)


def render_commands(results: dict[str, Any]) -> str:
    out = []
    for bench in results.get("benchmarks", []):
        how = bench["status"] + (f": {cell(bench['reason'])}" if bench.get("reason") else "")
        took = f", {bench['seconds']:.0f} s" if bench.get("seconds") is not None else ""
        out.append(f"- `{bench['command']}` ({how}{took}, {bench.get('commit', '?')})")
    return "\n".join(out)


def render_kind(kind: str, results: dict[str, Any] | None) -> str:
    command = "python -m benchmarks.all" + (" --quick" if kind == "quick" else "")
    title = f"### {'Quick' if kind == 'quick' else 'Full'} run: `{command}`"
    if results is None:
        return f"{title}\nNot run yet: no `benchmarks/results/all-{kind}.json`."
    took = results.get("seconds")
    only = results.get("only")
    head = (f"Last run on commit **{results.get('commit', '?')}**, finished {results.get('finished', '?')}"
            + (f", {took / 60:.1f} minutes" if took is not None else "")
            + (f" (`--only {' '.join(only)}`: the other rows are from earlier runs)" if only else "")
            + f"; the figures are in `benchmarks/results/all-{kind}.json`. The baseline is the same figure in the "
            "file committed before that run. The commands, with each one's outcome and commit:")
    return "\n\n".join([f"{title}\n{wrap(head)}", render_commands(results), render_table(results)])


def wrap(text: str) -> str:
    """Prose wrapped as the rest of the doc is (tables and list items stay one line each)."""
    return textwrap.fill(text, width=105, break_long_words=False, break_on_hyphens=False)


def render_section(by_kind: dict[str, dict[str, Any] | None]) -> str:
    """The doc's section between the markers (markers included), from the quick and the full results."""
    intro = "## The figures now (`benchmarks.all`)\n" + wrap(
        "Written by `python -m benchmarks.all` (`--list` prints each run's commands, `--only NAME ...` runs "
        "some of them); edits between the markers are overwritten. Each row says the commit it was measured "
        "on (\"-dirty\": with uncommitted changes). Single runs on two cores shared with the servers, the "
        "load generator and whatever else runs: read a change from the baseline within about ±15 % as "
        "noise. The sections after this one are the analysis of earlier, longer runs.")
    parts = [BEGIN, intro, *(render_kind(kind, by_kind.get(kind)) for kind in KINDS), END]
    return "\n\n".join(parts)


def replace_section(doc: str, section: str) -> str:
    """`doc` with the text between the markers (markers included) replaced by `section`; everything else
    byte for byte. Without markers, the section goes after the "## The commands" section."""
    start, end = doc.find(BEGIN), doc.find(END)
    if start >= 0 and end > start:
        return doc[:start] + section + doc[end + len(END):]
    if start >= 0 or end >= 0:
        raise ValueError("docs/performance.md has one benchmarks.all marker without the other, or in reverse")
    commands = doc.find("\n## The commands")
    if commands < 0:
        raise ValueError("docs/performance.md has no '## The commands' section to put the figures after")
    after = doc.find("\n## ", commands + 1)
    if after < 0:
        return doc.rstrip("\n") + "\n\n" + section + "\n"
    return doc[:after + 1] + section + "\n\n" + doc[after + 1:]


# -- running ---------------------------------------------------------------------------------------------------

def git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=30).stdout


def commit() -> str:
    """The short commit, with "-dirty" if the tree has changes (untracked files count: they may be measured)."""
    head = git("rev-parse", "--short", "HEAD").strip() or "unknown"
    return head + ("-dirty" if git("status", "--porcelain").strip() else "")


def committed(path: Path) -> dict[str, Any] | None:
    """The results file as committed in HEAD: the baseline of the next run."""
    try:
        text = subprocess.run(["git", "show", f"HEAD:{path.relative_to(REPO).as_posix()}"], cwd=REPO,
                              capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return json.loads(text.stdout) if text.returncode == 0 and text.stdout.strip() else None


def load(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def stop_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGINT to the benchmark's process group (its `finally` stops its servers), then SIGTERM, then SIGKILL."""
    for sig, wait in ((signal.SIGINT, 60), (signal.SIGTERM, 30), (signal.SIGKILL, 10)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(wait)
            return


def last_line(log: Path) -> str:
    lines = [ln for ln in log.read_text(errors="replace").splitlines() if ln.strip()] if log.exists() else []
    return lines[-1].strip() if lines else "no output"


def run_entry(entry: Entry, kind: str) -> dict[str, Any]:
    """Run one benchmark in a process group of its own, within its time limit; its record with figures."""
    work = RESULTS / f"all-{kind}"
    out, log = work / f"{entry.name}.json", work / f"{entry.name}.log"
    command = entry.command(out.relative_to(REPO).as_posix())
    record: dict[str, Any] = {"name": entry.name, "command": command, "commit": commit(),
                              "started": datetime.now(UTC).isoformat(timespec="seconds"), "status": "ok",
                              "reason": None, "exit_code": None, "seconds": None, "figures": []}
    module_file = REPO / Path(*entry.module_name.split(".")).with_suffix(".py")
    reason = None
    if not module_file.exists():
        record["status"], reason = "missing", f"{module_file.relative_to(REPO)} does not exist yet"
    elif (why := entry.requires()) is not None:
        record["status"], reason = "skipped", why
    if reason is not None:
        record["reason"] = reason
        record["figures"] = not_measured(entry.figures, f"{record['status']}: {reason}", command)
        return record
    work.mkdir(parents=True, exist_ok=True)
    out.unlink(missing_ok=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (str(REPO / "src"), str(REPO), os.environ.get("PYTHONPATH")) if p)}
    argv = [sys.executable, "-m", entry.module_name, *entry.args, "--out", str(out)]
    print(f"[{entry.name}] {command} (limit {entry.timeout:.0f} s)", flush=True)
    started = time.monotonic()
    with open(log, "wb") as sink:
        proc = subprocess.Popen(argv, cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=sink,
                                stderr=subprocess.STDOUT, start_new_session=True)
        try:
            record["exit_code"] = proc.wait(entry.timeout)
        except subprocess.TimeoutExpired:
            stop_group(proc)
            record["status"], record["reason"] = "timeout", f"timed out after {entry.timeout:.0f} s"
        except BaseException:
            stop_group(proc)
            raise
    record["seconds"] = round(time.monotonic() - started, 1)
    data = None
    if record["status"] == "ok" and out.exists():
        try:
            data = json.loads(out.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            record["reason"] = f"unreadable JSON: {exc}"
    if record["status"] == "ok" and data is None:
        record["status"] = "failed"
        record["reason"] = record["reason"] or f"exit code {record['exit_code']}: {last_line(log)}"
    if data is None:
        record["figures"] = not_measured(entry.figures, record["reason"], command)
    else:
        if record["exit_code"]:  # a scenario failed (its figures say why), or soak's bar was not met
            record["status"] = "partial"
            record["reason"] = f"exit code {record['exit_code']}, its JSON written: {last_line(log)}"
        record["figures"] = read_figures(entry.figures, data, command)
    print(f"[{entry.name}] {record['status']} in {record['seconds']} s"
          + (f": {record['reason']}" if record["reason"] else ""), flush=True)
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="the quick plan (minutes) instead of the full one")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run only these benchmarks of the plan")
    parser.add_argument("--list", action="store_true", help="print the plan and exit")
    args = parser.parse_args(argv)
    kind = "quick" if args.quick else "full"
    entries = plan(kind)
    names = [e.name for e in entries]
    if args.only:
        unknown = sorted(set(args.only) - set(names))
        if unknown:
            parser.error(f"not in the {kind} plan: {', '.join(unknown)} (it has: {', '.join(names)})")
        entries = [e for e in entries if e.name in args.only]
    if args.list:
        for e in entries:
            exists = (REPO / Path(*e.module_name.split(".")).with_suffix(".py")).exists()
            print(f"{e.name:<17} limit {e.timeout / 60:5.0f} min{'' if exists else '  (module missing)'}\n"
                  f"    {e.command(f'benchmarks/results/all-{kind}/{e.name}.json')}")
        return 0
    path = RESULTS / f"all-{kind}.json"
    baseline = committed(path)
    started, at_start = time.monotonic(), commit()
    records = [attach_baselines(run_entry(e, kind), baseline) for e in entries]
    header = {"kind": kind, "commit": at_start, "finished": f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
              "seconds": round(time.monotonic() - started, 1), "only": args.only,
              "machine": {"cores": os.cpu_count(), "python": platform.python_version(),
                          "platform": platform.platform()}}
    results = merge(load(path) or baseline, records, names, header)
    path.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    others = {k: load(RESULTS / f"all-{k}.json") for k in KINDS}
    with open(DOC, encoding="utf-8", newline="") as f:  # newline="": the rest of the doc byte for byte
        doc = f.read()
    with open(DOC, "w", encoding="utf-8", newline="") as f:
        f.write(replace_section(doc, render_section(others)))
    print(f"\n{render_table(results)}\n\n-> {path.relative_to(REPO)}, {DOC.relative_to(REPO)}")
    # A benchmark not in the checkout or not runnable here is said in the table; only a failure fails the run.
    return 1 if any(r["status"] in ("failed", "timeout", "partial") for r in records) else 0


if __name__ == "__main__":
    sys.exit(main())
