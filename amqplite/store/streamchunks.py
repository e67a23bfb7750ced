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

from amqplite.message import Message
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


@attrs.frozen(slots=True)
class ChunkInfo:
    """What the index knows about one chunk."""

    first_offset: int
    count: int
    first_ts_ms: int
    last_ts_ms: int
    position: int
    length: int


def encode_chunk(
    first_offset: int, entries: Sequence[tuple[int, Message]]
) -> tuple[bytes, ChunkInfo]:
    """A chunk holding ``entries`` (``(timestamp_ms, message)``), and its index info."""
    parts: list[bytes] = []
    for ts_ms, message in entries:
        encoded = encode_message(message, ())
        view = memoryview(encoded)[RESERVED:]
        parts.append(_MESSAGE_HEAD.pack(ts_ms, len(view)))
        parts.append(bytes(view))
    payload = b"".join(parts)
    first_ts, last_ts = entries[0][0], entries[-1][0]
    head = CHUNK_HEADER.pack(
        CHUNK_MAGIC, len(entries), first_offset, first_ts, last_ts, len(payload), 0, 0
    )
    crc = _crc32(payload, _crc32(head[:_CHUNK_CRC_COVERED]))
    data = b"".join((head[:_CHUNK_CRC_COVERED], _U32.pack(crc), head[37:], payload))
    return data, ChunkInfo(first_offset, len(entries), first_ts, last_ts, 0, len(data))


def chunk_at(data: bytes | memoryview, pos: int) -> ChunkInfo | None:
    """The valid chunk starting at ``pos`` of a segment image, or None (torn, corrupt)."""
    if pos + CHUNK_HEADER_SIZE > len(data):
        return None
    magic, count, first, first_ts, last_ts, length, crc, _ = CHUNK_HEADER.unpack_from(data, pos)
    end = pos + CHUNK_HEADER_SIZE + length
    if magic != CHUNK_MAGIC or count == 0 or end > len(data):
        return None
    view = memoryview(data)
    if (
        _crc32(view[pos + CHUNK_HEADER_SIZE : end], _crc32(view[pos : pos + _CHUNK_CRC_COVERED]))
        != crc
    ):
        return None
    return ChunkInfo(first, count, first_ts, last_ts, pos, end - pos)


def chunk_messages(data: bytes) -> Iterator[tuple[int, Message]]:
    """``(timestamp_ms, message)`` of every message in a whole chunk (checked by the caller)."""
    pos = CHUNK_HEADER_SIZE
    end = len(data)
    view = memoryview(data)
    while pos < end:
        ts_ms, length = _MESSAGE_HEAD.unpack_from(data, pos)
        pos += 12
        yield ts_ms, decode_message(view[pos : pos + length], 2)
        pos += length


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
