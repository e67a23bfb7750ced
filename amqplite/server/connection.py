"""One AMQP client connection: its reader, writer and timer tasks.

Server layer.  Each accepted socket gets one nursery with three tasks:

- the *reader* receives up to ``receive_size`` bytes, hands them to the session, which
  handles every event in them synchronously (no await per message), then flushes: the
  output of one receive buffer goes out with a single ``send_all``, written inline when
  the writer is idle.  It stops reading while the outbox is over its high-water mark, so a
  publisher that outruns its consumers feels TCP backpressure.  It does not wait for the
  store sync that confirms of durable publishes need: the *confirmer*
  (:class:`~amqplite.server.durability.ConfirmPipeline`) sends them once a sync covers
  them, and the reader stops only while too much input waits for one;
- the *writer* (:meth:`Outbox.writer`) sends output produced by other connections
  (deliveries), by the timer, or while the reader was busy;
- the *timer* sends heartbeats at half the negotiated interval when nothing else went out,
  drops a peer silent for two intervals, enforces the handshake timeout and the wait for
  close-ok after we sent connection.close.

Nothing here raises out of the task: any error ends only this connection.
"""

from __future__ import annotations

import contextlib
import logging
import math
import socket
from typing import TYPE_CHECKING

import trio

from amqplite.server import tls
from amqplite.server.durability import ConfirmPipeline
from amqplite.server.outbox import FlushQueue, Outbox
from amqplite.server.session import Session

if TYPE_CHECKING:
    from amqplite.broker.broker import Broker
    from amqplite.server.durability import GroupCommit
    from amqplite.server.session.modes import Earned
    from amqplite.server.store_guard import StoreGuard
    from amqplite.server.ticker import Ticker
    from amqplite.settings import ServerSettings

log = logging.getLogger(__name__)

#: Longest wait for the peer to hang up after our last frame (see ``_linger``).
LINGER_SECONDS = 1.0
#: Linux's option bounding the unsent bytes a socket's buffer takes (None elsewhere).
_NOTSENT_LOWAT: int | None = getattr(socket, "TCP_NOTSENT_LOWAT", None)


def unsent_limit(settings: ServerSettings) -> int:
    """The unsent bytes a connection's socket buffer may hold (``TCP_NOTSENT_LOWAT``):
    four times the outbox's high-water mark (1 MiB e2e: 2.3 sends per message at 1x,
    ~5-10 % less broker CPU at 4x)."""
    return 4 * settings.high_water


def _address(sockaddr: object) -> tuple[str, int]:
    if isinstance(sockaddr, tuple) and len(sockaddr) >= 2:
        return str(sockaddr[0]), int(sockaddr[1])
    return str(sockaddr), 0


def _only_disconnects(exc: BaseException) -> bool:
    """True if ``exc`` (possibly a group from the nursery) is only the peer going away."""
    if isinstance(exc, BaseExceptionGroup):
        return all(_only_disconnects(e) for e in exc.exceptions)
    return isinstance(exc, trio.BrokenResourceError | trio.ClosedResourceError)


