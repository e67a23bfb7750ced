"""The stream-log contract: what a stream queue may ask of its append-only log, and nothing more.

Layer: ``amqplite/store`` (pure apart from file I/O in the file implementation).

A stream log holds the messages of one stream queue in offset order.  Offsets start at 0,
are per message, monotonic and never reused.  Two implementations pass the same contract
tests (``tests/store/test_stream_log_contract.py``):

* :class:`MemoryStreamLog` -- for brokers without a data directory and for tests;
* :class:`~amqplite.store.streamfile.FileStreamLog` -- segment files plus an index file per
  segment in ``<data_dir>/streams/<vhost>/<queue>/``.

Both share :class:`SegmentedLog`, which keeps the part that makes a log fast and small:

* **Chunks.**  ``append(entries)`` writes one chunk (one group-commit batch) and returns the
  offset of its first message.  ``entries`` are ``(timestamp_seconds, message)``; timestamps
  are made non-decreasing so that a time seek is a binary search.
* **Segments.**  A chunk goes into the active segment; a new segment starts when the active
  one would exceed ``max_segment_bytes`` or (``roll_deadline`` / ``tick``) once its first
  message is older than ``segment_max_age``, so that age retention also works on a quiet
  stream.  Retention (``retain``) deletes whole sealed segments, never the active one.
* **Index.**  In memory, per segment, one row per chunk: first offset, first and last
  timestamp, position and length.  Nothing per message is kept in memory; bodies stay on
  disk.  ``read(offset, n)`` binary-searches the segment and then the chunk, and decodes
  only the chunks it returns; ``offset_at(ts)`` finds the first message stored at or after
  ``ts`` exactly (it reads the one chunk that holds it).
* **Tracking.**  ``set_tracking(key, offset)`` remembers a consumer's next offset under a
  key; it is made durable by the next store sync and comes back in ``tracking()``.

Durability: appends are written through to the OS at once (a failed write raises
:class:`~amqplite.store.StoreWriteError` and leaves nothing behind); the owning store's
``sync()`` fsyncs them with everything else (the log tells the store through a
:class:`SyncSink`), so a publisher confirm for a stream message means it is on disk.
"""

from __future__ import annotations

import bisect
import operator
from array import array
from collections.abc import Sequence
from itertools import repeat
from typing import Any, NamedTuple, Protocol

import attrs

from amqplite.message import Message, MessageRun
from amqplite.store.streamchunks import (
    ChunkInfo,
    chunk_columns,
    chunk_messages,
    chunk_timestamps,
    encode_chunk,
    filter_value,
)

#: RabbitMQ's default x-stream-max-segment-size-bytes.
DEFAULT_SEGMENT_BYTES = 500_000_000
#: A chunk is written once this many messages or bytes are buffered (or at flush).
MAX_CHUNK_MESSAGES = 4096
MAX_CHUNK_BYTES = 1 << 20
_body = operator.attrgetter("body")

#: Decoded chunks kept for readers near each other and for the live tail.
CHUNK_CACHE_SIZE = 8


@attrs.frozen(slots=True)
class StreamRecord:
    """One message read back from a stream."""

    offset: int
    timestamp: float  # seconds since the epoch, millisecond precision
    message: Message
    #: The message's ``x-stream-filter-value`` header (kept beside a wire-form message,
    #: whose properties are not decoded).
    filter_value: str | None = None


class ChunkMessages(NamedTuple):
    """One decoded chunk (or the buffered, unwritten messages) as parallel lists: what a
    reader delivers from.  Offsets are ``first + index``; nothing is made per message
    (the messages are a :class:`~amqplite.message.MessageRun`), and decoded chunks are
    shared by every reader."""

    first: int
    messages: MessageRun
    #: each message's ``x-stream-filter-value`` (None if absent)
    filters: list[str | None]
    #: each message's timestamp, in milliseconds
    timestamps: list[int]


