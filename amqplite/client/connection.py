"""A blocking AMQP 0-9-1 connection on a socket, plain or TLS (client layer, used by the CLI).

Theory of operation: one thread, no background reader.  Every blocking call sends its
method and then *pumps* frames off the socket until what it waits for has arrived; frames
that belong to something else are filed where their owner will look: deliveries and
returns in their channel's queues, publisher confirms in the channel's confirm state, a
``channel.close`` from the broker marks that channel closed (its next call raises
:class:`~amqplite.client.errors.ChannelClosed`), a ``connection.close`` raises
:class:`~amqplite.client.errors.ConnectionClosed` at once.  Content frames of different
channels may interleave (the spec allows it), so each channel assembles its own.

Heartbeats are turned off (tune-ok heartbeat 0, which RabbitMQ honours): a CLI command
either talks to the broker or ends.  The frame codec is the broker's own
(:mod:`amqplite.protocol`), so client and server agree byte for byte.
"""

from __future__ import annotations

import logging
import socket
import ssl
import time
from typing import Any, TypeVar

from amqplite.client.channel import Channel
from amqplite.client.errors import ClientError, ConnectionClosed, DeadlineReached
from amqplite.client.url import AmqpUrl, TlsOptions, parse_url
from amqplite.errors import AMQPConnectionError as ProtocolError
from amqplite.protocol import methods
from amqplite.protocol.frames import (
    FRAME_BODY,
    FRAME_HEADER,
    FRAME_HEARTBEAT,
    FRAME_METHOD,
    PROTOCOL_HEADER,
    Frame,
    decode_frame,
    encode_method_frame,
)

log = logging.getLogger(__name__)

M = TypeVar("M", bound=methods.Method)

CLIENT_PROPERTIES: dict[str, Any] = {
    "product": "amqplite-client",
    "platform": "Python",
    "capabilities": {
        "authentication_failure_close": True,  # a refused login is a 403 close, not a hang-up
        "publisher_confirms": True,
        "basic.nack": True,
        "consumer_cancel_notify": True,
        "exchange_exchange_bindings": True,
    },
}
DEFAULT_FRAME_MAX = 131072
_RECV = 65536


