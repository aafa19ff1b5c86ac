"""Issue 21, point 2, without servers: a standby's lag as defined in sources/replica.py, the silence
alert allowing for it, and the Postgres badge showing it."""

from __future__ import annotations

import pytest

from costtop.cli import main
from costtop.config import load_settings
from costtop.engine.engine import Engine
from costtop.engine.snapshot import SourceView
from costtop.sources.records import GatewayCounters, ReadQuality, ReplicaLag, SourceStatus
from costtop.sources.replica import lag_from
from costtop.ui.widgets.summary import badge
from test_liveness import alert, at, call, engine, flowing, state


def row(standby: bool = True, replayed_all: bool = True, replay_age: float | None = 3600.0,
        receiving: bool = True, replayed_before: bool = False) -> dict[str, object]:
    return {"standby": standby, "replayed_all": replayed_all, "replay_age": replay_age, "receiving": receiving,
            "replayed_before": replayed_before}


def test_the_lag_is_honest_about_what_a_standby_can_tell() -> None:
    assert lag_from(row(standby=False)) is None  # a primary: no replica to show
    # Everything received is replayed: up to date, however long ago the primary last committed.
    assert lag_from(row(replay_age=3600.0)) == ReplicaLag(0.0)
    # A replay backlog: at most the age of the last transaction replayed.
    assert lag_from(row(replayed_all=False, replay_age=12.5)) == ReplicaLag(12.5, at_most=True)
    assert lag_from(row(replayed_all=False, replay_age=None)) == ReplicaLag(None, why="nothing replayed yet")
    # An idle primary's periodic WAL caught between receipt and replay: replay has passed what the check
    # a second ago saw received, so the data is at most that second old, not the hour since the last commit.
    assert lag_from(row(replayed_all=False, replay_age=3600.0, replayed_before=True), since=1.2) == (
        ReplicaLag(1.2, at_most=True))
    assert lag_from(row(replayed_all=False, replay_age=3600.0), since=1.2) == ReplicaLag(3600.0, at_most=True)
    assert lag_from(row(replayed_all=False, replay_age=None, replayed_before=True), since=1.2) == (
        ReplicaLag(1.2, at_most=True))
    # Not streaming: unknown, never the last figure or zero.
    assert lag_from(row(receiving=False)) == ReplicaLag(None, why="not streaming from the primary")


def replica(e: Engine, lag: ReplicaLag | None) -> None:
    e.note_read_quality(ReadQuality(replica=lag))


def test_rows_late_by_the_replicas_lag_are_not_silence() -> None:
    e = engine(silence_seconds=60)
    flowing(e)  # the newest row at 0
    replica(e, ReplicaLag(30.0, at_most=True))
    snap = e.snapshot(at(75), state())  # 75 s: past the limit, within it plus the lag
    assert not snap.header.rows_silent and alert(snap, "silence:gateway") is None
    snap = e.snapshot(at(95), state())  # past both
    assert alert(snap, "silence:gateway") == (
        "WARNING rows stopped: no row for 1m (the replica's lag of 30s allowed for) after 30 in the 1m before: "
        "the gateway stopped writing the table, or every agent stopped at once")
    replica(e, ReplicaLag(None, why="not streaming from the primary"))  # rows cannot arrive: nothing judged
    snap = e.snapshot(at(200), state())
    assert not snap.header.rows_silent and alert(snap, "silence:gateway") is None
    replica(e, None)  # a primary again: judged as ever
    assert e.snapshot(at(201), state()).header.rows_silent


def test_the_counter_rising_is_held_against_rows_the_lag_has_not_brought_yet() -> None:
    e = engine(silence_seconds=60)
    e.ingest([call("a", at(-100))])  # one old row: no traffic flowing by the rows alone
    replica(e, ReplicaLag(100.0, at_most=True))
    for second, calls in ((0, 10), (10, 25), (20, 40)):
        e.note_counters(GatewayCounters("2026-11-22", {}, calls))
        e.snapshot(at(second), state())
    # Without the lag these reads are old enough (test_liveness); with 100 s of it, their rows may be on their way.
    assert alert(e.snapshot(at(45), state()), "silence:gateway") is None
    replica(e, ReplicaLag(0.0))
    assert alert(e.snapshot(at(46), state()), "silence:gateway") == (
        "CRITICAL gateway not writing rows: calls:2026-11-22 rose by 15 but no row for 2m: the gateway "
        "stopped writing the table, or calls bypass it")


def test_the_postgres_badge_shows_the_lag() -> None:
    e = engine()
    sources = [SourceStatus("Redis", True, at(0).timestamp()), SourceStatus("Postgres", True, at(0).timestamp())]

    def shown(lag: ReplicaLag | None) -> list[str]:
        replica(e, lag)
        return [badge(v).plain for v in e.snapshot(at(1), state(), sources).sources]

    assert shown(None) == ["● Redis 1s", "● Postgres 1s"]
    assert shown(ReplicaLag(0.0)) == ["● Redis 1s", "● Postgres 1s replica 0s"]
    assert shown(ReplicaLag(12.0, at_most=True)) == ["● Redis 1s", "● Postgres 1s replica ≤12s"]
    assert shown(ReplicaLag(None, why="not streaming from the primary"))[1] == (
        "● Postgres 1s replica lag ? (not streaming from the primary)")
    assert shown(ReplicaLag(0.0, spooled=True))[1] == (
        "● Postgres 1s replica 0s · audit rows to the local spool: set audit_database_url")
    # A stale source says so, lag or not.
    assert badge(SourceView("Postgres", False, 30.0, "x", ReplicaLag(0.0))).plain.startswith("✖ Postgres STALE")


def test_the_primarys_url_is_a_setting_of_its_own(capsys: pytest.CaptureFixture[str]) -> None:
    primary = "postgresql://costtop@primary:5432/gateway"
    assert load_settings({}, env={"COSTTOP_AUDIT_DATABASE_URL": primary}).audit_database_url == primary
    assert load_settings({}, env={}).audit_database_url is None
    assert main(["snapshot", "--redis-url", "redis://127.0.0.1:1/0", "--database-url", "postgresql://127.0.0.1:1/x",
                 "--audit-database-url", "mysql://primary/x"]) == 2
    assert capsys.readouterr().err == (
        "costtop: audit_database_url: database URL must start with postgresql:// (got mysql scheme)\n")