class _Input:
    """How a connection's reader receives: into the session, one receive at a time.

    On a plain socket it reads the stdlib socket under the trio stream itself:

    - when the last read did not fill the buffer (the usual case with many connections,
      each sending a message now and then), it waits for the socket to be readable before
      reading, instead of trying first and failing with EAGAIN as ``receive_some`` does: one
      system call and one exception less per wake-up;
    - a large body is received straight into the body's buffer (``proto.next_read``):
      one ``recvmsg_into`` scatters the frames' payloads into place and their heads into
      gaps beside them, the last one with the start of the next message; one ``read``
      takes the whole body, or what the socket holds of it.

    Other streams (TLS) go through ``receive_some``.
    """

    __slots__ = ("_after", "_pending", "_reads", "_sock", "_stream", "received", "size")

    def __init__(self, stream: trio.abc.Stream, size: int) -> None:
        self._stream = stream
        self.size = size
        raw = getattr(getattr(stream, "socket", None), "_sock", None)
        self._sock: socket.socket | None = raw if isinstance(raw, socket.socket) else None
        # What follows a body frame's payload: its frame end and the next frame's head,
        # or after the last frame the start of the next message.
        self._after = bytearray(8)  # grown to what the protocol asks for
        self._pending = True  # more input may be waiting (the last read filled the buffer)
        self._reads = 0  # body reads
        #: Bytes received so far (the confirm pipeline bounds the unsynced part).
        self.received = 0

    async def read(self, session: Session) -> bool:
        """Receive once (a large body: as much of it as has arrived) and hand it to
        ``session``; False at EOF."""
        sock = self._sock
        if sock is None:
            data = await self._stream.receive_some(self.size)
            if not data:
                return False
            self.received += len(data)
            session.data_received(data)
            return True
        proto = session.proto
        want = proto.next_read(self.size)
        if type(want) is int:
            if self._pending:
                await trio.lowlevel.checkpoint()  # one yield per batch, as receive_some
            else:
                await trio.lowlevel.wait_readable(sock)
        else:
            self._reads += 1
            if not self._reads % 16:
                await trio.lowlevel.checkpoint()  # long body reads without waiting
        after = self._after
        progress = False
        while True:
            if progress:
                want = proto.next_read(self.size)
            if type(want) is int:
                if progress:
                    return True
                data = await self._recv(sock, want)
                if not data:
                    return False
                self._pending = len(data) == want
                self.received += len(data)
                session.data_received(data)
                return True
            parts, more = want  # type: ignore[misc]
            room = sum(map(len, parts))
            if more > len(after):
                after = self._after = bytearray(more)
            with memoryview(after) as tail:
                parts.append(tail[:more])
                try:
                    got = sock.recvmsg_into(parts)[0]
                except BlockingIOError:
                    got = -1
                except OSError as exc:
                    raise trio.BrokenResourceError(str(exc)) from exc
                finally:
                    for part in parts:  # (the body's buffer may be resized later)
                        part.release()
            if got < 0:
                if progress:  # what has arrived is in; the reader goes on from here
                    self._pending = False
                    return True
                await trio.lowlevel.wait_readable(sock)
                want = proto.next_read(self.size)  # (the view was released)
                continue
            if not got:
                return False
            self.received += got
            session.body_received(min(got, room))
            if got > room:
                session.data_received(bytes(after[: got - room]))
            if got < room + more or more > 8 or session.finished:
                # The socket is drained for now, or the body is complete.
                self._pending = True  # (what follows is likely on its way)
                return True
            progress = True

    @staticmethod
    async def _recv(sock: socket.socket, size: int) -> bytes:
        while True:
            try:
                return sock.recv(size)
            except BlockingIOError:
                await trio.lowlevel.wait_readable(sock)
            except OSError as exc:
                raise trio.BrokenResourceError(str(exc)) from exc


