"""The bytes of a stream log: chunks of messages and the index entries that find them.

Layer: ``amqplite/store``.  Pure functions over bytes; the stream logs do the I/O.

A stream log (see :mod:`amqplite.store.streamlog`) is a series of segment files, each a
file header followed by chunks.  A chunk is one append (one group-commit batch of a
stream): a 41-byte header and the messages, each as ``u64 timestamp_ms | u32 length |
message`` (the message in the store codec's encoding).  The header::

    magic u8 (0xC5) | count u32 | first_offset u64 | first_ts_ms u64 | last_ts_ms u64
    | payload length u32 | crc32 u32 (over the header's first 33 bytes and the payload)
    | reserved u32

Beside each segment an index file holds one 48-byte entry per chunk (the chunk's first
offset, count, first/last timestamp, file position and length, and a CRC of the entry), so
that an offset or a timestamp is found by binary search in memory and the segment is read
only where the wanted chunk starts.  Both files start with an 8-byte magic and a version.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator, Sequence

import attrs

from amqplite.message import BasicProperties, Message, MessageRun
from amqplite.store.codec import RESERVED, decode_message, encode_message

SEGMENT_MAGIC = b"AMQLSTR\n"
INDEX_MAGIC = b"AMQLSIX\n"

CHUNK_MAGIC = 0xC5
CHUNK_HEADER = struct.Struct("<BIQQQIII")
CHUNK_HEADER_SIZE = CHUNK_HEADER.size  # 41
_CHUNK_CRC_COVERED = 33
_MESSAGE_HEAD = struct.Struct("<QI")

INDEX_ENTRY = struct.Struct("<QIQQQII")
INDEX_ENTRY_SIZE = INDEX_ENTRY.size + 4  # 48 with the CRC
_U32 = struct.Struct("<I")

_crc32 = zlib.crc32
_BLANK_HEADER = bytes(CHUNK_HEADER_SIZE)


@attrs.frozen(slots=True)
class ChunkInfo:
    """What the index knows about one chunk."""

    first_offset: int
    count: int
    first_ts_ms: int
    last_ts_ms: int
    position: int
    length: int


#: Record kinds: a message in the store codec's encoding (properties as values), or in wire
#: form (the delivery's property bytes kept as they are, never decoded on the way out).
KIND_CODEC = 0
KIND_WIRE = 1
_WIRE_HEAD = struct.Struct("<BHHHI")
#: Stands in for the properties of a wire-form message read back: its ``raw_properties``
#: hold the truth (decode them with the protocol's decoder when they are needed).
WIRE_PROPERTIES = BasicProperties()


def filter_value(message: Message) -> str | None:
    """The ``x-stream-filter-value`` header of a message, as a string (None if absent)."""
    headers = message.properties.headers
    if not headers:
        return None
    value = headers.get("x-stream-filter-value")
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value if isinstance(value, str) else None


def _encode_one(message: Message) -> bytes:
    raw = message.raw_properties
    if raw is None:
        encoded = encode_message(message, ())
        encoded[RESERVED - 1] = KIND_CODEC
        return bytes(memoryview(encoded)[RESERVED - 1 :])
    exchange = message.exchange.encode()
    routing_key = message.routing_key.encode()
    value = filter_value(message)
    fv = b"" if value is None else value.encode()
    head = _WIRE_HEAD.pack(KIND_WIRE, len(exchange), len(routing_key), len(fv), len(raw))
    return b"".join((head, exchange, routing_key, fv, raw, message.body))


def encode_chunk(
    first_offset: int, entries: Sequence[tuple[int, Message]]
) -> tuple[bytearray, ChunkInfo]:
    """A chunk holding ``entries`` (``(timestamp_ms, message)``), and its index info.

    A message with ``raw_properties`` is kept in wire form (exchange, routing key, filter
    value, property bytes, body), else in the store codec's encoding.
    """
    parts: list[bytes | bytearray] = []
    append, extend = parts.append, parts.extend
    pack = _MESSAGE_HEAD.pack
    # Consecutive wire-form messages sharing exchange, routing key and properties (a run
    # of one publisher's messages) share the record's head: made once, for the first.
    props: object = None
    exchange = routing_key = ""
    raw_size = -1
    prefix = b""
    fixed = 0
    for ts_ms, message in entries:
        raw = message.raw_properties
        if (
            message.properties is props
            and raw is not None
            and len(raw) == raw_size
            and message.exchange is exchange
            and message.routing_key is routing_key
        ):
            body = message.body
            extend((pack(ts_ms, fixed + len(body)), prefix, raw, body))
            continue
        data = _encode_one(message)
        append(pack(ts_ms, len(data)))
        append(data)
        if raw is not None:
            props, exchange, routing_key = message.properties, message.exchange, message.routing_key
            raw_size = len(raw)
            prefix = data[: len(data) - raw_size - len(message.body)]
            fixed = len(prefix) + raw_size
        else:
            props = None
    first_ts, last_ts = entries[0][0], entries[-1][0]
    # One copy: the header goes in front of the records in the same join, and its CRC is
    # filled in afterwards (the payload is not copied a second time).
    parts.insert(0, _BLANK_HEADER)
    chunk = bytearray().join(parts)
    payload_length = len(chunk) - CHUNK_HEADER_SIZE
    CHUNK_HEADER.pack_into(
        chunk, 0, CHUNK_MAGIC, len(entries), first_offset, first_ts, last_ts, payload_length, 0, 0
    )
    view = memoryview(chunk)
    crc = _crc32(view[CHUNK_HEADER_SIZE:], _crc32(view[:_CHUNK_CRC_COVERED]))
    view.release()
    _U32.pack_into(chunk, _CHUNK_CRC_COVERED, crc)
    return chunk, ChunkInfo(first_offset, len(entries), first_ts, last_ts, 0, len(chunk))


def chunk_at(data: bytes | memoryview, pos: int) -> ChunkInfo | None:
    """The valid chunk starting at ``pos`` of a segment image, or None (torn, corrupt)."""
    if pos + CHUNK_HEADER_SIZE > len(data):
        return None
    magic, count, first, first_ts, last_ts, length, crc, _ = CHUNK_HEADER.unpack_from(data, pos)
    end = pos + CHUNK_HEADER_SIZE + length
    if magic != CHUNK_MAGIC or count == 0 or end > len(data):
        return None
    view = memoryview(data)
    covered = _crc32(view[pos : pos + _CHUNK_CRC_COVERED])
    if _crc32(view[pos + CHUNK_HEADER_SIZE : end], covered) != crc:
        return None
    return ChunkInfo(first, count, first_ts, last_ts, pos, end - pos)


def chunk_messages(
    data: bytes, skip: int = 0, limit: int | None = None
) -> Iterator[tuple[int, Message, str | None]]:
    """``(timestamp_ms, message, filter value)`` of the messages of a whole chunk, after
    the first ``skip`` (stepped over by their lengths, not decoded), at most ``limit``."""
    pos = CHUNK_HEADER_SIZE
    end = len(data)
    unpack_head = _MESSAGE_HEAD.unpack_from
    unpack_wire = _WIRE_HEAD.unpack_from
    for _ in range(skip):
        if pos >= end:
            return
        pos += 12 + unpack_head(data, pos)[1]
    left = -1 if limit is None else limit
    while pos < end and left != 0:
        left -= 1
        ts_ms, length = unpack_head(data, pos)
        pos += 12
        stop = pos + length
        if data[pos] == KIND_WIRE:
            _, nx, nr, nf, np = unpack_wire(data, pos)
            at = pos + 11
            exchange = data[at : at + nx].decode()
            at += nx
            routing_key = data[at : at + nr].decode()
            at += nr
            fv = data[at : at + nf].decode() if nf else None
            at += nf
            raw = data[at : at + np]
            at += np
            message = Message(exchange, routing_key, WIRE_PROPERTIES, data[at:stop], raw)
            yield ts_ms, message, fv
        else:
            message = decode_message(memoryview(data)[pos + 1 : stop], 2)
            yield ts_ms, message, filter_value(message)
        pos = stop


def chunk_columns(data: bytes) -> tuple[MessageRun, list[str | None], list[int]]:
    """A whole chunk decoded at once into parallel lists: the messages (a
    :class:`~amqplite.message.MessageRun`), filter values and timestamps (ms).  The
    readers' path: one loop, no generator and no object per message (wire-form messages
    become two slices); exchange and routing-key strings are shared between the
    consecutive messages that repeat them."""
    run = MessageRun([], [], [], [], [])
    filters: list[str | None] = []
    stamps: list[int] = []
    add_exchange = run.exchanges.append
    add_key = run.routing_keys.append
    add_props = run.properties.append
    add_raw = run.raws.append
    add_body = run.bodies.append
    add_filter, add_stamp = filters.append, stamps.append
    pos = CHUNK_HEADER_SIZE
    end = len(data)
    unpack_head = _MESSAGE_HEAD.unpack_from
    unpack_wire = _WIRE_HEAD.unpack_from
    last_names = b""
    exchange = routing_key = ""
    while pos < end:
        ts_ms, length = unpack_head(data, pos)
        pos += 12
        stop = pos + length
        if data[pos] == KIND_WIRE:
            _, nx, nr, nf, np = unpack_wire(data, pos)
            at = pos + 11
            names = data[at : at + nx + nr]
            if names != last_names:
                last_names = names
                exchange = names[:nx].decode()
                routing_key = names[nx:].decode()
            at += nx + nr
            add_filter(data[at : at + nf].decode() if nf else None)
            at += nf
            add_exchange(exchange)
            add_key(routing_key)
            add_props(WIRE_PROPERTIES)
            add_raw(data[at : at + np])
            add_body(data[at + np : stop])
        else:
            message = decode_message(memoryview(data)[pos + 1 : stop], 2)
            run.append(message)
            add_filter(filter_value(message))
        add_stamp(ts_ms)
        pos = stop
    return run, filters, stamps


def chunk_timestamps(data: bytes) -> list[int]:
    """The timestamps (ms) of a chunk's messages, without decoding the messages."""
    out = []
    pos = CHUNK_HEADER_SIZE
    end = len(data)
    while pos < end:
        ts_ms, length = _MESSAGE_HEAD.unpack_from(data, pos)
        out.append(ts_ms)
        pos += 12 + length
    return out


def encode_index_entry(info: ChunkInfo) -> bytes:
    body = INDEX_ENTRY.pack(
        info.first_offset,
        info.count,
        info.first_ts_ms,
        info.last_ts_ms,
        info.position,
        info.length,
        0,
    )
    return body + _U32.pack(_crc32(body))


def decode_index(data: bytes, start: int) -> tuple[list[ChunkInfo], int]:
    """The valid entries of an index image from ``start``, and where the valid part ends.

    Stops at the first torn, zero-filled or corrupt entry (the index is rebuilt from the
    segment beyond that point when it is the newest one).
    """
    entries: list[ChunkInfo] = []
    pos = start
    size = INDEX_ENTRY.size
    while pos + INDEX_ENTRY_SIZE <= len(data):
        body = data[pos : pos + size]
        (crc,) = _U32.unpack_from(data, pos + size)
        if _crc32(body) != crc:
            break
        first, count, first_ts, last_ts, position, length, _ = INDEX_ENTRY.unpack(body)
        if count == 0:
            break
        entries.append(ChunkInfo(first, count, first_ts, last_ts, position, length))
        pos += INDEX_ENTRY_SIZE
    return entries, pos
