"""A tiny blocking raw AMQP 0-9-1 client for the conformance scenarios that must see
frames exactly as the broker sends them (tune values, server properties, frame order),
which a full client library would negotiate or reorder away.

Test helper (not a test module); it encodes and decodes with the protocol package's
method classes, which have their own tests.
"""

from __future__ import annotations

import socket
import struct
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

from amqplite.protocol import methods as m
from amqplite.protocol.frames import PROTOCOL_HEADER, encode_frame, encode_method_frame

M = TypeVar("M", bound=m.Method)

FRAME_HEAD = struct.Struct(">BHI")


class WireClient:
    """One blocking socket to the broker; every read has a deadline (the socket timeout)."""

    def __init__(self, url: str, *, timeout: float = 5.0) -> None:
        parts = urlsplit(url)
        self.user = unquote(parts.username or "guest")
        self.password = unquote(parts.password or "guest")
        vhost = unquote(parts.path[1:]) if len(parts.path) > 1 else "/"
        self.vhost = vhost
        self.sock = socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 5672))
        self.sock.settimeout(timeout)
        self._buf = bytearray()

    def close(self) -> None:
        self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send_method(self, channel: int, method: m.Method) -> None:
        self.send(encode_method_frame(channel, method))

    def publish(
        self, channel: int, exchange: str, routing_key: str, body: bytes, *, mandatory: bool
    ) -> None:
        header = struct.pack(">HHQ", 60, 0, len(body)) + b"\x00\x00"
        self.send(
            encode_method_frame(channel, m.BasicPublish(0, exchange, routing_key, mandatory, False))
            + encode_frame(2, channel, header)
            + encode_frame(3, channel, body)
        )

    def _read_bytes(self, n: int) -> bytes:
        while len(self._buf) < n:
            data = self.sock.recv(65536)
            if not data:
                raise EOFError(bytes(self._buf))
            self._buf += data
        data = bytes(self._buf[:n])
        del self._buf[:n]
        return data

    def read_method(self) -> tuple[int, m.Method]:
        """The next method frame (heartbeats and content frames skipped)."""
        while True:
            ftype, channel, size = FRAME_HEAD.unpack(self._read_bytes(7))
            payload = self._read_bytes(size + 1)[:-1]
            if ftype == 1:
                class_id, method_id = struct.unpack_from(">HH", payload)
                return channel, m.DECODERS[class_id << 16 | method_id](payload, 4, len(payload))

    def expect(self, cls: type[M]) -> M:
        _, method = self.read_method()
        assert isinstance(method, cls), f"expected {cls.NAME}, got {method!r}"
        return method

    def start(self) -> m.ConnectionStart:
        self.send(PROTOCOL_HEADER)
        return self.expect(m.ConnectionStart)

    def login(self, capabilities: dict[str, Any] | None = None) -> m.ConnectionTune:
        props = {"product": "conformance", "capabilities": capabilities or {}}
        response = b"\x00" + self.user.encode() + b"\x00" + self.password.encode()
        self.send_method(0, m.ConnectionStartOk(props, "PLAIN", response, "en_US"))
        return self.expect(m.ConnectionTune)

    def open(self, tune: m.ConnectionTune, *, heartbeat: int = 0) -> None:
        self.send_method(0, m.ConnectionTuneOk(tune.channel_max, tune.frame_max, heartbeat))
        self.send_method(0, m.ConnectionOpen(self.vhost, "", False))
        self.expect(m.ConnectionOpenOk)

    def handshake(self, capabilities: dict[str, Any] | None = None) -> None:
        self.start()
        self.open(self.login(capabilities))

    def open_channel(self, channel: int = 1) -> None:
        self.send_method(channel, m.ChannelOpen(""))
        self.expect(m.ChannelOpenOk)