class Connection:
    """One AMQP connection.  Use :func:`connect`; close it (or use ``with``)."""

    def __init__(self, url: AmqpUrl, sock: socket.socket, timeout: float | None) -> None:
        self.url = url
        self._sock = sock
        self._timeout = timeout
        self._buf = bytearray()
        self._pos = 0
        self.frame_max = DEFAULT_FRAME_MAX
        self.channel_max = 2047
        self.server_properties: dict[str, Any] = {}
        self.blocked: str | None = None  # connection.blocked reason, if the broker blocked us
        self._channels: dict[int, Channel] = {}
        self._next_channel = 1
        self._closed = False

    # -- life cycle ------------------------------------------------------------------------

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def is_open(self) -> bool:
        return not self._closed

    def _handshake(self) -> None:
        self._sock.sendall(PROTOCOL_HEADER)
        start = self._expect0(methods.ConnectionStart, "connection.start")
        self.server_properties = start.server_properties
        u = self.url
        mechanism = u.auth_mechanism
        if mechanism.encode() not in start.mechanisms.split():
            hint = " (no verified client certificate?)" if mechanism == "EXTERNAL" else ""
            raise ClientError(
                f"the broker does not offer {mechanism} login ({start.mechanisms!r}){hint}"
            )
        response = b""  # EXTERNAL: the user is the client certificate's
        if mechanism == "PLAIN":
            response = b"\0" + u.username.encode() + b"\0" + u.password.encode()
        self.send_method(
            0, methods.ConnectionStartOk(CLIENT_PROPERTIES, mechanism, response, "en_US")
        )
        tune = self._expect0(methods.ConnectionTune, "connection.tune (login refused?)")
        self.channel_max = min(tune.channel_max or 2047, 2047)
        self.frame_max = min(tune.frame_max or DEFAULT_FRAME_MAX, DEFAULT_FRAME_MAX)
        self.send_method(0, methods.ConnectionTuneOk(self.channel_max, self.frame_max, 0))
        self.send_method(0, methods.ConnectionOpen(virtual_host=u.vhost))
        self._expect0(methods.ConnectionOpenOk, "connection.open-ok")

    def _expect0(self, kind: type[M], what: str) -> M:
        while True:
            frame = self._read_frame(what)
            if frame.type == FRAME_HEARTBEAT:
                continue
            if frame.type != FRAME_METHOD or frame.channel != 0:
                raise ClientError(f"unexpected frame while waiting for {what}")
            method = self._decode(frame)
            if isinstance(method, methods.ConnectionClose):
                self._on_connection_close(method)
            if not isinstance(method, kind):
                raise ClientError(f"expected {kind.NAME}, got {method.NAME}")
            return method

    def close(self) -> None:
        """Close gracefully (connection.close / close-ok); never raises."""
        if self._closed:
            return
        try:
            self.send_method(0, methods.ConnectionClose(200, "Goodbye"))
            deadline = time.monotonic() + 2.0
            self._sock.settimeout(2.0)
            while time.monotonic() < deadline:
                frame = self._read_frame("connection.close-ok")
                if (
                    frame.type == FRAME_METHOD
                    and frame.channel == 0
                    and isinstance(self._decode(frame), methods.ConnectionCloseOk)
                ):
                    break
        except (OSError, ClientError):
            pass  # the broker went away first: closed all the same
        finally:
            self._shutdown()

    def _shutdown(self) -> None:
        self._closed = True
        for ch in self._channels.values():
            ch.connection_closed()
        try:
            self._sock.close()
        except OSError:
            pass

    # -- channels --------------------------------------------------------------------------

    def channel(self) -> Channel:
        """Open a new channel."""
        self._check_open()
        number = self._next_channel
        for _ in range(self.channel_max):
            if number not in self._channels:
                break
            number = number % self.channel_max + 1
        else:
            raise ClientError("no free channel numbers")
        self._next_channel = number % self.channel_max + 1
        ch = Channel(self, number)
        self._channels[number] = ch
        ch.call(methods.ChannelOpen(), methods.ChannelOpenOk)
        return ch

    def forget_channel(self, number: int) -> None:
        self._channels.pop(number, None)

    # -- frames out ------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise ClientError("the connection is closed")

    def send_method(self, channel: int, method: methods.Method) -> None:
        self.send_bytes(encode_method_frame(channel, method))

    def send_bytes(self, data: bytes) -> None:
        self._check_open()
        try:
            self._sock.sendall(data)
        except OSError as exc:
            self._shutdown()
            raise ClientError(f"lost the connection to {self.url}: {exc}") from None

    # -- frames in -------------------------------------------------------------------------

    def _read_frame(self, what: str, deadline: float | None = None) -> Frame:
        while True:
            if self._pos == 0 and bytes(self._buf[:5]) == b"HTTP/":
                # An HTTP server (a management port, RabbitMQ's or ours) answered our header.
                status = bytes(self._buf[: self._buf.find(b"\r")]).decode("latin-1")[:60]
                self._shutdown()
                raise ClientError(
                    f"{self.url.host}:{self.url.port}: this is not an AMQP port "
                    f"(it answered with HTTP: {status!r}); is it the management/HTTP port?"
                )
            try:
                decoded = decode_frame(self._buf, self._pos)
            except ProtocolError as exc:
                self._shutdown()
                raise ClientError(f"malformed frame from the broker: {exc.reply_text}") from None
            if decoded is not None:
                frame, self._pos = decoded
                if self._pos > _RECV and self._pos * 2 > len(self._buf):
                    del self._buf[: self._pos]
                    self._pos = 0
                return frame
            if self._buf[self._pos : self._pos + 8] == PROTOCOL_HEADER:
                # Our own 0-9-1 header sent back: no broker refuses the version it speaks;
                # amqplite's HTTP port answers an AMQP client this way.
                self._shutdown()
                raise ClientError(
                    f"{self.url.host}:{self.url.port}: this is not an AMQP port (it sent the "
                    "protocol header back at once); is it the management/HTTP port, or a TLS "
                    "port (use amqps://)?"
                )
            if self._buf[self._pos : self._pos + 4] == b"AMQP":
                self._shutdown()
                raise ClientError(
                    f"the broker at {self.url.host}:{self.url.port} does not speak AMQP 0-9-1"
                )
            self._recv(what, deadline)

    def _recv(self, what: str, deadline: float | None) -> None:
        timeout = self._timeout
        if deadline is not None:
            left = max(deadline - time.monotonic(), 0.0)
            timeout = left if timeout is None else min(timeout, left)
        try:
            self._sock.settimeout(timeout)
            data = self._sock.recv(_RECV)
        except TimeoutError:
            if deadline is not None and time.monotonic() >= deadline:
                raise DeadlineReached from None
            self._shutdown()
            raise ClientError(f"timed out waiting for {what} from {self.url}") from None
        except OSError as exc:
            self._shutdown()
            raise ClientError(f"lost the connection to {self.url}: {exc}") from None
        if not data:
            self._shutdown()
            raise ClientError(f"the broker closed the connection while we waited for {what}")
        self._buf += data

    def _decode(self, frame: Frame) -> methods.Method:
        p = frame.payload
        if len(p) < 4:
            raise ClientError("method frame too short")
        key = int.from_bytes(p[0:2]) << 16 | int.from_bytes(p[2:4])
        decoder = methods.DECODERS.get(key)
        if decoder is None:
            raise ClientError(f"unknown method {key >> 16}/{key & 0xFFFF} from the broker")
        try:
            return decoder(p, 4, len(p))
        except (ValueError, IndexError) as exc:
            raise ClientError(f"malformed method from the broker: {exc}") from None

    def pump(self, what: str, deadline: float | None = None) -> None:
        """Read and dispatch one frame (raises :class:`DeadlineReached` when ``deadline`` passes)."""
        frame = self._read_frame(what, deadline)
        if frame.type == FRAME_HEARTBEAT:
            return
        if frame.channel == 0:
            if frame.type != FRAME_METHOD:
                raise ClientError("content frame on channel 0")
            method = self._decode(frame)
            if isinstance(method, methods.ConnectionClose):
                self._on_connection_close(method)
            elif isinstance(method, methods.ConnectionBlocked):
                self.blocked = method.reason or "blocked"
            elif isinstance(method, methods.ConnectionUnblocked):
                self.blocked = None
            return
        ch = self._channels.get(frame.channel)
        if ch is None:
            log.debug("frame for unknown channel %d dropped", frame.channel)
            return
        if frame.type == FRAME_METHOD:
            ch.on_method(self._decode(frame))
        elif frame.type == FRAME_HEADER:
            ch.on_header(frame.payload)
        elif frame.type == FRAME_BODY:
            ch.on_body(frame.payload)

    def _on_connection_close(self, method: methods.ConnectionClose) -> None:
        try:
            self.send_method(0, methods.ConnectionCloseOk())
        except ClientError:
            pass
        self._shutdown()
        raise ConnectionClosed(
            method.reply_code, method.reply_text, method.class_id, method.method_id
        )


