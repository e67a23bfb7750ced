"""Listings and metrics served from a shared snapshot, so that pollers cannot slow messaging.

Layer: ``amqplite/http``.  Pure apart from the worker thread that gzips a body (zlib
releases the GIL, so that work runs beside the event loop, not on it).

Why: the broker and this API share one core.  Rendering ``/api/queues`` for 10,000 queues
costs about 0.4 s of CPU (8 MB of JSON) and ``/metrics`` about 50 ms, so 20 clients polling
both every second would ask for ten times the core -- messaging would stop.  Instead:

* **One snapshot, shared by every poller, kept while it is fresh.**  Every request in
  between is answered from it, so 20 pollers cost what one does.  How long it stays fresh
  follows what it cost to take (:class:`Freshness`): at most 0.25 % of the core goes
  into taking each kind of snapshot, and never longer than 5 s (RabbitMQ's statistics
  interval).  A broker
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
  (browsers, Prometheus, ``requests``) get about 1 % of the bytes.  Bodies are kept in
  pieces of a few hundred queues (:mod:`amqplite.http.pieces`): the next snapshot reuses
  every piece whose queues did not change, with its checksum and its gzip, so an idle
  broker's listing is not joined, checksummed and compressed again every few seconds.
* **Pages** (RabbitMQ's ``?page=&page_size=``) slice the snapshot's fragments.
* **Entity tags.**  Each body carries an ``ETag`` (its CRC-32 and length); a client that
  revalidates with ``If-None-Match`` -- a browser does, for the dashboard's requests --
  gets a 304 without a body while the listing is unchanged.
* **In slices of about a millisecond.**  Taking a snapshot of 10,000 queues is tens of
  milliseconds of work; done in one go it would hold up every AMQP connection that long.
  :func:`drive` runs it in pieces and lets the other tasks run whenever a piece has held
  the event loop for :data:`STEP`.  While the next snapshot is being taken, other
  requests are answered from the previous one (unless a change made through the API came
  after it).  What a snapshot cost, for :class:`Freshness`, is the CPU time of its own
  pieces (``time.thread_time``), not the wall time it took among the other tasks, plus the
  worker thread's CPU for its gzip (made with the snapshot: nearly every poller accepts
  gzip), so the budget bounds all that snapshots cost.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Hashable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import attrs
import trio

from amqplite.http import metrics, pieces, render
from amqplite.http.jsonout import dumps
from amqplite.http.pieces import Piece, Pieces, piece
from amqplite.http.request import JSON_TYPE, Response

if TYPE_CHECKING:
    from amqplite.broker import Broker, Queue
    from amqplite.broker.stream_queue import StreamQueue
    from amqplite.http.rates import RateTracker

#: Bodies at least this long are gzipped for clients that accept it.
GZIP_MIN = 4096
#: The longest a piece of snapshot work holds the event loop before the other tasks run.
STEP = 0.001
#: Queues rendered between two checks of :data:`STEP`, fragments joined into one piece.
_SLICE = 64
_PIECE = 512

_DETAILS = ("messages_details", "messages_ready_details", "messages_unacknowledged_details")

T = TypeVar("T")


Pause = Callable[[], Awaitable[None]]


async def drive(
    work: Iterator[None], step: float = STEP, pause: Pause = trio.lowlevel.checkpoint
) -> float:
    """Run ``work`` (a generator that yields between small pieces) to its end, letting the
    other tasks run (``pause``: a trio checkpoint) whenever it has held the loop for
    ``step`` seconds; return its own CPU seconds.  Work that ends within one step never
    gives the loop away (so a small broker's snapshot is taken atomically, as before)."""
    cpu = 0.0
    cpu0 = time.thread_time()
    wall0 = time.perf_counter()
    for _ in work:
        if time.perf_counter() - wall0 >= step:
            cpu += time.thread_time() - cpu0
            await pause()
            cpu0 = time.thread_time()
            wall0 = time.perf_counter()
    return cpu + time.thread_time() - cpu0


@attrs.define(eq=False)
class Body:
    """One response body of a snapshot, in :class:`~amqplite.http.pieces.Piece` s (so that
    making it never holds the event loop long, and the next snapshot reuses the pieces
    that did not change), its entity tag, and its gzip once it is made."""

    pieces: list[Piece]
    content_type: str = JSON_TYPE
    #: :func:`~amqplite.http.pieces.entity_tag`: the same bytes in the next snapshot
    #: (idle queues) have the same tag, so a client that revalidates (a browser:
    #: ``If-None-Match``) gets a 304 without a body.
    etag: str = ""
    gzipped: bytes | None = None
    length: int = 0
    _lock: trio.Lock = attrs.Factory(trio.Lock)

    def __attrs_post_init__(self) -> None:
        self.length = sum(len(p.data) for p in self.pieces)
        if not self.etag:
            self.etag = pieces.entity_tag(self.pieces)

    @property
    def parts(self) -> list[bytes]:
        return [p.data for p in self.pieces]

    @property
    def raw(self) -> bytes:
        return b"".join(self.parts)

    async def response(self, accept_encoding: str, if_none_match: str = "") -> Response:
        length = self.length
        packed = length >= GZIP_MIN and "gzip" in accept_encoding
        vary = ("vary", "accept-encoding")
        # Each encoding is its own representation, with its own tag.
        tag = f"{self.etag[:-1]}-gzip{self.etag[-1:]}" if packed and self.etag else self.etag
        if tag and if_none_match and _matches(if_none_match, tag):
            return Response(304, b"", None, (("etag", tag), vary))
        headers: tuple[tuple[str, str], ...] = (("etag", tag), vary) if tag else (vary,)
        if not packed:
            if len(self.pieces) == 1:
                return Response(200, self.pieces[0].data, self.content_type, headers)
            # Sent as they are (the server coalesces them into large writes).
            headers = (("content-length", str(length)), *headers)
            return Response(200, iter(self.parts), self.content_type, headers)
        await self.pack()
        assert self.gzipped is not None
        headers = (("content-encoding", "gzip"), *headers)
        return Response(200, self.gzipped, self.content_type, headers)

    async def pack(self) -> float:
        """Gzip the body (once, in a worker thread: only its pieces not deflated for an
        earlier snapshot) unless it is too short to bother; return the worker's CPU
        seconds (0 if it was done before)."""
        if self.gzipped is not None or self.length < GZIP_MIN:
            return 0.0
        async with self._lock:  # one compression per body, however many ask at once
            if self.gzipped is not None:
                return 0.0
            self.gzipped, cpu = await trio.to_thread.run_sync(_gzip, self.pieces)
        return cpu


def _matches(if_none_match: str, tag: str) -> bool:
    """``If-None-Match`` names ``tag`` or is ``*`` (weak comparison: a ``W/`` is ignored)."""
    for candidate in if_none_match.split(","):
        candidate = candidate.strip()
        if candidate == "*" or candidate.removeprefix("W/") == tag:
            return True
    return False


def _gzip(parts: list[Piece]) -> tuple[bytes, float]:
    """The gzip of ``parts`` and this thread's CPU seconds for it."""
    started = time.thread_time()
    return pieces.gzip(parts), time.thread_time() - started


@attrs.define(eq=False)
class QueueListing:
    """The queues of every vhost as JSON fragments (name, bytes); ``pieces``: where its
    bodies find the pieces of the last snapshot's (:class:`~amqplite.http.pieces.Pieces`)."""

    by_vhost: dict[str, list[tuple[str, bytes]]]
    pieces: Pieces = attrs.Factory(Pieces)
    #: Each vhost's queue totals, summed from the numbers read for the signatures (the
    #: overview's counts: the dashboard asks every second, and reading 10,000 queues
    #: again costs ~5 ms).
    totals: dict[str, render.QueueTotals] = attrs.Factory(dict)
    _bodies: dict[tuple[str, ...], Body] = attrs.Factory(dict)

    def items(self, vhosts: Iterable[str]) -> list[tuple[str, bytes]]:
        out: list[tuple[str, bytes]] = []
        for name in vhosts:
            out.extend(self.by_vhost.get(name, ()))
        return out

    async def body(self, vhosts: Sequence[str]) -> Body:
        """The whole listing of ``vhosts`` as one JSON array (made once per snapshot)."""
        return (await self.make_body(vhosts))[0]

    async def make_body(
        self, vhosts: Sequence[str], step: float = STEP, pause: Pause = trio.lowlevel.checkpoint
    ) -> tuple[Body, float]:
        """:meth:`body` and the CPU seconds it took to make (0 when it was made before);
        its gzip is made when a client first asks for it."""
        key = tuple(vhosts)
        body = self._bodies.get(key)
        if body is not None:
            return body, 0.0
        parts: list[Piece] = []
        work = array_parts([f for _, f in self.items(key)], self.pieces, key, parts)
        cost = await drive(work, step, pause)
        body = self._bodies.setdefault(key, Body(parts))
        return body, cost


def _first(items: Sequence[object]) -> bytes:
    return b"[" + b",".join(items)  # type: ignore[arg-type]


def _next(items: Sequence[object]) -> bytes:
    return b"," + b",".join(items)  # type: ignore[arg-type]


_CLOSE = piece(b"]")


def array_parts(
    fragments: Sequence[bytes], cache: Pieces, key: Hashable, out: list[Piece]
) -> Iterator[None]:
    """A JSON array of already-encoded items, appended to ``out`` in pieces of
    :data:`_PIECE` items (yielding after each); a piece whose items are those of the
    last snapshot's piece at the same place is that piece (``cache``, under ``key``)."""
    for n, start in enumerate(range(0, len(fragments) or 1, _PIECE)):
        out.append(cache.get((key, n), fragments[start : start + _PIECE], _next if n else _first))
        yield
    out.append(_CLOSE)


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
    ``budget`` of the core (a snapshot that took 5 ms of CPU is kept 2 s at 0.25 %), never
    less than ``min_period`` nor more than ``max_period`` seconds (RabbitMQ's statistics
    interval, 5 s).  A snapshot that took less than ``live_below`` seconds is not kept at
    all: a broker with a few hundred queues answers every request live, as before.

    The budget is per kind (the listing, ``/metrics``).  It was 1 %: with 10,000 queues a
    listing and its gzip cost ~40 ms, so it was taken every 4 s, and the two kinds took
    ~2 % of the core that messaging runs on; at 0.25 % both are kept the full 5 s at that
    size (~1 %), while a broker of 1,000 queues (~4 ms) is still answered from data at
    most ~1.6 s old."""

    min_period: float = 0.0
    max_period: float = 5.0
    budget: float = 0.0025
    live_below: float = 0.001

    def period(self, cost: float) -> float:
        kept = 0.0 if cost < self.live_below else cost / self.budget
        return min(self.max_period, max(self.min_period, kept))


#: What a take made -- a listing, a ``/metrics`` body (either may be None) -- and its cost.
_Took = tuple["QueueListing | None", "Body | None", float]


@attrs.define(eq=False, slots=True)
class _Taken:
    """When a snapshot was taken (broker clock), for how long it is served, and the
    :attr:`Snapshots.generation` it was started in."""

    at: float
    period: float
    generation: int

    def fresh(self, now: float) -> bool:
        # A clock that went backwards makes the snapshot stale, never eternal.
        return 0 <= now - self.at < self.period


@attrs.define(eq=False, slots=True)
class _Slot(Generic[T]):
    """One kind of snapshot: the one kept, and the taking of the next one (at most one at
    a time)."""

    kept: tuple[_Taken, T] | None = None
    taking: trio.Event | None = None


class Snapshots:
    """The shared snapshots of one management app: the queue listing and ``/metrics``."""

    def __init__(
        self,
        clock: Callable[[], float],
        freshness: Freshness = Freshness(),
        *,
        step: float = STEP,
        pause: Pause = trio.lowlevel.checkpoint,
    ) -> None:
        self.clock = clock
        self.freshness = freshness
        #: How long a piece of snapshot work may hold the loop, and how it lets the others
        #: run (:func:`drive`; tests pass a pause that stops mid-snapshot).
        self.step = step
        self.pause = pause
        #: Bumped by :meth:`invalidate`: a request is never answered from a snapshot
        #: started before the last change made through the API.
        self.generation = 0
        self._queues: _Slot[QueueListing] = _Slot()
        self._metrics: _Slot[Body] = _Slot()
        # queue -> (signature, fragment, quiet); rebuilt with every snapshot, so it holds
        # only queues that still exist.
        self._fragments: dict[Queue | StreamQueue, tuple[Any, bytes, bool]] = {}
        self._metric_lines = metrics.QueueLines()
        self._listing_pieces = Pieces()

    def invalidate(self) -> None:
        """Forget the snapshots (the app calls it after a change made through the API)."""
        self.generation += 1

    async def _current(self, slot: _Slot[T], take: Callable[[bool], Awaitable[_Took]]) -> T:
        """The kept snapshot while it is fresh; else the next one, taken by this request
        (other requests meanwhile get the kept one, if it is not older than a change made
        through the API before they came).  ``take(joint)`` takes this kind, and the other
        one from the same pass over the queues when ``joint`` (see :meth:`_joins`)."""
        wanted = self.generation
        while True:
            kept = slot.kept
            if (
                kept is not None
                and kept[0].generation >= wanted
                and (slot.taking is not None or kept[0].fresh(self.clock()))
            ):
                return kept[1]
            if slot.taking is None:
                break
            await slot.taking.wait()
        slot.taking = done = trio.Event()
        other: _Slot[Any] = self._metrics if slot is self._queues else self._queues
        joint = self._joins(other)
        if joint:
            other.taking = other_done = trio.Event()
        at = self.clock()
        generation = self.generation
        try:
            listing, body, cost = await take(joint)
            taken = _Taken(at, self.freshness.period(cost), generation)
            self._queues.kept = (taken, listing) if listing is not None else self._queues.kept
            self._metrics.kept = (taken, body) if body is not None else self._metrics.kept
        finally:
            slot.taking = None
            done.set()
            if joint:
                other.taking = None
                other_done.set()
        value = slot.kept
        assert value is not None
        return value[1]

    def _joins(self, other: _Slot[Any]) -> bool:
        """Whether the kind in ``other`` is taken in the same pass as the one asked for:
        when it is kept (its clients poll it), is not cheap enough to answer live, nobody
        is taking it, and it is at least half its period old -- it would be taken again
        within the next few polls, and reading 10,000 queues once for both saves ~20 ms
        of the event loop.  Both kinds are then kept for the same period, and stay
        taken together while both are polled."""
        kept = other.kept
        if other.taking is not None or kept is None or kept[0].period <= 0:
            return False
        return self.clock() - kept[0].at >= kept[0].period / 2

    async def queues(self, broker: Broker, rates: RateTracker, now: float) -> QueueListing:
        """The current queue listing; ``now`` is the rates' clock (monotonic seconds)."""
        return await self._current(
            self._queues, lambda joint: self._take(broker, rates, now, True, joint)
        )

    async def metrics(self, broker: Broker, rates: RateTracker, now: float) -> Body:
        """The current ``/metrics`` text (``rates`` and ``now``: for a listing taken in the
        same pass, see :meth:`_joins`)."""
        return await self._current(
            self._metrics, lambda joint: self._take(broker, rates, now, joint, True)
        )

    async def _take(
        self, broker: Broker, rates: RateTracker, now: float, listing: bool, text: bool
    ) -> _Took:
        """A queue listing and/or a ``/metrics`` text, from one pass over the queues (the
        listing's signatures serve the metrics), and what they cost together."""
        made: QueueListing | None = None
        signed: list[tuple[Any, Any]] | None = None
        cost = 0.0
        bodies: list[Body] = []
        if listing:
            fragments: dict[Queue | StreamQueue, tuple[Any, bytes, bool]] = {}
            by_vhost: dict[str, list[tuple[str, bytes]]] = {}
            totals: dict[str, render.QueueTotals] = {}
            signed = []
            work = self._render_queues(broker, rates, now, fragments, by_vhost, totals, signed)
            cost += await drive(work, self.step, self.pause)
            self._fragments = fragments
            self._listing_pieces.begin()
            made = QueueListing(by_vhost, self._listing_pieces, totals)
            # The common request (everything) is made now, and if the snapshot is worth
            # keeping its gzip too (nearly every poller accepts it): all of it is in the
            # cost that sets how long the snapshot is kept.
            body, spent = await made.make_body(list(by_vhost), self.step, self.pause)
            bodies.append(body)
            cost += spent
        metrics_body: Body | None = None
        if text:
            parts: list[Piece] = []
            work = metrics.render_parts(broker, self._metric_lines, parts, signed)
            cost += await drive(work, self.step, self.pause)
            metrics_body = Body(parts, metrics.CONTENT_TYPE)
            bodies.append(metrics_body)
        if self.freshness.period(cost) > 0:
            # Kept: gzipped now.  Answered live: a gzip waits for a client that asks.
            for body in bodies:
                cost += await body.pack()
        return made, metrics_body, cost

    def _render_queues(
        self,
        broker: Broker,
        rates: RateTracker,
        now: float,
        fragments: dict[Queue | StreamQueue, tuple[Any, bytes, bool]],
        by_vhost: dict[str, list[tuple[str, bytes]]],
        totals: dict[str, render.QueueTotals],
        signed: list[tuple[Any, Any]],
    ) -> Iterator[None]:
        old = self._fragments
        signature = render.queue_signature
        for vhost in list(broker.vhosts.values()):
            items: list[tuple[str, bytes]] = []
            by_vhost[vhost.name] = items
            numbers: list[tuple[Any, ...]] = []
            for n, queue in enumerate(list(vhost.queues.values()), 1):
                sig = signature(queue)
                cached = old.get(queue)
                if sig is None or cached is None or cached[0] != sig or not cached[2]:
                    item = render.queue_json(queue, rates, now)
                    cached = (sig, dumps(item), _quiet(item))
                fragments[queue] = cached
                items.append((queue.name, cached[1]))
                numbers.append(sig if sig is not None else render.queue_numbers(queue))
                signed.append((queue, sig))
                if n % _SLICE == 0:
                    yield
            totals[vhost.name] = render.queue_totals(numbers)
