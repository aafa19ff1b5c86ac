"""The mmap threshold stays where costtop pins it, in a real process with the real C library."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

# Free a 1 MiB mmapped chunk (glibc then slides its threshold up to 1 MiB), then ask for 256 KiB:
# prints whether that chunk was mmapped (goes back to the system when freed) or cut from the heap.
PROBE = """
import ctypes, sys
from costtop.allocator import pin_mmap_threshold
if sys.argv[1] == "pin":
    assert pin_mmap_threshold()
class MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                "fsmblks", "uordblks", "fordblks", "keepcost")]
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = (ctypes.c_void_p,)
libc.mallinfo2.restype = MallInfo2
libc.free(libc.malloc(1 << 20))
before = libc.mallinfo2().hblks
chunk = libc.malloc(256 << 10)
print("mmapped" if libc.mallinfo2().hblks == before + 1 else "heap")
libc.free(chunk)
"""


def run_probe(mode: str) -> str:
    done = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the setting is glibc's")
def test_a_large_chunk_stays_mmapped_after_a_larger_one_was_freed() -> None:
    assert run_probe("leave") == "heap"  # glibc's sliding threshold, which made RSS step up in long runs
    assert run_probe("pin") == "mmapped"
