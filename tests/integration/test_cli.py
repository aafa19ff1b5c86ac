"""The command line as a user meets it: one-line errors, `db init`, and `costtop demo` start to finish."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import pty
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

from costtop.cli import main
from costtop.demo.servers import children_of, free_port
from costtop.sources.audit_spool import AuditEntry, AuditSpool, default_path


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "costtop", *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})}, stdin=subprocess.DEVNULL)


def test_bad_redis_url_is_one_line() -> None:
    result = run_cli("--redis-url", "htp://x")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "redis URL must start with redis://" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_refresh_and_config_file(tmp_path: Path) -> None:
    result = run_cli("--refresh", "0")
    assert result.returncode == 2 and "refresh must be between" in result.stderr
    bad = tmp_path / "c.toml"
    bad.write_text("refresh = [oops")
    result = run_cli("--config", str(bad))
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and str(bad) in result.stderr
    missing = run_cli("--config", str(tmp_path / "nope.toml"))
    assert missing.returncode == 2 and "does not exist" in missing.stderr


def test_db_init_twice_then_refused_connection(empty_db_url: str) -> None:
    first = run_cli("db", "init", "--database-url", empty_db_url)
    assert first.returncode == 0, first.stderr
    assert "tool_calls: created" in first.stdout and "costtop_audit: created" in first.stdout
    second = run_cli("db", "init", "--database-url", empty_db_url)
    assert second.returncode == 0 and "tool_calls: exists, left unchanged" in second.stdout
    refused = run_cli("db", "init", "--database-url", f"postgresql://u:pw123@127.0.0.1:{free_port()}/x")
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1
    assert "pw123" not in refused.stderr and "Traceback" not in refused.stderr


def test_db_init_created_the_indexes(empty_db_url: str) -> None:
    assert main(["db", "init", "--database-url", empty_db_url]) == 0

    async def index_names() -> set[str]:
        conn = await asyncpg.connect(empty_db_url)
        try:
            rows = await conn.fetch("SELECT indexname FROM pg_indexes WHERE tablename = 'tool_calls'")
        finally:
            await conn.close()
        return {r["indexname"] for r in rows}

    names = asyncio.run(index_names())
    assert {"tool_calls_created_at_idx", "tool_calls_agent_created_idx", "tool_calls_trace_idx"} <= names


class Terminal:
    """A command in a real pseudo-terminal of 140x40, with everything it writes kept in `output`."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 140, 0, 0))
        self.master = master
        self.proc = subprocess.Popen([sys.executable, "-m", "costtop", *args], stdin=slave, stdout=slave,
                                     stderr=slave, env={**env, "TERM": "xterm-256color", "COSTTOP_CONFIG": ""},
                                     start_new_session=True)
        os.close(slave)
        self.output = bytearray()
        self._stop = threading.Event()
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        while not self._stop.is_set():
            try:
                chunk = os.read(self.master, 65536)
            except OSError:
                return
            if not chunk:
                return
            self.output.extend(chunk)

    def wait_for(self, text: bytes, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while text not in self.output and time.monotonic() < deadline:
            time.sleep(0.2)
        assert text in self.output, self.output[-2000:].decode(errors="replace")

    def press(self, keys: bytes) -> None:
        os.write(self.master, keys)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._stop.set()
        os.close(self.master)


def test_demo_starts_runs_and_cleans_up_on_q() -> None:
    """`costtop demo` in a real pseudo-terminal: it draws, writes rows, and on `q` leaves nothing behind."""
    # The servers run as an unprivileged user when the tests run as root: the directory must be
    # reachable by them, which pytest's own tmp_path (under a 0700 folder) is not.
    tmp = Path(tempfile.mkdtemp(prefix="costtop-demo-test-", dir="/tmp"))
    os.chmod(tmp, 0o755)
    term = Terminal(["demo", "--incident-after", "5"], {**os.environ, "TMPDIR": str(tmp)})
    try:
        term.wait_for(b"research-bot", 60)
        demo_dirs = [p for p in tmp.iterdir() if p.name.startswith("costtop-demo-")]
        assert len(demo_dirs) == 1
        children = children_of(term.proc.pid)
        assert len(children) >= 3  # redis-server, postgres, the simulator
        term.press(b"q")
        assert term.proc.wait(30) == 0
    finally:
        term.close()
    assert not demo_dirs[0].exists()
    tmp.rmdir()  # fails if the demo left anything behind
    time.sleep(0.5)
    for child in children:
        assert not Path(f"/proc/{child}").exists() or "zombie" in Path(f"/proc/{child}/status").read_text().lower()


def test_quitting_with_audit_rows_still_waiting_says_where_they_are(redis_url: str) -> None:
    """A spool left with one row for a Postgres that is down: costtop runs, and on `q` says so."""
    db = f"postgresql://postgres@127.0.0.1:{free_port()}/gone"
    env = dict(os.environ)  # XDG_STATE_HOME: the test's own
    spool = AuditSpool(default_path(db, "public.costtop_audit"))
    spool.append(AuditEntry.new(datetime.now(UTC), operator="o", ssh_client=None, action="set:kill", scope="global",
                                target="*", key="kill:global", reason=None, ttl_seconds=None, result="set",
                                detail=None))
    assert str(spool.path).startswith(os.environ["XDG_STATE_HOME"])
    term = Terminal(["--redis-url", redis_url, "--database-url", db], env)
    try:
        term.wait_for(b"waiting for Postgres", 30)  # the header counts it while running
        term.press(b"q")
        assert term.proc.wait(30) == 0
        time.sleep(0.3)
    finally:
        term.close()
    text = term.output.decode(errors="replace")
    assert f"costtop: 1 audit row could not be written to Postgres; kept in {spool.path}" in text
    assert len(spool.pending()) == 1


async def ws_status(url: str, origin: str | None) -> int:
    import aiohttp

    async with aiohttp.ClientSession() as session:
        try:
            async with session.ws_connect(url, origin=origin, timeout=aiohttp.ClientWSTimeout(ws_close=2)):
                return 101
        except aiohttp.WSServerHandshakeError as exc:
            return exc.status


def http_get(url: str) -> tuple[int, str]:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


class Serve:
    """`costtop serve` in its own process group; `url` is the line it printed, once it answers."""

    def __init__(self, *args: str, redis_url: str, db_url: str) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "costtop", "serve", *args, "--redis-url", redis_url,
                                      "--database-url", db_url], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     env={**os.environ, "COSTTOP_CONFIG": ""}, start_new_session=True)
        assert self.proc.stdout is not None
        self.first_line = self.proc.stdout.readline().decode()
        self.url = self.first_line.split()[2] if self.first_line.startswith("costtop serve: http") else ""
        deadline = time.monotonic() + 30
        while self.url and time.monotonic() < deadline:
            try:
                http_get(self.url)
                break
            except OSError:
                time.sleep(0.3)

    def close(self) -> str:
        os.killpg(self.proc.pid, 15)
        return self.first_line + self.proc.communicate(timeout=10)[0].decode(errors="replace")


