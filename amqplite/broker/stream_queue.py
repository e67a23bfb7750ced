"""Stream queues: an append-only log read by independent cursors (broker layer).

A :class:`StreamQueue` sits in ``vhost.queues`` beside classic queues and answers the same
calls from channels and the vhost (publish, add/remove consumer, dispatch, settle, requeue,
reject), with stream meaning:

* **publish** appends to the queue's :class:`~amqplite.store.streamlog.StreamLog` (buffered
  into one chunk per input batch; the store writes it at its next flush and fsyncs it with
  the group commit, so a confirm means the message is on disk).  The stored message already
  carries its ``x-stream-offset`` header, so every delivery of it is the same bytes.
* **consumers** are readers: each has a cursor (next offset), its own prefetch credit and
  optional exact filters.  Dispatch reads whole chunks from the log (decoded chunks are
  shared between readers through the log's small cache) and delivers up to the credit;
  a reader at the end waits for the next publish.  Work per dispatch is bounded by the
  credit, so a consumer replaying history never holds up the event loop for long.
* **acks, nacks and rejects** only return credit; nothing is removed, requeued or
  dead-lettered, and ``redelivered`` is always false.  With ``x-stream-tracking-key`` a
  reader records, in the log, the offset below which every delivery was acked.
* **retention**: on every new segment and at the deadline the broker's heap keeps for the
  queue (segment roll by age, oldest segment's expiry), whole sealed segments are removed.

RabbitMQ's refusals (prefetch required, no ``no_ack``, no ``basic.get``/``queue.purge``)
are raised here with RabbitMQ's codes and texts.
"""

from __future__ import annotations

import logging
import struct
from collections import deque
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Protocol

import attrs

from amqplite.broker.queue import QueueStats
from amqplite.broker.stream_args import ConsumerSpec, StreamArgs, parse_consumer_args
from amqplite.errors import not_implemented, precondition_failed
from amqplite.message import BasicProperties, FieldTable, Message, MessageRun, with_stream_offset
from amqplite.store import StoreWriteError
from amqplite.store.streamchunks import filter_value
from amqplite.store.streamlog import ChunkMessages, MemoryStreamLog, StreamLog, StreamRecord

if TYPE_CHECKING:
    from amqplite.broker.consumer import Consumer
    from amqplite.broker.exchange import Binding
    from amqplite.broker.vhost import VHost

log = logging.getLogger(__name__)

#: A run of repeated publishes is made into stored messages this many at a time (a full
#: chunk buffer takes fewer; the rest are made again with their new offsets).
RUN_STEP = 256
#: The ``x-stream-offset`` value as the wire encodes it (a signed 64-bit long).
_OFFSET = struct.Struct(">q")

#: Messages a dispatch may skip (filtered out) for one reader before yielding to others.
SCAN_LIMIT = 20_000
#: Messages, and bytes of bodies, one dispatch delivers to one reader before it yields the
#: event loop (the rest of its credit follows from the broker's ticker, after other
#: connections had a turn): a catch-up reader with a large prefetch never holds the loop
#: for more than a few ms. The count lets small messages go a prefetch of 1,000 at a time
#: (256 made a 16 B catch-up read 1.4x slower: the broker idled between steps); the bytes
#: keep larger ones at about 256 KiB a step, as before. The byte budget is checked between
#: chunk slices, so a step may pass it by one slice.
DELIVER_LIMIT = 1024
DELIVER_BYTES = 256 * 1024


@attrs.frozen
class StreamInfo:
    """A stream's state for the HTTP API, metrics and the CLI (no disk read)."""

    first_offset: int | None
    last_offset: int | None
    first_timestamp: float | None
    last_timestamp: float | None
    segments: int
    bytes: int
    messages: int
    consumers: int
    tracking: dict[str, int]


class StreamRun:
    """What a channel holds, until the acks, for a run of deliveries of one reader that
    keeps no tracking key: one object for the whole run (acking needs no offset)."""

    __slots__ = ("reader",)

    redelivered = False
    ref = None
    deliveries = 0

    def __init__(self, reader: Reader) -> None:
        self.reader = reader


class StreamEntry:
    """One delivery of a stream message to a tracking reader (what a channel holds until
    the ack: acking it may move the reader's tracked offset)."""

    __slots__ = ("offset", "reader")

    redelivered = False
    ref = None
    deliveries = 0

    def __init__(self, offset: int, reader: Reader) -> None:
        self.offset = offset
        self.reader = reader


