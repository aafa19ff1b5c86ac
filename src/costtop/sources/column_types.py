"""Column types that differ from the contract: read as the contract's types, or refused at start.

The contract (`costtop db init`) has `created_at timestamptz`, text ids and names, `cost_usd numeric`
and integer counts. Gateways in the wild store some of these differently. Each column's type is read
from information_schema when costtop connects, and turned here into two kinds of SQL:

- a *value* expression, what a reader gets back: always the contract's type (text ids, a numeric
  cost, an integer latency, a timestamptz). It is used in select lists, GROUP BYs and sums.
- a *parameter* conversion for comparisons: a time or an id that costtop passes is converted to the
  column's own type, and compared with the bare column. Converting the parameter (evaluated once per
  query) instead of the column keeps the `created_at` and `(agent_id, created_at)` indexes usable:
  `created_at AT TIME ZONE 'UTC' >= $1` would read the whole table, `created_at >= ($1 AT TIME ZONE
  'UTC')` reads one index range.

A value that cannot be converted (text `'abc'` in a text cost column, a latency of 1e300) becomes
unknown (NULL) in that row only: converting it with a plain cast would make the whole query fail,
and one bad row would blind the source. The row still counts as a call (it happened; its agent, time
and status are readable), and `unreadable_sql` names the column so the reader can count such rows.

Anything else (a text created_at, a jsonb cost, a boolean agent id) is refused when costtop starts,
in one line naming the column and the type it needs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import asyncpg

from costtop.config import TableNames

TEXT = frozenset({"text", "character varying", "character"})
INTEGER = frozenset({"smallint", "integer", "bigint"})
FLOATING = frozenset({"numeric", "double precision", "real"})
TIMESTAMPTZ = "timestamp with time zone"
TIMESTAMP = "timestamp without time zone"

# Columns read as text: names and ids. An integer or a uuid id is read as its text.
TEXT_COLUMNS = frozenset({"agent_id", "tool_name", "provider", "model", "status", "error_code", "trace_id",
                          "span_id", "parent_span_id", "task_id", "user_id"})
# Columns read as whole numbers.
COUNT_COLUMNS = frozenset({"latency_ms", "tokens_in", "tokens_out", "cached_tokens"})

# A decimal number in text, as PostgreSQL's numeric input accepts it, bounded so that the cast that
# follows can never fail (numeric takes up to 131,072 digits; regex bounds stop at 255).
NUMBER_TEXT = r"^\s*[-+]?([0-9]{1,100}(\.[0-9]{0,200})?|\.[0-9]{1,200})([eE][-+]?[0-9]{1,3})?\s*$"
# Latencies and token counts past this are not measurements; as bigint they could not even be summed.
COUNT_BOUND = "1e15"
# Epoch seconds that a Python datetime can hold (years 1 to 9999): to_timestamp() past its own range
# would fail the whole query, and asyncpg cannot return a year past 9999.
EPOCH_MIN, EPOCH_MAX = -62135596800, 253402300799

NEEDS = {
    "created_at": "timestamptz, timestamp (UTC) or an integer epoch in seconds",
    "cost_usd": "a number (numeric, double precision, an integer) or text holding one",
    "count": "an integer, numeric, double precision or text holding a number",
    "text": "text, an integer or a uuid",
}


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


@dataclass(frozen=True, slots=True)
class ColumnType:
    """One column: its logical name (the contract's), its quoted real name, and its data type as
    information_schema says it (`data_type`; `udt_name` for user-defined and array types)."""

    logical: str
    quoted: str
    data_type: str

    @property
    def converted(self) -> bool:
        """Whether the value is not the column itself (and so may be unreadable in one row)."""
        return self.value() != self.quoted

    def refusal(self, table: str, real: str) -> str | None:
        """Why costtop cannot read this column, in one line; None when it can."""
        kind = self.data_type
        if self.logical == "created_at":
            ok = kind in (TIMESTAMPTZ, TIMESTAMP) or kind in INTEGER
            need = NEEDS["created_at"]
        elif self.logical == "cost_usd":
            ok = kind in INTEGER | FLOATING | TEXT
            need = NEEDS["cost_usd"]
        elif self.logical in COUNT_COLUMNS:
            ok = kind in INTEGER | FLOATING | TEXT
            need = NEEDS["count"]
        elif self.logical in TEXT_COLUMNS:
            ok = kind in TEXT | INTEGER or kind == "uuid"
            need = NEEDS["text"]
        else:
            return None
        return None if ok else f"{table}.{real} is {kind}; costtop needs {need}"

    def value(self) -> str:
        """The SQL for this column's value in the contract's type."""
        col, kind = self.quoted, self.data_type
        if self.logical == "created_at":
            if kind == TIMESTAMP:
                # A timestamp without time zone holds UTC (the gateway's clock in UTC): made aware here,
                # whatever the session's time zone.
                return f"({col} AT TIME ZONE 'UTC')"
            if kind in INTEGER:
                return f"to_timestamp(least(greatest({col}, {EPOCH_MIN}), {EPOCH_MAX}))"
            return col
        if self.logical in TEXT_COLUMNS:
            return f"{col}::text" if kind in INTEGER or kind == "uuid" else col
        if self.logical == "cost_usd" and kind in TEXT:
            # Text that is not a number is a recorded cost that cannot be used: NaN, which the cost
            # rules (postgres.cost_sql) leave out of every sum and flag, never NULL (a flat-rate call).
            return (f"(CASE WHEN {col} ~ {_literal(NUMBER_TEXT)} THEN {col}::numeric "
                    f"WHEN {col} IS NOT NULL THEN 'NaN'::numeric END)")
        if self.logical in COUNT_COLUMNS:
            if kind in TEXT:
                number = f"{col}::numeric"
                return (f"(CASE WHEN {col} ~ {_literal(NUMBER_TEXT)} THEN "
                        f"(CASE WHEN abs({number}) < {COUNT_BOUND} THEN round({number})::bigint END) END)")
            if kind in FLOATING:
                # NaN is above every number in PostgreSQL, so it fails the bound too.
                return f"(CASE WHEN abs({col}) < {COUNT_BOUND} THEN round({col})::bigint END)"
        return col

    def param(self, placeholder: str) -> str:
        """A parameter of the contract's type (timestamptz, text) converted to this column's type,
        for `column <op> parameter` on the bare column so that its index is used."""
        kind = self.data_type
        if self.logical == "created_at":
            if kind == TIMESTAMP:
                return f"({placeholder}::timestamptz AT TIME ZONE 'UTC')"
            if kind in INTEGER:
                # The smallest whole second not before the time: for whole-second values c and any
                # time t, `c >= t` is `c >= ceil(t)` and `c < t` is `c < ceil(t)`, both exact.
                return f"ceil(extract(epoch FROM {placeholder}::timestamptz))::bigint"
            return placeholder
        if self.logical in TEXT_COLUMNS and (kind in INTEGER or kind == "uuid"):
            # The parameter stays text for the driver; the server casts it once.
            return f"{placeholder}::text::{kind}"
        return placeholder

    def unreadable(self) -> str | None:
        """SQL true for a row whose stored value is there but cannot be read; None when every value
        of this column can be."""
        if not self.converted or self.logical in TEXT_COLUMNS or self.logical == "created_at":
            return None
        if self.logical == "cost_usd" and self.data_type in TEXT:
            return f"({self.quoted} IS NOT NULL AND {self.quoted} !~ {_literal(NUMBER_TEXT)})"
        return f"({self.quoted} IS NOT NULL AND {self.value()} IS NULL)"


def unreadable_sql(types: dict[str, ColumnType]) -> str:
    """SQL for the name of the first column whose value in a row cannot be read, or NULL."""
    cases = [(logical, sql) for logical, t in sorted(types.items()) if (sql := t.unreadable())]
    if not cases:
        return "NULL::text"
    return "(CASE " + " ".join(f"WHEN {sql} THEN {_literal(name)}" for name, sql in cases) + " END)"


def column_type(logical: str, quoted: str, data_type: str, udt_name: str) -> ColumnType:
    """`data_type` says `USER-DEFINED` for enums and domains over other types, `ARRAY` for arrays:
    their `udt_name` is the more useful name in a refusal."""
    kind = udt_name if data_type in ("USER-DEFINED", "ARRAY") else data_type
    return ColumnType(logical, quoted, kind)


# The server's internal type names (what a prepared statement's result describes) as information_schema
# spells them, which is what ColumnType compares against.
CATALOG_NAMES = {
    "text": "text", "varchar": "character varying", "bpchar": "character", "name": "text",
    "int2": "smallint", "int4": "integer", "int8": "bigint", "numeric": "numeric",
    "float4": "real", "float8": "double precision",
    "timestamptz": TIMESTAMPTZ, "timestamp": TIMESTAMP, "uuid": "uuid", "bool": "boolean",
}


async def expression_type(conn: asyncpg.Connection, table: str, expression: str, timeout: float) -> str:
    """The type of `expression` over `table`, learnt by preparing `SELECT <expression> FROM <table>`
    (nothing is executed): information_schema knows columns only. Raises what the server raised for an
    expression it cannot plan (a typo, a column that is not there, two statements)."""
    statement = await conn.prepare(f"SELECT ({expression}) FROM {table}", timeout=timeout)
    attributes = statement.get_attributes()
    if len(attributes) != 1:
        raise ValueError("not one value")
    name = attributes[0].type.name
    return CATALOG_NAMES.get(name, name)


async def describe_table(pool: asyncpg.Pool, tables: TableNames, timeout: float) -> list[asyncpg.Record]:
    """The table's columns and their types, from the catalog."""
    return await pool.fetch(
        "SELECT column_name, data_type, udt_name FROM information_schema.columns "
        "WHERE table_schema = $1 AND table_name = $2",
        tables.schema_name, tables.calls, timeout=timeout,
    )


# What a read raises when the table changed under a running costtop: a column renamed or dropped
# (undefined column), the table renamed or dropped (undefined table), a column retyped (the server's
# "cached plan must not change result type", asyncpg's invalid cached statement, or a comparison
# whose types no longer match).
SCHEMA_CHANGES: tuple[type[Exception], ...] = (
    asyncpg.exceptions.UndefinedColumnError, asyncpg.exceptions.UndefinedTableError,
    asyncpg.exceptions.InvalidCachedStatementError, asyncpg.exceptions.FeatureNotSupportedError,
    asyncpg.exceptions.DatatypeMismatchError, asyncpg.exceptions.UndefinedFunctionError,
    asyncpg.exceptions.InvalidTextRepresentationError,
)


def schema_changed(exc: BaseException) -> bool:
    return isinstance(exc, SCHEMA_CHANGES)


LEFT_OUT_KEYS = 100_000  # rows remembered to count each once; past it the count says "at least"


@dataclass
class LeftOut:
    """Rows with a value that could not be read, each counted once (a row can be read again by an
    overlapping re-read), and which columns. The memory is bounded: bad rows past LEFT_OUT_KEYS are
    not remembered, and the count then reads "at least"."""

    keys: set[object] = field(default_factory=set)
    columns: set[str] = field(default_factory=set)
    full: bool = False

    def add(self, key: object, column: str) -> None:
        self.columns.add(column)
        if len(self.keys) < LEFT_OUT_KEYS:
            self.keys.add(key)
        elif key not in self.keys:
            self.full = True

    def reset(self) -> None:
        self.keys.clear()
        self.columns.clear()
        self.full = False

    @property
    def count(self) -> int:
        return len(self.keys)

    def message(self) -> str | None:
        """One line for the screen's data-quality notes, or None when every row was readable."""
        if not self.keys:
            return None
        rows = f"{'at least ' if self.full else ''}{self.count:,} row{'s' if self.count != 1 else ''}"
        return (f"{rows} with an unreadable {' or '.join(sorted(self.columns))} "
                "(not a number): their calls count, their values are left out")
