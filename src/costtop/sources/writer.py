"""The one writer: switch keys in Redis, and an audit row in Postgres for every change.

The result says exactly what happened. A switch that could not be written is never reported as
done; an audit row that could not be written is reported next to the (successful) switch change.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
from redis.asyncio import Redis
from redis.exceptions import RedisError

from costtop.config import Settings
from costtop.sources.audit_spool import AuditEntry, AuditSpool
from costtop.sources.errors import PG_ERRORS
from costtop.sources.redis_state import encode_key
from costtop.sources.schema import qualified
from costtop.text import clean, one_line, visible_id


@dataclass(frozen=True, slots=True)
class Operator:
    """Who pressed the key: the login name and, over SSH, the client address."""

    login: str
    ssh_client: str | None

    @classmethod
    def current(cls) -> Operator:
        try:
            login = getpass.getuser()
        except (KeyError, OSError):
            login = "unknown"
        ssh = os.environ.get("SSH_CLIENT", "").split(" ")[0] or None
        return cls(clean(login, 64).replace(":", "_") or "unknown", clean(ssh, 64) if ssh else None)


@dataclass(frozen=True, slots=True)
class SwitchChange:
    """What the operator asked for. `kind` is kill or throttle; `scope` global, agent, model, provider."""

    action: str  # "set" or "remove"
    kind: str
    scope: str
    target: str | None  # None: the calls without one (a NULL agent_id), which have no switch
    reason: str = ""
    ttl_seconds: int | None = None
    key: str | None = None  # the exact key, when removing a switch that was read from Redis


@dataclass(frozen=True, slots=True)
class WriteResult:
    ok: bool
    message: str
    audit_written: bool
    audit_pending: bool = False  # not in the table yet, but kept in the local spool for later


class ReadOnlyError(RuntimeError):
    pass


def switch_key(settings: Settings, kind: str, scope: str, target: str) -> str:
    prefix = settings.keys.kill if kind == "kill" else settings.keys.throttle
    return f"{prefix}:global" if scope == "global" else f"{prefix}:{scope}:{target}"


def switch_value(operator: Operator, reason: str) -> str:
    """`manual:{who}:{reason}`, the contract's format, with the reason made single-line."""
    return f"manual:{operator.login}:{clean(reason, 200) or 'no reason given'}"


def describe(change: SwitchChange) -> str:
    """One line for the operator, with the target cleaned for display."""
    what = "global" if change.scope == "global" else f"{change.scope} {visible_id(change.target)}"
    if change.action == "remove":
        return f"Resume {what} (remove {change.kind})"
    return f"{change.kind.capitalize()} {what}"


def audit_text(value: str) -> str:
    """Exact text for the audit table: undecodable bytes and NUL (which Postgres text refuses) escaped."""
    return value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace").replace("\x00", "\\x00")


def insert_sql(settings: Settings) -> str:
    table = qualified(settings.tables, settings.tables.audit)
    return (f"INSERT INTO {table} (entry_id, at, operator, ssh_client, action, scope, target, key, reason, "
            "ttl_seconds, result, detail) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) "
            "ON CONFLICT DO NOTHING")  # no conflict target: naming one would need SELECT on the table


async def write_entries(settings: Settings, pool: asyncpg.Pool | None, entries: list[AuditEntry]) -> str | None:
    """Insert audit rows, each at most once (by its entry id). None when written; else why not, in one
    line: Postgres down, or a table that refuses them (no `entry_id`: run `costtop db init`; no grant)."""
    if pool is None:
        return "Postgres is not connected"
    if not entries:
        return None
    args = [(uuid.UUID(e.entry_id), datetime.fromisoformat(e.at), e.operator, e.ssh_client, e.action, e.scope,
             e.target, e.key, e.reason, e.ttl_seconds, e.result, e.detail) for e in entries]
    try:
        await pool.executemany(insert_sql(settings), args, timeout=settings.timeout_seconds)
    except asyncpg.UndefinedColumnError:
        return "the audit table has no entry_id column: run `costtop db init` as its owner"
    except PG_ERRORS as exc:
        return one_line(exc, (settings.database_url,))
    return None


