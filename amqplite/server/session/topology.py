"""exchange.* and queue.* methods: arguments to the broker channel, -ok back (server layer, session package).

Each handler takes the session, the open :class:`SessionChannel` and the decoded method.
Errors are the broker's (:class:`~amqplite.errors.ChannelError` with RabbitMQ's texts);
the session turns them into channel.close.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from amqplite.errors import ChannelError, ReplyCode
from amqplite.protocol import methods as m
from amqplite.server.session import reply_to

if TYPE_CHECKING:
    from amqplite.server.session.channel import ChannelHandler, SessionChannel
    from amqplite.server.session.core import Session


def exchange_declare(session: Session, ch: SessionChannel, method: m.ExchangeDeclare) -> None:
    if not method.exchange:
        # RabbitMQ refuses even a passive declare of the default exchange over AMQP
        # (the broker core allows the passive one for its other callers).
        raise ChannelError(
            ReplyCode.ACCESS_REFUSED, "operation not permitted on the default exchange"
        )
    ch.broker.declare_exchange(
        method.exchange,
        method.type,
        passive=method.passive,
        durable=method.durable,
        auto_delete=method.auto_delete,
        internal=method.internal,
        arguments=method.arguments,
    )
    if not method.no_wait:
        session.send(ch.number, m.ExchangeDeclareOk())


def exchange_delete(session: Session, ch: SessionChannel, method: m.ExchangeDelete) -> None:
    ch.broker.delete_exchange(method.exchange, if_unused=method.if_unused)
    if not method.no_wait:
        session.send(ch.number, m.ExchangeDeleteOk())


def exchange_bind(session: Session, ch: SessionChannel, method: m.ExchangeBind) -> None:
    ch.broker.bind_exchange(method.destination, method.source, method.routing_key, method.arguments)
    if not method.no_wait:
        session.send(ch.number, m.ExchangeBindOk())


def exchange_unbind(session: Session, ch: SessionChannel, method: m.ExchangeUnbind) -> None:
    ch.broker.unbind_exchange(
        method.destination, method.source, method.routing_key, method.arguments
    )
    if not method.no_wait:
        session.send(ch.number, m.ExchangeUnbindOk())


def queue_declare(session: Session, ch: SessionChannel, method: m.QueueDeclare) -> None:
    if reply_to.is_reply_address(method.queue):
        reply_to.declare(session, ch, method)
        return
    ok = ch.broker.declare_queue(
        method.queue,
        passive=method.passive,
        durable=method.durable,
        exclusive=method.exclusive,
        auto_delete=method.auto_delete,
        arguments=method.arguments,
    )
    if not method.no_wait:
        session.send(ch.number, m.QueueDeclareOk(ok.queue, ok.message_count, ok.consumer_count))


def queue_bind(session: Session, ch: SessionChannel, method: m.QueueBind) -> None:
    ch.broker.bind_queue(method.queue, method.exchange, method.routing_key, method.arguments)
    if not method.no_wait:
        session.send(ch.number, m.QueueBindOk())


def queue_unbind(session: Session, ch: SessionChannel, method: m.QueueUnbind) -> None:
    ch.broker.unbind_queue(method.queue, method.exchange, method.routing_key, method.arguments)
    session.send(ch.number, m.QueueUnbindOk())


def queue_purge(session: Session, ch: SessionChannel, method: m.QueuePurge) -> None:
    count = ch.broker.purge_queue(method.queue)
    if not method.no_wait:
        session.send(ch.number, m.QueuePurgeOk(count))


def queue_delete(session: Session, ch: SessionChannel, method: m.QueueDelete) -> None:
    # RabbitMQ notifies the queue's consumers (basic.cancel) only after delete-ok:
    # py-amqp raises ConsumerCancelled if the cancel arrives while it awaits the -ok.
    mark = len(session.outbox.buffer)
    count = ch.broker.delete_queue(
        method.queue, if_unused=method.if_unused, if_empty=method.if_empty
    )
    if not method.no_wait:
        session.reply_before_deliveries(mark, ch.number, m.QueueDeleteOk(count))


HANDLERS: dict[type[m.Method], ChannelHandler] = {
    m.ExchangeDeclare: exchange_declare,
    m.ExchangeDelete: exchange_delete,
    m.ExchangeBind: exchange_bind,
    m.ExchangeUnbind: exchange_unbind,
    m.QueueDeclare: queue_declare,
    m.QueueBind: queue_bind,
    m.QueueUnbind: queue_unbind,
    m.QueuePurge: queue_purge,
    m.QueueDelete: queue_delete,
}