class Reader:
    """A consumer's cursor: the next offset to read, its filter and tracking state."""

    __slots__ = (
        "acked",
        "chunk",
        "consumer",
        "key",
        "next_offset",
        "outstanding",
        "spec",
    )

    def __init__(self, consumer: Consumer, spec: ConsumerSpec, next_offset: int) -> None:
        self.consumer = consumer
        self.spec = spec
        self.key = spec.tracking_key
        self.next_offset = next_offset
        #: delivered and not yet acked offsets, in delivery order (tracking readers only)
        self.outstanding: deque[int] = deque()
        self.acked: set[int] = set()
        #: The decoded chunk the cursor is in (a catch-up reader acking one at a time then
        #: costs no log lookup per ack).
        self.chunk: ChunkMessages | None = None

    def window(self, log: StreamLog) -> ChunkMessages | None:
        """The decoded chunk holding the cursor (None: below the first kept offset)."""
        chunk = self.chunk
        offset = self.next_offset
        if chunk is None or not 0 <= offset - chunk.first < len(chunk.messages.bodies):
            chunk = self.chunk = log.chunk_at(offset)
        return chunk

    def matches(self, value: str | None) -> bool:
        """Whether a message with filter value ``value`` passes this reader's filter."""
        filters = self.spec.filters
        if filters is None:
            return True
        if value is None:
            return self.spec.match_unfiltered
        return value in filters

    def committed(self) -> int:
        """The offset below which everything this reader was given has been acked."""
        return self.outstanding[0] if self.outstanding else self.next_offset


