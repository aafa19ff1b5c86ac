"""Why an agent is burning: its traces, then one trace's steps with the runaway patterns marked.

`enter` on an agent opens its traces (the last hour, newest first; `s` or a click on a column's title
sorts them by cost, steps, duration or start), each marked with the runaway patterns its steps show
(judged by the session with `engine.traces.patterns`, the trace view's own definitions), so the runaway
trace stands out before it is opened; `enter` on a trace opens its steps, nested by parent span; `esc`
goes back. Both fit 80x24: one line a call, the patterns in the second column.

The screens are given what they read through (`TraceReads`: the session, which runs the reads on its
own loop; no widget opens a connection), the clock and the thresholds; a failed read is shown on the
screen, not raised.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Protocol

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Footer, Static

from costtop.config import Thresholds
from costtop.engine.snapshot import Snapshot
from costtop.engine.traces import PATTERNS, NestedStep, mark
from costtop.money import UNKNOWN, usd
from costtop.sources.errors import SourceError
from costtop.sources.records import CallRecord, ModelShare, Step, TraceSummary
from costtop.text import clean, id_text, visible_id
from costtop.ui.format import duration, millis
from costtop.ui.screens.base import CosttopScreen
from costtop.ui.themes import DEFAULT_PALETTE, Palette, palette
from costtop.ui.widgets.row_table import Column, RowTable
from costtop.ui.widgets.usage_tables import NO_NAME

TRACES_SINCE = timedelta(hours=1)


class TraceReads(Protocol):
    """The reads behind the drill-down: one agent's recent traces, models and calls; one trace's steps."""

    async def agent_traces(self, agent: str | None, since: datetime) -> list[TraceSummary]: ...
    async def agent_models(self, agent: str | None, since: datetime) -> list[ModelShare]: ...
    async def agent_calls(self, agent: str | None) -> list[CallRecord]: ...
    async def trace_steps(self, trace_id: str) -> list[Step]: ...


@dataclass(frozen=True)
class DrillContext:
    """What the drill-down screens need from the app, passed in."""

    reads: TraceReads
    clock: Callable[[], datetime]
    thresholds: Thresholds
    reload_seconds: float  # how often an open agent screen reads its traces again
MARK_STYLE = {"loop": "bold red", "context": "bold magenta", "errors": "bold yellow"}
SHORT = 40  # lines: below this the agent screen shows fewer latest calls, so its traces keep rows


def pattern_text(patterns: frozenset[str]) -> Text:
    """The runaway patterns as the step view marks them (`loop context errors`, each in its colour)."""
    text = Text()
    for name in PATTERNS:
        if name in patterns:
            text.append(f"{name} ", style=MARK_STYLE[name])
    text.rstrip()
    return text


class TraceSort(StrEnum):
    """The trace list's orders, as `s` steps through them; each biggest (or newest) first."""

    START = "start"
    COST = "cost"
    STEPS = "steps"
    DURATION = "duration"


SORT_CYCLE = (TraceSort.START, TraceSort.COST, TraceSort.STEPS, TraceSort.DURATION)
COLUMN_SORT = {"start": TraceSort.START, "cost": TraceSort.COST, "steps": TraceSort.STEPS, "dur": TraceSort.DURATION}


def sort_traces(traces: Sequence[TraceSummary], order: TraceSort, reverse: bool = False) -> tuple[TraceSummary, ...]:
    """The traces in this order, biggest (newest) first; `reverse`: smallest (oldest) first. An unknown
    cost sorts after every known one either way; ties keep the newest first. Over the list read (at most
    a few hundred traces), so sorting here costs nothing next to the read."""
    by_start = sorted(traces, key=lambda t: t.started, reverse=True)
    if order is TraceSort.START:
        return tuple(reversed(by_start)) if reverse else tuple(by_start)
    if order is TraceSort.COST:
        known = [t for t in by_start if t.cost is not None]
        known.sort(key=lambda t: t.cost or 0, reverse=not reverse)
        return (*known, *(t for t in by_start if t.cost is None))
    key = (lambda t: t.steps) if order is TraceSort.STEPS else (lambda t: t.duration_seconds)
    return tuple(sorted(by_start, key=key, reverse=not reverse))


