"""`costtop report --day` against real PostgreSQL: fixed rows of a past day in, the exact Markdown out."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from costtop.cli import main
from costtop.gateway import Call, Gateway

DAY = datetime(2026, 11, 20, tzinfo=UTC)


def at(hour: int, minute: int, second: int = 0) -> datetime:
    return DAY + timedelta(hours=hour, minutes=minute, seconds=second)


async def seed(pg, redis) -> None:  # type: ignore[no-untyped-def]
    calls = []
    # alpha's runaway: $4 a minute for 5 minutes from 10:00 (a 5-minute peak of $20: critical).
    for m in range(5):
        calls += [Call("alpha", "search", 100, provider="openai", model="gpt-5", cost_usd=Decimal("2"),
                       trace_id="t-loop", created_at=at(10, m, s)) for s in (0, 30)]
    # beta: 4 calls, 2 failing (50 %: the error-rate rule), one trace.
    calls += [Call("beta", "llm", 300, provider="anthropic", model="claude", cost_usd=Decimal("0.25"),
                   status="error" if i < 2 else "success", trace_id="t-b", created_at=at(12, i)) for i in range(4)]
    # gamma: one flat-rate call (no cost), no trace.
    calls += [Call("gamma", "llm", 50, provider="anthropic", model="claude", created_at=at(13, 0))]
    # The week before: alpha spent $2 a day (so $20 is an unusual day); the day after is not in the report.
    calls += [Call("alpha", "llm", 10, cost_usd=Decimal("2"), created_at=DAY - timedelta(days=d, hours=-1))
              for d in range(1, 8)]
    calls += [Call("alpha", "llm", 10, cost_usd=Decimal("99"), created_at=DAY + timedelta(days=1, hours=1))]
    await Gateway(redis, pg).record(calls)
    await pg.execute(
        "INSERT INTO costtop_audit (at, operator, ssh_client, action, scope, target, key, reason, ttl_seconds, result) "
        "VALUES ($1, 'alice', '10.0.0.7', 'set:kill', 'agent', 'alpha', 'kill:agent:alpha', 'runaway | loop', 600, "
        "'set'), ($2, 'bob', NULL, 'remove:kill', 'agent', 'alpha', 'kill:agent:alpha', NULL, NULL, 'removed')",
        at(10, 6), at(11, 0))


EXPECTED = """\
# costtop daily report: 2026-11-20 (UTC)

Spend **$21.00** over 15 calls, 2 of them errors.

## By agent

| name | spend | calls | errors |
| --- | --- | --- | --- |
| alpha | $20.00 | 10 | 0 |
| beta | $1.00 | 4 | 2 |
| gamma | $0.00 | 1 | 0 |

## By model

| name | spend | calls | errors |
| --- | --- | --- | --- |
| gpt-5 | $20.00 | 10 | 0 |
| claude | $1.00 | 5 | 2 |

## By provider

| name | spend | calls | errors |
| --- | --- | --- | --- |
| openai | $20.00 | 10 | 0 |
| anthropic | $1.00 | 5 | 2 |

## Costliest traces

| trace | agent | steps | cost | duration |
| --- | --- | --- | --- | --- |
| t-loop | alpha | 10 | $20.00 | 270 s |
| t-b | beta | 4 | $1.00 | 180 s |

## Alerts of the day

| severity | rule | subject | figure |
| --- | --- | --- | --- |
| CRITICAL | burn rate | alpha | $20.00 in the 5 minutes to 10:04 |
| WARNING | error rate | beta | 2 of 4 calls failed |
| WARNING | unusual day | alpha | $20.00 that day; 7-day mean $2.00, usual up to $2.00 |

## Switch changes

| time | who | action | key | reason | ttl | result |
| --- | --- | --- | --- | --- | --- | --- |
| 10:06:00 | alice (10.0.0.7) | set:kill | kill:agent:alpha | runaway \\| loop | 600 s | set |
| 11:00:00 | bob | remove:kill | kill:agent:alpha |  |  | removed |
"""


async def test_the_report_of_a_day_is_exact(pg, redis, db_url, tmp_path) -> None:
    await seed(pg, redis)
    out = tmp_path / "report.md"
    assert await asyncio.to_thread(main, ["report", "--day", "2026-11-20", "--database-url", db_url,
                                          "--out", str(out)]) == 0
    assert out.read_text() == EXPECTED


async def test_hostile_names_and_reasons_cannot_add_markup_to_the_report(pg, redis, db_url, tmp_path) -> None:
    """Real rows and a real audit row carrying links, images, HTML, pipes, backticks and newlines."""
    names = ["[x](http://evil)", "![img](http://e/i.png)", "<script>alert(1)</script>", "a|b\nc", "`rm -rf`",
             "see https://evil.example", "*bold*_it_"]
    await Gateway(redis, pg).record([Call(name, "llm", 10, model=name, cost_usd=Decimal("1"), created_at=at(9, i))
                                     for i, name in enumerate(names)])
    await pg.execute(
        "INSERT INTO costtop_audit (at, operator, ssh_client, action, scope, target, key, reason, ttl_seconds, result) "
        "VALUES ($1, '<b>mallory</b>', NULL, 'set:kill', 'agent', 'x', 'kill:agent:x', "
        "E'[click](javascript:alert(1))\\n| forged | row |', NULL, 'set')", at(9, 30))
    out = tmp_path / "report.md"
    assert await asyncio.to_thread(main, ["report", "--day", "2026-11-20", "--database-url", db_url,
                                          "--out", str(out)]) == 0
    text = out.read_text()
    agents = text.split("## By agent\n\n")[1].split("\n\n")[0].splitlines()[2:]
    assert sorted(agents) == sorted([
        "| \\[x\\](http\\:\\/\\/evil) | $1.00 | 1 | 0 |",
        "| \\!\\[img\\](http\\:\\/\\/e/i.png) | $1.00 | 1 | 0 |",
        "| &lt;script&gt;alert(1)&lt;/script&gt; | $1.00 | 1 | 0 |",
        "| a\\|b&lt;U+000A&gt;c | $1.00 | 1 | 0 |",  # the newline in the id shown as a marker, escaped
        "| \\`rm -rf\\` | $1.00 | 1 | 0 |",
        "| see https\\:\\/\\/evil.example | $1.00 | 1 | 0 |",
        "| \\*bold\\*\\_it\\_ | $1.00 | 1 | 0 |"])
    switches = text.split("## Switch changes\n\n")[1].splitlines()
    assert switches[2] == ("| 09:30:00 | &lt;b&gt;mallory&lt;/b&gt; | set:kill | kill:agent:x | "
                           "\\[click\\](javascript:alert(1))\\| forged \\| row \\| |  | set |")
    assert len(switches) == 3  # the reason's newline made no row of its own
    for line in text.splitlines():  # every table row has as many cells as its header
        if line.startswith("|"):
            cells = line.replace("\\|", "").count("|") - 1
            assert cells in (4, 5, 7), line
