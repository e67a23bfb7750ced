"""The server side of one AMQP 0-9-1 connection as a sans-I/O state machine (protocol layer, pure).

Theory of operation (after h11): the server feeds received bytes to
:meth:`ServerConnection.receive_data` (``b""`` for EOF) and pulls events with
:meth:`~ServerConnection.next_event` until it returns :data:`NEED_DATA`
(:meth:`~ServerConnection.next_events` drains them all into a list).  Everything the
server sends goes through :meth:`~ServerConnection.send_method` or the content
encoders, which return bytes and update the state.  No I/O, no clock.

What this layer checks, following RabbitMQ's reader and command assembler:

* the protocol header (a wrong one yields :class:`~amqplite.protocol.events.ProtocolHeaderMismatch`
  with our header to write back, then the input is ignored);
* framing: frame end 0xCE, payload size against the negotiated frame_max, known frame
  types (all 501 FRAME_ERROR, after which the input stream is abandoned as RabbitMQ does
  since sync is lost);
* the handshake order on channel 0: start-ok, (secure-ok), tune-ok, open; any other
  method there is 504 CHANNEL_ERROR "unexpected method in connection state X"; frames on
  other channels before the connection is open are 505 UNEXPECTED_FRAME;
* tune-ok against what the server proposed (530 NOT_ALLOWED above the maximum);
* channel bookkeeping: a channel must be opened with channel.open (504 "expected
  'channel.open'"), not twice (504 "second 'channel.open' seen"); at most channel_max
  channels are open at once (530), whatever their numbers, as in RabbitMQ; a close-ok
  that answers no channel.close of ours is 503.  After the server sends channel.close,
  everything on that channel but channel.close / close-ok is dropped; the channel is free
  again once close-ok passes either way;
* content assembly per channel: method, header, body frames up to body size (505 for
  frames out of order, 501 for a body frame past the body size or a body over
  ``max_message_size``);
* after a connection.close either way, everything but connection.close / close-ok is
  discarded.

Speed: the input is one bytearray parsed at an offset and compacted once per
``receive_data``; a publish whose header and single body frame are already buffered is
checked and decoded in one step of :meth:`~ServerConnection.next_event` into the
:class:`~amqplite.message.Message` the broker takes (the Content event carries it, so a
publish costs two objects here); publish payloads and header property blocks (without a
headers table) repeat from message to message and are decoded once, through small
process-wide memo tables of frozen values.

The session reads the states this layer keeps (:attr:`~ServerConnection.handshaking`,
:attr:`~ServerConnection.closing`, the negotiated values, which channels are open) instead
of keeping copies, and relies on it to pass only the events valid in them.

Soft (channel) errors are the session's business; this layer raises
:class:`amqplite.errors.AMQPConnectionError`, plus one :class:`~amqplite.errors.ChannelError`
(406, a body over the configured ``max_message_size``, as RabbitMQ; the channel is then
marked closing so its remaining body frames are dropped).  After one is raised, the session sends
connection.close with it (via :meth:`send_method`) and closes the socket after close-ok or
a timeout.
"""

from __future__ import annotations

import ctypes
import struct
import sys
from collections.abc import Callable
from typing import Any, Final

from amqplite.errors import AMQPConnectionError, ChannelError, ReplyCode
from amqplite.message import BasicProperties, Body, Message
from amqplite.protocol import events, methods
from amqplite.protocol.events import EOF_EVENT, HEARTBEAT, PROTOCOL_HEADER, Event
from amqplite.protocol.fields import DECODE_ERRORS, Buffer
from amqplite.protocol.frames import (
    FRAME_BODY,
    FRAME_END,
    FRAME_HEAD,
    FRAME_HEADER,
    FRAME_HEARTBEAT,
    FRAME_METHOD,
    FRAME_MIN_SIZE,
    bad_frame_end,
    check_frame_head,
    deliver_parts,
    encode_deliver,
    encode_method_frame,
    get_ok_parts,
    payload_snippet,
    return_parts,
    unknown_frame,
)
from amqplite.protocol.frames import (
    PROTOCOL_HEADER as OUR_PROTOCOL_HEADER,
)
from amqplite.protocol.methods import DECODERS
from amqplite.protocol.properties import decode_property_list


class _NeedData:
    __slots__ = ()

    def __repr__(self) -> str:
        return "NEED_DATA"


#: Returned by :meth:`ServerConnection.next_event` when more bytes are needed.
NEED_DATA: Final = _NeedData()

#: Body frames at least this long are received in place when they arrive in pieces.
DIRECT_MIN = 8192
#: ... when at least this much of the frame is still to come, or the body starts ``PEEK``
#: mode: for less, a system call of its own costs more than copying it out of the next
#: full read.
DIRECT_REST_MIN = 32768
#: Once a body at least this long is received in place, reads are short (``PEEK``) until
#: a smaller body comes: the next message's method, header and first body frame head, so
#: that its body too is received in place rather than mostly within one large read and
#: copied out.
PEEK_MIN = 65536
#: The short read's size: a publish method and content header fit many times over.
PEEK = 4096
#: Most body frames one read takes in place beyond the current one (``next_read``): with
#: 128 KiB frames, 4 MiB; each costs two iovec entries (its 8-byte gap and its payload).
SCATTER_FRAMES = 32
# Shared stand-ins until a connection first scatters (never written to).
_NO_GAPS = bytearray()
_NO_PLAN: list[int] = []

#: Bytes of body buffers a connection may reserve before their data has arrived.  Within
#: it a body is allocated whole at its first frame (no regrowth, no copy); beyond it, it
#: grows with what arrives (at most doubling), so announcing large bodies costs a peer
#: little memory it has not sent.  (A body abandoned half-way, its channel closed, keeps
#: its share: that connection's later bodies just grow instead.)
RESERVE_BUDGET = 8 << 20

#: RabbitMQ's hard limit on a message body (``?MAX_MSG_SIZE``, 512 MiB).
MAX_MESSAGE_SIZE = 536_870_912

# Protocol headers RabbitMQ treats as 0-9-1.
_ACCEPTED_HEADERS = (OUR_PROTOCOL_HEADER, b"AMQP\x01\x01\x00\x09")

_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
# A content header frame's head (type, channel, size) and its class, weight and body size.
_HEADER_START = struct.Struct(">BHIHHQ")