class SyncSink(Protocol):
    """How a log tells its store that it wrote something a sync must cover."""

    def stream_buffered(self, log: Any) -> int:
        """``log`` buffered its first message for a new chunk: the store counts a write
        (a confirm waits for it) and will ``flush`` the log at its next flush or sync.
        Returns the store position of that write."""

    def stream_wrote(self, file: Any, nbytes: int) -> None:
        """``nbytes`` were written to ``file``: the next sync must fsync it (and the disk
        floor counts them, as it counts the message store's writes)."""

    def stream_dir_changed(self, path: str) -> None:
        """Files were created or deleted in ``path``."""

    def stream_close(self, file: Any) -> None:
        """Close ``file`` once no sync in flight uses it (its segment was deleted)."""

    def stream_tracking_changed(self, log: Any) -> None:
        """``log``'s tracked offsets changed: write them with the next sync."""


class StreamLog(Protocol):
    """The narrow interface a stream queue programs against."""

    max_segment_bytes: int
    segment_max_age: float | None

    @property
    def first_offset(self) -> int: ...

    @property
    def next_offset(self) -> int: ...

    @property
    def first_timestamp(self) -> float | None: ...

    @property
    def last_timestamp(self) -> float | None: ...

    @property
    def last_chunk_offset(self) -> int | None: ...

    @property
    def segment_count(self) -> int: ...

    @property
    def size_bytes(self) -> int: ...

    def add(self, timestamp: float, message: Message) -> int: ...

    def add_many(self, timestamp: float, messages: list[Message]) -> int: ...

    def flush(self) -> None: ...

    @property
    def has_pending(self) -> bool: ...

    pending_since: int | None

    def append(self, entries: Sequence[tuple[float, Message]]) -> int: ...

    def read(self, offset: int, max_messages: int, *, cache: bool = True) -> list[StreamRecord]: ...

    def chunk_at(self, offset: int) -> ChunkMessages | None: ...

    def offset_at(self, timestamp: float) -> int: ...

    def roll_deadline(self) -> float | None: ...

    def oldest_sealed_timestamp(self) -> float | None: ...

    def tick(self, now: float) -> None: ...

    def retain(self, now: float, max_age: float | None, max_bytes: int | None) -> int: ...

    def set_tracking(self, key: str, offset: int) -> None: ...

    def tracking(self) -> dict[str, int]: ...

    def close(self) -> None: ...

    def delete(self) -> None: ...


@attrs.define(eq=False)
class Segment:
    """One segment's in-memory index: one row per chunk, in arrays (no object per chunk)."""

    first_offset: int
    handle: Any = None
    next_offset: int = -1
    size: int = 0
    sealed: bool = False
    offsets: array[int] = attrs.Factory(lambda: array("q"))
    first_ts: array[int] = attrs.Factory(lambda: array("q"))
    last_ts: array[int] = attrs.Factory(lambda: array("q"))
    positions: array[int] = attrs.Factory(lambda: array("q"))
    lengths: array[int] = attrs.Factory(lambda: array("q"))

    def __attrs_post_init__(self) -> None:
        if self.next_offset < 0:
            self.next_offset = self.first_offset

    def add(self, info: ChunkInfo) -> None:
        self.offsets.append(info.first_offset)
        self.first_ts.append(info.first_ts_ms)
        self.last_ts.append(info.last_ts_ms)
        self.positions.append(info.position)
        self.lengths.append(info.length)
        self.next_offset = info.first_offset + info.count

    @property
    def empty(self) -> bool:
        return not self.offsets


