"""The one writer: switch keys in Redis, and an audit row in Postgres for every change.

The result says exactly what happened. A switch that could not be written is never reported as
done, and one that was written is never reported as not done: when the reply is lost (a timeout, a
connection dropped after the command went out) the key is read back and the result is what Redis
holds, or "unknown" if it cannot be read either. An audit row that could not be written is reported
next to the switch change, and so is a local spool that could not keep it.
"""

from __future__ import annotations

import asyncio
import getpass
import os
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import asyncpg
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from costtop.config import Settings
from costtop.sources.audit_spool import AuditEntry, AuditSpool
from costtop.sources.postgres import PG_ERRORS
from costtop.sources.records import Outcome, SwitchChange, WriteResult, switch_key
from costtop.sources.redis_state import REDIS_ERRORS, RedisClient, encode_key, ping_for
from costtop.sources.schema import qualified
from costtop.text import clean, one_line, visible_id


@dataclass(frozen=True, slots=True)
class Operator:
    """Who pressed the key: the login name and, over SSH, the client address. Through `costtop serve`,
    the login is only the user serve runs as, so `via` (`web`) and the browser's address say who it
    really was; serve sets COSTTOP_VIA and COSTTOP_CLIENT for each session's process (serve.py)."""

    login: str
    ssh_client: str | None
    via: str | None = None
    client_addr: str | None = None

    @classmethod
    def current(cls) -> Operator:
        try:
            login = getpass.getuser()
        except (KeyError, OSError):
            login = "unknown"
        ssh = os.environ.get("SSH_CLIENT", "").split(" ")[0] or None
        via = clean(os.environ.get("COSTTOP_VIA", ""), 16) or None
        client = clean(os.environ.get("COSTTOP_CLIENT", ""), 64) or None
        return cls(clean(login, 64).replace(":", "_") or "unknown", clean(ssh, 64) if ssh else None, via, client)


class ReadOnlyError(RuntimeError):
    pass


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


COLUMNS = ("entry_id", "at", "operator", "ssh_client", "action", "scope", "target", "key", "reason", "ttl_seconds",
           "result", "detail")
PROVENANCE = ("via", "client_addr")


def insert_sql(settings: Settings, provenance: bool = False) -> str:
    """The INSERT; `via` and `client_addr` are named only for rows that have them, so a terminal's
    rows still go into an audit table made before those columns existed."""
    table = qualified(settings.tables, settings.tables.audit)
    columns = COLUMNS + PROVENANCE if provenance else COLUMNS
    values = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
    return (f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({values}) "
            "ON CONFLICT DO NOTHING")  # no conflict target: naming one would need SELECT on the table


def _row(e: AuditEntry, provenance: bool) -> tuple[object, ...]:
    row = (uuid.UUID(e.entry_id), datetime.fromisoformat(e.at), e.operator, e.ssh_client, e.action, e.scope,
           e.target, e.key, e.reason, e.ttl_seconds, e.result, e.detail)
    return (*row, e.via, e.client_addr) if provenance else row


def _folded(e: AuditEntry) -> AuditEntry:
    """A web row for a table without `via`/`client_addr`: where it came from goes into `detail`,
    never dropped, until `costtop db init` adds the columns."""
    origin = f"via {e.via or 'web'} from {e.client_addr or 'an unknown address'} (no via/client_addr columns: " \
             "run `costtop db init`)"
    return replace(e, detail=f"{e.detail}; {origin}" if e.detail else origin)


async def write_entries(settings: Settings, pool: asyncpg.Pool | None, entries: list[AuditEntry],
                        unconnected: str = "Postgres is not connected") -> str | None:
    """Insert audit rows, each at most once (by its entry id). None when written; else why not, in one
    line: Postgres down (`unconnected` when there is no pool), a read-only standby, or a table that
    refuses them (no `entry_id`: run `costtop db init`; no grant)."""
    if pool is None:
        return unconnected
    plain = [e for e in entries if e.via is None and e.client_addr is None]
    web = [e for e in entries if e.via is not None or e.client_addr is not None]
    try:
        if web:
            try:
                await pool.executemany(insert_sql(settings, True), [_row(e, True) for e in web],
                                       timeout=settings.timeout_seconds)
            except asyncpg.UndefinedColumnError:  # an audit table made before via/client_addr existed
                plain += [_folded(e) for e in web]
        if plain:
            await pool.executemany(insert_sql(settings), [_row(e, False) for e in plain],
                                   timeout=settings.timeout_seconds)
    except asyncpg.UndefinedColumnError:
        return "the audit table has no entry_id column: run `costtop db init` as its owner"
    except asyncpg.ReadOnlySQLTransactionError:  # a hot standby (sources/replica.py)
        return "the database is a read-only standby: set audit_database_url to its primary"
    except PG_ERRORS as exc:
        return one_line(exc, (settings.database_url, settings.audit_database_url or ""))
    return None


