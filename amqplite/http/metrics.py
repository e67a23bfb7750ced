"""``GET /metrics``: the broker's state in the Prometheus text exposition format (0.0.4).

Layer: ``amqplite/http``.  Pure except for reading ``/proc/self/statm`` for the resident
memory.  Everything is read from the broker's inspection attributes at scrape time; the
broker keeps only plain counters, so scraping costs nothing between scrapes.

Families: per-queue gauges (ready, unacked, consumers; labels ``vhost``, ``queue``) and
counters (published, delivered, acked, redelivered, dead-lettered / dropped by
``reason``), per-stream gauges (messages, bytes, segments, first/last offset and
timestamp, tracked offsets), connection / channel / consumer / queue / exchange totals and
process memory.  Store size and fsync latency are exported only if the store offers them
(``store.size_bytes`` and ``store.fsync_histogram``, see the module's report).
"""

from __future__ import annotations

import operator
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from amqplite.broker.stream_queue import StreamQueue
from amqplite.http.pieces import Piece, Pieces, piece
from amqplite.http.render import queue_signature

if TYPE_CHECKING:
    from amqplite.broker import Broker

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class _Writer:
    __slots__ = ("lines",)

    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(
        self, name: str, kind: str, help_text: str, samples: Iterable[tuple[str, float | int]]
    ) -> None:
        """One metric family; ``samples`` are ``(label_text, value)`` with label_text like
        ``{vhost="/"}`` or ``""``."""
        self.lines.append(f"# HELP {name} {help_text}")
        self.lines.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            self.lines.append(f"{name}{labels} {value}")

    def flush(self, out: list[Piece]) -> None:
        """Move the lines written so far to ``out`` as one encoded piece."""
        if self.lines:
            out.append(piece(("\n".join(self.lines) + "\n").encode()))
            self.lines.clear()


def labels(pairs: Sequence[tuple[str, str]]) -> str:
    return "{" + ",".join(f'{k}="{escape(v)}"' for k, v in pairs) + "}"


def resident_memory_bytes() -> int | None:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def render(broker: Broker, cache: QueueLines | None = None) -> bytes:
    """The exposition text; ``cache`` keeps each queue's lines while the queue is unchanged
    (:class:`QueueLines`), so a broker with many idle queues is cheap to scrape again."""
    out: list[Piece] = []
    for _ in render_parts(broker, cache or QueueLines(), out):
        pass
    return b"".join(p.data for p in out)


def render_parts(
    broker: Broker,
    cache: QueueLines,
    out: list[Piece],
    signed: Sequence[tuple[Any, Any]] | None = None,
) -> Iterator[None]:
    """:func:`render` in pieces appended to ``out``, yielding every few dozen queues or
    lines: the text of 10,000 queues is tens of milliseconds of work, and the caller
    (:mod:`amqplite.http.snapshot`) lets the AMQP connections run between the pieces.
    ``signed``: every queue with its :func:`~amqplite.http.render.queue_signature`, when
    a listing taken in the same pass has read them.  The per-queue families' pieces are reused from the last scrape where their queues'
    lines are unchanged (:class:`~amqplite.http.pieces.Pieces`)."""
    w = _Writer()
    if signed is None:
        queues = [q for v in list(broker.vhosts.values()) for q in list(v.queues.values())]
        yield from cache.write(w, queues, out)
    else:  # every queue with its signature, read by a listing in the same pass
        queues = [q for q, _ in signed]
        yield from cache.write(w, queues, out, [sig for _, sig in signed])
    _broker_metrics(w, broker, len(queues))
    streams: list[tuple[StreamQueue, str]] = []
    for q in queues:
        if isinstance(q, StreamQueue):
            streams.append((q, labels((("vhost", q.vhost.name), ("queue", q.name)))))
    _stream_metrics(w, streams)
    _store_metrics(w, broker)
    w.flush(out)