class TraceList(RowTable[TraceSummary]):
    """The agent's traces: the runaway patterns right after the id, so a runaway trace stands out at 80
    columns; the figures then, in the order an operator reads them (cost, steps, duration)."""

    max_name = 20  # a 36-character trace id is cut the `visible_id` way (`…#` and a hash)

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.traces: tuple[TraceSummary, ...] = ()
        self.order = TraceSort.START
        self.reverse = False
        self._sorted: tuple[tuple[TraceSummary, ...], TraceSort, bool, tuple[TraceSummary, ...]] | None = None

    def rows_of(self, snap: Snapshot) -> Sequence[TraceSummary]:
        last = self._sorted
        if last is None or last[0] is not self.traces or last[1] is not self.order or last[2] != self.reverse:
            last = self._sorted = (self.traces, self.order, self.reverse,
                                   sort_traces(self.traces, self.order, self.reverse))
        return last[3]

    def key_of(self, row: TraceSummary) -> str:
        return row.trace_id

    def columns_for(self, snap: Snapshot, name_width: int) -> list[Column]:
        pattern = max((len(pattern_text(t.patterns)) for t in self.traces), default=0)
        return [("trace", "Trace", name_width), ("pattern", "Pattern", max(7, pattern)), ("cost", "Cost", 9),
                ("steps", "Steps", 6), ("dur", "Duration", 8), ("start", "Started", 8), ("status", "Status", 9),
                ("tin", "Tokens in", 10), ("tout", "out", 8)]

    def cells_of(self, t: TraceSummary) -> list[Text]:
        p = self.palette
        status = Text(f"{t.errors} errors", style=p.strong_critical) if t.errors else Text("ok", style=p.ok)
        first = next((MARK_STYLE[name] for name in PATTERNS if name in t.patterns), "")
        return [id_text(t.trace_id, style=first), pattern_text(t.patterns), Text(usd(t.cost), justify="right"),
                Text(f"{t.steps:,}", justify="right"), Text(duration(t.duration_seconds), justify="right"),
                Text(t.started.strftime("%H:%M:%S")), status, Text(f"{t.tokens_in:,}", justify="right"),
                Text(f"{t.tokens_out:,}", justify="right")]


MAX_INDENT = 6


def indent(depth: int) -> str:
    """Two spaces a level; deeper than six levels the depth is written, so the name keeps its room."""
    return "  " * depth if depth <= MAX_INDENT else f"{'  ' * (MAX_INDENT - 1)}{depth}› "


class StepList(RowTable[NestedStep]):
    """One trace's steps: the pattern marks right after the step's name, so at 80 columns they are seen."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.steps: tuple[NestedStep, ...] = ()
        self._keys: dict[int, str] = {}
        self._pattern_width: tuple[tuple[NestedStep, ...], int] = ((), 7)

    def rows_of(self, snap: Snapshot) -> Sequence[NestedStep]:
        return self.steps

    def key_of(self, row: NestedStep) -> str:
        return self._keys.setdefault(id(row), str(len(self._keys)))

    def name_of(self, row: NestedStep) -> str:
        return indent(row.depth) + row.step.tool_name

    def name_width_of(self, row: NestedStep) -> int:
        return len(indent(row.depth)) + len(visible_id(row.step.tool_name))

    def _patterns_width(self) -> int:
        """As wide as the marks the trace has (measured once per trace read, not per show)."""
        steps, width = self._pattern_width
        if steps is not self.steps:
            found = frozenset[str]().union(*(n.marks for n in self.steps))
            width = max(7, len(pattern_text(found)))
            self._pattern_width = (self.steps, width)
        return width

    def columns_for(self, snap: Snapshot, name_width: int) -> list[Column]:
        return [("tool", "Step", max(name_width, 12)), ("marks", "Pattern", self._patterns_width()),
                ("model", "Model", 16), ("tin", "Tokens in", 10), ("tout", "out", 8), ("cost", "Cost", 10),
                ("lat", "Latency", 8), ("status", "Status", 9)]

    def cells_of(self, n: NestedStep) -> list[Text]:
        s = n.step
        failed = s.status in ("error", "timeout")
        status = Text(clean(s.status or UNKNOWN), style=self.palette.strong_critical if failed else "")
        model = id_text(s.model, 16) if s.model else Text("–", style="dim")  # the dash is ours, not an id
        return [Text(indent(n.depth)) + id_text(s.tool_name, 40), pattern_text(n.marks), model,
                Text(UNKNOWN if s.tokens_in is None else f"{s.tokens_in:,}", justify="right"),
                Text(UNKNOWN if s.tokens_out is None else f"{s.tokens_out:,}", justify="right"),
                Text(usd(s.cost_usd, 4), justify="right"), Text(millis(s.latency_ms), justify="right"), status]


def model_mix(models: Sequence[ModelShare]) -> Text:
    """`Models, last hour: claude-sonnet-4 110 calls $15.95 (99 %) · gpt-4o-mini …`: one line, cut at the
    screen's edge by the .tcss (the biggest spender comes first, so the cut loses the least)."""
    total = sum((m.cost for m in models if m.cost is not None), Decimal(0))
    text = Text("Models, last hour: ", style="bold")
    if not models:
        text.append("no call", style="dim")
    for i, m in enumerate(models[:6]):
        if i:
            text.append(" · ", style="dim")
        text.append_text(id_text(m.model or "(none)", 30, style="bold"))
        share = f" ({m.cost / total * 100:.0f} %)" if m.cost is not None and total > 0 else ""
        text.append(f" {m.calls:,} calls {usd(m.cost)}{share}")
    return text


