"""The Python gateway's fallback file: rows Postgres refuses wait in a JSONL file and are drained back
exactly once, against a real Postgres that is stopped and started, and through simulated crashes on
either side of the drain's commit."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import asyncpg
import pytest
from redis.asyncio import Redis

from costtop import gateway as gateway_module
from costtop.demo.servers import ServerPair
from costtop.gateway import Call, Gateway, append_lines
from costtop.sources.fallback_file import FallbackReader, encode_row


def calls(agent: str, n: int, cost: str, when: datetime) -> list[Call]:
    return [Call(agent, "llm", 100 + i, provider="p", model="m", cost_usd=Decimal(cost), span_id=f"{agent}-{i}",
                 created_at=when + timedelta(milliseconds=i)) for i in range(n)]


async def table_rows(pool: asyncpg.Pool) -> list[tuple[str, int, Decimal]]:
    return [tuple(r) for r in await pool.fetch(
        "SELECT agent_id, latency_ms, cost_usd FROM tool_calls ORDER BY agent_id, latency_ms")]


async def test_postgres_down_rows_go_to_the_file_and_come_back_once(killable: ServerPair, tmp_path: Path) -> None:
    fallback = tmp_path / "fallback.jsonl"
    redis = Redis.from_url(killable.redis.url)
    await redis.flushdb()
    pool = await asyncpg.create_pool(killable.postgres.url, min_size=0, max_size=2)
    try:
        gw = Gateway(redis, pool, fallback=fallback, timeout=1.0, drain_every=0)
        now = datetime.now(UTC)
        await gw.record(calls("a", 2, "0.10", now))
        await asyncio.to_thread(killable.postgres.stop)
        await gw.record(calls("b", 3, "0.25", now))  # Postgres is down: no exception, rows on disk
        await gw.record(calls("c", 1, "1.00", now))
        lines = [json.loads(line) for line in fallback.read_bytes().splitlines()]
        assert [(r["agent_id"], r["cost_usd"]) for r in lines] == [("b", "0.25")] * 3 + [("c", "1.00")]
        assert FallbackReader(str(fallback)).read().lines == 4
        day = now.strftime("%Y-%m-%d")
        # The live counters count what the gateway saw, inserted or not.
        assert int(await redis.get(f"calls:{day}")) == 6
        assert float(await redis.get(f"spent:b:{day}")) == pytest.approx(0.75)
        with pytest.raises(OSError):  # down still: the drain fails and keeps every line
            await gw.drain_fallback()
        assert FallbackReader(str(fallback) + "*").read().lines == 4
        await asyncio.to_thread(killable.postgres.start)
        await gw.record(calls("d", 1, "2.00", now))  # a good insert drains the backlog
        rows = await table_rows(pool)
        assert [r[0] for r in rows] == ["a", "a", "b", "b", "b", "c", "d"]
        assert sum(r[2] for r in rows) == Decimal("3.95")
        assert list(tmp_path.iterdir()) == []
        assert await gw.drain_fallback() == 0
        assert len(await table_rows(pool)) == 7
    finally:
        await pool.close()
        await redis.aclose()


async def test_a_crash_after_the_commit_does_not_insert_twice(pg: asyncpg.Pool, redis: Redis, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    fallback = tmp_path / "fallback.jsonl"
    now = datetime.now(UTC)
    append_lines(fallback, [encode_row(gateway_module.row_of(c, now)) for c in calls("a", 3, "0.5", now)])
    gw = Gateway(redis, pg, fallback=fallback)

    def crash(*_: object) -> None:
        raise RuntimeError("killed between the commit and the delete")

    monkeypatch.setattr(gateway_module, "finish_batch", crash)
    with pytest.raises(RuntimeError):
        await gw.drain_fallback()
    assert len(await table_rows(pg)) == 3
    assert len(list(tmp_path.glob("fallback.jsonl.draining-*"))) == 1  # still there, its marker committed
    monkeypatch.undo()
    assert await gw.drain_fallback() == 0  # the marker says it is in: the file is only deleted
    assert len(await table_rows(pg)) == 3
    assert list(tmp_path.iterdir()) == []


async def test_a_failure_before_the_commit_keeps_every_row_for_the_next_drain(
        pg: asyncpg.Pool, redis: Redis, tmp_path: Path) -> None:
    fallback = tmp_path / "fallback.jsonl"
    now = datetime.now(UTC)
    append_lines(fallback, [encode_row(gateway_module.row_of(c, now))
                            for c in calls("a", 2, "0.5", now) + calls("poison", 1, "1", now)])
    await pg.execute("""CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN IF NEW.agent_id = 'poison' THEN RAISE EXCEPTION 'refused'; END IF; RETURN NEW; END $$""")
    await pg.execute("CREATE TRIGGER refuse BEFORE INSERT ON tool_calls FOR EACH ROW EXECUTE FUNCTION refuse()")
    gw = Gateway(redis, pg, fallback=fallback)
    with pytest.raises(asyncpg.PostgresError):
        await gw.drain_fallback()
    assert await table_rows(pg) == []  # all or nothing: the marker rolled back with the rows
    assert FallbackReader(str(fallback) + "*").read().lines == 3
    await gw.record(calls("late", 1, "0.1", now))  # appended to a new file while a batch waits
    await pg.execute("DROP TRIGGER refuse ON tool_calls")
    assert await gw.drain_fallback() == 3
    assert sorted(r[0] for r in await table_rows(pg)) == ["a", "a", "late", "poison"]
    assert list(tmp_path.iterdir()) == []


async def test_rows_whose_commit_is_unknown_are_not_inserted_twice_and_junk_is_kept_aside(
        pg: asyncpg.Pool, redis: Redis, tmp_path: Path) -> None:
    fallback = tmp_path / "fallback.jsonl"
    now = datetime.now(UTC)
    gw = Gateway(redis, pg, fallback=fallback)
    committed = calls("a", 2, "0.5", now)
    await gw.record(committed)  # in the table: then the reply to its COMMIT was "lost"
    lines = [encode_row({**gateway_module.row_of(c, now), "commit_unknown": True}) for c in committed]
    lines += [encode_row({**gateway_module.row_of(c, now), "commit_unknown": True}) for c in calls("b", 1, "1", now)]
    lines += [b"not json\n", b"\xff\xfe binary\n", b'{"agent_id": "x"}\n', b'{"created_at": "2026-01-01T00:00:00Z"']
    append_lines(fallback, lines)
    assert await gw.drain_fallback() == 3
    assert sorted(r[0] for r in await table_rows(pg)) == ["a", "a", "b"]
    rejected = (tmp_path / "fallback.jsonl.rejected").read_bytes().splitlines()
    assert len(rejected) == 4 and rejected[0] == b"not json"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fallback.jsonl.rejected"]


async def test_without_a_fallback_file_a_refused_insert_still_raises(redis: Redis) -> None:
    pool = await asyncpg.create_pool("postgresql://postgres@127.0.0.1:1/postgres", min_size=0)
    try:
        with pytest.raises(OSError):
            await Gateway(redis, pool, timeout=0.5).record(calls("a", 1, "1", datetime.now(UTC)))
    finally:
        await pool.close()
