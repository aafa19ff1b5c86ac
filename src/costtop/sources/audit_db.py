"""Where costtop's audit rows are written: the database it reads, or the primary of a standby it reads.

On a hot standby (sources/replica.py) every INSERT is refused ("read-only transaction"). With
`audit_database_url` set, the rows go to that database (the primary) through a pool of their own,
opened at the first write or drain and opened again after a failure; the reads stay on the standby.
Without it, the rows are tried on the database read: a standby refuses them, and they wait in the
local spool (audit_spool.py) with that reason, while the switch itself is written to Redis as ever.
"""

from __future__ import annotations

import asyncio

import asyncpg

from costtop.config import Settings
from costtop.sources.postgres import PG_ERRORS
from costtop.text import mask_url, one_line

UNCONNECTED = "Postgres is not connected"


class AuditDatabase:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._pool: asyncpg.Pool | None = None
        self.why = UNCONNECTED  # why `pool` returned None, in one line

    async def pool(self, reader_pool: asyncpg.Pool | None) -> asyncpg.Pool | None:
        """The pool audit rows go through: the reader's, or the audit database's own; None and `why`."""
        url = self.settings.audit_database_url
        if url is None:
            self.why = UNCONNECTED
            return reader_pool
        if self._pool is None:
            timeout = self.settings.timeout_seconds
            try:
                async with asyncio.timeout(timeout * 2):
                    self._pool = await asyncpg.create_pool(
                        url, min_size=1, max_size=1, timeout=timeout, command_timeout=timeout,
                        server_settings={"application_name": "costtop audit"})
            except (*PG_ERRORS, ValueError) as exc:
                self.why = f"audit database {mask_url(url)} unreachable: {one_line(exc, (url,))}"
                return None
        return self._pool

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            try:
                await asyncio.wait_for(pool.close(), self.settings.timeout_seconds)
            except PG_ERRORS:
                pool.terminate()
