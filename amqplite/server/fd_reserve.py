"""Refuse connections cleanly at the file-descriptor limit (server layer).

When the process has used up its descriptors (``RLIMIT_NOFILE``), ``accept()`` fails with
EMFILE and the pending connection stays in the kernel's backlog: the client has a TCP
connection that nobody reads, and waits for its own timeout (15 s for pika) while the
accept loop spins on the same error.  The usual cure (nginx, HAProxy, libuv's
``uv__emfile_trick``) is a *reserve* descriptor opened at start: on EMFILE, close the
reserve, accept the pending connection into the freed slot, reset it at once, and open
the reserve again.  The client sees a reset straight away, the backlog drains, and the
connections already open keep their descriptors.

The refusals are logged once per :data:`LOG_INTERVAL` seconds with a count, not once
per refused client (a flood must not become a log flood).
"""

from __future__ import annotations

import errno
import logging
import os
import socket
import struct
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

#: Errors that mean "no descriptor to give the accepted socket".
FD_EXHAUSTED = frozenset({errno.EMFILE, errno.ENFILE})

#: At most one warning per this many seconds.
LOG_INTERVAL = 10.0

# SO_LINGER on, 0 s: close() sends a RST, so the client fails at once instead of
# reading an EOF it might retry on.
_LINGER_RESET = struct.pack("ii", 1, 0)


def _open_reserve() -> int | None:
    try:
        return os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None


class FdReserve:
    """One spare descriptor, spent to refuse connections when the process has none left."""

    def __init__(
        self,
        *,
        interval: float = LOG_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fd: int | None = None
        self._interval = interval
        self._clock = clock
        self._last_log = -float("inf")
        #: Refused since the last warning, and in all.
        self.pending_refusals = 0
        self.refused = 0

    def hold(self) -> None:
        """Open the spare descriptor (when the listener starts; :meth:`close` gives it back)."""
        if self._fd is None:
            self._fd = _open_reserve()

    @property
    def held(self) -> bool:
        """True while the spare descriptor is open (it can refuse one more connection)."""
        return self._fd is not None

    def refuse_pending(self, listener: socket.socket | int) -> int:
        """Accept and reset every connection waiting on ``listener`` (a non-blocking
        listening socket, or its descriptor); return how many were refused.

        Synchronous on purpose: between closing the reserve and opening it again no other
        task may run and take the freed descriptor.
        """
        fd = listener if isinstance(listener, int) else listener.fileno()
        self.hold()  # if it could not be opened again last time
        refused = 0
        while self._fd is not None:
            os.close(self._fd)
            self._fd = None
            try:
                if not self._refuse_one(fd):
                    break
                refused += 1
            finally:
                self._fd = _open_reserve()
        self._note(refused)
        return refused

    @staticmethod
    def _refuse_one(fd: int) -> bool:
        # A second socket object on the listener's descriptor, detached (not closed) after.
        view = socket.socket(fileno=fd)
        try:
            conn, _ = view.accept()
        except (BlockingIOError, InterruptedError):
            return False
        except OSError as exc:
            if exc.errno in FD_EXHAUSTED:  # the freed slot went to another thread
                return False
            raise
        finally:
            view.detach()
        try:
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
        except OSError:
            pass  # already reset by the peer
        conn.close()
        return True

    def _note(self, refused: int) -> None:
        self.refused += refused
        self.pending_refusals += refused
        now = self._clock()
        if now - self._last_log < self._interval:
            return
        self._last_log = now
        if self.pending_refusals or self._fd is None:
            log.warning(
                "file descriptor limit reached: refused %d connection(s) "
                "(reserve descriptor %s; next report in %gs at the earliest)",
                self.pending_refusals,
                "held" if self._fd is not None else "unavailable",
                self._interval,
            )
        self.pending_refusals = 0

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