# Process-wide memo tables for values that repeat message after message (pure functions
# of their keys, so sharing them between connections is safe); bounded by clearing.
_CACHE_SIZE = 4096
_publish_cache: dict[bytes, methods.BasicPublish] = {}
_properties_cache: dict[bytes, BasicProperties] = {}
_HEADERS_HIGH_BIT = 0x20  # the headers flag (bit 13) within the first flag octet
_HEADER_FIELDS = struct.Struct(">HHQ")
# The hot path's unpacks.  A method frame's head and its class/method key; then, from
# that frame's end octet on, the end octet and the next frame's type as one short, its
# channel, its size, and for a content header its class and weight as one word and the
# body size; the same for the body frame up to its size.
_METHOD_START = struct.Struct(">BHII")
_END_HEADER = struct.Struct(">HHIIQ")
_END_BODY = struct.Struct(">HHI")
# (Small ints: Python compares those fastest.)
_END_HEADER_TYPE = FRAME_END << 8 | FRAME_HEADER
_END_BODY_TYPE = FRAME_END << 8 | FRAME_BODY
_BASIC_WEIGHT_0 = 60 << 16  # a content header of class basic, weight 0
_tuple_new = tuple.__new__


def _key(method: type[methods.Method]) -> int:
    return method.CLASS_ID << 16 | method.METHOD_ID


_PUBLISH = _key(methods.BasicPublish)
_ACK = _key(methods.BasicAck)
# basic.ack's arguments: delivery tag, then the multiple bit.
_ACK_ARGS = struct.Struct(">QB")
# A whole basic.ack frame after its first 11 bytes (frame type, channel, size 13, class
# 60, method 80): the tag, the bits, the frame end; and those 11 bytes after the channel.
_ACK_TAIL = struct.Struct(">QBB")
_ACK_HEAD_REST = b"\x00\x00\x00\x0d\x00\x3c\x00\x50"
# Sixteen whole basic.ack frames: (first 11 bytes, tag, bits and frame end) each.
_ACK_BLOCK_FRAMES = 16
_ACK_BLOCK = struct.Struct(">" + "11sQH" * _ACK_BLOCK_FRAMES)
_START_OK = _key(methods.ConnectionStartOk)
_SECURE_OK = _key(methods.ConnectionSecureOk)
_TUNE_OK = _key(methods.ConnectionTuneOk)
_OPEN = _key(methods.ConnectionOpen)
_CLOSE = _key(methods.ConnectionClose)
_CLOSE_OK = _key(methods.ConnectionCloseOk)
_UPDATE_SECRET = _key(methods.ConnectionUpdateSecret)
_CHANNEL_OPEN = _key(methods.ChannelOpen)
_CHANNEL_CLOSE = _key(methods.ChannelClose)
_CHANNEL_CLOSE_OK = _key(methods.ChannelCloseOk)

# Connection states, named as RabbitMQ names them (they appear in error texts).
AWAITING_HEADER = "awaiting_header"
STARTING = "starting"
SECURING = "securing"
TUNING = "tuning"
OPENING = "opening"
RUNNING = "running"
CLOSING = "closing"
CLOSED = "closed"

#: Before connection.open has passed: the server times the handshake out.
_HANDSHAKE_STATES = frozenset({AWAITING_HEADER, STARTING, SECURING, TUNING, OPENING})

# Channel states.
_CH_OPEN = 1
_CH_CLOSING = 2  # the server sent channel.close


def _decode_publish(payload: bytes) -> methods.BasicPublish:
    """Decode a basic.publish frame's payload (key included) and remember it: publishers
    repeat the same exchange and routing key, and the method object is immutable."""
    method = ServerConnection._decode(_PUBLISH, payload, 4, len(payload))
    assert isinstance(method, methods.BasicPublish)
    if len(_publish_cache) >= _CACHE_SIZE:
        _publish_cache.clear()
    _publish_cache[payload] = method
    return method


def _decode_properties(raw: bytes, class_id: int = 60, method_id: int = 40) -> BasicProperties:
    """Decode a basic.publish's content header property flags and list (501 if malformed).

    Property sets repeat across messages: the frozen value is remembered and shared,
    except when it holds a headers table (a mutable dict better not shared between
    messages)."""
    try:
        properties = decode_property_list(raw, 0, len(raw))
    except DECODE_ERRORS as exc:
        raise AMQPConnectionError(
            ReplyCode.FRAME_ERROR, f"malformed content header: {exc}", class_id, method_id
        ) from None
    if not raw[0] & _HEADERS_HIGH_BIT and len(raw) <= 512:
        if len(_properties_cache) >= _CACHE_SIZE:
            _properties_cache.clear()
        _properties_cache[raw] = properties
    return properties


def _content(
    channel: int, method: methods.Method, properties: BasicProperties, raw: bytes, body: Body
) -> events.Content:
    """The Content event of an assembled publish (the general path's).  (A client may send
    only basic.publish with content; any other is refused by the session.)"""
    exchange: str = method.exchange  # type: ignore[attr-defined]
    routing_key: str = method.routing_key  # type: ignore[attr-defined]
    message = Message(exchange, routing_key, properties, body, raw)
    return events.Content(channel, method, message)  # type: ignore[arg-type]


class _Assembly:
    """Content being assembled on one channel."""

    __slots__ = ("body", "budgeted", "filled", "method", "properties", "raw", "remaining", "size")

    def __init__(self, method: methods.Method) -> None:
        self.method = method
        self.remaining = -1  # -1: header not yet received; then body bytes not yet framed
        self.size = 0
        self.properties: BasicProperties | None = None
        self.raw = b""
        # A body in several frames (or received straight from the socket) lands in one
        # buffer that becomes the message's body: no list of chunks joined at the end.
        # ``filled`` bytes of it are in; the rest is room reserved ahead (see ``_reserve``).
        self.body = bytearray()
        self.filled = 0
        self.budgeted = False  # the whole body was reserved from the connection's budget

    def copy_in(self, buf: bytearray, start: int, end: int) -> None:
        """Copy ``buf[start:end]`` (once) to where the body has got to."""
        filled = self.filled
        with memoryview(buf) as view:
            self.body[filled : filled + end - start] = view[start:end]
        self.filled = filled + end - start


