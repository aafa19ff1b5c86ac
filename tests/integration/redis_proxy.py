"""A TCP proxy in front of the real Redis that loses the reply to a write, for the write-path tests.

It is the fault a network or a failover produces: the command reaches Redis (or does not) and the
client never hears back. Reads (PING, GET, EXISTS) pass through, unless `refuse_after_drop` is set.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

WRITES = (b"\r\n$3\r\nSET\r\n", b"\r\n$3\r\nDEL\r\n")


@dataclass
class LossyProxy:
    upstream_port: int
    mode: str  # "drop_reply": forward, then close before the reply; "swallow": close, never forward;
    # "hold_reply": forward, and keep the reply back (the client times out); "late": hold the write back
    # for `late_seconds`, then forward it (it lands after the client gave up and re-read the key)
    refuse_after_drop: bool = False  # once a write was lost, close every new connection at once
    late_seconds: float = 1.5
    dropped: int = 0
    server: asyncio.Server | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def port(self) -> int:
        assert self.server is not None
        return self.server.sockets[0].getsockname()[1]

    async def start(self) -> LossyProxy:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def close(self) -> None:
        assert self.server is not None
        self.server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.refuse_after_drop and self.dropped:
            writer.close()
            return
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        lose = asyncio.Event()  # the next reply from Redis is a write's: it must not reach the client

        async def to_redis() -> None:
            while data := await reader.read(65536):
                if any(w in data for w in WRITES):
                    self.dropped += 1
                    if self.mode == "swallow":
                        break
                    if self.mode == "late":
                        await asyncio.sleep(self.late_seconds)
                    lose.set()
                up_writer.write(data)
                await up_writer.drain()
            writer.close()
            up_writer.close()

        async def to_client() -> None:
            while data := await up_reader.read(65536):
                if lose.is_set():
                    if self.mode == "drop_reply":
                        break
                    continue  # hold_reply: the client waits, and times out
                writer.write(data)
                await writer.drain()
            writer.close()
            up_writer.close()

        tasks = {asyncio.create_task(to_redis()), asyncio.create_task(to_client())}
        self._tasks |= tasks
        with contextlib.suppress(ConnectionError, OSError):
            await asyncio.gather(*tasks)
        self._tasks -= tasks
