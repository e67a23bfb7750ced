"""MemoryStore: the store contract kept in process memory, for non-durable brokers and tests.

Layer: ``amqplite/store``.  It behaves like a file store whose disk is a Python object:
writes go to a pending journal, ``sync()`` applies the journal to the "durable" state, and
``recover()`` simulates a restart -- everything not synced is forgotten, and unless
``close()`` ran first every recovered message is reported redelivered, exactly as the file
store does after a crash.  Topology values go through the store codec so that a value the
file store could not persist fails here too.  Unlike the file store it checks that removes
name a (queue, ref) it holds, raising ``KeyError``, so broker bugs surface in tests.
"""

from __future__ import annotations

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
    StoreError,
    SyncPoint,
)
from amqplite.store.codec import decode_value, encode_value
from amqplite.store.positions import SyncPositions
from amqplite.store.streamlog import MemoryStreamLog


@attrs.define(eq=False)
class _State:
    records: dict[RecordId, bytes] = attrs.Factory(dict)
    messages: dict[MessageRef, Message] = attrs.Factory(dict)
    holders: dict[MessageRef, int] = attrs.Factory(dict)
    timestamps: dict[MessageRef, float] = attrs.Factory(dict)
    #: queue -> {ref: delivery_count}, in ref order
    queues: dict[QueueKey, dict[MessageRef, int]] = attrs.Factory(dict)

    def copy(self) -> _State:
        return _State(
            dict(self.records),
            dict(self.messages),
            dict(self.holders),
            dict(self.timestamps),
            {queue: dict(entries) for queue, entries in self.queues.items()},
        )

    def apply(self, op: tuple[Any, ...]) -> None:
        kind = op[0]
        if kind == "append":
            _, ref, message, queues, timestamp = op
            self.messages[ref] = message
            if timestamp is not None:
                self.timestamps[ref] = timestamp
            self.holders[ref] = len(queues)
            for queue in queues:
                self.queues.setdefault(queue, {})[ref] = 0
        elif kind == "remove":
            _, queue, ref = op
            entries = self.queues.get(queue)
            if entries is None or entries.pop(ref, None) is None:
                raise KeyError(f"message {ref} is not in queue {queue!r}")
            if not entries:
                del self.queues[queue]
            left = self.holders[ref] - 1
            if left:
                self.holders[ref] = left
            else:
                del self.holders[ref]
                del self.messages[ref]
                self.timestamps.pop(ref, None)
        elif kind == "delivered":
            _, queue, ref = op
            entries = self.queues.get(queue)
            if entries is None or ref not in entries:
                raise KeyError(f"message {ref} is not in queue {queue!r}")
            entries[ref] += 1
        elif kind == "put":
            self.records[op[1]] = op[2]
        elif kind == "delete":
            self.records.pop(op[1], None)


@attrs.define(eq=False)
class _MemorySyncPoint:
    position: int
    ops: list[tuple[Any, ...]]

    def fsync(self) -> None:
        """Nothing to flush: the "disk" is the durable state object."""