class AmqpConnection:
    """The tasks serving one client socket."""

    def __init__(
        self,
        stream: trio.abc.Stream,
        *,
        broker: Broker,
        settings: ServerSettings,
        flushes: FlushQueue,
        ticker: Ticker,
        commit: GroupCommit | None = None,
        guard: StoreGuard | None = None,
    ) -> None:
        self.stream = stream
        self.ticker = ticker
        self.commit = commit
        self.guard = guard
        self.settings = settings
        self.flushes = flushes
        self.outbox = Outbox(stream, high_water=settings.high_water, low_water=settings.low_water)
        # A TLS stream's socket is its transport's.
        transport = stream.transport_stream if isinstance(stream, trio.SSLStream) else stream
        assert isinstance(transport, trio.SocketStream)
        sock = transport.socket
        if _NOTSENT_LOWAT is not None:
            # trio caps the unsent bytes the kernel takes at 16 KiB: a 1 MiB delivery
            # then goes out in ~8 sends, each after a wake-up for writability.  Let the
            # kernel hold a few times what our own outbox may (the high-water mark), so
            # that it takes a large delivery whole while the one before is still unsent.
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, _NOTSENT_LOWAT, unsent_limit(settings))
        try:
            peer = _address(sock.getpeername())
            local = _address(sock.getsockname())
        except OSError:  # already reset by the peer
            peer, local = ("?", 0), ("?", 0)
        self.name = f"{peer[0]}:{peer[1]} -> {local[0]}:{local[1]}"
        self.session = Session(
            broker=broker,
            settings=settings,
            outbox=self.outbox,
            flushes=flushes,
            peer=peer,
            name=self.name,
            tls=stream.version() if isinstance(stream, trio.SSLStream) else None,
            peer_cert=tls.peer_certificate(stream),
        )
        self.outbox.on_drained = self.session.resume
        self.session.on_forced_close = self.force_close
        self.started = trio.current_time()
        self.last_recv = self.started
        self._close_deadline: float | None = None
        self._timer_wake = trio.Event()
        self._timer_state: tuple[int, bool] = (0, False)
        self._scope: trio.CancelScope | None = None
        self._blocked_until: trio.Event | None = None
        #: Confirms waiting for the store sync that covers their batch (None: no store).
        self.confirms: ConfirmPipeline[Earned] | None = None
        if commit is not None:
            self.confirms = ConfirmPipeline(commit, self._emit_confirms)
        #: Set once the connection task has finished and cleaned up.
        self.finished = trio.Event()

    async def run(self) -> None:
        """Serve the socket until the AMQP connection ends; never raises (but Cancelled)."""
        try:
            async with trio.open_nursery() as nursery:
                self._scope = nursery.cancel_scope
                nursery.start_soon(self.outbox.writer)
                nursery.start_soon(self._timer)
                if self.confirms is not None:
                    nursery.start_soon(self.confirms.run)
                eof = await self._reader()
                # Let the last frames (close-ok, or our close) reach the peer.
                with trio.move_on_after(self.settings.close_timeout):
                    await self.outbox.drain()
                if not eof and self.session.abandoned:
                    await self._linger()
                nursery.cancel_scope.cancel()
        except Exception as exc:
            if _only_disconnects(exc):
                log.debug("connection %s: socket closed by peer", self.name)
            else:
                log.exception("connection %s: unexpected error in connection task", self.name)
        finally:
            self.outbox.close()
            try:
                self.session.connection_lost()
            except Exception:
                log.exception("connection %s: error while cleaning up", self.name)
            # Closing may requeue unacked messages to other connections' consumers.
            self.flushes.wake_dirty()
            with trio.CancelScope(shield=True):
                await trio.aclose_forcefully(self.stream)
            self.finished.set()

    async def _linger(self) -> None:
        """Half-close and read until the peer closes (briefly): closing a socket with
        unread input sends a RST, which can destroy our final frames in flight."""
        with trio.move_on_after(min(self.settings.close_timeout, LINGER_SECONDS)):
            try:
                if isinstance(self.stream, trio.SocketStream):  # TLS has no half-close
                    await self.stream.send_eof()
                while await self.stream.receive_some(65536):
                    pass
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass

    async def _reader(self) -> bool:
        """Read and handle input until the session is finished; True if the peer hung up."""
        session = self.session
        outbox = self.outbox
        flushes = self.flushes
        ticker = self.ticker
        commit = self.commit
        guard = self.guard
        confirms = self.confirms
        source = _Input(self.stream, self.settings.receive_size)
        read = source.read
        mark = 0  # bytes received before this batch
        while not session.finished:
            if outbox.over_high_water:
                await outbox.wait_drained()
            if confirms is not None and confirms.full:
                await confirms.wait_room()  # too much unsynced input: stop reading
            blocked = self._blocked_until
            if blocked is not None and session.publishing:
                await blocked.wait()
            if not await read(session):
                session.eof_received()
                return True
            self.last_recv = trio.current_time()
            while session.auth_pending is not None:
                await session.check_login()
            # Deliveries to other connections go out now, not after a store sync.
            flushes.wake_dirty(skip=outbox)
            if commit is not None:
                commit.store.flush()  # acks reach the OS: a killed process loses none
                if guard is not None:
                    guard.note_writes()  # the disk alarm trips on the batch that crosses the floor
            earned = session.take_confirms()
            size, mark = source.received - mark, source.received
            if earned is not None:
                if confirms is not None and (session.sync_pending or confirms.pending):
                    # Confirmed once a sync covers this batch (or, without durable
                    # writes, after the batches before it); meanwhile we read on.
                    confirms.add(session.sync_pending, size, earned)
                else:
                    session.emit_confirms(earned)
            session.sync_pending = False
            ticker.poke()
            if outbox.buffer:
                if outbox.sending:
                    outbox.wake()
                elif not outbox.send_now():
                    # The socket took only part: wait for it (backpressure on this reader).
                    await outbox.send_once()
            self._update_timer()
        return False

    def _emit_confirms(self, earned: Earned) -> None:
        """The pipeline's sync covered a batch: its confirms go out (by the writer)."""
        self.session.emit_confirms(earned)
        if self.outbox.buffer:
            self.outbox.wake()

    def _update_timer(self) -> None:
        session = self.session
        state = (session.heartbeat, session.closing)
        if state != self._timer_state:
            self._timer_state = state
            if session.closing and self._close_deadline is None:
                self._close_deadline = trio.current_time() + self.settings.close_timeout
            self._timer_wake.set()

    def _drop(self, reason: str, *args: object) -> None:
        log.warning("connection %s: " + reason, self.name, *args)
        if self._scope is not None:
            self._scope.cancel()

    async def _timer(self) -> None:
        session = self.session
        outbox = self.outbox
        handshake_deadline = self.started + self.settings.handshake_timeout
        while True:
            now = trio.current_time()
            deadline = math.inf
            if self._close_deadline is not None:
                if now >= self._close_deadline:
                    self._drop("no close-ok within %ss, dropping", self.settings.close_timeout)
                    return
                deadline = self._close_deadline
            if session.handshaking:
                if now >= handshake_deadline:
                    self._drop("handshake timed out")
                    return
                deadline = min(deadline, handshake_deadline)
            interval = session.heartbeat
            if interval:
                dead_at = self.last_recv + 2 * interval
                if now >= dead_at:
                    self._drop("missed heartbeats from client, timeout: %ss", interval)
                    return
                send_at = outbox.last_send + interval / 2
                if now >= send_at:
                    if not outbox.buffer:  # else output is on its way anyway
                        session.send_heartbeat()
                        outbox.wake()
                    send_at = now + interval / 2
                deadline = min(deadline, dead_at, send_at)
            with trio.move_on_at(deadline):
                await self._timer_wake.wait()
            self._timer_wake = trio.Event()

    # -- called by the server ------------------------------------------------------------

    def force_close(self, reply_code: int, reply_text: str) -> None:
        """Start closing from our side (shutdown): connection.close, then wait for close-ok."""
        self.session.force_close(reply_code, reply_text)
        if self.session.finished and self._scope is not None:
            # Not logged in yet: nothing to say, just hang up (the reader may be waiting).
            self._scope.cancel()
            return
        self.outbox.wake()
        self._update_timer()

    def set_blocked(self, reason: str | None) -> None:
        """connection.blocked / unblocked (e.g. a disk alarm): publishers stop being read."""
        if reason is not None:
            if self._blocked_until is None:
                self._blocked_until = trio.Event()
        elif self._blocked_until is not None:
            self._blocked_until.set()
            self._blocked_until = None
        self.session.notify_blocked(reason)
        self.outbox.wake()
