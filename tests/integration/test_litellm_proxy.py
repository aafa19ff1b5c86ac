"""A real LiteLLM proxy (1.108.5, its own virtualenv) with costtop's callback, against the test Redis.

One proxy for the whole module (it takes about 10 s to start). Switches are written the way an operator
writes them: by pressing `k`/`u` in the real app, or through costtop's one writer (SwitchWriter). Every
agent name is the test's own, so the tests do not see each other's calls; the `redis` fixture empties
Redis before each test.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import asyncpg
import httpx
import pytest
from redis.asyncio import Redis

from appkit import select_agent, wait_for_data, wait_until
from costtop.config import Settings
from costtop.demo.servers import ServerPair
from costtop.gateway import Call, Gateway
from costtop.refusals import refusal_marker, refusal_message
from costtop.session import Session
from costtop.sources.feed import LiveFeed
from costtop.sources.postgres import PostgresReader
from costtop.sources.records import SwitchChange
from costtop.sources.writer import Operator, SwitchWriter
from costtop.ui.app import CosttopApp
from costtop.ui.screens.switch_dialog import SwitchDialog
from litellm_proxy import Proxy, chat_body, start_proxy
from litellm_schema import apply_migrations

THROTTLE_PER_MINUTE = 3
OP = Operator("tester", None)


@pytest.fixture(scope="module")
def proxy(servers: ServerPair, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    p = start_proxy(tmp_path_factory.mktemp("litellm-proxy"), servers.redis.url,
                    costtop_toml=f"[litellm]\nthrottle_per_minute = {THROTTLE_PER_MINUTE}\n")
    try:
        yield p
    finally:
        p.stop()


@pytest.fixture
async def client(proxy: Proxy) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=proxy.url, headers=proxy.headers(), timeout=30.0) as c:
        yield c


def today() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d")


async def chat(client: httpx.AsyncClient, model: str, agent: str) -> httpx.Response:
    return await client.post("/v1/chat/completions", json=chat_body(model, agent))


def refusal(response: httpx.Response) -> str:
    return str(response.json()["error"]["message"])


def writer(redis: Redis, redis_url: str) -> SwitchWriter:
    return SwitchWriter(Settings(redis_url=redis_url), redis, None, OP)


async def until(condition: Any, timeout: float = 15.0) -> None:
    """LiteLLM runs its logging hooks after answering: wait for what they write."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await condition():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


async def quiet(proxy: Proxy, redis: Redis, calls_key: str) -> tuple[int, int]:
    """Rows and `calls:{day}` once the earlier tests' logging hooks have finished (they run after the
    answer, and may land after this test's Redis was emptied): both unchanged for half a second."""
    last = (-1, -1)
    for _ in range(60):
        now = (len(proxy.rows()), int(await redis.get(calls_key) or 0))
        if now == last:
            return now
        last = now
        await asyncio.sleep(0.5)
    raise AssertionError("the proxy's logging never settled")


def rows_of(proxy: Proxy, agent: str) -> list[dict[str, Any]]:
    return [r for r in proxy.rows() if r.get("agent_id") == agent]


async def test_pressing_k_in_costtop_refuses_the_agents_next_call_and_u_lets_it_through(
        proxy: Proxy, client: httpx.AsyncClient, pg: asyncpg.Pool, redis: Redis, db_url: str,
        redis_url: str) -> None:
    agent = "pilot-agent"
    assert (await chat(client, "gpt-4o", agent)).status_code == 200
    # The app shows agents from its table; the gateway's row for this agent puts it on screen.
    await Gateway(redis, pg).record([Call(agent, "llm", 30, provider="openai", model="gpt-4o",
                                          cost_usd=Decimal("0.01"))])
    settings = Settings(redis_url=redis_url, database_url=db_url, refresh=0.2)
    app = CosttopApp(settings, Session(settings, LiveFeed(settings)))
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_for_data(pilot)
        await select_agent(pilot, agent)
        for key in ("k", "u"):
            app.last_write = None
            await pilot.press(key)
            await wait_until(pilot, lambda: isinstance(app.screen, SwitchDialog))
            await pilot.press("tab", "enter")
            await wait_until(pilot, lambda: app.last_write is not None)
            assert app.last_write is not None and app.last_write.ok
            response = await chat(client, "gpt-4o", agent)
            if key == "k":
                value = (await redis.get(f"kill:agent:{agent}")).decode()
                assert response.status_code == 403
                assert refusal(response) == refusal_message("killed", f"kill:agent:{agent}", value)
            else:
                assert response.status_code == 200, response.text
    # Other agents were never stopped.
    assert (await chat(client, "gpt-4o", "bystander")).status_code == 200


