"""FileStore: the store contract on append-only segment files in a data directory.

Layer: ``amqplite/store`` (file I/O only).

Data directory layout::

    LOCK                    flock'd while a store has the directory open (holds the pid)
    topology.log            journal of topology PUT/DELETE records, plus OPENED/CLEAN marks
    messages/N.seg          message records, append-only, rolled at ``segment_size``
    messages/N.ack          REMOVE and DELIVERED records for the messages of N.seg
    messages/N.idx          summary of N.seg once sealed, so recovery need not scan it
                            (optional; see :mod:`amqplite.store.segindex`)

Every file starts with a magic number and format version, every record carries its length,
its own address and a CRC32 (see :mod:`amqplite.store.records`).

Why acks live next to their segment: a removal must outlive neither less nor more than the
message it removes.  Keeping it in ``N.ack`` means that deleting a dead segment deletes its
acks with it, so no record anywhere refers to a segment that is gone, and recovery reads
only live segments and their ack files -- startup cost grows with live data, not history.

Space: each segment keeps a count of live (queue, message) memberships; when it reaches
zero and the segment is no longer the one being appended to, both files are deleted.  A
steady publish -> ack flow therefore keeps at most a few segments on disk.  So that a few
long-lived messages cannot pin many segments, a sealed segment in which at most a quarter
of the memberships it held are alive is compacted at the next ``sync()``: its live
messages are copied (MOVED records naming their original ref, so queue order and delivery
counts survive) into the active segment, and the old files are deleted once the copies are
durable.  The refs the broker holds stay valid: the store forwards them to the copies
(a small dict entry per moved message, dropped when the last queue removes it).  Disk use
is thus bounded by about four records per live message plus the active segment, however
long the history.  The threshold counts memberships, not bytes.

Memory: the store holds nothing per message (one small object per segment), except the
forwarding entry of a message moved by compaction (~200 B) until it is removed.  A broker
that keeps bodies on disk pays only for the ref (a Python ``int``, 32 bytes, shared by all
queues holding the message) plus its own queue entry.

Writes: message records are written through (``os.pwrite``) at ``append`` time, so a full
disk is reported to the publisher that caused it.  Removal and delivery marks are batched
in memory per segment and written by ``flush()``/``sync()`` (or when many pile up), one
record per (segment, queue, kind); if writing them fails they stay pending and are retried
at the next flush (only their durability is late: a crash then redelivers, never loses).  ``sync()`` fsyncs each file written since the
last sync, and the directory when files were created or deleted.
"""

from __future__ import annotations

import logging
import os
import struct
import time
from array import array
from collections.abc import Iterable, Sequence
from typing import Any

import attrs

from amqplite.message import Message
from amqplite.store import (
    MessageRef,
    QueueKey,
    RecordId,
    RecoveredMessage,
    RecoveredState,
    StoreCorruptError,
    StoreError,
    StoreSyncError,
    StoreWriteError,
    SyncPoint,
)
from amqplite.store.codec import (
    ONE_QUEUE_TIMED,
    RESERVED,
    CodecError,
    decode_head,
    decode_message,
    decode_queue,
    decode_queue_list,
    decode_queues,
    decode_stored_head,
    decode_value,
    encode_message,
    encode_queue,
    encode_queue_list,
    encode_value,
)
from amqplite.store.files import DirectoryLock, Opener, StoreFile, free_bytes, fsync_directory
from amqplite.store.positions import SyncPositions
from amqplite.store.records import (
    ACKS_MAGIC,
    CLEAN,
    DELETE,
    DELIVERED,
    FILE_HEADER_SIZE,
    MESSAGE,
    MOVED,
    OFFSET_BITS,
    OFFSET_MASK,
    OPENED,
    PUT,
    RECORD_HEADER_SIZE,
    REMOVE,
    SEGMENT_MAGIC,
    TOPOLOGY_MAGIC,
    ScanResult,
    check_file_header,
    encode_record,
    file_header,
    make_ref,
    record_at,
    scan,
    seal_record,
)
from amqplite.store.segindex import IndexBuilder, SegmentIndex, read_index
from amqplite.store.streamfile import FileStreamLog, stream_dir

logger = logging.getLogger(__name__)

DEFAULT_SEGMENT_SIZE = 8 * 1024 * 1024
#: Pending removal/delivery marks beyond which they are written without waiting for sync.
_MAX_PENDING_MARKS = 65536
#: The topology journal is rewritten when larger than this and 4x its live content.
_TOPOLOGY_COMPACT_MIN = 1024 * 1024

_READ_AHEAD = 8192
#: A sealed segment is compacted once at most 1/4 of the memberships it held are alive.
_COMPACT_LIVE_FRACTION = 4

_DECODE_ERRORS = (
    CodecError,
    ValueError,
    IndexError,
    UnicodeDecodeError,
    TypeError,
    struct.error,
)


@attrs.define(eq=False)
class _Segment:
    number: int
    file: StoreFile
    acks: StoreFile | None = None
    #: memberships (queue, message) still alive in this segment
    live: int = 0
    #: memberships it ever held (since recovery): compaction compares live against it
    count: int = 0
    #: (record type, encoded queue) -> refs, written to the ack file at the next sync
    pending: dict[tuple[int, bytes], array[int]] = attrs.Factory(dict)
    #: the summary being built while this is the active segment (written when sealed)
    index: IndexBuilder | None = None
    #: recovered from its summary rather than by a scan (for the recovery log)
    summarised: bool = False


class FsyncHistogram:
    """Latency of whole ``SyncPoint.fsync`` calls, in Prometheus histogram shape."""

    __slots__ = ("count", "counts", "total")

    BOUNDS = (0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0)

    def __init__(self) -> None:
        self.counts = [0] * len(self.BOUNDS)
        self.count = 0
        self.total = 0.0

    def observe(self, seconds: float) -> None:
        self.count += 1
        self.total += seconds
        for i, bound in enumerate(self.BOUNDS):
            if seconds <= bound:
                self.counts[i] += 1
                break

    def snapshot(self) -> tuple[tuple[float, ...], list[int], int, float]:
        """(upper bounds, cumulative counts per bound, count, sum of seconds)."""
        cumulative, running = [], 0
        for n in self.counts:
            running += n
            cumulative.append(running)
        return self.BOUNDS, cumulative, self.count, self.total


