"""The unit half of tests/integration/test_gateway_page.py: the tests that need no server and no app."""

from __future__ import annotations

from pathlib import Path

from costtop.sources.fallback_file import FALLBACK_COLUMNS

README = Path(__file__).resolve().parents[2] / "README.md"


def page() -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index("## Connect your gateway")
    return text[start:text.index("\n## ", start + 1)]


def test_the_page_names_every_contract_key_and_column() -> None:
    text = page()
    for name in ("kill:global", "kill:agent:{agent}", "kill:provider:{provider}", "kill:model:{model}",
                 "throttle:agent:{agent}", "budget:{agent}", "budget:global:day", "budget:global:month",
                 "spent:{agent}:{day}", "calls:{day}", "throttle_per_minute", "Retry-After",
                 "fallback_file", "fallback_drain_seconds", "(#litellm)", "(#litellm-proxy)"):
        assert name in text, name
    for column in (*FALLBACK_COLUMNS, "task_id", "user_id", "id"):
        assert f"`{column}`" in text, column
