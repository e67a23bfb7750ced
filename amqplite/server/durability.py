"""Group commit: one fsync (off the event loop) covers every connection's pending writes.

Server layer.  A connection whose input batch wrote persistent messages must not confirm
them before the store has synced.  Instead of one fsync per connection, every waiter
remembers the store ``position`` of its writes and :meth:`GroupCommit.wait_durable`
returns as soon as a sync covering that position is done; at most one sync is in flight
(the store's ``prepare_sync`` → ``SyncPoint.fsync`` in a worker thread →
``complete_sync`` protocol), and writes made meanwhile ride along with the next one.

Also runs the store's housekeeping: ``flush`` after each batch (so a killed process
loses no acks) and a periodic sync while removals may be pending.

:class:`ConfirmPipeline` lets a connection's reader go on reading while a sync is in
flight: each batch's confirms wait in order for the sync covering that batch, and the
reader stops only once too much unsynced input is waiting (flow control).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Generic, TypeVar

import trio

from amqplite.store import StoreSyncError

if TYPE_CHECKING:
    from amqplite.store import Store, SyncPoint

log = logging.getLogger(__name__)

#: How often removals and delivery marks (which never request a sync) are made durable.
PERIODIC_SYNC_SECONDS = 1.0
#: A connection stops reading once this much input (bytes) or this many batches wait for
#: a sync before their confirms: a fast publisher cannot outgrow the disk in memory.
UNSYNCED_BYTES_MAX = 4 << 20
UNSYNCED_BATCHES_MAX = 64


def _fsync(point: SyncPoint) -> None:
    point.fsync()


class GroupCommit:
    """Serialises syncs of one store and lets many waiters share each of them."""

    __slots__ = ("_lock", "_synced", "failure", "fsync", "on_failure", "store")

    def __init__(self, store: Store, fsync: Callable[[SyncPoint], None] = _fsync) -> None:
        self.store = store
        #: Runs ``point.fsync()`` in a worker thread (a test may slow it down here).
        self.fsync = fsync
        self._lock = trio.Lock()
        #: Set (and replaced) after each sync: waiters whose writes it did not cover look again.
        self._synced = trio.Event()
        #: The fsync failure after which nothing is ever confirmed again.
        self.failure: StoreSyncError | None = None
        #: Told about that failure (the server's StoreGuard stops the broker).
        self.on_failure: Callable[[StoreSyncError], None] | None = None

    async def wait_durable(self, position: int | None = None) -> None:
        """Return once everything written up to ``position`` (default: now) is synced.

        A sync may cover less than asked: a stream chunk whose write failed (disk full)
        stays buffered and holds the durable position below it.  Its publishers then wait
        (their connection reads nothing more: they are blocked) until a later sync -- the
        periodic one retries the write -- gets it onto the disk; they are never confirmed
        early.
        """
        store = self.store
        if position is None:
            position = store.position
        async with self._lock:
            # A sync that finished while we queued may already cover us.
            if store.is_durable(position):
                return
            await self._sync()
        # Retries are the periodic sync's (or the next publisher's), not ours: several
        # waiters re-syncing for each other would chain failing writes back to back.
        while not store.is_durable(position):
            await self._synced.wait()

    async def _sync(self) -> None:
        store = self.store
        if self.failure is not None:
            # Never retry a failed fsync (the kernel may have dropped the dirty pages and
            # report success next time) and never let a waiter go on to confirm: wait for
            # the shutdown that the failure started.
            await trio.sleep_forever()
        point = store.prepare_sync()
        # Shielded: abandoning a started fsync would leave the store's one in-flight
        # sync incomplete.
        try:
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(self.fsync, point)
        except StoreSyncError as exc:
            self.failure = exc
            log.critical("store fsync failed: %s", exc)
            if self.on_failure is not None:
                self.on_failure(exc)
            await trio.sleep_forever()
        store.complete_sync(point)
        synced, self._synced = self._synced, trio.Event()
        synced.set()

    async def run_periodic(self) -> None:
        """Sync now and then so acks (removals) become durable without new publishes."""
        while True:
            await trio.sleep(PERIODIC_SYNC_SECONDS)
            async with self._lock:
                await self._sync()


T = TypeVar("T")


class ConfirmPipeline(Generic[T]):
    """One connection's confirms waiting for syncs, emitted in batch order.

    The reader :meth:`add` s each batch's confirms (``T``, opaque here), noting the store
    position its writes reached (none if it wrote nothing durable: then it only must not
    overtake the batches before it), and goes on reading; :meth:`run` awaits the syncs and hands the
    confirms to ``emit`` only once a sync covering them is done, never before.
    """

    __slots__ = ("_commit", "_emit", "_entries", "_more", "_room", "bytes")

    def __init__(self, commit: GroupCommit, emit: Callable[[T], None]) -> None:
        self._commit = commit
        self._emit = emit
        #: (position, input bytes, confirms) per batch, oldest first.
        self._entries: deque[tuple[int | None, int, T]] = deque()
        #: Input bytes of the batches waiting.
        self.bytes = 0
        self._more = trio.Event()
        self._room = trio.Event()

    @property
    def pending(self) -> bool:
        return bool(self._entries)

    @property
    def full(self) -> bool:
        return self.bytes >= UNSYNCED_BYTES_MAX or len(self._entries) >= UNSYNCED_BATCHES_MAX

    def add(self, durable: bool, size: int, confirms: T) -> None:
        """Queue a batch's ``confirms`` (``size``: its input bytes, for the bounds)."""
        position = self._commit.store.position if durable else None
        self._entries.append((position, size, confirms))
        self.bytes += size
        self._more.set()

    async def wait_room(self) -> None:
        """Until the batches waiting are below the bounds again."""
        while self.full:
            await self._room.wait()
            self._room = trio.Event()

    async def run(self) -> None:
        """Emit each batch's confirms once a sync covers it (runs until cancelled)."""
        entries = self._entries
        store = self._commit.store
        while True:
            if not entries:
                await self._more.wait()
                self._more = trio.Event()
                continue
            position = entries[0][0]
            if position is not None:
                await self._commit.wait_durable(position)
            # Every batch the sync covered goes out now, in order.
            while entries and (entries[0][0] is None or store.is_durable(entries[0][0])):
                _, size, confirms = entries.popleft()
                self.bytes -= size
                self._emit(confirms)
            self._room.set()
