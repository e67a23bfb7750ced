"""On-disk framing shared by every store file: a file header, then checksummed records.

Layer: ``amqplite/store``.  Pure functions over bytes; the file store does the I/O.

File header (16 bytes): an 8-byte magic naming the file kind, format version (u16),
reserved (u16), file number (u32).

Record (18-byte header + payload)::

    magic u8 (0xA7) | type u8 | payload length u32 | ref u64 | crc32 u32 | payload

``ref`` is the record's own address, ``(file_number << 40) | offset``, and the CRC covers
the first 14 header bytes plus the payload.  Because a record names where it was written,
a copy of a record that happens to sit inside another record's body (someone publishing a
segment file) can never be mistaken for a real one, which is what makes resynchronising
after a damaged region safe.

Recovery policy for damage (torn tail, zero-filled tail, bit flip): a record whose header
or checksum does not match starts a *damaged region*; the scanner looks for the next
position holding a valid record (magic byte, expected ref, length within the file, CRC)
and carries on from there.  Everything in between is discarded and counted.  So a bit flip
in the middle of a segment loses only the record it hit, and a torn tail loses only the
torn record; records fsync'd before the damage are always recovered.  The file store then
truncates any garbage after the last valid record so appends never follow garbage.
"""

from __future__ import annotations

import struct
import zlib

import attrs

RECORD_MAGIC = 0xA7
_RECORD_MAGIC_BYTE = bytes([RECORD_MAGIC])
RECORD_HEADER = struct.Struct("<BBIQI")
RECORD_HEADER_SIZE = RECORD_HEADER.size  # 18
_CRC_COVERED = 14  # magic, type, length, ref

FILE_HEADER = struct.Struct("<8sHHI")
FILE_HEADER_SIZE = FILE_HEADER.size  # 16
FORMAT_VERSION = 1

SEGMENT_MAGIC = b"AMQLSEG\n"
ACKS_MAGIC = b"AMQLACK\n"
TOPOLOGY_MAGIC = b"AMQLTOP\n"

OFFSET_BITS = 40
OFFSET_MASK = (1 << OFFSET_BITS) - 1

# Record types.  Segment files hold MESSAGE and MOVED; ack files REMOVE and DELIVERED;
# the topology journal PUT, DELETE, OPENED and CLEAN; segment summaries INDEX.
MESSAGE = 1
REMOVE = 2
DELIVERED = 3
PUT = 4
DELETE = 5
OPENED = 6
CLEAN = 7
MOVED = 8  # a message copied by compaction: original ref + delivery counts + MESSAGE payload
INDEX = 9  # the one record of a segment summary file (see amqplite.store.segindex)
RECORD_TYPES = frozenset({MESSAGE, REMOVE, DELIVERED, PUT, DELETE, OPENED, CLEAN, MOVED, INDEX})

_pack_header = RECORD_HEADER.pack
_pack_header_into = RECORD_HEADER.pack_into
_crc32 = zlib.crc32


def make_ref(file_number: int, offset: int) -> int:
    return (file_number << OFFSET_BITS) | offset


def file_header(magic: bytes, file_number: int) -> bytes:
    return FILE_HEADER.pack(magic, FORMAT_VERSION, 0, file_number)


def check_file_header(data: bytes, magic: bytes, file_number: int) -> bool:
    if len(data) < FILE_HEADER_SIZE:
        return False
    got_magic, version, _reserved, number = FILE_HEADER.unpack_from(data, 0)
    return bool(got_magic == magic and version == FORMAT_VERSION and number == file_number)


def encode_record(kind: int, ref: int, payload: bytes | bytearray) -> bytes:
    """Header plus payload, ready to write at the offset ``ref`` names."""
    head = _pack_header(RECORD_MAGIC, kind, len(payload), ref, 0)
    crc = _crc32(payload, _crc32(head[:_CRC_COVERED]))
    return b"".join((head[:_CRC_COVERED], crc.to_bytes(4, "little"), payload))


def seal_record(buffer: bytearray, kind: int, ref: int) -> bytearray:
    """Fill in the header of a record whose payload follows 18 reserved bytes in ``buffer``."""
    _pack_header_into(buffer, 0, RECORD_MAGIC, kind, len(buffer) - RECORD_HEADER_SIZE, ref, 0)
    view = memoryview(buffer)
    crc = _crc32(view[RECORD_HEADER_SIZE:], _crc32(view[:_CRC_COVERED]))
    view.release()
    buffer[_CRC_COVERED:RECORD_HEADER_SIZE] = crc.to_bytes(4, "little")
    return buffer


def record_at(data: bytes | memoryview, pos: int, base_ref: int) -> int:
    """End offset of the valid record at ``pos``, or -1 if there is none."""
    if pos + RECORD_HEADER_SIZE > len(data):
        return -1
    magic, kind, length, ref, crc = RECORD_HEADER.unpack_from(data, pos)
    end: int = pos + RECORD_HEADER_SIZE + length
    if (
        magic != RECORD_MAGIC
        or ref != base_ref + pos
        or end > len(data)
        or kind not in RECORD_TYPES
    ):
        return -1
    view = memoryview(data)
    if _crc32(view[pos + RECORD_HEADER_SIZE : end], _crc32(view[pos : pos + _CRC_COVERED])) != crc:
        return -1
    return end


@attrs.define(eq=False)
class ScanResult:
    """Valid records as ``(type, offset, payload_start, payload_end)`` plus damage counts."""

    records: list[tuple[int, int, int, int]]
    good_end: int
    damaged_regions: int = 0
    damaged_bytes: int = 0


def scan(data: bytes, file_number: int, start: int = FILE_HEADER_SIZE) -> ScanResult:
    """Every valid record of a file image, skipping (and counting) damaged regions."""
    base_ref = file_number << OFFSET_BITS
    result = ScanResult([], start)
    records = result.records
    append = records.append
    size = len(data)
    pos = start
    view = memoryview(data)
    unpack = RECORD_HEADER.unpack_from
    crc32 = _crc32
    types = RECORD_TYPES
    while pos < size:
        # record_at(), inlined: recovery reads a million records through this loop.
        if pos + RECORD_HEADER_SIZE <= size:
            magic, kind, length, ref, crc = unpack(data, pos)
            first = pos + RECORD_HEADER_SIZE
            end = first + length
            if (
                magic == RECORD_MAGIC
                and ref == base_ref + pos
                and end <= size
                and kind in types
                and crc32(view[first:end], crc32(view[pos : pos + _CRC_COVERED])) == crc
            ):
                append((kind, pos, first, end))
                pos = end
                result.good_end = end
                continue
        # Damaged: find the next position where a whole valid record starts.
        candidate = data.find(_RECORD_MAGIC_BYTE, pos + 1)
        while candidate >= 0 and record_at(data, candidate, base_ref) < 0:
            candidate = data.find(_RECORD_MAGIC_BYTE, candidate + 1)
        resume = size if candidate < 0 else candidate
        result.damaged_regions += 1
        result.damaged_bytes += resume - pos
        pos = resume
    return result
