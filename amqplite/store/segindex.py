"""Segment summaries: what recovery needs of a sealed segment's records, in one small file.

Layer: ``amqplite/store``.  A builder fed at append time and pure functions over bytes;
the file store does the I/O.

Why: recovering a million-message store spent about 2 s of Python walking every record
(header, two CRCs, the queue list and the head).  A segment no longer being appended to
never changes, so what its records say can be written down once, when it is sealed (rolled,
or at a clean close): for each record its length, enqueue time and a *head id*
naming its (queue, exchange, routing key, properties) in a small table.  Recovery then reads
three arrays instead of the records (offsets are the running sum of the lengths, a body's
size is its record's length less its head's).

Trust: the summary is one ordinary checksummed record in a file with its own magic and
version, and it names the length and the CRC32 of the segment bytes it describes.  Recovery
uses it only when the segment still has exactly that length and CRC (one ``zlib.crc32`` over
the file, a few ms for 8 MiB, at sealing and at recovery), so a torn tail, a bit flip or a truncated segment falls back
to the record scan and its damage rules exactly as if there were no summary; so does a
missing, damaged or other-version summary.  It is never fsync'd: a summary lost or torn by a
power cut only costs that scan.

File ``N.idx``: a file header (``AMQLIDX\\n``, :data:`INDEX_VERSION`, N) and one record
(type ``INDEX``) whose payload is::

    segment length u64 | segment crc32 u32 | heads u32 | records u32
    heads x (queue code length u16, queue code, head length u32, head)
    record lengths u64 x records | head ids u32 x records | enqueue times f64 x records

Head id 0 marks a record the summary does not describe (several queues, no enqueue time,
properties with a headers table -- never shared, being mutable -- or a compaction copy):
recovery decodes that one from the segment as before.  Head ``i`` is ``heads[i - 1]``: the
encoded queue key and the bytes between the enqueue time and the body (exchange, routing
key, properties, wire properties; see :mod:`amqplite.store.codec`).
"""

from __future__ import annotations

import struct
import sys
import zlib
from array import array
from itertools import accumulate
from typing import Any

import attrs

from amqplite.store.records import (
    FILE_HEADER,
    FILE_HEADER_SIZE,
    INDEX,
    OFFSET_BITS,
    RECORD_HEADER_SIZE,
    encode_record,
    record_at,
)

INDEX_MAGIC = b"AMQLIDX\n"
#: Bumped whenever the payload layout changes; a summary of another version is not used.
INDEX_VERSION = 1

_HEAD = struct.Struct("<QIII")
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_SWAP = sys.byteorder != "little"  # arrays are native-endian, the file is little-endian


class IndexBuilder:
    """The summary of the segment being appended to: the file store appends to its columns
    as it writes each record (inline, it is on the publish path) and seals it with
    :meth:`encode` once the segment is complete."""

    __slots__ = ("head_ids", "heads", "last", "lengths", "times")

    def __init__(self) -> None:
        #: (queue code, head bytes) -> head id (from 1)
        self.heads: dict[tuple[bytes, bytes], int] = {}
        #: queue code -> (head bytes, head id) of the last record to that queue
        self.last: dict[bytes, tuple[bytes, int]] = {}
        #: per record, in file order: whole record bytes, head id (0: decode it), enqueue time
        self.lengths = array("Q")
        self.head_ids = array("I")
        self.times = array("d")

    def new_head(self, code: bytes, head: bytes) -> int:
        """The id of ``head`` for queue ``code`` (a new one if it is new), now the last."""
        key = (code, head)
        head_id = self.heads.get(key)
        if head_id is None:
            head_id = self.heads[key] = len(self.heads) + 1
        self.last[code] = (head, head_id)
        return head_id

    def encode(self, number: int, segment: bytes) -> bytes | None:
        """The ``N.idx`` image for segment ``number`` whose bytes are ``segment`` (None when
        the records noted do not add up to it: then no summary is better than a wrong one)."""
        if FILE_HEADER_SIZE + sum(self.lengths) != len(segment):
            return None
        n = len(self.lengths)
        out = bytearray(_HEAD.pack(len(segment), zlib.crc32(segment), len(self.heads), n))
        for code, head in self.heads:  # insertion order: ids 1, 2, ...
            out += _U16.pack(len(code))
            out += code
            out += _U32.pack(len(head))
            out += head
        for column in (self.lengths, self.head_ids, self.times):
            if _SWAP:
                column = array(column.typecode, column)
                column.byteswap()
            out += column.tobytes()
        header = FILE_HEADER.pack(INDEX_MAGIC, INDEX_VERSION, 0, number)
        ref = (number << OFFSET_BITS) | FILE_HEADER_SIZE
        return header + encode_record(INDEX, ref, out)


@attrs.define(eq=False)
class SegmentIndex:
    """A verified summary: ``heads[i - 1]`` is head id ``i``'s (queue code, head bytes);
    per record, in file order, its offset, its length, its head id and its enqueue time."""

    heads: list[tuple[bytes, bytes]]
    offsets: list[int]
    lengths: array[int]
    head_ids: array[int]
    times: array[float]


def read_index(image: bytes, number: int, segment: bytes) -> SegmentIndex | None:
    """The summary in ``image`` if it is whole, of this version, and describes ``segment``
    (segment ``number``'s bytes) as they are now; else None (then scan the segment)."""
    if len(image) < FILE_HEADER_SIZE + RECORD_HEADER_SIZE + _HEAD.size:
        return None
    magic, version, _reserved, got_number = FILE_HEADER.unpack_from(image, 0)
    if magic != INDEX_MAGIC or version != INDEX_VERSION or got_number != number:
        return None
    base = number << OFFSET_BITS
    if (
        record_at(image, FILE_HEADER_SIZE, base) != len(image)
        or image[FILE_HEADER_SIZE + 1] != INDEX
    ):
        return None
    pos = FILE_HEADER_SIZE + RECORD_HEADER_SIZE
    length, crc, n_heads, n_records = _HEAD.unpack_from(image, pos)
    if length != len(segment) or zlib.crc32(segment) != crc:
        return None
    pos += _HEAD.size
    try:
        heads = []
        for _ in range(n_heads):
            (n,) = _U16.unpack_from(image, pos)
            code = image[pos + 2 : pos + 2 + n]
            pos += 2 + n
            (n,) = _U32.unpack_from(image, pos)
            heads.append((code, image[pos + 4 : pos + 4 + n]))
            pos += 4 + n
    except struct.error:
        return None
    columns: list[array[Any]] = []
    for typecode in "QId":
        column = array(typecode)
        end = pos + column.itemsize * n_records
        if end > len(image):
            return None
        column.frombytes(image[pos:end])
        if _SWAP:
            column.byteswap()
        columns.append(column)
        pos = end
    if pos != len(image):
        return None
    lengths, head_ids, times = columns
    if n_records and max(head_ids) > n_heads:
        return None
    offsets = list(accumulate(lengths, initial=FILE_HEADER_SIZE))
    if offsets.pop() != len(segment):
        return None
    return SegmentIndex(heads, offsets, lengths, head_ids, times)
