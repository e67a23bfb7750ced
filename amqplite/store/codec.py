"""The store's own serialisation of field values, basic properties and message records.

Layer: ``amqplite/store``.  The store must not import ``amqplite.protocol`` (layer rule), and
the AMQP wire encoding loses Python types anyway (``datetime`` to whole seconds, every int
to one wire type), so the store keeps its own small tagged encoding whose round trip is
exact: ``decode_value(encode_value(v)) == v`` with the same types, for ``None``, ``bool``,
``int`` (any size), ``float``, ``str``, ``bytes``, ``Decimal``, ``datetime`` (microseconds and
fixed UTC offsets kept) and ``list``/``dict[str, ...]`` nestings of those -- which covers
``x-death`` headers (lists of tables holding a timestamp).  Tuples come back as lists.

A message payload holds the queues it was enqueued in, exchange, routing key, the encoded
properties, the publisher's raw wire properties when known (so deliveries after a restart
can still reuse them) and the body, in that order, so the body never needs copying on decode.
"""

from __future__ import annotations

import datetime
import struct
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from amqplite.message import BasicProperties, Long, Message

_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_I64 = struct.Struct("<q")
_F64 = struct.Struct("<d")
_TAG_I64 = struct.Struct("<cq")
_TAG_U32 = struct.Struct("<cI")
_TAG_U16 = struct.Struct("<cH")

_I64_MIN = -(1 << 63)
_I64_MAX = (1 << 63) - 1

_PROPERTY_FIELDS = (
    "content_type",
    "content_encoding",
    "headers",
    "delivery_mode",
    "priority",
    "correlation_id",
    "reply_to",
    "expiration",
    "message_id",
    "timestamp",
    "type",
    "user_id",
    "app_id",
    "cluster_id",
)


class CodecError(ValueError):
    """Bytes that do not decode (only possible for records that passed their CRC by accident)."""


def _text(value: str) -> bytes:
    return value.encode("utf-8", "surrogateescape")


