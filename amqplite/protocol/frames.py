"""AMQP 0-9-1 frames: constants, encoders for every frame kind, a generic frame decoder (protocol layer, pure).

A frame is ``type:octet channel:short size:long payload[size] 0xCE``.  The encoders here
serve both directions: the server uses the hot-path ones (:func:`encode_deliver`,
:func:`encode_get_ok`, :func:`encode_return`) which reuse ``Message.raw_properties`` and
build each delivery with a handful of ``struct`` packs; tests and clients use
:func:`encode_method_frame` and :func:`encode_content`.  :func:`decode_frame` is the
generic, client-side-usable decoder; :class:`~amqplite.protocol.connection.ServerConnection`
inlines the same checks in its own loop for speed.
"""

from __future__ import annotations

import struct

import attrs

from amqplite.errors import AMQPConnectionError, ReplyCode
from amqplite.message import BasicProperties, Body, Message
from amqplite.protocol.fields import Buffer
from amqplite.protocol.methods import Method
from amqplite.protocol.properties import encode_properties

FRAME_METHOD = 1
FRAME_HEADER = 2
FRAME_BODY = 3
FRAME_HEARTBEAT = 8
FRAME_END = 0xCE
FRAME_END_BYTE = b"\xce"
FRAME_MIN_SIZE = 4096
#: Frame type, channel, size and the end octet.
FRAME_OVERHEAD = 8

#: The AMQP 0-9-1 protocol header; also what a server answers to a wrong header.
PROTOCOL_HEADER = b"AMQP\x00\x00\x09\x01"
HEARTBEAT_FRAME = b"\x08\x00\x00\x00\x00\x00\x00\xce"

FRAME_HEAD = struct.Struct(">BHI")
_METHOD_HEAD = struct.Struct(">BHI")
# End of the previous frame + a content header frame up to its properties.
_END_HEADER_HEAD = struct.Struct(">BBHIHHQ")
# End of the previous frame + a body frame head.
_END_BODY_HEAD = struct.Struct(">BBHI")
_BODY_HEAD = struct.Struct(">BHI")
# basic.deliver: frame head, class/method, consumer-tag length.
_DELIVER_HEAD = struct.Struct(">BHIHHB")
_DELIVER_MID = struct.Struct(">QBB")
# basic.get-ok: frame head, class/method, delivery-tag, redelivered, exchange length.
_GET_OK_HEAD = struct.Struct(">BHIHHQBB")
# basic.return: frame head, class/method, reply-code, reply-text length.
_RETURN_HEAD = struct.Struct(">BHIHHHB")
_U8 = struct.Struct(">B")
_U32 = struct.Struct(">I")


@attrs.frozen(slots=True)
class Frame:
    """One raw frame, as :func:`decode_frame` returns it."""

    type: int
    channel: int
    payload: bytes


def decode_frame(buf: Buffer, offset: int = 0, frame_max: int = 0) -> tuple[Frame, int] | None:
    """Decode one frame at ``offset``; return it and the next offset, or None on short data.

    ``frame_max`` (0 = unlimited) bounds the payload size as RabbitMQ does, which allows
    up to ``frame_max`` octets of payload since clients are often off by the 8-octet
    overhead.  Raises 501 FRAME_ERROR on an oversized frame, a bad frame end or an
    unknown frame type.
    """
    if len(buf) - offset < 7:
        return None
    ftype, channel, size = FRAME_HEAD.unpack_from(buf, offset)
    if frame_max and size > frame_max:
        check_frame_head(ftype, size, frame_max)
    end = offset + 7 + size
    if end >= len(buf):
        return None
    if ftype not in (FRAME_METHOD, FRAME_HEADER, FRAME_BODY, FRAME_HEARTBEAT):
        raise unknown_frame(ftype, buf[offset + 7 : end])
    if buf[end] != FRAME_END:
        raise bad_frame_end(buf[end])
    return Frame(ftype, channel, bytes(buf[offset + 7 : end])), end + 1


