"""LiteLLM's own database schema, built from the migration SQL that `litellm-proxy-extras` ships.

LiteLLM's proxy applies these files in name order (Prisma's `migrate deploy`); doing the same here
gives the tables exactly as a real deployment has them, at any point in LiteLLM's history. A cut-off
stops after the named migration, for the columns that arrived later (`status`, `agent_id`,
`request_duration_ms`, `created_at`).
"""

from __future__ import annotations

from pathlib import Path

import asyncpg
import litellm_proxy_extras

MIGRATIONS = Path(litellm_proxy_extras.__file__).parent / "migrations"

# Cut-offs the tests build: the first schema (no status, no agent_id), one with status and session_id
# but no agent_id, one with agent_id but no request_duration_ms or created_at; None is the newest.
BASELINE = "20250326162113_baseline"
WITH_STATUS = "20250508072103_add_status_to_spendlogs"
WITH_AGENT = "20251211100212_schema_sync"
CUTOFFS = (BASELINE, WITH_STATUS, WITH_AGENT, None)


def migration_names(upto: str | None = None) -> list[str]:
    """The migrations in the order LiteLLM applies them, up to and including `upto`."""
    names = sorted(p.name for p in MIGRATIONS.iterdir() if (p / "migration.sql").is_file())
    if upto is not None:
        if upto not in names:
            raise ValueError(f"no migration named {upto}")
        names = names[: names.index(upto) + 1]
    return names


async def apply_migrations(conn: asyncpg.Connection, upto: str | None = None) -> list[str]:
    """Run each migration's SQL as its file stands; returns the names applied. Statements that Postgres
    refuses inside a transaction block (CREATE INDEX CONCURRENTLY) run one by one, as Prisma runs them."""
    applied = []
    for name in migration_names(upto):
        sql = (MIGRATIONS / name / "migration.sql").read_text(encoding="utf-8")
        if "CONCURRENTLY" in sql.upper():
            for statement in _statements(sql):
                await conn.execute(statement)
        else:
            await conn.execute(sql)
        applied.append(name)
    return applied


def _statements(sql: str) -> list[str]:
    """Split a migration on the semicolons that end statements (outside quotes, comments and dollar
    quotes), for the files that must run statement by statement."""
    out: list[str] = []
    current: list[str] = []
    i, n = 0, len(sql)
    quote: str | None = None
    while i < n:
        ch = sql[i]
        if quote is None:
            if sql.startswith("--", i):
                end = sql.find("\n", i)
                i = n if end < 0 else end
                continue
            if ch in ("'", '"'):
                quote = ch
            elif ch == "$":
                end = sql.find("$", i + 1)
                tag = sql[i: end + 1] if end > 0 else ""
                if tag and all(c.isalnum() or c == "_" for c in tag[1:-1]):
                    close = sql.find(tag, end + 1)
                    close = n if close < 0 else close + len(tag)
                    current.append(sql[i:close])
                    i = close
                    continue
            elif ch == ";":
                statement = "".join(current).strip()
                if statement:
                    out.append(statement)
                current = []
                i += 1
                continue
        elif ch == quote:
            quote = None
        current.append(ch)
        i += 1
    tail = "".join(current).strip()
    if tail:
        out.append(tail)
    return out
