"""Messages as the broker holds them: basic properties plus a body, shared by all queues.

A published message is routed to any number of queues, but its content exists once:
every queue holds a reference to the same :class:`Message`.  Per-queue state (whether
it was redelivered, how often it was delivered, when it expires) lives in the queue's
own entry, never here.  Dead-lettering and replay make a *new* Message (new headers)
rather than mutating a shared one.

``raw_properties`` caches the encoded property flags and list exactly as they go on the
wire inside a content-header frame, so a delivery can reuse the bytes the publisher sent
instead of re-encoding them.  It is ``None`` when the properties were built in Python
(dead-lettering, the HTTP API) and is filled in by the protocol layer on first use.

Pure values; no I/O.  Field tables are plain ``dict[str, Any]`` whose values are the
Python types listed in :mod:`amqplite.protocol.fields` (``Decimal``, ``datetime``,
``bytes``, nested dicts and lists...).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from typing import Any, NamedTuple

import attrs

FieldTable = dict[str, Any]

#: A message body.  Small bodies are ``bytes``; a body that arrived in several frames (or
#: straight from the socket) is the ``bytearray`` it was received into, shared by every
#: queue and written out from there, so it is never mutated once the message exists.
Body = bytes | bytearray


class Long(int):
    """An integer that travels as a 64-bit signed long (``l``) in field tables.

    Plain ints are encoded in the smallest type RabbitMQ's clients accept (``I`` when they
    fit 32 bits), so a value that arrived as a long would come back narrower after a
    re-encode.  Decoding ``l`` gives a Long, and RabbitMQ's own long fields (the x-death
    ``count``) are made Long, so typed clients (Java's ``(Long)`` casts) see what RabbitMQ
    sends.  It compares, hashes and serialises like the int it is.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return f"Long({int(self)})"


@attrs.frozen(slots=True)
class BasicProperties:
    """The fourteen properties of the basic class, in wire order.  ``None`` means absent."""

    content_type: str | None = None
    content_encoding: str | None = None
    headers: FieldTable | None = None
    delivery_mode: int | None = None
    priority: int | None = None
    correlation_id: str | None = None
    reply_to: str | None = None
    expiration: str | None = None
    message_id: str | None = None
    timestamp: int | None = None
    type: str | None = None
    user_id: str | None = None
    app_id: str | None = None
    cluster_id: str | None = None


EMPTY_PROPERTIES = BasicProperties()

_message_ids = itertools.count(1)


def next_message_id() -> int:
    """A process-unique id for a new message (used as a key by stores and the HTTP API)."""
    return next(_message_ids)


def reserve_message_ids(count: int) -> range:
    """``count`` consecutive ids no other message gets (recovery numbers a million lazy
    entries at once instead of calling :func:`next_message_id` for each)."""
    global _message_ids
    first = next(_message_ids)
    _message_ids = itertools.count(first + count)
    return range(first, first + count)


@attrs.define(slots=True, eq=False)
class Message:
    """One published message: where it was published to, its properties and its body.

    Treat instances as immutable once routed (many queues share them); ``raw_properties``
    is the one field a layer may fill in later, as a cache.
    """

    exchange: str
    routing_key: str
    properties: BasicProperties
    body: Body
    raw_properties: bytes | None = None
    # The counter's own __next__ (C), not next_message_id: one Python call less per message.
    id: int = attrs.field(factory=_message_ids.__next__)

    @property
    def persistent(self) -> bool:
        return self.properties.delivery_mode == 2

    @property
    def headers(self) -> FieldTable:
        return self.properties.headers or {}

    @property
    def size(self) -> int:
        """Body size in bytes: what ``x-max-length-bytes`` counts, as in RabbitMQ."""
        return len(self.body)


class MessageRun(NamedTuple):
    """Messages as parallel lists, one per field: what a stream reader delivers from (a
    decoded chunk, or a slice of one), with no object per message.  ``raws[i]`` is None
    when message ``i``'s properties exist only as values (``properties[i]``)."""

    exchanges: list[str]
    routing_keys: list[str]
    properties: list[BasicProperties]
    raws: list[bytes | None]
    bodies: list[Body]

    @classmethod
    def of(cls, messages: Iterable[Message]) -> MessageRun:
        run = cls([], [], [], [], [])
        for message in messages:
            run.append(message)
        return run

    def append(self, message: Message) -> None:
        self.exchanges.append(message.exchange)
        self.routing_keys.append(message.routing_key)
        self.properties.append(message.properties)
        self.raws.append(message.raw_properties)
        self.bodies.append(message.body)

    def message(self, i: int) -> Message:
        """Message ``i`` as a :class:`Message` (made on demand)."""
        return Message(
            self.exchanges[i],
            self.routing_keys[i],
            self.properties[i],
            self.bodies[i],
            self.raws[i],
        )

    def slice(self, start: int, stop: int) -> MessageRun:
        return MessageRun(
            self.exchanges[start:stop],
            self.routing_keys[start:stop],
            self.properties[start:stop],
            self.raws[start:stop],
            self.bodies[start:stop],
        )

    def pick(self, indices: list[int]) -> MessageRun:
        """The messages at ``indices``, in that order."""
        exchanges, routing_keys, properties, raws, bodies = self
        return MessageRun(
            [exchanges[i] for i in indices],
            [routing_keys[i] for i in indices],
            [properties[i] for i in indices],
            [raws[i] for i in indices],
            [bodies[i] for i in indices],
        )


def with_stream_offset(props: BasicProperties, offset: int) -> BasicProperties:
    """``props`` plus the ``x-stream-offset`` header a stream delivery carries (a long, as
    RabbitMQ sends it); shared by the core's decoded view and the protocol's wire splice."""
    headers = dict(props.headers) if props.headers else {}
    headers["x-stream-offset"] = Long(offset)
    return attrs.evolve(props, headers=headers)