@pytest.mark.parametrize(("source", "extra"), [
    ("end_user", {"user": "id-end-user"}),
    ("metadata", {"metadata": {"spend_logs_metadata": {"agent_id": "id-spend-logs"}}}),
])
async def test_the_agent_checked_is_the_agent_in_the_row(proxy: Proxy, client: httpx.AsyncClient, redis: Redis,
                                                         source: str, extra: dict[str, Any]) -> None:
    """No metadata.agent_id: the agent comes from the next source in the identity order, and the spend-log
    row LiteLLM builds holds that same name where the reader looks for it."""
    agent = "id-end-user" if source == "end_user" else "id-spend-logs"
    body = {"model": "claude", "messages": [{"role": "user", "content": "hi"}], **extra}
    await redis.set(f"kill:agent:{agent}", "manual:tester:identity")
    response = await client.post("/v1/chat/completions", json=body)
    assert response.status_code == 403 and f"kill:agent:{agent}" in refusal(response)

    def row() -> dict[str, Any] | None:
        for r in proxy.rows():
            meta = json.loads(r["metadata"]) if isinstance(r["metadata"], str) else r["metadata"]
            found = r.get("end_user") if source == "end_user" else (meta.get("spend_logs_metadata") or {}).get(
                "agent_id")
            if found == agent:
                return r
        return None

    async def written() -> bool:
        return row() is not None

    await until(written)
    got = row()
    assert got is not None and got["status"] == "failure" and not got.get("agent_id")


async def test_spend_logs_metadata_sent_as_json_text_names_no_agent_on_either_side(
        proxy: Proxy, client: httpx.AsyncClient, redis: Redis) -> None:
    """LiteLLM parses the x-litellm-spend-logs-metadata header before the pre-call hook, but keeps a JSON
    string sent in the body as that string, in the row too, where the reader finds no agent in it: the
    callback must not find one either (it did, and checked a kill key no screen could show or write)."""
    text = json.dumps({"agent_id": "id-text-meta"})
    await redis.set("kill:agent:id-text-user", "manual:tester:identity")
    await redis.set("kill:agent:id-header", "manual:tester:identity")
    body = {"model": "claude", "messages": [{"role": "user", "content": "hi"}], "user": "id-text-user",
            "metadata": {"spend_logs_metadata": text}}
    response = await client.post("/v1/chat/completions", json=body)
    assert response.status_code == 403 and "kill:agent:id-text-user" in refusal(response)
    header = {"x-litellm-spend-logs-metadata": json.dumps({"agent_id": "id-header"})}
    response = await client.post("/v1/chat/completions", json=chat_body("claude"), headers=header)
    assert response.status_code == 403 and "kill:agent:id-header" in refusal(response)

    def row() -> dict[str, Any] | None:
        return next((r for r in proxy.rows() if r.get("end_user") == "id-text-user"), None)

    async def written() -> bool:
        return row() is not None

    await until(written)
    got = row()
    assert got is not None
    meta = json.loads(got["metadata"]) if isinstance(got["metadata"], str) else got["metadata"]
    assert meta["spend_logs_metadata"] == text  # kept as text: the reader's agent is the end user


@pytest.mark.parametrize(("scope", "target", "refused", "served"), [
    ("model", "gpt-4o", "gpt-4o", "claude"),                        # the public name
    ("model", "openai/gpt-4o", "gpt-4o", "claude"),                 # the deployment's
    ("model", "anthropic/claude-3-5-sonnet-20240620", "claude", "gpt-4o"),
    ("provider", "openai", "gpt-4o", "claude"),
    ("provider", "anthropic", "claude", "gpt-4o"),
])
async def test_model_and_provider_kills(proxy: Proxy, client: httpx.AsyncClient, redis: Redis, redis_url: str,
                                        scope: str, target: str, refused: str, served: str) -> None:
    agent = f"m-{scope}-{target.replace('/', '_')}"
    w = writer(redis, redis_url)
    assert (await w.apply(SwitchChange("set", "kill", scope, target, "too_expensive"))).ok
    response = await chat(client, refused, agent)
    assert response.status_code == 403
    assert refusal(response) == refusal_message("killed", f"kill:{scope}:{target}",
                                                (await redis.get(f"kill:{scope}:{target}")).decode())
    assert (await chat(client, served, agent)).status_code == 200
    assert (await w.apply(SwitchChange("remove", "kill", scope, target))).ok
    assert (await chat(client, refused, agent)).status_code == 200


