"""The AMQP listener: accepts sockets, runs one connection task each, ticks the broker.

Server layer.  :class:`AmqpServer` owns everything the connections of one broker share
(the broker, the settings, the flush queue) and knows every live connection so it can
shut down gracefully: stop accepting, send connection.close 320 CONNECTION_FORCED to
each client, wait (bounded) for them to go, then cancel what is left.
"""

from __future__ import annotations

import errno
import gc
import logging
import math

import trio

from amqplite.broker.auth import User
from amqplite.broker.broker import Broker
from amqplite.errors import ReplyCode
from amqplite.server import auth, tls
from amqplite.server.connection import AmqpConnection
from amqplite.server.durability import GroupCommit
from amqplite.server.fd_reserve import FD_EXHAUSTED, FdReserve
from amqplite.server.heap import IdleTrimmer, tune_malloc
from amqplite.server.outbox import FlushQueue
from amqplite.server.session import SHUTDOWN_TEXT
from amqplite.server.store_guard import StoreGuard
from amqplite.server.ticker import Ticker
from amqplite.settings import ServerSettings

log = logging.getLogger(__name__)

_ACCEPT_RETRY_ERRNOS = {errno.ENOMEM, errno.ENOBUFS}

#: Cyclic-GC thresholds while serving.  A broker keeps many long-lived objects (queued
#: messages, bindings, queues), and with CPython's defaults (700, 10, 10) collections that
#: traverse them took ~18 % of the CPU in the publish benchmark and grew with the number of
#: bindings and queues; these cut broker CPU per message by ~20 % (docs/performance.md).
#: Messages hold no reference cycles, so collecting less often costs little memory.
GC_THRESHOLDS = (100_000, 50, 100)


async def _listen(host: str, port: int) -> list[trio.SocketListener]:
    listeners = await trio.open_tcp_listeners(port, host=host)
    if port == 0 and len(listeners) > 1:
        # Each address family would get a different ephemeral port: keep one.
        for extra in listeners[1:]:
            await extra.aclose()
        listeners = listeners[:1]
    return listeners


def tune_gc() -> None:
    """Raise the process's GC thresholds to :data:`GC_THRESHOLDS` (never lowers them)."""
    current = gc.get_threshold()
    if current[0] < GC_THRESHOLDS[0]:
        gc.set_threshold(*(max(c, t) for c, t in zip(current, GC_THRESHOLDS, strict=True)))