@attrs.define(eq=False)
class _FileSyncPoint:
    """Files to fsync; safe to run in a worker thread (files are closed only afterwards)."""

    position: int
    files: list[StoreFile]
    directories: list[str]
    #: compacted segments whose copies this sync makes durable; deleted on completion
    retire: list[_Segment] = attrs.Factory(list)
    histogram: FsyncHistogram | None = None
    #: stream tracking files to replace durably: (log, image)
    tracking: list[tuple[FileStreamLog, bytes]] = attrs.Factory(list)

    def fsync(self) -> None:
        if not self.files and not self.directories and not self.tracking:
            return
        start = time.perf_counter()
        try:
            for file in self.files:
                file.fsync()
            for directory in self.directories:
                fsync_directory(directory)
            for stream_log, image in self.tracking:
                stream_log.write_tracking(image)
        except OSError as exc:
            raise StoreSyncError(f"fsync failed, stored data cannot be vouched for: {exc}") from exc
        if self.histogram is not None:
            self.histogram.observe(time.perf_counter() - start)


class FileStore(SyncPositions):
    """The store contract on segment files (see the module docstring and :mod:`amqplite.store`)."""

    __slots__ = (
        "_active",
        "_bytes_written",
        "_closed",
        "_compact_candidates",
        "_dirs_dirty",
        "_dirty",
        "_forward",
        "_fsyncs",
        "_highest_segment",
        "_lock",
        "_marked",
        "_opener",
        "_pending_marks",
        "_queue_codes",
        "_records",
        "_records_bytes",
        "_recovered",
        "_reverse",
        "_segments",
        "_stream_logs",
        "_streams_pending",
        "_to_close",
        "_topology",
        "_tracking_dirty",
        "data_dir",
        "messages_dir",
        "segment_size",
    )

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        *,
        segment_size: int = DEFAULT_SEGMENT_SIZE,
        opener: Opener = StoreFile,
    ) -> None:
        """Use :meth:`open`; the constructor only records settings."""
        self.data_dir = os.fspath(data_dir)
        self.messages_dir = os.path.join(self.data_dir, "messages")
        self.segment_size = segment_size
        self._opener = opener
        self._lock: DirectoryLock | None = None
        self._segments: dict[int, _Segment] = {}
        self._active: _Segment | None = None
        self._topology: StoreFile | None = None
        self._records: dict[RecordId, bytes] = {}
        self._records_bytes = 0
        self._queue_codes: dict[QueueKey, bytes] = {}
        self._pending_marks = 0
        #: segments with pending marks, so sync does not walk every segment
        self._marked: set[_Segment] = set()
        self._highest_segment = 0
        #: sealed segments mostly dead, to be compacted at the next sync
        self._compact_candidates: set[_Segment] = set()
        #: refs the broker holds for messages compaction moved: ref -> [current ref, memberships]
        self._forward: dict[int, list[int]] = {}
        self._reverse: dict[int, int] = {}  # current ref -> the ref the broker holds
        self._fsyncs = FsyncHistogram()
        self._dirty: set[StoreFile] = set()
        self._dirs_dirty: set[str] = set()
        self._to_close: list[StoreFile] = []
        self._stream_logs: dict[QueueKey, FileStreamLog] = {}
        self._tracking_dirty: set[FileStreamLog] = set()
        self._streams_pending: set[FileStreamLog] = set()
        self._bytes_written = 0
        SyncPositions.__init__(self)
        self._recovered = False
        self._closed = False

    @classmethod
    def open(
        cls,
        data_dir: str | os.PathLike[str],
        *,
        segment_size: int = DEFAULT_SEGMENT_SIZE,
        opener: Opener = StoreFile,
    ) -> FileStore:
        """Lock ``data_dir`` (created if missing).  Call :meth:`recover` next."""
        store = cls(data_dir, segment_size=segment_size, opener=opener)
        os.makedirs(store.messages_dir, exist_ok=True)
        store._lock = DirectoryLock(store.data_dir)
        return store

    # -- recovery -------------------------------------------------------------
    def recover(self, *, load_bodies: bool = True) -> RecoveredState:
        """Read the topology journal and every live segment; start a fresh active segment."""
        if self._recovered:
            raise StoreError("recover() may be called once per open store")
        if self._lock is None or self._closed:
            raise StoreError("the store is not open")
        damage = [0, 0]
        records, clean = self._recover_topology(damage)
        queues = self._recover_segments(load_bodies, clean, damage)
        self._start_segment(self._highest_segment + 1)
        fsync_directory(self.messages_dir)
        self._recovered = True
        self._durable_position = self._position
        if damage[0]:
            logger.warning(
                "store recovery discarded %d damaged region(s), %d byte(s) in total",
                damage[0],
                damage[1],
            )
        logger.info(
            "store recovered %d topology record(s), %d message(s) in %d queue(s) from %d "
            "segment(s), %d of them from their summaries%s",
            len(records),
            sum(len(entries) for entries in queues.values()),
            len(queues),
            len(self._segments) - 1,
            sum(segment.summarised for segment in self._segments.values()),
            "" if clean else " after an unclean shutdown",
        )
        return RecoveredState(records, queues, clean, damage[0], damage[1])

    def _recover_topology(self, damage: list[int]) -> tuple[dict[RecordId, Any], bool]:
        path = os.path.join(self.data_dir, "topology.log")
        tmp = path + ".tmp"
        if os.path.exists(tmp):
            os.unlink(tmp)  # a compaction that did not reach its rename
        last_kind = 0
        fresh = not os.path.exists(path)  # a new directory has nothing to recover from
        if not fresh:
            file = self._opener(path, create=False)
            data = file.read_all()
            if check_file_header(data, TOPOLOGY_MAGIC, 0):
                result = scan(data, 0)
                self._note_damage(path, result.damaged_regions, result.damaged_bytes, damage)
                for kind, _offset, start, end in result.records:
                    try:
                        self._replay_topology(kind, data, start, end)
                    except _DECODE_ERRORS:
                        self._note_damage(path, 1, end - start, damage)
                        continue
                    last_kind = kind
                if result.good_end < len(data):
                    file.truncate(result.good_end)
            else:
                self._note_damage(path, 1, len(data), damage)
                file.truncate(0)
                file.write(file_header(TOPOLOGY_MAGIC, 0))
        else:
            file = self._opener(path, create=True)
            file.write(file_header(TOPOLOGY_MAGIC, 0))
            self._dirs_dirty.add(self.data_dir)
        self._topology = file
        # From now on the directory is in use: a crash before close() must read as unclean.
        self._write(file, OPENED, b"")
        file.fsync()
        fsync_directory(self.data_dir)
        self._dirs_dirty.discard(self.data_dir)
        records = {rid: decode_value(data, 0)[0] for rid, data in self._records.items()}
        return records, fresh or last_kind == CLEAN

    def _replay_topology(self, kind: int, data: bytes, start: int, end: int) -> None:
        if kind not in (PUT, DELETE):
            return
        view = memoryview(data)[start:end]
        rid, pos = _decode_record_id(view)
        old = self._records.pop(rid, None)
        if old is not None:
            self._records_bytes -= len(old)
        if kind == PUT:
            value = bytes(view[pos:])
            decode_value(value, 0)  # validate now rather than at use
            self._records[rid] = value
            self._records_bytes += len(value)

    def _recover_segments(
        self, load_bodies: bool, clean: bool, damage: list[int]
    ) -> dict[QueueKey, list[RecoveredMessage]]:
        numbers = []
        for name in os.listdir(self.messages_dir):
            stem, _, ext = name.partition(".")
            if stem.isdigit() and ext in ("seg", "ack", "idx"):
                numbers.append((int(stem), ext))
            elif name.endswith(".tmp"):
                os.unlink(os.path.join(self.messages_dir, name))
        segment_set = {n for n, ext in numbers if ext == "seg"}
        segment_numbers = sorted(segment_set)
        self._highest_segment = max(segment_numbers, default=0)
        for number, ext in numbers:
            if ext != "seg" and number not in segment_set:
                # The segment was deleted and the crash came before its other files went too.
                os.unlink(self._path(number, ext))
        loaded: list[_Segment] = []
        latest: dict[int, int] = {}  # original ref -> ref of its newest compaction copy
        originals: dict[int, int] = {}  # ref of a compaction copy -> its original ref
        ordered: dict[QueueKey, list[RecoveredMessage]] = {}
        for number in segment_numbers:
            segment = self._load_segment(
                number, load_bodies, not clean, damage, (latest, originals, ordered)
            )
            if segment is not None:
                loaded.append(segment)
        if latest:
            self._drop_superseded(ordered, latest, originals, loaded)
        for segment in loaded:
            segment.count = segment.live
            if segment.live == 0:
                segment.file.close()
                if segment.acks is not None:
                    segment.acks.close()
                self._unlink_segment_files(segment.number)
            else:
                self._segments[segment.number] = segment
        return ordered

    @staticmethod
    def _drop_superseded(
        ordered: dict[QueueKey, list[RecoveredMessage]],
        latest: dict[int, int],
        originals: dict[int, int],
        loaded: list[_Segment],
    ) -> None:
        """Keep only the newest copy of each compacted message (a crash can come before
        compaction retired the old one), at the queue position of its original.

        Only queues holding a copy or an original are walked: a queue without either is
        already in order, and copies whose every membership was removed since (the usual
        case once a backlog is consumed) are in no queue.  Walking every queue cost 1.7 s
        of a million-message recovery for 26k such dead copies."""
        segments = {segment.number: segment for segment in loaded}
        involved = latest.keys() | originals.keys()
        for queue, items in ordered.items():
            if involved.isdisjoint([entry.ref for entry in items]):
                continue
            kept: list[tuple[int, RecoveredMessage]] = []
            for entry in items:
                ref = entry.ref
                original = originals.get(ref, ref)
                if latest.get(original, ref) != ref:
                    segments[ref >> OFFSET_BITS].live -= 1
                    continue
                kept.append((original, entry))
            kept.sort(key=_first)
            ordered[queue] = [entry for _, entry in kept]

    def _load_segment(
        self,
        number: int,
        load_bodies: bool,
        unclean: bool,
        damage: list[int],
        into: tuple[dict[int, int], dict[int, int], dict[QueueKey, list[RecoveredMessage]]],
    ) -> _Segment | None:
        """Read a segment: its live messages are appended to their queues' lists in
        ``into`` (latest copy by original ref, original by copy ref, queue lists).  A
        segment with a summary that matches it is not scanned (see ``segindex``)."""
        path = self._path(number, "seg")
        file = self._opener(path, create=False)
        data = file.read_all()
        if not check_file_header(data, SEGMENT_MAGIC, number):
            # Only a segment created just before a crash can have a torn header; one with a
            # damaged header is left in place for inspection but not used.
            self._note_damage(path, 1, len(data), damage)
            file.close()
            if len(data) <= FILE_HEADER_SIZE:
                self._unlink_segment_files(number)
            return None
        summary = self._read_index(number, data)
        records: list[tuple[int, int, int, int]] = []
        if summary is None:
            result = scan(data, number)
            records = result.records
            self._note_damage(path, result.damaged_regions, result.damaged_bytes, damage)
            if result.good_end < len(data):
                file.truncate(result.good_end)
        removed, delivered, acks = self._recover_acks(number, damage)
        context = (load_bodies, unclean, (removed, delivered), into, path, damage)
        if summary is None:
            live = self._load_scanned(number, data, records, context)
        else:
            live = self._load_indexed(number, data, summary, context)
        segment = _Segment(number, file, acks)
        segment.live = live
        segment.summarised = summary is not None
        return segment

    def _read_index(
        self, number: int, data: bytes
    ) -> tuple[SegmentIndex, list[tuple[QueueKey, Any]]] | None:
        """Segment ``number``'s summary and its heads decoded (queue, properties), if it has
        one that describes ``data`` as it is; else None, and a summary that does not is
        deleted (the segment is then scanned)."""
        path = self._path(number, "idx")
        if not os.path.exists(path):
            return None
        file = self._opener(path, create=False)
        try:
            index = read_index(file.read_all(), number, data)
        finally:
            file.close()
        heads: list[tuple[QueueKey, Any]] = []
        try:
            for code, head in index.heads if index is not None else ():
                queue, stop = decode_queue(code, 0)
                properties, rest = decode_head(head, 0)
                if stop != len(code) or rest or properties.headers is not None:
                    raise CodecError("not a summary head")
                heads.append((queue, properties))
        except _DECODE_ERRORS:
            index = None
        if index is None:
            logger.info("store: segment %d's summary does not describe it; scanning it", number)
            os.unlink(path)
            return None
        return index, heads

    def _load_indexed(
        self,
        number: int,
        data: bytes,
        summary: tuple[SegmentIndex, list[tuple[QueueKey, Any]]],
        context: _LoadContext,
    ) -> int:
        """Queue the live messages of a segment its summary describes (see
        :meth:`_load_segment`); returns how many memberships are alive."""
        load_bodies, unclean, acks, into, path, damage = context
        removed, delivered = acks
        ordered = into[2]
        index, decoded = summary
        base = number << OFFSET_BITS
        # head id -> (queue, properties, the queue's list, record bytes before the body);
        # id 0 is "decode the record"
        table: list[Any] = [None]
        created = []
        for (queue, properties), (code, head) in zip(decoded, index.heads, strict=True):
            items = ordered.get(queue)
            if items is None:
                items = ordered[queue] = []
                created.append(queue)
            table.append((queue, properties, items, RESERVED + 10 + len(code) + len(head)))
        lazy = not load_bodies
        live = 0
        for offset, length, head_id, timestamp in zip(
            index.offsets, index.lengths, index.head_ids, index.times, strict=True
        ):
            ref = base | offset
            if head_id and lazy:
                queue, properties, items, before_body = table[head_id]
                if removed and (queue, ref) in removed:
                    continue
                count = delivered.get((queue, ref), 0) if delivered else 0
                items.append(
                    RecoveredMessage(
                        ref,
                        None,
                        count,
                        count > 0 or unclean,
                        timestamp,
                        length - before_body,
                        properties,
                    )
                )
                live += 1
                continue
            start = offset + RECORD_HEADER_SIZE
            end = offset + length
            try:
                live += self._load_record(
                    data[offset + 1], ref, data, start, end, load_bodies, unclean, acks, into
                )
            except _DECODE_ERRORS:
                self._note_damage(path, 1, end - start, damage)
        for queue in created:  # queues whose messages here were all removed
            if not ordered[queue]:
                del ordered[queue]
        return live

    def _load_scanned(
        self,
        number: int,
        data: bytes,
        records: list[tuple[int, int, int, int]],
        context: _LoadContext,
    ) -> int:
        """Queue the live messages of a scanned segment (see :meth:`_load_segment`);
        returns how many memberships are alive."""
        load_bodies, unclean, (removed, delivered), into, path, damage = context
        ordered = into[2]
        base = number << OFFSET_BITS
        u16 = _U16.unpack_from
        f64 = _F64.unpack_from
        #: encoded queue key -> (queue, head bytes, properties, the queue's list)
        heads: dict[bytes, tuple[QueueKey, bytes, Any, list[RecoveredMessage]]] = {}
        live = 0
        for kind, offset, start, end in records:
            ref = base | offset
            if kind == MESSAGE and not load_bodies and u16(data, start)[0] == ONE_QUEUE_TIMED:
                # The common record, inlined (see decode_stored_head for the layout): one
                # queue, an enqueue time, and the head (exchange, key, properties) the last
                # record for that queue in this segment had.
                vlen = u16(data, start + 2)[0]
                qend = start + 6 + vlen + u16(data, start + 4 + vlen)[0]
                code = data[start:qend]
                seen = heads.get(code)
                if seen is not None:
                    queue, head, properties, items = seen
                    hend = qend + 8 + len(head)
                    if hend <= end and data[qend + 8 : hend] == head:
                        if removed and (queue, ref) in removed:
                            continue
                        count = delivered.get((queue, ref), 0) if delivered else 0
                        items.append(
                            RecoveredMessage(
                                ref,
                                None,
                                count,
                                count > 0 or unclean,
                                f64(data, qend)[0],
                                end - hend,
                                properties,
                            )
                        )
                        live += 1
                        continue
                head_at = (code, qend + 8, ref)
            else:
                head_at = None
            try:
                live += self._load_record(
                    kind, ref, data, start, end, load_bodies, unclean, (removed, delivered), into
                )
            except _DECODE_ERRORS:
                self._note_damage(path, 1, end - start, damage)
                continue
            if head_at is not None:
                _remember_head(heads, head_at, data, end, ordered)
        return live

    @staticmethod
    def _load_record(
        kind: int,
        ref: int,
        data: bytes,
        start: int,
        end: int,
        load_bodies: bool,
        unclean: bool,
        acks: tuple[_Removed, _Delivered],
        into: tuple[dict[int, int], dict[int, int], dict[QueueKey, list[RecoveredMessage]]],
    ) -> int:
        """Queue one segment record's message (see :meth:`_load_segment`); returns how many
        queues got it.  Raises a decode error for a record that does not decode."""
        latest, originals, ordered = into
        removed, delivered = acks
        view = memoryview(data)[start:end]
        message: Message | None = None
        properties: Any = None
        size = -1
        counts: list[int] | None = None
        if kind == MESSAGE and not load_bodies:
            # The body stays on disk, the broker gets what it needs to queue the message.
            members, timestamp, properties, size = decode_stored_head(view)
        elif kind in (MESSAGE, MOVED):
            original, counts, payload = _split_record(kind, ref, view)
            members, content, timestamp = decode_queue_list(payload)
            if load_bodies:
                message = decode_message(payload, content)
            else:
                properties, size = decode_head(payload, content)
            if kind == MOVED:
                latest[original] = ref
                originals[ref] = original
        else:
            return 0
        live = 0
        for i, queue in enumerate(members):
            if removed and (queue, ref) in removed:
                continue
            count = delivered.get((queue, ref), 0) if delivered else 0
            if counts:
                count += counts[i]
            entry = RecoveredMessage(
                ref, message, count, count > 0 or unclean, timestamp, size, properties
            )
            items = ordered.get(queue)
            if items is None:
                items = ordered[queue] = []
            items.append(entry)
            live += 1
        return live

    def _recover_acks(
        self, number: int, damage: list[int]
    ) -> tuple[_Removed, _Delivered, StoreFile | None]:
        path = self._path(number, "ack")
        if not os.path.exists(path):
            return set(), {}, None
        file = self._opener(path, create=False)
        data = file.read_all()
        if not check_file_header(data, ACKS_MAGIC, number):
            self._note_damage(path, 1, len(data), damage)
            file.truncate(0)
            file.write(file_header(ACKS_MAGIC, number))
            return set(), {}, file
        removed, delivered, result, undecodable = _parse_acks(data, number)
        self._note_damage(path, result.damaged_regions + undecodable, result.damaged_bytes, damage)
        if result.good_end < len(data):
            file.truncate(result.good_end)
        return removed, delivered, file

    def _note_damage(self, path: str, regions: int, size: int, damage: list[int]) -> None:
        if regions:
            logger.warning(
                "store: discarded %d damaged region(s) (%d bytes) in %s", regions, size, path
            )
            damage[0] += regions
            damage[1] += size

    # -- topology -------------------------------------------------------------
    def put_record(self, kind: str, key: tuple[str, ...], value: Any) -> None:
        encoded = bytearray()
        encode_value(value, encoded)
        rid = (kind, tuple(key))
        topology = self._ready_topology()
        self._write(topology, PUT, _encode_record_id(rid) + encoded)
        old = self._records.pop(rid, None)
        if old is not None:
            self._records_bytes -= len(old)
        self._records[rid] = bytes(encoded)
        self._records_bytes += len(encoded)
        self._maybe_compact_topology()

    def delete_record(self, kind: str, key: tuple[str, ...]) -> None:
        rid = (kind, tuple(key))
        topology = self._ready_topology()
        self._write(topology, DELETE, _encode_record_id(rid))
        old = self._records.pop(rid, None)
        if old is not None:
            self._records_bytes -= len(old)
        self._maybe_compact_topology()

    def _ready_topology(self) -> StoreFile:
        if self._topology is None or not self._recovered:
            raise StoreError("call recover() before writing to the store")
        return self._topology

    def _maybe_compact_topology(self) -> None:
        topology = self._topology
        assert topology is not None
        if topology.size < _TOPOLOGY_COMPACT_MIN or topology.size < 4 * (
            self._records_bytes + 64 * len(self._records)
        ):
            return
        path = os.path.join(self.data_dir, "topology.log")
        tmp = path + ".tmp"
        new: StoreFile | None = None
        try:
            new = self._opener(tmp, create=True)
            new.write(file_header(TOPOLOGY_MAGIC, 0))
            for rid, value in self._records.items():
                payload = _encode_record_id(rid) + value
                new.write(encode_record(PUT, make_ref(0, new.size), payload))
            new.fsync()
            os.replace(tmp, path)
        except OSError as exc:
            if new is not None:
                new.close()
            try:
                os.unlink(tmp)
            except OSError:
                pass
            logger.warning("store: could not compact the topology journal: %s", exc)
            return
        fsync_directory(self.data_dir)
        assert new is not None
        self._dirty.discard(topology)
        self._to_close.append(topology)
        self._topology = new
        logger.info("store: compacted the topology journal to %d bytes", new.size)

    # -- messages -------------------------------------------------------------
    def append(
        self, message: Message, queues: Sequence[QueueKey], timestamp: float | None = None
    ) -> MessageRef:
        if not queues:
            raise ValueError("a stored message must be enqueued in at least one queue")
        segment = self._active
        if segment is None:
            raise StoreError("call recover() before writing to the store")
        codes = self._queue_codes
        encoded = []
        for queue in queues:
            code = codes.get(queue)
            if code is None:
                if len(codes) > 100_000:
                    codes.clear()
                code = codes[queue] = encode_queue(queue)
            encoded.append(code)
        if len(encoded) > 1 and len(set(encoded)) != len(encoded):
            raise ValueError("a message is enqueued at most once per queue")
        record = encode_message(message, encoded, timestamp)  # header space reserved at the front
        file = segment.file
        if file.size + len(record) > self.segment_size and file.size > FILE_HEADER_SIZE:
            segment = self._roll()
            file = segment.file
        ref = (segment.number << OFFSET_BITS) | file.size
        self._write_record(file, seal_record(record, MESSAGE, ref))
        index = segment.index
        if index is not None:  # the segment's summary (segindex), inline: a publish path
            index.lengths.append(len(record))
            if timestamp is not None and message.properties.headers is None and len(encoded) == 1:
                # The head (what follows the queue and the enqueue time, up to the body) is
                # usually the one the last record to this queue had: compared, not hashed.
                code = encoded[0]
                head = record[RESERVED + 10 + len(code) : len(record) - len(message.body)]
                last = index.last.get(code)
                if last is not None and last[0] == head:
                    index.head_ids.append(last[1])
                else:
                    index.head_ids.append(index.new_head(code, bytes(head)))
                index.times.append(timestamp)
            else:
                index.head_ids.append(0)
                index.times.append(0.0)
        segment.live += len(queues)
        segment.count += len(queues)
        return ref

    def remove(self, queue: QueueKey, ref: MessageRef) -> None:
        if self._forward:
            forward = self._forward.get(ref)
            if forward is not None:
                current = forward[0]
                forward[1] -= 1
                if forward[1] <= 0:
                    del self._forward[ref]
                    del self._reverse[current]
                ref = current
        segment = self._segments.get(ref >> OFFSET_BITS)
        if segment is None:
            logger.warning("store: remove of message %#x whose segment is gone", ref)
            return
        segment.live -= 1
        if segment is self._active:
            self._mark(segment, REMOVE, queue, ref)
        elif segment.live <= 0:
            self._delete_segment(segment)
        else:
            self._mark(segment, REMOVE, queue, ref)
            if (
                segment.live * _COMPACT_LIVE_FRACTION <= segment.count
                and segment.file.size * 4 >= self.segment_size
            ):
                self._compact_candidates.add(segment)

    def remove_many(self, queue: QueueKey, refs: Iterable[MessageRef]) -> None:
        for ref in refs:
            self.remove(queue, ref)

    def mark_delivered(self, queue: QueueKey, ref: MessageRef) -> None:
        if self._forward:
            ref = self._forward.get(ref, (ref,))[0]
        segment = self._segments.get(ref >> OFFSET_BITS)
        if segment is None:
            return
        self._mark(segment, DELIVERED, queue, ref)

    def _mark(self, segment: _Segment, kind: int, queue: QueueKey, ref: MessageRef) -> None:
        code = self._queue_codes.get(queue)
        if code is None:
            code = self._queue_codes[queue] = encode_queue(queue)
        refs = segment.pending.get((kind, code))
        if refs is None:
            refs = segment.pending[(kind, code)] = array("Q")
        refs.append(ref)
        self._marked.add(segment)
        self._pending_marks += 1
        if self._pending_marks >= _MAX_PENDING_MARKS:
            self._flush_marks()

    def read_message(self, ref: MessageRef) -> Message:
        if self._forward:
            ref = self._forward.get(ref, (ref,))[0]
        segment = self._segments.get(ref >> OFFSET_BITS)
        if segment is None:
            raise StoreError(f"no stored message {ref:#x}")
        offset = ref & OFFSET_MASK
        try:
            # One read usually gets the whole record; a second one fetches a big body.
            data = segment.file.read(_READ_AHEAD, offset)
            total = RECORD_HEADER_SIZE + int.from_bytes(data[2:6], "little")
            if len(data) < total and len(data) >= RECORD_HEADER_SIZE:
                data += segment.file.read(total - len(data), offset + len(data))
            data = data[:total]
        except OSError as exc:
            raise StoreCorruptError(f"cannot read message {ref:#x}: {exc}") from exc
        if record_at(data, 0, ref) < 0:
            raise StoreCorruptError(f"message {ref:#x} fails its checksum")
        kind = data[1]
        if kind != MESSAGE and kind != MOVED:
            raise StoreCorruptError(f"record {ref:#x} is not a message")
        try:
            payload = _split_record(kind, ref, memoryview(data)[RECORD_HEADER_SIZE:])[2]
            _members, content = decode_queues(payload)
            return decode_message(payload, content)
        except _DECODE_ERRORS as exc:
            raise StoreCorruptError(f"message {ref:#x} does not decode: {exc}") from exc

    # -- segments -------------------------------------------------------------
    def _path(self, number: int, ext: str) -> str:
        return os.path.join(self.messages_dir, f"{number:010d}.{ext}")

    def _start_segment(self, number: int) -> _Segment:
        path = self._path(number, "seg")
        self._highest_segment = number
        try:
            file = self._create_file(path, SEGMENT_MAGIC, number)
        except OSError as exc:
            raise StoreWriteError(f"cannot start segment {path}: {exc}") from exc
        self._dirty.add(file)
        segment = self._active = self._segments[number] = _Segment(number, file)
        segment.index = IndexBuilder()
        return segment

    def _create_file(self, path: str, magic: bytes, number: int) -> StoreFile:
        """A new file holding just its header; nothing is left behind if that fails."""
        file = self._opener(path, create=True)
        try:
            file.write(file_header(magic, number))
        except OSError:
            file.close()
            os.unlink(path)
            raise
        self._dirs_dirty.add(self.messages_dir)
        return file

    def _roll(self) -> _Segment:
        old = self._active
        assert old is not None
        new = self._start_segment(old.number + 1)
        if old.live <= 0:
            self._delete_segment(old)
            return new
        self._write_index(old)
        if old.live * _COMPACT_LIVE_FRACTION <= old.count:
            self._compact_candidates.add(old)
        return new

    def _write_index(self, segment: _Segment) -> None:
        """Write the summary of ``segment``, sealed now (see :mod:`amqplite.store.segindex`).

        Best effort, and never fsync'd: recovery checks a summary against its segment and
        scans the segment instead when the summary is missing or does not match.
        """
        index, segment.index = segment.index, None
        if index is None:
            return
        path = self._path(segment.number, "idx")
        file = None
        try:
            image = index.encode(segment.number, segment.file.read(segment.file.size, 0))
            if image is None:
                logger.warning("store: segment %d is not as written; no summary", segment.number)
                return
            if os.path.exists(path):
                os.unlink(path)
            file = self._opener(path, create=True)
            file.write(image)
            self._bytes_written += len(image)
        except OSError as exc:
            logger.warning("store: cannot write the summary of segment %d: %s", segment.number, exc)
            try:
                os.unlink(path)
            except OSError:
                pass
        finally:
            if file is not None:
                file.close()

    def _delete_segment(self, segment: _Segment) -> None:
        del self._segments[segment.number]
        self._pending_marks -= sum(len(refs) for refs in segment.pending.values())
        segment.pending.clear()
        self._marked.discard(segment)
        self._compact_candidates.discard(segment)
        for file in (segment.file, segment.acks):
            if file is not None:
                self._dirty.discard(file)
                self._to_close.append(file)  # closed after any in-flight fsync
        self._unlink_segment_files(segment.number)
        self._dirs_dirty.add(self.messages_dir)

    def _unlink_segment_files(self, number: int) -> None:
        for ext in ("seg", "ack", "idx"):  # the segment first: an ack file alone is ignored
            try:
                os.unlink(self._path(number, ext))
            except FileNotFoundError:
                pass

    def _flush_marks(self) -> None:
        """Write pending removal/delivery marks to their ack files (no fsync)."""
        for segment in sorted(self._marked, key=lambda s: s.number):
            if not segment.pending:
                continue
            file = segment.acks
            try:
                if file is None:
                    path = self._path(segment.number, "ack")
                    file = segment.acks = self._create_file(path, ACKS_MAGIC, segment.number)
                base = segment.number << OFFSET_BITS
                chunks = []
                offset = base_offset = file.size
                for (kind, code), refs in segment.pending.items():
                    record = encode_record(kind, base | offset, code + refs.tobytes())
                    chunks.append(record)
                    offset += len(record)
                file.write(b"".join(chunks))
                self._bytes_written += offset - base_offset
            except OSError as exc:
                if file is not None and segment.acks is file:
                    self._truncate_quietly(file)
                logger.warning(
                    "store: cannot write removal marks for segment %d, will retry: %s",
                    segment.number,
                    exc,
                )
                continue
            self._dirty.add(file)
            self._pending_marks -= sum(len(refs) for refs in segment.pending.values())
            segment.pending.clear()
            self._marked.discard(segment)

    # -- compaction -----------------------------------------------------------
    def _compact(self) -> list[_Segment]:
        """Copy the live messages of one mostly-dead segment forward; return it for retiring.

        Bounded work per sync: one segment (about ``segment_size / 4`` of live data at most
        is rewritten).  The old files are deleted by ``complete_sync``, once the copies are
        durable; a crash before that leaves both, and recovery keeps only the copy (MOVED
        records name their original).  The broker keeps using the refs it holds: they are
        forwarded to the copies until every queue removed the message.
        """
        for segment in sorted(self._compact_candidates, key=_segment_number):
            self._compact_candidates.discard(segment)
            if (
                self._segments.get(segment.number) is segment
                and segment is not self._active
                and not segment.pending
                and segment.live > 0
            ):
                return [segment] if self._compact_segment(segment) else []
        return []

    def _compact_segment(self, segment: _Segment) -> bool:
        try:
            data = segment.file.read_all()
            acks = segment.acks.read_all() if segment.acks is not None else b""
        except OSError as exc:
            logger.warning("store: cannot read segment %d to compact it: %s", segment.number, exc)
            return False
        removed, delivered = _parse_acks(acks, segment.number)[:2] if acks else (set(), {})
        base = segment.number << OFFSET_BITS
        view = memoryview(data)
        copies: list[tuple[int, int, list[tuple[QueueKey, int]], memoryview, float | None]] = []
        for kind, offset, start, end in scan(data, segment.number).records:
            if kind != MESSAGE and kind != MOVED:
                continue
            ref = base | offset
            try:
                original, counts, payload = _split_record(kind, ref, view[start:end])
                members, content, timestamp = decode_queue_list(payload)
            except _DECODE_ERRORS:
                continue
            alive = [
                (queue, delivered.get((queue, ref), 0) + (counts[i] if counts else 0))
                for i, queue in enumerate(members)
                if (queue, ref) not in removed
            ]
            if alive:
                copies.append((ref, original, alive, payload[content:], timestamp))
        del self._segments[segment.number]
        moved = 0
        for ref, original, alive, rest, timestamp in copies:
            record = bytearray(RESERVED)
            record += _U64.pack(original)
            record += _U16.pack(len(alive))
            record += array("I", [count for _, count in alive]).tobytes()
            encode_queue_list(record, [self._queue_code(queue) for queue, _ in alive], timestamp)
            record += rest
            active = self._active
            assert active is not None
            try:
                if active.file.size + len(record) > self.segment_size:
                    active = self._roll()
                new_ref = (active.number << OFFSET_BITS) | active.file.size
                self._write_record(active.file, seal_record(record, MOVED, new_ref))
                if active.index is not None:
                    active.index.lengths.append(len(record))
                    active.index.head_ids.append(0)
                    active.index.times.append(0.0)
            except StoreWriteError as exc:
                logger.warning("store: compaction of segment %d stopped: %s", segment.number, exc)
                segment.live -= moved
                self._segments[segment.number] = segment
                return False
            active.live += len(alive)
            active.count += len(alive)
            held = self._reverse.pop(ref, ref)
            self._forward[held] = [new_ref, len(alive)]
            self._reverse[new_ref] = held
            moved += len(alive)
        if moved != segment.live:
            logger.warning(
                "store: segment %d had %d live memberships on disk, %d by count",
                segment.number,
                moved,
                segment.live,
            )
        segment.live = 0
        for file in (segment.file, segment.acks):
            if file is not None:
                self._dirty.discard(file)
                self._to_close.append(file)
        logger.info(
            "store: compacted segment %d (%d live message(s) moved)", segment.number, len(copies)
        )
        return True

    def _queue_code(self, queue: QueueKey) -> bytes:
        code = self._queue_codes.get(queue)
        if code is None:
            code = self._queue_codes[queue] = encode_queue(queue)
        return code

    # -- writing --------------------------------------------------------------
    def _write(self, file: StoreFile, kind: int, payload: bytes | bytearray) -> None:
        """Append one record, or raise StoreWriteError leaving the file as it was."""
        ref = make_ref(self._file_number(file), file.size)
        self._write_record(file, encode_record(kind, ref, payload))

    def _write_record(self, file: StoreFile, record: bytes | bytearray) -> None:
        if self._closed:
            raise StoreError("the store is closed")
        try:
            file.write(record)
        except OSError as exc:
            self._truncate_quietly(file)
            raise StoreWriteError(f"cannot write to {file.path}: {exc}") from exc
        self._dirty.add(file)
        self._bytes_written += len(record)
        self._position += 1

    def _file_number(self, file: StoreFile) -> int:
        if file is self._topology:
            return 0
        active = self._active
        assert active is not None and active.file is file
        return active.number

    @staticmethod
    def _truncate_quietly(file: StoreFile) -> None:
        # Cut off whatever part of the failed record reached the file.  If even that fails
        # the next write still goes to ``file.size`` (pwrite), over the torn bytes.
        try:
            file.truncate(file.size)
        except OSError as exc:
            logger.warning("store: cannot truncate %s after a failed write: %s", file.path, exc)

    # -- durability -----------------------------------------------------------
    def flush(self) -> None:
        if self._pending_marks:
            self._flush_marks()
        if self._streams_pending:
            self._flush_streams()

    def prepare_sync(self) -> _FileSyncPoint:
        if self._pending_marks:
            self._flush_marks()
        position = self._flush_streams() if self._streams_pending else self._position
        retire = self._compact() if self._compact_candidates else []
        point = _FileSyncPoint(
            position, list(self._dirty), sorted(self._dirs_dirty), retire, self._fsyncs
        )
        if self._tracking_dirty:
            point.tracking = [(log, log.tracking_image()) for log in self._tracking_dirty]
            self._tracking_dirty.clear()
        self._dirty.clear()
        self._dirs_dirty.clear()
        return point

    def complete_sync(self, point: SyncPoint) -> None:
        assert isinstance(point, _FileSyncPoint)
        if point.position > self._durable_position:
            self._durable_position = point.position
        for segment in point.retire:  # their live messages now have durable copies
            self._unlink_segment_files(segment.number)
            self._dirs_dirty.add(self.messages_dir)
        for file in self._to_close:
            file.close()
        self._to_close.clear()

    def sync(self) -> None:
        point = self.prepare_sync()
        point.fsync()
        self.complete_sync(point)

    def free_bytes(self) -> int | None:
        return free_bytes(self.data_dir)

    # -- stream logs (see amqplite.store.streamlog) -----------------------------
    def stream_log(
        self, queue: QueueKey, max_segment_bytes: int, segment_max_age: float | None
    ) -> FileStreamLog:
        """The stream log of ``queue`` (opened, and its tail verified, on first use)."""
        found = self._stream_logs.get(queue)
        if found is None:
            directory = stream_dir(self.data_dir, *queue)
            fresh = not os.path.isdir(directory)
            found = FileStreamLog(
                directory,
                max_segment_bytes=max_segment_bytes,
                segment_max_age=segment_max_age,
                sink=self,
                opener=self._opener,
            )
            if fresh:
                for path in (
                    os.path.dirname(directory),
                    os.path.dirname(os.path.dirname(directory)),
                ):
                    self._dirs_dirty.add(path)
            self._stream_logs[queue] = found
        found.max_segment_bytes = max_segment_bytes
        found.segment_max_age = segment_max_age
        return found

    def delete_stream_log(self, queue: QueueKey) -> None:
        """Delete ``queue``'s stream log and its files (the stream queue was deleted)."""
        found = self._stream_logs.pop(queue, None)
        if found is None:
            directory = stream_dir(self.data_dir, *queue)
            if not os.path.isdir(directory):
                return
            found = FileStreamLog(directory, sink=self, opener=self._opener)
        self._tracking_dirty.discard(found)
        self._streams_pending.discard(found)
        found.delete()
        self._dirs_dirty.add(os.path.dirname(found.directory))

    def stream_buffered(self, log: Any) -> int:
        self._streams_pending.add(log)
        self._position += 1
        return self._position

    def stream_wrote(self, file: Any, nbytes: int) -> None:
        self._dirty.add(file)
        self._bytes_written += nbytes

    def _flush_streams(self) -> int:
        """Write every stream log's buffered chunk; the highest position a sync may claim.

        A log whose write fails (disk full) keeps its messages buffered and holds the
        durable position below them, so their publishers are not confirmed until a
        later flush succeeds.
        """
        limit = self._position
        failed = set()
        for stream_log in self._streams_pending:
            try:
                stream_log.flush()
            except StoreWriteError as exc:
                logger.error("stream write failed (will retry): %s", exc)
                failed.add(stream_log)
                if stream_log.pending_since is not None:
                    limit = min(limit, stream_log.pending_since - 1)
        self._streams_pending = failed
        return limit

    def stream_dir_changed(self, path: str) -> None:
        self._dirs_dirty.add(path)

    def stream_close(self, file: Any) -> None:
        self._dirty.discard(file)
        self._to_close.append(file)

    def stream_tracking_changed(self, log: Any) -> None:
        # Like removals, tracked offsets never ask for a sync of their own: they ride
        # along with the next one (the server syncs at least every second).
        self._tracking_dirty.add(log)

    @property
    def bytes_written(self) -> int:
        return self._bytes_written

    # -- lifecycle ------------------------------------------------------------
    def close(self) -> None:
        """Sync, mark the shutdown clean, close every file and release the lock."""
        if self._closed:
            return
        try:
            if self._recovered and self._topology is not None:
                self.sync()
                if self._active is not None:
                    self._write_index(self._active)  # sealed: the next open starts a new one
                self._write(self._topology, CLEAN, b"")
                self._topology.fsync()
        finally:
            self._closed = True
            files = [self._topology, *self._to_close]
            for stream_log in self._stream_logs.values():
                stream_log.close()
            self._stream_logs.clear()
            for segment in self._segments.values():
                files += [segment.file, segment.acks]
            for file in files:
                if file is not None:
                    file.close()
            self._segments.clear()
            self._active = None
            if self._lock is not None:
                self._lock.release()
                self._lock = None

    def abandon(self) -> None:
        """Let go of the directory the way a killed process would: no sync, no clean mark.

        What was written reaches the next open (it is in the OS page cache); pending
        removal marks and the clean-shutdown mark do not.  For crash tests and tools.
        """
        if self._topology is not None:
            self._topology.close()
            self._topology = None
        self._recovered = False
        self._pending_marks = 0
        self._marked.clear()
        for segment in self._segments.values():
            segment.pending.clear()
        self.close()

    def __enter__(self) -> FileStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def segment_count(self) -> int:
        """Segments on disk (for tests and metrics)."""
        return len(self._segments)

    def size_bytes(self) -> int:
        """Bytes in the store's files (the management API's ``amqplite_store_size_bytes``)."""
        return self.disk_usage()

    def fsync_histogram(self) -> tuple[tuple[float, ...], list[int], int, float]:
        """fsync latency as (bounds, cumulative counts, count, sum) for the metrics endpoint."""
        return self._fsyncs.snapshot()

    def disk_usage(self) -> int:
        """Bytes in the store's files (for tests and metrics)."""
        total = 0
        for directory in (self.data_dir, self.messages_dir):
            for entry in os.scandir(directory):
                if entry.is_file():
                    total += entry.stat().st_size
        return total


