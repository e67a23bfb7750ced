"""Events a :class:`~amqplite.protocol.connection.ServerConnection` produces from received bytes (protocol layer, pure).

Events are values: treat them as read-only.  The ones without fields are singletons
(``PROTOCOL_HEADER``, ``HEARTBEAT``, ``EOF``) so the hot path allocates nothing for them;
compare with ``isinstance`` or ``is``.  :class:`Method` and :class:`Content`, one of which
is built per received message, are the cheapest to build: Method a plain slotted class (a
frozen attrs class sets each field through ``object.__setattr__``, three times as slow),
Content a named tuple built in C (``make bench-micro``: ``decode_publish_16b``).
"""

from __future__ import annotations

from typing import NamedTuple

import attrs

from amqplite.message import Message
from amqplite.protocol.frames import PROTOCOL_HEADER as _OUR_HEADER
from amqplite.protocol.methods import BasicPublish
from amqplite.protocol.methods import Method as _Method


@attrs.frozen(slots=True)
class ProtocolHeader:
    """The client sent a valid AMQP 0-9-1 protocol header: send connection.start."""


@attrs.frozen(slots=True)
class ProtocolHeaderMismatch:
    """The client sent something other than our protocol header.

    As the spec and RabbitMQ require, write ``reply`` (our header) and close the socket;
    no Close method is sent.  Everything received afterwards is ignored.
    """

    received: bytes
    reply: bytes = _OUR_HEADER


@attrs.define(slots=True)
class Method:
    """A method without content on ``channel`` (0 for the connection class)."""

    channel: int
    method: _Method


@attrs.define(slots=True)
class Acks:
    """basic.ack with ``multiple`` false, once per tag in ``tags``, in order, on an open
    ``channel``: a run of such frames in one receive buffer is one event (see
    ``ServerConnection._ack_run``), so a consumer acking each message costs one event per
    buffer instead of one per message."""

    channel: int
    tags: list[int]


class Content(NamedTuple):
    """A content-carrying method (basic.publish) assembled with its header and body frames
    into the :class:`~amqplite.message.Message` the broker takes as it is.

    A named tuple, so the hot path builds it with one C call (``tuple.__new__(Content,
    (channel, method, message))``) instead of a Python ``__init__``; with the Message it
    is one of the two objects a publish costs here.  The message's ``raw_properties`` are
    the property flags and list exactly as received.
    """

    channel: int
    method: BasicPublish
    message: Message


@attrs.frozen(slots=True)
class Heartbeat:
    """A heartbeat frame (any received byte counts as liveness; this is informational)."""


@attrs.frozen(slots=True)
class EOF:
    """The peer closed its side of the socket (``receive_data(b"")``)."""


Event = ProtocolHeader | ProtocolHeaderMismatch | Method | Acks | Content | Heartbeat | EOF

PROTOCOL_HEADER = ProtocolHeader()
HEARTBEAT = Heartbeat()
EOF_EVENT = EOF()