def encode_value(value: Any, out: bytearray) -> None:
    """Append the tagged encoding of ``value`` to ``out``."""
    kind = type(value)
    if value is None:
        out += b"N"
    elif kind is bool:
        out += b"T" if value else b"F"
    elif kind is str:
        data = _text(value)
        out += _TAG_U32.pack(b"s", len(data))
        out += data
    elif kind is int:
        if _I64_MIN <= value <= _I64_MAX:
            out += _TAG_I64.pack(b"i", value)
        else:
            data = value.to_bytes((value.bit_length() + 8) // 8, "little", signed=True)
            out += _TAG_U32.pack(b"I", len(data))
            out += data
    elif kind is Long:
        out += _TAG_I64.pack(b"L", value)
    elif kind is dict:
        out += _TAG_U32.pack(b"m", len(value))
        for key, item in value.items():
            if type(key) is not str:
                raise TypeError(f"field table keys must be str, not {type(key).__name__}")
            data = _text(key)
            out += _U32.pack(len(data))
            out += data
            encode_value(item, out)
    elif kind is list or kind is tuple:
        out += _TAG_U32.pack(b"l", len(value))
        for item in value:
            encode_value(item, out)
    elif kind is bytes or kind is bytearray or kind is memoryview:
        out += _TAG_U32.pack(b"x", len(value))
        out += value
    elif kind is float:
        out += b"f"
        out += _F64.pack(value)
    elif kind is Decimal:
        data = str(value).encode("ascii")
        out += _TAG_U16.pack(b"D", len(data))
        out += data
    elif kind is datetime.datetime:
        data = value.isoformat().encode("ascii")
        out += _TAG_U16.pack(b"t", len(data))
        out += data
    elif isinstance(value, str):
        # Subclasses (str enums, IntEnum, OrderedDict...) are stored as their base type;
        # str() of a str-mixin enum is its name, hence the detour through the bytes.
        encode_value(_text(value).decode("utf-8", "surrogateescape"), out)
    elif isinstance(value, int):
        encode_value(int(value), out)
    elif isinstance(value, float):
        encode_value(float(value), out)
    elif isinstance(value, dict):
        encode_value(dict(value), out)
    elif isinstance(value, list):
        encode_value(list(value), out)
    elif isinstance(value, bytes):
        encode_value(bytes(value), out)
    else:
        raise TypeError(f"cannot store a value of type {kind.__name__}")


def decode_value(data: bytes | memoryview, pos: int) -> tuple[Any, int]:
    """Decode one tagged value at ``pos``; returns it and the position after it."""
    tag = data[pos]
    pos += 1
    if tag == 0x73:  # s
        (n,) = _U32.unpack_from(data, pos)
        pos += 4
        end = pos + n
        _check(data, end)
        return bytes(data[pos:end]).decode("utf-8", "surrogateescape"), end
    if tag == 0x69:  # i
        return _I64.unpack_from(data, pos)[0], pos + 8
    if tag == 0x4E:  # N
        return None, pos
    if tag == 0x54:  # T
        return True, pos
    if tag == 0x46:  # F
        return False, pos
    if tag == 0x6D:  # m
        (n,) = _U32.unpack_from(data, pos)
        pos += 4
        table: dict[str, Any] = {}
        for _ in range(n):
            (k,) = _U32.unpack_from(data, pos)
            pos += 4
            end = pos + k
            _check(data, end)
            key = bytes(data[pos:end]).decode("utf-8", "surrogateescape")
            table[key], pos = decode_value(data, end)
        return table, pos
    if tag == 0x6C:  # l
        (n,) = _U32.unpack_from(data, pos)
        pos += 4
        items: list[Any] = []
        for _ in range(n):
            item, pos = decode_value(data, pos)
            items.append(item)
        return items, pos
    if tag == 0x78:  # x
        (n,) = _U32.unpack_from(data, pos)
        pos += 4
        end = pos + n
        _check(data, end)
        return bytes(data[pos:end]), end
    if tag == 0x4C:  # L: a Long (keeps its 64-bit wire type through a restart)
        return Long(_I64.unpack_from(data, pos)[0]), pos + 8
    if tag == 0x66:  # f
        return _F64.unpack_from(data, pos)[0], pos + 8
    if tag == 0x49:  # I
        (n,) = _U32.unpack_from(data, pos)
        pos += 4
        end = pos + n
        _check(data, end)
        return int.from_bytes(data[pos:end], "little", signed=True), end
    if tag == 0x44:  # D
        (n,) = _U16.unpack_from(data, pos)
        pos += 2
        end = pos + n
        _check(data, end)
        return Decimal(bytes(data[pos:end]).decode("ascii")), end
    if tag == 0x74:  # t
        (n,) = _U16.unpack_from(data, pos)
        pos += 2
        end = pos + n
        _check(data, end)
        return datetime.datetime.fromisoformat(bytes(data[pos:end]).decode("ascii")), end
    raise CodecError(f"unknown value tag {tag:#x}")


def _check(data: bytes | memoryview, end: int) -> None:
    if end > len(data):
        raise CodecError("value runs past the end of its record")


def encode_properties(props: BasicProperties, out: bytearray) -> None:
    """Presence flags (u16, bit i = field i of the wire order) then each present value."""
    values = [getattr(props, name) for name in _PROPERTY_FIELDS]
    flags = 0
    for i, value in enumerate(values):
        if value is not None:
            flags |= 1 << i
    out += _U16.pack(flags)
    for value in values:
        if value is not None:
            encode_value(value, out)


def decode_properties(data: bytes | memoryview, pos: int) -> tuple[BasicProperties, int]:
    (flags,) = _U16.unpack_from(data, pos)
    pos += 2
    if not flags:
        return BasicProperties(), pos
    values: list[Any] = [None] * 14
    for i in range(14):
        if flags & (1 << i):
            values[i], pos = decode_value(data, pos)
    return BasicProperties(*values), pos


def encode_queue(queue: tuple[str, str]) -> bytes:
    """A queue key as it appears inside records: two u16-length-prefixed UTF-8 strings."""
    vhost, name = _text(queue[0]), _text(queue[1])
    return _U16.pack(len(vhost)) + vhost + _U16.pack(len(name)) + name


def decode_queue(data: bytes | memoryview, pos: int) -> tuple[tuple[str, str], int]:
    (n,) = _U16.unpack_from(data, pos)
    pos += 2
    _check(data, pos + n)
    vhost = bytes(data[pos : pos + n]).decode("utf-8", "surrogateescape")
    pos += n
    (n,) = _U16.unpack_from(data, pos)
    pos += 2
    end = pos + n
    _check(data, end)
    return (vhost, bytes(data[pos:end]).decode("utf-8", "surrogateescape")), end


#: Bounded caches of property encodings.  Publishers mostly send the same few property
#: lists over and over, so the wire bytes map to our encoding (and our encoding back to a
#: shared BasicProperties without headers) with one dict lookup instead of a field walk.
_CACHE_LIMIT = 4096
_encoded_by_raw: dict[bytes, bytes] = {}
_decoded_by_encoding: dict[bytes, BasicProperties] = {}
_queue_by_code: dict[bytes, tuple[str, str]] = {}
_head_by_queue: dict[bytes, tuple[bytes, BasicProperties]] = {}


def _encoded_properties(message: Message) -> bytes:
    raw = message.raw_properties
    if raw is not None:
        encoded = _encoded_by_raw.get(raw)
        if encoded is not None:
            return encoded
    out = bytearray()
    encode_properties(message.properties, out)
    encoded = bytes(out)
    if raw is not None:
        if len(_encoded_by_raw) >= _CACHE_LIMIT:
            _encoded_by_raw.clear()
        _encoded_by_raw[raw] = encoded
    return encoded


def _decoded_properties(data: bytes | memoryview, pos: int, end: int) -> BasicProperties:
    key = bytes(data[pos:end])
    properties = _decoded_by_encoding.get(key)
    if properties is None:
        properties, stop = decode_properties(key, 0)
        if stop != len(key):
            raise CodecError("properties do not fill their slot")
        if properties.headers is None:  # a headers dict is mutable: never share one
            if len(_decoded_by_encoding) >= _CACHE_LIMIT:
                _decoded_by_encoding.clear()
            _decoded_by_encoding[key] = properties
    return properties


#: Bytes a message payload leaves free at its start for the record header.
RESERVED = 18


#: Set in a payload's queue count when an enqueue timestamp (f64 seconds) follows the queues.
_HAS_TIMESTAMP = 0x8000
MAX_QUEUES_PER_MESSAGE = _HAS_TIMESTAMP - 1
#: The first u16 of a message payload for one queue with an enqueue time (the common case):
#: the queue key, then the f64 time, then the head (exchange, key, properties), then the body.
ONE_QUEUE_TIMED = _HAS_TIMESTAMP | 1


def encode_queue_list(
    out: bytearray, encoded_queues: Sequence[bytes], timestamp: float | None
) -> None:
    """The queue list that starts a message payload, with the optional enqueue time."""
    n = len(encoded_queues)
    if n > MAX_QUEUES_PER_MESSAGE:
        raise ValueError(f"a message is stored in at most {MAX_QUEUES_PER_MESSAGE} queues")
    out += _U16.pack(n if timestamp is None else n | _HAS_TIMESTAMP)
    for queue in encoded_queues:
        out += queue
    if timestamp is not None:
        out += _F64.pack(timestamp)


def encode_message(
    message: Message, encoded_queues: Sequence[bytes], timestamp: float | None = None
) -> bytearray:
    """A message payload after ``RESERVED`` zero bytes (room for the record header).

    ``timestamp`` is when the broker enqueued it (wall-clock seconds), kept so that message
    TTLs are measured from the original enqueue time after a restart.
    """
    out = bytearray(RESERVED)
    encode_queue_list(out, encoded_queues, timestamp)
    exchange = _text(message.exchange)
    routing_key = _text(message.routing_key)
    out += _U16.pack(len(exchange))
    out += exchange
    out += _U16.pack(len(routing_key))
    out += routing_key
    properties = _encoded_properties(message)
    out += _U32.pack(len(properties))
    out += properties
    raw = message.raw_properties
    if raw is None:
        out += b"\0\0\0\0"
    else:
        out += _U32.pack(len(raw) + 1)
        out += raw
    out += message.body
    return out


def decode_queues(data: bytes | memoryview) -> tuple[list[tuple[str, str]], int]:
    """The queue list at the start of a message payload, and where the content starts."""
    queues, pos, _timestamp = decode_queue_list(data)
    return queues, pos


def decode_queue_list(
    data: bytes | memoryview,
) -> tuple[list[tuple[str, str]], int, float | None]:
    """The queue list, where the content starts, and the enqueue timestamp (None if absent)."""
    (n,) = _U16.unpack_from(data, 0)
    pos = 2
    timed = n & _HAS_TIMESTAMP
    n &= MAX_QUEUES_PER_MESSAGE
    queues = []
    known = _queue_by_code
    for _ in range(n):
        # The encoded key is looked up whole: recovery meets the same few queues a million
        # times, and a dict lookup is cheaper than decoding two strings.
        (vlen,) = _U16.unpack_from(data, pos)
        (nlen,) = _U16.unpack_from(data, pos + 2 + vlen)
        end = pos + 4 + vlen + nlen
        code = bytes(data[pos:end])
        queue = known.get(code)
        if queue is None:
            queue, stop = decode_queue(code, 0)
            if stop != len(code) or end > len(data):
                raise CodecError("queue key runs past the end of its record")
            if len(known) >= _CACHE_LIMIT:
                known.clear()
            known[code] = queue
        queues.append(queue)
        pos = end
    timestamp: float | None = None
    if timed:
        (timestamp,) = _F64.unpack_from(data, pos)
        pos += 8
    return queues, pos, timestamp


def decode_message(data: bytes | memoryview, pos: int) -> Message:
    """The message whose content starts at ``pos`` (as returned by :func:`decode_queues`)."""
    (n,) = _U16.unpack_from(data, pos)
    pos += 2
    exchange = bytes(data[pos : pos + n]).decode("utf-8", "surrogateescape")
    pos += n
    (n,) = _U16.unpack_from(data, pos)
    pos += 2
    routing_key = bytes(data[pos : pos + n]).decode("utf-8", "surrogateescape")
    pos += n
    (n,) = _U32.unpack_from(data, pos)
    pos += 4
    props_end = pos + n
    _check(data, props_end)
    properties = _decoded_properties(data, pos, props_end)
    pos = props_end
    (n,) = _U32.unpack_from(data, pos)
    pos += 4
    raw: bytes | None = None
    if n:
        end = pos + n - 1
        _check(data, end)
        raw = bytes(data[pos:end])
        pos = end
    _check(data, pos)
    return Message(exchange, routing_key, properties, bytes(data[pos:]), raw)


def decode_head(data: bytes | memoryview, pos: int) -> tuple[BasicProperties, int]:
    """The properties and body size of the message whose content starts at ``pos``,
    without building the message: what recovery needs while the body stays on disk."""
    (n,) = _U16.unpack_from(data, pos)
    pos += 2 + n
    (n,) = _U16.unpack_from(data, pos)
    pos += 2 + n
    (n,) = _U32.unpack_from(data, pos)
    pos += 4
    props_end = pos + n
    _check(data, props_end)
    properties = _decoded_properties(data, pos, props_end)
    (n,) = _U32.unpack_from(data, props_end)
    pos = props_end + 4 + (n - 1 if n else 0)
    _check(data, pos)
    return properties, len(data) - pos


def decode_stored_head(
    data: bytes | memoryview,
) -> tuple[list[tuple[str, str]], float | None, BasicProperties, int]:
    """A message payload's queues, enqueue time, properties and body size: what recovery
    needs to queue a message whose body stays on disk.

    :func:`decode_queue_list` and :func:`decode_head` in one call, inlined: recovery runs
    this once per stored message, and at a million messages each Python call counts.
    """
    u16 = _U16.unpack_from
    u32 = _U32.unpack_from
    size = len(data)
    (n,) = u16(data, 0)
    timed = n & _HAS_TIMESTAMP
    n &= MAX_QUEUES_PER_MESSAGE
    pos = 2
    queues = []
    known = _queue_by_code
    code = b""
    for _ in range(n):
        (vlen,) = u16(data, pos)
        (nlen,) = u16(data, pos + 2 + vlen)
        end = pos + 4 + vlen + nlen
        code = bytes(data[pos:end])
        queue = known.get(code)
        if queue is None:
            queue, stop = decode_queue(code, 0)
            if stop != len(code) or end > size:
                raise CodecError("queue key runs past the end of its record")
            if len(known) >= _CACHE_LIMIT:
                known.clear()
            known[code] = queue
        queues.append(queue)
        pos = end
    timestamp: float | None = None
    if timed:
        (timestamp,) = _F64.unpack_from(data, pos)
        pos += 8
    # The rest before the body (exchange, routing key, properties, wire properties) is
    # usually what the last message to the same queue had: one comparison then stands in
    # for the whole walk.
    single = code if n == 1 else None
    if single is not None:
        seen = _head_by_queue.get(single)
        if seen is not None:
            head, properties = seen
            head_end = pos + len(head)
            if data[pos:head_end] == head:
                return queues, timestamp, properties, size - head_end
    head_start = pos
    pos += 2 + u16(data, pos)[0]  # exchange
    pos += 2 + u16(data, pos)[0]  # routing key
    (n,) = u32(data, pos)
    pos += 4
    props_end = pos + n
    if props_end > size:
        raise CodecError("value runs past the end of its record")
    cached = _decoded_by_encoding.get(bytes(data[pos:props_end]))
    properties = cached if cached is not None else _decoded_properties(data, pos, props_end)
    (n,) = u32(data, props_end)
    pos = props_end + 4 + (n - 1 if n else 0)
    if pos > size:
        raise CodecError("value runs past the end of its record")
    if single is not None and properties.headers is None:  # shared only without headers
        if len(_head_by_queue) >= _CACHE_LIMIT:
            _head_by_queue.clear()
        _head_by_queue[single] = (bytes(data[head_start:pos]), properties)
    return queues, timestamp, properties, size - pos
