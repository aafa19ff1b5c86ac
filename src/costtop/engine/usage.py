"""Today's usage: the running totals kept per agent, per model and per provider, and the model and
provider rows of a snapshot built from them.

`UsageTotals` is one agent's, model's or provider's day. `Usage` keeps the models' and providers' and
changes only through `add` (one live row, or one (model, provider) pair of the day's sums: the same
accumulation for both). `Prices` looks list prices up for the flat-rate calls' shadow cost.
`model_rows` and `provider_rows` only read what they are given.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from costtop.config import Thresholds
from costtop.engine.redis_view import RedisView
from costtop.engine.snapshot import Health, ModelRow, ProviderRow
from costtop.engine.windows import KeyedSeconds
from costtop.pricing.catalog import Catalog, Price, shadow_cost
from costtop.sources.records import UsageAggregate

NO_TOKENS = (0, 0, 0)
PROVIDER_DOWN_SECONDS = 120  # seed: a provider with more than 50 % errors in 2 minutes is down


@dataclass(slots=True)
class UsageTotals:
    """An agent's, a model's or a provider's day. Tokens of calls without a recorded cost are kept
    apart: they are what a price list would charge (the shadow cost)."""

    cost: Decimal = Decimal(0)
    priced: int = 0
    calls: int = 0
    errors: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    cached: int = 0
    flat_in: int = 0
    flat_out: int = 0
    flat_cached: int = 0
    unusable: int = 0  # calls whose recorded cost is not a figure: left out of `cost`, not flat-rate
    negative: int = 0  # calls with a negative cost: in `cost`, as SQL sums them

    @property
    def flat(self) -> int:
        """Calls without a recorded cost (flat-rate plans); an unusable cost is not one of them."""
        return self.calls - self.priced - self.unusable

    def add(self, cost: Decimal | None, priced: int, calls: int, errors: int, tokens: tuple[int, int, int],
            flat: tuple[int, int, int], unusable: int = 0, negative: int = 0) -> None:
        if cost is not None:
            self.cost += cost
        self.unusable += unusable
        self.negative += negative
        self.priced += priced
        self.calls += calls
        self.errors += errors
        self.tokens_in += tokens[0]
        self.tokens_out += tokens[1]
        self.cached += tokens[2]
        self.flat_in += flat[0]
        self.flat_out += flat[1]
        self.flat_cached += flat[2]


class Usage:
    """Today's totals per model and per provider (a new day starts a new `Usage`)."""

    __slots__ = ("models", "providers")

    def __init__(self) -> None:
        self.models: dict[str | None, UsageTotals] = {}
        self.providers: dict[str | None, UsageTotals] = {}

    def add(self, model: str | None, provider: str | None, cost: Decimal | None, priced: int, calls: int,
            errors: int, tokens: tuple[int, int, int], flat: tuple[int, int, int], unusable: int) -> None:
        """Calls of one model through one provider: a live row (one call) or a pair's day of sums."""
        for table, key in ((self.models, model), (self.providers, provider)):
            totals = table.get(key)
            if totals is None:
                totals = table[key] = UsageTotals()
            totals.add(cost, priced, calls, errors, tokens, flat, unusable)

    def add_sums(self, usage: Iterable[UsageAggregate]) -> None:
        """The day's sums per (model, provider), read in bulk."""
        for u in usage:
            self.add(u.model, u.provider, u.cost, u.priced_calls, u.calls, u.errors,
                     (u.tokens_in, u.tokens_out, u.cached_tokens),
                     (u.flat_tokens_in, u.flat_tokens_out, u.flat_cached_tokens), u.unusable_costs)


class Prices:
    """The catalog's entry for each model name, looked up once per name and catalog."""

    def __init__(self) -> None:
        self.catalog: Catalog | None = None  # list prices, for flat-rate calls' shadow cost only
        self._found: dict[str | None, tuple[str, Price] | None] = {}

    def use(self, catalog: Catalog | None) -> None:
        if catalog is not self.catalog:
            self.catalog, self._found = catalog, {}

    def of(self, model: str | None) -> tuple[str, Price] | None:
        found = self._found
        if model not in found:
            found[model] = self.catalog.find(model) if self.catalog is not None else None
        return found[model]


def model_rows(usage: Usage, prices: Prices, redis: RedisView, known: bool, has_cost: bool) -> tuple[ModelRow, ...]:
    """One row per model used today or held by a switch, biggest spend first; with the shadow cost of
    its flat-rate calls when the catalog lists it."""
    names = set(usage.models) | redis.targets("model")
    rows = []
    for name in names:
        day = usage.models.get(name) or UsageTotals()
        state, switch = redis.switched("model", name)
        found = prices.of(name)
        shadow = shadow_cost(found[1], day.flat_in, day.flat_out, day.flat_cached) if found else None
        rows.append(ModelRow(
            model=name,
            spend_today=day.cost if known and has_cost else None,
            calls_today=day.calls if known else None,
            priced_calls=day.priced if known else None,
            tokens_in=day.tokens_in if known else None,
            tokens_out=day.tokens_out if known else None,
            cached_tokens=day.cached if known else None,
            flat_calls=day.flat if known and has_cost else None,
            flat_tokens=(day.flat_in, day.flat_out, day.flat_cached),
            state=state, switch=switch,
            shadow_cost=shadow if known else None, priced_as=found[0] if found else None,
        ))
    rows.sort(key=lambda r: (-(r.spend_today or 0), -(r.calls_today or 0), r.model or ""))
    return tuple(rows)


def provider_rows(usage: Usage, window: KeyedSeconds, now_s: int, redis: RedisView, thresholds: Thresholds,
                  known: bool, has_cost: bool, silent: bool = False) -> tuple[ProviderRow, ...]:
    """Seed rules: down above 50 % errors in 2 minutes; degraded above 10 % errors in 5 minutes
    or a p95 above 10 s; idle without a call in 5 minutes. While the gateway is silent (no rows
    after traffic) no provider is judged: its last rows are old news, and healthy would be a guess.
    `window` must have been advanced to `now_s`."""
    th = thresholds
    names = set(usage.providers) | set(window.totals) | redis.targets("provider")
    rows = []
    for name in names:
        day = usage.providers.get(name)
        calls_5m, errors_5m = window.totals.get(name, (0, 0))
        calls_2m, errors_2m = window.recent(name, now_s, PROVIDER_DOWN_SECONDS)
        rate_5m = errors_5m / calls_5m if calls_5m else None
        rate_2m = errors_2m / calls_2m if calls_2m else None
        p95 = window.p95(name)
        if silent:
            health = Health.NO_DATA
        elif not calls_5m:
            health = Health.IDLE
        elif rate_2m is not None and rate_2m > th.provider_down_errors_2m:
            health = Health.DOWN
        elif (rate_5m or 0) > th.provider_degraded_errors_5m or (p95 or 0) > th.provider_slow_p95_ms:
            health = Health.DEGRADED
        else:
            health = Health.HEALTHY
        state, switch = redis.switched("provider", name)
        rows.append(ProviderRow(
            provider=name,
            spend_today=(day.cost if day else Decimal(0)) if known and has_cost else None,
            calls_today=(day.calls if day else 0) if known else None,
            calls_2m=calls_2m, error_rate_2m=rate_2m, calls_5m=calls_5m, error_rate_5m=rate_5m,
            p95_ms=p95, health=health, state=state, switch=switch,
        ))
    rows.sort(key=lambda r: (-(r.spend_today or 0), -r.calls_5m, r.provider or ""))
    return tuple(rows)