class MemoryStore(SyncPositions):
    """The store contract in memory (see :mod:`amqplite.store`)."""

    __slots__ = (
        "_clean",
        "_durable",
        "_live",
        "_next_ref",
        "_ops",
        "_stream_logs",
    )

    def __init__(self) -> None:
        self._live = _State()
        self._durable = _State()
        self._ops: list[tuple[Any, ...]] = []
        SyncPositions.__init__(self)
        self._next_ref = 1
        self._clean = False
        #: Stream logs live as long as the store (a simulated restart keeps them).
        self._stream_logs: dict[QueueKey, MemoryStreamLog] = {}

    # -- recovery -------------------------------------------------------------
    def recover(self, *, load_bodies: bool = True) -> RecoveredState:
        """Simulate a restart: drop unsynced writes and return the durable state."""
        self._ops = []
        self._position = self._durable_position
        self._live = self._durable.copy()
        clean, self._clean = self._clean, False
        state = self._live
        queues = {
            queue: [
                RecoveredMessage(
                    ref,
                    state.messages[ref] if load_bodies else None,
                    count,
                    count > 0 or not clean,
                    state.timestamps.get(ref),
                )
                for ref, count in sorted(entries.items())
            ]
            for queue, entries in state.queues.items()
        }
        records = {rid: decode_value(data, 0)[0] for rid, data in state.records.items()}
        return RecoveredState(records, queues, clean)

    # -- topology -------------------------------------------------------------
    def put_record(self, kind: str, key: tuple[str, ...], value: Any) -> None:
        out = bytearray()
        encode_value(value, out)
        self._do(("put", (kind, tuple(key)), bytes(out)))

    def delete_record(self, kind: str, key: tuple[str, ...]) -> None:
        self._do(("delete", (kind, tuple(key))))

    # -- messages -------------------------------------------------------------
    def append(
        self, message: Message, queues: Sequence[QueueKey], timestamp: float | None = None
    ) -> MessageRef:
        if not queues:
            raise ValueError("a stored message must be enqueued in at least one queue")
        if len(set(queues)) != len(queues):
            raise ValueError("a message is enqueued at most once per queue")
        ref = self._next_ref
        self._next_ref += 1
        self._do(("append", ref, message, tuple(queues), timestamp))
        return ref

    def remove(self, queue: QueueKey, ref: MessageRef) -> None:
        self._do(("remove", queue, ref))

    def remove_many(self, queue: QueueKey, refs: Iterable[MessageRef]) -> None:
        for ref in refs:
            self._do(("remove", queue, ref))

    def mark_delivered(self, queue: QueueKey, ref: MessageRef) -> None:
        self._do(("delivered", queue, ref))

    def read_message(self, ref: MessageRef) -> Message:
        try:
            return self._live.messages[ref]
        except KeyError:
            raise StoreError(f"no stored message {ref}") from None

    def _do(self, op: tuple[Any, ...]) -> None:
        self._live.apply(op)  # raises before journaling if the op is invalid
        self._ops.append(op)
        if op[0] not in ("remove", "delivered"):  # marks never hold up a confirm
            self._position += 1

    # -- durability -----------------------------------------------------------
    def flush(self) -> None:
        """Write buffered stream chunks; marks become "durable" at the next sync."""
        for stream_log in self._stream_logs.values():
            stream_log.flush()

    def prepare_sync(self) -> _MemorySyncPoint:
        self.flush()
        point = _MemorySyncPoint(self._position, self._ops)
        self._ops = []
        return point

    def complete_sync(self, point: SyncPoint) -> None:
        assert isinstance(point, _MemorySyncPoint)
        for op in point.ops:
            self._durable.apply(op)
        self._durable_position = max(self._durable_position, point.position)

    def sync(self) -> None:
        point = self.prepare_sync()
        point.fsync()
        self.complete_sync(point)

    def free_bytes(self) -> int | None:
        return None

    # -- stream logs ----------------------------------------------------------
    def stream_log(
        self, queue: QueueKey, max_segment_bytes: int, segment_max_age: float | None
    ) -> MemoryStreamLog:
        found = self._stream_logs.get(queue)
        if found is None:
            found = self._stream_logs[queue] = MemoryStreamLog(
                max_segment_bytes, segment_max_age, sink=self
            )
        found.max_segment_bytes = max_segment_bytes
        found.segment_max_age = segment_max_age
        return found

    def delete_stream_log(self, queue: QueueKey) -> None:
        found = self._stream_logs.pop(queue, None)
        if found is not None:
            found.delete()

    def stream_buffered(self, log: Any) -> int:
        self._position += 1
        return self._position

    def stream_wrote(self, file: Any, nbytes: int) -> None:
        pass

    def stream_dir_changed(self, path: str) -> None:
        pass

    def stream_close(self, file: Any) -> None:
        pass

    def stream_tracking_changed(self, log: Any) -> None:
        pass

    @property
    def bytes_written(self) -> int:
        return 0  # nothing reaches a disk

    def close(self) -> None:
        self.sync()
        self._clean = True