def recent_calls(calls: Sequence[CallRecord], p: Palette = DEFAULT_PALETTE) -> Text:
    """One line a call, never wrapped (the .tcss): `14:29:47 llm          claude-sonnet-4    2,400 in  $0.1450  840 ms
    error`, 74 columns, so it fits 80; a longer tool or model id is cut the `visible_id` way (`…#hash`),
    and a wider figure pushes only the line's end past the edge, where it is cropped."""
    lines = []
    for c in calls[:8]:
        line = Text(c.created_at.strftime("%H:%M:%S "), style="dim")
        tool = id_text(c.tool_name, 12)
        line.append_text(tool)
        line.append(" " * (13 - tool.cell_len))
        if c.model:
            model = id_text(c.model, 16)
            line.append_text(model)
            line.append(" " * (17 - model.cell_len))
        else:
            line.append("–" + " " * 16, style="dim")  # the dash is ours, not an id
        line.append(f"{'?' if c.tokens_in is None else f'{c.tokens_in:,}':>7} in {usd(c.cost_usd, 4):>8} "
                    f"{millis(c.latency_ms):>7} ")
        line.append(clean(c.status or "?", 12), style=p.strong_critical if c.status in ("error", "timeout") else p.ok)
        lines.append(line)
    return Text("\n").join(lines) if lines else Text("no call yet", style="dim")


def traces_status(traces: Sequence[TraceSummary]) -> Text:
    """`3 traces · runaway: research-bot-t0 loop context errors`: the flagged traces named (up to three,
    ids cut short), so one far down the list is seen without scrolling to it."""
    if not traces:
        return Text("No trace in the last hour.", style="dim")
    text = Text(f"{len(traces):,} traces", style="dim")
    flagged = [t for t in traces if t.patterns]
    if flagged:
        text.append(" · runaway: ", style="bold")
        for i, t in enumerate(flagged[:3]):
            if i:
                text.append(", ", style="dim")
            text.append_text(id_text(t.trace_id, 20, style="bold"))
            text.append(" ")
            text.append_text(pattern_text(t.patterns))
        if len(flagged) > 3:
            text.append(f", {len(flagged) - 3} more", style="dim")
    return text


