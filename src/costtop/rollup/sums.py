"""The figures every bucket holds, as SQL: one definition for the gateway's transaction, the job and the
raw reads, so a bucket and the raw rows it stands for always add up the same way.

Each is computed over rows named as `row_sql` names them: agent, provider, model, created_at, cost (the
usable cost, `numbers.in_range`; NULL for a flat-rate call or a cost that is no figure), raw_cost (as
recorded), error, tin, tout, cached. A bucket stores cost as 0 when no call in it was priced; `priced`
says whether the sum is known.
"""

from __future__ import annotations

from costtop.sources.numbers import MAX_USD, MIN_USD

# Summed figures, in the order the buckets table stores them.
COUNTS = ("priced", "calls", "errors", "unusable", "negative")
TOKENS = ("tin", "tout", "cached", "flat_tin", "flat_tout", "flat_cached")
FIGURES = ("cost", *COUNTS, *TOKENS)
KEYS = ("agent", "provider", "model")
# A bucket's NULL keys, as bits of `nulls`: a primary key cannot hold NULL, and '' is a real id.
NULL_BITS = {"agent": 1, "provider": 2, "model": 4}


def usable_cost(cost: str) -> str:
    """The cost when it is a figure to add up (zero, or a magnitude in [MIN_USD, MAX_USD)), else NULL:
    NaN and ±Infinity (abs() of both is not below the bound) and absurd magnitudes."""
    return f"(CASE WHEN abs({cost}) < {MAX_USD} AND (abs({cost}) >= {MIN_USD} OR {cost} = 0) THEN {cost} END)"


def row_sql(*, agent: str, provider: str, model: str, created_at: str, raw_cost: str, error: str, tin: str,
            tout: str, cached: str) -> str:
    """The select list that names a row's values the way ROW_SUMS reads them."""
    cost = usable_cost(raw_cost) if raw_cost != "NULL::numeric" else raw_cost
    return (f"{agent} AS agent, {provider} AS provider, {model} AS model, {created_at} AS created_at, "
            f"{cost} AS cost, {raw_cost} AS raw_cost, ({error}) AS error, "
            f"{tin} AS tin, {tout} AS tout, {cached} AS cached")


# The figures of a group of rows (named by row_sql).
ROW_SUMS = (
    "coalesce(sum(cost), 0) AS cost, count(cost) AS priced, count(*) AS calls, "
    "count(*) FILTER (WHERE error) AS errors, "
    # Recorded but not a figure (NaN, infinite, absurd): left out of the sum, not flat-rate.
    "count(*) FILTER (WHERE raw_cost IS NOT NULL AND cost IS NULL) AS unusable, "
    "count(*) FILTER (WHERE cost < 0) AS negative, "
    "coalesce(sum(tin), 0) AS tin, coalesce(sum(tout), 0) AS tout, coalesce(sum(cached), 0) AS cached, "
    "coalesce(sum(tin) FILTER (WHERE raw_cost IS NULL), 0) AS flat_tin, "
    "coalesce(sum(tout) FILTER (WHERE raw_cost IS NULL), 0) AS flat_tout, "
    "coalesce(sum(cached) FILTER (WHERE raw_cost IS NULL), 0) AS flat_cached"
)

# The figures of a group of groups (buckets, or ROW_SUMS' output).
# Counts summed back to bigint (a sum of bigints is a numeric, which the client decodes ten times slower;
# no count of calls comes near 2^63); money and tokens stay exact numerics.
GROUP_SUMS = ", ".join(f"sum({name})::bigint AS {name}" if name in COUNTS else f"sum({name}) AS {name}"
                       for name in FIGURES)


def stored_keys() -> str:
    """The keys as a bucket stores them: '' for NULL, with the NULLs' bits."""
    bits = " + ".join(f"(CASE WHEN {k} IS NULL THEN {NULL_BITS[k]} ELSE 0 END)" for k in KEYS)
    return ", ".join(f"coalesce({k}, '') AS {k}" for k in KEYS) + f", ({bits})::smallint AS nulls"


def upsert_sql(buckets: str, rows: str, grains: tuple[str, ...] = ("minute", "hour", "day"), before: str = "",
               coarse_before: str | None = None) -> str:
    """Add the rows of the relation `rows` (named by row_sql) to their minute, hour and day buckets of
    source $1, in one statement. The rows are summed per minute first, and the minutes into hours and
    days. `before` is any common table expressions `rows` needs ("name AS (...), "). Buckets are written
    in primary-key order, so two writers adding to the same buckets take their locks in the same order
    and cannot deadlock. With `coarse_before` (an SQL expression), only rows before it go to the hour
    and day buckets."""
    key_list = ", ".join((*KEYS, "nulls"))
    per_minute = (f"SELECT {stored_keys()}, date_trunc('minute', created_at, 'UTC') AS bucket, {ROW_SUMS} "
                  f"FROM {rows} GROUP BY 1, 2, 3, 4, 5")
    layers = []
    for grain in grains:
        if grain == "minute":
            layers.append(f"SELECT 'm'::text AS grain, bucket, {key_list}, {', '.join(FIGURES)} FROM per_minute")
        else:
            only = f" WHERE bucket < {coarse_before}" if coarse_before is not None else ""
            layers.append(f"SELECT '{grain[0]}'::text, date_trunc('{grain}', bucket, 'UTC'), {key_list}, "
                          f"{GROUP_SUMS} FROM per_minute{only} GROUP BY 2, 3, 4, 5, 6")
    columns = ", ".join(("source", "grain", "bucket", *KEYS, "nulls", *FIGURES))
    return (f"WITH {before}per_minute AS ({per_minute}) "
            f"INSERT INTO {buckets} AS b ({columns}) "
            f"SELECT $1::integer, grain, bucket, {key_list}, {', '.join(FIGURES)} FROM ({' UNION ALL '.join(layers)}) "
            f"AS layers ORDER BY grain, bucket, {key_list} "
            f"{ADD_ON_CONFLICT}")


# Buckets already there are added to: every writer of the buckets ends its INSERT with this.
ADD_ON_CONFLICT = ("ON CONFLICT (source, grain, bucket, agent, provider, model, nulls) DO UPDATE SET "
                   + ", ".join(f"{name} = b.{name} + EXCLUDED.{name}" for name in FIGURES))


def compact_sql(buckets: str, grain: str, finer: str = "minute") -> str:
    """Source $1's `finer` buckets in [$2, $3) added to their `grain` ("hour" or "day") buckets."""
    key_list = ", ".join((*KEYS, "nulls"))
    columns = ", ".join(("source", "grain", "bucket", *KEYS, "nulls", *FIGURES))
    return (f"INSERT INTO {buckets} AS b ({columns}) "
            f"SELECT $1::integer, '{grain[0]}', date_trunc('{grain}', bucket, 'UTC'), {key_list}, {GROUP_SUMS} "
            f"FROM {buckets} WHERE source = $1 AND grain = '{finer[0]}' AND bucket >= $2 AND bucket < $3 "
            f"GROUP BY 3, {key_list} ORDER BY 3, {key_list} {ADD_ON_CONFLICT}")
