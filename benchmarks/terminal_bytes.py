"""Bytes per second costtop writes to a real terminal at steady state, against a naive DataTable app.

    python -m benchmarks.terminal_bytes [--skip 15] [--measure 60] [--rate 200] [--agents 200]
                                        [--apps costtop naive] [--size 160x50] [--colorterm truecolor]

Each app runs in a real pseudo-terminal (pty.openpty, TIOCSWINSZ to --size, TERM=xterm-256color, no
COLORTERM unless --colorterm is given; the pty is the child's stdin, stdout, stderr and controlling
terminal, since Textual writes to stderr), at refresh 1 s. A thread drains the master side and
timestamps every read; the first --skip seconds are skipped and the bytes of the next --measure seconds
are counted. Nothing answers the terminal's queries (as with a terminal that does not support them).

- `costtop`: `python -m costtop --refresh 1` against fresh servers (`ServerPair`) with the schema,
  budgets, and the load generator (benchmarks/load.py) writing --rate calls/s over --agents agents;
- `demo`: `costtop demo --refresh 1` (its own servers and simulated fleet, 12 agents at 40 calls/s);
- `naive`: the tiny app at the end of this file: a DataTable of --agents rows with costtop's agent
  columns, where every second every row is removed and added again (`clear()` + `add_rows()`), with
  values that drift like a live fleet's.

costtop runs from a frozen copy of src/ (benchmarks/frozen.py). Prints bytes/s per app, write bursts
per second (reads more than 20 ms apart: roughly frames), cursor moves per second (one per run of cells
rewritten: ESC[row;colH, or ESC[colG along the same line, which costtop's ui/terminal_cells.py uses)
and synchronized-update blocks (ESC[?2026h, if the app emits them),
and writes benchmarks/results/terminal_bytes-<timestamp>.json. Not part of pytest.
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import json
import os
import pty
import random
import re
import signal
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks import frozen

RESULTS = Path(__file__).with_name("results")
SYNC_BEGIN = b"\x1b[?2026h"
CURSOR_MOVE = re.compile(rb"\x1b\[\d+;\d+H|\x1b\[\d+G")  # one before every run of cells rewritten
CURSOR_ROW = re.compile(rb"\x1b\[(\d+);\d+H")


@dataclass
class Drain:
    """Reads the master side until the child closes it, keeping (time, bytes) of every read."""

    master: int
    reads: list[tuple[float, bytes]] = field(default_factory=list)
    thread: threading.Thread | None = None

    def start(self) -> Drain:
        self.thread = threading.Thread(target=self._run, name="pty-drain", daemon=True)
        self.thread.start()
        return self

    def _run(self) -> None:
        while True:
            try:
                data = os.read(self.master, 65536)
            except OSError:  # EIO: the child side is closed
                return
            if not data:
                return
            self.reads.append((time.monotonic(), data))

    def window(self, since: float, until: float) -> bytes:
        return b"".join(data for t, data in list(self.reads) if since <= t < until)

    def bursts(self, since: float, until: float, gap: float = 0.02) -> int:
        """Groups of reads separated by more than `gap` seconds: roughly, the frames written."""
        times = [t for t, _ in list(self.reads) if since <= t < until]
        return sum(1 for i, t in enumerate(times) if i == 0 or t - times[i - 1] > gap)


def spawn_in_pty(argv: list[str], size: tuple[int, int], env: dict[str, str]) -> tuple[subprocess.Popen[bytes], int]:
    master, slave = pty.openpty()
    cols, rows = size
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    def controlling_tty() -> None:  # runs in the child after setsid (start_new_session)
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    try:
        proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True,
                                start_new_session=True, preexec_fn=controlling_tty)
    finally:
        os.close(slave)
    return proc, master


def stop_in_pty(proc: subprocess.Popen[bytes], master: int, quit_key: bytes | None) -> None:
    """`q` first (the app's own quit, which restores the terminal), then SIGTERM, then SIGKILL."""
    if proc.poll() is None and quit_key is not None:
        try:
            os.write(master, quit_key)
            proc.wait(15)
        except (OSError, subprocess.TimeoutExpired):
            pass
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def measure(argv: list[str], args: argparse.Namespace, env: dict[str, str], label: str) -> dict[str, Any]:
    cols, _, rows = args.size.partition("x")
    proc, master = spawn_in_pty(argv, (int(cols), int(rows)), env)
    drain = Drain(master).start()
    start = time.monotonic()
    try:
        print(f"{label}: running, skipping {args.skip:g} s then counting {args.measure:g} s", flush=True)
        while time.monotonic() - start < args.skip + args.measure:
            if proc.poll() is not None:
                raise RuntimeError(f"{label} exited early with code {proc.returncode}: "
                                   f"{drain.window(0, float('inf'))[-400:]!r}")
            time.sleep(0.2)
        since, until = start + args.skip, start + args.skip + args.measure
        data = drain.window(since, until)
        bursts = drain.bursts(since, until)
        total = drain.window(0, float("inf"))
    finally:
        stop_in_pty(proc, master, b"q")
        if drain.thread is not None:
            drain.thread.join(5)
        os.close(master)
    rows_touched = sorted({int(m.group(1)) for m in CURSOR_ROW.finditer(data)})
    if args.dump is not None:
        args.dump.mkdir(parents=True, exist_ok=True)
        (args.dump / f"{label}.bin").write_bytes(data)
        reads = [(round(t - since, 3), len(chunk)) for t, chunk in drain.reads if since <= t < until]
        (args.dump / f"{label}.reads.json").write_text(json.dumps(reads))
    return {
        "app": label, "command": " ".join(argv), "seconds": args.measure, "bytes": len(data),
        "screen_rows_touched": rows_touched,
        "bytes_per_s": round(len(data) / args.measure, 1),
        "sync_frames_per_s": round(data.count(SYNC_BEGIN) / args.measure, 2),
        "write_bursts_per_s": round(bursts / args.measure, 2),
        "bytes_per_burst": round(len(data) / bursts) if bursts else None,
        "cursor_moves_per_s": round(len(CURSOR_MOVE.findall(data)) / args.measure, 1),
        "agent_rows_seen": data.count(b"agent-"),  # names sent in the counted seconds (costtop sends a name again
        # only when its row moves)
        "agent_rows_on_screen": agent_rows_on_screen(total, int(cols), int(rows)),  # the table was drawn
        "bytes_first_skip_s": len(total) - len(data),
    }


def agent_rows_on_screen(written: bytes, cols: int, rows: int) -> int:
    """The lines that start with an agent's name on the screen all the bytes written make, in a VT100
    emulator (pyte): a sanity check that the table was drawn, not an error screen, whatever the app
    sends again per second."""
    import pyte

    screen = pyte.Screen(cols, rows)
    pyte.ByteStream(screen).feed(written)
    return sum(1 for line in screen.display if line.lstrip().startswith("agent-"))


def child_env(home: Path, colorterm: str | None) -> dict[str, str]:
    """TERM=xterm-256color; COLORTERM only if asked (SSH does not forward it by default, and with
    COLORTERM=truecolor every color is sent as a 24-bit escape, which is longer)."""
    env = dict(os.environ)
    env.update(TERM="xterm-256color", XDG_CONFIG_HOME=str(home), COSTTOP_DEMO_QUIET="1")
    for name in ("COLUMNS", "LINES", "COLORTERM", "COSTTOP_CONFIG", "COSTTOP_REDIS_URL", "COSTTOP_DATABASE_URL",
                 "COSTTOP_REFRESH", "COSTTOP_READ_ONLY", "TEXTUAL", "TEXTUAL_COLOR_SYSTEM", "NO_COLOR"):
        env.pop(name, None)
    if colorterm:
        env["COLORTERM"] = colorterm
    return env


def run_costtop(args: argparse.Namespace, env: dict[str, str]) -> dict[str, Any]:
    from benchmarks.load import Fleet, set_budgets
    from costtop.config import Settings
    from costtop.demo.run import prepare, stop_process
    from costtop.demo.servers import ServerPair

    pair = ServerPair.start(prefix="costtop-tty-")
    load: subprocess.Popen[bytes] | None = None
    try:
        settings = Settings(redis_url=pair.redis.url, database_url=pair.postgres.url)

        async def setup() -> None:
            await prepare(settings)
            await set_budgets(settings, Fleet(args.agents))

        asyncio.run(setup())
        load = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.load", "--redis-url", settings.redis_url, "--database-url",
             settings.database_url, "--rate", str(args.rate), "--agents", str(args.agents),
             "--seconds", str(args.skip + args.measure + 60)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        time.sleep(2)  # a few batches in, so the first screen already has agents
        argv = [sys.executable, "-m", "costtop", "--redis-url", settings.redis_url, "--database-url",
                settings.database_url, "--refresh", "1"]
        result = measure(argv, args, env, "costtop")
        result["load"] = {"rate": args.rate, "agents": args.agents}
        return result
    finally:
        stop_process(load)
        pair.stop()


# -- the naive app -------------------------------------------------------------------------------------------

def run_naive_app(agents: int, seed: int = 3) -> None:
    """A DataTable that clears and re-adds every row each second: what a quick dashboard does."""
    from textual.app import App, ComposeResult
    from textual.widgets import DataTable, Footer, Static

    rng = random.Random(seed)
    names = [f"agent-{i:04d}" for i in range(agents)]
    spend = {n: rng.uniform(0, 40) for n in names}
    calls = {n: rng.randint(0, 50_000) for n in names}
    errors = {n: rng.randint(0, 500) for n in names}
    budget = {n: 10 + 10 * (i % 7) for i, n in enumerate(names)}
    weight = {n: 1 / (1 + i) ** 0.8 for i, n in enumerate(names)}

    class NaiveApp(App[None]):
        BINDINGS = [("q", "quit", "Quit")]

        def compose(self) -> ComposeResult:
            yield Static("naive dashboard", id="header")
            yield DataTable(id="agents", cursor_type="row")
            yield Footer()

        def on_mount(self) -> None:
            table = self.query_one(DataTable)
            table.add_columns("Agent", "State", "Today", "$/min 5m", "Budget", "Calls", "Err", "p95 5m", "Why")
            self.tick()
            self.set_interval(1.0, self.tick)

        def tick(self) -> None:
            rows = []
            for n in names:
                new_calls = int(rng.expovariate(1 / (20 * weight[n])))
                calls[n] += new_calls
                errors[n] += sum(1 for _ in range(new_calls) if rng.random() < 0.03)
                rate = new_calls * rng.uniform(0.001, 0.02) * 60
                spend[n] += rate / 60
                used = spend[n] / budget[n]
                rows.append((n, "ok", f"${spend[n]:,.2f}", f"${rate:,.2f}", f"{'█' * min(8, int(used * 8)):<8} "
                             f"{used:4.0%}", f"{calls[n]:,}", str(errors[n]), f"{rng.randint(300, 9000):,} ms", ""))
            rows.sort(key=lambda r: -float(r[3][1:].replace(",", "")))
            table = self.query_one(DataTable)
            table.clear()
            table.add_rows(rows)
            self.query_one("#header", Static).update(f"naive dashboard — {time.strftime('%H:%M:%S')} — "
                                                     f"{sum(calls.values()):,} calls")

    NaiveApp().run()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skip", type=float, default=15, help="seconds not counted at start (default 15)")
    parser.add_argument("--measure", type=float, default=60, help="seconds counted (default 60)")
    parser.add_argument("--rate", type=float, default=200, help="load generator calls/s for `costtop`")
    parser.add_argument("--agents", type=int, default=200, help="agents (load generator and naive app)")
    parser.add_argument("--size", default="160x50", help="terminal COLUMNSxLINES (default 160x50)")
    parser.add_argument("--apps", nargs="+", choices=("costtop", "demo", "naive"), default=["costtop", "naive"])
    parser.add_argument("--out", type=Path, help="JSON path (default benchmarks/results/terminal_bytes-<ts>.json)")
    parser.add_argument("--colorterm", help="set COLORTERM in the terminal (e.g. truecolor; default unset)")
    parser.add_argument("--dump", type=Path, metavar="DIR", help="also write the counted bytes to DIR/<app>.bin")
    parser.add_argument("--no-freeze", action="store_true",
                        help="run costtop from src/ as it is (default: a frozen copy, see benchmarks/frozen.py)")
    parser.add_argument("--naive-app", action="store_true", help=argparse.SUPPRESS)  # the child process
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.naive_app:
        run_naive_app(args.agents)
        return 0
    return frozen.run("benchmarks.terminal_bytes", args, _main)


def _main(args: argparse.Namespace, source: dict[str, Any]) -> int:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="costtop-tty-home-") as home:
        env = child_env(Path(home), args.colorterm)
        for app in args.apps:
            try:
                if app == "costtop":
                    results.append(run_costtop(args, env))
                elif app == "demo":
                    results.append(measure([sys.executable, "-m", "costtop", "demo", "--refresh", "1"], args, env,
                                           "demo"))
                else:
                    results.append(measure([sys.executable, "-m", "benchmarks.terminal_bytes", "--naive-app",
                                            "--agents", str(args.agents)], args, env, "naive"))
            except RuntimeError as exc:
                print(f"{app}: FAILED: {exc}", flush=True)
                results.append({"app": app, "error": str(exc)})
    print(f"\n== terminal bytes at steady state ({args.size}, refresh 1 s, {args.measure:g} s after "
          f"{args.skip:g} s) ==")
    for r in results:
        if "error" in r:
            print(f"{r['app']}: FAILED: {r['error']}")
        else:
            print(f"{r['app']}: {r['bytes_per_s']:,.0f} bytes/s ({r['bytes']:,} bytes in {r['seconds']:g} s; "
                  f"{r['write_bursts_per_s']:g} write bursts/s of {r['bytes_per_burst']} bytes, "
                  f"{r['cursor_moves_per_s']:g} cursor moves/s (one per run of cells rewritten); "
                  f"{r['sync_frames_per_s']:g} synchronized-update frames/s)")
    out = args.out or RESULTS / f"terminal_bytes-{stamp}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    source = {**source, "live_src_changed_since": frozen.changed_since(source)}
    out.write_text(json.dumps({"timestamp": stamp, "args": {k: str(v) for k, v in vars(args).items()},
                               "source": source, "results": results}, indent=2) + "\n", encoding="utf-8")
    print(f"JSON: {out}")
    return 0 if all("error" not in r for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
