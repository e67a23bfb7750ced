"""AMQP 0-9-1 field tables and arrays (protocol layer, pure).

Value types on the wire and in Python (the set RabbitMQ's clients send):

====  ======================  =========================================
type  wire                    Python
====  ======================  =========================================
t     bool octet              ``bool``
b/B   int8 / uint8            ``int``
s/u   int16 / uint16          ``int``
I/i   int32 / uint32          ``int``
l     int64                   ``int``
f/d   float32 / float64       ``float``
D     scale octet + int32     ``decimal.Decimal``
S     long string             ``str`` when valid UTF-8, else ``bytes``
x     byte array              ``bytes``
A     array                   ``list``
T     uint64 seconds          ``datetime.datetime`` (UTC, aware)
F     table                   ``dict[str, Any]``
V     void                    ``None``
====  ======================  =========================================

Encoding picks a type from the Python value: ``bool`` → t, ``int`` → I when it fits in
int32 else l (as RabbitMQ's own clients do), ``float`` → d, ``str`` → S, ``bytes`` → x,
``Decimal`` → D, ``datetime`` → T (naive means UTC), ``dict`` → F, ``list``/``tuple`` → A,
``None`` → V.

Nesting is capped at :data:`MAX_DEPTH` levels both ways, so a hostile peer gets a
501 FRAME_ERROR instead of exhausting the interpreter stack.  The ``_decode_*``
functions raise plain ``ValueError``/``struct.error``/``IndexError`` on malformed input
(the frame layer converts them once, cheaply); the public ``decode_*`` wrappers raise
:class:`amqplite.errors.AMQPConnectionError`.
"""

from __future__ import annotations

import datetime
import decimal
import struct
from typing import Any

from amqplite.errors import AMQPConnectionError, ReplyCode
from amqplite.message import Long

MAX_DEPTH = 64

Buffer = bytes | bytearray | memoryview

_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
_ONE_SECOND = datetime.timedelta(seconds=1)

_U32 = struct.Struct(">I")
_I8 = struct.Struct(">b")
_I16 = struct.Struct(">h")
_U16 = struct.Struct(">H")
_I32 = struct.Struct(">i")
_I64 = struct.Struct(">q")
_U64 = struct.Struct(">Q")
_F32 = struct.Struct(">f")
_F64 = struct.Struct(">d")
_DEC = struct.Struct(">Bi")
_TAG_I = struct.Struct(">ci")
_TAG_L = struct.Struct(">cq")
_TAG_D = struct.Struct(">cd")
_TAG_T = struct.Struct(">cQ")
_TAG_DEC = struct.Struct(">cBi")
_TAG_LEN = struct.Struct(">cI")

_INT32_MIN = -(2**31)
_INT32_MAX = 2**31 - 1
_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1

# Wire type letters as ints, for dispatch on ``buf[offset]``.
_t, _b, _B, _s, _u, _I, _i, _l, _f, _d, _D, _S, _A, _T, _F, _V, _x = b"tbBsuIilfdDSATFVx"


def _too_deep() -> ValueError:
    return ValueError(f"field table nesting deeper than {MAX_DEPTH} levels")


def _decode_table(buf: Buffer, offset: int, depth: int = 0) -> tuple[dict[str, Any], int]:
    (size,) = _U32.unpack_from(buf, offset)
    offset += 4
    end = offset + size
    if end > len(buf):
        raise ValueError("field table longer than its frame")
    result: dict[str, Any] = {}
    while offset < end:
        klen = buf[offset]
        offset += 1
        key = str(buf[offset : offset + klen], "utf-8")
        offset += klen
        result[key], offset = _decode_value(buf, offset, depth)
    if offset != end:
        raise ValueError("field table contents overrun its length")
    return result, offset


def _decode_array(buf: Buffer, offset: int, depth: int) -> tuple[list[Any], int]:
    (size,) = _U32.unpack_from(buf, offset)
    offset += 4
    end = offset + size
    if end > len(buf):
        raise ValueError("field array longer than its frame")
    result: list[Any] = []
    append = result.append
    while offset < end:
        value, offset = _decode_value(buf, offset, depth)
        append(value)
    if offset != end:
        raise ValueError("field array contents overrun its length")
    return result, offset


def _decode_value(buf: Buffer, offset: int, depth: int) -> tuple[Any, int]:
    kind = buf[offset]
    offset += 1
    if kind == _S:
        (n,) = _U32.unpack_from(buf, offset)
        offset += 4
        end = offset + n
        if end > len(buf):
            raise ValueError("long string longer than its frame")
        raw = bytes(buf[offset:end])
        try:
            return raw.decode("utf-8"), end
        except UnicodeDecodeError:
            return raw, end
    if kind == _t:
        return buf[offset] != 0, offset + 1
    if kind == _I:
        return _I32.unpack_from(buf, offset)[0], offset + 4
    if kind == _l:
        return Long(_I64.unpack_from(buf, offset)[0]), offset + 8
    if kind == _F:
        if depth >= MAX_DEPTH:
            raise _too_deep()
        return _decode_table(buf, offset, depth + 1)
    if kind == _A:
        if depth >= MAX_DEPTH:
            raise _too_deep()
        return _decode_array(buf, offset, depth + 1)
    if kind == _b:
        return _I8.unpack_from(buf, offset)[0], offset + 1
    if kind == _B:
        return buf[offset], offset + 1
    if kind == _s:
        return _I16.unpack_from(buf, offset)[0], offset + 2
    if kind == _u:
        return _U16.unpack_from(buf, offset)[0], offset + 2
    if kind == _i:
        return _U32.unpack_from(buf, offset)[0], offset + 4
    if kind == _f:
        return _F32.unpack_from(buf, offset)[0], offset + 4
    if kind == _d:
        return _F64.unpack_from(buf, offset)[0], offset + 8
    if kind == _D:
        scale, value = _DEC.unpack_from(buf, offset)
        return decimal.Decimal(value).scaleb(-scale), offset + 5
    if kind == _T:
        (seconds,) = _U64.unpack_from(buf, offset)
        return _EPOCH + seconds * _ONE_SECOND, offset + 8
    if kind == _V:
        return None, offset
    if kind == _x:
        (n,) = _U32.unpack_from(buf, offset)
        offset += 4
        end = offset + n
        if end > len(buf):
            raise ValueError("byte array longer than its frame")
        return bytes(buf[offset:end]), end
    raise ValueError(f"unknown field value type {kind!r}")


