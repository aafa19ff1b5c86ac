"""Run a benchmark against one frozen copy of costtop's source.

The source tree can change while a benchmark runs (other work in progress), and every child process
imports costtop when it starts: without a copy, the 2,000 calls/s run and the 10,000 calls/s run can
measure different code. `ensure()` copies src/ to a temporary directory, records the git commit, the
modified files under src/ and a hash of the copy, and re-executes the benchmark with that copy first
on PYTHONPATH (the editable install's .pth entry comes after PYTHONPATH), so the benchmark and all its
children import the same code. `cleanup()` removes the copy.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

REPO = Path(__file__).resolve().parent.parent
ENV = "COSTTOP_BENCH_FROZEN_SRC"


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def tree_hash(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _exit_on_term(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def ensure(module: str, freeze: bool = True) -> dict[str, Any]:
    """In the first process: freeze and re-exec (does not return). In the re-executed one: the info."""
    # SIGTERM (`timeout`, a closed session) unwinds like Ctrl-C, so every `finally` stops what the
    # benchmark started and the copy is removed.
    signal.signal(signal.SIGTERM, _exit_on_term)
    frozen = os.environ.get(ENV)
    if frozen:
        return json.loads((Path(frozen) / "info.json").read_text())
    info: dict[str, Any] = {
        "git_commit": _git("rev-parse", "HEAD"),
        "src_modified": [line for line in _git("status", "--porcelain", "--", "src").splitlines() if line],
    }
    if not freeze:
        info.update(frozen=False, src_hash=tree_hash(REPO / "src" / "costtop"))
        return info
    root = Path(tempfile.mkdtemp(prefix="costtop-bench-src-"))
    shutil.copytree(REPO / "src" / "costtop", root / "src" / "costtop",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    info.update(frozen=True, src_copy=str(root / "src"), src_hash=tree_hash(root / "src" / "costtop"))
    (root / "info.json").write_text(json.dumps(info))
    env = dict(os.environ)
    env[ENV] = str(root)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(root / "src"), str(REPO), env.get("PYTHONPATH")) if p)
    sys.stdout.flush()
    sys.stderr.flush()
    os.chdir(REPO)
    os.execve(sys.executable, [sys.executable, "-m", module, *sys.argv[1:]], env)


def run(module: str, args: Any, body: Callable[[Any, dict[str, Any]], int]) -> int:
    """Run `body(args, info)` from a frozen copy of src/ (unless args.no_freeze), then remove the copy."""
    info = ensure(module, freeze=not args.no_freeze)
    import costtop  # from the frozen copy when there is one: say which code is measured

    print(f"costtop from {Path(costtop.__file__).parent} (commit {info['git_commit'][:10]}, "
          f"{len(info['src_modified'])} modified file(s) under src/, tree {info['src_hash']})", flush=True)
    try:
        return body(args, info)
    finally:
        cleanup(info)


def cleanup(info: dict[str, Any]) -> None:
    frozen = os.environ.get(ENV)
    if frozen and info.get("frozen"):
        shutil.rmtree(frozen, ignore_errors=True)


def changed_since(info: dict[str, Any]) -> bool:
    """Whether the live source differs from what was measured (worth a note in the report)."""
    return tree_hash(REPO / "src" / "costtop") != info.get("src_hash")
