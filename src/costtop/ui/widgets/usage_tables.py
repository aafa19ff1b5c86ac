"""Where the money goes besides agents: one row per provider, one per model, each switchable.

A row's key is the provider or model name exactly as stored (it is also the name in the switch key
`kill:provider:{p}` / `kill:model:{m}`); rows without a name have a key no name can take.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from operator import attrgetter

from rich.text import Text

from costtop.engine.snapshot import AgentState, Health, ModelRow, ProviderRow, Snapshot
from costtop.money import UNKNOWN, usd
from costtop.text import id_text
from costtop.ui.format import millis, percent, state_text, styled
from costtop.ui.widgets.row_table import Column, R, RowTable

NO_NAME = "\x00none"  # the row of calls without a provider / model: Postgres text cannot hold NUL
HEALTH_STYLE = {Health.HEALTHY: "ok", Health.DEGRADED: "strong_warning", Health.DOWN: "killed",
                Health.IDLE: "", Health.NO_DATA: "strong_warning"}  # the Palette's styles; idle: dim


def row_key(name: str | None) -> str:
    return NO_NAME if name is None else name


def row_keys(names: tuple[str | None, ...]) -> Iterable[str]:
    """`row_key` of each name, without a Python call per name when none is missing (the usual case):
    a show of 100,000 agents asks for every key."""
    if None not in names:
        return names  # type: ignore[return-value]  # no None in it: every name is its own key
    return map(row_key, names)


def row_key_set(names: Iterable[str | None]) -> set[str]:
    """The set of `row_key`s of the names: built from the names in C, the missing one (None) swapped once."""
    keys = set(names)
    if None in keys:
        keys.discard(None)
        keys.add(NO_NAME)
    return keys  # type: ignore[return-value]  # None was swapped for NO_NAME


def name_text(name: str | None) -> Text:
    return Text("(none)", style="dim italic") if name is None else id_text(name, style="bold")


def count(value: int | None) -> Text:
    return Text(UNKNOWN if value is None else f"{value:,}", justify="right")


class SwitchableTable(RowTable[R]):
    """A panel whose rows can be killed and resumed by name."""

    scope = ""

    @property
    def selected_name(self) -> str | None:
        key = self.selected_key
        return None if key is None or key == NO_NAME else key


class ProviderTable(SwitchableTable[ProviderRow]):
    scope = "provider"

    def rows_of(self, snap: Snapshot) -> Sequence[ProviderRow]:
        return snap.providers

    def key_of(self, row: ProviderRow) -> str:
        return row_key(row.provider)

    def keys_of(self, rows: Sequence[ProviderRow]) -> Iterable[str]:
        return row_keys(tuple(map(attrgetter("provider"), rows)))

    def key_set(self, rows: Sequence[ProviderRow]) -> set[str]:
        return row_key_set(map(attrgetter("provider"), rows))

    def name_of(self, row: ProviderRow) -> str:
        return row.provider or "(none)"

    def columns_for(self, snap: Snapshot, name_width: int) -> list[Column]:
        return [("name", "Provider", name_width), ("status", "Status", 8), ("today", "Today", 10),
                ("calls", "Calls", 7), ("err2", "Err 2m", 6), ("err5", "Err 5m", 6), ("p95", "p95 5m", 7)]

    def cells_of(self, p: ProviderRow) -> list[Text]:
        """A killed provider shows as killed whatever its health; otherwise its health, in words."""
        health = HEALTH_STYLE[p.health]
        status = state_text(p.state, self.palette) if p.state is not AgentState.OK else \
            Text(p.health.value, style=styled(self.palette, health) if health else "dim")
        return [
            name_text(p.provider), status,
            Text(usd(p.spend_today), justify="right"), count(p.calls_today),
            Text(percent(p.error_rate_2m) if p.calls_2m else "–", justify="right"),
            Text(percent(p.error_rate_5m) if p.calls_5m else "–", justify="right"),
            Text(millis(p.p95_ms) if p.calls_5m else "–", justify="right"),
        ]


class ModelTable(SwitchableTable[ModelRow]):
    scope = "model"

    def rows_of(self, snap: Snapshot) -> Sequence[ModelRow]:
        return snap.models

    def key_of(self, row: ModelRow) -> str:
        return row_key(row.model)

    def keys_of(self, rows: Sequence[ModelRow]) -> Iterable[str]:
        return row_keys(tuple(map(attrgetter("model"), rows)))

    def key_set(self, rows: Sequence[ModelRow]) -> set[str]:
        return row_key_set(map(attrgetter("model"), rows))

    def name_of(self, row: ModelRow) -> str:
        return row.model or "(none)"

    def columns_for(self, snap: Snapshot, name_width: int) -> list[Column]:
        return [("name", "Model", name_width), ("state", "State", 7), ("today", "Today", 10), ("calls", "Calls", 7),
                ("avg", "$/call", 8), ("tin", "Tok in", 6), ("tout", "Out", 5), ("cached", "Cached", 6),
                ("hit", "Hit", 4), ("flat", "Flat", 5), ("shadow", "Flat at list", 14)]

    def cells_of(self, m: ModelRow) -> list[Text]:
        avg = m.average_cost
        return [
            name_text(m.model), state_text(m.state, self.palette), Text(usd(m.spend_today), justify="right"),
            count(m.calls_today), Text(UNKNOWN if avg is None else usd(avg, 4), justify="right"),
            tokens(m.tokens_in), tokens(m.tokens_out), tokens(m.cached_tokens),
            Text(percent(m.cache_hit, 0) if m.cache_hit is not None else "–", justify="right"),
            count(m.flat_calls), shadow_text(m),
        ]


def shadow_text(m: ModelRow) -> Text:
    """The flat-rate calls at list price: an estimate (~), "no price" when the catalog has none."""
    if not m.flat_calls:
        return Text("–", style="dim", justify="right")
    if m.shadow_cost is None:
        return Text("no price", style="dim", justify="right")
    return Text(f"~{usd(m.shadow_cost)} est.", style="italic", justify="right")


def tokens(value: int | None) -> Text:
    """Token counts to three significant figures (1.8M, 540k): a column of exact 9-digit counts
    would crowd out the money."""
    if value is None:
        return Text(UNKNOWN, justify="right")
    for scale, suffix in ((10**9, "G"), (10**6, "M"), (10**3, "k")):
        if value >= scale:
            shown = value / scale
            return Text(f"{shown:.3g}{suffix}", justify="right")
    return Text(str(value), justify="right")