class AmqpServer:
    """One broker's AMQP listener and connections."""

    def __init__(self, broker: Broker, settings: ServerSettings) -> None:
        self.broker = broker
        self.settings = settings
        self.flushes = FlushQueue()
        # Deadlines are in the broker's time (a test may give it a virtual clock).
        self.ticker = Ticker(broker, self.flushes, clock=broker.clock)
        if settings.connection_max is not None:
            broker.connection_max = settings.connection_max
        store = getattr(broker, "store", None)
        self.commit = GroupCommit(store) if store is not None else None
        #: Disk alarm and fatal-store-failure stop (None without a store).
        self.guard: StoreGuard | None = None
        if store is not None:
            self.guard = StoreGuard(self, store, disk_free_limit=settings.disk_free_limit)
            broker.on_store_write_error = self.guard.write_failed
            assert self.commit is not None
            self.commit.on_failure = self.guard.fail
        self.connections: set[AmqpConnection] = set()
        #: The SSL contexts of the AMQPS listener and of the HTTPS API (given to it by
        #: :mod:`amqplite.app`); None without.  Built here so that a bad certificate
        #: stops the broker before anything listens.
        self.tls_context = tls.server_context(settings)
        self.https_context = tls.server_context(settings, https=True)
        self.port: int | None = None
        #: The AMQPS listener's bound port (None without one).
        self.tls_port: int | None = None
        self._accept_scope = trio.CancelScope()
        self._nursery: trio.Nursery | None = None
        self._all_closed = trio.Event()
        self._connection_gone = trio.Event()
        self._blocked: str | None = None
        #: The spare descriptor that refuses clients at the descriptor limit.
        self.fd_reserve = FdReserve()
        #: Gives the heap's free memory back once messages stop (see server/heap.py).
        stats = broker.stats
        self.trimmer = IdleTrimmer(lambda: stats.published + stats.delivered + stats.acked)

    async def run(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        """Listen until :meth:`shutdown`; reports the bound port through ``task_status``
        (the AMQPS port, if any, is then in :attr:`tls_port`)."""
        tune_gc()
        tune_malloc()
        listeners = await _listen(self.settings.host, self.settings.port)
        self.port = int(listeners[0].socket.getsockname()[1])
        secure: list[trio.SocketListener] = []
        if self.tls_context is not None and self.settings.tls_port is not None:
            try:
                secure = await _listen(self.settings.host, self.settings.tls_port)
            except BaseException:
                for listener in listeners:
                    await listener.aclose()
                raise
            self.tls_port = int(secure[0].socket.getsockname()[1])
        log.info("AMQP listening on %s:%d", self.settings.host, self.port)
        if self.tls_port is not None:
            log.info("AMQPS (TLS) listening on %s:%d", self.settings.host, self.tls_port)
        self.fd_reserve.hold()
        try:
            await self._serve(
                [(x, False) for x in listeners] + [(x, True) for x in secure],
                self.port,
                task_status,
            )
        finally:
            self.fd_reserve.close()

    async def _serve(
        self,
        listeners: list[tuple[trio.SocketListener, bool]],
        port: int,
        task_status: trio.TaskStatus[int],
    ) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            nursery.start_soon(self.ticker.run)
            nursery.start_soon(self.trimmer.run)
            if self.commit is not None:
                nursery.start_soon(self.commit.run_periodic)
            if self.guard is not None:
                nursery.start_soon(self.guard.run)
            nursery.start_soon(self._accept_all, listeners)
            task_status.started(port)
            await self._all_closed.wait()
            nursery.cancel_scope.cancel()

    async def _accept_all(self, listeners: list[tuple[trio.SocketListener, bool]]) -> None:
        # One scope stops every listener (plain and TLS, each address family) at shutdown.
        with self._accept_scope:
            async with trio.open_nursery() as nursery:
                for listener, secure in listeners:
                    nursery.start_soon(self._accept_loop, listener, secure)

    async def _accept_loop(self, listener: trio.SocketListener, secure: bool) -> None:
        async with listener:
            while True:
                try:
                    stream = await listener.accept()
                except OSError as exc:
                    if exc.errno in FD_EXHAUSTED:
                        if not self.fd_reserve.refuse_pending(listener.socket.fileno()):
                            # No spare to refuse with: wait for a descriptor to free up.
                            await trio.sleep(0.1)
                        continue
                    if exc.errno in _ACCEPT_RETRY_ERRNOS:
                        log.error("accept failed (%s); retrying", exc)
                        await trio.sleep(0.1)
                        continue
                    raise
                assert self._nursery is not None
                self._nursery.start_soon(self._serve_connection, stream, secure)

    async def _serve_connection(self, socket_stream: trio.SocketStream, secure: bool) -> None:
        stream: trio.abc.Stream = socket_stream
        if secure:
            assert self.tls_context is not None
            wrapped = await tls.accept(
                socket_stream, self.tls_context, timeout=self.settings.tls_handshake_timeout
            )
            if wrapped is None:
                return
            stream = wrapped
        try:
            conn = AmqpConnection(
                stream,
                broker=self.broker,
                settings=self.settings,
                flushes=self.flushes,
                ticker=self.ticker,
                commit=self.commit,
                guard=self.guard,
            )
        except Exception:
            log.exception("cannot set up connection")
            await trio.aclose_forcefully(stream)
            return
        self.connections.add(conn)
        if self._blocked is not None:
            conn.set_blocked(self._blocked)
        try:
            await conn.run()
        finally:
            self.connections.discard(conn)
            self._connection_gone.set()

    def wake_writers(self) -> None:
        """After changing broker state from outside a connection (HTTP API...), send what
        that produced (deliveries, cancels, new TTL deadlines)."""
        self.flushes.wake_dirty()
        self.ticker.poke()

    async def login(self, name: str, password: str, peer: str) -> User | None:
        """Check a login as this listener does (cached scrypt off the event loop, the
        ``loopback_users`` rule for ``peer``); the seam the management API is given."""
        return await auth.login(
            self.broker.users, name, password, peer, self.settings.loopback_users
        )

    def set_blocked(self, reason: str | None) -> None:
        """Seam for resource alarms: connection.blocked to every client (None: unblocked);
        publishing connections are not read while blocked."""
        self._blocked = reason
        for conn in list(self.connections):
            conn.set_blocked(reason)

    async def shutdown(self, timeout: float | None = None) -> None:
        """Stop accepting, close every connection with 320, wait for them (bounded)."""
        self._accept_scope.cancel()
        for conn in list(self.connections):
            conn.force_close(ReplyCode.CONNECTION_FORCED, SHUTDOWN_TEXT)
        limit = self.settings.close_timeout if timeout is None else timeout
        with trio.move_on_after(limit if limit is not None else math.inf):
            while self.connections:
                self._connection_gone = trio.Event()
                await self._connection_gone.wait()
        self._all_closed.set()


async def serve_amqp(
    broker: Broker,
    settings: ServerSettings,
    *,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve AMQP for ``broker`` until cancelled; ``task_status.started(bound_port)``."""
    server = AmqpServer(broker, settings)
    await server.run(task_status=task_status)
