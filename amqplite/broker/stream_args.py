"""Stream queue arguments: the declare arguments and the consumer arguments (broker layer).

Declaring follows RabbitMQ 3.10's order and 406 texts (checked against the real broker):
a server-named stream is refused first, then argument values are validated (``x-max-age``
must be digits and one of ``Y M D h m s``, ``invalid_max_age``), then classic/quorum-only
arguments are refused (``invalid arg 'x-message-ttl' ... of queue type
rabbit_stream_queue``), then the properties (auto-delete, exclusive, non-durable).

Consumers: ``x-stream-offset`` (``next``/``first``/``last``, an offset, an AMQP timestamp,
an interval such as ``"1h"``; amqplite also takes a float or an ISO 8601 string for
millisecond precision), the RabbitMQ 3.13 filter arguments, and amqplite's
``x-stream-tracking-key``.  RabbitMQ crashes the connection (541) on some bad offset
values; amqplite answers every bad value with RabbitMQ's 406 ``invalid_stream_offset_arg``.
"""

from __future__ import annotations

import datetime
import re
from typing import Any

import attrs

from amqplite.broker.arguments import int_arg, invalid_arg, wire_type
from amqplite.errors import precondition_failed
from amqplite.message import FieldTable
from amqplite.store.streamlog import DEFAULT_SEGMENT_BYTES

#: Seconds per unit of x-max-age and of an x-stream-offset interval (RabbitMQ's units).
UNIT_SECONDS = {"Y": 365 * 86400, "M": 30 * 86400, "D": 86400, "h": 3600, "m": 60, "s": 1}
_INTERVAL = re.compile(r"([0-9]+)([YMDhms])")

#: Arguments RabbitMQ 3.10 refuses on a stream ("of queue type rabbit_stream_queue").
NOT_FOR_STREAMS = (
    "x-expires",
    "x-message-ttl",
    "x-max-length",
    "x-max-priority",
    "x-overflow",
    "x-dead-letter-exchange",
    "x-dead-letter-routing-key",
    "x-dead-letter-strategy",
    "x-single-active-consumer",
    "x-queue-mode",
    "x-queue-version",
    "x-queue-master-locator",
    "x-delivery-limit",
    "x-quorum-initial-group-size",
    "x-max-in-memory-length",
    "x-max-in-memory-bytes",
)
#: Arguments that must match when a stream is redeclared (RabbitMQ's order).
EQUIVALENT_STREAM_ARGS = (
    "x-max-length-bytes",
    "x-queue-type",
    "x-max-age",
    "x-stream-max-segment-size-bytes",
)
#: Segments roll by age at a tenth of x-max-age, within these bounds (seconds).
SEGMENT_AGE_MIN = 1.0
SEGMENT_AGE_MAX = 3600.0
TRACKING_KEY_MAX = 255


@attrs.frozen
class StreamArgs:
    """A stream's declare arguments, parsed once."""

    max_age: float | None = None  # seconds
    max_length_bytes: int | None = None
    max_segment_size_bytes: int = DEFAULT_SEGMENT_BYTES
    initial_cluster_size: int | None = None
    queue_type: str = "stream"

    @property
    def segment_max_age(self) -> float | None:
        """How old the active segment may get before it rolls (so x-max-age works on
        a quiet stream); None without x-max-age."""
        if self.max_age is None:
            return None
        return min(SEGMENT_AGE_MAX, max(SEGMENT_AGE_MIN, self.max_age / 10))


def parse_interval(text: str) -> float | None:
    """Seconds in ``"7D"`` / ``"1h"`` (digits and one unit, more than zero), or None."""
    match = _INTERVAL.fullmatch(text)
    if match is None:
        return None
    seconds = int(match.group(1)) * UNIT_SECONDS[match.group(2)]
    return float(seconds) if seconds > 0 else None


def parse_stream_args(
    args: FieldTable, queue: str, vhost: str, *, durable: bool, exclusive: bool, auto_delete: bool
) -> StreamArgs:
    """Validate a stream declaration (name already checked); 406 as RabbitMQ."""
    max_age: float | None = None
    if "x-max-age" in args:
        raw = args["x-max-age"]
        if not isinstance(raw, str):
            kind = "binary" if isinstance(raw, bytes) else wire_type(raw)
            raise invalid_arg("x-max-age", queue, vhost, f"{{unacceptable_type,{kind}}}")
        max_age = parse_interval(raw)
        if max_age is None:
            raise invalid_arg("x-max-age", queue, vhost, "invalid_max_age")
    max_bytes = int_arg(args, "x-max-length-bytes", queue, vhost)
    segment = int_arg(args, "x-stream-max-segment-size-bytes", queue, vhost)
    cluster = int_arg(args, "x-initial-cluster-size", queue, vhost, positive=True)
    for arg in NOT_FOR_STREAMS:
        if arg in args:
            raise precondition_failed(
                f"invalid arg '{arg}' for queue '{queue}' in vhost '{vhost}' "
                "of queue type rabbit_stream_queue"
            )
    for bad, prop in (
        (auto_delete, "auto-delete"),
        (exclusive, "exclusive-owner"),
        (not durable, "non-durable"),
    ):
        if bad:
            raise precondition_failed(
                f"invalid property '{prop}' for queue '{queue}' in vhost '{vhost}'"
            )
    return StreamArgs(
        max_age=max_age,
        max_length_bytes=max_bytes,
        max_segment_size_bytes=segment or DEFAULT_SEGMENT_BYTES,
        initial_cluster_size=cluster,
    )