def _bytearray_from_c_api() -> Callable[[int], bytearray]:
    """``bytearray(size)`` without zeroing it first, where CPython's C API is at hand.

    A body's buffer is allocated whole at its first frame and then written over entirely
    by the frames, so zeroing it is wasted: a pass over 256 KiB or 1 MiB of memory not in
    the cache, 10-50 us a body on a quiet machine and several times that on a busy one,
    as much as the receive itself.  ``PyByteArray_FromStringAndSize(NULL, size)`` leaves
    the bytes as they are; they are never seen, since a body's content event comes only
    once every byte of it has been received into it.
    """
    if sys.implementation.name != "cpython":
        return bytearray
    new = ctypes.pythonapi.PyByteArray_FromStringAndSize
    new.argtypes = (ctypes.c_char_p, ctypes.c_ssize_t)
    new.restype = ctypes.py_object

    def uninitialized(size: int) -> bytearray:
        body: bytearray = new(None, size)
        return body

    return uninitialized


#: A bytearray of the given size whose content is to be written over (see above).
new_body = _bytearray_from_c_api()


def _copy_out(buf: bytearray, start: int, end: int) -> bytes:
    """``bytes(buf[start:end])`` with one copy instead of two (worth it for large slices)."""
    with memoryview(buf) as view:
        return bytes(view[start:end])


def _unexpected_frame(text: str, method: methods.Method | None = None) -> AMQPConnectionError:
    if method is None:
        return AMQPConnectionError(ReplyCode.UNEXPECTED_FRAME, text)
    return AMQPConnectionError(ReplyCode.UNEXPECTED_FRAME, text, method.CLASS_ID, method.METHOD_ID)


def _negotiate(name: str, client: int, server: int, minimum: int) -> int:
    """RabbitMQ's tune-ok validation; a client 0 means "whatever the server proposed"."""
    if client == 0:
        return server
    if client < minimum:
        raise AMQPConnectionError(
            ReplyCode.NOT_ALLOWED,
            f"negotiated {name} = {client} is lower than the minimum allowed value ({minimum})",
            10,
            31,
        )
    if server and client > server:
        raise AMQPConnectionError(
            ReplyCode.NOT_ALLOWED,
            f"negotiated {name} = {client} is higher than the maximum allowed value ({server})",
            10,
            31,
        )
    return client


