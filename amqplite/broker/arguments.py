"""Validation and equivalence of queue and exchange arguments (broker layer).

RabbitMQ validates the ``x-…`` arguments it understands when a queue is declared and
refuses bad values with 406 PRECONDITION_FAILED naming the argument; it ignores
arguments it does not know.  On redeclaration only the arguments that shape a queue's
behaviour take part in the equivalence check (the others may differ freely).  The texts
follow RabbitMQ's (``invalid arg 'x-max-length' for queue 'q' in vhost '/':
{value_negative,-1}``).
"""

from __future__ import annotations

from typing import Any

import attrs

from amqplite.errors import precondition_failed
from amqplite.message import FieldTable

OVERFLOW_MODES = ("drop-head", "reject-publish", "reject-publish-dlx")
#: Streams are declared apart (amqplite.broker.stream_args) and never get here.
QUEUE_TYPES = ("classic", "quorum")
MAX_PRIORITY_LIMIT = 255

#: The queue arguments whose values must match on redeclaration (RabbitMQ's list).
EQUIVALENT_QUEUE_ARGS = (
    "x-expires",
    "x-message-ttl",
    "x-dead-letter-exchange",
    "x-dead-letter-routing-key",
    "x-max-length",
    "x-max-length-bytes",
    "x-max-priority",
    "x-overflow",
    "x-queue-mode",
    "x-queue-type",
    "x-single-active-consumer",
    "x-delivery-limit",
)
EQUIVALENT_EXCHANGE_ARGS = ("alternate-exchange",)
#: Arguments RabbitMQ 3.10 knows but refuses on a quorum queue (406 "of queue type").
CLASSIC_ONLY_ARGS = ("x-max-priority", "x-queue-mode", "x-queue-master-locator", "x-queue-version")
#: ... and on a classic queue.
QUORUM_ONLY_ARGS = (
    "x-quorum-initial-group-size",
    "x-max-in-memory-length",
    "x-max-in-memory-bytes",
    "x-dead-letter-strategy",
)


@attrs.frozen
class QueueArgs:
    """The queue arguments the core acts on, parsed once at declaration."""

    message_ttl: int | None = None  # ms
    expires: int | None = None  # ms
    max_length: int | None = None
    max_length_bytes: int | None = None
    overflow: str = "drop-head"
    dead_letter_exchange: str | None = None
    dead_letter_routing_key: str | None = None
    max_priority: int | None = None
    single_active_consumer: bool = False
    delivery_limit: int | None = None
    queue_type: str = "classic"
    consumer_timeout: int | None = None  # ms
    #: ``x-queue-mode: lazy``: persistent message bodies stay on disk from the start.
    lazy: bool = False


def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "long"
    if isinstance(value, str | bytes):
        return "longstr"
    if isinstance(value, float):
        return "double"
    if value is None:
        return "void"
    return type(value).__name__


def wire_type(value: Any) -> str:
    """RabbitMQ's name for the field type a client library encodes ``value`` as."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "signedint" if -(2**31) <= value < 2**31 else "long"
    if isinstance(value, str | bytes):
        return "longstr"
    if isinstance(value, float):
        return "double"
    if isinstance(value, dict):
        return "table"
    if isinstance(value, list):
        return "array"
    return _type_name(value)


def _typed(value: Any) -> str:
    if value is None:
        return "none"
    return f"the value '{_describe(value)}' of type '{wire_type(value)}'"


def invalid_arg(arg: str, queue: str, vhost: str, detail: str) -> Exception:
    """RabbitMQ's 406 for a bad queue argument (classic and stream queues alike)."""
    return precondition_failed(
        f"invalid arg '{arg}' for queue '{queue}' in vhost '{vhost}': {detail}"
    )


def int_arg(
    args: FieldTable, arg: str, queue: str, vhost: str, *, positive: bool = False
) -> int | None:
    if arg not in args:
        return None
    value = args[arg]
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid_arg(arg, queue, vhost, f'"expected integer, got {wire_type(value)}"')
    if value < 0:
        raise invalid_arg(arg, queue, vhost, f"{{value_negative,{value}}}")
    if positive and value == 0:
        raise invalid_arg(arg, queue, vhost, "{value_zero,0}")
    return value


def _str_arg(args: FieldTable, arg: str, queue: str, vhost: str) -> str | None:
    if arg not in args:
        return None
    value = args[arg]
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str):
        raise invalid_arg(arg, queue, vhost, f"{{unacceptable_type,{wire_type(value)}}}")
    return value