def check_frame_head(ftype: int, size: int, frame_max: int) -> None:
    if frame_max and size > frame_max:
        # RabbitMQ's text; it quotes no payload since it never reads it.
        raise AMQPConnectionError(
            ReplyCode.FRAME_ERROR,
            f"type {ftype}, all octets = <<>>: "
            f"{{frame_too_large,{size},{frame_max - FRAME_OVERHEAD}}}",
        )
    if ftype not in (FRAME_METHOD, FRAME_HEADER, FRAME_BODY, FRAME_HEARTBEAT):
        raise unknown_frame(ftype, b"")


def unknown_frame(ftype: int, payload: Buffer) -> AMQPConnectionError:
    return AMQPConnectionError(
        ReplyCode.FRAME_ERROR, f"type {ftype}, {payload_snippet(payload)}: unknown_frame"
    )


def payload_snippet(payload: Buffer) -> str:
    """``all octets = <<...>>`` (``first 16 octets``, past 16) as RabbitMQ quotes a bad
    frame's payload in its reply text: an Erlang binary, as a string when printable."""
    data = bytes(payload)
    which = "all" if len(data) <= 16 else "first 16"
    data = data[:16]
    if data and all(32 <= b < 127 for b in data):
        text = data.decode("ascii").replace("\\", "\\\\").replace('"', '\\"')
        return f'{which} octets = <<"{text}">>'
    return f"{which} octets = <<{','.join(map(str, data))}>>"


def bad_frame_end(octet: int) -> AMQPConnectionError:
    return AMQPConnectionError(
        ReplyCode.FRAME_ERROR, f"bad frame end octet {octet:#04x}, expected 0xce"
    )


def encode_frame(frame_type: int, channel: int, payload: bytes) -> bytes:
    """Any frame from its parts."""
    return b"".join((FRAME_HEAD.pack(frame_type, channel, len(payload)), payload, FRAME_END_BYTE))


def encode_method_frame(channel: int, method: Method) -> bytes:
    """A method frame (payload: class id, method id, arguments)."""
    payload = method.encode()
    return b"".join(
        (_METHOD_HEAD.pack(FRAME_METHOD, channel, len(payload)), payload, FRAME_END_BYTE)
    )


def _raw_properties(message: Message) -> bytes:
    raw = message.raw_properties
    if raw is None:
        raw = message.raw_properties = encode_properties(message.properties)
    return raw


def _append_content(
    parts: list[Buffer], channel: int, class_id: int, raw: bytes, body: Body, frame_max: int
) -> None:
    """Append the end of the method frame, the header frame and the body frames.

    The body goes in as itself (one frame) or as memoryview slices of it (one per frame),
    never copied: a caller that joins the parts copies it once, and the server's outbox
    sends large ones from the message's own buffer (:func:`deliver_parts`).
    """
    size = len(body)
    parts.append(
        _END_HEADER_HEAD.pack(FRAME_END, FRAME_HEADER, channel, 12 + len(raw), class_id, 0, size)
    )
    parts.append(raw)
    if not size:
        parts.append(FRAME_END_BYTE)
        return
    chunk = frame_max - FRAME_OVERHEAD if frame_max else size
    if size <= chunk:
        parts.append(_END_BODY_HEAD.pack(FRAME_END, FRAME_BODY, channel, size))
        parts.append(body)
        parts.append(FRAME_END_BYTE)
        return
    view = memoryview(body)
    for start in range(0, size, chunk):
        piece = view[start : start + chunk]
        parts.append(_END_BODY_HEAD.pack(FRAME_END, FRAME_BODY, channel, len(piece)))
        parts.append(piece)
    parts.append(FRAME_END_BYTE)


def encode_content(
    channel: int,
    method: Method,
    properties: BasicProperties | bytes,
    body: Body,
    frame_max: int,
) -> bytes:
    """A content method with its header and body frames (``properties`` may be raw bytes)."""
    payload = method.encode()
    raw = properties if isinstance(properties, bytes) else encode_properties(properties)
    parts: list[Buffer] = [_METHOD_HEAD.pack(FRAME_METHOD, channel, len(payload)), payload]
    _append_content(parts, channel, method.CLASS_ID, raw, body, frame_max)
    return b"".join(parts)


