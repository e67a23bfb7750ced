"""The ``x-death`` header, written and read: dead-lettered copies and their origin (broker layer).

Writing.  A dead-lettered message is a *new* :class:`Message` (the original may still sit in other
queues).  Its headers get an ``x-death`` array with one table per (queue, reason): the
entry for this death is created with ``count`` 1 or has its count incremented, and is
moved to the front (most recent first).  ``x-first-death-*`` are set once;
``x-last-death-*`` (RabbitMQ 3.13) always.  A per-message ``expiration`` is moved into
the new entry's ``original-expiration`` so the copy does not expire again.  ``time`` is
an aware UTC ``datetime`` (the field codec's type for AMQP timestamps), whole seconds.

Reading.  :func:`x_death` is the list of entries, most recent first (RabbitMQ's order);
:func:`origin` is the first of them: the queue that dead-lettered the message, and the
exchange and routing keys it had been published with before it got there.  Replay
(:mod:`amqplite.broker.replay`), the HTTP API and the CLI all read x-death through these.
"""

from __future__ import annotations

import datetime
from typing import Any

import attrs

from amqplite.broker.routing import routing_keys
from amqplite.message import FieldTable, Long, Message

REJECTED = "rejected"
EXPIRED = "expired"
MAXLEN = "maxlen"
DELIVERY_LIMIT = "delivery_limit"


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
    # A queued message never holds BCC (stripped before enqueueing): these are the
    # routing key plus CC, which is what RabbitMQ records as ``routing-keys``.
    keys = routing_keys(message.routing_key, props.headers)

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


# -- reading ------------------------------------------------------------------------------


@attrs.frozen(slots=True)
class Origin:
    """Where a dead letter came from: its first (most recent) ``x-death`` entry."""

    reason: str | None
    queue: str | None
    exchange: str | None
    routing_keys: tuple[str, ...]
    time: float | None  # epoch seconds
    #: Deaths in all entries (each entry counts its repeats), not only the latest one.
    deaths: int = 1


def x_death(message: Message) -> list[dict[str, Any]]:
    """The message's ``x-death`` entries (tables only), most recent first."""
    deaths = message.headers.get("x-death")
    if not isinstance(deaths, list):
        return []
    return [d for d in deaths if isinstance(d, dict)]


def death_count(deaths: list[dict[str, Any]]) -> int:
    """How many times the message died, over every ``x-death`` entry."""
    total = 0
    for death in deaths:
        count = death.get("count")
        total += count if isinstance(count, int) and not isinstance(count, bool) else 1
    return total


def origin(message: Message) -> Origin | None:
    """The message's origin, or None when it carries no ``x-death``."""
    deaths = x_death(message)
    if not deaths:
        return None
    first = deaths[0]
    keys = first.get("routing-keys")
    routing = (
        tuple(k for k in (_text(k) for k in keys) if k is not None)
        if isinstance(keys, list)
        else ()
    )
    return Origin(
        reason=_text(first.get("reason")),
        queue=_text(first.get("queue")),
        exchange=_text(first.get("exchange")),
        routing_keys=routing,
        time=_seconds(first.get("time")),
        deaths=death_count(deaths),
    )


def _seconds(value: Any) -> float | None:
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.UTC)
        return float(value.timestamp())
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def _text(value: Any) -> str | None:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value if isinstance(value, str) else None