def parse_queue_args(args: FieldTable, queue: str, vhost: str) -> QueueArgs:
    """Validate ``args`` for queue ``queue``; 406 naming the first bad argument."""
    if not args:
        return QueueArgs()
    message_ttl = int_arg(args, "x-message-ttl", queue, vhost)
    expires = int_arg(args, "x-expires", queue, vhost, positive=True)
    max_length = int_arg(args, "x-max-length", queue, vhost)
    max_length_bytes = int_arg(args, "x-max-length-bytes", queue, vhost)
    max_priority = int_arg(args, "x-max-priority", queue, vhost)
    if max_priority is not None and max_priority > MAX_PRIORITY_LIMIT:
        raise invalid_arg("x-max-priority", queue, vhost, f"{{max_value_exceeded,{max_priority}}}")
    delivery_limit = int_arg(args, "x-delivery-limit", queue, vhost)
    consumer_timeout = int_arg(args, "x-consumer-timeout", queue, vhost, positive=True)
    overflow = _str_arg(args, "x-overflow", queue, vhost) or "drop-head"
    if overflow not in OVERFLOW_MODES:
        raise invalid_arg("x-overflow", queue, vhost, "invalid_overflow")
    dlx = _str_arg(args, "x-dead-letter-exchange", queue, vhost)
    dlrk = _str_arg(args, "x-dead-letter-routing-key", queue, vhost)
    if dlrk is not None and dlx is None:
        raise invalid_arg(
            "x-dead-letter-routing-key", queue, vhost, "routing_key_but_no_dlx_defined"
        )
    sac = args.get("x-single-active-consumer", False)
    if not isinstance(sac, bool):
        raise invalid_arg(
            "x-single-active-consumer", queue, vhost, f"{{unacceptable_type,{_type_name(sac)}}}"
        )
    queue_type = _str_arg(args, "x-queue-type", queue, vhost) or "classic"
    if queue_type not in QUEUE_TYPES:
        raise invalid_arg(
            "x-queue-type", queue, vhost, f"\"unsupported queue type '{queue_type}'\""
        )
    # x-delivery-limit is deliberately allowed on classic queues too (an amqplite
    # extension; RabbitMQ 3.10 refuses it there).
    for arg in CLASSIC_ONLY_ARGS if queue_type == "quorum" else QUORUM_ONLY_ARGS:
        if arg in args:
            raise precondition_failed(
                f"invalid arg '{arg}' for queue '{queue}' in vhost '{vhost}' "
                f"of queue type rabbit_{queue_type}_queue"
            )
    version = int_arg(args, "x-queue-version", queue, vhost)
    if version is not None and version not in (1, 2):
        raise invalid_arg(
            "x-queue-version", queue, vhost, f"\"unsupported queue version '{version}'\""
        )
    mode = _str_arg(args, "x-queue-mode", queue, vhost)
    if mode is not None and mode not in ("default", "lazy"):
        raise invalid_arg("x-queue-mode", queue, vhost, f"\"unsupported queue mode '{mode}'\"")
    return QueueArgs(
        lazy=mode == "lazy",
        message_ttl=message_ttl,
        expires=expires,
        max_length=max_length,
        max_length_bytes=max_length_bytes,
        overflow=overflow,
        dead_letter_exchange=dlx,
        dead_letter_routing_key=dlrk,
        max_priority=max_priority,
        single_active_consumer=sac,
        delivery_limit=delivery_limit,
        queue_type=queue_type,
        consumer_timeout=consumer_timeout,
    )


def _normalise(arg: str, value: Any) -> Any:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if arg == "x-queue-type" and value is None:
        return "classic"
    return value


def assert_equivalent_args(
    kind: str,
    name: str,
    vhost: str,
    current: FieldTable,
    received: FieldTable,
    checked: tuple[str, ...],
) -> None:
    """406 ``inequivalent arg`` if any of ``checked`` differs between the two tables."""
    for arg in checked:
        have = _normalise(arg, current.get(arg))
        got = _normalise(arg, received.get(arg))
        if have != got or (
            type(have) is not type(got) and isinstance(have, bool) != isinstance(got, bool)
        ):
            if got is not None and have is not None:
                raise inequivalent(kind, name, vhost, arg, _describe(got), _describe(have))
            # One side absent: RabbitMQ describes the other with its field type.
            raise precondition_failed(
                f"inequivalent arg '{arg}' for {kind} '{name}' in vhost '{vhost}': "
                f"received {_typed(got)} but current is {_typed(have)}"
            )


def inequivalent(
    kind: str, name: str, vhost: str, arg: str, received: str, current: str
) -> Exception:
    return precondition_failed(
        f"inequivalent arg '{arg}' for {kind} '{name}' in vhost '{vhost}': "
        f"received '{received}' but current is '{current}'"
    )


def flag(value: bool) -> str:
    return "true" if value else "false"
