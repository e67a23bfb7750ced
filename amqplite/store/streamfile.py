"""FileStreamLog: the stream-log contract on segment files with an index file per segment.

Layer: ``amqplite/store`` (file I/O only).

Directory of one stream (``<data_dir>/streams/<vhost>/<queue>/``, names percent-encoded)::

    00000000000000000000.seg   chunks, named by the segment's first offset
    00000000000000000000.idx   one entry per chunk of that segment
    tracking                   tracked offsets (key -> next offset), rewritten atomically

Writes: a chunk is written through (``pwrite``) to the segment, then its index entry to the
index.  The segment is handed to the store's next sync (a confirm waits for that fsync); the
index is not fsynced per chunk but once its segment is sealed, because it can be rebuilt
from the segment (below): one fsync per group commit instead of two.  A failed write
truncates both files back to their last good size and raises
:class:`~amqplite.store.StoreWriteError`, so nothing half-written is ever counted.

Startup never scans segments: a sealed segment's index is read as is when its last entry
ends where the segment does, and otherwise (the newest segment, or a crash before the sync
after a seal) the segment is verified -- its index entries must lie inside the file and the
last indexed chunk must pass its CRC (else the entry is dropped and the previous one
checked), then chunks written after the last index entry are re-indexed, and whatever
follows the last whole chunk (a torn, zero-filled or bit-flipped tail) is truncated away.
So restart costs one index read per segment plus one chunk check, whatever the stream's
length.
"""

from __future__ import annotations

import logging
import os
import struct
import urllib.parse
import zlib

from amqplite.store import StoreWriteError
from amqplite.store.files import Opener, StoreFile, fsync_directory
from amqplite.store.records import FILE_HEADER_SIZE, check_file_header, file_header
from amqplite.store.streamchunks import (
    INDEX_ENTRY_SIZE,
    INDEX_MAGIC,
    SEGMENT_MAGIC,
    ChunkInfo,
    chunk_at,
    decode_index,
    encode_index_entry,
)
from amqplite.store.streamlog import DEFAULT_SEGMENT_BYTES, Segment, SegmentedLog, SyncSink

log = logging.getLogger(__name__)

TRACKING_MAGIC = b"AMQLSTK\n"
_TRACK = struct.Struct("<HQ")
_U32 = struct.Struct("<I")


def stream_dir(data_dir: str, vhost: str, queue: str) -> str:
    """Where the stream ``queue`` of ``vhost`` keeps its files."""
    quote = urllib.parse.quote
    return os.path.join(data_dir, "streams", quote(vhost, safe=""), quote(queue, safe=""))


