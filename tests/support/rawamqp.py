"""A minimal raw AMQP 0-9-1 client over a trio socket, for driving the server byte by byte.

It encodes with the protocol package's method classes (the codec has its own tests) and
lets a test send anything at all: bad headers, garbage frames, out-of-order content.
"""

from __future__ import annotations

import itertools
import struct
from typing import Any, TypeVar

import trio

from amqplite.protocol import methods as m
from amqplite.protocol.fields import encode_table
from amqplite.protocol.frames import PROTOCOL_HEADER, encode_frame, encode_method_frame

M = TypeVar("M", bound=m.Method)

FRAME_HEAD = struct.Struct(">BHI")


def method_frame(channel: int, method: m.Method) -> bytes:
    return encode_method_frame(channel, method)


def header_frame(channel: int, body_size: int, raw_properties: bytes = b"\x00\x00") -> bytes:
    return encode_frame(2, channel, struct.pack(">HHQ", 60, 0, body_size) + raw_properties)


def body_frame(channel: int, body: bytes) -> bytes:
    return encode_frame(3, channel, body)


def publish_frames(channel: int, exchange: str, routing_key: str, body: bytes) -> bytes:
    return (
        method_frame(channel, m.BasicPublish(0, exchange, routing_key, False, False))
        + header_frame(channel, len(body))
        + body_frame(channel, body)
    )


class RawClient:
    """One socket to the broker and a frame reader."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self._buf = bytearray()

    @classmethod
    async def connect(cls, port: int) -> RawClient:
        return cls(await trio.open_tcp_stream("127.0.0.1", port))

    async def send(self, data: bytes) -> None:
        await self.stream.send_all(data)

    async def send_method(self, channel: int, method: m.Method) -> None:
        await self.send(method_frame(channel, method))

    async def _fill(self, n: int) -> bool:
        while len(self._buf) < n:
            data = await self.stream.receive_some(65536)
            if not data:
                return False
            self._buf += data
        return True

    async def read_bytes(self, n: int) -> bytes:
        if not await self._fill(n):
            raise EOFError(bytes(self._buf))
        data = bytes(self._buf[:n])
        del self._buf[:n]
        return data

    async def read_frame(self) -> tuple[int, int, bytes]:
        """(type, channel, payload); EOFError when the server closed the socket."""
        head = await self.read_bytes(7)
        ftype, channel, size = FRAME_HEAD.unpack(head)
        payload = await self.read_bytes(size + 1)
        assert payload[-1] == 0xCE, "bad frame end from the server"
        return ftype, channel, payload[:-1]

    async def read_method(self) -> tuple[int, m.Method]:
        """The next method frame (skipping heartbeats, content frames)."""
        while True:
            ftype, channel, payload = await self.read_frame()
            if ftype == 1:
                class_id, method_id = struct.unpack_from(">HH", payload)
                decoder = m.DECODERS[class_id << 16 | method_id]
                return channel, decoder(payload, 4, len(payload))

    async def expect(self, cls: type[M]) -> M:
        _, method = await self.read_method()
        assert isinstance(method, cls), f"expected {cls.NAME}, got {method!r}"
        return method

    async def at_eof(self) -> bool:
        """True if the server closed the socket (after discarding anything before)."""
        while True:
            data = await self.stream.receive_some(65536)
            if not data:
                return True

    async def handshake(
        self,
        *,
        user: str = "guest",
        password: str = "guest",
        vhost: str = "/",
        heartbeat: int = 0,
        capabilities: dict[str, Any] | None = None,
    ) -> m.ConnectionTune:
        await self.send(PROTOCOL_HEADER)
        start = await self.expect(m.ConnectionStart)
        assert b"PLAIN" in start.mechanisms
        props = {"product": "rawamqp", "capabilities": capabilities or {}}
        response = b"\x00" + user.encode() + b"\x00" + password.encode()
        await self.send_method(0, m.ConnectionStartOk(props, "PLAIN", response, "en_US"))
        tune = await self.expect(m.ConnectionTune)
        await self.send_method(0, m.ConnectionTuneOk(tune.channel_max, tune.frame_max, heartbeat))
        await self.send_method(0, m.ConnectionOpen(vhost, "", False))
        await self.expect(m.ConnectionOpenOk)
        return tune

    async def open_channel(self, channel: int = 1) -> None:
        await self.send_method(channel, m.ChannelOpen(""))
        ch, _ = await self.read_method()
        assert ch == channel

    async def declare_queue(self, channel: int, name: str, **kwargs: Any) -> m.QueueDeclareOk:
        await self.send_method(channel, m.QueueDeclare(0, name, **kwargs))
        return await self.expect(m.QueueDeclareOk)

    async def aclose(self) -> None:
        await self.stream.aclose()


_names = itertools.count()


async def assert_alive(client: RawClient) -> None:
    """A full round trip on the connection (a queue.declare answered with declare-ok)."""
    name = f"alive-{next(_names)}"
    ok = await client.declare_queue(1, name, exclusive=True)
    assert ok.queue == name


__all__ = [
    "RawClient",
    "assert_alive",
    "body_frame",
    "encode_table",
    "header_frame",
    "method_frame",
]
