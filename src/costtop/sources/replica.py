"""A hot standby as costtop's database: how far behind its primary it is, and why it cancelled a read.

`--database-url` may name a streaming replica. costtop reads there; what it writes (audit rows, and the
rollup under `costtop rollup`) goes to the primary, `audit_database_url` (writer.py, rollup/job.py).

The lag, as the standby itself can tell it (docs/reliability.md says the same):

- no WAL receiver running: the standby is not streaming from its primary, so how far behind it is
  cannot be known: **unknown**, never a number;
- everything the standby received is replayed (receive LSN = replay LSN): **0 s**. Not
  `now() - pg_last_xact_replay_timestamp()`, which on a primary with no commits for an hour says an
  hour while the standby is exactly up to date. WAL still on its way over the network is not seen:
  the receiver's own timeout (`wal_receiver_timeout`, 60 s by default) ends a link that stalled, and
  the lag is then unknown;
- a replay backlog: **at most** the smaller of two bounds. The age of the last transaction replayed,
  `now() - pg_last_xact_replay_timestamp()`: the transactions still waiting committed after it. And,
  when replay has passed what had been received at the previous check, the time since that check:
  an idle primary's periodic WAL (a checkpoint, a snapshot record) caught between its receipt and its
  replay would otherwise read as the hour since the last commit for one check. Upper bounds (a
  backlog with no commit in it makes the first larger than the truth), never an under-estimate; with
  nothing replayed yet, unknown.

Every function here is granted to PUBLIC, and the receiver is found by its pid, the one column of
`pg_stat_wal_receiver` an unprivileged role sees: the least-privilege reader needs nothing more. Such a
role cannot tell a receiver that is still connecting from one that streams (its `status` is hidden):
both count as streaming. A role with `pg_monitor` (or `pg_read_all_stats`) sees the status, and only
`streaming` counts.

A query on a standby is cancelled when replaying the primary's WAL would remove rows its snapshot may
still see, once `max_standby_streaming_delay` has passed (SQLSTATE 40001, "conflict with recovery");
a session idle inside such a snapshot is disconnected instead. `conflict_line` says that in one
line, so the retry that follows (the session starts its baseline over) is explained on the badge.
"""

from __future__ import annotations

import asyncpg

from costtop.sources.records import ReplicaLag
from costtop.text import clean

# $1: the receive LSN of the previous check (text), or NULL.
LAG_SQL = (
    "SELECT pg_is_in_recovery() AS standby, pg_last_wal_receive_lsn()::text AS received, "
    "pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() AS replayed_all, "
    "coalesce(pg_last_wal_replay_lsn() >= $1::text::pg_lsn, false) AS replayed_before, "
    "extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8 AS replay_age, "
    # The receiver's status is shown to roles with pg_read_all_stats only; to others, its pid alone.
    "EXISTS (SELECT 1 FROM pg_stat_wal_receiver WHERE pid IS NOT NULL AND coalesce(status, 'streaming') = "
    "'streaming') AS receiving"
)
# Queries the standby cancelled for a conflict with recovery, in this database, since its stats reset.
CONFLICTS_SQL = (
    "SELECT coalesce(confl_tablespace + confl_lock + confl_snapshot + confl_bufferpin + confl_deadlock, 0) "
    "FROM pg_stat_database_conflicts WHERE datname = current_database()"
)
DELAY_SQL = "SELECT current_setting('max_standby_streaming_delay'), current_setting('hot_standby_feedback')"


def lag_from(row: asyncpg.Record | dict[str, object], since: float | None = None) -> ReplicaLag | None:
    """The lag from LAG_SQL's row; None on a primary (not a replica: nothing to show). `since`: the
    seconds since the check whose receive LSN was passed as $1."""
    if not row["standby"]:
        return None
    if not row["receiving"]:
        return ReplicaLag(None, why="not streaming from the primary")
    if row["replayed_all"]:
        return ReplicaLag(0.0)
    age = row["replay_age"]
    bounds = [max(0.0, float(age))] if age is not None else []  # type: ignore[arg-type]
    if row["replayed_before"] and since is not None:
        bounds.append(max(0.0, since))
    if not bounds:
        return ReplicaLag(None, why="nothing replayed yet")
    return ReplicaLag(min(bounds), at_most=True)


def recovery_conflict(exc: BaseException) -> bool:
    """A query the standby cancelled (or a session it ended) to go on replaying its primary's WAL."""
    return (isinstance(exc, asyncpg.PostgresError) and exc.sqlstate == "40001"
            and "conflict with recovery" in str(exc))


def limits_from(row: asyncpg.Record) -> str:
    """DELAY_SQL's row: the settings that decide when the standby cancels a read, as a parenthesis for
    `conflict_line`."""
    return f" (max_standby_streaming_delay = {clean(row[0], 20)}, hot_standby_feedback = {clean(row[1], 10)})"


def conflict_line(what: str, limits: str) -> str:
    """One line: the standby cancelled `what` for a conflict with recovery, under which settings, and
    that costtop reads again (the session starts its baseline over)."""
    return f"the standby cancelled {what} for a conflict with recovery{limits}: reading again"
