"""Response bodies kept in pieces that the next snapshot reuses while their items are unchanged.

Layer: ``amqplite/http``.  Pure (zlib only); :mod:`amqplite.http.snapshot` runs
:func:`gzip` in a worker thread.

Why: a snapshot of 10,000 queues is an 8.5 MB listing and a 7.8 MB ``/metrics`` text, and
on an idle broker nearly all of it is the same bytes as the snapshot before.  Joining,
checksumming (the ETag) and gzipping all of it again every few seconds cost the broker
~25 ms of its event loop and ~25 ms of a worker thread per snapshot.  So a body is a list
of :class:`Piece`: each made from a run of items (a few hundred queues' JSON fragments, or
one metric family's lines for a thousand queues) and kept with them; the next snapshot
compares the run's items with the ones the piece was made from (by identity first: an
unchanged queue's fragment is the very same object) and reuses the piece, its checksum
and its compressed form when they are the same.  Only the pieces that hold a changed
queue are made again.

Each piece is deflated on its own and ended with a sync flush (a byte-aligned end
without the final-block bit), so that the compressed pieces of a body, one after the
other, are a single valid deflate stream; :func:`gzip` adds the gzip header, the final
empty block and the trailer (CRC-32 and length of the whole body).  A piece is a few
hundred kilobytes, so compressing pieces apart costs nothing measurable in size.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable, Hashable, Sequence

import attrs

#: Level 1: listings are repetitive (about 100:1 even at level 1), and this runs per
#: snapshot; higher levels save at most 7 % of ``/metrics`` (10,000 distinct label sets).
LEVEL = 1
_GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"  # no name, no mtime, unknown OS
_FINAL_BLOCK = b"\x03\x00"  # an empty fixed-Huffman block with the final-block bit


@attrs.define(eq=False, slots=True)
class Piece:
    """Bytes of a body, their CRC-32, the items they were made from (compared to decide
    whether the next snapshot can reuse them) and, once made, their deflate."""

    data: bytes
    crc: int
    items: Sequence[object] = ()
    deflated: bytes | None = None


def piece(data: bytes, items: Sequence[object] = ()) -> Piece:
    return Piece(data, zlib.crc32(data), items)


class Pieces:
    """The pieces of the bodies of the current snapshot, by key, and those of the
    snapshot before (where the current one finds what it can reuse)."""

    __slots__ = ("_current", "_previous")

    def __init__(self) -> None:
        self._current: dict[Hashable, Piece] = {}
        self._previous: dict[Hashable, Piece] = {}

    def begin(self) -> None:
        """A new snapshot: what the last one made becomes what this one may reuse."""
        self._previous = self._current
        self._current = {}

    def get(
        self, key: Hashable, items: Sequence[object], make: Callable[[Sequence[object]], bytes]
    ) -> Piece:
        """The piece ``key`` made of ``items``: the last snapshot's when it was made of the
        same items, else ``make(items)``."""
        found = self._current.get(key) or self._previous.get(key)
        # List equality compares identity first: unchanged fragments cost a pointer check.
        if found is None or found.items != items:
            found = piece(make(items), items)
        self._current[key] = found
        return found


def entity_tag(pieces: Sequence[Piece]) -> str:
    """A strong ETag for the body made of ``pieces``: a CRC-32 over the pieces' own
    checksums and the length, so the same bytes in the same pieces (an unchanged listing
    in the next snapshot) get the same tag, with no pass over the bytes themselves."""
    crcs = struct.pack(f"<{len(pieces)}I", *(p.crc for p in pieces))
    return f'"{zlib.crc32(crcs):08x}{sum(len(p.data) for p in pieces):x}"'


def gzip(pieces: Sequence[Piece]) -> bytes:
    """The gzip (one member) of the body made of ``pieces``, deflating only the pieces
    not deflated before.  zlib releases the GIL while it works, so this is meant for a
    worker thread."""
    crc = 0
    length = 0
    out = [_GZIP_HEADER]
    for p in pieces:
        if p.deflated is None:
            packer = zlib.compressobj(LEVEL, zlib.DEFLATED, -15)
            p.deflated = packer.compress(p.data) + packer.flush(zlib.Z_SYNC_FLUSH)
        out.append(p.deflated)
        crc = zlib.crc32(p.data, crc)
        length += len(p.data)
    out.append(_FINAL_BLOCK)
    out.append(struct.pack("<II", crc, length & 0xFFFFFFFF))
    return b"".join(out)