def _encode_record_id(rid: RecordId) -> bytes:
    kind, key = rid
    out = bytearray()
    encode_value([kind, *key], out)
    return bytes(out)


def _decode_record_id(data: memoryview) -> tuple[RecordId, int]:
    parts, pos = decode_value(data, 0)
    if not isinstance(parts, list) or not parts or not all(isinstance(p, str) for p in parts):
        raise CodecError("bad topology record key")
    return (parts[0], tuple(parts[1:])), pos


_Removed = set[tuple[QueueKey, int]]
_Delivered = dict[tuple[QueueKey, int], int]
#: How to load a segment: load_bodies, unclean, (removed, delivered), (latest copy by
#: original ref, original by copy ref, queue lists), the segment's path, damage counts.
_LoadContext = tuple[
    bool,
    bool,
    tuple[_Removed, _Delivered],
    tuple[dict[int, int], dict[int, int], dict[QueueKey, list[RecoveredMessage]]],
    str,
    list[int],
]
_U64 = struct.Struct("<Q")
_U16 = struct.Struct("<H")
_F64 = struct.Struct("<d")


def _remember_head(
    heads: dict[bytes, tuple[QueueKey, bytes, Any, list[RecoveredMessage]]],
    head_at: tuple[bytes, int, int],
    data: bytes,
    end: int,
    ordered: dict[QueueKey, list[RecoveredMessage]],
) -> None:
    """Note the head of the one-queue record just queued (``head_at``: its queue code,
    where its head starts, its ref), so the next records to that queue with the same head
    skip the decode.  Its properties are shared by those messages, so only when they have
    no headers table (the one mutable part), as in :func:`decode_stored_head`."""
    code, head_start, ref = head_at
    queue = decode_queue(code, 2)[0]  # after the queue count
    items = ordered.get(queue)
    if not items or items[-1].ref != ref:
        return  # removed: the last entry is another message's
    entry = items[-1]
    properties = entry.properties
    if properties is None or properties.headers is not None:
        return
    heads[code] = (queue, data[head_start : end - entry.size], properties, items)


