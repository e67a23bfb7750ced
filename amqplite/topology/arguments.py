"""Queue and exchange arguments: friendly names, raw ``x-`` names, value checks.

Layer: topology.  A file may write ``message_ttl: 60s`` or ``x-message-ttl: 60000``;
both become ``{"x-message-ttl": 60000}``, the table a client would send.  Raw ``x-``
names take exactly what RabbitMQ accepts on the wire (integers in ms / bytes);
friendly names also take readable units (``30s``, ``5m``, ``1MiB``).  Unknown
arguments are errors rather than RabbitMQ's silent ignore, because a typo such as
``x-max-lenght`` would otherwise leave a queue unbounded without anyone noticing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal

import attrs
from yaml.nodes import Node

from amqplite.topology.nodes import NodeReader, describe

UINT32 = 2**32 - 1
Kind = Literal[
    "ms",
    "ms_positive",
    "count",
    "positive",
    "bytes",
    "choice",
    "bool",
    "name",
    "priority",
    "int_choice",
    "age",
]


@attrs.frozen
class ArgDef:
    x_name: str
    friendly: str
    kind: Kind
    choices: tuple[Any, ...] = ()


QUEUE_ARGUMENTS: tuple[ArgDef, ...] = (
    ArgDef("x-message-ttl", "message_ttl", "ms"),
    ArgDef("x-expires", "expires", "ms_positive"),
    ArgDef("x-max-length", "max_length", "count"),
    ArgDef("x-max-length-bytes", "max_length_bytes", "bytes"),
    ArgDef(
        "x-overflow", "overflow", "choice", ("drop-head", "reject-publish", "reject-publish-dlx")
    ),
    ArgDef("x-dead-letter-exchange", "dead_letter_exchange", "name"),
    ArgDef("x-dead-letter-routing-key", "dead_letter_routing_key", "name"),
    ArgDef("x-max-priority", "max_priority", "priority"),
    ArgDef("x-single-active-consumer", "single_active_consumer", "bool"),
    ArgDef("x-delivery-limit", "delivery_limit", "count"),
    ArgDef("x-queue-type", "queue_type", "choice", ("classic", "quorum", "stream")),
    ArgDef("x-queue-mode", "queue_mode", "choice", ("default", "lazy")),
    ArgDef("x-queue-version", "queue_version", "int_choice", (1, 2)),
    ArgDef(
        "x-dead-letter-strategy",
        "dead_letter_strategy",
        "choice",
        ("at-most-once", "at-least-once"),
    ),
    ArgDef(
        "x-queue-leader-locator", "queue_leader_locator", "choice", ("client-local", "balanced")
    ),
    # Stream queues (queue_type: stream); see STREAM_ONLY.
    ArgDef("x-max-age", "max_age", "age"),
    ArgDef("x-stream-max-segment-size-bytes", "stream_max_segment_size_bytes", "bytes"),
    ArgDef("x-initial-cluster-size", "initial_cluster_size", "positive"),
)
#: Arguments only a stream queue takes.
STREAM_ONLY = ("x-max-age", "x-stream-max-segment-size-bytes", "x-initial-cluster-size")
# RabbitMQ's x-max-age: digits and one unit (Y = 365 days, M = 30 days, D, h, m, s).
_AGE = re.compile(r"^[0-9]+[YMDhms]$")

EXCHANGE_ARGUMENTS: tuple[ArgDef, ...] = (
    ArgDef("alternate-exchange", "alternate_exchange", "name"),
)


def by_any_name(defs: tuple[ArgDef, ...]) -> Mapping[str, ArgDef]:
    out: dict[str, ArgDef] = {}
    for d in defs:
        out[d.x_name] = d
        out[d.friendly] = d
    return out


_DURATION = re.compile(r"^\s*(\d+)\s*(ms|s|m|h|d)\s*$")
_DURATION_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_SIZE = re.compile(r"^\s*(\d+)\s*(B|kB|KB|MB|GB|TB|KiB|MiB|GiB|TiB)\s*$")
_SIZE_BYTES = {
    "B": 1,
    "kB": 1000,
    "KB": 1000,
    "MB": 1000**2,
    "GB": 1000**3,
    "TB": 1000**4,
    "KiB": 1024,
    "MiB": 1024**2,
    "GiB": 1024**3,
    "TiB": 1024**4,
}


def parse_duration_ms(text: str) -> int | None:
    m = _DURATION.match(text)
    return int(m.group(1)) * _DURATION_MS[m.group(2)] if m else None


def parse_size(text: str) -> int | None:
    m = _SIZE.match(text)
    return int(m.group(1)) * _SIZE_BYTES[m.group(2)] if m else None


def read_size(reader: NodeReader, node: Node, path: str) -> int | None:
    """A byte count: an integer, or a string with a unit (``50MB``, ``1GiB``)."""
    value = reader.scalar_value(node)
    if isinstance(value, str):
        parsed = parse_size(value)
        if parsed is None:
            reader.report(
                node,
                path,
                f"expected a size such as 1048576, 50MB or 1GiB, got {describe(node, value)}",
            )
        return parsed
    return reader.integer(node, path, what="a size in bytes (or with a unit: 50MB, 1GiB)")


def read_argument(reader: NodeReader, node: Node, path: str, d: ArgDef, friendly: bool) -> Any:
    """Check one argument value; ``None`` means a problem was reported."""
    value = reader.scalar_value(node)
    if d.kind in ("ms", "ms_positive"):
        minimum = 1 if d.kind == "ms_positive" else 0
        if friendly and isinstance(value, str):
            ms = parse_duration_ms(value)
            if ms is None:
                reader.report(
                    node,
                    path,
                    f"expected milliseconds (or a duration such as 30s, 5m, 1h), got {describe(node, value)}",
                )
                return None
            if not minimum <= ms <= UINT32:
                reader.report(
                    node, path, f"expected a duration from {minimum} ms to {UINT32} ms, got {ms} ms"
                )
                return None
            return ms
        what = (
            "a positive integer (milliseconds)"
            if minimum
            else "a non-negative integer (milliseconds)"
        )
        return reader.integer(node, path, minimum=minimum, maximum=UINT32, what=what)
    if d.kind == "count":
        return reader.integer(node, path)
    if d.kind == "positive":
        return reader.integer(node, path, minimum=1, what="a positive integer")
    if d.kind == "age":
        if isinstance(value, str) and _AGE.match(value):
            return value
        reader.report(
            node,
            path,
            "expected an age such as 7D, 12h or 30m (digits and one of Y M D h m s; "
            f"M is months, m minutes), got {describe(node, value)}",
        )
        return None
    if d.kind == "bytes":
        if friendly:
            return read_size(reader, node, path)
        return reader.integer(node, path)
    if d.kind == "priority":
        return reader.integer(node, path, minimum=1, maximum=255)
    if d.kind == "bool":
        return reader.boolean(node, path)
    if d.kind == "choice":
        return reader.choice(node, path, [str(c) for c in d.choices])
    if d.kind == "int_choice":
        if isinstance(value, int) and not isinstance(value, bool) and value in d.choices:
            return value
        reader.report(
            node,
            path,
            f"expected one of {', '.join(map(str, d.choices))}, got {describe(node, value)}",
        )
        return None
    # "name": an exchange name or routing key, a shortstr.
    return reader.string(node, path, max_bytes=255)
