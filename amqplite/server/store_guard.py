"""The store's guard in the server: the disk alarm and the stop on a fatal store failure.

Server layer.  One :class:`StoreGuard` per server with a store, run as a task next to
the listener:

* Disk alarm: every second (and at once after a failed store write, or when the floor
  is changed) it compares ``store.free_bytes()`` with ``disk_free_limit``.  Below it,
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
    ) -> None:
        self.server = server
        self.store = store
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

    def check_disk(self) -> None:
        try:
            free = self.store.free_bytes()
        except OSError as exc:
            log.warning("cannot read the free disk space: %s", exc)
            return
        if free is None:
            return
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