def test_serve_answers_on_its_port_with_the_app_page(redis_url: str, db_url: str) -> None:
    from urllib.parse import parse_qs, urlsplit

    port = free_port()
    serve = Serve("--port", str(port), redis_url=redis_url, db_url=db_url)
    try:
        assert serve.url.startswith(f"http://127.0.0.1:{port}/?token=")
        token = parse_qs(urlsplit(serve.url).query)["token"][0]
        assert len(token) >= 43  # 32 random bytes
        status, page = http_get(serve.url)
        # textual-serve's page: its terminal script, the app's title, and the websocket that runs the app.
        assert status == 200 and "static/js/textual.js" in page and "costtop</div>" in page
        assert f'data-session-websocket-url="ws://127.0.0.1:{port}/ws/{token}"' in page
        # Without the token (or with another), no page and no session.
        assert http_get(f"http://127.0.0.1:{port}/")[0] == 403
        assert http_get(f"http://127.0.0.1:{port}/?token={token[:-1]}x")[0] == 403
        mine = f"http://127.0.0.1:{port}"
        assert asyncio.run(ws_status(f"ws://127.0.0.1:{port}/ws", mine)) == 403
        assert asyncio.run(ws_status(f"ws://127.0.0.1:{port}/ws/{token[:-1]}x", mine)) == 403
        # A session opened from another site's page is refused before any costtop process starts.
        assert asyncio.run(ws_status(f"ws://127.0.0.1:{port}/ws/{token}", "https://evil.example")) == 403
        assert asyncio.run(ws_status(f"ws://127.0.0.1:{port}/ws/{token}", None)) == 403
        assert children_of(serve.proc.pid) == []
    finally:
        out = serve.close()
    assert f"costtop serve: http://127.0.0.1:{port}/?token={token} (read-only)" in out


