"""RabbitMQ's direct reply-to (``amq.rabbitmq.reply-to``) (server layer, session package).

We back each reply consumer with a hidden exclusive, auto-delete queue named
``amq.rabbitmq.reply-to.<token>``: publishes with ``reply_to`` set to the pseudo-queue get
that name instead, so a reply published to the default exchange reaches the requester's
channel, and delivery tags stay the channel's.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import TYPE_CHECKING

from amqplite.errors import ChannelError, ReplyCode
from amqplite.protocol import methods as m

if TYPE_CHECKING:
    from amqplite.server.session.channel import SessionChannel
    from amqplite.server.session.core import Session

#: The pseudo-queue clients consume from and name in ``reply_to``.
DIRECT_REPLY_TO = "amq.rabbitmq.reply-to"
DIRECT_REPLY_PREFIX = DIRECT_REPLY_TO + "."


def is_reply_address(name: str) -> bool:
    """The pseudo-queue itself or one of the reply queues behind it."""
    return name.startswith(DIRECT_REPLY_TO) and (
        name == DIRECT_REPLY_TO or name.startswith(DIRECT_REPLY_PREFIX)
    )


def declare(session: Session, ch: SessionChannel, method: m.QueueDeclare) -> None:
    """queue.declare of a reply address: RabbitMQ lets anyone probe the pseudo-queue (clients
    detect the feature this way) and a live reply address: 0 messages and 1 consumer."""
    name = method.queue
    if name != DIRECT_REPLY_TO and name not in ch.broker.vhost.queues:
        raise ChannelError(ReplyCode.NOT_FOUND, f"no queue '{name}' in vhost '{session.vhost}'")
    if not method.no_wait:
        session.send(ch.number, m.QueueDeclareOk(name, 0, 1))


def consume(
    ch: SessionChannel, method: m.BasicConsume, registered: Callable[[str], None] | None
) -> None:
    """basic.consume from the pseudo-queue: a hidden queue of this connection's, consumed
    with no-ack as RabbitMQ requires."""
    if not method.no_ack:
        raise ChannelError(ReplyCode.PRECONDITION_FAILED, "reply consumer cannot acknowledge")
    channel = ch.broker
    vhost = channel.vhost
    if ch.reply_queue is not None and ch.reply_queue in vhost.queues:
        raise ChannelError(ReplyCode.PRECONDITION_FAILED, "reply consumer already set")
    name = f"{DIRECT_REPLY_PREFIX}{secrets.token_urlsafe(18)}"
    vhost.declare_queue(
        name, exclusive=True, auto_delete=True, owner=channel.connection, server_named=True
    )
    try:
        channel.consume(name, method.consumer_tag, no_ack=True, on_registered=registered)
    except Exception:
        queue = vhost.queues.get(name)
        if queue is not None:
            vhost.remove_queue(queue)
        raise
    ch.reply_queue = name


def reply_queue_of(ch: SessionChannel) -> str:
    """The hidden queue a publish with ``reply_to`` set to the pseudo-queue must name."""
    reply_queue = ch.reply_queue
    if reply_queue is None or reply_queue not in ch.broker.vhost.queues:
        raise ChannelError(ReplyCode.PRECONDITION_FAILED, "fast reply consumer does not exist")
    return reply_queue
