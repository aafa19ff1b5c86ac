"""Errors that sources raise; every message is one line, safe to show (no password)."""

from __future__ import annotations


class SourceError(Exception):
    """A read or write failed."""


class TableMissing(SourceError):
    """The gateway's table or one of its required columns is not there."""


class WrongColumnType(TableMissing):
    """A column is there with a type costtop cannot read (column_types.py): refused at start."""
