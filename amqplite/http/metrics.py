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

import os
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from amqplite.broker.stream_queue import StreamQueue

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


def labels(pairs: Sequence[tuple[str, str]]) -> str:
    return "{" + ",".join(f'{k}="{escape(v)}"' for k, v in pairs) + "}"


def resident_memory_bytes() -> int | None:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def render(broker: Broker) -> bytes:
    w = _Writer()
    queues = [
        (q, labels((("vhost", v.name), ("queue", q.name))))
        for v in list(broker.vhosts.values())
        for q in list(v.queues.values())
    ]
    _queue_metrics(w, queues)
    _broker_metrics(w, broker, len(queues))
    streams: list[tuple[StreamQueue, str]] = []
    for q, lbl in queues:
        if isinstance(q, StreamQueue):
            streams.append((q, lbl))
    _stream_metrics(w, streams)
    _store_metrics(w, broker)
    w.lines.append("")
    return "\n".join(w.lines).encode()


def _queue_metrics(w: _Writer, queues: list[tuple[Any, str]]) -> None:
    """Per-queue gauges and counters (dead-lettered and dropped by reason)."""

    def per_queue(name: str, kind: str, help_text: str, attr: str) -> None:
        w.family(name, kind, help_text, ((lbl, getattr(q, attr)) for q, lbl in queues))

    def per_queue_stat(name: str, help_text: str, attr: str) -> None:
        w.family(name, "counter", help_text, ((lbl, getattr(q.stats, attr)) for q, lbl in queues))

    per_queue(
        "amqplite_queue_messages_ready", "gauge", "Messages ready for delivery.", "message_count"
    )
    per_queue(
        "amqplite_queue_messages_unacked",
        "gauge",
        "Messages delivered and not yet acknowledged.",
        "unacked_count",
    )
    per_queue("amqplite_queue_consumers", "gauge", "Consumers on the queue.", "consumer_count")
    per_queue(
        "amqplite_queue_messages_ready_bytes",
        "gauge",
        "Body bytes of the ready messages.",
        "message_bytes",
    )
    per_queue_stat("amqplite_queue_messages_published_total", "Messages enqueued.", "published")
    per_queue_stat(
        "amqplite_queue_messages_delivered_total",
        "Messages delivered to consumers or fetched with basic.get.",
        "delivered",
    )
    per_queue_stat("amqplite_queue_messages_acked_total", "Messages acknowledged.", "acked")
    per_queue_stat(
        "amqplite_queue_messages_redelivered_total",
        "Messages delivered again after a requeue.",
        "redelivered",
    )

    def by_reason(attr: str) -> Iterable[tuple[str, int]]:
        for q, _ in queues:
            counts: dict[str, int] = getattr(q.stats, attr)
            for reason, count in sorted(counts.items()):
                yield (
                    labels((("vhost", q.vhost.name), ("queue", q.name), ("reason", reason))),
                    count,
                )

    w.family(
        "amqplite_queue_messages_dead_lettered_total",
        "counter",
        "Messages dead-lettered to a dead-letter exchange, by reason.",
        by_reason("dead_lettered"),
    )
    w.family(
        "amqplite_queue_messages_dropped_total",
        "counter",
        "Messages that died without a dead-letter exchange (or in a cycle), by reason.",
        by_reason("dropped"),
    )


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