def tls_context(options: TlsOptions) -> ssl.SSLContext:
    """The client's SSL context for an ``amqps`` URL's options."""
    try:
        context = ssl.create_default_context(cafile=options.cacertfile)
        if options.certfile is not None:
            context.load_cert_chain(options.certfile, options.keyfile)
    except (OSError, ssl.SSLError) as exc:
        reason = getattr(exc, "strerror", None) or getattr(exc, "reason", None) or str(exc)
        raise ClientError(f"cannot load the TLS files of the URL: {reason}") from None
    if not options.verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _wrap_tls(sock: socket.socket, url: AmqpUrl, options: TlsOptions) -> socket.socket:
    try:
        context = tls_context(options)
        return context.wrap_socket(sock, server_hostname=options.server_name_indication or url.host)
    except (OSError, ClientError) as exc:
        sock.close()
        if isinstance(exc, ClientError):
            raise
        reason = _tls_reason(exc)
        raise ClientError(f"TLS handshake with {url.host}:{url.port} failed: {reason}") from None


def _tls_reason(exc: OSError) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError) and exc.verify_message:
        return f"certificate verify failed: {exc.verify_message}"
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return exc.reason
    return exc.strerror or str(exc)


def connect(url: str | AmqpUrl, *, timeout: float | None = 10.0) -> Connection:
    """Open a connection: TCP, PLAIN login, tune, open the URL's vhost.

    Raises :class:`ClientError` (refused, timed out, not AMQP) or
    :class:`ConnectionClosed` (403 login refused, 530 no such vhost / no access).
    """
    parsed = url if isinstance(url, AmqpUrl) else parse_url(url)
    try:
        sock = socket.create_connection((parsed.host, parsed.port), timeout=timeout)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise ClientError(f"cannot connect to {parsed.host}:{parsed.port}: {reason}") from None
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if parsed.tls is not None:
        sock = _wrap_tls(sock, parsed, parsed.tls)
    conn = Connection(parsed, sock, timeout)
    try:
        conn._handshake()
    except ConnectionClosed:
        conn._shutdown()
        raise
    except ClientError as exc:
        conn._shutdown()
        if "closed the connection" in str(exc):
            raise ClientError(
                f"{parsed.host}:{parsed.port} closed the connection during login "
                f"(wrong user or password for {parsed.username!r}?)"
            ) from None
        raise
    return conn
