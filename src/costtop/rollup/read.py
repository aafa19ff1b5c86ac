"""Reading a range of time layer by layer: the rollup's buckets where they are complete, the raw rows
elsewhere (plan.py), summed per bucket of the resolution asked for. The same figures whichever way
the range is cut: the buckets hold exactly the sums of ROW_SUMS over their rows (sums.py).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import asyncpg

from costtop.config import TableNames
from costtop.rollup.plan import GRAINS, RAW, Coverage, Segment, segments
from costtop.rollup.schema import buckets_table, source_name, sources_table
from costtop.rollup.sums import FIGURES, GROUP_SUMS, KEYS, NULL_BITS, ROW_SUMS

Fetch = Callable[..., Awaitable[list[asyncpg.Record]]]
# A raw GROUP BY over hours of rows, planned as a hash aggregate. Postgres cannot estimate how few groups
# date_trunc() makes of a day's rows and expects millions, so it would sort every row instead: at 10
# million rows, three sorts spilled 7 GiB to disk (issue 19); with sorting off it walked the (agent_id,
# created_at) index into an incremental sort, 100 s of random reads. Hashing keeps only the groups in
# memory: 2 MB for a day's hours at 10 million rows, 9 MB for the last hour's 33,000 minute groups, which
# the default 4 MB work_mem would spill (165 MB). For the transaction, then back to the defaults.
# One round trip each (simple protocol: several statements in one string).
HASH_AGGREGATE = "SET LOCAL enable_sort = off; SET LOCAL enable_incremental_sort = off; SET LOCAL work_mem = '64MB'"
AFTER_AGGREGATE = ("SET LOCAL enable_sort TO DEFAULT; SET LOCAL enable_incremental_sort TO DEFAULT; "
                   "SET LOCAL work_mem TO DEFAULT")
# What reading the rollup's own tables may raise when it is not there or not granted: read raw instead.
MISSING = (asyncpg.UndefinedTableError, asyncpg.InvalidSchemaNameError, asyncpg.InsufficientPrivilegeError)


@dataclass(frozen=True, slots=True)
class Source:
    """A rollup of the table being read, as its `sources` row says in the reader's snapshot."""

    id: int
    kept_by: str  # "gateway" or "job"
    covered_from: datetime
    complete_to: datetime | None  # None: kept in the gateway's transactions, complete up to any bound
    minutes_from: datetime | None
    hours_to: datetime | None = None  # a gateway's minutes summed into hours and days up to here

    def coverage(self, bound: datetime) -> Coverage:
        return Coverage(self.covered_from, self.complete_to if self.complete_to is not None else bound,
                        self.minutes_from, self.hours_to)


def _figure(name: str) -> property:
    """A figure by its name in sums.FIGURES, whose order the list follows."""
    index = FIGURES.index(name)
    return property(lambda self: self.figures[index])


@dataclass(slots=True)
class Group:
    """The figures of one (agent, provider, model) in one bucket of the resolution read, in the order of
    sums.FIGURES: a list, so that summing groups is one loop (a start-up sums tens of thousands)."""

    agent: str | None
    provider: str | None
    model: str | None
    bucket: datetime
    figures: list  # Decimal cost, then the counts and token sums as int

    cost = _figure("cost")
    priced = _figure("priced")
    calls = _figure("calls")
    errors = _figure("errors")
    unusable = _figure("unusable")
    negative = _figure("negative")
    tin = _figure("tin")
    tout = _figure("tout")
    cached = _figure("cached")
    flat_tin = _figure("flat_tin")
    flat_tout = _figure("flat_tout")
    flat_cached = _figure("flat_cached")

    @property
    def known_cost(self) -> Decimal | None:
        """The spend, None when no call in the group was priced (flat-rate only)."""
        return self.cost if self.priced else None

    def add(self, other: Group) -> None:
        mine = self.figures
        for i, value in enumerate(other.figures):
            mine[i] += value

    def copy(self) -> Group:
        return Group(self.agent, self.provider, self.model, self.bucket, list(self.figures))


async def find_source(fetch: Fetch, tables: TableNames) -> Source | None:
    """This table's rollup, or None when it has no row. Raises what `fetch` raises (MISSING: the
    schema is not there or not granted)."""
    rows = await fetch(f"SELECT id, kept_by, covered_from, complete_to, minutes_from, hours_to "
                       f"FROM {sources_table(tables)} WHERE name = $1", source_name(tables))
    if not rows:
        return None
    r = rows[0]
    return Source(r["id"], r["kept_by"], r["covered_from"], r["complete_to"], r["minutes_from"], r["hours_to"])


def missing_reason(exc: BaseException, tables: TableNames) -> str:
    """Why a rollup could not be used, in a few words for the header."""
    if isinstance(exc, asyncpg.InsufficientPrivilegeError):
        return f"the rollup schema {tables.rollup_schema} is not readable by this role"
    if isinstance(exc, MISSING):
        return "no rollup"
    return f"the rollup could not be read ({type(exc).__name__})"


def as_group(r: asyncpg.Record) -> Group:
    """A row of bucket_sql or raw_sql: the keys, the bucket (already cut to the resolution), the figures."""
    values = tuple(r)
    return Group(values[0], values[1], values[2], values[3], [values[4], *map(int, values[5:])])