async def drain(settings: Settings, pool: asyncpg.Pool | None, spool: AuditSpool,
                unconnected: str = "Postgres is not connected") -> tuple[int, str | None]:
    """Write what the spool holds: (rows still waiting, why they could not be written)."""
    entries = spool.pending()
    if not entries:
        return 0, None
    error = await write_entries(settings, pool, entries, unconnected)
    if error is not None:
        return len(entries), error
    try:  # only now, with the rows in the table, is the spool rewritten
        return spool.remove({e.entry_id for e in entries}), None
    except OSError as exc:  # all still there: written again later, and ON CONFLICT makes that a no-op
        return len(entries), f"written, but the local spool could not be rewritten: {exc.strerror or exc}"


class SwitchWriter:
    def __init__(self, settings: Settings, redis: RedisClient, pool: asyncpg.Pool | None,
                 operator: Operator | None = None, spool: AuditSpool | None = None) -> None:
        if settings.read_only:
            raise ReadOnlyError("costtop is read-only: no switch can be changed")
        self.settings = settings
        self.redis = redis
        self.pool = pool
        self.operator = operator or Operator.current()
        self.spool = spool or AuditSpool.for_settings(settings)
        self.unconnected = "Postgres is not connected"  # why `pool` is None, when it is (feed.py sets it)
        self.last_error: str | None = None  # why the last audit row did not reach the table
        self.spool_error: str | None = None  # why the local spool could not keep the last audit row

    async def apply(self, change: SwitchChange) -> WriteResult:
        if change.key is None and change.scope != "global" and change.target is None:
            # Calls without an agent (a NULL agent_id, shown as `(none)`) have no switch: the gateway
            # checks `kill:agent:{id}`, and no id would match a key written for None.
            article = "an" if change.scope[:1] in ("a", "e", "i", "o", "u") else "a"
            return WriteResult(False, f"Refused: calls without {article} {change.scope} have no {change.kind} switch",
                               False)
        key = change.key or switch_key(self.settings, change.kind, change.scope, change.target)
        value = switch_value(self.operator, change.reason) if change.action == "set" else None
        try:
            # A PING first: if Redis cannot be reached, the write was certainly never sent, so a
            # refused connection is NOT DONE rather than an ambiguous failure. On a cluster, the PING
            # goes to the node serving the key's slot.
            await ping_for(self.redis, encode_key(key))
        except REDIS_ERRORS as exc:
            return await self._failed(change, key, one_line(exc, (self.settings.redis_url,)))
        try:
            if value is not None:
                ttl = change.ttl_seconds if change.ttl_seconds and change.ttl_seconds > 0 else None
                done = await self.redis.set(encode_key(key), value, ex=ttl)
                outcome = "set" if done else "not set"
            else:
                removed = await self.redis.delete(encode_key(key))
                outcome = "removed" if removed else "was not set"
        except ResponseError as exc:  # Redis answered, and refused (read-only replica, OOM, ACL)
            return await self._failed(change, key, one_line(exc, (self.settings.redis_url,)))
        except REDIS_ERRORS as exc:
            # The command may have run and only its reply been lost: what Redis holds decides.
            return await self._reread(change, key, value, one_line(exc, (self.settings.redis_url,)),
                                      timed_out=isinstance(exc, (TimeoutError, RedisTimeoutError)))
        ok = outcome in ("set", "removed", "was not set")
        return await self._finish(change, key, Outcome.DONE if ok else Outcome.NOT_DONE, outcome, None,
                                  f"{describe(change)}: {visible_id(key)} {outcome}")

    async def _failed(self, change: SwitchChange, key: str, detail: str) -> WriteResult:
        return await self._finish(change, key, Outcome.NOT_DONE, "failed", detail,
                                  f"FAILED: {describe(change)}: Redis said {detail}")

    async def _reread(self, change: SwitchChange, key: str, value: str | None, error: str,
                      timed_out: bool = False) -> WriteResult:
        """After an ambiguous failure: GET the key (a set) or EXISTS it (a resume) under a timeout of
        its own, and report that. A different value is NOT DONE (someone else's switch is there). After
        a timeout, though, the command may still be on its way: a key not (yet) as it should be is
        UNKNOWN, never NOT DONE, since the kill may land a moment later."""
        try:
            async with asyncio.timeout(self.settings.timeout_seconds):
                if value is not None:
                    held = await self.redis.get(encode_key(key))
                    done = held == value.encode()
                    seen = "absent" if held is None else ("our value" if done else "another value")
                else:
                    done = not await self.redis.exists(encode_key(key))
                    seen = "absent" if done else "still set"
        except REDIS_ERRORS as exc:
            why = one_line(exc, (self.settings.redis_url,))
            detail = f"reply lost ({error}); re-read failed ({why})"
            return await self._finish(
                change, key, Outcome.UNKNOWN, "unknown", detail,
                f"UNKNOWN: {describe(change)}: {visible_id(key)} may or may not be "
                f"{'set' if value is not None else 'removed'}: {detail}; check it before acting again")
        detail = f"reply lost ({error}); re-read: {seen}"
        verb = "set" if value is not None else "removed"
        if timed_out and not done and seen in ("absent", "still set"):
            detail += " (the command timed out and may still arrive)"
            return await self._finish(
                change, key, Outcome.UNKNOWN, "unknown", detail,
                f"UNKNOWN: {describe(change)}: {visible_id(key)} not {verb} yet: {detail}; check it before "
                "acting again")
        result = verb if done else f"not {verb}"
        if done:
            return await self._finish(change, key, Outcome.DONE, result, detail,
                                      f"{describe(change)}: {visible_id(key)} {result} (Redis's reply was lost; "
                                      f"re-read shows it {result})")
        return await self._finish(change, key, Outcome.NOT_DONE, result, detail,
                                  f"FAILED: {describe(change)}: {visible_id(key)} {result}: {detail}")

    async def _finish(self, change: SwitchChange, key: str, outcome: Outcome, result: str, detail: str | None,
                      message: str) -> WriteResult:
        """Write the audit row with the observed outcome, and say in the message where it went."""
        written, kept = await self._audit(change, key, result, detail)
        if kept:
            message += f" (audit row kept in {self.spool.path}: written when Postgres takes it; {self.last_error})"
        elif not written:
            message += (f" (audit row NOT written: {self.last_error}, and the local spool {self.spool.path} "
                        f"could not keep it: {self.spool_error})")
        elif self.spool_error:
            message += f" (audit row written; the local spool {self.spool.path} cannot be written: {self.spool_error})"
        return WriteResult(outcome is Outcome.DONE, message, written, kept, outcome, self.spool_error)

    async def _audit(self, change: SwitchChange, key: str, result: str, detail: str | None) -> tuple[bool, bool]:
        """(written to the table, kept in the spool): the row goes to the spool first, so an outage
        or a crash between the two loses nothing, and leaves the spool once the table has it."""
        entry = AuditEntry.new(
            datetime.now(UTC), operator=self.operator.login, ssh_client=self.operator.ssh_client,
            action=f"{change.action}:{change.kind}", scope=change.scope, target=audit_text(change.target),
            key=audit_text(key), reason=clean(change.reason, 200) or None, ttl_seconds=change.ttl_seconds,
            result=result, detail=detail, via=self.operator.via, client_addr=self.operator.client_addr)
        self.spool_error = None
        try:
            self.spool.append(entry)
            spooled = True
        except OSError as exc:
            self.spool_error = exc.strerror or str(exc)
            spooled = False
        self.last_error = await write_entries(self.settings, self.pool, [entry], self.unconnected)
        if self.last_error is None:
            if spooled:
                try:
                    self.spool.remove({entry.entry_id})
                except OSError as exc:  # the row stays in the spool too: a later drain's INSERT is a no-op
                    self.spool_error = f"not rewritten: {exc.strerror or exc}"
            return True, False
        return False, spooled