class SegmentedLog:
    """Segments, chunk index, search, roll and retention; subclasses store the bytes."""

    def __init__(self, max_segment_bytes: int, segment_max_age: float | None) -> None:
        self.max_segment_bytes = max_segment_bytes or DEFAULT_SEGMENT_BYTES
        self.segment_max_age = segment_max_age
        self.segments: list[Segment] = []
        #: the offset the next added message gets (buffered ones included)
        self._next_offset = 0
        #: the offset after the last written chunk
        self._written_next = 0
        self._first_kept = 0
        self._last_ts_ms = 0
        self._tracking: dict[str, int] = {}
        self._pending: list[tuple[int, Message]] = []
        self._pending_bytes = 0
        self._sink: SyncSink | None = None
        #: the store position of the first buffered message (a sync may not pass it
        #: while that message is unwritten)
        self.pending_since: int | None = None
        self._chunk_cache: dict[int, ChunkMessages] = {}
        self._written_cache: dict[int, list[tuple[int, Message]]] = {}
        #: The buffered messages as a reader delivers them, made when a reader first
        #: asks (the live tail) and extended by each add until the flush: a reader at
        #: the end takes each input buffer's messages in one run, without rebuilding it.
        self._pending_chunk: ChunkMessages | None = None

    # -- storage (subclasses) --------------------------------------------------------------

    def _new_segment(self, first_offset: int) -> Segment:
        raise NotImplementedError

    def _write_chunk(self, segment: Segment, data: bytes | bytearray, info: ChunkInfo) -> ChunkInfo:
        """Write ``data`` at the end of ``segment``; the info with its position."""
        raise NotImplementedError

    def _read_chunk(self, segment: Segment, index: int) -> bytes:
        raise NotImplementedError

    def _seal(self, segment: Segment) -> None:
        segment.sealed = True

    def _drop_segment(self, segment: Segment) -> None:
        raise NotImplementedError

    # -- inspection ---------------------------------------------------------------------

    @property
    def first_offset(self) -> int:
        return self._first_kept

    @property
    def next_offset(self) -> int:
        return self._next_offset

    @property
    def first_timestamp(self) -> float | None:
        for segment in self.segments:
            if not segment.empty:
                return segment.first_ts[0] / 1000.0
        return None

    @property
    def last_timestamp(self) -> float | None:
        for segment in reversed(self.segments):
            if not segment.empty:
                return segment.last_ts[-1] / 1000.0
        return None

    @property
    def last_chunk_offset(self) -> int | None:
        """Where the newest chunk starts (RabbitMQ's ``last``), or None when empty."""
        for segment in reversed(self.segments):
            if not segment.empty:
                return segment.offsets[-1]
        return None

    @property
    def segment_count(self) -> int:
        return len(self.segments)

    @property
    def size_bytes(self) -> int:
        return sum(segment.size for segment in self.segments)

    # -- writing ------------------------------------------------------------------------

    def add(self, timestamp: float, message: Message) -> int:
        """Buffer one message for the next chunk; its offset.  ``flush`` writes the chunk.

        A full buffer is flushed first, so this may raise ``StoreWriteError`` (then the
        message was not added).
        """
        if len(self._pending) >= MAX_CHUNK_MESSAGES or self._pending_bytes >= MAX_CHUNK_BYTES:
            self.flush()
        ms = round(timestamp * 1000)
        ms = max(ms, self._last_ts_ms)
        self._last_ts_ms = ms
        if not self._pending and self._sink is not None:
            self.pending_since = self._sink.stream_buffered(self)
        self._pending.append((ms, message))
        self._pending_bytes += len(message.body) + 64
        tail = self._pending_chunk
        if tail is not None:
            tail.messages.append(message)  # a MessageRun: one append per field
            tail.filters.append(filter_value(message))
            tail.timestamps.append(ms)
        offset = self._next_offset
        self._next_offset = offset + 1
        return offset

    def add_many(self, timestamp: float, messages: list[Message]) -> int:
        """:meth:`add` for a run of messages with one timestamp, until the chunk buffer is
        full: how many were added (at least one).  A full buffer is flushed first, so this
        may raise ``StoreWriteError`` (then none was added)."""
        if len(self._pending) >= MAX_CHUNK_MESSAGES or self._pending_bytes >= MAX_CHUNK_BYTES:
            self.flush()
        pending = self._pending
        ms = max(round(timestamp * 1000), self._last_ts_ms)
        self._last_ts_ms = ms
        if not pending and self._sink is not None:
            self.pending_since = self._sink.stream_buffered(self)
        room = MAX_CHUNK_MESSAGES - len(pending)
        size = self._pending_bytes
        n = len(messages)
        total = sum(map(len, map(_body, messages))) + 64 * n
        if n <= room and size + total <= MAX_CHUNK_BYTES:  # the usual case: all of them
            pending.extend(zip(repeat(ms, n), messages, strict=True))
            self._pending_bytes = size + total
            self._next_offset += n
            if self._pending_chunk is not None:
                self._extend_tail(ms, messages)
            return n
        count = 0
        append = pending.append
        for message in messages:
            if count >= room or size >= MAX_CHUNK_BYTES:
                break
            append((ms, message))
            size += len(message.body) + 64
            count += 1
        self._pending_bytes = size
        self._next_offset += count
        if self._pending_chunk is not None:
            self._extend_tail(ms, messages[:count])
        return count

    def _extend_tail(self, ms: int, messages: list[Message]) -> None:
        """Keep the buffered messages' run form (a reader at the end uses it) whole."""
        tail = self._pending_chunk
        assert tail is not None
        for message in messages:
            tail.messages.append(message)
            tail.filters.append(filter_value(message))
        tail.timestamps.extend(repeat(ms, len(messages)))

    def flush(self) -> None:
        """Write the buffered messages as one chunk (nothing to do when none are buffered).

        On failure (``StoreWriteError``) nothing was written and the messages stay buffered
        for the next attempt.
        """
        pending = self._pending
        if not pending:
            return
        first = self._written_next
        data, info = encode_chunk(first, pending)
        segment = self._active_for(len(data))
        info = self._write_chunk(segment, data, info)
        segment.add(info)
        segment.size += len(data)
        self._written_next = first + len(pending)
        tail = self._pending_chunk
        if tail is not None:
            # Already in the form readers use: keep it decoded.
            self._pending_chunk = None
            self._keep_decoded(tail)
        else:
            self._cache_chunk(first, pending)
        self._pending = []
        self._pending_bytes = 0
        self.pending_since = None

    def append(self, entries: Sequence[tuple[float, Message]]) -> int:
        """Write ``entries`` as one chunk; the offset of its first message."""
        first = self._next_offset
        for ts, message in entries:
            self.add(ts, message)
        self.flush()
        return first

    @property
    def has_pending(self) -> bool:
        return bool(self._pending)

    def _active_for(self, size: int) -> Segment:
        active = self.segments[-1] if self.segments else None
        if active is not None and not active.sealed:
            if active.empty or active.size + size <= self.max_segment_bytes:
                return active
            self._seal(active)
        segment = self._new_segment(self._written_next)
        self.segments.append(segment)
        return segment

    def _cache_chunk(self, first: int, entries: list[tuple[int, Message]]) -> None:
        # The messages just written, kept as they are (records are made only if a reader
        # behind the live tail asks): a reader that fell a little behind reads no disk.
        cache = self._written_cache
        cache[first] = entries
        while len(cache) > CHUNK_CACHE_SIZE:
            del cache[next(iter(cache))]

    # -- reading ------------------------------------------------------------------------

    def _locate(self, offset: int) -> tuple[int, int] | None:
        """(segment index, chunk index) of the written chunk holding ``offset``, or None."""
        segments = self.segments
        if not segments or offset >= self._written_next:
            return None
        firsts = [s.first_offset for s in segments]
        si = max(0, bisect.bisect_right(firsts, offset) - 1)
        while si < len(segments):
            segment = segments[si]
            if not segment.empty and offset < segment.next_offset:
                ci = max(0, bisect.bisect_right(segment.offsets, offset) - 1)
                return si, ci
            si += 1
        return None

    def _decoded(self, segment: Segment, ci: int) -> ChunkMessages:
        """Chunk ``ci`` of ``segment`` decoded (the last few are kept, for every reader)."""
        first = segment.offsets[ci]
        cached = self._chunk_cache.get(first)
        if cached is not None:
            return cached
        written = self._written_cache.pop(first, None)
        if written is not None:
            messages = [message for _ts, message in written]
            chunk = ChunkMessages(
                first,
                MessageRun.of(messages),
                [filter_value(m) for m in messages],
                [ts for ts, _ in written],
            )
        else:
            chunk = ChunkMessages(first, *chunk_columns(self._read_chunk(segment, ci)))
        self._keep_decoded(chunk)
        return chunk

    def _keep_decoded(self, chunk: ChunkMessages) -> None:
        cache = self._chunk_cache
        cache[chunk.first] = chunk
        while len(cache) > CHUNK_CACHE_SIZE:
            del cache[next(iter(cache))]

    def _chunk_records(self, segment: Segment, ci: int) -> list[StreamRecord]:
        first, run, filters, stamps = self._decoded(segment, ci)
        messages = [run.message(i) for i in range(len(run.bodies))]
        return [
            StreamRecord(first + i, stamps[i] / 1000.0, message, filters[i])
            for i, message in enumerate(messages)
        ]

    def chunk_at(self, offset: int) -> ChunkMessages | None:
        """The decoded chunk holding ``offset`` -- or, past the written ones, the buffered
        messages -- for a reader to deliver from; None below the first kept offset or at
        the end."""
        if offset < self._first_kept or offset >= self._next_offset:
            return None
        where = self._locate(offset)
        if where is not None:
            si, ci = where
            return self._decoded(self.segments[si], ci)
        pending = self._pending
        if not pending or offset < self._written_next:
            return None
        tail = self._pending_chunk
        if tail is None:
            messages = [message for _ts, message in pending]
            tail = self._pending_chunk = ChunkMessages(
                self._written_next,
                MessageRun.of(messages),
                [filter_value(m) for m in messages],
                [ts for ts, _ in pending],
            )
        return tail

    def read(self, offset: int, max_messages: int, *, cache: bool = True) -> list[StreamRecord]:
        """Up to ``max_messages`` from ``offset`` (clamped to the first kept offset).

        Whole chunks are read and decoded (and the last few kept decoded, so readers close
        to each other share the work); buffered messages not yet written are included.
        ``cache=False`` (a one-off look, as tools do) decodes only the messages asked for.
        """
        offset = max(offset, self._first_kept)
        out: list[StreamRecord] = []
        where = self._locate(offset)
        while where is not None and len(out) < max_messages:
            si, ci = where
            segment = self.segments[si]
            first = segment.offsets[ci]
            if not cache and first not in self._chunk_cache:
                start = max(offset, first)
                data = self._read_chunk(segment, ci)
                part = chunk_messages(data, start - first, max_messages - len(out))
                out.extend(
                    StreamRecord(start + i, ts / 1000.0, message, fv)
                    for i, (ts, message, fv) in enumerate(part)
                )
                last = ci + 1 < len(segment.offsets)
                offset = segment.offsets[ci + 1] if last else segment.next_offset
                where = self._next_chunk(si, ci)
                continue
            records = self._chunk_records(segment, ci)
            start = offset - records[0].offset if offset > records[0].offset else 0
            out.extend(records[start : start + max_messages - len(out)])
            offset = records[-1].offset + 1
            where = self._next_chunk(si, ci)
        if len(out) < max_messages and offset >= self._written_next and self._pending:
            base = self._written_next
            for i in range(offset - base, len(self._pending)):
                ts, message = self._pending[i]
                out.append(StreamRecord(base + i, ts / 1000.0, message, filter_value(message)))
                if len(out) >= max_messages:
                    break
        return out

    def _next_chunk(self, si: int, ci: int) -> tuple[int, int] | None:
        ci += 1
        segments = self.segments
        while si < len(segments):
            if ci < len(segments[si].offsets):
                return si, ci
            si += 1
            ci = 0
        return None

    def offset_at(self, timestamp: float) -> int:
        """The first offset stored at or after ``timestamp`` (``next_offset`` if none)."""
        ms = round(timestamp * 1000)
        for segment in self.segments:
            if segment.empty or segment.last_ts[-1] < ms:
                continue
            ci = bisect.bisect_left(segment.last_ts, ms)
            if segment.first_ts[ci] >= ms:
                return max(segment.offsets[ci], self._first_kept)
            data = self._read_chunk(segment, ci)
            for i, ts in enumerate(chunk_timestamps(data)):
                if ts >= ms:
                    return max(segment.offsets[ci] + i, self._first_kept)
        for i, (ts, _message) in enumerate(self._pending):
            if ts >= ms:
                return self._written_next + i
        return self._next_offset

    # -- time and retention ----------------------------------------------------------------

    def roll_deadline(self) -> float | None:
        """When the active segment is old enough to be sealed (None: never / nothing to roll)."""
        if self.segment_max_age is None:
            return None
        active = self.segments[-1] if self.segments else None
        if active is not None and not active.sealed and not active.empty:
            return active.first_ts[0] / 1000.0 + self.segment_max_age
        if self._pending:  # the first message of the segment its chunk will start
            return self._pending[0][0] / 1000.0 + self.segment_max_age
        return None

    def oldest_sealed_timestamp(self) -> float | None:
        """The newest timestamp of the oldest segment if it is sealed (retention's next
        candidate), else None."""
        if self.segments and self.segments[0].sealed and not self.segments[0].empty:
            return self.segments[0].last_ts[-1] / 1000.0
        return None

    def tick(self, now: float) -> None:
        """Seal the active segment if it is older than ``segment_max_age``."""
        due = self.roll_deadline()
        if due is not None and due <= now and self.segments and not self.segments[-1].sealed:
            self._seal(self.segments[-1])

    def retain(self, now: float, max_age: float | None, max_bytes: int | None) -> int:
        """Delete the oldest sealed segments past ``max_age`` or over ``max_bytes``."""
        removed = 0
        total = self.size_bytes
        while self.segments and self.segments[0].sealed:
            oldest = self.segments[0]
            too_old = (
                max_age is not None
                and not oldest.empty
                and oldest.last_ts[-1] / 1000.0 < now - max_age
            )
            too_big = max_bytes is not None and total > max_bytes
            if not (too_old or too_big or oldest.empty):
                break
            self.segments.pop(0)
            total -= oldest.size
            self._drop_segment(oldest)
            removed += 1
            self._first_kept = self.segments[0].first_offset if self.segments else self._next_offset
        return removed

    # -- tracking -----------------------------------------------------------------------

    def set_tracking(self, key: str, offset: int) -> None:
        self._tracking[key] = offset

    def tracking(self) -> dict[str, int]:
        return dict(self._tracking)

    def close(self) -> None:
        """Release resources (the file log closes its files)."""

    def delete(self) -> None:
        for segment in self.segments:
            self._drop_segment(segment)
        self.segments.clear()


class MemoryStreamLog(SegmentedLog):
    """The stream-log contract with segments held as lists of chunk bytes in memory."""

    def __init__(
        self,
        max_segment_bytes: int = DEFAULT_SEGMENT_BYTES,
        segment_max_age: float | None = None,
        sink: SyncSink | None = None,
    ) -> None:
        super().__init__(max_segment_bytes, segment_max_age)
        self._sink = sink

    def _new_segment(self, first_offset: int) -> Segment:
        return Segment(first_offset, handle=[])

    def _write_chunk(self, segment: Segment, data: bytes | bytearray, info: ChunkInfo) -> ChunkInfo:
        chunks: list[bytes] = segment.handle
        chunks.append(bytes(data))
        return attrs.evolve(info, position=segment.size)

    def _read_chunk(self, segment: Segment, index: int) -> bytes:
        chunks: list[bytes] = segment.handle
        return chunks[index]

    def _drop_segment(self, segment: Segment) -> None:
        segment.handle = []
