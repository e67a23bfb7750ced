"""The store's guard in the server: the disk alarm and the stop on a fatal store failure.

Server layer.  One :class:`StoreGuard` per server with a store, run as a task next to
the listener:

* Disk alarm: every second (and at once after a failed store write, or when the floor
  is changed) it compares ``store.free_bytes()`` with ``disk_free_limit``.  Between those
  looks the bytes the store wrote are subtracted from the last figure (:meth:`note_writes`,
  called by each connection after each batch): once that estimate comes within
  :data:`CHECK_SLACK` of the floor, every batch looks at the disk again, so the alarm
  trips on the batch that crosses the floor, not up to a second later (a confirmed
  publisher filled a 64 MiB disk in 0.6 s, from the floor to 0 bytes free).  Below it,
  publishers are blocked with connection.blocked (``AmqpServer.set_blocked``: clients
  that advertised the capability are told, and the server stops reading from
  connections that publish, as RabbitMQ does; consumers keep going) until space
  returns, then connection.unblocked.  A write that fails anyway is nacked by the broker
  (never confirmed) and the broker keeps serving.
* Fatal failure: when an fsync fails (:class:`~amqplite.store.StoreSyncError`) the
  broker can no longer vouch for anything it wrote, so :meth:`StoreGuard.fail` logs a
  critical error, closes every connection with 541 INTERNAL_ERROR and shuts the server
  down instead of confirming more; ``failure`` tells the caller to exit non-zero.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

import trio

from amqplite.errors import ReplyCode

if TYPE_CHECKING:
    from amqplite.server.listener import AmqpServer
    from amqplite.store import Store, StoreWriteError

log = logging.getLogger(__name__)

#: RabbitMQ's default disk_free_limit (50 MB).
DEFAULT_DISK_FREE_LIMIT = 50_000_000
DISK_CHECK_SECONDS = 1.0
#: Within this many bytes (estimated) of the floor, look at the free space after every batch.
CHECK_SLACK = 8 << 20
DISK_ALARM_REASON = "low on disk"
FATAL_TEXT = "the message store failed; the broker is stopping"


class StoreGuard:
    """The disk alarm and the fatal-failure switch of one server (run :meth:`run`)."""

    def __init__(
        self,
        server: AmqpServer,
        store: Store,
        *,
        disk_free_limit: int = DEFAULT_DISK_FREE_LIMIT,
        interval: float = DISK_CHECK_SECONDS,
        free_bytes: Callable[[], int | None] | None = None,
    ) -> None:
        self.server = server
        self.store = store
        #: Reads the free space (the store's file system unless a test injects one).
        self.free_bytes = free_bytes if free_bytes is not None else store.free_bytes
        #: Free bytes at the last look, and the store's bytes_written then.
        self._free_seen: int | None = None
        self._written_seen = 0
        #: Bytes of free disk below which publishers are blocked; see :meth:`set_disk_free_limit`.
        self.disk_free_limit = disk_free_limit
        self.interval = interval
        #: True while the disk alarm is on.
        self.alarm = False
        #: The failure that stopped the broker, if one did.
        self.failure: BaseException | None = None
        self._wake = trio.Event()

    def poke(self) -> None:
        """Look at the disk now rather than at the next periodic check."""
        self._wake.set()

    def write_failed(self, exc: StoreWriteError) -> None:
        """Broker hook: a store write failed (its publish is nacked); check the disk now."""
        self.poke()

    def set_disk_free_limit(self, limit: int) -> None:
        """Change the floor at run time (operators, tests); takes effect at once."""
        self.disk_free_limit = limit
        self.poke()

    def note_writes(self) -> None:
        """After a batch: if what was written since the last look may have brought the
        free space near the floor, look again now (a statvfs: microseconds)."""
        seen = self._free_seen
        if seen is None or self.alarm:
            return
        estimate = seen - (self.store.bytes_written - self._written_seen)
        if estimate < self.disk_free_limit + CHECK_SLACK:
            self.check_disk()

    def check_disk(self) -> None:
        written = self.store.bytes_written
        try:
            free = self.free_bytes()
        except OSError as exc:
            log.warning("cannot read the free disk space: %s", exc)
            return
        if free is None:
            return
        self._free_seen, self._written_seen = free, written
        low = free < self.disk_free_limit
        if low == self.alarm:
            return
        self.alarm = low
        if low:
            log.warning(
                "disk alarm: %d bytes free, below the limit of %d; blocking publishers",
                free,
                self.disk_free_limit,
            )
            self.server.set_blocked(DISK_ALARM_REASON)
        else:
            log.warning("disk alarm cleared: %d bytes free; unblocking publishers", free)
            self.server.set_blocked(None)

    def fail(self, exc: BaseException) -> None:
        """An fsync failed: stop the broker rather than confirm what it cannot vouch for."""
        if self.failure is not None:
            return
        self.failure = exc
        log.critical("store failure, stopping the broker: %s", exc)
        for conn in list(self.server.connections):
            conn.force_close(ReplyCode.INTERNAL_ERROR, FATAL_TEXT)
        self.poke()

    async def run(self) -> None:
        """Check the disk every ``interval`` seconds and when poked; shut down on failure."""
        while self.failure is None:
            self.check_disk()
            with trio.move_on_after(self.interval):
                await self._wake.wait()
            self._wake = trio.Event()
        await self.server.shutdown()
