"""The rollup's own schema (`tables.rollup_schema`, default `costtop_rollup`): which tables it rolls up, how
far, the buckets, and closed days' peaks and costliest traces (days.py). Created by `costtop db init`
and by `costtop rollup`; nothing else is written.

`sources` has one row per rolled-up table and reading rule: `kept_by` says who adds to its buckets (the
gateway in its own insert's transaction, or the job), `covered_from` where that began, `complete_to`
how far the job has gone (NULL for the gateway: every committed row is in its minute), `hours_to` how
far a gateway's minutes have been summed into hours and days (the job does that; rows the gateway
writes later for an hour before it go to all three at once), `minutes_from` how far back minute
buckets are kept.
"""

from __future__ import annotations

import hashlib
import json

from costtop.config import TableNames
from costtop.sources.schema import qident


def rollup_ddl(tables: TableNames) -> list[str]:
    s = qident(tables.rollup_schema)
    return [
        f"CREATE SCHEMA IF NOT EXISTS {s}",
        f"""CREATE TABLE IF NOT EXISTS {s}.sources (
            id serial PRIMARY KEY,
            name text NOT NULL UNIQUE,
            kept_by text NOT NULL CHECK (kept_by IN ('gateway', 'job')),
            covered_from timestamptz NOT NULL,
            complete_to timestamptz,
            minutes_from timestamptz,
            hours_to timestamptz,
            checked_at timestamptz,
            updated_at timestamptz NOT NULL DEFAULT now()
        )""",
        f"""CREATE TABLE IF NOT EXISTS {s}.buckets (
            source integer NOT NULL,
            grain text NOT NULL CHECK (grain IN ('m', 'h', 'd')),
            bucket timestamptz NOT NULL,
            agent text NOT NULL,
            provider text NOT NULL,
            model text NOT NULL,
            nulls smallint NOT NULL,
            cost numeric NOT NULL,
            priced bigint NOT NULL,
            calls bigint NOT NULL,
            errors bigint NOT NULL,
            unusable bigint NOT NULL,
            negative bigint NOT NULL,
            tin numeric NOT NULL,
            tout numeric NOT NULL,
            cached numeric NOT NULL,
            flat_tin numeric NOT NULL,
            flat_tout numeric NOT NULL,
            flat_cached numeric NOT NULL,
            PRIMARY KEY (source, grain, bucket, agent, provider, model, nulls)
        )""",
        # A closed day's peaks and costliest traces, and how many rows they were worked out from (days.py).
        f"""CREATE TABLE IF NOT EXISTS {s}.days (
            source integer NOT NULL,
            day timestamptz NOT NULL,
            calls bigint NOT NULL,
            made_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (source, day)
        )""",
        f"""CREATE TABLE IF NOT EXISTS {s}.day_peaks (
            source integer NOT NULL,
            day timestamptz NOT NULL,
            agent text,
            cost numeric NOT NULL,
            ended timestamptz NOT NULL
        )""",
        f"CREATE INDEX IF NOT EXISTS day_peaks_day ON {s}.day_peaks (source, day)",
        f"""CREATE TABLE IF NOT EXISTS {s}.day_traces (
            source integer NOT NULL,
            day timestamptz NOT NULL,
            rank smallint NOT NULL,
            trace text NOT NULL,
            agent text,
            steps bigint NOT NULL,
            cost numeric NOT NULL,
            started timestamptz NOT NULL,
            ended timestamptz NOT NULL,
            PRIMARY KEY (source, day, rank)
        )""",
    ]


def rollup_table(tables: TableNames, name: str) -> str:
    return f"{qident(tables.rollup_schema)}.{name}"


def buckets_table(tables: TableNames) -> str:
    return rollup_table(tables, "buckets")


def sources_table(tables: TableNames) -> str:
    return rollup_table(tables, "sources")


def source_name(tables: TableNames) -> str:
    """What a rollup is of: the table, and (when they are not the contract's) the column names and
    expressions that decide its figures. A costtop reading the table another way (another identity rule
    for LiteLLM's agent, another cost column) finds no rollup of its own and reads the rows instead."""
    name = f"{tables.schema_name}.{tables.calls}"
    if tables.columns or tables.expressions:
        rule = json.dumps([sorted(tables.columns.items()), sorted(tables.expressions.items())])
        name += "#" + hashlib.sha256(rule.encode()).hexdigest()[:16]
    return name
