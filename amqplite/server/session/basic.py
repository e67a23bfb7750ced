"""basic.* methods and publishes: the messaging path through the session (server layer, session package).

:func:`publish` is the hot path: one call per basic.publish, which numbers the confirm and
hands the :class:`~amqplite.message.Message` the protocol assembled (with the received
property bytes) to the broker channel.  Deliveries go out through
:meth:`SessionChannel.deliver <amqplite.server.session.channel.SessionChannel.deliver>`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

from amqplite.broker.results import ROUTED_STREAM, TX_BUFFERED
from amqplite.errors import AMQPConnectionError, ReplyCode
from amqplite.message import Message
from amqplite.protocol import methods as m
from amqplite.server.session import reply_to

if TYPE_CHECKING:
    from amqplite.server.session.channel import ChannelHandler, SessionChannel
    from amqplite.server.session.core import Session

#: At most this many repeated publishes are taken from the input at once (the stream
#: buffers up to 4,096 messages per chunk).
RUN_MAX = 1024


def publish(session: Session, ch: SessionChannel, method: m.BasicPublish, message: Message) -> None:
    """A basic.publish with its content, assembled by the protocol into ``message``."""
    if method.immediate:
        raise AMQPConnectionError(
            ReplyCode.NOT_IMPLEMENTED, "immediate=true", method.CLASS_ID, method.METHOD_ID
        )
    session.publishing = True
    channel = ch.broker
    seq = 0
    if channel.confirm:
        ch.published = seq = ch.published + 1
        if not ch.queued:
            ch.queued = True
            session.confirming.append(ch)
    properties = message.properties
    if properties.reply_to == reply_to.DIRECT_REPLY_TO:
        # Re-encoded with the new reply_to (no raw properties).
        properties = attrs.evolve(properties, reply_to=reply_to.reply_queue_of(ch))
        message = Message(message.exchange, message.routing_key, properties, message.body)
    mandatory = method.mandatory
    result = channel.publish(method.exchange, method.routing_key, message, mandatory=mandatory)
    if result is TX_BUFFERED:
        ch.tx_publishes.append((mandatory, message))
    elif mandatory and not result.routed:
        return_unroutable(session, ch.number, message)
    if seq:
        if result.rejected:
            ch.nacks.append(seq)
        if result.durable_write:
            session.sync_pending = True
    if result is ROUTED_STREAM and message.raw_properties is not None:
        _publish_run(session, ch, message)


def _publish_run(session: Session, ch: SessionChannel, message: Message) -> None:
    """The publishes right behind one that went to a stream, repeating it but for the
    body (a publisher's usual stream), go to the stream together: one call appends them
    all, instead of an event, a ``Message`` routed and checked, and an append each."""
    bodies = session.proto.repeated_contents(ch.number, RUN_MAX)
    if not bodies:
        return
    rejected = ch.broker.publish_repeated(message, bodies)
    if ch.broker.confirm:
        first = ch.published + 1
        ch.published += len(bodies)
        ch.nacks.extend(first + i for i in rejected)
        session.sync_pending = True


def return_unroutable(session: Session, channel: int, message: Message) -> None:
    session.outbox.write(
        session.proto.content_parts(
            channel,
            m.BasicReturn(ReplyCode.NO_ROUTE, "NO_ROUTE", message.exchange, message.routing_key),
            message,
        )
    )


def qos(session: Session, ch: SessionChannel, method: m.BasicQos) -> None:
    mark = len(session.outbox.buffer)
    ch.broker.qos(method.prefetch_count, prefetch_size=method.prefetch_size, global_=method.global_)
    session.reply_before_deliveries(mark, ch.number, m.BasicQosOk())


def consume(session: Session, ch: SessionChannel, method: m.BasicConsume) -> None:
    number = ch.number

    def registered(tag: str) -> None:
        # Called before the first delivery, which must follow consume-ok.
        session.send(number, m.BasicConsumeOk(tag))

    if method.queue == reply_to.DIRECT_REPLY_TO:
        reply_to.consume(ch, method, None if method.no_wait else registered)
        return
    ch.broker.consume(
        method.queue,
        method.consumer_tag,
        no_ack=method.no_ack,
        exclusive=method.exclusive,
        arguments=method.arguments,
        on_registered=None if method.no_wait else registered,
    )


def cancel(session: Session, ch: SessionChannel, method: m.BasicCancel) -> None:
    ch.broker.cancel(method.consumer_tag)
    if not method.no_wait:
        session.send(ch.number, m.BasicCancelOk(method.consumer_tag))


def get(session: Session, ch: SessionChannel, method: m.BasicGet) -> None:
    result = ch.broker.get(method.queue, no_ack=method.no_ack)
    if result is None:
        session.send(ch.number, m.BasicGetEmpty())
        return
    session.outbox.write(
        session.proto.content_parts(
            ch.number,
            m.BasicGetOk(
                result.delivery_tag,
                result.redelivered,
                result.exchange,
                result.routing_key,
                result.message_count,
            ),
            result.message,
        )
    )


def ack(session: Session, ch: SessionChannel, method: m.BasicAck) -> None:
    ch.broker.ack(method.delivery_tag, multiple=method.multiple)


def nack(session: Session, ch: SessionChannel, method: m.BasicNack) -> None:
    ch.broker.nack(method.delivery_tag, multiple=method.multiple, requeue=method.requeue)


def reject(session: Session, ch: SessionChannel, method: m.BasicReject) -> None:
    ch.broker.reject(method.delivery_tag, requeue=method.requeue)


def recover(session: Session, ch: SessionChannel, method: m.BasicRecover) -> None:
    mark = len(session.outbox.buffer)
    ch.broker.recover(method.requeue)
    session.reply_before_deliveries(mark, ch.number, m.BasicRecoverOk())


def recover_async(session: Session, ch: SessionChannel, method: m.BasicRecoverAsync) -> None:
    ch.broker.recover(method.requeue)


HANDLERS: dict[type[m.Method], ChannelHandler] = {
    m.BasicQos: qos,
    m.BasicConsume: consume,
    m.BasicCancel: cancel,
    m.BasicGet: get,
    m.BasicAck: ack,
    m.BasicNack: nack,
    m.BasicReject: reject,
    m.BasicRecover: recover,
    m.BasicRecoverAsync: recover_async,
}
