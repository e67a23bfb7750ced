"""The C heap while serving: glibc malloc's thresholds, and memory given back once idle.

Server layer.  Message bodies are large blocks that come and go at the message rate.  With
glibc's defaults each 256 KiB or 1 MiB body was a fresh ``mmap`` (or heap growth) whose
pages faulted in one by one and were handed back to the kernel when freed, 1 page fault in
3 to 4 body pages (docs/performance.md, "Large bodies").  So while serving:

* blocks up to :data:`MALLOC_MMAP_THRESHOLD` come from the heap, whose freed blocks are
  reused;
* the heap is not trimmed as bodies are freed (:data:`MALLOC_TRIM_THRESHOLD` is far above
  what a flow frees at once): giving its top back and faulting it in again for the next
  bodies cost a 1 MiB flow ~40 page faults and a ``brk`` per message;
* instead :class:`IdleTrimmer` gives the free memory back once no message has been
  published, delivered or acknowledged for :data:`IDLE_SECONDS`, so a burst of large
  messages does not leave the broker's RSS high for good.

All of it is a no-op on a C library other than glibc.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Callable
from typing import Any

import trio

#: Blocks up to this size come from the heap rather than each from a fresh mmap.
MALLOC_MMAP_THRESHOLD = 32 << 20  # glibc's maximum
#: Free memory the heap keeps at its top before returning it on its own: high enough that
#: a flow of large bodies never trims (the idle trimmer does it).
MALLOC_TRIM_THRESHOLD = 1 << 30
#: Seconds without message traffic after which the free heap memory is given back.
IDLE_SECONDS = 30.0
_M_TRIM_THRESHOLD = -1  # mallopt parameters (malloc.h)
_M_MMAP_THRESHOLD = -3


def _libc() -> Any | None:
    """glibc's functions, or None on another C library."""
    try:
        if not os.confstr("CS_GNU_LIBC_VERSION"):
            return None
        return ctypes.CDLL(None)
    except (ValueError, OSError, AttributeError):
        return None


def tune_malloc() -> None:
    """Set glibc's mmap and trim thresholds (no-op on another C library)."""
    libc = _libc()
    if libc is None:
        return
    mallopt = libc.mallopt
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    # Both: setting either one turns glibc's own adjustment of the other off.
    mallopt(_M_MMAP_THRESHOLD, MALLOC_MMAP_THRESHOLD)
    mallopt(_M_TRIM_THRESHOLD, MALLOC_TRIM_THRESHOLD)


def trim() -> bool:
    """Give the heap's free memory back to the kernel (``malloc_trim(0)``); True if any
    was given back."""
    libc = _libc()
    if libc is None:
        return False
    malloc_trim = libc.malloc_trim
    malloc_trim.argtypes = (ctypes.c_size_t,)
    malloc_trim.restype = ctypes.c_int
    return bool(malloc_trim(0))


class IdleTrimmer:
    """A task that calls :func:`trim` once ``activity()`` (a count that grows with message
    traffic) has stayed the same for ``idle`` seconds, and again only after traffic
    resumed and stopped."""

    def __init__(self, activity: Callable[[], int], idle: float = IDLE_SECONDS) -> None:
        self._activity = activity
        self._idle = idle
        #: Times the heap was trimmed (for tests and statistics).
        self.trims = 0

    async def run(self) -> None:
        last = self._activity()
        trimmed = False
        while True:
            await trio.sleep(self._idle)
            now = self._activity()
            if now != last:
                last, trimmed = now, False
            elif not trimmed:
                trimmed = True
                trim()
                self.trims += 1