# Per-queue families: (name, type, help, how to read the value from the queue).
_QUEUE_FAMILIES: tuple[tuple[str, str, str, Callable[[Any], int]], ...] = (
    (
        "amqplite_queue_messages_ready",
        "gauge",
        "Messages ready for delivery.",
        operator.attrgetter("message_count"),
    ),
    (
        "amqplite_queue_messages_unacked",
        "gauge",
        "Messages delivered and not yet acknowledged.",
        operator.attrgetter("unacked_count"),
    ),
    (
        "amqplite_queue_consumers",
        "gauge",
        "Consumers on the queue.",
        operator.attrgetter("consumer_count"),
    ),
    (
        "amqplite_queue_messages_ready_bytes",
        "gauge",
        "Body bytes of the ready messages.",
        operator.attrgetter("message_bytes"),
    ),
    (
        "amqplite_queue_messages_published_total",
        "counter",
        "Messages enqueued.",
        operator.attrgetter("stats.published"),
    ),
    (
        "amqplite_queue_messages_delivered_total",
        "counter",
        "Messages delivered to consumers or fetched with basic.get.",
        operator.attrgetter("stats.delivered"),
    ),
    (
        "amqplite_queue_messages_acked_total",
        "counter",
        "Messages acknowledged.",
        operator.attrgetter("stats.acked"),
    ),
    (
        "amqplite_queue_messages_redelivered_total",
        "counter",
        "Messages delivered again after a requeue.",
        operator.attrgetter("stats.redelivered"),
    ),
)
# Per-queue counters by reason: (name, help, QueueStats attribute holding {reason: count}).
_BY_REASON = (
    (
        "amqplite_queue_messages_dead_lettered_total",
        "Messages dead-lettered to a dead-letter exchange, by reason.",
        "dead_lettered",
    ),
    (
        "amqplite_queue_messages_dropped_total",
        "Messages that died without a dead-letter exchange (or in a cycle), by reason.",
        "dropped",
    ),
)


#: Queues between two yields of :meth:`QueueLines.write` (a few hundred microseconds).
_SLICE = 64
#: Queues whose lines of one family make one piece of the body (~80 KB).
_PIECE_QUEUES = 1024


class QueueLines:
    """Each queue's sample lines, one string per per-queue family ("" when it has none),
    kept with the queue's :func:`~amqplite.http.render.queue_signature` and reused while
    that is unchanged, and the encoded pieces of each family (the lines of
    :data:`_PIECE_QUEUES` queues), reused while their queues' lines are the same objects.
    Only queues listed at the last scrape are kept."""

    __slots__ = ("_pieces", "_rows")

    def __init__(self) -> None:
        self._rows: dict[Any, tuple[Any, tuple[str, ...]]] = {}
        self._pieces = Pieces()

    def write(
        self,
        w: _Writer,
        queues: list[Any],
        out: list[Piece],
        signatures: Sequence[Any] | None = None,
    ) -> Iterator[None]:
        """Write every per-queue family to ``out`` (after what ``w`` holds), yielding
        every :data:`_SLICE` queues or piece; ``signatures``: the queues', read already."""
        old = self._rows
        rows: dict[Any, tuple[Any, tuple[str, ...]]] = {}
        for n, q in enumerate(queues, 1):
            sig = queue_signature(q) if signatures is None else signatures[n - 1]
            cached = old.get(q)
            if sig is None or cached is None or cached[0] != sig:
                cached = (sig, _queue_lines(q))
            rows[q] = cached
            if n % _SLICE == 0:
                yield
        self._rows = rows
        self._pieces.begin()
        lines = [row for _, row in rows.values()]
        families = [(n, k, h) for n, k, h, _ in _QUEUE_FAMILIES]
        families.extend((n, "counter", h) for n, h, _ in _BY_REASON)
        for i, (name, kind, help_text) in enumerate(families):
            w.family(name, kind, help_text, ())
            w.flush(out)

            def make(rows: Sequence[Any], i: int = i) -> bytes:
                text = "\n".join(row[i] for row in rows if row[i])
                return (text + "\n").encode() if text else b""

            for n, start in enumerate(range(0, len(lines), _PIECE_QUEUES)):
                made = self._pieces.get((i, n), lines[start : start + _PIECE_QUEUES], make)
                if made.data:
                    out.append(made)
                yield


def _queue_lines(q: Any) -> tuple[str, ...]:
    lbl = labels((("vhost", q.vhost.name), ("queue", q.name)))
    out = [f"{name}{lbl} {get(q)}" for name, _, _, get in _QUEUE_FAMILIES]
    for name, _, attr in _BY_REASON:
        counts: dict[str, int] = getattr(q.stats, attr)
        out.append(
            "\n".join(
                f"{name}{labels((('vhost', q.vhost.name), ('queue', q.name), ('reason', r)))} {c}"
                for r, c in sorted(counts.items())
            )
        )
    return tuple(out)


