"""basic.deliver frames from per-channel templates: the delivery hot path (protocol layer, pure).

A delivery's method frame differs from the previous one on the same channel only in its
delivery tag and redelivered flag: the consumer tag, exchange and routing key repeat
message after message.  :class:`DeliverEncoder` keeps, per channel, the encoded bytes
around the tag for each (consumer tag, exchange, routing key) it has seen, so a delivery
is one dict lookup, two ``struct`` packs and one join.  Messages it cannot take as a
single body frame with their wire properties at hand (re-encoded properties, large or
empty bodies) go through :func:`~amqplite.protocol.frames.encode_deliver`, which produces
the same bytes.

:meth:`DeliverEncoder.encode_batch` does the same for a stream reader's run (a
:class:`~amqplite.message.MessageRun`, consecutive tags, none redelivered), in one loop
straight into the caller's output buffer, stopping at a byte limit.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Protocol

from amqplite.message import Body, Message, MessageRun
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


class Deliverable(Protocol):
    """What :meth:`DeliverEncoder.encode_many` reads of each delivery (the broker's queue
    entries have both)."""

    @property
    def message(self) -> Message: ...

    @property
    def redelivered(self) -> bool: ...


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
        """The bytes :func:`~amqplite.protocol.frames.encode_deliver` gives for the same call.

        (:meth:`encode_head` with the body and frame end joined in the same step: this is
        the path of every small delivery, one call and one join.)"""
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

    def encode_head(
        self,
        consumer_tag: str,
        delivery_tag: int,
        redelivered: bool,
        exchange: str,
        routing_key: str,
        message: Message,
        frame_max: int,
    ) -> bytes | None:
        """What :meth:`encode` gives up to the body (the body and the frame end octet
        follow), or None for a message the templates cannot take (no wire properties, an
        empty body or one of several frames).  The server's outbox sends a large body
        from its own buffer after these bytes."""
        raw = message.raw_properties
        size = len(message.body)
        if raw is None or not size or (frame_max and size > frame_max - 8):
            return None
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
            )
        )

    def encode_many(
        self,
        consumer_tag: str,
        delivery_tag: int,
        entries: Sequence[Deliverable],
        start: int,
        max_body: int,
        frame_max: int,
        out: list[Body],
    ) -> int:
        """Append to ``out`` the bytes of :meth:`encode` for ``entries[start:]``, tagged
        ``delivery_tag`` + their index, up to the first whose body is ``max_body`` bytes or
        more (the caller sends that one otherwise); the index it stopped at.

        The loop of :meth:`encode`, with the template of the last (exchange, routing key)
        kept at hand: a run of deliveries from one publisher looks it up once."""
        templates = self._templates
        channel = self.channel
        limit = frame_max - 8 if frame_max else max_body
        body_head = _BODY.pack
        last_exchange = last_key = None
        pack = None
        head = tail = b""
        for i in range(start, len(entries)):
            entry = entries[i]
            message = entry.message
            body = message.body
            size = len(body)
            if size >= max_body:
                return i
            raw = message.raw_properties
            exchange = message.exchange
            routing_key = message.routing_key
            if raw is None or not size or size > limit:
                out.append(
                    encode_deliver(
                        channel,
                        consumer_tag,
                        delivery_tag + i,
                        entry.redelivered,
                        exchange,
                        routing_key,
                        message,
                        frame_max,
                    )
                )
                continue
            if exchange is not last_exchange or routing_key is not last_key or pack is None:
                template = templates.get((consumer_tag, exchange, routing_key))
                if template is None:
                    template = self._template(consumer_tag, exchange, routing_key)
                packer, head, tail = template
                pack = packer.pack
                last_exchange = exchange
                last_key = routing_key
            out += (
                pack(
                    head,
                    delivery_tag + i,
                    entry.redelivered,
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
                body_head(FRAME_END, FRAME_BODY, channel, size),
                body,
                _END,
            )
        return len(entries)

    def encode_batch(
        self,
        out: bytearray,
        consumer_tag: str,
        delivery_tag: int,
        messages: MessageRun,
        start: int,
        body_max: int,
        limit: int,
    ) -> int:
        """Append to ``out`` the frames of ``messages`` from ``start`` (not redelivered), tags
        from ``delivery_tag`` up, as :meth:`encode` gives them; how many were encoded.

        Stops before the first message the templates cannot take (no wire properties, an
        empty body or one over ``body_max`` bytes: the caller sends it another way) and
        after the message that took ``out`` to ``limit`` bytes or more.
        """
        channel = self.channel
        templates = self._templates
        pack_body = _BODY.pack
        exchange: str | None = None
        routing_key: str | None = None
        packer = head = tail = None
        last_size = -1
        body_head = b""
        exchanges, routing_keys, _properties, raws, bodies = messages
        i = start
        end = len(bodies)
        while i < end:
            raw = raws[i]
            body = bodies[i]
            size = len(body)
            if raw is None or not size or size > body_max:
                break
            # Consecutive messages of a chunk share their exchange and routing-key strings.
            if exchanges[i] is not exchange or routing_keys[i] is not routing_key:
                exchange = exchanges[i]
                routing_key = routing_keys[i]
                template = templates.get((consumer_tag, exchange, routing_key))
                if template is None:
                    template = self._template(consumer_tag, exchange, routing_key)
                packer, head, tail = template
            if size != last_size:
                last_size = size
                body_head = pack_body(FRAME_END, FRAME_BODY, channel, size)
            out += packer.pack(  # type: ignore[union-attr]
                head,
                delivery_tag,
                False,
                tail,
                FRAME_END,
                FRAME_HEADER,
                channel,
                12 + len(raw),
                60,
                0,
                size,
            )
            out += raw
            out += body_head
            out += body
            out += _END
            delivery_tag += 1
            i += 1
            if len(out) >= limit:
                break
        return i - start
