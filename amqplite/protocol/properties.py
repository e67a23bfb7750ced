"""Basic-class content properties: the flag words and property list of a content header (protocol layer, pure).

The wire form is one or more 16-bit flag words (bit 15 of the first word is the first
property; bit 0 set means another flag word follows) and then the present properties in
order.  The bytes from the first flag word to the end of the header frame are what
``Message.raw_properties`` caches, so a delivery re-sends exactly what the publisher
sent without re-encoding.
"""

from __future__ import annotations

import struct

from amqplite.errors import AMQPConnectionError, ReplyCode
from amqplite.message import (
    EMPTY_PROPERTIES,
    BasicProperties,
    Message,
    with_stream_offset,
)
from amqplite.protocol.fields import DECODE_ERRORS, Buffer, _decode_table, encode_table

_U16 = struct.Struct(">H")
_U64 = struct.Struct(">Q")

# Flag bits, in wire order.
CONTENT_TYPE = 1 << 15
CONTENT_ENCODING = 1 << 14
HEADERS = 1 << 13
DELIVERY_MODE = 1 << 12
PRIORITY = 1 << 11
CORRELATION_ID = 1 << 10
REPLY_TO = 1 << 9
EXPIRATION = 1 << 8
MESSAGE_ID = 1 << 7
TIMESTAMP = 1 << 6
TYPE = 1 << 5
USER_ID = 1 << 4
APP_ID = 1 << 3
CLUSTER_ID = 1 << 2
_CONTINUATION = 1

EMPTY_RAW_PROPERTIES = b"\x00\x00"


def _shortstr(buf: Buffer, o: int) -> tuple[str, int]:
    n = buf[o]
    o += 1
    end = o + n
    if end > len(buf):
        raise ValueError("property string longer than its frame")
    return str(buf[o:end], "utf-8"), end


def decode_property_list(buf: Buffer, o: int, end: int) -> BasicProperties:
    """Flag words + property list from ``buf[o:end]``, raising the codec's own errors
    (``DECODE_ERRORS``): for callers that map them to their own reply."""
    (flags,) = _U16.unpack_from(buf, o)
    o += 2
    if flags & _CONTINUATION:
        # Later flag words would name properties the basic class does not have.
        more = _CONTINUATION
        while more & _CONTINUATION:
            (more,) = _U16.unpack_from(buf, o)
            o += 2
            if more & ~_CONTINUATION:
                raise ValueError("content header sets properties beyond the basic class")
    if not flags & 0xFFFC:
        if o != end:
            raise ValueError("content header has trailing bytes")
        return EMPTY_PROPERTIES
    content_type = content_encoding = correlation_id = reply_to = expiration = None
    message_id = type_ = user_id = app_id = cluster_id = None
    headers = delivery_mode = priority = timestamp = None
    if flags & CONTENT_TYPE:
        content_type, o = _shortstr(buf, o)
    if flags & CONTENT_ENCODING:
        content_encoding, o = _shortstr(buf, o)
    if flags & HEADERS:
        headers, o = _decode_table(buf, o)
    if flags & DELIVERY_MODE:
        delivery_mode = buf[o]
        o += 1
    if flags & PRIORITY:
        priority = buf[o]
        o += 1
    if flags & CORRELATION_ID:
        correlation_id, o = _shortstr(buf, o)
    if flags & REPLY_TO:
        reply_to, o = _shortstr(buf, o)
    if flags & EXPIRATION:
        expiration, o = _shortstr(buf, o)
    if flags & MESSAGE_ID:
        message_id, o = _shortstr(buf, o)
    if flags & TIMESTAMP:
        (timestamp,) = _U64.unpack_from(buf, o)
        o += 8
    if flags & TYPE:
        type_, o = _shortstr(buf, o)
    if flags & USER_ID:
        user_id, o = _shortstr(buf, o)
    if flags & APP_ID:
        app_id, o = _shortstr(buf, o)
    if flags & CLUSTER_ID:
        cluster_id, o = _shortstr(buf, o)
    if o != end:
        raise ValueError("content header length does not match its properties")
    return BasicProperties(
        content_type,
        content_encoding,
        headers,
        delivery_mode,
        priority,
        correlation_id,
        reply_to,
        expiration,
        message_id,
        timestamp,
        type_,
        user_id,
        app_id,
        cluster_id,
    )


def decode_properties(buf: Buffer, offset: int = 0, end: int | None = None) -> BasicProperties:
    """Decode flag words + property list from ``buf[offset:end]``; 501 on malformed input."""
    try:
        return decode_property_list(buf, offset, len(buf) if end is None else end)
    except DECODE_ERRORS as exc:
        raise AMQPConnectionError(
            ReplyCode.FRAME_ERROR, f"malformed content header: {exc}"
        ) from None


def _put_shortstr(parts: list[bytes], name: str, value: str) -> None:
    data = value.encode("utf-8")
    if len(data) > 255:
        raise ValueError(f"property {name} longer than 255 bytes")
    parts.append(bytes((len(data),)))
    parts.append(data)


