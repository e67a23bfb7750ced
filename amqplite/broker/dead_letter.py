"""Building dead-lettered copies of messages with RabbitMQ's x-death headers (broker layer).

A dead-lettered message is a *new* :class:`Message` (the original may still sit in other
queues).  Its headers get an ``x-death`` array with one table per (queue, reason): the
entry for this death is created with ``count`` 1 or has its count incremented, and is
moved to the front (most recent first).  ``x-first-death-*`` are set once;
``x-last-death-*`` (RabbitMQ 3.13) always.  A per-message ``expiration`` is moved into
the new entry's ``original-expiration`` so the copy does not expire again.  ``time`` is
an aware UTC ``datetime`` (the field codec's type for AMQP timestamps), whole seconds.
"""

from __future__ import annotations

import datetime
from typing import Any

import attrs

from amqplite.message import FieldTable, Long, Message

REJECTED = "rejected"
EXPIRED = "expired"
MAXLEN = "maxlen"
DELIVERY_LIMIT = "delivery_limit"


def routing_keys(message: Message) -> list[str]:
    """The routing key plus CC keys a message was published with (BCC is never kept)."""
    keys = [message.routing_key]
    headers = message.properties.headers
    if headers:
        cc = headers.get("CC")
        if isinstance(cc, list):
            keys.extend(
                k.decode() if isinstance(k, bytes) else k for k in cc if isinstance(k, str | bytes)
            )
    return keys


def dead_lettered_copy(
    message: Message,
    queue: str,
    reason: str,
    now: float,
    dead_letter_exchange: str,
    dead_letter_routing_key: str | None,
) -> Message:
    """The copy of ``message`` to republish to ``dead_letter_exchange``."""
    props = message.properties
    headers: dict[str, Any] = dict(props.headers) if props.headers else {}
    time = datetime.datetime.fromtimestamp(int(now), tz=datetime.UTC)
    exchange = message.exchange
    keys = routing_keys(message)

    deaths_in = headers.get("x-death")
    deaths: list[Any] = list(deaths_in) if isinstance(deaths_in, list) else []
    found = None
    for i, death in enumerate(deaths):
        if (
            isinstance(death, dict)
            and death.get("queue") == queue
            and death.get("reason") == reason
        ):
            found = i
            break
    if found is not None:
        entry = dict(deaths.pop(found))
        count = entry.get("count", 0)
        entry["count"] = Long((count if isinstance(count, int) else 0) + 1)
    else:
        entry = {
            "count": Long(1),
            "reason": reason,
            "queue": queue,
            "time": time,
            "exchange": exchange,
            "routing-keys": keys,
        }
        if props.expiration is not None:
            entry["original-expiration"] = props.expiration
    deaths.insert(0, entry)
    headers["x-death"] = deaths
    if "x-first-death-reason" not in headers:
        headers["x-first-death-reason"] = reason
        headers["x-first-death-queue"] = queue
        headers["x-first-death-exchange"] = exchange
    headers["x-last-death-reason"] = reason
    headers["x-last-death-queue"] = queue
    headers["x-last-death-exchange"] = exchange

    routing_key = message.routing_key
    if dead_letter_routing_key is not None:
        # Routed with the dead-letter key alone: the CC keys no longer apply.
        routing_key = dead_letter_routing_key
        headers.pop("CC", None)
    new_props = attrs.evolve(props, headers=headers, expiration=None)
    return Message(
        exchange=dead_letter_exchange,
        routing_key=routing_key,
        properties=new_props,
        body=message.body,
    )


def is_cycle(queue: str, headers: FieldTable) -> bool:
    """RabbitMQ's cycle check for dead-lettering into ``queue`` (x-death already updated).

    A cycle is the run of deaths back to the previous death in ``queue``; it is dropped
    only if nothing in it was a ``rejected`` (a consumer taking part breaks the loop).
    """
    deaths = headers.get("x-death")
    if not isinstance(deaths, list):
        return False
    for i, death in enumerate(deaths):
        if isinstance(death, dict) and death.get("queue") == queue:
            return all(
                not isinstance(d, dict) or d.get("reason") != REJECTED for d in deaths[: i + 1]
            )
    return False