class FileStreamLog(SegmentedLog):
    """The stream-log contract on files (see the module docstring)."""

    def __init__(
        self,
        directory: str,
        *,
        max_segment_bytes: int = DEFAULT_SEGMENT_BYTES,
        segment_max_age: float | None = None,
        sink: SyncSink | None = None,
        opener: Opener = StoreFile,
    ) -> None:
        super().__init__(max_segment_bytes, segment_max_age)
        self.directory = directory
        self._sink = sink
        self._opener = opener
        #: Damage found at open: chunks dropped from the newest segment and bytes truncated.
        self.truncated_bytes = 0
        os.makedirs(directory, exist_ok=True)
        self._open_existing()

    # -- opening ------------------------------------------------------------------------

    def _paths(self, first_offset: int) -> tuple[str, str]:
        base = os.path.join(self.directory, f"{first_offset:020d}")
        return base + ".seg", base + ".idx"

    def _open_existing(self) -> None:
        names = sorted(n for n in os.listdir(self.directory) if n.endswith(".seg"))
        for i, name in enumerate(names):
            first = int(name[:-4])
            segment = self._open_segment(first, newest=i == len(names) - 1)
            if segment is not None:
                self.segments.append(segment)
        if self.segments:
            last = self.segments[-1]
            self._next_offset = self._written_next = last.next_offset
            self._first_kept = self.segments[0].first_offset
            for segment in reversed(self.segments):
                if not segment.empty:
                    self._last_ts_ms = segment.last_ts[-1]
                    break
        self._read_tracking()

    def _open_segment(self, first: int, *, newest: bool) -> Segment | None:
        seg_path, idx_path = self._paths(first)
        seg = self._opener(seg_path, create=False)
        if not os.path.exists(idx_path):
            idx = self._opener(idx_path, create=True)
            idx.write(file_header(INDEX_MAGIC, 0))
        else:
            idx = self._opener(idx_path, create=False)
        head = seg.read(FILE_HEADER_SIZE, 0)
        if not check_file_header(head, SEGMENT_MAGIC, 0):
            log.error("stream segment %s has no valid header; ignoring it", seg_path)
            seg.close()
            idx.close()
            return None
        entries, end = decode_index(idx.read_all(), FILE_HEADER_SIZE)
        segment = Segment(first, handle=(seg, idx), sealed=not newest)
        # The newest segment's index may lag its chunks or hold entries for chunks that
        # never reached the disk; so may a sealed one's, after a crash before the sync
        # that follows the seal (indexes are not fsynced per chunk): check where it ends.
        if newest or not entries or entries[-1].position + entries[-1].length != seg.size:
            entries = self._verify_tail(seg, entries)
            idx.truncate(FILE_HEADER_SIZE)
            idx.write(b"".join(encode_index_entry(e) for e in entries))
        elif end != idx.size:
            idx.truncate(end)
        for entry in entries:
            segment.add(entry)
        segment.size = seg.size
        return segment

    def _verify_tail(self, seg: StoreFile, entries: list[ChunkInfo]) -> list[ChunkInfo]:
        """Drop index entries whose chunk is not whole, re-index chunks past the index,
        and truncate the segment after its last whole chunk."""
        while entries:
            last = entries[-1]
            data = seg.read(last.length, last.position)
            if last.position + last.length <= seg.size and chunk_at(data, 0) is not None:
                break
            entries.pop()
        pos = entries[-1].position + entries[-1].length if entries else FILE_HEADER_SIZE
        rest = seg.read(seg.size - pos, pos)
        at = 0
        while True:
            info = chunk_at(rest, at)
            expected = entries[-1].first_offset + entries[-1].count if entries else None
            if info is None or (expected is not None and info.first_offset != expected):
                break
            entries.append(
                ChunkInfo(
                    info.first_offset,
                    info.count,
                    info.first_ts_ms,
                    info.last_ts_ms,
                    pos + at,
                    info.length,
                )
            )
            at += info.length
        good_end = pos + at
        if good_end < seg.size:
            self.truncated_bytes += seg.size - good_end
            log.warning(
                "stream segment %s: truncated %d damaged byte(s) after the last whole chunk",
                seg.path,
                seg.size - good_end,
            )
            seg.truncate(good_end)
        return entries

    # -- storage ------------------------------------------------------------------------

    def _new_segment(self, first_offset: int) -> Segment:
        seg_path, idx_path = self._paths(first_offset)
        seg = idx = None
        try:
            seg = self._opener(seg_path, create=True)
            seg.write(file_header(SEGMENT_MAGIC, 0))
            idx = self._opener(idx_path, create=True)
            idx.write(file_header(INDEX_MAGIC, 0))
        except OSError as exc:
            for file, path in ((seg, seg_path), (idx, idx_path)):
                if file is not None:
                    file.close()
                    _unlink_quietly(path)
            raise StoreWriteError(f"cannot start stream segment {seg_path}: {exc}") from exc
        if self._sink is not None:
            self._sink.stream_wrote(seg, seg.size)
            self._sink.stream_wrote(idx, idx.size)
            self._sink.stream_dir_changed(self.directory)
        segment = Segment(first_offset, handle=(seg, idx))
        segment.size = seg.size
        return segment

    def _write_chunk(self, segment: Segment, data: bytes | bytearray, info: ChunkInfo) -> ChunkInfo:
        seg, idx = segment.handle
        seg_size, idx_size = seg.size, idx.size
        info = ChunkInfo(
            info.first_offset, info.count, info.first_ts_ms, info.last_ts_ms, seg_size, len(data)
        )
        try:
            seg.write(data)
            idx.write(encode_index_entry(info))
        except OSError as exc:
            _truncate_quietly(seg, seg_size)
            _truncate_quietly(idx, idx_size)
            raise StoreWriteError(f"stream write failed: {exc}") from exc
        if self._sink is not None:
            # Only the segment is fsynced per group commit: the index is rebuilt from the
            # segment wherever it ends short of it (``_open_segment``), and is fsynced once
            # its segment is sealed (``_seal``).  One fsync per commit instead of two.
            self._sink.stream_wrote(seg, len(data) + INDEX_ENTRY_SIZE)
        segment.size = seg_size  # SegmentedLog.append adds the chunk's length
        return info

    def _seal(self, segment: Segment) -> None:
        super()._seal(segment)
        if self._sink is not None:
            self._sink.stream_wrote(segment.handle[1], 0)  # its index, with the next sync

    def _read_chunk(self, segment: Segment, index: int) -> bytes:
        seg, _idx = segment.handle
        data: bytes = seg.read(segment.lengths[index], segment.positions[index])
        return data

    def _drop_segment(self, segment: Segment) -> None:
        seg, idx = segment.handle
        for file in (seg, idx):
            if self._sink is not None:
                self._sink.stream_close(file)  # after any sync in flight is done with it
            else:
                file.close()
        for path in self._paths(segment.first_offset):
            _unlink_quietly(path)
        if self._sink is not None:
            self._sink.stream_dir_changed(self.directory)

    # -- tracking -----------------------------------------------------------------------

    def _tracking_path(self) -> str:
        return os.path.join(self.directory, "tracking")

    def _read_tracking(self) -> None:
        try:
            with open(self._tracking_path(), "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return
        if len(data) < FILE_HEADER_SIZE + 4 or not check_file_header(data, TRACKING_MAGIC, 0):
            log.error("stream tracking file in %s is damaged; ignoring it", self.directory)
            return
        body = data[FILE_HEADER_SIZE:-4]
        if zlib.crc32(body) != _U32.unpack_from(data, len(data) - 4)[0]:
            log.error("stream tracking file in %s fails its checksum; ignoring it", self.directory)
            return
        pos = 0
        while pos < len(body):
            n, offset = _TRACK.unpack_from(body, pos)
            pos += _TRACK.size
            self._tracking[body[pos : pos + n].decode("utf-8", "replace")] = offset
            pos += n

    def tracking_image(self) -> bytes:
        """The tracking file's bytes for the current tracked offsets."""
        parts = []
        for key, offset in sorted(self._tracking.items()):
            raw = key.encode()
            parts.append(_TRACK.pack(len(raw), offset) + raw)
        body = b"".join(parts)
        return file_header(TRACKING_MAGIC, 0) + body + _U32.pack(zlib.crc32(body))

    def write_tracking(self, image: bytes) -> None:
        """Durably replace the tracking file (temp file, fsync, rename, fsync directory)."""
        tmp = self._tracking_path() + ".tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, image)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self._tracking_path())
        fsync_directory(self.directory)

    def set_tracking(self, key: str, offset: int) -> None:
        super().set_tracking(key, offset)
        if self._sink is not None:
            self._sink.stream_tracking_changed(self)

    # -- lifecycle ----------------------------------------------------------------------

    def close(self) -> None:
        for segment in self.segments:
            seg, idx = segment.handle
            seg.close()
            idx.close()

    def delete(self) -> None:
        # The (now empty) directory stays: a sync in flight may still fsync it.
        super().delete()
        _unlink_quietly(self._tracking_path())


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _truncate_quietly(file: StoreFile, size: int) -> None:
    try:
        file.truncate(size)
    except OSError:
        pass
