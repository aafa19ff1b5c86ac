"""How long a trace of N steps takes to open in the trace view, and each scroll key after it.

    python -m benchmarks.trace_view --steps 10000

Headless, no servers: the static demo feed with one trace of N steps chained by parent span (the
deepest nesting, the worst case for the nesting walk). Open = from `enter` on the trace to its steps
marked, nested and painted; each key = from the key press to the next painted frame.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from costtop.config import Settings
from costtop.demo.static_feed import StaticFeed
from costtop.pricing.catalog import shipped
from costtop.session import Session
from costtop.sources.records import Step
from costtop.ui.app import CosttopApp
from costtop.ui.screens.drill_down import StepList, TraceScreen

NOW = datetime(2026, 11, 22, 14, 30, tzinfo=UTC)


class LongTraceFeed(StaticFeed):
    def __init__(self, now: datetime, steps: int) -> None:
        super().__init__(now)
        self.steps = steps

    async def trace_steps(self, trace_id: str) -> list[Step]:
        start = self.now - timedelta(hours=1)
        return [Step(start + timedelta(milliseconds=300 * i), "search" if i % 2 else "llm", f"s{i}",
                     f"s{i - 1}" if i else None, None if i % 2 else "gpt-5", 1000 + i, 10, Decimal("0.001"), 200,
                     "success") for i in range(self.steps)]


async def wait(app: CosttopApp, condition: object, timeout: float = 60.0) -> None:
    deadline = time.perf_counter() + timeout
    while not condition():  # type: ignore[operator]
        if time.perf_counter() > deadline:
            raise SystemExit("timed out")
        await asyncio.sleep(0.001)


async def run(steps: int, keys: int) -> dict[str, object]:
    settings = Settings()
    app = CosttopApp(settings, Session(settings, LongTraceFeed(NOW, steps), clock=lambda: NOW, catalog=shipped()))
    async with app.run_test(size=(160, 50)) as pilot:
        await wait(app, lambda: app.snapshot is not None and bool(app.snapshot.agents))
        await pilot.press("enter")
        await pilot.pause(0.3)
        t0 = time.perf_counter()
        await pilot.press("enter")
        await wait(app, lambda: isinstance(app.screen, TraceScreen)
                   and len(app.screen.query_one(StepList).steps) == steps)
        await pilot.pause()
        opened = time.perf_counter() - t0
        times = []
        for i in range(keys):
            t = time.perf_counter()
            await pilot.press(("end", "pageup", "home", "pagedown")[i % 4])
            await pilot.pause()
            times.append(time.perf_counter() - t)
    return {"steps": steps, "open_ms": round(opened * 1000, 1), "keys": keys,
            "key_ms_median": round(statistics.median(times) * 1000, 1),
            "key_ms_max": round(max(times) * 1000, 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--keys", type=int, default=40)
    parser.add_argument("--out", type=Path, help="also write the JSON to this file")
    args = parser.parse_args(argv)
    result = asyncio.run(run(args.steps, args.keys))
    print(json.dumps(result))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
