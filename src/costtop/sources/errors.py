"""Errors that sources raise; every message is one line, safe to show (no password)."""


class SourceError(Exception):
    """A read or write failed."""


class TableMissing(SourceError):
    """The gateway's table or one of its required columns is not there."""