def _broker_metrics(w: _Writer, broker: Broker, queue_count: int) -> None:
    """Connections, channels, queues, exchanges and the process's resident memory."""
    connections = list(broker.connections.values())
    channels = sum(len(c.channels) for c in connections)
    w.family("amqplite_connections", "gauge", "Open AMQP connections.", [("", len(connections))])
    w.family("amqplite_channels", "gauge", "Open AMQP channels.", [("", channels)])
    w.family("amqplite_queues", "gauge", "Queues.", [("", queue_count)])
    exchanges = sum(len(v.exchanges) for v in list(broker.vhosts.values()))
    w.family("amqplite_exchanges", "gauge", "Exchanges.", [("", exchanges)])
    rss = resident_memory_bytes()
    if rss is not None:
        w.family(
            "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", [("", rss)]
        )


# (metric name, help, StreamInfo attribute) for the per-stream gauges.
_STREAM_GAUGES = (
    ("amqplite_stream_messages", "Messages a stream holds.", "messages"),
    ("amqplite_stream_bytes", "Bytes of a stream's segment files.", "bytes"),
    ("amqplite_stream_segments", "Segment files of a stream.", "segments"),
    ("amqplite_stream_first_offset", "Offset of the oldest message kept.", "first_offset"),
    ("amqplite_stream_last_offset", "Offset of the newest message.", "last_offset"),
    (
        "amqplite_stream_first_timestamp_seconds",
        "When the oldest message kept was stored (Unix time).",
        "first_timestamp",
    ),
    (
        "amqplite_stream_last_timestamp_seconds",
        "When the newest message was stored (Unix time).",
        "last_timestamp",
    ),
)


def _stream_metrics(w: _Writer, streams: list[tuple[StreamQueue, str]]) -> None:
    """Per-stream gauges (an empty stream has no offsets or timestamps, so no sample), and
    the tracked offset of every ``x-stream-tracking-key`` (label ``key``)."""
    infos = [(q.info(), lbl) for q, lbl in streams]
    for name, help_text, attr in _STREAM_GAUGES:
        samples = [(lbl, getattr(i, attr)) for i, lbl in infos if getattr(i, attr) is not None]
        w.family(name, "gauge", help_text, samples)
    w.family(
        "amqplite_stream_tracked_offset",
        "gauge",
        "Next offset to read for a server-side tracking key.",
        (
            (labels((("vhost", q.vhost.name), ("queue", q.name), ("key", k))), offset)
            for (i, _), (q, _) in zip(infos, streams, strict=True)
            for k, offset in sorted(i.tracking.items())
        ),
    )


def _store_metrics(w: _Writer, broker: Broker) -> None:
    """Store size and fsync latency, when the store exposes them (duck-typed: the store
    contract does not require either)."""
    store: Any = broker.store
    if store is None:
        return
    size = getattr(store, "size_bytes", None)
    if callable(size):
        size = size()
    if isinstance(size, int):
        w.family(
            "amqplite_store_size_bytes",
            "gauge",
            "Bytes in the message store's files.",
            [("", size)],
        )
    histogram = getattr(store, "fsync_histogram", None)
    if callable(histogram):
        histogram = histogram()
    # Expected shape: (bucket upper bounds in seconds, cumulative counts per bound, count, sum).
    if isinstance(histogram, tuple) and len(histogram) == 4:
        bounds, cumulative, count, total = histogram
        samples: list[tuple[str, float | int]] = [
            (labels((("le", repr(float(b))),)), c) for b, c in zip(bounds, cumulative, strict=False)
        ]
        samples.append((labels((("le", "+Inf"),)), count))
        w.lines.append("# HELP amqplite_store_fsync_seconds Latency of the store's fsync calls.")
        w.lines.append("# TYPE amqplite_store_fsync_seconds histogram")
        w.lines.extend(f"amqplite_store_fsync_seconds_bucket{lbl} {v}" for lbl, v in samples)
        w.lines.append(f"amqplite_store_fsync_seconds_count {count}")
        w.lines.append(f"amqplite_store_fsync_seconds_sum {total}")
