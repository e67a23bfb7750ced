"""The store layer's contract: what the broker may ask of persistence, and nothing more.

Layer: ``amqplite/store`` (pure apart from file I/O; imports ``errors``/``message`` only,
never sockets, trio or ``amqplite.protocol``).  This module is the authoritative
definition of the contract; ``docs/architecture.md`` only sketches it.

Two implementations pass the same contract tests (``tests/store``):

* :class:`MemoryStore` -- for non-durable brokers and tests; "persists" within the process.
* :class:`FileStore` -- append-only segment files plus a topology journal in a data directory.

How the broker uses a store
---------------------------

Topology (durable exchanges, queues, bindings, users, permissions, vhosts) is a set of
records keyed by ``(kind, key)`` where ``kind`` is a short string the broker chooses
(``"exchange"``, ``"queue"``, ``"binding"``, ``"user"``, ``"permission"``, ``"vhost"``) and
``key`` a tuple of strings (``(vhost, name)``, ``(vhost, source, dest, routing_key, args_hash)``...).
The value is any *field value*: ``None``, ``bool``, ``int``, ``float``, ``str``, ``bytes``,
``Decimal``, ``datetime``, and ``list``/``dict[str, ...]`` of those, round-tripped exactly.
``put_record`` replaces, ``delete_record`` removes (missing is fine).

A persistent message routed to durable queues is stored ONCE with ``append(message, queues)``,
which returns a :data:`MessageRef` -- a plain ``int`` that orders messages by append time,
so the recovered per-queue order is the append order.  A requeued message keeps its ref
and therefore its place.  The broker keeps the ref in its queue entry and later calls
``remove(queue, ref)`` (ack, drop, dead-letter, expiry) or ``remove_many`` (purge, delete
queue, multiple ack).  When no queue holds a message any more its space becomes
reclaimable.  ``remove`` must only be called for a (queue, ref) pair the broker got from
``append`` or ``recover`` and has not removed yet: the file store keeps no per-message
index (that is what keeps its memory small) and trusts the caller; the memory store
checks and raises ``KeyError`` so broker tests catch such bugs.

``mark_delivered(queue, ref)`` records that a message went out to a consumer.  Marks are
cheap (buffered, written by ``flush``/``sync``, never fsync'd on their own).  After a
clean ``close()`` every message comes back with its exact ``delivery_count`` and
``redelivered = delivery_count > 0``; after a crash, marks written since the last sync may
be lost, so -- like RabbitMQ after an unclean shutdown -- *every* recovered message is
reported ``redelivered=True``.  That is the cheapest rule that is always correct: a message
delivered twice always carries the flag on the later delivery.

Durability and group commit
---------------------------

``append``/``put_record``/``delete_record`` write through to the OS; ``remove`` and
``mark_delivered`` only buffer.  ``sync()`` makes everything before it durable with one
fsync per dirty file.  ``position`` is a monotonically increasing counter bumped by every
``append``/``put_record``/``delete_record``; remember it after a publish and confirm once
``is_durable(p)`` (``durable_position >= p``).  ``needs_sync`` is true when such a write
has not been synced yet, so a server syncs at the end of every input batch that needs it
and a lone publisher is never kept waiting for a timer.  Removals and delivery marks never
make ``needs_sync`` true (a consumer-only load costs no fsyncs); they ride along with the
next sync, and ``flush()`` (no fsync, one write per segment touched) hands them to the OS
-- call it at the end of every input batch so that a killed process (``kill -9``) loses no
acks; only a power loss can undo acks since the last sync, which redelivers, never loses.
The server should also ``sync()`` now and then (say every second) while acks are pending.

For servers that want to fsync off the event loop, ``sync()`` is split into
``prepare_sync()`` (event-loop thread) -> ``SyncPoint.fsync()`` (any thread) ->
``complete_sync(point)`` (event-loop thread), with at most one sync in flight; writes may
continue meanwhile (they belong to the next sync).  ``prepare_sync`` is also where the file
store compacts at most one mostly-dead segment (a few ms for 8 MiB segments).

Errors: a failed message write raises :class:`StoreWriteError` and leaves the store
consistent (the torn bytes are truncated away, nothing is counted as stored, later writes
work once space returns); the message was *not* stored and must not be confirmed.
A failed fsync raises :class:`StoreSyncError`: the server must stop, since it can no longer
vouch for anything written.  Two stores on one data directory: :class:`StoreLockedError`.

Lazy bodies
-----------

Refs stay valid for as long as the message is held, even if the file store's compaction
moves the message (it forwards the old ref); after a restart the recovered refs are the
ones to use.

``read_message(ref)`` reads a message back from the store, so a broker may keep only
``ref`` (plus whatever it needs for routing decisions) in memory for long queues and call
``recover(load_bodies=False)`` at startup.  ``read_message`` returns a fresh ``Message``
each time (with a fresh ``Message.id``); the ref is the stable identity.  The file store
itself keeps nothing per queued message, so the cost per message is what the broker keeps:
a ref is an ``int`` of 32 bytes (shared by every queue holding the message) plus a list slot.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import attrs

from amqplite.message import BasicProperties, Message

if TYPE_CHECKING:
    from amqplite.store.streamlog import StreamLog

#: A queue as the store sees it: ``(vhost, queue_name)``.
QueueKey = tuple[str, str]

#: Where a stored message lives; ints order messages by append time.
MessageRef = int

#: A topology record's identity: ``(kind, key)``.
RecordId = tuple[str, tuple[str, ...]]


class StoreError(Exception):
    """Base class of everything the store raises on purpose."""


class StoreLockedError(StoreError):
    """Another store (usually another broker process) holds the data directory."""


class StoreWriteError(StoreError):
    """A write failed (disk full, I/O error).  Nothing of it counts as stored."""


class StoreSyncError(StoreError):
    """fsync failed.  Fatal: data written before may or may not be on disk."""


class StoreCorruptError(StoreError):
    """A record read back on demand (``read_message``) fails its checksum."""


@attrs.define(slots=True)
class RecoveredMessage:
    """One message in one queue, as found at startup.

    ``message`` is ``None`` when recovering with ``load_bodies=False``; use
    ``Store.read_message(ref)`` when it is needed.  A store that can say what the broker
    needs of a message without reading it whole (its body size and properties: enough for
    TTL, priority and queue lengths) fills ``size`` and ``properties``, so the body can stay
    on disk until delivery.  (Not frozen only because recovery makes a million of these and
    a frozen class's ``__init__`` costs twice as much; nothing changes one after recovery.)
    """

    ref: MessageRef
    message: Message | None
    delivery_count: int
    redelivered: bool
    #: When the broker enqueued it (the ``timestamp`` given to ``append``), or None.
    timestamp: float | None = None
    #: Body bytes, when ``message`` is None and the store knows it (else -1).
    size: int = -1
    #: The message's properties, when ``message`` is None and the store knows them.
    properties: BasicProperties | None = None


@attrs.frozen(slots=True)
class RecoveredState:
    """What a (re)started broker rebuilds itself from."""

    #: Durable topology: ``{(kind, key): value}``.
    records: dict[RecordId, Any]
    #: Per-queue messages in queue order.  Queues without messages are absent.
    queues: dict[QueueKey, list[RecoveredMessage]]
    #: True when the store was closed cleanly last time (delivery marks are exact).
    clean_shutdown: bool
    #: Damaged regions skipped during recovery and the bytes they covered.
    discarded_records: int = 0
    discarded_bytes: int = 0


class SyncPoint(Protocol):
    """A sync in progress: ``fsync()`` may run in a worker thread."""

    position: int

    def fsync(self) -> None: ...


class Store(Protocol):
    """The narrow interface the broker programs against."""

    def recover(self, *, load_bodies: bool = True) -> RecoveredState:
        """The durable state at open time.  Call once, before any write."""
        ...

    # -- topology -------------------------------------------------------------
    def put_record(self, kind: str, key: tuple[str, ...], value: Any) -> None: ...

    def delete_record(self, kind: str, key: tuple[str, ...]) -> None: ...

    # -- messages -------------------------------------------------------------
    def append(
        self, message: Message, queues: Sequence[QueueKey], timestamp: float | None = None
    ) -> MessageRef:
        """Store ``message`` once, enqueued in every queue of ``queues`` (non-empty).

        ``timestamp`` (wall-clock seconds, optional) comes back in ``RecoveredMessage``:
        the broker passes the enqueue time so TTLs run from it across restarts.
        """
        ...

    def remove(self, queue: QueueKey, ref: MessageRef) -> None: ...

    def remove_many(self, queue: QueueKey, refs: Iterable[MessageRef]) -> None: ...

    def mark_delivered(self, queue: QueueKey, ref: MessageRef) -> None: ...

    def read_message(self, ref: MessageRef) -> Message: ...

    # -- durability -----------------------------------------------------------
    @property
    def position(self) -> int: ...

    @property
    def durable_position(self) -> int: ...

    @property
    def needs_sync(self) -> bool: ...

    def is_durable(self, position: int) -> bool: ...

    def sync(self) -> None: ...

    def flush(self) -> None:
        """Hand buffered removal/delivery marks to the OS without fsync (cheap; call per batch)."""
        ...

    def prepare_sync(self) -> SyncPoint: ...

    def complete_sync(self, point: SyncPoint) -> None: ...

    def free_bytes(self) -> int | None:
        """Free space for the data directory in bytes (``None``: not applicable)."""
        ...

    # -- stream logs (contract: amqplite.store.streamlog) -------------------------
    def stream_log(
        self, queue: QueueKey, max_segment_bytes: int, segment_max_age: float | None
    ) -> StreamLog:
        """The append-only log of stream queue ``queue`` (created on first use).

        Its appends count in ``position`` and are fsynced by ``sync()``, so a publisher
        confirm waits for them exactly as for stored messages.
        """
        ...

    def delete_stream_log(self, queue: QueueKey) -> None:
        """Delete the log of ``queue`` and its files (missing is fine)."""

    @property
    def bytes_written(self) -> int:
        """Bytes of records handed to the OS since open (monotonic): the disk alarm
        subtracts what was written since its last look at ``free_bytes``."""
        ...

    def close(self) -> None: ...


from amqplite.store.filestore import FileStore  # noqa: E402 - needs the types above
from amqplite.store.memory import MemoryStore  # noqa: E402


def open_store(data_dir: str | None, **options: Any) -> Store:
    """A :class:`FileStore` on ``data_dir``, or a :class:`MemoryStore` when it is ``None``."""
    if data_dir is None:
        return MemoryStore()
    return FileStore.open(data_dir, **options)


__all__ = [
    "FileStore",
    "MemoryStore",
    "MessageRef",
    "QueueKey",
    "RecordId",
    "RecoveredMessage",
    "RecoveredState",
    "Store",
    "StoreCorruptError",
    "StoreError",
    "StoreLockedError",
    "StoreSyncError",
    "StoreWriteError",
    "SyncPoint",
    "open_store",
]
