"""The audit trail on a full disk: a real 64 KiB tmpfs, mounted for each test, filled until the
kernel says ENOSPC. Nothing lost, nothing written twice, no line glued to half of another, and the
failure said in the write's result and at quit."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from costtop.cli import quit_notes
from costtop.config import Settings
from costtop.sources.audit_spool import AuditEntry, AuditSpool
from costtop.sources.feed import LiveFeed
from costtop.sources.records import Outcome, SwitchChange
from costtop.sources.writer import Operator, SwitchWriter, drain
from test_full_disk_unit import entry
from tinydisk import fill, tiny_disk_fixture  # noqa: F401 (the tiny_disk fixture)

OP = Operator("tester", None)


def test_an_append_cut_short_by_a_full_disk_does_not_corrupt_the_next_one(tiny_disk: Path) -> None:
    other = tiny_disk / "other"
    other.write_bytes(b"x" * 8192)  # another file's space, freed later
    spool = AuditSpool(tiny_disk / "spool.jsonl")
    kept: list[AuditEntry] = []
    with pytest.raises(OSError) as failed:
        for n in range(10_000):
            e = entry(n)
            spool.append(e)
            kept.append(e)
    assert failed.value.errno == errno.ENOSPC and spool.error == "No space left on device"
    assert spool.path.read_bytes().endswith(b"\n")  # cut back to the last whole line
    # Space comes back: the next row is a line of its own, and every row is there, none set aside.
    other.unlink()
    after = entry(1)
    spool.append(after)
    assert spool.error is None
    assert spool.pending() == [*kept, after]
    assert not spool.path.with_suffix(".bad").exists()


async def test_a_drain_on_a_full_disk_inserts_first_and_writes_nothing_twice(pg, db_url, tiny_disk: Path) -> None:
    """Setting a torn line aside needs space; a full disk must not stop the rows going in, and the
    spool that could not be rewritten yet is drained again later without a second copy of any row."""
    s = Settings(database_url=db_url)
    spool = AuditSpool(tiny_disk / "spool.jsonl")
    rows = [entry(n) for n in range(3)]
    for e in rows:
        spool.append(e)
    with open(spool.path, "a") as f:
        f.write('{"entry_id": "torn"\n')
    filler = fill(tiny_disk)
    left, why = await drain(s, pg, spool)
    assert await pg.fetchval("SELECT count(*) FROM costtop_audit") == 3  # inserted before any rewrite
    assert left == 3 and why is not None and "No space left on device" in why
    assert spool.pending() == rows  # nothing dropped from the file while it cannot be rewritten
    assert not spool.path.with_suffix(".tmp").exists()
    filler.unlink()
    assert await drain(s, pg, spool) == (0, None)
    assert sorted(str(r) for r in await pg.fetchval("SELECT array_agg(entry_id) FROM costtop_audit")) == sorted(
        e.entry_id for e in rows)
    assert spool.path.with_suffix(".bad").read_text() == '{"entry_id": "torn"\n'  # once
    assert not spool.path.exists()


async def test_a_spool_that_cannot_keep_the_row_is_said_in_the_result_and_at_quit(
        db_url, redis, redis_url, tiny_disk: Path) -> None:
    s = Settings(redis_url=redis_url, database_url=db_url, audit_spool=str(tiny_disk / "spool.jsonl"))
    feed = LiveFeed(s)
    filler = fill(tiny_disk)
    assert feed.postgres.pool is None  # not connected: Postgres takes no audit row
    try:
        result = await feed.write(SwitchChange("set", "kill", "agent", "runner", "loop"))
        assert result.outcome is Outcome.DONE and await redis.exists("kill:agent:runner") == 1
        assert (result.audit_written, result.audit_pending) == (False, False)
        assert result.spool_error == "No space left on device"
        assert "could not keep it: No space left on device" in result.message
        assert feed.audit_pending() == 0
        assert quit_notes(feed) == [
            f"costtop: 1 audit row kept nowhere: Postgres did not take it and the audit spool {feed.spool.path} "
            "could not be written (the dialog said which).",
            f"costtop: the audit spool {feed.spool.path} cannot be written (No space left on device): free space "
            "there, or the next Postgres outage loses audit rows."]
        # Space again: the spool works, and the lost row is still said at quit.
        filler.unlink()
        assert (await feed.write(SwitchChange("remove", "kill", "agent", "runner"))).audit_pending
        assert quit_notes(feed)[-1].startswith("costtop: 1 audit row kept nowhere")
    finally:
        await feed.close()


async def test_a_full_disk_is_said_even_when_postgres_takes_the_row(pg, db_url, redis, redis_url,
                                                                     tiny_disk: Path) -> None:
    """The row is safe, but the next outage would lose one: the operator hears it now."""
    s = Settings(redis_url=redis_url, database_url=db_url)
    spool = AuditSpool(tiny_disk / "spool.jsonl")
    fill(tiny_disk)
    result = await SwitchWriter(s, redis, pg, OP, spool).apply(SwitchChange("set", "kill", "global", "*", "stop"))
    assert result.ok and result.audit_written and result.spool_error == "No space left on device"
    assert "cannot be written: No space left on device" in result.message
    assert await pg.fetchval("SELECT count(*) FROM costtop_audit") == 1
