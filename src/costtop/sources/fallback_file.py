"""The gateway's fallback file: rows Postgres refused, one JSON object a line, waiting to be drained.

The seed's gateway (llm-cost-flow) writes a row it cannot insert to a local JSONL file and drains it
back within an hour; a file that grows or ages is the first sign that rows are not reaching the table.
This module holds both sides of the file's format, so the Python gateway (costtop.gateway) writes
exactly what this reader counts:

- a line is one JSON object whose keys are the contract's logical column names (`created_at`,
  `agent_id`, `tool_name`, `latency_ms`, the optional ones); `created_at` is ISO 8601 with an offset;
  `cost_usd` is a decimal string (a float would drift); `commit_unknown: true` marks rows whose insert
  may have committed (the reply to COMMIT was lost), which the drain inserts only if no equal row exists;
- while a file is drained it is renamed `{path}.draining-{batch}`: a glob such as `fallback.jsonl*`
  counts those lines too, and nothing is counted twice (files are followed by inode, not by name).

The reader is incremental: it remembers, per file (device and inode), the offset it has read to and
what it found, and reads only the bytes appended since, at most READ_BUDGET bytes a refresh. A file
truncated or replaced under it is read again from the start; one it cannot open is said by name.
Nothing here raises: every odd line is counted as malformed.
"""

from __future__ import annotations

import glob
import json
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from costtop.sources.records import FallbackState
from costtop.text import clean

# The contract's columns as the gateway writes them, in order (config.REQUIRED_COLUMNS + optional).
FALLBACK_COLUMNS = ("created_at", "agent_id", "tool_name", "latency_ms", "provider", "model", "tokens_in",
                    "tokens_out", "cached_tokens", "cost_usd", "status", "error_code", "trace_id", "span_id",
                    "parent_span_id")
DRAINING_INFIX = ".draining-"
MAX_LINE_BYTES = 1 << 20  # a longer line is no row a gateway wrote: counted as malformed, skipped unread
READ_BUDGET = 4 << 20  # bytes read per file per refresh: a large backlog is caught up over a few seconds


def encode_row(row: dict[str, Any]) -> bytes:
    """One line of the file (with its newline): datetimes in ISO 8601, Decimals as strings."""
    def default(value: object) -> str:
        if isinstance(value, datetime):
            return value.isoformat()
        if isinstance(value, Decimal):
            return str(value)
        raise TypeError(f"cannot write {type(value).__name__} to the fallback file")

    return json.dumps(row, default=default, ensure_ascii=True, separators=(",", ":")).encode() + b"\n"


def parse_line(line: bytes) -> dict[str, Any] | None:
    """The row a line holds, with `created_at` as an aware datetime; None for anything else (not UTF-8,
    not JSON, not an object, no readable time stamp, no agent or tool)."""
    try:
        row = json.loads(line)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    if not isinstance(row, dict):
        return None
    stamp = row.get("created_at")
    if not isinstance(stamp, str):
        return None
    try:
        when = datetime.fromisoformat(stamp)
    except ValueError:
        return None
    row["created_at"] = when if when.tzinfo is not None else when.replace(tzinfo=UTC)
    return row


@dataclass(slots=True)
class _Followed:
    """One file as far as it has been read."""

    size_seen: int = 0
    offset: int = 0
    lines: int = 0
    malformed: int = 0
    oldest: datetime | None = None
    skipping: bool = False  # inside an over-long line: everything up to the next newline is skipped


@dataclass
class FallbackReader:
    """Follows the files a glob names; `read()` is cheap when nothing changed (one stat per file)."""

    pattern: str
    budget: int = READ_BUDGET
    bytes_read: int = 0  # in total, for tests and benchmarks: the work done is bounded
    _files: dict[tuple[int, int], _Followed] = field(default_factory=dict)

    def read(self) -> FallbackState:
        errors: list[str] = []
        directory = Path(self.pattern).parent
        if not os.access(directory, os.R_OK | os.X_OK):
            return FallbackState(self.pattern, error=f"cannot list {clean(str(directory), 80)}")
        seen: dict[tuple[int, int], _Followed] = {}
        for name in sorted(glob.glob(self.pattern)):
            try:
                stat = os.stat(name)
            except OSError:
                continue  # drained (deleted or renamed) between the listing and the stat
            if not os.path.isfile(name):
                errors.append(f"{clean(os.path.basename(name), 40)} is not a file")
                continue
            key = (stat.st_dev, stat.st_ino)
            followed = self._files.get(key) or seen.get(key) or _Followed()
            if stat.st_size < followed.offset:
                followed = _Followed()  # truncated (or rewritten smaller): read it again
            if stat.st_size > followed.offset:
                try:
                    self._advance(name, followed, key)
                except OSError as exc:
                    errors.append(f"{clean(os.path.basename(name), 40)}: {exc.strerror or exc}")
                    continue
            followed.size_seen = stat.st_size
            seen[key] = followed
        self._files = seen  # files drained away are forgotten
        oldest = [f.oldest for f in seen.values() if f.oldest is not None]
        return FallbackState(
            self.pattern, files=len(seen), lines=sum(f.lines for f in seen.values()),
            malformed=sum(f.malformed for f in seen.values()), oldest=min(oldest) if oldest else None,
            caught_up=all(f.offset >= f.size_seen for f in seen.values()),
            error="; ".join(errors[:3]) if errors else None)

    def _advance(self, name: str, followed: _Followed, key: tuple[int, int]) -> None:
        with open(name, "rb") as handle:
            opened = os.fstat(handle.fileno())
            if (opened.st_dev, opened.st_ino) != key:
                return  # replaced between the stat and the open: the next read sees the new one
            handle.seek(followed.offset)
            chunk = handle.read(self.budget)
        self.bytes_read += len(chunk)
        start = 0
        while start < len(chunk):
            end = chunk.find(b"\n", start)
            if end < 0:
                # A line still being written, or one too long to be a row: the latter is skipped.
                if len(chunk) - start > MAX_LINE_BYTES and not followed.skipping:
                    followed.skipping = True
                    followed.lines += 1
                    followed.malformed += 1
                if followed.skipping:
                    start = len(chunk)
                break
            line = chunk[start:end]
            start = end + 1
            if followed.skipping:
                followed.skipping = False  # the over-long line ends here; it was counted when found
                continue
            if not line.strip():
                continue
            followed.lines += 1
            row = parse_line(line) if len(line) <= MAX_LINE_BYTES else None
            if row is None:
                followed.malformed += 1
            elif followed.oldest is None or row["created_at"] < followed.oldest:
                followed.oldest = row["created_at"]
        followed.offset += start