def test_a_serve_session_runs_as_the_web_view_for_its_address_and_the_token_stays_in_serve(
        redis_url: str, db_url: str) -> None:
    """A raw websocket client with the token gets a costtop process told COSTTOP_VIA=web and the
    client's address (what the writer puts in the audit row); the token is on no command line and
    not in the session's environment."""
    import aiohttp

    port = free_port()
    serve = Serve("--port", str(port), "--allow-writes", redis_url=redis_url, db_url=db_url)
    token = serve.url.rsplit("=", 1)[-1]

    async def session() -> tuple[dict[str, str], str]:
        async with aiohttp.ClientSession() as client, client.ws_connect(
                f"ws://127.0.0.1:{port}/ws/{token}", origin=f"http://localhost:{port}"):
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                for pid in children_of(serve.proc.pid):
                    with contextlib.suppress(OSError):
                        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
                        # A child caught between fork and exec still shows serve's own command line
                        # and environment: wait for the session's costtop, which is not `serve`.
                        if "-m costtop" in cmdline and " serve " not in cmdline:
                            raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
                            env = dict(e.decode(errors="replace").partition("=")[::2] for e in raw if e)
                            return env, cmdline
                await asyncio.sleep(0.2)
            raise AssertionError("no costtop process for the session")

    try:
        assert "(kill and resume allowed)" in serve.first_line
        env, cmdline = asyncio.run(session())
        serve_cmdline = Path(f"/proc/{serve.proc.pid}/cmdline").read_bytes().decode(errors="replace")
    finally:
        serve.close()
    assert (env.get("COSTTOP_VIA"), env.get("COSTTOP_CLIENT")) == ("web", "127.0.0.1")
    assert "--read-only" not in cmdline
    assert token not in cmdline and token not in serve_cmdline
    assert not any(token in value for value in env.values())


def test_serve_refuses_writes_on_an_address_other_than_loopback(redis_url: str, db_url: str) -> None:
    """No TLS: the token would cross the network in clear. 192.0.2.1 (a documentation address) is
    never bound: the refusal comes first."""
    result = subprocess.run([sys.executable, "-m", "costtop", "serve", "--host", "192.0.2.1", "--allow-writes",
                             "--redis-url", redis_url, "--database-url", db_url], capture_output=True, text=True,
                            timeout=60, env={**os.environ, "COSTTOP_CONFIG": ""})
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith("costtop: serve: --allow-writes on 192.0.2.1 (not loopback) without TLS is "
                                    "refused") and result.stderr.count("\n") == 1


def test_serve_on_ipv6_loopback_prints_a_bracketed_url_and_accepts_its_own_origin(
        redis_url: str, db_url: str) -> None:
    port = free_port()
    serve = Serve("--host", "::1", "--port", str(port), redis_url=redis_url, db_url=db_url)
    try:
        assert serve.url.startswith(f"http://[::1]:{port}/?token=")
        token = serve.url.rsplit("=", 1)[-1]
        status, page = http_get(serve.url)
        assert status == 200 and f'data-session-websocket-url="ws://[::1]:{port}/ws/{token}"' in page
        assert f'href="http://[::1]:{port}/static/css/xterm.css"' in page
        assert asyncio.run(ws_status(f"ws://[::1]:{port}/ws/{token}", f"http://[::1]:{port}")) == 101
        assert asyncio.run(ws_status(f"ws://[::1]:{port}/ws/{token}", "http://[::2]:1")) == 403
    finally:
        serve.close()


async def test_serve_on_every_address_takes_the_origin_the_browser_used() -> None:
    """`--host 0.0.0.0`: the page and the websocket use the name the browser reached us by, and only
    that origin is accepted. The app runs on a loopback socket here, with the 0.0.0.0 configuration."""
    import aiohttp
    from aiohttp import web

    from costtop.serve import TokenServer, session_url

    port = free_port()
    server = TokenServer("true", host="0.0.0.0", port=port, token="t0ken", title="costtop")
    assert session_url("0.0.0.0", port, "t0ken") == f"http://127.0.0.1:{port}/?token=t0ken"
    runner = web.AppRunner(await server._make_app())
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        async with aiohttp.ClientSession() as client:
            async with client.get(f"http://127.0.0.1:{port}/?token=t0ken", headers={"Host": f"box.lan:{port}"}) as r:
                page = await r.text()
            assert r.status == 200 and f'data-session-websocket-url="ws://box.lan:{port}/ws/t0ken"' in page
        assert await ws_status(f"ws://127.0.0.1:{port}/ws/t0ken", f"http://127.0.0.1:{port}") == 101
        assert await ws_status(f"ws://127.0.0.1:{port}/ws/t0ken", f"http://box.lan:{port}") == 403
        assert await ws_status(f"ws://127.0.0.1:{port}/ws/nope", f"http://127.0.0.1:{port}") == 403
    finally:
        await runner.cleanup()