def _malformed(exc: Exception) -> AMQPConnectionError:
    return AMQPConnectionError(ReplyCode.FRAME_ERROR, f"malformed field table: {exc}")


#: Exceptions the raw decoders raise on malformed input.  RecursionError is not among
#: them: the depth cap keeps the stack shallow.
DECODE_ERRORS = (ValueError, IndexError, struct.error, OverflowError, decimal.DecimalException)


def decode_table(buf: Buffer, offset: int = 0) -> tuple[dict[str, Any], int]:
    """Decode a length-prefixed field table at ``offset``; return it and the next offset."""
    try:
        return _decode_table(buf, offset)
    except DECODE_ERRORS as exc:
        raise _malformed(exc) from None


def decode_array(buf: Buffer, offset: int = 0) -> tuple[list[Any], int]:
    """Decode a length-prefixed field array at ``offset``; return it and the next offset."""
    try:
        return _decode_array(buf, offset, 0)
    except DECODE_ERRORS as exc:
        raise _malformed(exc) from None


# -- encoding -------------------------------------------------------------------------


def _encode_value(parts: list[bytes], value: Any, depth: int) -> None:
    # Order: the common header value types first; bool before int (bool is an int).
    if isinstance(value, str):
        data = value.encode("utf-8")
        parts.append(_TAG_LEN.pack(b"S", len(data)))
        parts.append(data)
    elif isinstance(value, bool):
        parts.append(b"t\x01" if value else b"t\x00")
    elif isinstance(value, int):
        if type(value) is Long:
            parts.append(_TAG_L.pack(b"l", value))
        elif _INT32_MIN <= value <= _INT32_MAX:
            parts.append(_TAG_I.pack(b"I", value))
        elif _INT64_MIN <= value <= _INT64_MAX:
            parts.append(_TAG_L.pack(b"l", value))
        else:
            raise ValueError(f"integer {value} does not fit a signed 64-bit field")
    elif isinstance(value, dict):
        if depth >= MAX_DEPTH:
            raise _too_deep()
        parts.append(b"F")
        parts.append(_encode_table(value, depth + 1))
    elif isinstance(value, list | tuple):
        if depth >= MAX_DEPTH:
            raise _too_deep()
        parts.append(b"A")
        parts.append(_encode_array(value, depth + 1))
    elif value is None:
        parts.append(b"V")
    elif isinstance(value, float):
        parts.append(_TAG_D.pack(b"d", value))
    elif isinstance(value, bytes | bytearray | memoryview):
        data = bytes(value)
        parts.append(_TAG_LEN.pack(b"x", len(data)))
        parts.append(data)
    elif isinstance(value, decimal.Decimal):
        parts.append(_encode_decimal(value))
    elif isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.UTC)
        parts.append(_TAG_T.pack(b"T", (value - _EPOCH) // _ONE_SECOND))
    else:
        raise TypeError(f"cannot encode {type(value).__name__} as an AMQP field value")


def _encode_decimal(value: decimal.Decimal) -> bytes:
    sign, digits, exponent = value.as_tuple()
    if not isinstance(exponent, int):
        raise ValueError(f"cannot encode {value} as an AMQP decimal")
    number = int("".join(map(str, digits)) or "0")
    if exponent > 0:
        number *= 10**exponent
        exponent = 0
    if sign:
        number = -number
    scale = -exponent
    if scale > 255 or not _INT32_MIN <= number <= _INT32_MAX:
        raise ValueError(f"decimal {value} does not fit an AMQP decimal (scale octet, int32)")
    return _TAG_DEC.pack(b"D", scale, number)


def _encode_table(table: dict[str, Any], depth: int) -> bytes:
    parts: list[bytes] = [b""]
    for key, value in table.items():
        kdata = key.encode("utf-8")
        if len(kdata) > 255:
            raise ValueError(f"field table key longer than 255 bytes: {key[:40]!r}...")
        parts.append(bytes((len(kdata),)))
        parts.append(kdata)
        _encode_value(parts, value, depth)
    body = b"".join(parts)
    return _U32.pack(len(body)) + body


def _encode_array(values: list[Any] | tuple[Any, ...], depth: int) -> bytes:
    parts: list[bytes] = []
    for value in values:
        _encode_value(parts, value, depth)
    body = b"".join(parts)
    return _U32.pack(len(body)) + body


def encode_table(table: dict[str, Any] | None) -> bytes:
    """Encode a field table with its 4-byte length prefix (``None`` and ``{}`` → empty table)."""
    if not table:
        return b"\x00\x00\x00\x00"
    return _encode_table(table, 0)


def encode_array(values: list[Any] | tuple[Any, ...]) -> bytes:
    """Encode a field array with its 4-byte length prefix."""
    return _encode_array(values, 0)


def encode_shortstr(value: str) -> bytes:
    """A short string with its length octet; more than 255 bytes is a ValueError."""
    data = value.encode("utf-8")
    if len(data) > 255:
        raise ValueError(f"short string longer than 255 bytes: {value[:40]!r}...")
    return bytes((len(data),)) + data
