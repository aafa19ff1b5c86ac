"""`costtop pricing sync`: OpenRouter's public models list -> a dated local catalog.

The answer is checked before anything is replaced: it must be JSON with a `data` list whose entries
carry an `id` and per-token prices as decimal strings (`pricing.prompt`, `pricing.completion`, and
optionally `pricing.input_cache_read`). Entries with missing or non-numeric prices are left out and
counted. An answer that is not that shape, has no usable entry, or has fewer than half as many models
as the catalog it would replace (a truncated or partial answer) changes nothing, and says why.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

import httpx

from costtop.pricing.catalog import Catalog, Price, current, data_dir
from costtop.text import clean

OPENROUTER_MODELS = "https://openrouter.ai/api/v1/models"
MOVED = Decimal("0.30")  # a price that moved by more than this is reported


class SyncError(Exception):
    """The answer could not be used; the previous catalog stays. One line, for the operator."""


@dataclass
class SyncReport:
    models: int
    skipped: int  # entries without usable prices
    moved: list[str] = field(default_factory=list)  # "model: prompt $x -> $y per 1M tokens"
    saved: Path | None = None


def parse_price(value: object) -> Decimal | None:
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        return None
    try:
        price = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    return price if price.is_finite() and price >= 0 else None


def parse_models(payload: object) -> tuple[dict[str, Price], int]:
    """The priced entries, and how many entries were left out."""
    if not isinstance(payload, dict) or not isinstance(payload.get("data"), list):
        raise SyncError("the answer has no `data` list of models")
    prices: dict[str, Price] = {}
    skipped = 0
    for entry in payload["data"]:
        pricing = entry.get("pricing") if isinstance(entry, dict) else None
        model_id = entry.get("id") if isinstance(entry, dict) else None
        prompt = parse_price(pricing.get("prompt")) if isinstance(pricing, dict) else None
        completion = parse_price(pricing.get("completion")) if isinstance(pricing, dict) else None
        if not isinstance(model_id, str) or not model_id.strip() or prompt is None or completion is None:
            skipped += 1
            continue
        cache = parse_price(pricing.get("input_cache_read")) if isinstance(pricing, dict) else None
        prices[clean(model_id, 200)] = Price(prompt, completion, cache)
    return prices, skipped


def moved_prices(before: Catalog, after: dict[str, Price]) -> list[str]:
    """Models whose prompt or completion price moved by more than 30 %."""
    lines = []
    for model, new in sorted(after.items()):
        old = before.prices.get(model)
        if old is None:
            continue
        for label, a, b in (("prompt", old.prompt, new.prompt), ("completion", old.completion, new.completion)):
            if a == b:
                continue
            if a == 0 or abs(b - a) / a > MOVED:
                lines.append(f"{model}: {label} ${a * 1_000_000:.4g} -> ${b * 1_000_000:.4g} per 1M tokens")
    return lines


def fetch(url: str, timeout: float) -> object:
    try:
        response = httpx.get(url, timeout=timeout, follow_redirects=True,
                             headers={"Accept": "application/json", "User-Agent": "costtop-pricing-sync"})
    except httpx.TimeoutException:
        raise SyncError(f"{url} did not answer within {timeout:g} s") from None
    except httpx.HTTPError as exc:
        raise SyncError(f"{url} could not be reached: {clean(str(exc), 160)}") from None
    if response.status_code != 200:
        raise SyncError(f"{url} answered HTTP {response.status_code}")
    try:
        return response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise SyncError(f"{url} did not answer JSON") from None


def sync(url: str = OPENROUTER_MODELS, directory: Path | None = None, timeout: float = 20.0,
         now: datetime | None = None) -> SyncReport:
    """Fetch, check, and only then save `catalog-YYYY-MM-DD.json` and make it current."""
    directory = directory or data_dir()
    previous = current(directory)
    prices, skipped = parse_models(fetch(url, timeout))
    if not prices:
        raise SyncError(f"no model in the answer had usable prices ({skipped} left out)")
    if len(prices) < len(previous.prices) / 2:
        raise SyncError(f"the answer lists {len(prices)} priced models against {len(previous.prices)} in the "
                        "current catalog: it looks partial")
    day = (now or datetime.now(UTC)).strftime("%Y-%m-%d")
    catalog = Catalog(prices, f"OpenRouter models list ({url})", day)
    directory.mkdir(parents=True, exist_ok=True)
    dated = directory / f"catalog-{day}.json"
    text = catalog.to_json()
    dated.write_text(text)
    tmp = directory / "current.json.tmp"
    tmp.write_text(text)
    tmp.replace(directory / "current.json")  # atomic: a reader sees the old catalog or the new one
    return SyncReport(len(prices), skipped, moved_prices(previous, prices), dated)
