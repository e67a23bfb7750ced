"""Events a :class:`~amqplite.protocol.connection.ServerConnection` produces from received bytes (protocol layer, pure).

Events are values: treat them as read-only.  The ones without fields are singletons
(``PROTOCOL_HEADER``, ``HEARTBEAT``, ``EOF``) so the hot path allocates nothing for them;
compare with ``isinstance`` or ``is``.  :class:`Method` and :class:`Content`, one of which
is built per received message, are plain slotted classes rather than frozen ones: a frozen
attrs class sets each field through ``object.__setattr__``, which made building a Content
about three times as slow (``make bench-micro``: ``decode_publish_16b``).
"""

from __future__ import annotations

import attrs

from amqplite.message import BasicProperties, Body
from amqplite.protocol.frames import PROTOCOL_HEADER as _OUR_HEADER
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
class Content:
    """A content-carrying method (basic.publish) assembled with its header and body frames.

    ``raw_properties`` holds the property flags and list exactly as received, for
    ``Message.raw_properties``.
    """

    channel: int
    method: _Method
    properties: BasicProperties
    raw_properties: bytes
    body: Body


@attrs.frozen(slots=True)
class Heartbeat:
    """A heartbeat frame (any received byte counts as liveness; this is informational)."""


@attrs.frozen(slots=True)
class EOF:
    """The peer closed its side of the socket (``receive_data(b"")``)."""


Event = ProtocolHeader | ProtocolHeaderMismatch | Method | Content | Heartbeat | EOF

PROTOCOL_HEADER = ProtocolHeader()
HEARTBEAT = Heartbeat()
EOF_EVENT = EOF()
