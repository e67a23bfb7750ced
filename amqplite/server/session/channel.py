"""One open AMQP channel as the session sees it (server layer, session package).

A :class:`SessionChannel` pairs the broker channel with what only the session knows about
it: publisher-confirm counters, the publishes of an open transaction (to return the
unroutable mandatory ones at commit), and its direct reply-to queue.  It is also the
:class:`~amqplite.broker.DeliverySink` of its broker channel: deliveries and server-side
cancels land here and are encoded straight into the connection's outbox.

It lives in ``session.channels`` while the channel is open.  Once either side closes the
channel it is dropped from there; the protocol machine alone then tracks the closing
channel (it drops everything but channel.close / close-ok), and the broker channel is
closed.  Modes (confirm, tx) are the broker channel's; the session reads them there.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from amqplite.errors import ChannelError
from amqplite.message import Body, Message, MessageRun
from amqplite.protocol import methods as m
from amqplite.protocol.deliver import DeliverEncoder
from amqplite.protocol.frames import FRAME_END_BYTE, deliver_parts
from amqplite.server.outbox import SPLICE_MIN

if TYPE_CHECKING:
    from amqplite.broker.channel import Channel as BrokerChannel
    from amqplite.broker.queue import QueueEntry
    from amqplite.server.session.core import Session


#: What answers a method on an open channel: handler(session, channel, method).
ChannelHandler = Callable[["Session", "SessionChannel", Any], None]


class SessionChannel:
    """An open channel: its broker channel plus the session's per-channel state."""

    __slots__ = (
        "broker",
        "confirmed",
        "encoder",
        "nacks",
        "number",
        "outbox",
        "proto",
        "published",
        "queued",
        "reply_queue",
        "session",
        "tx_publishes",
    )

    broker: BrokerChannel

    def __init__(self, session: Session, number: int) -> None:
        self.session = session
        # The hot path reads these per delivery.
        self.outbox = session.outbox
        self.proto = session.proto
        self.number = number
        #: basic.deliver frames for this channel, from per-consumer templates.
        self.encoder = DeliverEncoder(number)
        #: In tx mode: (mandatory, message) of each publish since the last commit, to
        #: return the unroutable mandatory ones when the commit routes them.
        self.tx_publishes: list[tuple[bool, Message]] = []
        #: Publish sequence number of the last publish (confirm mode).
        self.published = 0
        #: Highest sequence number already confirmed to the client.
        self.confirmed = 0
        #: Sequence numbers to nack (x-overflow=reject-publish), in order.
        self.nacks: list[int] = []
        #: Listed in the session's channels with confirms to emit this batch.
        self.queued = False
        #: The hidden queue behind this channel's direct reply-to consumer, if any.
        self.reply_queue: str | None = None

    @property
    def is_open(self) -> bool:
        """Still the session's channel with this number (not closed by either side)."""
        return self.session.channels.get(self.number) is self

    # -- DeliverySink ------------------------------------------------------------------

    def deliver(
        self,
        consumer_tag: str,
        delivery_tag: int,
        redelivered: bool,
        exchange: str,
        routing_key: str,
        message: Message,
    ) -> None:
        outbox = self.outbox
        frame_max = self.proto.frame_max
        if len(message.body) < SPLICE_MIN:
            outbox.buffer += self.encoder.encode(
                consumer_tag, delivery_tag, redelivered, exchange, routing_key, message, frame_max
            )
        elif head := self.encoder.encode_head(
            consumer_tag, delivery_tag, redelivered, exchange, routing_key, message, frame_max
        ):  # one body frame, sent from the body's own buffer (see outbox.py)
            outbox.splice(head, message.body, FRAME_END_BYTE)
        else:  # several body frames, each a slice of the body's buffer
            outbox.write(
                deliver_parts(
                    self.number,
                    consumer_tag,
                    delivery_tag,
                    redelivered,
                    exchange,
                    routing_key,
                    message,
                    frame_max,
                )
            )
        if not outbox.dirty:
            self.session.flushes.mark(outbox)

    def deliver_many(self, consumer_tag: str, delivery_tag: int, entries: list[QueueEntry]) -> None:
        """:meth:`deliver` for each entry: small ones encoded into one write."""
        outbox = self.outbox
        encode_many = self.encoder.encode_many
        frame_max = self.proto.frame_max
        parts: list[Body] = []
        i = 0
        count = len(entries)
        while True:
            i = encode_many(consumer_tag, delivery_tag, entries, i, SPLICE_MIN, frame_max, parts)
            if parts:
                outbox.buffer += b"".join(parts)
                parts.clear()
            if i == count:
                break
            # A large body: sent from its own buffer, not copied (see deliver).
            entry = entries[i]
            message = entry.message
            self.deliver(
                consumer_tag,
                delivery_tag + i,
                entry.redelivered,
                message.exchange,
                message.routing_key,
                message,
            )
            i += 1
        if not outbox.dirty:
            self.session.flushes.mark(outbox)

    def deliver_batch(self, consumer_tag: str, delivery_tag: int, messages: MessageRun) -> int:
        """Deliver ``messages`` (tags from ``delivery_tag`` up, not redelivered) while the
        outbox stays under its high-water mark (the first always goes); how many went.

        Small bodies are encoded in one loop straight into the outbox (see
        ``DeliverEncoder.encode_batch``); the others one by one as :meth:`deliver` does.
        """
        outbox = self.outbox
        encode = self.encoder.encode_batch
        frame_max = self.proto.frame_max
        body_max = SPLICE_MIN - 1
        if frame_max and frame_max - 8 < body_max:
            body_max = frame_max - 8
        high_water = outbox.high_water
        count = len(messages.bodies)
        done = 0
        while done < count:
            limit = high_water - outbox.in_flight
            if done and len(outbox.buffer) >= limit:
                outbox.throttled = True  # the writer resumes this channel once drained
                break
            done += encode(
                outbox.buffer, consumer_tag, delivery_tag + done, messages, done, body_max, limit
            )
            if done < count and (not done or len(outbox.buffer) < limit):
                message = messages.message(done)  # one the templates cannot take
                self.deliver(
                    consumer_tag,
                    delivery_tag + done,
                    False,
                    message.exchange,
                    message.routing_key,
                    message,
                )
                done += 1
        if not outbox.dirty:
            self.session.flushes.mark(outbox)
        return done

    def cancel_consumer(self, consumer_tag: str) -> None:
        session = self.session
        if not self.is_open or session.closing:
            return
        if session.client_capabilities.get("consumer_cancel_notify"):
            session.send(self.number, m.BasicCancel(consumer_tag, True))
            session.flushes.mark(session.outbox)

    def close_channel(self, reply_code: int, reply_text: str) -> None:
        """The core closed this channel on its own (consumer timeout, 406): tell the
        client with channel.close and discard its frames until close-ok."""
        session = self.session
        if not self.is_open or session.closing or session.finished:
            return
        session.close_channel(self, ChannelError(reply_code, reply_text), None)
        session.flushes.mark(self.outbox)

    @property
    def writable(self) -> bool:
        # Outbox.writable inlined: the broker asks once per dispatch attempt.
        outbox = self.outbox
        if len(outbox.buffer) + outbox.in_flight < outbox.high_water:
            return True
        outbox.throttled = True
        return False