def bucket_sql(tables: TableNames, resolution: str, by: tuple[str, ...] = KEYS, grain: str | None = None) -> str:
    """Buckets of one grain in [$3, $4), summed per the keys `by` (the others NULL) and bucket of
    `resolution` (one of plan.GRAINS). Buckets of the resolution's own grain with every key are read as
    they are: each is already one group."""
    keys = ", ".join(f"CASE WHEN nulls & {NULL_BITS[k]} = 0 THEN {k} END AS {k}" if k in by else f"NULL::text AS {k}"
                     for k in KEYS)
    assert resolution in GRAINS
    where = (f"FROM {buckets_table(tables)} WHERE source = $1 AND grain = $2 AND bucket >= $3 AND bucket < $4")
    if grain == resolution and tuple(by) == KEYS:
        return f"SELECT {keys}, bucket, {', '.join(FIGURES)} {where}"
    # Grouped by the keys as read back (NULL and '' apart), the ones not kept being constants.
    return (f"SELECT {keys}, date_trunc('{resolution}', bucket, 'UTC') AS bucket, {GROUP_SUMS} {where} "
            "GROUP BY 1, 2, 3, 4")


def raw_sql(rows_from: str, since: Callable[[str, str], str], resolution: str, by: tuple[str, ...] = KEYS) -> str:
    """The raw rows in [$1, $2), summed per the keys `by` (the others NULL) and bucket of `resolution`:
    one hash aggregate (HASH_AGGREGATE)."""
    keys = ", ".join(k if k in by else f"NULL::text AS {k}" for k in KEYS)
    assert resolution in GRAINS
    return (f"SELECT {keys}, date_trunc('{resolution}', created_at, 'UTC') AS bucket, {ROW_SUMS} "
            f"FROM {rows_between(rows_from, since, '$1', '$2')} GROUP BY 1, 2, 3, 4")


def rows_between(rows_from: str, since: Callable[[str, str], str], first: str, end: str) -> str:
    """The rows with created_at in [first, end) (placeholders), as the relation `rows` that ROW_SUMS reads."""
    return f"(SELECT {rows_from} WHERE {since(first, '>=')} AND {since(end, '<')}) AS rows"


def merge(groups: Iterable[Group]) -> list[Group]:
    """Groups with the same key and bucket (one bucket read partly raw, partly from minutes) summed."""
    out: dict[tuple[object, ...], Group] = {}
    for g in groups:
        key = (g.agent, g.provider, g.model, g.bucket)
        found = out.get(key)
        if found is None:
            out[key] = g
        else:
            found.add(g)  # the first group of a key is the read's own: summing into it is safe
    return list(out.values())


@dataclass(frozen=True, slots=True)
class LayeredRead:
    """What one layered read did: its groups, and how many of its segments were raw (for the header)."""

    groups: list[Group]
    plan: list[Segment]

    @property
    def raw(self) -> list[Segment]:
        return [s for s in self.plan if s.grain == RAW]


async def read_groups(fetch: Fetch, tables: TableNames, source: Source | None, rows_from: str,
                      since: Callable[[str, str], str], start: datetime, end: datetime, resolution: str,
                      by: tuple[str, ...] = KEYS) -> LayeredRead:
    """The figures of [start, end) per (agent, provider, model) and bucket of `resolution` ("day", "hour"
    or "minute"), from the coarsest buckets the rollup holds complete and the raw rows around them.
    `fetch` runs the GROUP BYs (the caller plans them as hash aggregates: HASH_AGGREGATE);
    `rows_from` is `row_sql(...) FROM table`; `since(placeholder, op)` compares created_at on its index;
    `by` narrows the keys (a group per agent alone, say: the others are NULL)."""
    plan = segments(start, end, source.coverage(end) if source is not None else None, resolution)
    found: list[Group] = []
    for seg in plan:
        if seg.grain == RAW:
            rows = await fetch(raw_sql(rows_from, since, resolution, by), seg.start, seg.end)
        else:
            assert source is not None
            rows = await fetch(bucket_sql(tables, resolution, by, seg.grain), source.id, seg.grain[0], seg.start,
                               seg.end)
        found.extend(as_group(r) for r in rows)
    # Each piece's groups are distinct; only a bucket cut between two pieces needs summing.
    return LayeredRead(merge(found) if len(plan) > 1 else found, plan)


def raw_span(plan: Iterable[Segment]) -> float:
    """Seconds of a read's range that came from the raw rows."""
    return sum((s.end - s.start).total_seconds() for s in plan if s.grain == RAW)


def rollup_note(source: Source | None, why: str | None, raw: list[Segment], behind_after: float) -> str | None:
    """The header's line about the start-up read, or None when the rollup answered it: no rollup (its
    day was scanned row by row), or a rollup that left more than `behind_after` seconds to the rows."""
    scanned = raw_span(raw)
    if source is None:
        return (f"{why or 'no rollup'}: start-up read {scanned / 3600:.1f} h of rows one by one "
                "(`costtop rollup`: instant)")
    if scanned > behind_after:
        if source.complete_to is None:  # a gateway's: complete from when it began
            return (f"rollup (gateway) since {source.covered_from:%Y-%m-%d %H:%M} UTC: start-up read "
                    f"{scanned / 60:.0f} min of older rows")
        return (f"rollup ({source.kept_by}) complete to {source.complete_to:%H:%M} UTC: start-up read "
                f"{scanned / 60:.0f} min of rows")
    return None


__all__ = ["KEYS", "Group", "LayeredRead", "Source", "find_source", "read_groups", "rollup_note"]
