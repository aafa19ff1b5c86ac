"""Closed days from LiteLLM's own daily tables, under `preset = "litellm"` (issue 15).

LiteLLM rolls every call up per UTC day into `LiteLLM_Daily*Spend` tables as it writes its spend log
(db_spend_update_writer.py: per entity, `date`, key, model, provider, ... one row, `spend` summed as a
double). Reading a past day there costs a few hundred rows where the spend log costs every call of
that day, and it still holds the day after LiteLLM's retention job has deleted that day's log rows.
So the month before today, the anomalies' week and a past day's report take closed days from here
when the tables exist; today always comes from the spend log (its rows arrive live; the day's rows
here are still being added to). Everything returns None where a daily table cannot answer, and the
caller reads the spend log as before.

Which table answers what:
- The fleet: `LiteLLM_DailyUserSpend`. LiteLLM writes every call there, under user_id '' when the key
  has no owner (`daily_spend_entity_ids` returns (None,) for "user" alone), but only since user_id
  became nullable (migration 20250526154401): a NOT NULL user_id is a LiteLLM that skipped those
  calls, and is not used. Not `LiteLLM_DailyGlobalSpend`: its schema calls it a rollup of the user
  table, and nothing in the LiteLLM we test against (1.108) writes it, so a deployment can hold it
  empty, which would read as a month of $0.
- Per agent: only when the identity rule (`[litellm] identity`) is one source that a daily table is
  grouped by, so that the table's entity is exactly the agent the screen shows: `agent_id` ->
  `LiteLLM_DailyAgentSpend.agent_id`, `user` -> `LiteLLM_DailyUserSpend.user_id`, `end_user` ->
  `LiteLLM_DailyEndUserSpend.end_user_id`. With a fallback order (the default) a call's agent depends
  on fields no daily table keeps together, so per-agent figures stay with the spend log.

LiteLLM's writer stores every grouping column NULL-free (`_as_text`: None becomes ''), so '' is read
back as NULL: a call without a model, provider or agent. Money: each figure is the exact sum of the
stored doubles (each as numeric, i.e. its 15 significant digits), rounded to the cent half away from
zero, as `round(numeric, 2)` and `money.usd` round. The doubles were themselves summed in floating
point, so a figure can differ from the spend log's sum in its last few float bits, never by a cent
except at an exact half cent.

`date` is text 'YYYY-MM-DD' (the call's startTime, cut by LiteLLM); it is compared as text, which
orders like the dates and uses the tables' date indexes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

import asyncpg

from costtop.config import Settings
from costtop.sources.numbers import MAX_USD, MIN_USD
from costtop.sources.schema import qident

USER_TABLE = "LiteLLM_DailyUserSpend"
AGENT_TABLE = "LiteLLM_DailyAgentSpend"
END_USER_TABLE = "LiteLLM_DailyEndUserSpend"
TABLES = (USER_TABLE, AGENT_TABLE, END_USER_TABLE)
# The identity source (config.IdentitySource) -> the daily table grouped by it, and its column.
BY_IDENTITY = {"agent_id": (AGENT_TABLE, "agent_id"), "user": (USER_TABLE, "user_id"),
               "end_user": (END_USER_TABLE, "end_user_id")}

# A read: (sql, *args) -> rows, on whatever connection the caller holds (the baseline's snapshot, or
# the reader's pool with its deadline).
Fetch = Callable[..., Awaitable[list[asyncpg.Record]]]


@dataclass(frozen=True, slots=True)
class DailyTables:
    """The daily tables costtop may read (they exist and SELECT is granted), learnt from the catalog."""

    schema: str
    present: frozenset[str]
    user_id_nullable: bool  # the user table holds every call (LiteLLM 2025-05-26 and later)

    def table(self, name: str) -> str:
        return f"{qident(self.schema)}.{qident(name)}"

    def fleet(self) -> str | None:
        """The table whose rows add up to the whole fleet's spend, if any."""
        return self.table(USER_TABLE) if USER_TABLE in self.present and self.user_id_nullable else None

    def per_agent(self, identity: Sequence[str]) -> tuple[str, str] | None:
        """(table, entity column) when the identity rule is one source a present table groups by."""
        if len(identity) != 1 or identity[0] not in BY_IDENTITY:
            return None
        name, column = BY_IDENTITY[identity[0]]
        return (self.table(name), qident(column)) if name in self.present else None


NONE = DailyTables("public", frozenset(), False)


def enabled(settings: Settings) -> bool:
    """Daily tables are LiteLLM's: only the LiteLLM preset reads them."""
    return settings.preset == "litellm"


async def find_tables(fetch: Fetch, settings: Settings) -> DailyTables:
    """One catalog query: which daily tables are in the spend log's schema and readable by this role
    (a least-privilege role granted only the spend log falls back to it, rather than failing)."""
    schema = settings.tables.schema_name
    rows = await fetch(
        "SELECT c.relname AS name, has_table_privilege(c.oid, 'SELECT') AS readable, "
        "(SELECT NOT a.attnotnull FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'user_id' "
        "AND NOT a.attisdropped) AS user_nullable "
        "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = $1 AND c.relname = ANY($2::text[]) AND c.relkind IN ('r', 'p', 'v', 'm', 'f')",
        schema, list(TABLES))
    present = frozenset(r["name"] for r in rows if r["readable"])
    nullable = any(r["name"] == USER_TABLE and r["user_nullable"] for r in rows)
    return DailyTables(schema, present, nullable)


