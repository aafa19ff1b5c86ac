"""The one writer: switch keys in Redis, and an audit row in Postgres for every change.

The result says exactly what happened. A switch that could not be written is never reported as
done; an audit row that could not be written is reported next to the (successful) switch change.
"""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass

import asyncpg
from redis.asyncio import Redis
from redis.exceptions import RedisError

from costtop.config import Settings
from costtop.sources.redis_state import encode_key
from costtop.sources.schema import qualified
from costtop.text import clean, one_line


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
    target: str
    reason: str = ""
    ttl_seconds: int | None = None
    key: str | None = None  # the exact key, when removing a switch that was read from Redis


@dataclass(frozen=True, slots=True)
class WriteResult:
    ok: bool
    message: str
    audit_written: bool


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
    what = "global" if change.scope == "global" else f"{change.scope} {clean(change.target)}"
    if change.action == "remove":
        return f"Resume {what} (remove {change.kind})"
    return f"{change.kind.capitalize()} {what}"


def audit_text(value: str) -> str:
    """Exact text for the audit table: undecodable bytes and NUL (which Postgres text refuses) escaped."""
    return value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace").replace("\x00", "\\x00")


class SwitchWriter:
    def __init__(self, settings: Settings, redis: Redis, pool: asyncpg.Pool | None,
                 operator: Operator | None = None) -> None:
        if settings.read_only:
            raise ReadOnlyError("costtop is read-only: no switch can be changed")
        self.settings = settings
        self.redis = redis
        self.pool = pool
        self.operator = operator or Operator.current()

    async def apply(self, change: SwitchChange) -> WriteResult:
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
            audit_ok = await self._audit(change, key, "failed", detail)
            return WriteResult(False, f"FAILED: {describe(change)}: Redis said {detail}", audit_ok)
        ok = outcome in ("set", "removed", "was not set")
        audit_ok = await self._audit(change, key, outcome, None)
        message = f"{describe(change)}: {clean(key)} {outcome}"
        if not audit_ok:
            message += " (audit row NOT written: Postgres unavailable)"
        return WriteResult(ok, message, audit_ok)

    async def _audit(self, change: SwitchChange, key: str, result: str, detail: str | None) -> bool:
        if self.pool is None:
            return False
        table = qualified(self.settings.tables, self.settings.tables.audit)
        try:
            await self.pool.execute(
                f"INSERT INTO {table} (operator, ssh_client, action, scope, target, key, reason, ttl_seconds, "
                "result, detail) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                self.operator.login, self.operator.ssh_client,
                f"{change.action}:{change.kind}", change.scope, audit_text(change.target), audit_text(key),
                clean(change.reason, 200) or None, change.ttl_seconds, result, detail,
                timeout=self.settings.timeout_seconds,
            )
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
            return False
        return True
