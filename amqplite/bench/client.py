"""The bench's own minimal AMQP 0-9-1 client connection (asyncio Protocol over a raw socket).

Layer: ``amqplite/bench`` (stdlib only). One ``BenchConnection`` per TCP connection. The receive
path hands every buffer to ``wire.Receiver`` in one call and writes the acks it returns in one
``transport.write``; synchronous methods (declare, bind, consume, ...) are pipelined RPCs whose
replies are matched in order per channel, so thousands of declares cost one round trip each
batch, not one each.
"""

from __future__ import annotations

import asyncio
import collections
import ssl
import struct
import urllib.parse
from collections.abc import Coroutine, Iterable
from typing import Any

from amqplite.bench.wire import (
    PROTOCOL_HEADER,
    BenchProtocolError,
    ConfirmTracker,
    FieldValue,
    Receiver,
    bits,
    longstr,
    method_frame,
    shortstr,
    table,
)

CLIENT_VERSION = "0.1"
DEFAULT_FRAME_MAX = 131072
RPC_TIMEOUT = 30.0


class BenchError(Exception):
    """The broker refused something or the connection failed; the run reports it."""


def parse_url(url: str) -> tuple[str, int, str, str, str]:
    """``amqp(s)://user:pass@host:port/vhost`` → (host, port, user, password, vhost)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("amqp", "amqps", ""):
        raise BenchError(f"only amqp:// and amqps:// URLs are supported, not {url!r}")
    vhost = urllib.parse.unquote(parts.path[1:]) if len(parts.path) > 1 else "/"
    return (
        parts.hostname or "127.0.0.1",
        parts.port or (5671 if parts.scheme == "amqps" else 5672),
        urllib.parse.unquote(parts.username or "guest"),
        urllib.parse.unquote(parts.password or "guest"),
        vhost,
    )


class BenchConnection(asyncio.Protocol):
    """One AMQP connection; RPC replies by FIFO per channel, deliveries via ``receiver``."""

    def __init__(self, progress: asyncio.Event | None = None) -> None:
        self.transport: asyncio.Transport | None = None
        self.receiver = Receiver(self._on_method)
        self.frame_max = DEFAULT_FRAME_MAX
        self.error: BaseException | None = None
        self.closed = False
        self.blocked = 0
        self.returned = 0
        # Set whenever deliveries, confirms or errors arrive; a run shares one across its connections.
        self.progress = progress if progress is not None else asyncio.Event()
        self.writable = asyncio.Event()
        self.writable.set()
        self._waiters: dict[int, collections.deque[tuple[int, asyncio.Future[bytes]]]] = (
            collections.defaultdict(collections.deque)
        )

    # asyncio callbacks -------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def pause_writing(self) -> None:
        self.writable.clear()

    def resume_writing(self) -> None:
        self.writable.set()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.error is None:
            self.error = BenchError(f"connection lost: {exc or 'closed by peer'}")
        self._fail_waiters(self.error)
        self.writable.set()
        self.progress.set()

    def data_received(self, data: bytes) -> None:
        try:
            acks = self.receiver.feed(data)
        except BenchProtocolError as exc:
            self.error = exc
            self._fail_waiters(exc)
            self.progress.set()
            if self.transport is not None:
                self.transport.abort()
            return
        if acks:
            self.write(acks)
        self.progress.set()

    # slow path ---------------------------------------------------------------------------
    def _fail_waiters(self, exc: BaseException, channel: int | None = None) -> None:
        channels = [channel] if channel is not None else list(self._waiters)
        for ch in channels:
            queue = self._waiters.get(ch)
            while queue:
                _, fut = queue.popleft()
                if not fut.done():
                    fut.set_exception(exc)

    def _on_method(self, channel: int, class_id: int, method_id: int, args: bytes) -> None:
        key = (class_id << 16) | method_id
        if key in ((10 << 16) | 50, (20 << 16) | 40):  # connection.close / channel.close
            code = struct.unpack_from(">H", args)[0]
            text = args[3 : 3 + args[2]].decode(errors="replace")
            where = "connection" if class_id == 10 else f"channel {channel}"
            exc = BenchError(f"{where} closed by broker: {code} {text}")
            self.error = self.error or exc
            if class_id == 10:
                self.write(method_frame(0, 10, 51))
                self._fail_waiters(exc)
                if self.transport is not None:
                    self.transport.close()
            else:
                self.write(method_frame(channel, 20, 41))
                self._fail_waiters(exc, channel)
            self.progress.set()
            return
        if key == (10 << 16) | 60:  # connection.blocked: the broker throttles us; count it
            self.blocked += 1
            return
        if key == (60 << 16) | 50:  # basic.return (unroutable mandatory publish)
            self.returned += 1
            return
        if key == (60 << 16) | 30:  # the broker cancelled our consumer
            self.error = self.error or BenchError("consumer cancelled by the broker")
            self.progress.set()
            return
        queue = self._waiters.get(channel)
        if not queue:
            return  # unsolicited (connection.unblocked, ...)
        expected, fut = queue.popleft()
        if fut.done():
            return
        if key != expected:
            fut.set_exception(
                BenchError(
                    f"expected method {expected >> 16}.{expected & 0xFFFF}, got {class_id}.{method_id}"
                )
            )
        else:
            fut.set_result(args)

    # API -----------------------------------------------------------------------------------
    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def check(self) -> None:
        if self.error is not None:
            raise self.error

    def expect(self, channel: int, class_id: int, method_id: int) -> asyncio.Future[bytes]:
        fut: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._waiters[channel].append(((class_id << 16) | method_id, fut))
        return fut

    async def rpc(
        self,
        channel: int,
        class_id: int,
        method_id: int,
        args: bytes,
        reply: int,
        timeout: float = RPC_TIMEOUT,
    ) -> bytes:
        """Send a synchronous method; ``reply`` is the method id of the -ok in the same class."""
        if self.closed:
            self.check()
        fut = self.expect(channel, class_id, reply)
        self.write(method_frame(channel, class_id, method_id, args))
        return await asyncio.wait_for(fut, timeout)

    async def open_channel(self, channel: int) -> None:
        self.receiver.channel(channel)
        await self.rpc(channel, 20, 10, shortstr(""), 11)

    async def declare_exchange(
        self, channel: int, name: str, kind: str, *, durable: bool = False
    ) -> None:
        args = (
            b"\x00\x00"
            + shortstr(name)
            + shortstr(kind)
            + bits(False, durable, False, False, False)
            + table({})
        )
        await self.rpc(channel, 40, 10, args, 11)

    async def delete_exchange(self, channel: int, name: str) -> None:
        await self.rpc(channel, 40, 20, b"\x00\x00" + shortstr(name) + b"\x00", 21)

    async def declare_queue(
        self,
        channel: int,
        name: str,
        *,
        durable: bool = False,
        passive: bool = False,
        arguments: dict[str, FieldValue] | None = None,
    ) -> tuple[str, int, int]:
        """Returns (queue name, message count, consumer count)."""
        args = (
            b"\x00\x00"
            + shortstr(name)
            + bits(passive, durable, False, False, False)
            + table(arguments)
        )
        reply = await self.rpc(channel, 50, 10, args, 11)
        nlen = reply[0]
        messages, consumers = struct.unpack_from(">II", reply, 1 + nlen)
        return reply[1 : 1 + nlen].decode(), messages, consumers

    async def bind_queue(self, channel: int, queue: str, exchange: str, routing_key: str) -> None:
        args = (
            b"\x00\x00"
            + shortstr(queue)
            + shortstr(exchange)
            + shortstr(routing_key)
            + b"\x00"
            + table({})
        )
        await self.rpc(channel, 50, 20, args, 21)

    async def delete_queue(self, channel: int, name: str) -> None:
        await self.rpc(channel, 50, 40, b"\x00\x00" + shortstr(name) + b"\x00", 41)

    async def qos(self, channel: int, prefetch: int) -> None:
        await self.rpc(channel, 60, 10, struct.pack(">IHB", 0, prefetch, 0), 11)

    async def consume(
        self,
        channel: int,
        queue: str,
        tag: str,
        *,
        ack_every: int,
        arguments: dict[str, FieldValue] | None = None,
    ) -> None:
        self.receiver.set_ack_every(channel, ack_every)
        args = (
            b"\x00\x00"
            + shortstr(queue)
            + shortstr(tag)
            + bits(False, False, False, False)
            + table(arguments)
        )
        await self.rpc(channel, 60, 20, args, 21)

    async def confirm_select(self, channel: int) -> ConfirmTracker:
        tracker = self.receiver.track_confirms(channel)
        await self.rpc(channel, 85, 10, b"\x00", 11)
        return tracker

    async def close(self, timeout: float = 5.0) -> None:
        if self.closed or self.transport is None:
            return
        try:
            await self.rpc(
                0,
                10,
                50,
                struct.pack(">H", 200) + shortstr("bye") + struct.pack(">HH", 0, 0),
                51,
                timeout,
            )
        except (BenchError, BenchProtocolError, TimeoutError, OSError):
            pass  # closing anyway
        if self.transport is not None:
            self.transport.close()


def tls_context(url: str) -> ssl.SSLContext | None:
    """The client context of an ``amqps://`` URL (None for ``amqp://``): the CA from
    ``?cacertfile=``, or no check of the server's certificate with ``?verify=verify_none``
    (RabbitMQ's URI query parameters)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "amqps":
        return None
    query = dict(urllib.parse.parse_qsl(parts.query))
    context = ssl.create_default_context(cafile=query.get("cacertfile"))
    if query.get("verify") == "verify_none":
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


async def connect(
    url: str,
    name: str = "amqplite-bench",
    *,
    progress: asyncio.Event | None = None,
    timeout: float = RPC_TIMEOUT,
) -> BenchConnection:
    """Open a connection: PLAIN auth, accept the server's frame_max (capped), heartbeat 0."""
    host, port, user, password, vhost = parse_url(url)
    loop = asyncio.get_running_loop()
    conn = BenchConnection(progress)
    await asyncio.wait_for(
        loop.create_connection(lambda: conn, host, port, ssl=tls_context(url)), timeout
    )
    start = conn.expect(0, 10, 10)
    conn.write(PROTOCOL_HEADER)
    try:
        await asyncio.wait_for(start, timeout)
        properties = table(
            {
                "product": "amqplite-bench",
                "version": CLIENT_VERSION,
                "platform": "Python",
                "connection_name": name,
                "capabilities": {
                    "publisher_confirms": True,
                    "consumer_cancel_notify": True,
                    "basic.nack": True,
                    "connection.blocked": True,
                    "authentication_failure_close": True,
                },
            }
        )
        tune = conn.expect(0, 10, 30)
        response = longstr(b"\x00" + user.encode() + b"\x00" + password.encode())
        conn.write(
            method_frame(0, 10, 11, properties + shortstr("PLAIN") + response + shortstr("en_US"))
        )
        tune_args = await asyncio.wait_for(tune, timeout)
        channel_max, frame_max, _heartbeat = struct.unpack_from(">HIH", tune_args)
        conn.frame_max = min(frame_max or DEFAULT_FRAME_MAX, DEFAULT_FRAME_MAX)
        conn.write(
            method_frame(0, 10, 31, struct.pack(">HIH", channel_max or 2047, conn.frame_max, 0))
        )
        await conn.rpc(0, 10, 40, shortstr(vhost) + shortstr("") + b"\x00", 41, timeout)
    except BaseException:
        if conn.transport is not None:
            conn.transport.abort()
        raise
    return conn


async def pipelined(calls: Iterable[Coroutine[Any, Any, object]], window: int = 2000) -> None:
    """Await coroutines in windows of ``window`` so many RPCs share a round trip."""
    batch: list[Coroutine[Any, Any, object]] = []
    for call in calls:
        batch.append(call)
        if len(batch) >= window:
            await asyncio.gather(*batch)
            batch = []
    if batch:
        await asyncio.gather(*batch)
