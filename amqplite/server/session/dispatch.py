"""Which handler answers which method, and the channel class itself (server layer, session package).

Two tables: :data:`CONNECTION_METHODS` for channel 0 (only the methods the protocol
machine lets through there) and :data:`CHANNEL_METHODS` for open channels.  A method the
client may not send (get-ok, commit-ok...) has no entry: 503 "unimplemented method", as
RabbitMQ answers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from amqplite.errors import AMQPConnectionError, ReplyCode
from amqplite.protocol import methods as m
from amqplite.server.session import basic, handshake, modes, topology

if TYPE_CHECKING:
    from amqplite.server.session.channel import ChannelHandler, SessionChannel
    from amqplite.server.session.core import Session
    from amqplite.server.session.handshake import ConnectionHandler


def channel_close(session: Session, ch: SessionChannel, method: m.ChannelClose) -> None:
    """The client closes the channel: release it in the broker, close-ok."""
    del session.channels[ch.number]
    ch.broker.close()
    session.send(ch.number, m.ChannelCloseOk())


def channel_flow(session: Session, ch: SessionChannel, method: m.ChannelFlow) -> None:
    if not method.active:
        # RabbitMQ does not let clients stop deliveries with channel.flow.
        raise AMQPConnectionError(
            ReplyCode.NOT_IMPLEMENTED, "active=false", method.CLASS_ID, method.METHOD_ID
        )
    ch.broker.flow(method.active)
    session.send(ch.number, m.ChannelFlowOk(method.active))


def ignore(session: Session, ch: SessionChannel, method: m.Method) -> None:
    pass


CONNECTION_METHODS: dict[type[m.Method], ConnectionHandler] = dict(handshake.HANDLERS)

CHANNEL_METHODS: dict[type[m.Method], ChannelHandler] = {
    m.ChannelClose: channel_close,
    m.ChannelFlow: channel_flow,
    m.ChannelFlowOk: ignore,
    **topology.HANDLERS,
    **basic.HANDLERS,
    **modes.HANDLERS,
}
