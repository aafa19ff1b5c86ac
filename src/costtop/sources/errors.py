"""Errors that sources raise; every message is one line, safe to show (no password)."""

from __future__ import annotations

import asyncpg


class SourceError(Exception):
    """A read or write failed."""


class TableMissing(SourceError):
    """The gateway's table or one of its required columns is not there."""


# What a Postgres call can raise when the server or the network misbehaves: the server's own errors,
# the client's (including its internal bookkeeping errors after a connection died mid-call), the
# socket's, and our deadlines.
PG_ERRORS: tuple[type[BaseException], ...] = (
    OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.exceptions.InternalClientError,
)


class WrongColumnType(TableMissing):
    """A column is there with a type costtop cannot read (column_types.py): refused at start."""