class ServerConnection:
    """One server-side AMQP connection: bytes in → events out, methods in → bytes out.

    ``frame_max``, ``channel_max`` and ``heartbeat`` are the server's limits; the
    session proposes them in connection.tune (``tune_method()`` builds it) and the
    negotiated values are in the attributes of the same names after tune-ok.
    """

    __slots__ = (
        "_assembling",
        "_broken",
        "_buf",
        "_channels",
        "_direct",
        "_direct_channel",
        "_eof",
        "_expect",
        "_frame_left",
        "_frame_limit",
        "_frame_size",
        "_gaps",
        "_peek",
        "_plan",
        "_pos",
        "_reserve_budget",
        "_run_at",
        "channel_max",
        "frame_max",
        "heartbeat",
        "max_message_size",
        "server_channel_max",
        "server_frame_max",
        "server_heartbeat",
        "state",
    )

    def __init__(
        self,
        frame_max: int = 131072,
        channel_max: int = 2047,
        heartbeat: int = 60,
        max_message_size: int = 134_217_728,
    ) -> None:
        self.server_frame_max = frame_max
        self.server_channel_max = channel_max
        self.server_heartbeat = heartbeat
        self.frame_max = frame_max
        self.channel_max = channel_max
        self.heartbeat = 0
        self.max_message_size = min(max_message_size, MAX_MESSAGE_SIZE)
        self.state = AWAITING_HEADER
        self._buf = bytearray()
        self._pos = 0
        self._eof = False
        self._broken = False
        self._expect = 0  # channel-0 method key the handshake waits for, or 0
        # Before tune-ok the server's own limit applies to incoming frames.
        self._frame_limit = frame_max
        self._channels: dict[int, int] = {}
        self._assembling: dict[int, _Assembly] = {}
        # A large body frame received in place (see ``next_read``): its content, channel,
        # and how many payload bytes are still to come (0: its frame end octet is due).
        self._direct: _Assembly | None = None
        self._direct_channel = 0
        self._frame_left = 0
        # Scatter reads (see ``next_read``): the payload size of the body frame received in
        # place, taken as the size of the ones after it; the gaps between the payloads
        # (each the frame end and the next frame's head); the sizes the last offer
        # assumed.  ``_frame_size`` 0: the peer's frames did not follow that pattern once,
        # so this connection reads one frame at a time.
        self._frame_size = -1
        self._gaps = _NO_GAPS  # allocated at the first scatter read (most never have one)
        self._plan = _NO_PLAN
        self._reserve_budget = RESERVE_BUDGET
        # Large bodies are being received in place: read short (see ``next_read``).
        self._peek = False
        #: Where the method frame of the last basic.publish began (-1: none usable), for
        #: :meth:`repeated_contents`.
        self._run_at = -1

    # -- input ------------------------------------------------------------------------

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Buffer received bytes; ``b""`` means the peer closed its side."""
        if not data:
            self._eof = True
            return
        if self._broken or self.state == CLOSED:
            return
        buf = self._buf
        if self._pos:
            # Compact once per receive, not per frame.
            del buf[: self._pos]
            self._pos = 0
            self._run_at = -1
        buf += data

    @property
    def buffered(self) -> int:
        """Bytes received but not yet turned into events (for input caps)."""
        return len(self._buf) - self._pos

    def next_events(self) -> list[Event]:
        """Every event available now (possibly none)."""
        out: list[Event] = []
        append = out.append
        next_event = self.next_event
        while True:
            ev = next_event()
            if ev is NEED_DATA:
                return out
            append(ev)  # type: ignore[arg-type]
            if ev is EOF_EVENT or isinstance(ev, events.ProtocolHeaderMismatch):
                return out

    def next_event(self) -> Event | _NeedData:
        """The next event, or :data:`NEED_DATA`; raises AMQPConnectionError on bad input."""
        buf = self._buf
        while True:
            if self._broken or self._direct is not None or self.state != RUNNING:
                ev = self._before_frame()
                if ev is not None:
                    return ev
            pos = self._pos
            n = len(buf)
            if n - pos > 10:  # the frame head and, for a method frame, its class/method key
                ftype, channel, size, key = _METHOD_START.unpack_from(buf, pos)
                limit = self._frame_limit
                # The hot path: a basic.publish on an open channel, its content header and its
                # whole body in one frame right behind it, checked with three unpacks and a few
                # comparisons and handed on as the Message the broker takes.  Anything else is
                # left to the general path below, which gives the right error.
                if (
                    key == _PUBLISH
                    and ftype == FRAME_METHOD
                    and self.state == RUNNING
                    and size <= limit  # (a publish too short fails to decode, as below)
                    and self._channels.get(channel) == _CH_OPEN
                    and channel not in self._assembling
                    and (end := pos + 7 + size) + 20 <= n
                ):
                    end_type, hchannel, hsize, weight, body_size = _END_HEADER.unpack_from(buf, end)
                    hend = end + 8 + hsize
                    if (
                        end_type == _END_HEADER_TYPE
                        and hchannel == channel
                        and weight == _BASIC_WEIGHT_0
                        and 13 < hsize <= limit
                        and 0 < body_size <= self.max_message_size
                        and hend + 8 <= n
                    ):
                        end_type, bchannel, bsize = _END_BODY.unpack_from(buf, hend)
                        bend = hend + 8 + bsize
                        if (
                            end_type == _END_BODY_TYPE
                            and bchannel == channel
                            and bsize == body_size
                            and bend < n
                            and bsize <= limit
                            and buf[bend] == FRAME_END
                        ):
                            # Decoded in the general path's order, for the same errors.
                            payload = bytes(buf[pos + 7 : end])
                            method = _publish_cache.get(payload) or _decode_publish(payload)
                            raw = bytes(buf[end + 20 : hend])
                            props = _properties_cache.get(raw) or _decode_properties(raw)
                            self._pos, self._peek, self._run_at = bend + 1, False, pos
                            hend += 8
                            body = (
                                bytes(buf[hend:bend])
                                if bsize < 4096
                                else _copy_out(buf, hend, bend)
                            )
                            message = Message(method.exchange, method.routing_key, props, body, raw)
                            return _tuple_new(events.Content, (channel, method, message))
            elif n - pos < 7:
                return EOF_EVENT if self._eof else NEED_DATA
            else:
                ftype, channel, size = FRAME_HEAD.unpack_from(buf, pos)
            if size > self._frame_limit:
                self._broken = True
                check_frame_head(ftype, size, self._frame_limit)
            end = pos + 7 + size
            if end >= len(buf):
                if ftype == FRAME_BODY and self._start_direct(channel, size):
                    continue
                return EOF_EVENT if self._eof else NEED_DATA
            on_frame = _ON_FRAME.get(ftype)
            if on_frame is None or buf[end] != FRAME_END:
                raise self._bad_frame(ftype, pos + 7, end)
            self._pos = end + 1
            ev = on_frame(self, channel, pos + 7, end)
            if ev is not None:
                return ev

    def _bad_frame(self, ftype: int, start: int, end: int) -> AMQPConnectionError:
        """501 for an unknown frame type (read whole first: RabbitMQ quotes its payload) or
        a bad frame end; the input is abandoned."""
        self._broken = True
        if ftype in _ON_FRAME:
            return bad_frame_end(self._buf[end])
        return unknown_frame(ftype, self._buf[start:end])

    def _before_frame(self) -> Event | _NeedData | None:
        """What comes before the next frame when the connection is not simply running:
        None to go on parsing frames at ``_pos``."""
        if self._broken or self.state == CLOSED:
            return EOF_EVENT if self._eof else NEED_DATA
        if self._direct is not None:
            ev = self._continue_direct()
            if ev is not None:
                return ev
        if self.state == AWAITING_HEADER:
            return self._read_protocol_header()
        return None

    def _read_protocol_header(self) -> Event | _NeedData:
        data = bytes(self._buf[self._pos : self._pos + 8])
        if len(data) < 8 and b"AMQP".startswith(data[:4]):
            return EOF_EVENT if self._eof else NEED_DATA
        self._pos += len(data)
        if data in _ACCEPTED_HEADERS:
            self.state = STARTING
            self._expect = _START_OK
            return PROTOCOL_HEADER
        self._broken = True
        return events.ProtocolHeaderMismatch(data)

    def _on_method(self, channel: int, start: int, end: int) -> Event | None:
        buf = self._buf
        if end - start < 4:  # RabbitMQ: an unknown frame, quoted
            raise unknown_frame(FRAME_METHOD, buf[start:end])
        (key,) = _U32.unpack_from(buf, start)
        method: methods.Method
        if key == _PUBLISH:
            self._run_at = start - 7
            # Publishers repeat the same exchange / routing key, and the method object is
            # immutable: decode each distinct payload once.
            payload = bytes(buf[start:end])
            method = _publish_cache.get(payload) or _decode_publish(payload)
        elif key == _ACK and end - start == 13:
            # One per consumed message: decoded here, as its decoder would (same checks).
            tag, bits = _ACK_ARGS.unpack_from(buf, start + 4)
            if (
                not bits & 1
                and self.state == RUNNING
                and self._channels.get(channel) == _CH_OPEN
                and channel not in self._assembling
            ):
                return self._ack_run(channel, tag)
            method = methods.BasicAck(tag, bool(bits & 1))
        else:
            decoder = DECODERS.get(key)
            try:
                method = decoder(buf, start + 4, end)  # type: ignore[misc]
            except Exception:
                # Unknown method (decoder None) or malformed arguments: get the right error.
                method = self._decode(key, buf, start + 4, end)
        if channel:
            if self.state != RUNNING:
                if self.state == CLOSING:
                    return None
                raise _unexpected_frame(
                    f"method frame on channel {channel} in connection state {self.state}"
                )
            cstate = self._channels.get(channel)
            if cstate == _CH_OPEN:
                if channel in self._assembling:
                    self._content_interrupted(channel)
                if method.HAS_CONTENT:
                    if key != _PUBLISH:
                        # deliver / get-ok / return go from server to client only:
                        # RabbitMQ refuses them at the method, before any content.
                        raise AMQPConnectionError(
                            ReplyCode.COMMAND_INVALID,
                            "unimplemented method",
                            method.CLASS_ID,
                            method.METHOD_ID,
                        )
                    # (A whole publish was taken by next_event's hot path: this one is
                    # still arriving, or has several body frames or none.)
                    self._assembling[channel] = _Assembly(method)
                    return None
                if key == _CHANNEL_CLOSE_OK:
                    # Only an answer to our channel.close; RabbitMQ's reply otherwise.
                    raise AMQPConnectionError(
                        ReplyCode.COMMAND_INVALID, "unimplemented method", 20, method.METHOD_ID
                    )
                if key == _CHANNEL_OPEN:
                    raise AMQPConnectionError(
                        ReplyCode.CHANNEL_ERROR, "second 'channel.open' seen", 20, 10
                    )
                elif method.CLASS_ID == 10:
                    raise AMQPConnectionError(
                        ReplyCode.COMMAND_INVALID, "unimplemented method", 10, method.METHOD_ID
                    )
                return events.Method(channel, method)
            if cstate is None:
                return self._open_channel(channel, key, method)
            # Closing: RabbitMQ drops everything but close / close-ok.
            if key == _CHANNEL_CLOSE_OK:
                del self._channels[channel]
                self._assembling.pop(channel, None)
                return events.Method(channel, method)
            if key == _CHANNEL_CLOSE:
                return events.Method(channel, method)
            return None
        return self._on_method0(key, method)

    def _ack_run(self, channel: int, tag: int) -> events.Acks:
        """A single basic.ack on an open channel, and the single acks on the same channel
        that follow it in the buffer: one event for the run (a consumer acking each message
        sends a receive buffer of them).  A frame that is anything else (another channel,
        ``multiple``, a bad frame end) ends the run and is read as usual."""
        buf = self._buf
        pos = self._pos
        tags = [tag]
        last = len(buf) - 21  # where the last whole ack frame could start
        if pos > last:  # no frame after this one (a consumer acking one at a time)
            return events.Acks(channel, tags)
        append = tags.append
        head = b"\x01" + channel.to_bytes(2, "big") + _ACK_HEAD_REST
        # Sixteen frames at a time while they are all single acks on this channel, in one
        # unpack; what is left (or a block with anything else in it) frame by frame.
        block_last = len(buf) - _ACK_BLOCK.size
        while pos <= block_last:
            fields = _ACK_BLOCK.unpack_from(buf, pos)
            if fields[0::3].count(head) != _ACK_BLOCK_FRAMES:
                break
            # bits << 8 | frame end: the bits must be 0 (not multiple).
            if fields[2::3].count(FRAME_END) != _ACK_BLOCK_FRAMES:
                break
            tags += fields[1::3]
            pos += _ACK_BLOCK.size
        startswith = buf.startswith
        unpack = _ACK_TAIL.unpack_from
        while pos <= last and startswith(head, pos):
            tag, bits, frame_end = unpack(buf, pos + 11)
            if bits or frame_end != FRAME_END:
                break
            append(tag)
            pos += 21
        self._pos = pos
        return events.Acks(channel, tags)

    def _open_channel(self, channel: int, key: int, method: methods.Method) -> Event:
        """A method on a channel not open: only channel.open may come, within channel_max."""
        # RabbitMQ limits how many channels are open at once, not their numbers:
        # channel 65535 opens fine under channel_max 2047 (aiormq's own tests rely on it).
        if self.channel_max and len(self._channels) >= self.channel_max:
            raise AMQPConnectionError(
                ReplyCode.NOT_ALLOWED,
                f"number of channels opened ({len(self._channels)}) has reached "
                f"the negotiated channel_max ({self.channel_max})",
            )
        if key != _CHANNEL_OPEN:
            raise AMQPConnectionError(
                ReplyCode.CHANNEL_ERROR,
                "expected 'channel.open'",
                method.CLASS_ID,
                method.METHOD_ID,
            )
        self._channels[channel] = _CH_OPEN
        return events.Method(channel, method)

    @staticmethod
    def _decode(key: int, buf: Buffer, start: int, end: int) -> methods.Method:
        decoder = DECODERS.get(key)
        if decoder is None:
            raise AMQPConnectionError(
                ReplyCode.NOT_IMPLEMENTED,
                f"unknown method class_id={key >> 16} method_id={key & 0xFFFF}",
                key >> 16,
                key & 0xFFFF,
            )
        try:
            return decoder(buf, start, end)
        except DECODE_ERRORS as exc:
            raise AMQPConnectionError(
                ReplyCode.FRAME_ERROR,
                f"cannot decode {methods.METHODS[key >> 16, key & 0xFFFF].NAME}: {exc}",
                key >> 16,
                key & 0xFFFF,
            ) from None

    def _on_method0(self, key: int, method: methods.Method) -> Event | None:
        state = self.state
        if key == self._expect:
            if key == _TUNE_OK:
                assert isinstance(method, methods.ConnectionTuneOk)
                self._tune_ok(method)
                self._expect = _OPEN
                self.state = OPENING
            elif key == _OPEN:
                self._expect = 0
                self.state = RUNNING
            else:  # start-ok, secure-ok: the server answers with secure or tune
                self._expect = 0
            return events.Method(0, method)
        if state == CLOSED:
            return None
        if key == _CLOSE:
            self.state = CLOSING
            self._expect = 0
            self._assembling.clear()
            return events.Method(0, method)
        if key == _CLOSE_OK:
            if state == CLOSING:
                self.state = CLOSED
                return events.Method(0, method)
        elif state == CLOSING:
            return None
        elif state == RUNNING and key == _UPDATE_SECRET:
            return events.Method(0, method)
        raise AMQPConnectionError(
            ReplyCode.CHANNEL_ERROR,
            f"unexpected method in connection state {state}",
            method.CLASS_ID,
            method.METHOD_ID,
        )

    def _tune_ok(self, tune_ok: methods.ConnectionTuneOk) -> None:
        self.channel_max = _negotiate(
            "channel_max", tune_ok.channel_max, self.server_channel_max, 0
        )
        self.frame_max = _negotiate(
            "frame_max", tune_ok.frame_max, self.server_frame_max, FRAME_MIN_SIZE
        )
        # RabbitMQ takes the client's heartbeat as is; 0 disables heartbeats.
        self.heartbeat = tune_ok.heartbeat
        self._frame_limit = self.frame_max or 0xFFFFFFFF

    def repeated_contents(self, channel: int, limit: int) -> list[bytes]:
        """The bodies of the publishes that follow the content just returned and repeat it
        (same channel, byte-identical method frame and properties), each whole in the
        buffer; at most ``limit``.  They are consumed, as :meth:`next_event` would have
        returned them one by one, with the same checks; the first frame that differs is left
        to it.  (A publisher mostly sends such runs; the session hands one that goes to a
        stream to the broker at once instead of as separate events.)
        """
        at = self._run_at
        self._run_at = -1
        if at < 0 or self._direct is not None or limit <= 0:
            return []
        template = self._run_template(at, channel)
        if template is None:
            return []
        method_frame, header_head, properties = template
        buf = self._buf
        size = len(buf)
        pos = self._pos
        step = len(method_frame)
        props_at = step + 19
        body_at = props_at + len(properties)
        max_size = self.max_message_size
        frame_limit = self._frame_limit
        starts = buf.startswith
        unpack_size = _U64.unpack_from
        unpack_head = FRAME_HEAD.unpack_from
        bodies: list[bytes] = []
        append = bodies.append
        # Every frame byte but the body's, for publishes whose body is as long as the last
        # one's (a publisher's usual run): one comparison then checks the whole publish.
        same = b""
        same_size = -1
        while len(bodies) < limit:
            if same and starts(same, pos):
                bpos = pos + len(same)
                bend = bpos + same_size
                if bend < size and buf[bend] == FRAME_END:
                    append(
                        bytes(buf[bpos:bend]) if same_size < 4096 else _copy_out(buf, bpos, bend)
                    )
                    pos = bend + 1
                    continue
                break
            if not (
                starts(method_frame, pos)
                and starts(header_head, pos + step)
                and starts(properties, pos + props_at)
                and pos + body_at <= size
            ):
                break
            (body_size,) = unpack_size(buf, pos + step + 11)
            if body_size > max_size:
                break  # the general path raises the channel error
            bpos = pos + body_at
            if not body_size:
                append(b"")
                pos = bpos
                continue
            bend = bpos + 7 + body_size
            if bend >= size:
                break
            ftype, bchannel, bsize = unpack_head(buf, bpos)
            if (
                ftype != FRAME_BODY
                or bchannel != channel
                or bsize != body_size
                or bsize > frame_limit
                or buf[bend] != FRAME_END
            ):
                break
            append(bytes(buf[bpos + 7 : bend]) if bsize < 4096 else _copy_out(buf, bpos + 7, bend))
            if body_size != same_size:
                same_size = body_size
                same = bytes(buf[pos : bpos + 7])
            pos = bend + 1
        self._pos = pos
        return bodies

    def _run_template(self, at: int, channel: int) -> tuple[bytes, bytes, bytes] | None:
        """The bytes a publish repeating the content whose method frame began at ``at``
        repeats: its method frame, its header frame's head (type, channel, size, class,
        weight) and its property bytes with the frame end; None unless that content came
        whole through the buffer and was the last thing returned."""
        buf = self._buf
        (msize,) = _U32.unpack_from(buf, at + 3)
        hpos = at + 8 + msize
        if hpos + 21 > len(buf):
            return None
        _, hchannel, hsize, _, _, body_size = _HEADER_START.unpack_from(buf, hpos)
        hend = hpos + 7 + hsize
        if hend + 1 + (8 + body_size if body_size else 0) != self._pos or hchannel != channel:
            return None
        return bytes(buf[at:hpos]), bytes(buf[hpos : hpos + 11]), bytes(buf[hpos + 19 : hend + 1])

    def _content_interrupted(self, channel: int) -> None:
        asm = self._assembling.pop(channel)
        if asm.remaining < 0:
            raise _unexpected_frame(
                f"expected content header for class {asm.method.CLASS_ID}, "
                "got non content header frame instead",
                asm.method,
            )
        raise _unexpected_frame(
            "expected content body, got non content body frame instead", asm.method
        )

    def _content_frame_checks(self, channel: int, kind: str) -> _Assembly | None:
        """Common checks for header and body frames; None means drop the frame."""
        if self.state != RUNNING or not channel:
            if self.state in (CLOSING, CLOSED):
                return None
            raise _unexpected_frame(
                f"{kind} frame on channel {channel} in connection state {self.state}"
            )
        asm = self._assembling.get(channel)
        if asm is None:
            cstate = self._channels.get(channel)
            if cstate == _CH_CLOSING:
                return None
            # On a channel never opened too: RabbitMQ's reader hands the frame to a new
            # channel's assembler, which wants a method first (505, not 504).
            raise _unexpected_frame("expected method frame, got non method frame instead")
        return asm

    def _on_header(self, channel: int, start: int, end: int) -> Event | None:
        asm = self._content_frame_checks(channel, "content header")
        if asm is None:
            return None
        method = asm.method
        if asm.remaining >= 0:
            del self._assembling[channel]
            raise _unexpected_frame(
                "expected content body, got non content body frame instead", method
            )
        buf = self._buf
        if end - start < 14:
            raise AMQPConnectionError(ReplyCode.FRAME_ERROR, "content header frame too short")
        class_id, weight, body_size = _HEADER_FIELDS.unpack_from(buf, start)
        if class_id != method.CLASS_ID or weight != 0:
            del self._assembling[channel]
            raise _unexpected_frame(
                f"expected content header for class {method.CLASS_ID}, "
                f"got one for class {class_id} instead",
                method,
            )
        if body_size > self.max_message_size:
            del self._assembling[channel]
            if body_size > MAX_MESSAGE_SIZE:
                raise AMQPConnectionError(
                    ReplyCode.FRAME_ERROR,
                    f"content body size {body_size} exceeds maximum allowed size {MAX_MESSAGE_SIZE}",
                    method.CLASS_ID,
                    method.METHOD_ID,
                )
            # RabbitMQ makes the configured limit a soft error; the session closes the
            # channel, and the body frames that follow are dropped as for any closing channel.
            self._channels[channel] = _CH_CLOSING
            raise ChannelError(
                ReplyCode.PRECONDITION_FAILED,
                f"message size {body_size} is larger than configured max size {self.max_message_size}",
                method.CLASS_ID,
                method.METHOD_ID,
            )
        raw = bytes(buf[start + 12 : end])
        properties = _properties_cache.get(raw) or _decode_properties(
            raw, method.CLASS_ID, method.METHOD_ID
        )
        if body_size < PEEK_MIN:
            self._peek = False
        if not body_size:
            del self._assembling[channel]
            return _content(channel, method, properties, raw, b"")
        asm.remaining = asm.size = body_size
        asm.properties = properties
        asm.raw = raw
        return None

    def _body_frame(self, channel: int, size: int) -> _Assembly | None:
        """Checks for a body frame of ``size`` payload bytes; counts it against the body.
        None means drop the frame (its channel is closing)."""
        asm = self._content_frame_checks(channel, "content body")
        if asm is None:
            return None
        remaining = asm.remaining
        if remaining < 0:
            del self._assembling[channel]
            raise _unexpected_frame(
                f"expected content header for class {asm.method.CLASS_ID}, "
                "got non content header frame instead",
                asm.method,
            )
        if size > remaining:
            raise AMQPConnectionError(
                ReplyCode.FRAME_ERROR,
                "content body frame exceeds remaining content size",
                asm.method.CLASS_ID,
                asm.method.METHOD_ID,
            )
        asm.remaining = remaining - size
        return asm

    def _on_body(self, channel: int, start: int, end: int) -> Event | None:
        asm = self._body_frame(channel, end - start)
        if asm is None:
            return None
        if not asm.remaining and not asm.filled:
            # The whole body in this one frame: the common case, one copy into bytes.
            del self._assembling[channel]
            assert asm.properties is not None
            body = _copy_out(self._buf, start, end)
            return _content(channel, asm.method, asm.properties, asm.raw, body)
        if end > start:
            self._reserve(asm, end - start)
            asm.copy_in(self._buf, start, end)
        return self._body_done(channel, asm)

    def _reserve(self, asm: _Assembly, size: int) -> None:
        """Make room in ``asm.body`` for ``size`` more bytes after ``filled``."""
        body = asm.body
        need = asm.filled + size
        if len(body) >= need:
            return
        if not body and asm.size <= self._reserve_budget:
            self._reserve_budget -= asm.size
            asm.budgeted = True
            asm.body = new_body(asm.size)
            return
        body += bytes(min(asm.size, max(need, 2 * len(body))) - len(body))

    def _body_done(self, channel: int, asm: _Assembly) -> Event | None:
        """The content event once the last body byte is in (and its channel still open)."""
        if asm.remaining:
            return None
        if asm.budgeted:
            self._reserve_budget += asm.size
        if self._assembling.get(channel) is not asm:
            return None
        del self._assembling[channel]
        assert asm.properties is not None
        return _content(channel, asm.method, asm.properties, asm.raw, asm.body)

    # -- large body frames, received in place ---------------------------------------------

    def _start_direct(self, channel: int, size: int) -> bool:
        """A large body frame has only begun to arrive: from here its payload goes straight
        into the body's buffer, from the socket if the server uses :meth:`next_read`.

        Errors in the frame head are raised now; a frame to drop waits to be whole."""
        if size < DIRECT_MIN:
            # Within a large body received in place, its short last frame too, to receive
            # it together with the next message's start; other small frames are parsed
            # from the buffer (a peer with a small frame_max sends many).
            asm = self._assembling.get(channel) if self._peek else None
            if asm is None or asm.remaining != size:
                return False
        elif not self._peek and self._pos + 8 + size - len(self._buf) < DIRECT_REST_MIN:
            asm = self._assembling.get(channel)
            if asm is None or asm.size < PEEK_MIN:  # (a larger body starts PEEK mode)
                return False
        asm = self._body_frame(channel, size)
        if asm is None:
            return False
        if asm.size >= PEEK_MIN:
            self._peek = True
        self._reserve(asm, size)
        self._direct = asm
        self._direct_channel = channel
        self._frame_left = size
        if self._frame_size:
            self._frame_size = size
        self._pos += 7
        return True

    def _continue_direct(self) -> Event | _NeedData | None:
        """Copy what is buffered of the payload in place, then check the frame end; None
        when done with the frame (the caller goes on parsing)."""
        asm = self._direct
        assert asm is not None
        buf = self._buf
        pos = self._pos
        left = self._frame_left
        if left:
            take = min(left, len(buf) - pos)
            if take:
                asm.copy_in(buf, pos, pos + take)
                self._pos = pos = pos + take
                self._frame_left = left = left - take
            if left:
                return EOF_EVENT if self._eof else NEED_DATA
        if pos >= len(buf):
            return EOF_EVENT if self._eof else NEED_DATA
        if buf[pos] != FRAME_END:
            self._broken = True
            raise bad_frame_end(buf[pos])
        self._pos = pos + 1
        self._direct = None
        return self._body_done(self._direct_channel, asm)

    def next_read(self, size: int) -> int | tuple[list[memoryview], int]:
        """What the server should receive next: a byte count (then ``receive_data``), or,
        in the middle of a large body frame with nothing else buffered, the parts of
        buffers to receive into, in order, and how many bytes to receive after them
        (receive into all, then ``body_received`` and ``receive_data`` with the rest).

        The first part is where the rest of this frame's payload goes in the body's own
        buffer.  When more frames of the body are to come, they are assumed to be the
        size of this one (peers split a body at their frame_max), and the same read
        takes them too: per frame an 8-byte gap (the frame end and the next frame's
        head, checked by ``body_received``) and the frame's payload, in place after
        the one before, up to ``SCATTER_FRAMES`` frames.  A whole 1 MiB body is then
        one system call and one pass through here, not eight.

        Between two frames of a large body it asks for just the frame end and the next
        frame head, so the next payload also lands in place.  Once large bodies are received
        in place (until a small one comes), it asks for at most ``PEEK`` bytes after each
        (received with its last frame): enough for the next message's method, header and
        body frame head, not for most of its body, which then goes in place too.
        """
        asm = self._direct
        if asm is None or self._pos != len(self._buf):
            return PEEK if self._peek and size > PEEK else size
        left = self._frame_left
        if not left:
            if asm.remaining:
                return 8
            return PEEK if size > PEEK else size
        filled = asm.filled
        remaining = asm.remaining
        with memoryview(asm.body) as body:
            parts = [body[filled : filled + left]]
            plan = self._plan = []
            frame = self._frame_size
            if remaining and frame >= DIRECT_MIN:
                at = filled + left
                room = len(body)
                if not self._gaps:
                    self._gaps = bytearray(8 * SCATTER_FRAMES)
                with memoryview(self._gaps) as gaps:
                    while remaining and len(plan) < SCATTER_FRAMES:
                        n = frame if frame < remaining else remaining
                        # A short last frame goes in place only in peek mode (as in
                        # ``_start_direct``), and nothing beyond the room reserved.
                        if (n < DIRECT_MIN and not self._peek) or at + n > room:
                            break
                        g = 8 * len(plan)
                        parts.append(gaps[g : g + 8])
                        parts.append(body[at : at + n])
                        plan.append(n)
                        at += n
                        remaining -= n
        after = PEEK if self._peek and not remaining else 8
        return parts, after

    def body_received(self, size: int) -> bytes:
        """``size`` bytes were received into the parts :meth:`next_read` gave, in order.

        Returns what is to be parsed as ordinary input (``receive_data``) before anything
        received after these bytes: nothing when every gap held the expected frame end and
        body frame head; otherwise the bytes from the first gap that did not (or that was
        cut short) on, in the order they arrived, and this connection stops assuming frame
        sizes.  A gap that checks out goes through the parser's own steps for a frame end
        and a body frame head, so errors and accounting are those of ``receive_data``."""
        asm = self._direct
        left = self._frame_left
        if asm is None or size < 0 or (size > left and not self._plan):
            raise ValueError("no body frame payload expected")
        if size <= left:
            asm.filled += size
            self._frame_left = left - size
            return b""
        asm.filled += left
        self._frame_left = 0
        size -= left
        plan = self._plan
        self._plan = _NO_PLAN
        channel = self._direct_channel
        gaps = self._gaps
        for i, n in enumerate(plan):
            g = 8 * i
            if size < 8:  # the read ended within this gap: the parser takes it from here
                return self._unplanned(asm, plan[i:], i, False, size)
            if _END_BODY.unpack_from(gaps, g) != (_END_BODY_TYPE, channel, n):
                self._frame_size = 0  # not the frames assumed (or bad input): stop assuming
                return self._unplanned(asm, plan[i:], i, False, size)
            # The frame end (checked above), then the head as if parsed from the buffer.
            self._direct = None
            self.receive_data(gaps[g + 1 : g + 8])
            if not self._start_direct(channel, n):
                self._frame_size = 0
                return self._unplanned(asm, plan[i:], i, True, size - 8)
            size -= 8
            take = n if n < size else size
            asm.filled += take
            self._frame_left = n - take
            size -= take
            if not size:
                return b""
        raise ValueError("more received than offered")

    def _unplanned(
        self, asm: _Assembly, plan: list[int], first: int, gap_done: bool, size: int
    ) -> bytes:
        """The last ``size`` bytes of a scatter read, as they arrived, from gap ``first``
        on (from its payload when ``gap_done``): each gap and then that frame's payload,
        which went to the body after what ``asm`` has of it."""
        out = bytearray()
        at = asm.filled
        gaps = self._gaps
        for k, n in enumerate(plan, first):
            if not (gap_done and k == first):
                take = min(size, 8)
                out += gaps[8 * k : 8 * k + take]
                size -= take
            take = min(size, n)
            out += asm.body[at : at + take]
            at += n
            size -= take
            if size <= 0:
                break
        return bytes(out)

    def _on_heartbeat(self, channel: int, start: int, end: int) -> Event | None:
        if end != start:
            raise AMQPConnectionError(
                ReplyCode.FRAME_ERROR, "type 8, unknown_frame: heartbeat with payload"
            )
        if channel:
            if self.state in (CLOSING, CLOSED):
                return None
            raise _unexpected_frame(f"type 8, {payload_snippet(b'')}")
        return HEARTBEAT

    # -- output -----------------------------------------------------------------------

    def tune_method(self) -> methods.ConnectionTune:
        """The connection.tune proposing this server's limits."""
        return methods.ConnectionTune(
            self.server_channel_max, self.server_frame_max, self.server_heartbeat
        )

    def send_method(self, channel: int, method: methods.Method) -> bytes:
        """Encode a method frame and note what sending it means for the state."""
        if channel:
            cls = type(method)
            if cls is methods.ChannelClose:
                if channel in self._channels:
                    self._channels[channel] = _CH_CLOSING
                self._assembling.pop(channel, None)
            elif cls is methods.ChannelCloseOk:
                self._channels.pop(channel, None)
                self._assembling.pop(channel, None)
        else:
            cls = type(method)
            if cls is methods.ConnectionClose:
                if self.state != CLOSED:
                    self.state = CLOSING
                self._expect = 0
                self._assembling.clear()
            elif cls is methods.ConnectionCloseOk:
                self.state = CLOSED
            elif cls is methods.ConnectionTune:
                self.state = TUNING
                self._expect = _TUNE_OK
            elif cls is methods.ConnectionSecure:
                self.state = SECURING
                self._expect = _SECURE_OK
        return encode_method_frame(channel, method)

    def send_content(self, channel: int, method: methods.Method, message: Message) -> bytes:
        """A deliver / get-ok / return with its header and body frames."""
        return b"".join(self.content_parts(channel, method, message))

    def content_parts(self, channel: int, method: methods.Method, message: Message) -> list[Buffer]:
        """:meth:`send_content` as pieces, the body's uncopied among them (for a vectored write)."""
        if isinstance(method, methods.BasicDeliver):
            return deliver_parts(
                channel,
                method.consumer_tag,
                method.delivery_tag,
                method.redelivered,
                method.exchange,
                method.routing_key,
                message,
                self.frame_max,
            )
        if isinstance(method, methods.BasicGetOk):
            return get_ok_parts(
                channel,
                method.delivery_tag,
                method.redelivered,
                method.exchange,
                method.routing_key,
                method.message_count,
                message,
                self.frame_max,
            )
        if isinstance(method, methods.BasicReturn):
            return return_parts(
                channel,
                method.reply_code,
                method.reply_text,
                method.exchange,
                method.routing_key,
                message,
                self.frame_max,
            )
        raise TypeError(f"{method.NAME} carries no content")

    def encode_deliver(
        self,
        channel: int,
        consumer_tag: str,
        delivery_tag: int,
        redelivered: bool,
        exchange: str,
        routing_key: str,
        message: Message,
    ) -> bytes:
        """basic.deliver + content at this connection's frame_max (the hot path)."""
        return encode_deliver(
            channel,
            consumer_tag,
            delivery_tag,
            redelivered,
            exchange,
            routing_key,
            message,
            self.frame_max,
        )

    @property
    def handshaking(self) -> bool:
        """connection.open has not passed yet (and no close either)."""
        return self.state in _HANDSHAKE_STATES

    @property
    def closing(self) -> bool:
        """A connection.close went either way and its close-ok has not."""
        return self.state == CLOSING

    def channel_is_open(self, channel: int) -> bool:
        return self._channels.get(channel) == _CH_OPEN

    @property
    def open_channels(self) -> list[int]:
        return [c for c, s in self._channels.items() if s == _CH_OPEN]

    def __repr__(self) -> str:
        info: dict[str, Any] = {"state": self.state, "channels": len(self._channels)}
        return f"<ServerConnection {info}>"


# What handles each frame type in ServerConnection.next_event's general path.
_ON_FRAME: dict[int, Callable[[ServerConnection, int, int, int], Event | None]] = {
    FRAME_METHOD: ServerConnection._on_method,
    FRAME_HEADER: ServerConnection._on_header,
    FRAME_BODY: ServerConnection._on_body,
    FRAME_HEARTBEAT: ServerConnection._on_heartbeat,
}
