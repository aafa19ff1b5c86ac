"""Keep a long-running costtop's memory flat: pin glibc's mmap threshold.

glibc serves a large `malloc` (128 KiB and up) with its own mmap, returned to the system on `free`.
But each time it frees such a chunk it raises that threshold to the chunk's size, so from then on
chunks of that size come from the heap instead, where a freed one in the middle stays resident. The
engine's exact latency multisets are dicts that rehash every few seconds under a steady stream of
calls (hundreds of KiB each time), which is that pattern: in hour-long runs at 1,000 calls/s, RSS
stepped up 7 MB once the threshold had moved (docs/reliability.md, "Long runs"). Setting the threshold
explicitly turns the sliding off (mallopt(3)), so a large table always goes back when freed. On other
C libraries this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

M_MMAP_THRESHOLD = -3  # mallopt(3) parameter numbers, from glibc's malloc.h
MMAP_THRESHOLD_BYTES = 128 * 1024  # glibc's own starting value, kept fixed


def pin_mmap_threshold() -> bool:
    """True when glibc accepted the setting."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) == 1