def day_text(when: date | datetime) -> str:
    return when.strftime("%Y-%m-%d")


def closed_end(end: date | datetime, today: date | datetime) -> str:
    """The exclusive end of a range of closed days: never past today's start (today is the log's)."""
    return min(day_text(end), day_text(today))


def _spend(column: str = "spend") -> str:
    return f"round(coalesce(sum({column}::numeric), 0), 2)"


DATE_TEXT = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"


def _unusable(column: str = "spend") -> str:
    """True when a group holds a row the table cannot answer with: a spend that is not a figure to add up
    (NaN, Infinity, a magnitude outside numbers.in_range, as the spend log's cost rule) or a `date` that is
    not 'YYYY-MM-DD' text (it sorts inside a range of days, and is no day). Such a range is left to the
    spend log (None), never summed into a NaN or a wrong figure."""
    value = f"{column}::numeric"
    usable = (f"abs({value}) < {MAX_USD} AND (abs({value}) >= {MIN_USD} OR {value} = 0) "
              f"AND date ~ '{DATE_TEXT}'")
    return f"coalesce(bool_or(NOT ({usable})), false)"


def _answers(rows: list[asyncpg.Record]) -> bool:
    return not any(r["unusable"] for r in rows)


async def fleet_spend(fetch: Fetch, tables: DailyTables, first: date | datetime, end: date | datetime,
                      today: date | datetime) -> Decimal | None:
    """The whole fleet's spend over the closed days in [first, end), or None (no table answers)."""
    table = tables.fleet()
    if table is None:
        return None
    rows = await fetch(f"SELECT {_spend()} AS spend, {_unusable()} AS unusable FROM {table} "
                       "WHERE date >= $1 AND date < $2", day_text(first), closed_end(end, today))
    return rows[0]["spend"] if _answers(rows) else None


async def agent_days(fetch: Fetch, tables: DailyTables, identity: Sequence[str], first: date | datetime,
                     end: date | datetime, today: date | datetime) -> list[tuple[str | None, str, Decimal]] | None:
    """(agent, 'YYYY-MM-DD', spend) per agent and closed day in [first, end), or None when no daily
    table is grouped by the identity rule. A call without an agent is agent None; the agent and
    end-user tables leave such calls out (LiteLLM writes no row for them)."""
    found = tables.per_agent(identity)
    if found is None:
        return None
    table, column = found
    rows = await fetch(f"SELECT nullif({column}, '') AS agent, date, {_spend()} AS spend, "
                       f"{_unusable()} AS unusable FROM {table} WHERE date >= $1 AND date < $2 GROUP BY 1, 2",
                       day_text(first), closed_end(end, today))
    if not _answers(rows):
        return None
    return [(r["agent"], r["date"], r["spend"]) for r in rows]


@dataclass(frozen=True, slots=True)
class DaySpend:
    """One closed day's spend as the daily tables hold it: the fleet's, per model and per provider
    (from the fleet table), and per agent when the identity rule allows (else None)."""

    total: Decimal
    models: dict[str | None, Decimal]
    providers: dict[str | None, Decimal]
    agents: dict[str | None, Decimal] | None


async def day_spend(fetch: Fetch, tables: DailyTables, identity: Sequence[str], day: str,
                    today: date | datetime) -> DaySpend | None:
    """A closed day's spend by model, provider and (where the grouping matches) agent; None for today,
    a day to come, or when no table holds the fleet."""
    table = tables.fleet()
    if table is None or day >= day_text(today):
        return None
    rows = await fetch(
        f"SELECT nullif(model, '') AS model, nullif(custom_llm_provider, '') AS provider, "
        f"GROUPING(nullif(model, '')) AS g_model, GROUPING(nullif(custom_llm_provider, '')) AS g_provider, "
        f"{_spend()} AS spend, {_unusable()} AS unusable FROM {table} WHERE date = $1 "
        "GROUP BY GROUPING SETS ((nullif(model, '')), (nullif(custom_llm_provider, '')), ())", day)
    if not _answers(rows):
        return None
    total = next((r["spend"] for r in rows if r["g_model"] and r["g_provider"]), Decimal("0.00"))
    models = {r["model"]: r["spend"] for r in rows if not r["g_model"]}
    providers = {r["provider"]: r["spend"] for r in rows if r["g_model"] and not r["g_provider"]}
    agents = None
    found = tables.per_agent(identity)
    if found is not None:
        by_agent = await fetch(f"SELECT nullif({found[1]}, '') AS agent, {_spend()} AS spend, "
                               f"{_unusable()} AS unusable FROM {found[0]} WHERE date = $1 GROUP BY 1", day)
        agents = {r["agent"]: r["spend"] for r in by_agent} if _answers(by_agent) else None
    return DaySpend(total, models, providers, agents)
