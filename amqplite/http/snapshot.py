"""Listings and metrics served from a shared snapshot, so that pollers cannot slow messaging.

Layer: ``amqplite/http``.  Pure apart from the worker thread that gzips a body (zlib
releases the GIL, so that work runs beside the event loop, not on it).

Why: the broker and this API share one core.  Rendering ``/api/queues`` for 10,000 queues
costs about 0.4 s of CPU (8 MB of JSON) and ``/metrics`` about 50 ms, so 20 clients polling
both every second would ask for ten times the core -- messaging would stop.  Instead:

* **One snapshot, shared by every poller, kept while it is fresh.**  Every request in
  between is answered from it, so 20 pollers cost what one does.  How long it stays fresh
  follows what it cost to take (:class:`Freshness`): at most 1 % of the core goes into
  taking snapshots, and never longer than 5 s (RabbitMQ's statistics interval).  A broker
  with a few hundred queues takes one in under a millisecond, and such a snapshot is not
  kept at all (``Freshness.live_below``), so its listings are live, as before;
  with 10,000 queues a listing may be a second or two old.  A single object
  (``/api/queues/V/NAME``) is always read live, and a change made through the API drops
  the snapshots, so its author sees it at once.
* **A snapshot re-renders only what changed.**  Each queue's JSON fragment (and its
  ``/metrics`` lines) is kept with the queue's :func:`~amqplite.http.render.queue_signature`;
  the next snapshot reuses it when the signature is the same and its rates were all zero
  (a quiet queue stays quiet).  10,000 idle queues cost a signature each (a few ms), not a
  rendering.
* **Bytes, not objects, per snapshot.**  A snapshot keeps the encoded fragments; the body of
  a listing (``[`` + fragments + ``]``) and its gzip are made once per snapshot and
  vhost set and sent as they are to every poller that asks.  Clients that accept gzip
  (browsers, Prometheus, ``requests``) get about 1 % of the bytes.
* **Pages** (RabbitMQ's ``?page=&page_size=``) slice the snapshot's fragments.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import attrs
import trio

from amqplite.http import metrics, render
from amqplite.http.jsonout import dumps
from amqplite.http.request import JSON_TYPE, Response

if TYPE_CHECKING:
    from amqplite.broker import Broker, Queue
    from amqplite.broker.stream_queue import StreamQueue
    from amqplite.http.rates import RateTracker

#: Bodies at least this long are gzipped for clients that accept it.
GZIP_MIN = 4096

_DETAILS = ("messages_details", "messages_ready_details", "messages_unacknowledged_details")


@attrs.define(eq=False)
class Body:
    """One encoded response body of a snapshot, and its gzip once somebody asked for it."""

    raw: bytes
    content_type: str = JSON_TYPE
    gzipped: bytes | None = None
    _lock: trio.Lock = attrs.Factory(trio.Lock)

    async def response(self, accept_encoding: str) -> Response:
        if len(self.raw) < GZIP_MIN or "gzip" not in accept_encoding:
            return Response(200, self.raw, self.content_type, (("vary", "accept-encoding"),))
        async with self._lock:  # one compression per body, however many ask at once
            if self.gzipped is None:
                self.gzipped = await trio.to_thread.run_sync(_gzip, self.raw)
        headers = (("content-encoding", "gzip"), ("vary", "accept-encoding"))
        return Response(200, self.gzipped, self.content_type, headers)


def _gzip(data: bytes) -> bytes:
    # Level 1: listings are repetitive (about 100:1 even at level 1) and this is per snapshot.
    return zlib.compress(data, 1, wbits=31)


@attrs.define(eq=False)
class QueueListing:
    """The queues of every vhost as JSON fragments (name, bytes)."""

    by_vhost: dict[str, list[tuple[str, bytes]]]
    _bodies: dict[tuple[str, ...], Body] = attrs.Factory(dict)

    def items(self, vhosts: Iterable[str]) -> list[tuple[str, bytes]]:
        out: list[tuple[str, bytes]] = []
        for name in vhosts:
            out.extend(self.by_vhost.get(name, ()))
        return out

    def body(self, vhosts: Sequence[str]) -> Body:
        """The whole listing of ``vhosts`` as one JSON array (made once per snapshot)."""
        key = tuple(vhosts)
        body = self._bodies.get(key)
        if body is None:
            body = self._bodies[key] = Body(join(fragment for _, fragment in self.items(key)))
        return body


def join(fragments: Iterable[bytes]) -> bytes:
    """A JSON array of already-encoded items."""
    return b"[" + b",".join(fragments) + b"]"


def _quiet(item: dict[str, Any]) -> bool:
    """Every rate in a rendered queue is zero (it stays so while the queue does not change)."""
    if any(item[k]["rate"] for k in _DETAILS):
        return False
    stats: dict[str, Any] = item["message_stats"]
    return not any(v["rate"] for k, v in stats.items() if k.endswith("_details"))


@attrs.frozen(slots=True)
class Freshness:
    """How long a snapshot is served: long enough that taking snapshots costs at most
    ``budget`` of the core (a snapshot that took 20 ms is kept 2 s at 1 %), never less than
    ``min_period`` nor more than ``max_period`` seconds (RabbitMQ's statistics interval,
    5 s).  A snapshot that took less than ``live_below`` seconds is not kept at all: a
    broker with a few hundred queues answers every request live, as before."""

    min_period: float = 0.0
    max_period: float = 5.0
    budget: float = 0.01
    live_below: float = 0.001

    def period(self, cost: float) -> float:
        kept = 0.0 if cost < self.live_below else cost / self.budget
        return min(self.max_period, max(self.min_period, kept))


@attrs.define(eq=False, slots=True)
class _Taken:
    """When a snapshot was taken (broker clock) and for how long it is served."""

    at: float
    period: float

    def fresh(self, now: float) -> bool:
        # A clock that went backwards makes the snapshot stale, never eternal.
        return 0 <= now - self.at < self.period


class Snapshots:
    """The shared snapshots of one management app: the queue listing and ``/metrics``."""

    def __init__(self, clock: Callable[[], float], freshness: Freshness = Freshness()) -> None:
        self.clock = clock
        self.freshness = freshness
        self._queues: tuple[_Taken, QueueListing] | None = None
        self._metrics: tuple[_Taken, Body] | None = None
        # queue -> (signature, fragment, quiet); rebuilt with every snapshot, so it holds
        # only queues that still exist.
        self._fragments: dict[Queue | StreamQueue, tuple[Any, bytes, bool]] = {}
        self._metric_lines = metrics.QueueLines()

    def invalidate(self) -> None:
        """Forget the snapshots (the app calls it after a change made through the API)."""
        self._queues = None
        self._metrics = None

    def _taken(self, started: float, at: float) -> _Taken:
        return _Taken(at, self.freshness.period(time.perf_counter() - started))

    def queues(self, broker: Broker, rates: RateTracker, now: float) -> QueueListing:
        """The current queue listing; ``now`` is the rates' clock (monotonic seconds)."""
        at = self.clock()
        current = self._queues
        if current is not None and current[0].fresh(at):
            return current[1]
        started = time.perf_counter()
        old = self._fragments
        fragments: dict[Queue | StreamQueue, tuple[Any, bytes, bool]] = {}
        by_vhost: dict[str, list[tuple[str, bytes]]] = {}
        signature = render.queue_signature
        for vhost in list(broker.vhosts.values()):
            items: list[tuple[str, bytes]] = []
            for queue in list(vhost.queues.values()):
                sig = signature(queue)
                cached = old.get(queue)
                if sig is None or cached is None or cached[0] != sig or not cached[2]:
                    item = render.queue_json(queue, rates, now)
                    cached = (sig, dumps(item), _quiet(item))
                fragments[queue] = cached
                items.append((queue.name, cached[1]))
            by_vhost[vhost.name] = items
        self._fragments = fragments
        listing = QueueListing(by_vhost)
        listing.body(list(by_vhost))  # the common request (everything), in the cost
        self._queues = (self._taken(started, at), listing)
        return listing

    def metrics(self, broker: Broker) -> Body:
        """The current ``/metrics`` text."""
        at = self.clock()
        current = self._metrics
        if current is not None and current[0].fresh(at):
            return current[1]
        started = time.perf_counter()
        body = Body(metrics.render(broker, self._metric_lines), metrics.CONTENT_TYPE)
        self._metrics = (self._taken(started, at), body)
        return body
