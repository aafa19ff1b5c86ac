"""A price list: per-token prices by model, matched tolerantly, used only for calls without a cost.

The gateway's recorded cost is the truth. A catalog price turns a flat-rate call's tokens (cost NULL:
a subscription plan) into its list-price "shadow cost", always labelled as an estimate. A model the
catalog cannot match has no price: shown as "no price", never as $0.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from importlib import resources
from pathlib import Path

import platformdirs

DATE_SUFFIX = re.compile(r"(?:[-@:](?:20\d{2}-?\d{2}-?\d{2}|\d{4}|latest|preview))+$")
VARIANT = re.compile(r":(?:free|beta|extended|thinking|online|nitro|floor)$")


@dataclass(frozen=True, slots=True)
class Price:
    """USD per token. `cache_read` None: cached input is charged at the prompt price."""

    prompt: Decimal
    completion: Decimal
    cache_read: Decimal | None = None


@dataclass(frozen=True)
class Catalog:
    prices: dict[str, Price]  # by the model id as the source names it, e.g. "openai/gpt-4o"
    source: str  # where the prices come from
    as_of: str  # when (YYYY-MM-DD)

    def __post_init__(self) -> None:
        index: dict[str, str] = {}
        for model_id in sorted(self.prices, key=lambda m: ("/" in m, m)):
            for key in match_keys(model_id):
                index.setdefault(key, model_id)
        object.__setattr__(self, "_index", index)

    def find(self, model: str | None) -> tuple[str, Price] | None:
        """The catalog entry for a model name as a gateway writes it (`gpt-4o-2024-08-06`,
        `openai/gpt-4o`, `claude-3-5-sonnet@20240620`), or None."""
        if not model:
            return None
        index: dict[str, str] = self._index  # type: ignore[attr-defined]
        for key in match_keys(model):
            found = index.get(key)
            if found is not None:
                return found, self.prices[found]
        return None

    def to_json(self) -> str:
        return json.dumps({
            "source": self.source, "as_of": self.as_of,
            "models": {m: {"prompt": str(p.prompt), "completion": str(p.completion),
                           **({"input_cache_read": str(p.cache_read)} if p.cache_read is not None else {})}
                       for m, p in sorted(self.prices.items())},
        }, indent=1) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Catalog:
        data = json.loads(text)
        prices = {}
        for model, p in data["models"].items():
            cache = p.get("input_cache_read")
            prices[model] = Price(Decimal(p["prompt"]), Decimal(p["completion"]),
                                  Decimal(cache) if cache is not None else None)
        return cls(prices, data["source"], data["as_of"])


def match_keys(name: str) -> list[str]:
    """From the most to the least exact: the name, without a provider prefix, without a date or
    variant suffix, with dots in version numbers read as dashes (claude-3.5 = claude-3-5)."""
    base = name.strip().lower()
    keys = [base]
    bare = base.rsplit("/", 1)[-1]
    keys.append(bare)
    stripped = DATE_SUFFIX.sub("", VARIANT.sub("", bare))
    keys.append(stripped)
    keys.append(re.sub(r"(?<=\d)\.(?=\d)", "-", stripped))
    out: list[str] = []
    for key in keys:
        if key and key not in out:
            out.append(key)
    return out


def shipped() -> Catalog:
    """The catalog in the package (see its `source`)."""
    return Catalog.from_json(resources.files("costtop.pricing").joinpath("prices.json").read_text())


def data_dir() -> Path:
    return Path(platformdirs.user_data_dir("costtop")) / "pricing"


def current(directory: Path | None = None) -> Catalog:
    """The last synced catalog if there is a readable one, else the shipped one."""
    path = (directory or data_dir()) / "current.json"
    try:
        return Catalog.from_json(path.read_text())
    except (OSError, ValueError, KeyError, TypeError, InvalidOperation):
        return shipped()


def shadow_cost(price: Price, tokens_in: int, tokens_out: int, cached: int) -> Decimal:
    """List price of a call's tokens. Cached tokens are taken as part of tokens_in (as OpenAI and
    Anthropic report usage) and charged at the cache-read price when there is one."""
    cached = max(0, min(cached, tokens_in))
    cache_price = price.cache_read if price.cache_read is not None else price.prompt
    return (tokens_in - cached) * price.prompt + cached * cache_price + tokens_out * price.completion