async def test_global_kill_refuses_everything(proxy: Proxy, client: httpx.AsyncClient, redis: Redis,
                                              redis_url: str) -> None:
    w = writer(redis, redis_url)
    assert (await w.apply(SwitchChange("set", "kill", "global", "*", "incident"))).ok
    for model, agent in (("gpt-4o", "g1"), ("claude", "g2")):
        response = await chat(client, model, agent)
        assert response.status_code == 403 and refusal(response).startswith(refusal_marker("killed") + " kill:global")
    assert (await w.apply(SwitchChange("remove", "kill", "global", "*"))).ok
    assert (await chat(client, "claude", "g1")).status_code == 200


async def test_throttle_lets_n_a_minute_through_then_429_with_retry_after(
        proxy: Proxy, client: httpx.AsyncClient, redis: Redis, redis_url: str) -> None:
    agent = "throttled-agent"
    assert (await writer(redis, redis_url).apply(SwitchChange("set", "throttle", "agent", agent, "too_fast"))).ok
    if datetime.now(UTC).second >= 55:  # keep the calls inside one minute's window
        await asyncio.sleep(61 - datetime.now(UTC).second)
    codes = [(await chat(client, "claude", agent)).status_code for _ in range(THROTTLE_PER_MINUTE)]
    assert codes == [200] * THROTTLE_PER_MINUTE
    response = await chat(client, "claude", agent)
    assert response.status_code == 429
    assert 1 <= int(response.headers["retry-after"]) <= 60
    value = (await redis.get(f"throttle:agent:{agent}")).decode()
    assert refusal(response) == refusal_message("throttled", f"throttle:agent:{agent}", value)
    assert (await chat(client, "claude", "unthrottled-agent")).status_code == 200


async def test_counters_match_the_spend_log_rows(proxy: Proxy, client: httpx.AsyncClient, redis: Redis,
                                                 redis_url: str) -> None:
    """`calls:{day}` counts what LiteLLM writes a row for (served and refused calls alike), and the agent's
    `spent:{agent}:{day}` is the sum of its rows' spend."""
    agent = "counted-agent"
    calls_key = f"calls:{today()}"
    before, counted = await quiet(proxy, redis, calls_key)
    for _ in range(3):
        assert (await chat(client, "gpt-4o", agent)).status_code == 200
    await redis.set(f"kill:agent:{agent}", "manual:tester:stop")
    assert (await chat(client, "gpt-4o", agent)).status_code == 403

    async def settled() -> bool:
        return len(proxy.rows()) - before == 4 and int(await redis.get(calls_key) or 0) - counted == 4

    await until(settled)
    rows = rows_of(proxy, agent)
    assert [r["status"] for r in rows] == ["success"] * 3 + ["failure"]
    spend = sum(Decimal(str(r["spend"])) for r in rows)
    assert spend > 0
    assert Decimal((await redis.get(f"spent:{agent}:{today()}")).decode()) == pytest.approx(spend)


def _column_value(name: str, value: Any, kind: str) -> Any:
    if kind == "jsonb":
        return value if isinstance(value, str) else json.dumps(value)
    if kind.startswith("timestamp") and isinstance(value, str):
        return datetime.fromisoformat(value).astimezone(UTC).replace(tzinfo=None)  # LiteLLM keeps naive UTC
    return value