async def drain(settings: Settings, pool: asyncpg.Pool | None, spool: AuditSpool) -> tuple[int, str | None]:
    """Write what the spool holds: (rows still waiting, why they could not be written)."""
    entries = spool.pending()
    if not entries:
        return 0, None
    error = await write_entries(settings, pool, entries)
    if error is not None:
        return len(entries), error
    return spool.remove({e.entry_id for e in entries}), None


class SwitchWriter:
    def __init__(self, settings: Settings, redis: Redis, pool: asyncpg.Pool | None,
                 operator: Operator | None = None, spool: AuditSpool | None = None) -> None:
        if settings.read_only:
            raise ReadOnlyError("costtop is read-only: no switch can be changed")
        self.settings = settings
        self.redis = redis
        self.pool = pool
        self.operator = operator or Operator.current()
        self.spool = spool or AuditSpool.for_settings(settings)
        self.last_error: str | None = None  # why the last audit row did not reach the table

    async def apply(self, change: SwitchChange) -> WriteResult:
        if change.key is None and change.scope != "global" and change.target is None:
            # Calls without an agent (a NULL agent_id, shown as `(none)`) have no switch: the gateway
            # checks `kill:agent:{id}`, and no id would match a key written for None.
            article = "an" if change.scope[:1] in ("a", "e", "i", "o", "u") else "a"
            return WriteResult(False, f"Refused: calls without {article} {change.scope} have no {change.kind} switch",
                               False)
        key = change.key or switch_key(self.settings, change.kind, change.scope, change.target)
        try:
            if change.action == "set":
                value = switch_value(self.operator, change.reason)
                ttl = change.ttl_seconds if change.ttl_seconds and change.ttl_seconds > 0 else None
                done = await self.redis.set(encode_key(key), value, ex=ttl)
                outcome = "set" if done else "not set"
            else:
                removed = await self.redis.delete(encode_key(key))
                outcome = "removed" if removed else "was not set"
        except (RedisError, OSError, TimeoutError) as exc:
            detail = one_line(exc, (self.settings.redis_url,))
            written, kept = await self._audit(change, key, "failed", detail)
            return WriteResult(False, f"FAILED: {describe(change)}: Redis said {detail}", written, kept)
        ok = outcome in ("set", "removed", "was not set")
        written, kept = await self._audit(change, key, outcome, None)
        message = f"{describe(change)}: {visible_id(key)} {outcome}"
        if kept:
            message += f" (audit row kept in {self.spool.path}: written when Postgres takes it; {self.last_error})"
        elif not written:
            message += " (audit row NOT written: Postgres unavailable and the local spool failed)"
        return WriteResult(ok, message, written, kept)

    async def _audit(self, change: SwitchChange, key: str, result: str, detail: str | None) -> tuple[bool, bool]:
        """(written to the table, kept in the spool): the row goes to the spool first, so an outage
        or a crash between the two loses nothing, and leaves the spool once the table has it."""
        entry = AuditEntry.new(
            datetime.now(UTC), operator=self.operator.login, ssh_client=self.operator.ssh_client,
            action=f"{change.action}:{change.kind}", scope=change.scope, target=audit_text(change.target),
            key=audit_text(key), reason=clean(change.reason, 200) or None, ttl_seconds=change.ttl_seconds,
            result=result, detail=detail)
        try:
            self.spool.append(entry)
            spooled = True
        except OSError:
            spooled = False
        self.last_error = await write_entries(self.settings, self.pool, [entry])
        if self.last_error is None:
            if spooled:
                with contextlib.suppress(OSError):
                    self.spool.remove({entry.entry_id})
            return True, False
        return False, spooled
