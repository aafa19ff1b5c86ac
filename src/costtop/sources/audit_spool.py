"""Audit rows that must survive a Postgres outage: kept in a local file until the table has them.

Every audit row is appended (and fsynced) here before its INSERT is tried, with an id of its own and
the time of the change. `drain` inserts what the file holds with `ON CONFLICT DO NOTHING` (the entry
id is unique) and then drops what the table has, so a row is written exactly once even if costtop dies between
the INSERT and the rewrite of the file, or two costtop processes drain at once (the file is locked
while it is read or rewritten). A line that cannot be parsed is kept aside in `<file>.bad`, never
silently dropped.

A full disk is a fault like any other: an append that fails is cut back to the last newline (so the
next append is not glued to half a line), an append after a torn line starts on a line of its own,
the file is rewritten only after its rows are in the table (never while reading it), and a failed
rewrite leaves the old file whole and no temporary file behind. `error` says the last such failure.
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
        self.error: str | None = None  # why the file could not be written, the last time it was not

    @classmethod
    def for_settings(cls, settings: Settings) -> AuditSpool:
        if settings.audit_spool:
            return cls(Path(settings.audit_spool).expanduser())
        table = f"{settings.tables.schema_name}.{settings.tables.audit}"
        return cls(default_path(settings.audit_database_url or settings.database_url, table))  # where they go

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
        line = (json.dumps(asdict(entry), ensure_ascii=True) + "\n").encode("ascii")
        try:
            with self._locked():
                _append(self.path, line)
        except OSError as exc:
            self.error = exc.strerror or str(exc)
            raise
        self.error = None

    def pending(self) -> list[AuditEntry]:
        """The rows to insert. Reading never rewrites the file (that waits until the table has them);
        torn lines are copied to `.bad` if that can be done now, and again at the next rewrite if not."""
        with self._locked():
            entries, bad = self._read()
            if bad:
                with contextlib.suppress(OSError):
                    self._set_aside(bad)
            return entries

    def count(self) -> int:
        try:
            return len(self.pending())
        except OSError:
            return 0

    def _read(self) -> tuple[list[AuditEntry], list[str]]:
        try:
            lines = self.path.read_text(encoding="ascii", errors="replace").splitlines()
        except FileNotFoundError:
            return [], []
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
        return entries, bad

    def _set_aside(self, bad: list[str]) -> None:
        """A torn or foreign line, where an operator can read it and never retried. Each line once,
        however many times this runs (a rewrite of the spool that failed after it, say)."""
        aside = self.path.with_suffix(".bad")
        try:
            there = set(aside.read_text(encoding="ascii", errors="replace").splitlines())
        except FileNotFoundError:
            there = set()
        new = [line for line in dict.fromkeys(bad) if line not in there]
        if new:
            _append(aside, ("\n".join(new) + "\n").encode("ascii", "replace"))

    def _write(self, entries: list[AuditEntry]) -> None:
        """Replace the file atomically: a failure (a full disk) or a crash leaves the old file or the
        new one, never half of one, and no temporary file taking the space that is short."""
        tmp = self.path.with_suffix(".tmp")
        try:
            with open(tmp, "wb") as f:
                f.writelines(json.dumps(asdict(e), ensure_ascii=True).encode("ascii") + b"\n" for e in entries)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except OSError:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise

    def remove(self, written: set[str]) -> int:
        """Drop the entries the table now has, and set torn lines aside; how many are left. If this
        fails, the file is as it was: its rows are inserted again later, a no-op (ON CONFLICT)."""
        try:
            with self._locked():
                entries, bad = self._read()
                if bad:
                    self._set_aside(bad)
                left = [e for e in entries if e.entry_id not in written]
                if left:
                    if len(left) < len(entries) or bad:
                        self._write(left)
                else:
                    with contextlib.suppress(FileNotFoundError):
                        self.path.unlink()
        except OSError as exc:
            self.error = exc.strerror or str(exc)
            raise
        self.error = None
        return len(left)


def _append(path: Path, data: bytes) -> None:
    """Append whole lines or nothing: a write cut short (ENOSPC, EFBIG) is truncated back to where it
    began, and a file that ends in a torn line (a crash) gets a newline first, so no line is glued
    to another. fsynced before it returns."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        start = os.fstat(fd).st_size
        if start and _last_byte(path, start) != b"\n":
            data = b"\n" + data
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        except OSError:
            with contextlib.suppress(OSError):  # shrinking needs no space: this works on a full disk
                os.ftruncate(fd, start)
                os.fsync(fd)
            raise
    finally:
        os.close(fd)


def _last_byte(path: Path, size: int) -> bytes:
    with open(path, "rb") as f:
        f.seek(size - 1)
        return f.read(1)