class AgentScreen(CosttopScreen):
    """One agent: its row's figures and its recent traces. k / u / t act on this agent; `s` (or a click
    on a column's title) orders the traces. On a short terminal the latest calls shrink to a few lines
    (the `short` class), so the trace list, the way to the runaway, keeps its rows."""

    HELP_SCOPE = "agent screen"
    BINDINGS = [Binding("escape", "app.pop_screen", "Back", id="drill.back"),
                Binding("enter", "open_trace", "Open trace", id="drill.open"),
                Binding("s", "sort_traces", "Sort traces", id="drill.sort")]

    def __init__(self, agent_id: str, context: DrillContext, snap: Snapshot | None) -> None:
        super().__init__()
        self.context = context
        self.snap = snap  # the latest snapshot shown: the agent's row comes from it
        # The agent table's key: NO_NAME is the calls without an agent (a NULL agent_id).
        self.agent_id: str | None = None if agent_id == NO_NAME else agent_id
        # Held, not queried: a snapshot can arrive while the screen is being torn down (a pop, or the
        # app quitting), when a query for a child that has just left raises.
        self.figures_view = Static("", id="agent-figures")
        self.mix_view = Static("", id="model-mix")
        self.calls_view = Static("reading…", id="recent-calls")
        self.traces_title = Static(self._traces_title(TraceSort.START, False), id="traces-title",
                                   classes="pane-title")
        self.status_view = Static("reading…", id="traces-status")
        self.trace_list = TraceList(id="traces")

    def compose(self) -> ComposeResult:
        name = visible_id(self.agent_id) if self.agent_id is not None else "(none)"
        yield Static(Text(f"Agent {name}", style="bold"),
                     id="agent-head", classes="pane-title")
        yield self.figures_view
        yield self.mix_view
        yield Static("Latest calls", classes="pane-title")
        yield self.calls_view
        yield self.traces_title
        yield self.status_view
        yield self.trace_list
        yield Footer()

    def on_mount(self) -> None:
        self.trace_list.focus()
        if self.snap is not None:  # the figures at once, not at the next refresh
            self.show(self.snap)
        self.load()
        # Live while open: read again every few refreshes (bounded, indexed reads of one agent).
        self.set_interval(max(2.0, self.context.reload_seconds), self.load)

    def on_resize(self) -> None:
        self.set_class(self.size.height < SHORT, "short")

    @staticmethod
    def _traces_title(order: TraceSort, reverse: bool) -> Text:
        """`Traces, last hour, by cost, biggest first (s: sort · enter: steps)`: 80 columns at most."""
        if order is TraceSort.START:
            way = "oldest first" if reverse else "newest first"
        else:
            way = "smallest first" if reverse else "biggest first"
        return Text(f"Traces, last hour, by {order.value}, {way} (s: sort · enter: steps)")

    def sort_by(self, order: TraceSort, reverse: bool = False) -> None:
        """Order the traces; the title line says the order."""
        table = self.trace_list
        table.order, table.reverse = order, reverse
        self.traces_title.update(self._traces_title(order, reverse))
        if self.snap is not None:
            table.show(self.snap)

    def action_sort_traces(self) -> None:
        """start (newest first) → cost → steps → duration → start."""
        order = self.trace_list.order
        self.sort_by(SORT_CYCLE[(SORT_CYCLE.index(order) + 1) % len(SORT_CYCLE)])

    @on(RowTable.HeaderClicked, "#traces")
    def _header_clicked(self, message: RowTable.HeaderClicked) -> None:
        """A click on the cost, steps, duration or start column's title sorts by it; again reverses."""
        order = COLUMN_SORT.get(message.column)
        if order is None:
            return
        table = self.trace_list
        self.sort_by(order, not table.reverse if table.order is order else False)

    @work(group="drill", exclusive=True)
    async def load(self) -> None:
        reads = self.context.reads
        status = self.status_view
        since = self.context.clock() - TRACES_SINCE
        try:
            traces = await reads.agent_traces(self.agent_id, since)
            models = await reads.agent_models(self.agent_id, since)
            calls = await reads.agent_calls(self.agent_id)
        except SourceError as exc:
            status.update(Text(f"Could not be read: {exc} (shown: the last good read)",
                               style=palette(self.app).strong_critical))
            return
        self.mix_view.update(model_mix(models))
        self.calls_view.update(recent_calls(calls, palette(self.app)))
        table = self.trace_list
        table.traces = tuple(traces)
        status.update(traces_status(traces))
        if self.snap is not None:
            table.show(self.snap)

    def show(self, snap: Snapshot) -> None:
        self.snap = snap
        row = next((a for a in snap.agents if a.agent_id == self.agent_id), None)
        figures = Text("not in the current snapshot", style="dim") if row is None else Text.assemble(
            ("State ", "bold"), (row.state.value, ""), ("  Today ", "bold"), (usd(row.spend_today), ""),
            ("  $/min 5m ", "bold"), (usd(row.velocity_per_min), ""), ("  Calls ", "bold"),
            (UNKNOWN if row.calls_today is None else f"{row.calls_today:,}", ""),
            ("  p95 ", "bold"), (millis(row.p95_ms), ""))
        if row is not None and row.switch is not None:
            source, who, why = row.switch.origin
            figures.append(f"  switch: {who} ({source}): {why}", style=palette(self.app).killed_text)
        self.figures_view.update(figures)
        self.trace_list.show(snap)

    def action_open_trace(self) -> None:
        key = self.trace_list.selected_key
        if key is not None:
            self.app.push_screen(TraceScreen(key, self.context, self.snap))


class TraceScreen(CosttopScreen):
    """One trace's steps, nested by parent span, with the runaway patterns marked."""

    HELP_SCOPE = "trace view"
    BINDINGS = [Binding("escape", "app.pop_screen", "Back", id="trace.back")]

    def __init__(self, trace_id: str, context: DrillContext, snap: Snapshot | None) -> None:
        super().__init__()
        self.trace_id = trace_id
        self.context = context
        self.snap = snap
        self.status_view = Static("reading…", id="steps-status")  # held, as in AgentScreen
        self.step_list = StepList(id="steps")

    def compose(self) -> ComposeResult:
        yield Static(Text(f"Trace {visible_id(self.trace_id)} (esc: back)", style="bold"), classes="pane-title")
        yield self.status_view
        yield self.step_list
        yield Footer()

    def on_mount(self) -> None:
        self.step_list.focus()
        self.load()

    @work(group="drill", exclusive=True)
    async def load(self) -> None:
        status = self.status_view
        try:
            steps = await self.context.reads.trace_steps(self.trace_id)
        except SourceError as exc:
            status.update(Text(f"Steps could not be read: {exc}", style=palette(self.app).strong_critical))
            return
        th = self.context.thresholds
        nested = mark(steps, th.loop_calls, th.context_tokens)
        table = self.step_list
        table.steps = tuple(nested)
        counts = {name: sum(1 for n in nested if name in n.marks) for name in PATTERNS}
        summary = Text(f"{len(nested):,} steps", style="dim")
        for name, count in counts.items():
            if count:
                summary.append(f"  {name}: {count} steps", style=MARK_STYLE[name])
        status.update(summary)
        if self.snap is not None:
            table.show(self.snap)