def deliver_parts(
    channel: int,
    consumer_tag: str,
    delivery_tag: int,
    redelivered: bool,
    exchange: str,
    routing_key: str,
    message: Message,
    frame_max: int,
) -> list[Buffer]:
    """basic.deliver + header + body frames as a list of pieces, the body's among them
    uncopied (for a vectored write); fills ``message.raw_properties`` if unset."""
    ct = consumer_tag.encode()
    ex = exchange.encode()
    rk = routing_key.encode()
    parts: list[Buffer] = [
        _DELIVER_HEAD.pack(
            FRAME_METHOD, channel, 16 + len(ct) + len(ex) + len(rk), 60, 60, len(ct)
        ),
        ct,
        _DELIVER_MID.pack(delivery_tag, redelivered, len(ex)),
        ex,
        _U8.pack(len(rk)),
        rk,
    ]
    _append_content(parts, channel, 60, _raw_properties(message), message.body, frame_max)
    return parts


def encode_deliver(
    channel: int,
    consumer_tag: str,
    delivery_tag: int,
    redelivered: bool,
    exchange: str,
    routing_key: str,
    message: Message,
    frame_max: int,
) -> bytes:
    """basic.deliver + header + body frames; fills ``message.raw_properties`` if unset."""
    return b"".join(
        deliver_parts(
            channel,
            consumer_tag,
            delivery_tag,
            redelivered,
            exchange,
            routing_key,
            message,
            frame_max,
        )
    )


def get_ok_parts(
    channel: int,
    delivery_tag: int,
    redelivered: bool,
    exchange: str,
    routing_key: str,
    message_count: int,
    message: Message,
    frame_max: int,
) -> list[Buffer]:
    """basic.get-ok + header + body frames as pieces (see :func:`deliver_parts`)."""
    ex = exchange.encode()
    rk = routing_key.encode()
    parts: list[Buffer] = [
        _GET_OK_HEAD.pack(
            FRAME_METHOD,
            channel,
            19 + len(ex) + len(rk),
            60,
            71,
            delivery_tag,
            redelivered,
            len(ex),
        ),
        ex,
        _U8.pack(len(rk)),
        rk,
        _U32.pack(message_count),
    ]
    _append_content(parts, channel, 60, _raw_properties(message), message.body, frame_max)
    return parts


def return_parts(
    channel: int,
    reply_code: int,
    reply_text: str,
    exchange: str,
    routing_key: str,
    message: Message,
    frame_max: int,
) -> list[Buffer]:
    """basic.return + header + body frames as pieces (see :func:`deliver_parts`)."""
    rt = reply_text.encode()
    ex = exchange.encode()
    rk = routing_key.encode()
    parts: list[Buffer] = [
        _RETURN_HEAD.pack(
            FRAME_METHOD, channel, 9 + len(rt) + len(ex) + len(rk), 60, 50, reply_code, len(rt)
        ),
        rt,
        _U8.pack(len(ex)),
        ex,
        _U8.pack(len(rk)),
        rk,
    ]
    _append_content(parts, channel, 60, _raw_properties(message), message.body, frame_max)
    return parts


def encode_get_ok(
    channel: int,
    delivery_tag: int,
    redelivered: bool,
    exchange: str,
    routing_key: str,
    message_count: int,
    message: Message,
    frame_max: int,
) -> bytes:
    """basic.get-ok + header + body frames; fills ``message.raw_properties`` if unset."""
    return b"".join(
        get_ok_parts(
            channel,
            delivery_tag,
            redelivered,
            exchange,
            routing_key,
            message_count,
            message,
            frame_max,
        )
    )


def encode_return(
    channel: int,
    reply_code: int,
    reply_text: str,
    exchange: str,
    routing_key: str,
    message: Message,
    frame_max: int,
) -> bytes:
    """basic.return + header + body frames; fills ``message.raw_properties`` if unset."""
    return b"".join(
        return_parts(channel, reply_code, reply_text, exchange, routing_key, message, frame_max)
    )
