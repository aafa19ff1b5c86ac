"""Audit rows through a Postgres outage: kept in the local spool, written once when it is back."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg

from costtop.config import Settings
from costtop.sources.audit_spool import AuditEntry, AuditSpool
from costtop.sources.records import SwitchChange
from costtop.sources.writer import Operator, SwitchWriter, drain, write_entries

OP = Operator("tester", None)


async def closed_pool(db_url: str) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(db_url, min_size=1, max_size=1)
    await pool.close()
    return pool


async def test_rows_kept_in_an_outage_are_written_exactly_once_when_postgres_is_back(
        pg, db_url, redis, redis_url, tmp_path) -> None:
    s = Settings(redis_url=redis_url, database_url=db_url)
    spool = AuditSpool(tmp_path / "spool.jsonl")
    down = SwitchWriter(s, redis, await closed_pool(db_url), OP, spool)
    first = await down.apply(SwitchChange("set", "kill", "agent", "runner", "loop", 60))
    second = await down.apply(SwitchChange("remove", "kill", "agent", "runner"))
    assert first.ok and first.audit_pending and second.ok and second.audit_pending
    assert await pg.fetchval("SELECT count(*) FROM costtop_audit") == 0
    kept = spool.pending()
    assert [e.action for e in kept] == ["set:kill", "remove:kill"]

    # Back: one drain writes both, with the time of the change, not of the drain.
    assert await drain(s, pg, spool) == (0, None)
    rows = await pg.fetch("SELECT * FROM costtop_audit ORDER BY at")
    assert [(r["action"], r["result"], str(r["entry_id"])) for r in rows] == [
        ("set:kill", "set", kept[0].entry_id), ("remove:kill", "removed", kept[1].entry_id)]
    assert [r["at"] for r in rows] == [datetime.fromisoformat(e.at) for e in kept]
    assert not spool.path.exists()
    # Draining again, or a crash after the INSERT but before the spool was rewritten, adds nothing.
    assert await drain(s, pg, spool) == (0, None)
    for e in kept:
        spool.append(e)
    assert await write_entries(s, pg, kept) is None
    assert await drain(s, pg, spool) == (0, None)
    assert await pg.fetchval("SELECT count(*) FROM costtop_audit") == 2


async def test_a_drain_while_still_down_keeps_everything(db_url, tmp_path) -> None:
    s = Settings(database_url=db_url)
    spool = AuditSpool(tmp_path / "spool.jsonl")
    entry = AuditEntry.new(datetime.now(UTC), operator="o", ssh_client=None, action="set:kill", scope="global",
                           target="*", key="kill:global", reason=None, ttl_seconds=None, result="set", detail=None)
    spool.append(entry)
    left, why = await drain(s, await closed_pool(db_url), spool)
    assert left == 1 and why is not None and "\n" not in why
    assert await drain(s, None, spool) == (1, "Postgres is not connected")
    assert spool.pending() == [entry]


async def test_a_torn_line_is_set_aside_not_lost_and_not_retried(pg, db_url, tmp_path) -> None:
    s = Settings(database_url=db_url)
    spool = AuditSpool(tmp_path / "spool.jsonl")
    good = AuditEntry.new(datetime.now(UTC), operator="o", ssh_client=None, action="set:kill", scope="global",
                          target="*", key="kill:global", reason=None, ttl_seconds=None, result="set", detail=None)
    spool.append(good)
    with open(spool.path, "a") as f:
        f.write('{"entry_id": "torn-by-a-cr')  # a crash in the middle of a line
    assert await drain(s, pg, spool) == (0, None)
    assert await pg.fetchval("SELECT count(*) FROM costtop_audit") == 1
    assert spool.path.with_suffix(".bad").read_text().startswith('{"entry_id": "torn')


async def test_a_table_that_refuses_the_rows_says_why_and_loses_nothing(pg, db_url, tmp_path) -> None:
    """An audit table from before `entry_id` (costtop upgraded, `db init` not run): kept, with the reason."""
    await pg.execute("ALTER TABLE costtop_audit DROP COLUMN entry_id")
    s = Settings(database_url=db_url)
    spool = AuditSpool(tmp_path / "spool.jsonl")
    spool.append(AuditEntry.new(datetime.now(UTC), operator="o", ssh_client=None, action="set:kill", scope="global",
                                target="*", key="kill:global", reason=None, ttl_seconds=None, result="set",
                                detail=None))
    why = "the audit table has no entry_id column: run `costtop db init` as its owner"
    assert await drain(s, pg, spool) == (1, why)
    with open(spool.path, "a") as f:  # valid JSON, but not an id the INSERT could use
        f.write('{"entry_id": "nope", "at": "2026-11-22T00:00:00+00:00", "operator": "o", "ssh_client": null, '
                '"action": "a", "scope": "s", "target": "t", "key": "k", "reason": null, "ttl_seconds": null, '
                '"result": "r", "detail": null}\n')
    assert len(spool.pending()) == 1 and "nope" in spool.path.with_suffix(".bad").read_text()