async def insert_spend_rows(conn: asyncpg.Connection, rows: list[dict[str, Any]]) -> None:
    """The payloads into "LiteLLM_SpendLogs" as LiteLLM's writer stores them (its columns only)."""
    columns = {r["column_name"]: r["data_type"] for r in await conn.fetch(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'LiteLLM_SpendLogs'")}
    for row in rows:
        names = [n for n in row if n in columns and row[n] is not None]
        values = [_column_value(n, row[n], columns[n]) for n in names]
        casts = [f"${i}::jsonb" if columns[n] == "jsonb" else f"${i}" for i, n in enumerate(names, 1)]
        await conn.execute(f'INSERT INTO "LiteLLM_SpendLogs" ({", ".join(json.dumps(n) for n in names)}) '
                           f"VALUES ({', '.join(casts)})", *values)


async def test_refused_calls_rows_carry_the_refusal_marker(proxy: Proxy, client: httpx.AsyncClient, redis: Redis,
                                                           empty_db_url: str) -> None:
    """The rows LiteLLM's own builders make for this proxy's calls, in LiteLLM's own table: a refused call
    is a failure row whose error message holds the marker, so the reader counts it as killed/throttled."""
    killed, throttled = "rows-killed", "rows-throttled"
    assert (await chat(client, "claude", killed)).status_code == 200
    await redis.set(f"kill:agent:{killed}", "manual:tester:rows")
    assert (await chat(client, "claude", killed)).status_code == 403
    await redis.set(f"throttle:agent:{throttled}", "manual:tester:rows")
    if datetime.now(UTC).second >= 55:
        await asyncio.sleep(61 - datetime.now(UTC).second)
    codes = [(await chat(client, "gpt-4o", throttled)).status_code for _ in range(THROTTLE_PER_MINUTE + 1)]
    assert codes[-1] == 429

    async def written() -> bool:
        return len(rows_of(proxy, killed)) == 2 and len(rows_of(proxy, throttled)) == THROTTLE_PER_MINUTE + 1

    await until(written)
    conn = await asyncpg.connect(empty_db_url)
    try:
        await apply_migrations(conn)
        await insert_spend_rows(conn, rows_of(proxy, killed) + rows_of(proxy, throttled))
        got = await conn.fetch(
            """SELECT agent_id, status, model, model_group, custom_llm_provider, spend,
                      metadata->'error_information'->>'error_message' AS message
               FROM "LiteLLM_SpendLogs" ORDER BY "startTime" """)
    finally:
        await conn.close()
    by_agent = {a: [r for r in got if r["agent_id"] == a] for a in (killed, throttled)}
    ok, refused = by_agent[killed]
    assert (ok["status"], ok["message"]) == ("success", None)
    assert (refused["status"], refused["spend"]) == ("failure", 0)
    assert refused["message"] == refusal_message("killed", f"kill:agent:{killed}", "manual:tester:rows")
    assert (refused["model"], refused["model_group"], refused["custom_llm_provider"]) == (
        "anthropic/claude-3-5-sonnet-20240620", "claude", "anthropic")
    last = by_agent[throttled][-1]
    assert last["status"] == "failure" and refusal_marker("throttled") in last["message"]
    assert all(r["status"] == "success" for r in by_agent[throttled][:-1])
    # The same table through `--preset litellm`: per agent, the spend and calls equal SQL over the rows,
    # and the refused calls are not errors (a kill must not raise an error-rate alert on its agent).
    reader = PostgresReader(Settings(database_url=empty_db_url, preset="litellm"))
    try:
        baseline = await reader.baseline(datetime.now(UTC))
    finally:
        await reader.close()
    seen: dict[str, list[Any]] = {}
    for g in baseline.window:
        acc = seen.setdefault(g.agent_id, [Decimal(0), 0, 0])
        acc[0] += g.cost or 0
        acc[1] += g.calls
        acc[2] += g.errors
    for agent, rows in by_agent.items():
        spend = sum((Decimal(str(r["spend"])) for r in rows), Decimal(0))
        assert seen[agent][1:] == [len(rows), 0]
        assert abs(seen[agent][0] - spend) < Decimal("1e-12")  # double precision summed as numeric
    assert sum(acc[1] for acc in seen.values()) == len(got)


async def test_the_proxy_log_has_no_tracebacks(proxy: Proxy, client: httpx.AsyncClient, redis: Redis) -> None:
    """LiteLLM logs a callback's exception and carries on serving, so only its log tells: after a refused
    call (which it logs as one ERROR line) and whatever the other tests ran before, no traceback."""
    await redis.set("kill:agent:log-agent", "manual:tester:log")
    assert (await chat(client, "claude", "log-agent")).status_code == 403

    async def logged() -> bool:
        return "kill:agent:log-agent" in proxy.log_file.read_text(errors="replace")

    await until(logged)
    assert "Traceback" not in proxy.log_file.read_text(errors="replace")
