"""What a RabbitMQ refuses that amqplite accepts, so a plan can say so before anything changes.

Broker core, pure.  amqplite's queues accept every argument on every queue type (a
delivery limit on a classic queue works here); RabbitMQ ties some arguments to a queue
type and refuses the declare otherwise ("invalid arg 'x-delivery-limit' ... of queue type
rabbit_classic_queue"), which over AMQP closes the channel half-way through an apply.
Each rule names the argument, the versions it applies to and how to fix the file.
Checked against RabbitMQ 3.10.8.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from amqplite.broker.arguments import CLASSIC_ONLY_ARGS, QUORUM_ONLY_ARGS
from amqplite.broker.stream_args import NOT_FOR_STREAMS

if TYPE_CHECKING:
    from amqplite.broker.definitions.model import ExchangeSpec, QueueSpec
    from amqplite.broker.definitions.plan import Target

#: x-argument -> the queue types that accept it on RabbitMQ (others refuse the declare).
#: amqplite refuses the same classic-only and quorum-only arguments itself, except that
#: its classic queues also honour a delivery limit, a dead-letter strategy and a leader
#: locator, which RabbitMQ 3.10 refuses ("of queue type rabbit_classic_queue").
_ONLY_ON: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(CLASSIC_ONLY_ARGS, ("classic",)),
    **dict.fromkeys(QUORUM_ONLY_ARGS, ("quorum",)),
    "x-delivery-limit": ("quorum",),
    "x-dead-letter-strategy": ("quorum",),
    "x-queue-leader-locator": ("quorum",),
}


#: (queue type, x-argument) -> the first RabbitMQ version that accepts it.
_SINCE: dict[tuple[str, str], tuple[int, int]] = {
    ("quorum", "x-message-ttl"): (3, 10),  # quorum queues got message TTL in 3.10
}


def _version(text: str) -> tuple[int, ...] | None:
    parts = text.split(".")
    try:
        return tuple(int(p) for p in parts[:2])
    except ValueError:
        return None


def _name(target: Target) -> str:
    return f"RabbitMQ {target.version}".rstrip()


def queue_refusal(target: Target, q: QueueSpec) -> tuple[str, str] | None:
    """``(argument, why and how to fix)`` when ``target`` would refuse declaring ``q``."""
    qtype = q.queue_type
    broker = _name(target)
    if qtype == "stream":
        return _stream_refusal(broker, q)
    for key in q.arguments:
        allowed = _ONLY_ON.get(key)
        if allowed is None or qtype in allowed:
            continue
        if allowed == ("quorum",) and qtype == "classic":
            fix = (
                "add 'queue_type: quorum' to the queue (quorum queues are durable and "
                "cannot be exclusive or auto-delete), or drop the argument"
            )
        else:
            fix = f"drop the argument, or make it a {' or '.join(allowed)} queue"
        return key, (
            f"{broker} refuses {key} on a {qtype} queue (it is for {' and '.join(allowed)} "
            f"queues only): {fix}"
        )
    version = _version(target.version)
    for key in q.arguments:
        since = _SINCE.get((qtype, key))
        if since is not None and version is not None and version < since:
            first = ".".join(map(str, since))
            return key, (
                f"{broker} refuses {key} on a {qtype} queue (accepted from RabbitMQ {first}): "
                "upgrade RabbitMQ, or drop the argument"
            )
    if qtype == "quorum" and (q.auto_delete or not q.durable):
        flag = "auto_delete: true" if q.auto_delete else "durable: false"
        return "", f"{broker} refuses a quorum queue with {flag}: remove it from the queue"
    return None


def _stream_refusal(broker: str, q: QueueSpec) -> tuple[str, str] | None:
    """A stream takes none of the classic/quorum arguments and is always durable."""
    for key in q.arguments:
        if key in NOT_FOR_STREAMS:
            return key, (
                f"{broker} refuses {key} on a stream (retention is max_age and "
                "max_length_bytes): drop the argument"
            )
    if q.auto_delete or not q.durable:
        flag = "auto_delete: true" if q.auto_delete else "durable: false"
        return "", f"{broker} refuses a stream with {flag}: remove it from the queue"
    return None


def exchange_refusal(target: Target, e: ExchangeSpec) -> str | None:
    """Why ``target`` would refuse declaring ``e`` (none known: amqplite's types are RabbitMQ's)."""
    return None
