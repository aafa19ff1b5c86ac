"""Audit rows that must survive a Postgres outage: kept in a local file until the table has them.

Every audit row is appended (and fsynced) here before its INSERT is tried, with an id of its own and
the time of the change. `drain` inserts what the file holds with `ON CONFLICT DO NOTHING` (the entry
id is unique) and then drops what the table has, so a row is written exactly once even if costtop dies between
the INSERT and the rewrite of the file, or two costtop processes drain at once (the file is locked
while it is read or rewritten). A line that cannot be parsed is kept aside in `<file>.bad`, never
silently dropped.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

import platformdirs

from costtop.config import Settings

FIELDS = ("operator", "ssh_client", "action", "scope", "target", "key", "reason", "ttl_seconds", "result", "detail")


@dataclass(frozen=True, slots=True)
class AuditEntry:
    entry_id: str
    at: str  # ISO 8601 with its offset: when the switch changed, not when the row reached the table
    operator: str
    ssh_client: str | None
    action: str
    scope: str
    target: str
    key: str
    reason: str | None
    ttl_seconds: int | None
    result: str
    detail: str | None
    # Set for changes made through `costtop serve` (`web`, the browser's address); with defaults, so
    # lines spooled by an older costtop still load.
    via: str | None = None
    client_addr: str | None = None

    @classmethod
    def new(cls, at: datetime, **fields: object) -> AuditEntry:
        return cls(str(uuid.uuid4()), at.isoformat(), **fields)  # type: ignore[arg-type]


def default_path(database_url: str, table: str) -> Path:
    """One file per database and audit table: rows kept for one database are never written to
    another (the demo's, say). The password is not part of what names it."""
    parts = urlsplit(database_url)
    where = f"{parts.hostname}:{parts.port}/{parts.path.lstrip('/')}?{parts.query}#{table}"
    digest = hashlib.sha256(where.encode("utf-8", "surrogateescape")).hexdigest()[:16]
    return Path(platformdirs.user_state_dir("costtop")) / f"audit-pending-{digest}.jsonl"


class AuditSpool:
    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def for_settings(cls, settings: Settings) -> AuditSpool:
        if settings.audit_spool:
            return cls(Path(settings.audit_spool).expanduser())
        table = f"{settings.tables.schema_name}.{settings.tables.audit}"
        return cls(default_path(settings.database_url, table))

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_suffix(".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def append(self, entry: AuditEntry) -> None:
        """Durable before it returns: the row is on disk even if the INSERT that follows never runs."""
        line = json.dumps(asdict(entry), ensure_ascii=True) + "\n"
        with self._locked(), open(self.path, "a", encoding="ascii") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())

    def pending(self) -> list[AuditEntry]:
        with self._locked():
            return self._read()

    def count(self) -> int:
        try:
            return len(self.pending())
        except OSError:
            return 0

    def _read(self) -> list[AuditEntry]:
        try:
            lines = self.path.read_text(encoding="ascii", errors="replace").splitlines()
        except FileNotFoundError:
            return []
        entries, bad = [], []
        for line in lines:
            if not line.strip():
                continue
            try:
                entry = AuditEntry(**json.loads(line))
                uuid.UUID(entry.entry_id), datetime.fromisoformat(entry.at)  # what the INSERT will need
                entries.append(entry)
            except (ValueError, TypeError):
                bad.append(line)
        if bad:  # a torn or foreign line: set aside where an operator can read it, and never retried
            with open(self.path.with_suffix(".bad"), "a", encoding="ascii", errors="replace") as f:
                f.write("\n".join(bad) + "\n")
            self._write(entries)
        return entries

    def _write(self, entries: list[AuditEntry]) -> None:
        """Replace the file atomically: a crash leaves the old file or the new one, never half of one."""
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "w", encoding="ascii") as f:
            f.writelines(json.dumps(asdict(e), ensure_ascii=True) + "\n" for e in entries)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)

    def remove(self, written: set[str]) -> int:
        """Drop the entries the table now has; how many are left."""
        with self._locked():
            left = [e for e in self._read() if e.entry_id not in written]
            if left:
                self._write(left)
            else:
                with contextlib.suppress(FileNotFoundError):
                    self.path.unlink()
            return len(left)