SERVER_NAMED = "Cannot declare a server-named queue for type rabbit_stream_queue"


# -- consumers -----------------------------------------------------------------------------


@attrs.frozen
class StreamStart:
    """Where a consumer starts: ``kind`` is next, first, last, offset or time."""

    kind: str = "next"
    offset: int = 0
    timestamp: float = 0.0


@attrs.frozen
class ConsumerSpec:
    """A stream consumer's arguments, parsed."""

    start: StreamStart = StreamStart()
    start_given: bool = False
    filters: frozenset[str] | None = None
    match_unfiltered: bool = False
    tracking_key: str | None = None


def _offset_error(queue: str, vhost: str, value: Any) -> Exception:
    if isinstance(value, str):
        shown = f'{{longstr,<<"{value}">>}}'
    elif isinstance(value, bool):
        shown = "{bool,true}" if value else "{bool,false}"
    else:
        shown = f"{{{wire_type(value)},{value!r}}}"
    return invalid_arg("x-stream-offset", queue, vhost, f"{{invalid_stream_offset_arg,{shown}}}")


def parse_start(value: Any, now: float, queue: str, vhost: str) -> StreamStart:
    """The ``x-stream-offset`` value as a start position (``now`` for intervals)."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if isinstance(value, str):
        if value in ("next", "first", "last"):
            return StreamStart(value)
        interval = parse_interval(value)
        if interval is not None:
            return StreamStart("time", timestamp=now - interval)
        if "T" in value and value[:1].isdigit():
            try:
                moment = datetime.datetime.fromisoformat(value)
            except ValueError:
                raise _offset_error(queue, vhost, value) from None
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=datetime.UTC)
            return StreamStart("time", timestamp=moment.timestamp())
        raise _offset_error(queue, vhost, value)
    if isinstance(value, bool):
        raise _offset_error(queue, vhost, value)
    if isinstance(value, int):
        return StreamStart("offset", offset=max(0, value))
    if isinstance(value, float):
        return StreamStart("time", timestamp=value)
    if isinstance(value, datetime.datetime):
        moment = value if value.tzinfo is not None else value.replace(tzinfo=datetime.UTC)
        return StreamStart("time", timestamp=moment.timestamp())
    raise _offset_error(queue, vhost, value)


def _filters(value: Any, queue: str, vhost: str) -> frozenset[str]:
    items = value if isinstance(value, list) else [value]
    out = set()
    for item in items:
        if isinstance(item, bytes):
            item = item.decode("utf-8", "replace")
        if not isinstance(item, str):
            raise invalid_arg(
                "x-stream-filter", queue, vhost, f"{{unacceptable_type,{wire_type(item)}}}"
            )
        out.add(item)
    return frozenset(out)


def parse_consumer_args(args: FieldTable, now: float, queue: str, vhost: str) -> ConsumerSpec:
    """Validate a stream consumer's arguments; 406 naming the bad one."""
    if not args:
        return ConsumerSpec()
    start = StreamStart()
    given = "x-stream-offset" in args
    if given:
        start = parse_start(args["x-stream-offset"], now, queue, vhost)
    filters = None
    if "x-stream-filter" in args:
        filters = _filters(args["x-stream-filter"], queue, vhost)
    unfiltered = args.get("x-stream-match-unfiltered", False)
    if not isinstance(unfiltered, bool):
        raise invalid_arg(
            "x-stream-match-unfiltered",
            queue,
            vhost,
            f"{{unacceptable_type,{wire_type(unfiltered)}}}",
        )
    key = args.get("x-stream-tracking-key")
    if isinstance(key, bytes):
        key = key.decode("utf-8", "replace")
    if key is not None and (
        not isinstance(key, str) or not key or len(key.encode()) > TRACKING_KEY_MAX
    ):
        raise invalid_arg(
            "x-stream-tracking-key",
            queue,
            vhost,
            f"a non-empty string of at most {TRACKING_KEY_MAX} bytes expected",
        )
    return ConsumerSpec(start, given, filters, unfiltered, key)
