"""basic.deliver frames from per-channel templates: the delivery hot path (protocol layer, pure).

A delivery's method frame differs from the previous one on the same channel only in its
delivery tag and redelivered flag: the consumer tag, exchange and routing key repeat
message after message.  :class:`DeliverEncoder` keeps, per channel, the encoded bytes
around the tag for each (consumer tag, exchange, routing key) it has seen, so a delivery
is one dict lookup, two ``struct`` packs and one join.  Messages it cannot take as a
single body frame with their wire properties at hand (re-encoded properties, large or
empty bodies) go through :func:`~amqplite.protocol.frames.encode_deliver`, which produces
the same bytes.
"""

from __future__ import annotations

import struct

from amqplite.message import Message
from amqplite.protocol.frames import (
    FRAME_BODY,
    FRAME_END,
    FRAME_HEADER,
    FRAME_METHOD,
    encode_deliver,
)

# Header frame end + body frame head.
_BODY = struct.Struct(">BBHI")
# basic.deliver frame head, class/method, consumer-tag length.
_METHOD_HEAD = struct.Struct(">BHIHHB")
_END = bytes((FRAME_END,))

#: Distinct (consumer tag, exchange, routing key) kept per channel; cleared when full, so
#: a publisher cycling through many routing keys cannot grow it without bound.
TEMPLATES_MAX = 256


class DeliverEncoder:
    """Encodes basic.deliver + header + body frames for one channel."""

    __slots__ = ("_templates", "channel")

    def __init__(self, channel: int) -> None:
        self.channel = channel
        self._templates: dict[tuple[str, str, str], tuple[struct.Struct, bytes, bytes]] = {}

    def _template(
        self, consumer_tag: str, exchange: str, routing_key: str
    ) -> tuple[struct.Struct, bytes, bytes]:
        """The method frame before the delivery tag and after the redelivered flag, and
        one struct that packs them around the tag, then the content header frame's head."""
        ct = consumer_tag.encode()
        ex = exchange.encode()
        rk = routing_key.encode()
        size = 16 + len(ct) + len(ex) + len(rk)
        head = _METHOD_HEAD.pack(FRAME_METHOD, self.channel, size, 60, 60, len(ct)) + ct
        tail = bytes((len(ex),)) + ex + bytes((len(rk),)) + rk
        # head, tag, redelivered, tail, then the method frame end and the header frame head:
        # type, channel, size, class 60, weight 0, body size.
        packer = struct.Struct(f">{len(head)}sQB{len(tail)}sBBHIHHQ")
        templates = self._templates
        if len(templates) >= TEMPLATES_MAX:
            templates.clear()
        template = templates[consumer_tag, exchange, routing_key] = packer, head, tail
        return template

    def encode(
        self,
        consumer_tag: str,
        delivery_tag: int,
        redelivered: bool,
        exchange: str,
        routing_key: str,
        message: Message,
        frame_max: int,
    ) -> bytes:
        """The bytes :func:`~amqplite.protocol.frames.encode_deliver` gives for the same call."""
        raw = message.raw_properties
        body = message.body
        size = len(body)
        if raw is None or not size or (frame_max and size > frame_max - 8):
            return encode_deliver(
                self.channel,
                consumer_tag,
                delivery_tag,
                redelivered,
                exchange,
                routing_key,
                message,
                frame_max,
            )
        template = self._templates.get((consumer_tag, exchange, routing_key))
        if template is None:
            template = self._template(consumer_tag, exchange, routing_key)
        packer, head, tail = template
        channel = self.channel
        return b"".join(
            (
                packer.pack(
                    head,
                    delivery_tag,
                    redelivered,
                    tail,
                    FRAME_END,
                    FRAME_HEADER,
                    channel,
                    12 + len(raw),
                    60,
                    0,
                    size,
                ),
                raw,
                _BODY.pack(FRAME_END, FRAME_BODY, channel, size),
                body,
                _END,
            )
        )