def _first(item: tuple[int, RecoveredMessage]) -> int:
    return item[0]


def _split_record(
    kind: int, ref: int, payload: memoryview
) -> tuple[int, list[int] | None, memoryview]:
    """(original ref, per-queue delivery counts or None, MESSAGE payload) of a segment record."""
    if kind == MESSAGE:
        return ref, None, payload
    original = _U64.unpack_from(payload, 0)[0]
    (n,) = _U16.unpack_from(payload, 8)
    counts = array("I")
    counts.frombytes(payload[10 : 10 + 4 * n])
    if len(counts) != n:
        raise CodecError("truncated delivery counts")
    return original, counts.tolist(), payload[10 + 4 * n :]


def _parse_acks(data: bytes, number: int) -> tuple[_Removed, _Delivered, ScanResult, int]:
    """Removals and delivery counts of an ack file image; also its scan and bad-record count."""
    removed: _Removed = set()
    delivered: _Delivered = {}
    result = scan(data, number)
    undecodable = 0
    view = memoryview(data)
    for kind, _offset, start, end in result.records:
        try:
            queue, pos = decode_queue(view, start)
            refs = array("Q")
            refs.frombytes(view[pos:end])
        except _DECODE_ERRORS:
            undecodable += 1
            continue
        if kind == REMOVE:
            removed.update((queue, ref) for ref in refs)
        elif kind == DELIVERED:
            for ref in refs:
                key = (queue, ref)
                delivered[key] = delivered.get(key, 0) + 1
    return removed, delivered, result, undecodable


def _segment_number(segment: _Segment) -> int:
    return segment.number
