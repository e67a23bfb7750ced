"""Per-connection output buffers and the batch-flush machinery.

Server layer.  Everything a connection will send is appended (synchronously, no await)
to its :class:`Outbox`'s ``buffer``: the session's replies, and deliveries caused by other
connections' publishes.  Nothing is written per frame.  Whoever finishes a batch of work
(a reader after one receive buffer, the broker ticker after a tick) calls
:meth:`FlushQueue.wake_dirty`, which wakes each touched connection's writer once; a reader
writes its own connection's output inline when the writer is idle, saving a task wake-up
(this is what matters at prefetch 1).

The outbox is bounded: once more than ``high_water`` bytes are pending, ``writable`` says
False (the broker then skips that connection's consumers) and the reader stops reading (so
TCP backpressure reaches a fast publisher).  When the writer has drained below
``low_water`` the session's ``on_drained`` callback resumes the paused channels.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable

import trio

log = logging.getLogger(__name__)


class FlushQueue:
    """Outboxes written to during the current batch whose writers still need a wake-up.

    One per server.  Marking is a flag test and a list append; waking happens once per
    batch, not once per message.
    """

    __slots__ = ("_dirty",)

    def __init__(self) -> None:
        self._dirty: list[Outbox] = []

    def mark(self, outbox: Outbox) -> None:
        if not outbox.dirty:
            outbox.dirty = True
            self._dirty.append(outbox)

    def wake_dirty(self, skip: Outbox | None = None) -> None:
        """Flush every outbox written to since the last call (except ``skip``, which its
        caller flushes itself): inline when the socket takes it all, else by waking that
        connection's writer."""
        dirty = self._dirty
        if not dirty:
            return
        self._dirty = []
        for outbox in dirty:
            outbox.dirty = False
            if outbox is not skip and not outbox.send_now():
                outbox.wake()


class Outbox:
    """The bytes waiting to go out on one connection, and the writer that sends them.

    ``buffer`` is swapped for a fresh bytearray at each send, so appends never race a
    write in progress; code appending to it must read ``outbox.buffer`` each time rather
    than keep a reference.
    """

    __slots__ = (
        "_drained",
        "_send_done",
        "_sock",
        "_stream",
        "_wake",
        "buffer",
        "closed",
        "dirty",
        "high_water",
        "in_flight",
        "last_send",
        "low_water",
        "on_drained",
        "sending",
        "throttled",
    )

    def __init__(
        self,
        stream: trio.abc.SendStream,
        *,
        high_water: int,
        low_water: int,
    ) -> None:
        self._stream = stream
        # The stdlib socket under a trio SocketStream, for synchronous non-blocking sends
        # (trio keeps it in non-blocking mode); None for other streams (tests, TLS).
        sock = getattr(getattr(stream, "socket", None), "_sock", None)
        self._sock: socket.socket | None = sock if isinstance(sock, socket.socket) else None
        self.buffer = bytearray()
        self.dirty = False
        self.sending = False
        self.in_flight = 0
        self.high_water = high_water
        self.low_water = low_water
        self.throttled = False
        self.closed = False
        self.last_send = trio.current_time()
        self.on_drained: Callable[[], None] | None = None
        self._wake = trio.Event()
        self._drained = trio.Event()
        self._send_done = trio.Event()

    @property
    def pending(self) -> int:
        return len(self.buffer) + self.in_flight

    @property
    def writable(self) -> bool:
        """False while over the high-water mark.  Remembering that we said so lets the
        writer resume whoever was paused once the output has drained."""
        if len(self.buffer) + self.in_flight < self.high_water:
            return True
        self.throttled = True
        return False

    @property
    def over_high_water(self) -> bool:
        return len(self.buffer) + self.in_flight >= self.high_water

    def wake(self) -> None:
        self._wake.set()

    def close(self) -> None:
        """Stop writing; release anyone waiting for the output to drain."""
        self.closed = True
        self._wake.set()
        self._drained.set()
        self._send_done.set()

    def send_now(self) -> bool:
        """Write what is buffered with one non-blocking send, without awaiting; True if
        nothing is left to send.

        Saves a task wake-up and a scheduler pass per batch: an idle socket almost always
        takes a whole batch.  What the socket does not take (or any error, which the
        writer's ``send_all`` then reports) is left for the writer: on False the caller
        wakes it.
        """
        data = self.buffer
        if not data:
            return True
        sock = self._sock
        if sock is None or self.sending or self.closed:
            return False
        try:
            sent = sock.send(data)
        except OSError:  # EAGAIN, or an error that the writer's send_all will raise
            return False
        self.last_send = trio.current_time()
        if sent < len(data):
            del data[:sent]
            return False
        data.clear()
        self._after_send()
        return not self.buffer

    async def send_once(self) -> None:
        """Write everything buffered right now with one ``send_all`` (no-op if another
        task is writing or there is nothing to write)."""
        if self.sending or not self.buffer or self.closed:
            return
        data = self.buffer
        self.buffer = bytearray()
        self.in_flight = len(data)
        self.sending = True
        self._send_done = trio.Event()
        try:
            await self._stream.send_all(data)
        finally:
            self.sending = False
            self.in_flight = 0
            self._send_done.set()
        self.last_send = trio.current_time()
        self._after_send()

    def _after_send(self) -> None:
        if len(self.buffer) < self.low_water:
            if self.throttled:
                self.throttled = False
                if self.on_drained is not None:
                    # Resumed consumers may deliver more into self.buffer right away.
                    self.on_drained()
            self._drained.set()
        if self.buffer:
            # Appended while we were sending (possibly by another task, whose wake-up
            # the writer ignored because we were busy): make sure someone sends it.
            self._wake.set()

    async def wait_drained(self) -> None:
        """Wait until the pending output is below the low-water mark."""
        while len(self.buffer) + self.in_flight >= self.low_water and not self.closed:
            if not self.sending:
                self.wake()
            self._drained = trio.Event()
            await self._drained.wait()

    async def writer(self) -> None:
        """The connection's writer task: send whenever woken and there is output."""
        while not self.closed:
            await self._wake.wait()
            self._wake = trio.Event()
            while self.buffer and not self.sending and not self.closed:
                await self.send_once()

    async def drain(self) -> None:
        """Send everything still buffered (used before closing the socket)."""
        while (self.buffer or self.sending) and not self.closed:
            if self.sending:
                await self._send_done.wait()
            else:
                await self.send_once()
