"""Per-connection output buffers and the batch-flush machinery.

Server layer.  Everything a connection will send is appended (synchronously, no await)
to its :class:`Outbox`'s ``buffer``: the session's replies, and deliveries caused by other
connections' publishes.  Nothing is written per frame.  Whoever finishes a batch of work
(a reader after one receive buffer, the broker ticker after a tick) calls
:meth:`FlushQueue.wake_dirty`, which wakes each touched connection's writer once; a reader
writes its own connection's output inline when the writer is idle, saving a task wake-up
(this is what matters at prefetch 1).

Large bodies are not copied into the buffer: :meth:`Outbox.write` notes each one (a
message's body, or a memoryview slice of it per frame) as a *splice* at its offset in the
buffer, and the send is vectored (``sendmsg``): the kernel copies the body straight from
the one buffer it was received into, however many queues and consumers it goes to.

The outbox is bounded: once more than ``high_water`` bytes are pending, ``writable`` says
False (the broker then skips that connection's consumers) and the reader stops reading (so
TCP backpressure reaches a fast publisher).  When the writer has drained below
``low_water`` the session's ``on_drained`` callback resumes the paused channels.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable, Iterable

import trio

from amqplite.protocol.fields import Buffer

log = logging.getLogger(__name__)

#: Pieces at least this long are sent from where they are (a vectored send) rather than
#: copied into the buffer; below it a copy is cheaper than an iovec entry.
SPLICE_MIN = 8192
#: Most buffers one sendmsg takes (Linux's IOV_MAX is 1024).
IOV_MAX = 1024


def _advance(iov: list[Buffer], sent: int) -> list[Buffer]:
    """What is left of ``iov`` after its first ``sent`` bytes went out."""
    for i, piece in enumerate(iov):
        size = len(piece)
        if sent < size:
            rest = iov[i:]
            if sent:
                rest[0] = memoryview(piece)[sent:]
            return rest
        sent -= size
    return []


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
    than keep a reference.  ``in_flight`` counts the pending bytes that are not in
    ``buffer``: spliced bodies, what a send took and has not finished, and ``_rest``.
    """

    __slots__ = (
        "_drained",
        "_rest",
        "_send_done",
        "_sock",
        "_splices",
        "_stream",
        "_tsock",
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
        now: float | None = None,
    ) -> None:
        """``now``: when the last send happened, for the heartbeat timer; default trio's
        clock (the micro-benchmarks, which drive a session outside trio, pass 0)."""
        self._stream = stream
        # The stdlib socket under a trio SocketStream, for synchronous non-blocking sends
        # (trio keeps it in non-blocking mode); None for other streams (tests, TLS).
        sock = getattr(getattr(stream, "socket", None), "_sock", None)
        self._sock: socket.socket | None = sock if isinstance(sock, socket.socket) else None
        # Its trio wrapper, for vectored sends that wait for the socket to take them.
        self._tsock: trio.socket.SocketType | None = (
            getattr(stream, "socket", None) if self._sock is not None else None
        )
        self.buffer = bytearray()
        #: (offset in buffer, piece): the piece goes out just before ``buffer[offset:]``.
        self._splices: list[tuple[int, Buffer]] = []
        #: What a partial vectored send left: goes out before ``buffer``.
        self._rest: list[Buffer] = []
        self.dirty = False
        self.sending = False
        self.in_flight = 0
        self.high_water = high_water
        self.low_water = low_water
        self.throttled = False
        self.closed = False
        self.last_send = trio.current_time() if now is None else now
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

    @property
    def has_output(self) -> bool:
        return bool(self.buffer or self._rest)

    def write(self, parts: Iterable[Buffer]) -> None:
        """Append ``parts`` in order: small ones copied into ``buffer``, large ones spliced."""
        buffer = self.buffer
        for part in parts:
            size = len(part)
            if size < SPLICE_MIN:
                buffer += part
            else:
                self._splices.append((len(buffer), part))
                self.in_flight += size

    def splice(self, head: bytes, body: Buffer, end: bytes) -> None:
        """Append ``head``, then ``body`` spliced (sent from its own buffer), then ``end``:
        one large body frame with what comes before and after it, without the per-part
        loop of :meth:`write`."""
        buffer = self.buffer
        buffer += head
        self._splices.append((len(buffer), body))
        self.in_flight += len(body)
        buffer += end

    def insert(self, mark: int, frame: bytes) -> None:
        """Insert ``frame`` at ``mark`` (an earlier ``len(buffer)``), before whatever was
        appended or spliced since."""
        buffer = self.buffer
        if mark == len(buffer):
            buffer += frame
            return
        buffer[mark:mark] = frame
        if self._splices:
            shift = len(frame)
            self._splices = [
                (offset + shift if offset >= mark else offset, piece)
                for offset, piece in self._splices
            ]

    def take(self) -> list[Buffer]:
        """Everything pending, in order, as one iovec for a send (the caller owns it and
        accounts for what it sends in ``in_flight``); ``buffer`` starts afresh."""
        iov = self._rest
        self._rest = []
        buffer = self.buffer
        self.buffer = bytearray()
        self.in_flight += len(buffer)
        view = memoryview(buffer)
        start = 0
        for offset, piece in self._splices:
            if offset > start:
                iov.append(view[start:offset])
            iov.append(piece)
            start = offset
        self._splices = []
        if start < len(buffer):
            iov.append(view[start:])
        return iov

    def _send_vectored_now(self) -> bool:
        sock = self._sock
        if sock is None or self.sending or self.closed:
            return False
        iov = self.take()
        try:
            while iov:
                batch = iov[:IOV_MAX]
                sent = sock.sendmsg(batch)
                self.in_flight -= sent
                iov = _advance(iov, sent)
                if sent < sum(map(len, batch)):
                    break
        except OSError:  # EAGAIN, or an error that the writer will raise
            pass
        self._rest = iov
        self.last_send = trio.current_time()
        if iov:
            return False
        self._after_send()
        return not self.buffer

    async def _send_vectored(self) -> None:
        iov = self.take()
        sock = self._tsock
        try:
            if sock is None:  # not a plain socket (TLS): one joined send
                data = b"".join(iov)
                await self._stream.send_all(data)
                iov = []
                self.in_flight -= len(data)
                return
            while iov:
                sent = await sock.sendmsg(iov[:IOV_MAX])
                self.in_flight -= sent
                iov = _advance(iov, sent)
        finally:
            if iov:  # cancelled or failed: the connection is going away
                self.in_flight -= sum(map(len, iov))

    def send_now(self) -> bool:
        """Write what is buffered with one non-blocking send, without awaiting; True if
        nothing is left to send.

        Saves a task wake-up and a scheduler pass per batch: an idle socket almost always
        takes a whole batch.  What the socket does not take (or any error, which the
        writer's ``send_all`` then reports) is left for the writer: on False the caller
        wakes it.
        """
        if self._splices or self._rest:
            return self._send_vectored_now()
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
        if self.sending or not (self.buffer or self._rest) or self.closed:
            return
        self.sending = True
        self._send_done = trio.Event()
        try:
            if self._splices or self._rest:
                await self._send_vectored()
            else:
                data = self.buffer
                self.buffer = bytearray()
                size = len(data)
                self.in_flight += size
                try:
                    await self._stream.send_all(data)
                finally:
                    self.in_flight -= size
        finally:
            self.sending = False
            self._send_done.set()
        self.last_send = trio.current_time()
        self._after_send()

    def _after_send(self) -> None:
        if len(self.buffer) + self.in_flight < self.low_water:
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
            while (self.buffer or self._rest) and not self.sending and not self.closed:
                await self.send_once()

    async def drain(self) -> None:
        """Send everything still buffered (used before closing the socket)."""
        while (self.buffer or self._rest or self.sending) and not self.closed:
            if self.sending:
                await self._send_done.wait()
            else:
                await self.send_once()
