"""A read's rows become records in chunks, with the session's loop free between them (issue 17)."""

from __future__ import annotations

import asyncio

from costtop.config import Settings
from costtop.sources.postgres import DECODE_CHUNK, PostgresReader


async def test_a_big_read_is_turned_into_records_a_chunk_at_a_time() -> None:
    """At 10,000 calls/s a read is 10,000 rows: a request made meanwhile (a new order) runs after one
    chunk, not after all of them."""
    reader = PostgresReader(Settings())
    seen: list[object] = []

    def record(row: object) -> object:
        seen.append(row)
        return row

    reader.record = record  # type: ignore[method-assign,assignment]  # the rows' decoding is not what is tested
    asyncio.get_running_loop().call_soon(seen.append, "request")
    rows = list(range(DECODE_CHUNK * 3))
    assert await reader.records(rows) == rows  # type: ignore[arg-type]
    assert seen.index("request") == DECODE_CHUNK