def encode_properties(props: BasicProperties) -> bytes:
    """Encode properties as flag word + property list (the ``raw_properties`` form)."""
    if props is EMPTY_PROPERTIES:
        return EMPTY_RAW_PROPERTIES
    flags = 0
    parts: list[bytes] = [b""]
    if props.content_type is not None:
        flags |= CONTENT_TYPE
        _put_shortstr(parts, "content_type", props.content_type)
    if props.content_encoding is not None:
        flags |= CONTENT_ENCODING
        _put_shortstr(parts, "content_encoding", props.content_encoding)
    if props.headers is not None:
        flags |= HEADERS
        parts.append(encode_table(props.headers))
    if props.delivery_mode is not None:
        flags |= DELIVERY_MODE
        parts.append(bytes((props.delivery_mode,)))
    if props.priority is not None:
        flags |= PRIORITY
        parts.append(bytes((props.priority,)))
    if props.correlation_id is not None:
        flags |= CORRELATION_ID
        _put_shortstr(parts, "correlation_id", props.correlation_id)
    if props.reply_to is not None:
        flags |= REPLY_TO
        _put_shortstr(parts, "reply_to", props.reply_to)
    if props.expiration is not None:
        flags |= EXPIRATION
        _put_shortstr(parts, "expiration", props.expiration)
    if props.message_id is not None:
        flags |= MESSAGE_ID
        _put_shortstr(parts, "message_id", props.message_id)
    if props.timestamp is not None:
        flags |= TIMESTAMP
        parts.append(_U64.pack(props.timestamp))
    if props.type is not None:
        flags |= TYPE
        _put_shortstr(parts, "type", props.type)
    if props.user_id is not None:
        flags |= USER_ID
        _put_shortstr(parts, "user_id", props.user_id)
    if props.app_id is not None:
        flags |= APP_ID
        _put_shortstr(parts, "app_id", props.app_id)
    if props.cluster_id is not None:
        flags |= CLUSTER_ID
        _put_shortstr(parts, "cluster_id", props.cluster_id)
    parts[0] = _U16.pack(flags)
    return b"".join(parts)


_I64 = struct.Struct(">q")
_U32 = struct.Struct(">I")
_STREAM_OFFSET_KEY = b"\x0fx-stream-offset" + b"l"


_MISSING = object()
#: Wire properties -> their offset_parts (a pure function of the bytes; bounded by clearing).
_offset_parts_cache: dict[bytes, tuple[bytes, bytes] | None] = {}


def _split_for_offset(raw: bytes, properties: BasicProperties) -> tuple[bytes, bytes] | None:
    (flags,) = _U16.unpack_from(raw, 0)
    if flags & _CONTINUATION or (
        flags & HEADERS and "x-stream-offset" in (properties.headers or {})
    ):
        return None
    entry_size = len(_STREAM_OFFSET_KEY) + _I64.size
    pos = 2
    if flags & CONTENT_TYPE:
        pos += 1 + raw[pos]
    if flags & CONTENT_ENCODING:
        pos += 1 + raw[pos]
    if flags & HEADERS:
        (length,) = _U32.unpack_from(raw, pos)
        end = pos + 4 + length
        head = raw[:pos] + _U32.pack(length + entry_size) + raw[pos + 4 : end]
        return head + _STREAM_OFFSET_KEY, raw[end:]
    head = _U16.pack(flags | HEADERS) + raw[2:pos] + _U32.pack(entry_size)
    return head + _STREAM_OFFSET_KEY, raw[pos:]


class StreamWire:
    """Wire-format help for stream queues, handed to the broker core (which never imports
    the protocol): every delivery of a stream message carries an ``x-stream-offset`` long
    header, so the header is spliced into the publisher's property bytes once, when the
    message is appended, and the stream stores and delivers those bytes as they are."""

    @staticmethod
    def with_offset(message: Message, offset: int) -> bytes:
        """``message``'s wire properties with an ``x-stream-offset`` long header added."""
        parts = StreamWire.offset_parts(message)
        if parts is None:
            return encode_properties(with_stream_offset(message.properties, offset))
        head, tail = parts
        return head + _I64.pack(offset) + tail

    @staticmethod
    def offset_parts(message: Message) -> tuple[bytes, bytes] | None:
        """``message``'s wire properties with an ``x-stream-offset`` long header added, in
        two parts: the 8-byte offset goes between them.  None when the bytes cannot be
        spliced (a continuation flag, or the header already there): then re-encode them.
        Publishers repeat their properties, so each distinct set is split once."""
        raw = message.raw_properties
        if raw is not None:
            parts = _offset_parts_cache.get(raw, _MISSING)
            if parts is not _MISSING:
                return parts  # type: ignore[return-value]
        else:
            raw = encode_properties(message.properties)
        parts = _split_for_offset(raw, message.properties)
        if message.raw_properties is not None:
            if len(_offset_parts_cache) >= 4096:
                _offset_parts_cache.clear()
            _offset_parts_cache[raw] = parts
        return parts

    @staticmethod
    def decode(raw: bytes) -> BasicProperties:
        """Properties from their wire bytes."""
        return decode_properties(raw)