class StreamQueue:
    """A stream queue entity (see the module docstring)."""

    queue_type = "stream"
    durable = True
    exclusive = False
    auto_delete = False
    owner = None
    consumer_timeout = None
    active_consumer = None  # every reader is active: no single-active-consumer
    counts_deliveries = 0
    #: Not in the message store (a stream keeps its own log).
    persistent = False

    def __init__(self, vhost: VHost, name: str, arguments: FieldTable, args: StreamArgs) -> None:
        self.vhost = vhost
        self.name = name
        self.key = (vhost.name, name)
        self.arguments = dict(arguments)
        self.args = args
        self.stats = QueueStats()
        self.bindings: dict[Binding, None] = {}
        self.consumers: list[Consumer] = []
        self.readers: dict[Consumer, Reader] = {}
        self.deleted = False
        self.had_consumer = False
        self.unacked_count = 0
        broker = vhost.broker
        self._broker = broker
        self._clock = broker.clock
        self._bstats = broker.stats
        self._store = broker.store
        self.last_used = self._clock()
        #: The broker's deadline heap bookkeeping (see Broker.schedule).
        self.due: float | None = None
        self.due_seq = 0
        self._busy = False
        self._segments_seen = 0
        self.log: StreamLog
        if broker.store is not None:
            self.log = broker.store.stream_log(
                self.key, args.max_segment_size_bytes, args.segment_max_age
            )
        else:
            self.log = MemoryStreamLog(args.max_segment_size_bytes, args.segment_max_age)
        self._segments_seen = self.log.segment_count

    def __repr__(self) -> str:
        return f"<StreamQueue {self.name!r} in {self.vhost.name!r}>"

    # -- inspection (the interface in docs/streams.md) ------------------------------------

    @property
    def message_count(self) -> int:
        return self.log.next_offset - self.log.first_offset

    @property
    def message_bytes(self) -> int:
        return self.log.size_bytes

    @property
    def consumer_count(self) -> int:
        return len(self.consumers)

    def info(self) -> StreamInfo:
        log_ = self.log
        empty = log_.next_offset == log_.first_offset
        return StreamInfo(
            first_offset=None if empty else log_.first_offset,
            last_offset=None if empty else log_.next_offset - 1,
            first_timestamp=log_.first_timestamp,
            last_timestamp=log_.last_timestamp,
            segments=log_.segment_count,
            bytes=log_.size_bytes,
            messages=self.message_count,
            consumers=len(self.consumers),
            tracking=log_.tracking(),
        )

    def offset_at(self, timestamp: float) -> int | None:
        """The first offset stored at or after ``timestamp`` (None: none yet)."""
        offset = self.log.offset_at(timestamp)
        return offset if offset < self.log.next_offset else None

    def read(self, offset: int, max_messages: int) -> list[StreamRecord]:
        """Messages from ``offset`` for tools (reads disk; not the delivery path), each with
        its properties as delivered (``x-stream-offset`` header included)."""
        wire = self._broker.stream_wire
        out = []
        for record in self.log.read(offset, max_messages, cache=False):
            message = record.message
            if wire is not None and message.raw_properties is not None:
                message = Message(
                    message.exchange,
                    message.routing_key,
                    wire.decode(message.raw_properties),
                    message.body,
                    message.raw_properties,
                )
            out.append(attrs.evolve(record, message=message))
        return out

    def browse(self) -> Iterator[Any]:
        """Streams have no ready entries to browse (read them by offset instead)."""
        return iter(())

    def remove_messages(self, ids: Any) -> int:
        return 0

    # -- publishing ----------------------------------------------------------------------

    def publish(self, message: Message, now: float, ref: Any = None) -> bool:
        """Append ``message``; False (nack) if the log cannot take it (disk full)."""
        log_ = self.log
        offset = log_.next_offset
        wire = self._broker.stream_wire
        if wire is not None:
            # The header goes into the wire bytes once; they are stored and delivered as is.
            stored = Message(
                message.exchange,
                message.routing_key,
                message.properties,
                message.body,
                wire.with_offset(message, offset),
            )
        else:
            stored = Message(
                message.exchange,
                message.routing_key,
                with_stream_offset(message.properties, offset),
                message.body,
            )
        try:
            log_.add(now, stored)
        except StoreWriteError as exc:
            self.stats.rejected_publishes += 1
            self._broker.store_write_failed(exc)
            return False
        if self._store is None:
            log_.flush()
        self.stats.published += 1
        if log_.segment_count != self._segments_seen:
            self._retain(now)
        if self.due is None and self.args.max_age is not None:
            self._broker.watch_queue(self)  # type: ignore[arg-type]
        if self.readers:
            if self._broker.batching:
                # The live tail: readers get this input buffer's messages in one run
                # each, at the end of the buffer (see Broker.begin_batch).
                self._broker.defer_dispatch(self)
            else:
                self._deliver_new(stored, offset)
        return True

    def publish_repeated(self, message: Message, bodies: list[bytes], now: float) -> list[int]:
        """Append messages like ``message`` with these bodies (a run of publishes repeating
        its exchange, routing key and properties), each with its own offset; the
        ``x-stream-offset`` splice is worked out once for the run.  The indices of those
        the log could not take (disk full: nack them)."""
        log_ = self.log
        rejected: list[int] = []
        added: list[Message] = []
        i = 0
        while i < len(bodies):
            # Offsets are given as the messages are made: a refused one takes none.
            batch = self._stored_run(message, bodies[i : i + RUN_STEP], log_.next_offset)
            try:
                count = log_.add_many(now, batch)
            except StoreWriteError as exc:
                self.stats.rejected_publishes += 1
                self._broker.store_write_failed(exc)
                rejected.append(i)
                i += 1
                continue
            if self.readers:
                added.extend(batch[:count])
            i += count
        if self._store is None:
            log_.flush()
        self.stats.published += len(bodies) - len(rejected)
        if log_.segment_count != self._segments_seen:
            self._retain(now)
        if self.due is None and self.args.max_age is not None:
            self._broker.watch_queue(self)  # type: ignore[arg-type]
        if added:
            if self._broker.batching:
                self._broker.defer_dispatch(self)  # the live tail: one run at the buffer's end
                return rejected
            first = log_.next_offset - len(added)
            for k, stored in enumerate(added):
                self._deliver_new(stored, first + k)
                if self.deleted:
                    break
        return rejected

    def _stored_run(self, message: Message, bodies: list[bytes], offset: int) -> list[Message]:
        """Messages as stored (``x-stream-offset`` header from ``offset`` on) for a run
        like ``message`` with these bodies."""
        exchange, routing_key, properties = (
            message.exchange,
            message.routing_key,
            message.properties,
        )
        wire = self._broker.stream_wire
        if wire is None:
            return [
                Message(exchange, routing_key, with_stream_offset(properties, offset + i), body)
                for i, body in enumerate(bodies)
            ]
        parts = wire.offset_parts(message)
        if parts is None:
            return [
                Message(
                    exchange, routing_key, properties, body, wire.with_offset(message, offset + i)
                )
                for i, body in enumerate(bodies)
            ]
        head, tail = parts
        pack = _OFFSET.pack
        return [
            Message(exchange, routing_key, properties, body, head + pack(offset + i) + tail)
            for i, body in enumerate(bodies)
        ]

    def _deliver_new(self, stored: Message, offset: int) -> None:
        """The live tail: readers waiting at ``offset`` get the new message as it is (no
        log read); others catch up through :meth:`dispatch`."""
        if self._busy:
            return
        behind = False
        for reader in tuple(self.readers.values()):
            if reader.next_offset != offset:
                behind = behind or reader.next_offset < offset
                continue
            consumer = reader.consumer
            if not consumer.can_take():
                continue
            reader.next_offset = offset + 1
            spec = reader.spec
            if spec.filters is not None:
                value = filter_value(stored)
                if not (value in spec.filters if value is not None else spec.match_unfiltered):
                    continue
            entry: Any = StreamRun(reader)
            if reader.key is not None:
                reader.outstanding.append(offset)
                entry = [StreamEntry(offset, reader)]
            as_queue: Any = self
            consumer.channel.deliver_batch(consumer, as_queue, MessageRun.of((stored,)), entry)
            if self.deleted:
                return
        if behind:
            self.dispatch()

    # -- consumers -----------------------------------------------------------------------

    def _where(self) -> str:
        return f"queue '{self.name}' in vhost '{self.vhost.name}'"

    def add_consumer(self, consumer: Consumer) -> None:
        """Attach a reader; RabbitMQ's refusals for stream consumers."""
        if not consumer.prefetch:
            raise precondition_failed(f"consumer prefetch count is not set for '{self._where()}'")
        if consumer.no_ack:
            raise not_implemented(
                f"automatic acknowledgement not supported by stream queues {self._where()}"
            )
        now = self._clock()
        spec = parse_consumer_args(consumer.arguments, now, self.name, self.vhost.name)
        reader = Reader(consumer, spec, self._start_offset(spec))
        self.consumers.append(consumer)
        self.readers[consumer] = reader
        self.had_consumer = True

    def _start_offset(self, spec: ConsumerSpec) -> int:
        log_ = self.log
        if spec.tracking_key is not None:
            tracked = log_.tracking().get(spec.tracking_key)
            if tracked is not None:
                return max(tracked, log_.first_offset)
        start = spec.start
        if start.kind == "first":
            return log_.first_offset
        if start.kind == "last":
            last = log_.last_chunk_offset
            return last if last is not None else log_.next_offset
        if start.kind == "offset":
            return max(start.offset, log_.first_offset)
        if start.kind == "time":
            return log_.offset_at(start.timestamp)
        return log_.next_offset

    def remove_consumer(self, consumer: Consumer) -> bool:
        """Detach ``consumer`` (streams are never auto-deleted)."""
        if self.readers.pop(consumer, None) is None:
            return False
        self.consumers.remove(consumer)
        if not self.consumers:
            self.last_used = self._clock()
        return False

    def drop_consumers(self) -> list[Consumer]:
        """The stream is being deleted: detach every reader and return their consumers."""
        consumers = self.consumers
        self.consumers = []
        self.readers.clear()
        return consumers

    def mark_delivered(self, entry: Any) -> None:
        """Stream deliveries are not recorded (they are never redelivered)."""

    def dispatch(self) -> None:
        """Give each reader what its credit allows, from its cursor (at the end of the
        server's input batch when one is being handled: see ``Broker.begin_batch``)."""
        if self._busy or self.deleted or not self.readers:
            return
        if self._broker.batching:
            self._broker.defer_dispatch(self)
            return
        self._busy = True
        try:
            for reader in list(self.readers.values()):
                self._feed(reader)
                if self.deleted:
                    break
        finally:
            self._busy = False

    def _feed(self, reader: Reader) -> None:
        """Deliver from ``reader``'s cursor up to its credit, a run per chunk slice."""
        consumer = reader.consumer
        channel = consumer.channel
        log_ = self.log
        as_queue: Any = self  # channels take any queue-like entity
        readers = self.readers
        key = reader.key
        run: Any = StreamRun(reader) if key is None else None
        scanned = delivered = delivered_bytes = 0
        while reader.next_offset < log_.next_offset:
            credit = consumer.credit()
            if not credit:
                return
            if (
                delivered >= DELIVER_LIMIT
                or delivered_bytes >= DELIVER_BYTES
                or scanned >= SCAN_LIMIT
            ):
                # Yield the event loop; the ticker goes on with the rest.
                self._broker.schedule(self, self._clock())  # type: ignore[arg-type]
                return
            chunk = reader.window(log_)
            if chunk is None:
                # Below the first kept offset after retention: move up.
                if reader.next_offset >= log_.first_offset:
                    return
                reader.next_offset = log_.first_offset
                continue
            first, messages, filters, _stamps = chunk
            i = reader.next_offset - first
            room = min(credit, DELIVER_LIMIT - delivered)
            offsets: list[int] | None = None
            if reader.spec.filters is None:
                end = min(len(messages.bodies), i + room)
                batch = messages.slice(i, end)
                count = end - i
            else:
                # Exact filtering: pick the matching messages, at most SCAN_LIMIT looked at.
                picked: list[int] = []
                matches = reader.matches
                end = min(len(messages.bodies), i + SCAN_LIMIT - scanned)
                while i < end:
                    if matches(filters[i]):
                        picked.append(i)
                        if len(picked) >= room:
                            i += 1
                            break
                    i += 1
                end = i
                i = reader.next_offset - first
                batch = messages.pick(picked)
                offsets = [first + k for k in picked]
                count = len(picked)
            scanned += end - i
            if not count:
                reader.next_offset = first + end
                continue
            if key is None:
                entries = run
            else:
                if offsets is None:
                    offsets = list(range(first + i, first + end))
                entries = [StreamEntry(offset, reader) for offset in offsets]
            sent = channel.deliver_batch(consumer, as_queue, batch, entries)
            if sent < count:
                # The connection's output is full: go on from the first one not sent.
                reader.next_offset = first + i + sent if offsets is None else offsets[sent]
            else:
                reader.next_offset = first + end
            if key is not None:
                reader.outstanding.extend(offsets[:sent])  # type: ignore[index]
            delivered += sent
            delivered_bytes += sum(map(len, batch.bodies[:sent]))
            if sent < count or readers.get(consumer) is not reader:
                return

    # -- settling (credit only) ---------------------------------------------------------

    def settle(self, entry: StreamEntry) -> None:
        """An ack: nothing leaves the stream; a tracking reader may move its mark."""
        self.stats.acked += 1
        self._bstats.acked += 1
        reader = entry.reader
        if reader.key is None or self.deleted:
            return
        outstanding = reader.outstanding
        if outstanding and outstanding[0] == entry.offset:
            outstanding.popleft()
            acked = reader.acked
            while outstanding and outstanding[0] in acked:
                acked.discard(outstanding.popleft())
        else:
            reader.acked.add(entry.offset)
        self.log.set_tracking(reader.key, reader.committed())

    def settle_many(self, entries: list[StreamEntry]) -> None:
        """:meth:`settle` for each of ``entries`` (a run of acks)."""
        for entry in entries:
            self.settle(entry)

    def settle_run(self, entry: StreamRun, count: int) -> None:
        """Acks of ``count`` deliveries of one run (they share ``entry``): only counted."""
        self.stats.acked += count
        self._bstats.acked += count

    def requeue(self, entries: list[Any]) -> None:
        """A nack/reject with requeue, or a closed channel: the credit is back, nothing else."""

    def reject(self, entry: Any, reason: str) -> None:
        """A nack/reject without requeue: nothing is dead-lettered from a stream."""

    def leave(self, entry: Any) -> None:
        """Nothing leaves a stream."""

    def get(self) -> None:
        raise not_implemented(f"basic.get not supported by stream queues {self._where()}")

    def purge(self) -> int:
        """queue.purge is refused; once the queue is deleted this drops its log."""
        if not self.deleted:
            raise not_implemented(f"queue.purge not supported by stream queues {self._where()}")
        self.readers.clear()
        store = self._store
        if store is not None:
            store.delete_stream_log(self.key)
        else:
            self.log.delete()
        return 0

    # -- time and retention ----------------------------------------------------------------

    def _retain(self, now: float) -> None:
        args = self.args
        self.log.retain(now, args.max_age, args.max_length_bytes)
        self._segments_seen = self.log.segment_count

    def expiry_deadline(self) -> float | None:
        return None

    def next_deadline(self) -> float | None:
        """The next segment roll by age or expiry of the oldest segment by x-max-age."""
        log_ = self.log
        deadline = log_.roll_deadline()
        max_age = self.args.max_age
        if max_age is not None:
            oldest = log_.oldest_sealed_timestamp()
            if oldest is not None and (deadline is None or oldest + max_age < deadline):
                deadline = oldest + max_age
        return deadline

    def expire_due(self, now: float) -> None:
        """Roll an old active segment, apply retention, and go on with a long filter scan."""
        self.log.tick(now)
        self._retain(now)
        if self.readers:
            self.dispatch()


class StreamWire(Protocol):
    """What the protocol layer lends the core for streams (see protocol.properties)."""

    def with_offset(self, message: Message, offset: int) -> bytes: ...

    def offset_parts(self, message: Message) -> tuple[bytes, bytes] | None: ...

    def decode(self, raw: bytes) -> BasicProperties: ...


def is_stream_declaration(arguments: FieldTable) -> bool:
    """Whether a queue.declare's arguments ask for a stream queue."""
    kind = arguments.get("x-queue-type") if arguments else None
    return kind == "stream" or kind == b"stream"


def is_stream(queue: object) -> bool:
    """Whether ``queue`` (from ``vhost.queues``) is a stream queue."""
    return type(queue) is StreamQueue
