"""The broker ticker: calls ``broker.tick()`` when a TTL or queue-expiry deadline passes.

Server layer.  The broker core never reads a clock on its own schedule; it reports
``next_deadline()`` (absolute wall-clock seconds) and expects ``tick()`` to be called
then.  While no deadline exists the ticker sleeps without a timeout, and connections
poke it after a batch (:meth:`Ticker.poke`, cheap while idle) in case the batch created
one; while deadlines exist it wakes at least every :data:`TICK_INTERVAL` so a nearer one
that appears meanwhile is honoured promptly.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import trio

if TYPE_CHECKING:
    from amqplite.broker.broker import Broker
    from amqplite.server.outbox import FlushQueue

log = logging.getLogger(__name__)

TICK_INTERVAL = 0.05


class Ticker:
    """One per broker; run :meth:`run` as a task."""

    __slots__ = ("_broker", "_clock", "_flushes", "_wake", "idle")

    def __init__(
        self,
        broker: Broker,
        flushes: FlushQueue,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._broker = broker
        self._flushes = flushes
        self._clock = clock
        self._wake = trio.Event()
        #: True while the broker had no deadline when the ticker last looked.
        self.idle = True

    def poke(self) -> None:
        """Something may have created a deadline: wake the ticker if it sleeps without one,
        or if that deadline is already due (a stream reader that yielded the event loop
        in the middle of its credit goes on at once, not at the next 50 ms tick)."""
        deadline = self._broker.next_deadline()
        if deadline is not None and (self.idle or deadline <= self._clock()):
            self.idle = False
            self._wake.set()

    async def run(self) -> None:
        broker = self._broker
        while True:
            deadline = broker.next_deadline()
            now = self._clock()
            if deadline is not None and deadline <= now:
                try:
                    broker.tick()
                except Exception:
                    log.exception("broker tick failed")
                # Expiry may dead-letter into queues with consumers elsewhere.
                self._flushes.wake_dirty()
                await trio.lowlevel.checkpoint()
                continue
            self.idle = deadline is None
            timeout = math.inf if deadline is None else min(deadline - now, TICK_INTERVAL)
            with trio.move_on_after(timeout):
                await self._wake.wait()
            self._wake = trio.Event()
