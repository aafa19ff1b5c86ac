"""`costtop snapshot` against real servers: fixed rows and keys in, the exact output out."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from costtop.cli import main
from costtop.demo.servers import free_port
from costtop.gateway import Call, Gateway


async def seed(pg, redis) -> None:  # type: ignore[no-untyped-def]
    at = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=30)
    if at.date() != datetime.now(UTC).date():
        pytest.skip("too close to midnight UTC for a fixed day")
    calls = [Call("alpha", "llm", 100, provider="openai", model="gpt-5", cost_usd=Decimal("1.25"), created_at=at)
             for _ in range(4)]
    calls += [Call("beta", "llm", 200, provider="anthropic", model="claude", cost_usd=Decimal("0.50"),
                   status="error", created_at=at)]
    await Gateway(redis, pg).record(calls)
    await redis.set("budget:alpha", "10")
    await redis.set("kill:agent:beta", "manual:alice:loop")


async def test_json_has_the_documented_shape_and_the_exact_figures(pg, redis, db_url, redis_url, capsys) -> None:
    await seed(pg, redis)
    assert await _run(["snapshot", "--format", "json", "--redis-url", redis_url, "--database-url", db_url]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["version"] == 1 and data["sources"] == {"redis": {"ok": True, "error": None},
                                                        "postgres": {"ok": True, "error": None}}
    assert data["header"]["spend_today"] == "5.5" and data["header"]["burn_per_min"] == "1.1"
    assert data["agents"] == [
        {"agent": "alpha", "agent_display": "alpha",
         "state": "ok", "spend_today": "5", "burn_per_min": "1", "level": "ok",
         "calls_today": 4, "errors_today": 0, "p95_ms": 100, "budget": "10", "budget_used": 0.5,
         "budget_state": "ok"},
        {"agent": "beta", "agent_display": "beta",
         "state": "killed", "spend_today": "0.5", "burn_per_min": "0.1", "level": "ok",
         "calls_today": 1, "errors_today": 1, "p95_ms": 200, "budget": None, "budget_used": None,
         "budget_state": "disabled"},
    ]
    assert data["switches"] == [{"key": "kill:agent:beta", "kind": "kill", "scope": "agent", "target": "beta",
                                 "who": "alice", "why": "loop", "ttl_seconds": None}]
    assert {p["provider"]: p["spend_today"] for p in data["providers"]} == {"openai": "5", "anthropic": "0.5"}


async def test_table_and_csv(pg, redis, db_url, redis_url, capsys) -> None:
    await seed(pg, redis)
    assert await _run(["snapshot", "--redis-url", redis_url, "--database-url", db_url]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[1] == "today $5.50  month $5.50  burn $1.10/min  calls 1.0/min"
    assert table[2:4] == ["Redis: ok", "Postgres: ok"]
    assert table[4:7] == ["AGENT  STATE   TODAY  $/MIN  CALLS  ERR  BUDGET",
                          "alpha  ok      $5.00  $1.00      4    0  $10.00",
                          "beta   killed  $0.50  $0.10      1    1    none"]
    assert await _run(["snapshot", "--format", "csv", "--redis-url", redis_url, "--database-url", db_url]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "agent,state,spend_today,burn_per_min,level,calls_today,errors_today,p95_ms,budget,budget_used,budget_state",
        "alpha,ok,5,1,ok,4,0,100,10,0.5,ok",
        "beta,killed,0.5,0.1,ok,1,1,200,none,,disabled"]


async def test_an_unreachable_source_exits_non_zero_and_says_which(db_url, capsys) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    assert await _run(["snapshot", "--format", "json", "--redis-url", url, "--database-url", db_url]) == 3
    captured = capsys.readouterr()
    data = json.loads(captured.out)
    assert data["sources"]["redis"]["ok"] is False and data["sources"]["postgres"]["ok"] is True
    assert captured.err.startswith("costtop: Redis: Redis unreachable at ") and captured.err.count("\n") == 1


async def _run(argv: list[str]) -> int:
    """main() runs its own event loop: call it from a thread, away from the test's."""
    import asyncio

    return await asyncio.to_thread(main, argv)


HOSTILE = {
    "formula": '=HYPERLINK("http://evil","x")',
    "plus": "+1+cmd|' /C calc'!A0",
    "at": "@SUM(1+1)",
    "osc": "\x1b]52;c;ZXZpbA==\x07clip",
    "csi": "red\x1b[31m\r\nline",
    "c1": "c1\x9b2J",
}


async def seed_hostile(pg, redis) -> None:  # type: ignore[no-untyped-def]
    at = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=30)
    if at.date() != datetime.now(UTC).date():
        pytest.skip("too close to midnight UTC for a fixed day")
    await Gateway(redis, pg).record([Call(name, "llm", 100, cost_usd=Decimal("1"), created_at=at)
                                     for name in HOSTILE.values()])
    await redis.set("budget:" + HOSTILE["formula"], "not a number")  # unreadable: unknown, "?"


async def test_hostile_names_reach_csv_and_table_harmless(pg, redis, db_url, redis_url, capsys) -> None:
    """Names from real rows: no control character reaches the table, no cell of the CSV is a formula."""
    import csv
    import io

    await seed_hostile(pg, redis)
    assert await _run(["snapshot", "--format", "csv", "--redis-url", redis_url, "--database-url", db_url]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    agents = {row["agent"] for row in rows}
    # Controls in an id are shown as markers (two ids never look the same), never passed through.
    assert agents == {"'=HYPERLINK(\"http://evil\",\"x\")", "'+1+cmd|' /C calc'!A0", "'@SUM(1+1)",
                      "<U+001B>]52;c;ZXZpbA==<U+0007>clip", "red<U+001B>[31m<U+000D><U+000A>line", "c1<U+009B>2J"}
    budgets = {row["agent"]: (row["budget"], row["budget_state"]) for row in rows}
    assert budgets["'=HYPERLINK(\"http://evil\",\"x\")"] == ("?", "unknown")
    assert budgets["c1<U+009B>2J"] == ("none", "disabled")
    assert all(row["spend_today"] == "1" for row in rows)  # numbers are left as numbers
    assert await _run(["snapshot", "--redis-url", redis_url, "--database-url", db_url]) == 0
    table = capsys.readouterr().out
    assert not any(ch in table for ch in "\x1b\x07\r\x9b")
    assert len(table.splitlines()) == 5 + len(HOSTILE)  # one line per agent: no name breaks a line


async def test_an_unreadable_and_a_missing_budget_read_the_same_in_json_and_table(pg, redis, db_url, redis_url,
                                                                                  capsys) -> None:
    await seed(pg, redis)
    await redis.set("budget:alpha", "lots")
    assert await _run(["snapshot", "--redis-url", redis_url, "--database-url", db_url]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[5].endswith(" ?") and table[6].endswith(" none")
    assert await _run(["snapshot", "--format", "json", "--redis-url", redis_url, "--database-url", db_url]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [(a["budget"], a["budget_state"]) for a in data["agents"]] == [(None, "unknown"), (None, "disabled")]
    assert (data["header"]["day_budget"], data["header"]["day_budget_state"]) == (None, "disabled")
