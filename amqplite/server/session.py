"""The session: glue between one protocol connection and the broker core.

Server layer, and the ONE module that imports both :mod:`amqplite.protocol` and
:mod:`amqplite.broker`.  It is synchronous: the connection task hands it a receive
buffer, it handles every event in it (handshake, channel lifecycle, topology methods,
publishes, acks...) by calling the broker, and encodes replies into the connection's
:class:`~amqplite.server.outbox.Outbox`.  Deliveries arrive through
:class:`ChannelSink`, the :class:`~amqplite.broker.DeliverySink` it gives each broker
channel; they too are encoded straight into the outbox (and the outbox is marked for a
wake-up at the end of the batch).

Error model (RabbitMQ's): a :class:`~amqplite.errors.ChannelError` closes the channel
(frames on it are then discarded until channel.close-ok); a
:class:`~amqplite.errors.ConnectionError` closes the connection; anything else is a bug,
logged and answered with 541 INTERNAL_ERROR, and never escapes to other connections.

Publisher confirms are numbered per channel and emitted by :meth:`Session.end_batch`,
consecutive acks folded into one ``multiple=True`` ack.  When a publish was written to
the store (``sync_pending``), the whole batch's confirms wait until the connection task
has awaited the store sync (:mod:`amqplite.server.durability`: group commit).
"""

from __future__ import annotations

import logging
import platform
import secrets
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

import attrs

from amqplite import __version__
from amqplite.broker.broker import Broker, ConnectionInfo
from amqplite.errors import (
    AMQPError,
    ChannelError,
    ConnectionError,
    ReplyCode,
)
from amqplite.message import Message
from amqplite.protocol import HEARTBEAT_FRAME, NEED_DATA, ServerConnection, events
from amqplite.protocol import methods as m
from amqplite.protocol.frames import encode_deliver
from amqplite.server import auth

if TYPE_CHECKING:
    from amqplite.broker.broker import BrokerConnection
    from amqplite.broker.channel import Channel as BrokerChannel
    from amqplite.server.outbox import FlushQueue, Outbox
    from amqplite.server.settings import ServerSettings

log = logging.getLogger(__name__)

SERVER_CAPABILITIES: dict[str, Any] = {
    "publisher_confirms": True,
    "exchange_exchange_bindings": True,
    "basic.nack": True,
    "consumer_cancel_notify": True,
    "connection.blocked": True,
    "consumer_priorities": True,
    "authentication_failure_close": True,
    "per_consumer_qos": True,
    "direct_reply_to": True,
}

#: RabbitMQ's direct reply-to pseudo-queue.  We back each reply consumer with a hidden
#: exclusive, auto-delete queue named ``amq.rabbitmq.reply-to.<token>``: publishes with
#: ``reply_to`` set to the pseudo-queue get that name instead, so a reply published to the
#: default exchange reaches the requester's channel, and delivery tags stay the channel's.
DIRECT_REPLY_TO = "amq.rabbitmq.reply-to"
DIRECT_REPLY_PREFIX = DIRECT_REPLY_TO + "."

SERVER_PROPERTIES: dict[str, Any] = {
    "product": "amqplite",
    "version": __version__,
    "platform": f"Python {platform.python_version()}",
    "copyright": "amqplite contributors",
    "information": "Licensed under the MIT license",
    "cluster_name": "amqplite",
    "capabilities": SERVER_CAPABILITIES,
}

LOGIN_REFUSED = (
    "Login was refused using authentication mechanism {}. For details see the broker logfile."
)
SHUTDOWN_TEXT = "broker forced connection closure with reason 'shutdown'"
MIN_FRAME_MAX = 4096


def _error_ids(exc: AMQPError, method: m.Method | None) -> tuple[int, int]:
    if (exc.class_id or exc.method_id) or method is None:
        return exc.class_id, exc.method_id
    return method.CLASS_ID, method.METHOD_ID


class ChannelSink:
    """One open AMQP channel: the broker channel plus the session's per-channel state.

    It is the :class:`~amqplite.broker.DeliverySink` of its broker channel, so deliveries
    and server-side cancels land here and are encoded into the outbox.
    """

    __slots__ = (
        "broker_channel",
        "closing",
        "confirm",
        "confirmed",
        "nacks",
        "number",
        "outbox",
        "published",
        "queued",
        "reply_queue",
        "session",
        "tx",
        "tx_publishes",
    )

    def __init__(self, session: Session, number: int) -> None:
        self.session = session
        self.outbox = session.outbox  # the hot path reads it per delivery
        self.number = number
        self.broker_channel: BrokerChannel | None = None
        #: We sent channel.close and wait for close-ok: discard everything else.
        self.closing = False
        self.confirm = False
        self.tx = False
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
        session = self.session
        outbox = self.outbox
        outbox.buffer += encode_deliver(
            self.number,
            consumer_tag,
            delivery_tag,
            redelivered,
            exchange,
            routing_key,
            message,
            session.frame_max,
        )
        if not outbox.dirty:
            session.flushes.mark(outbox)

    def cancel_consumer(self, consumer_tag: str) -> None:
        session = self.session
        if self.closing or session.closing:
            return
        if session.client_capabilities.get("consumer_cancel_notify"):
            session.send(self.number, m.BasicCancel(consumer_tag, True))
            session.flushes.mark(session.outbox)

    def close_channel(self, reply_code: int, reply_text: str) -> None:
        """The core closed this channel on its own (consumer timeout, 406): tell the
        client with channel.close and discard its frames until close-ok."""
        session = self.session
        if self.closing or session.closing or session.finished:
            return
        self.broker_channel = None  # already closed by the core
        session._close_channel(self, ChannelError(reply_code, reply_text), None)
        session.flushes.mark(self.outbox)

    @property
    def writable(self) -> bool:
        # Outbox.writable inlined: the broker asks once per dispatch attempt.
        outbox = self.outbox
        if len(outbox.buffer) + outbox.in_flight < outbox.high_water:
            return True
        outbox.throttled = True
        return False


class Session:
    """Protocol ↔ broker for one client connection (synchronous; see module docs)."""

    def __init__(
        self,
        *,
        broker: Broker,
        settings: ServerSettings,
        outbox: Outbox,
        flushes: FlushQueue,
        peer: tuple[str, int],
        name: str,
    ) -> None:
        self.broker = broker
        self.settings = settings
        self.outbox = outbox
        self.flushes = flushes
        self.peer = peer
        self.name = name
        self.proto = ServerConnection(
            frame_max=settings.frame_max,
            channel_max=settings.channel_max,
            heartbeat=settings.heartbeat,
            max_message_size=settings.max_message_size,
        )
        self.connection: BrokerConnection | None = None
        self.channels: dict[int, ChannelSink] = {}
        self.client_properties: dict[str, Any] = {}
        self.client_capabilities: dict[str, Any] = {}
        self.user: str | None = None
        self.vhost: str | None = None
        self.frame_max = settings.frame_max
        self.channel_max = settings.channel_max
        #: Negotiated heartbeat interval in seconds (0: off, or not yet tuned).
        self.heartbeat = 0
        #: connection.open-ok sent.
        self.opened = False
        #: We sent connection.close and wait for close-ok.
        self.closing = False
        #: The socket should be closed once the outbox is flushed.
        self.finished = False
        #: Finished without a close handshake (bad input): the peer may still be sending.
        self.abandoned = False
        #: Something was published on this connection (for connection.blocked).
        self.publishing = False
        #: A publish in this batch was written to the store: sync before confirming.
        self.sync_pending = False
        #: (mechanism, user, password) of a login being checked.
        self.auth_pending: tuple[str, str, str] | None = None
        self._confirming: list[ChannelSink] = []
        #: Channels whose tx.commit-ok waits for the batch's store sync (durable publishes).
        self._tx_commits: list[ChannelSink] = []
        #: The resource alarm in force (connection.blocked reason), None when clear.
        self.blocked_reason: str | None = None
        #: How the broker closes this connection (user deleted...); set by the connection
        #: task so that the close is written out and close-ok awaited.
        self.on_forced_close: Callable[[int, str], None] | None = None
        self._handlers = self._build_handlers()
        self._connection_handlers = self._build_connection_handlers()

    # -- entry points used by the connection task ---------------------------------------

    def data_received(self, data: bytes) -> None:
        """Handle every complete event in ``data``; never raises.

        Stops early while a login is being checked (``auth_pending``): the connection
        task awaits :meth:`check_login`, which runs the check off the loop and goes on.
        """
        if self.finished:
            return
        try:
            self.proto.receive_data(data)
        except ConnectionError as exc:
            self._protocol_failure(exc)
            return
        self._process_events()

    def _process_events(self) -> None:
        proto = self.proto
        while not self.finished and self.auth_pending is None:
            try:
                event = proto.next_event()
            except ConnectionError as exc:
                self._protocol_failure(exc)
                return
            except ChannelError as exc:
                # A content header over max_message_size (406); the protocol has already
                # marked that channel as closing.
                self._channel_error_from_protocol(exc)
                continue
            except Exception:
                log.exception("connection %s: protocol failure", self.name)
                self._protocol_failure(ConnectionError(ReplyCode.INTERNAL_ERROR, "INTERNAL_ERROR"))
                return
            if event is NEED_DATA:
                return
            try:
                self._handle_event(event)
            except ConnectionError as exc:
                self._close_connection(exc, getattr(event, "method", None))
            except Exception:
                log.exception("connection %s: error handling %r", self.name, event)
                self._close_connection(
                    ConnectionError(ReplyCode.INTERNAL_ERROR, "INTERNAL_ERROR"), None
                )

    async def check_login(self) -> None:
        """Run the pending password check (in a worker thread) and go on with the events."""
        pending = self.auth_pending
        if pending is None:
            return
        mechanism, name, password = pending
        user = await auth.authenticate(self.broker.users, name, password)
        if (
            user is not None
            and name in self.settings.loopback_users
            and not auth.is_loopback(self.peer[0])
        ):
            log.warning("connection %s: user '%s' can only connect via localhost", self.name, name)
            user = None
        self.auth_pending = None
        if self.finished or self.closing:
            return
        if user is None:
            log.warning(
                "connection %s: login refused for user '%s' (%s)", self.name, name, mechanism
            )
            self._close_connection(
                ConnectionError(
                    ReplyCode.ACCESS_REFUSED,
                    LOGIN_REFUSED.format(mechanism),
                    m.ConnectionStartOk.CLASS_ID,
                    m.ConnectionStartOk.METHOD_ID,
                ),
                None,
            )
        else:
            self.user = name
            self.send(0, self.proto.tune_method())
        self._process_events()

    def eof_received(self) -> None:
        self.finished = True

    def end_batch(self) -> None:
        """Emit the confirms collected while handling the last receive buffer."""
        if self.sync_pending:
            return
        if self._tx_commits:
            for sink in self._tx_commits:
                if not sink.closing and sink.number in self.channels:
                    self.send(sink.number, m.TxCommitOk())
            self._tx_commits.clear()
        if not self._confirming:
            return
        channels = self._confirming
        self._confirming = []
        for sink in channels:
            sink.queued = False
            if sink.closing or sink.number not in self.channels:
                continue
            confirmed = sink.confirmed
            for seq in sink.nacks:
                if seq - 1 > confirmed:
                    self.send(sink.number, m.BasicAck(seq - 1, seq - 1 > confirmed + 1))
                self.send(sink.number, m.BasicNack(seq, False, False))
                confirmed = seq
            sink.nacks.clear()
            last = sink.published
            if last > confirmed:
                self.send(sink.number, m.BasicAck(last, last > confirmed + 1))
                confirmed = last
            sink.confirmed = confirmed

    def send_heartbeat(self) -> None:
        self.outbox.buffer += HEARTBEAT_FRAME

    def resume(self) -> None:
        """The outbox drained below its low-water mark: let paused consumers go on."""
        for sink in list(self.channels.values()):
            if sink.broker_channel is not None and not sink.closing:
                sink.broker_channel.resume()
        # Resuming can also hand messages to other connections' consumers.
        self.flushes.wake_dirty()

    def force_close(self, reply_code: int, reply_text: str) -> None:
        """Close from our side (shutdown): connection.close, then wait for close-ok."""
        if self.closing or self.finished:
            return
        if not self.opened and self.connection is None and not self.heartbeat:
            # Nobody has logged in yet: just hang up.
            self.finished = True
            return
        self._close_connection(ConnectionError(reply_code, reply_text), None)

    def notify_blocked(self, reason: str | None) -> None:
        # Remembered so a client that logs in during the alarm hears of it after open-ok.
        self.blocked_reason = reason
        if not self.opened or self.closing:
            return
        if not self.client_capabilities.get("connection.blocked"):
            return
        if reason is None:
            self.send(0, m.ConnectionUnblocked())
        else:
            self.send(0, m.ConnectionBlocked(reason))

    def connection_lost(self) -> None:
        """The socket is gone: release everything the broker holds for us."""
        self.finished = True
        self._release_broker_connection()
        if self.opened:
            self.opened = False
            log.info(
                "closing AMQP connection %s (user '%s', vhost '%s')",
                self.name,
                self.user,
                self.vhost,
            )

    # -- helpers ------------------------------------------------------------------------

    def send(self, channel: int, method: m.Method) -> None:
        self.outbox.buffer += self.proto.send_method(channel, method)

    def _release_broker_connection(self) -> None:
        conn = self.connection
        self.connection = None
        for sink in self.channels.values():
            sink.closing = True
        self.channels.clear()
        if conn is not None:
            conn.close()

    def _protocol_failure(self, exc: ConnectionError) -> None:
        """The protocol layer refused the input: connection.close with its code.

        After a framing error (501) the byte stream is out of sync and no close-ok could
        be found in it, so we hang up once the close is written, as RabbitMQ does;
        otherwise we wait for close-ok like for any other hard error."""
        self._close_connection(exc, None)
        if exc.reply_code in (ReplyCode.FRAME_ERROR, ReplyCode.INTERNAL_ERROR):
            self.finished = self.abandoned = True

    def _channel_error_from_protocol(self, exc: ChannelError) -> None:
        for sink in list(self.channels.values()):
            if not sink.closing and not self.proto.channel_is_open(sink.number):
                self._close_channel(sink, exc, None)
                return
        log.warning("connection %s: %s on an unknown channel", self.name, exc.reply_text)

    def _close_connection(self, exc: AMQPError, method: m.Method | None) -> None:
        """A hard error: connection.close to the client, discard until close-ok."""
        if self.closing:
            return
        class_id, method_id = _error_ids(exc, method)
        log.warning("connection %s: closing: %s", self.name, exc.reply_text)
        self.closing = True
        self.send(0, m.ConnectionClose(exc.reply_code, exc.reply_text, class_id, method_id))
        self._release_broker_connection()

    def _close_channel(self, sink: ChannelSink, exc: ChannelError, method: m.Method | None) -> None:
        """A soft error: channel.close to the client, discard on it until close-ok."""
        class_id, method_id = _error_ids(exc, method)
        log.debug("connection %s channel %d: %s", self.name, sink.number, exc.reply_text)
        sink.closing = True
        broker_channel = sink.broker_channel
        sink.broker_channel = None
        self.send(sink.number, m.ChannelClose(exc.reply_code, exc.reply_text, class_id, method_id))
        if broker_channel is not None:
            broker_channel.close()

    # -- event dispatch -----------------------------------------------------------------

    def _handle_event(self, event: object) -> None:
        kind = type(event)
        if kind is events.Method:
            method = event.method  # type: ignore[attr-defined]
            sink = self.channels.get(event.channel)  # type: ignore[attr-defined]
            if sink is not None and not sink.closing and not self.closing:
                # The common case: a method on an open channel.
                handler = self._handlers.get(type(method))
                if handler is not None:
                    try:
                        handler(sink, method)
                    except ChannelError as exc:
                        if sink.number in self.channels and not sink.closing:
                            self._close_channel(sink, exc, method)
                    return
            self._handle_method(event.channel, method)  # type: ignore[attr-defined]
        elif kind is events.Content:
            self._handle_publish(event)  # type: ignore[arg-type]
        elif isinstance(event, events.Method):
            self._handle_method(event.channel, event.method)
        elif isinstance(event, events.Content):
            self._handle_publish(event)
        elif isinstance(event, events.Heartbeat):
            pass
        elif isinstance(event, events.ProtocolHeaderMismatch):
            # Our header back, then hang up (no connection.close), as the spec says.
            log.warning("connection %s: bad protocol header %r", self.name, event.received)
            self.outbox.buffer += event.reply
            self.finished = self.abandoned = True
        elif isinstance(event, events.ProtocolHeader):
            self.send(
                0,
                m.ConnectionStart(0, 9, SERVER_PROPERTIES, auth.MECHANISMS, b"en_US"),
            )
        elif isinstance(event, events.EOF):
            self.finished = True

    def _handle_method(self, channel: int, method: m.Method) -> None:
        if self.closing:
            if isinstance(method, m.ConnectionCloseOk | m.ConnectionClose):
                if isinstance(method, m.ConnectionClose):
                    self.send(0, m.ConnectionCloseOk())
                self.finished = True
            return
        if channel == 0:
            handler0 = self._connection_handlers.get(type(method))
            if handler0 is None:
                raise ConnectionError(
                    ReplyCode.COMMAND_INVALID,
                    f"unexpected method {method.NAME} on channel 0",
                    method.CLASS_ID,
                    method.METHOD_ID,
                )
            handler0(method)
            return
        if not self.opened:
            raise ConnectionError(
                ReplyCode.CHANNEL_ERROR,
                "expected 'connection.open'",
                method.CLASS_ID,
                method.METHOD_ID,
            )
        sink = self.channels.get(channel)
        if isinstance(method, m.ChannelOpen):
            if sink is not None:
                raise ConnectionError(
                    ReplyCode.CHANNEL_ERROR,
                    "second 'channel.open' seen",
                    method.CLASS_ID,
                    method.METHOD_ID,
                )
            self._open_channel(channel)
            return
        if sink is None:
            raise ConnectionError(
                ReplyCode.CHANNEL_ERROR,
                "expected 'channel.open'",
                method.CLASS_ID,
                method.METHOD_ID,
            )
        if sink.closing:
            # After our channel.close only close-ok (or a crossing close) matters.
            if isinstance(method, m.ChannelCloseOk):
                del self.channels[channel]
            elif isinstance(method, m.ChannelClose):
                self.send(channel, m.ChannelCloseOk())
            return
        handler = self._handlers.get(type(method))
        if handler is None:
            # A server-to-client method (get-ok, commit-ok...): RabbitMQ's wording.
            raise ConnectionError(
                ReplyCode.COMMAND_INVALID,
                "unimplemented method",
                method.CLASS_ID,
                method.METHOD_ID,
            )
        try:
            handler(sink, method)
        except ChannelError as exc:
            if sink.number in self.channels and not sink.closing:
                self._close_channel(sink, exc, method)

    # -- connection class ---------------------------------------------------------------

    def _build_connection_handlers(self) -> dict[type, Callable[[Any], None]]:
        return {
            m.ConnectionStartOk: self._on_start_ok,
            m.ConnectionSecureOk: self._on_secure_ok,
            m.ConnectionTuneOk: self._on_tune_ok,
            m.ConnectionOpen: self._on_open,
            m.ConnectionClose: self._on_close,
            m.ConnectionCloseOk: self._on_close_ok,
            m.ConnectionUpdateSecret: self._on_update_secret,
            m.ConnectionBlocked: self._ignore,
            m.ConnectionUnblocked: self._ignore,
        }

    def _ignore(self, method: m.Method) -> None:
        pass

    def _on_start_ok(self, method: m.ConnectionStartOk) -> None:
        self.client_properties = dict(method.client_properties)
        capabilities = self.client_properties.get("capabilities")
        self.client_capabilities = capabilities if isinstance(capabilities, dict) else {}
        mechanism = method.mechanism
        try:
            credentials = auth.parse_response(mechanism, method.response)
        except ValueError:
            raise ConnectionError(
                ReplyCode.ACCESS_REFUSED,
                f"unsupported authentication mechanism '{mechanism}'",
                method.CLASS_ID,
                method.METHOD_ID,
            ) from None
        if credentials is None:
            log.warning("connection %s: malformed %s response", self.name, mechanism)
            raise ConnectionError(
                ReplyCode.ACCESS_REFUSED,
                LOGIN_REFUSED.format(mechanism),
                method.CLASS_ID,
                method.METHOD_ID,
            )
        self.auth_pending = (mechanism, credentials[0], credentials[1])

    def _on_secure_ok(self, method: m.ConnectionSecureOk) -> None:
        raise ConnectionError(
            ReplyCode.COMMAND_INVALID,
            "unexpected connection.secure-ok",
            method.CLASS_ID,
            method.METHOD_ID,
        )

    def _on_tune_ok(self, method: m.ConnectionTuneOk) -> None:
        # The protocol layer validated and negotiated the values (530 if out of range).
        proto = self.proto
        self.frame_max = proto.frame_max
        self.channel_max = proto.channel_max
        self.heartbeat = proto.heartbeat

    def _on_open(self, method: m.ConnectionOpen) -> None:
        if self.user is None:
            raise ConnectionError(
                ReplyCode.COMMAND_INVALID,
                "connection.open before authentication",
                method.CLASS_ID,
                method.METHOD_ID,
            )
        if self.connection is not None:
            raise ConnectionError(
                ReplyCode.COMMAND_INVALID,
                "second 'connection.open' seen",
                method.CLASS_ID,
                method.METHOD_ID,
            )
        vhost = method.virtual_host
        info = ConnectionInfo(name=self.name, client_properties=self.client_properties)
        try:
            self.connection = self.broker.open_connection(vhost=vhost, user=self.user, info=info)
        except AMQPError as exc:
            raise ConnectionError(
                ReplyCode.NOT_ALLOWED, exc.text, method.CLASS_ID, method.METHOD_ID
            ) from None
        # The broker ends the connection itself when its user or vhost is deleted.
        self.connection.closer = self.on_forced_close or self.force_close
        self.vhost = vhost
        self.opened = True
        log.info(
            "accepting AMQP connection %s (user '%s', vhost '%s')", self.name, self.user, vhost
        )
        self.send(0, m.ConnectionOpenOk())
        if self.blocked_reason is not None:
            self.notify_blocked(self.blocked_reason)

    def _on_close(self, method: m.ConnectionClose) -> None:
        self._release_broker_connection()
        self.send(0, m.ConnectionCloseOk())
        self.finished = True

    def _on_close_ok(self, method: m.ConnectionCloseOk) -> None:
        raise ConnectionError(
            ReplyCode.CHANNEL_ERROR,
            "unexpected connection.close-ok",
            method.CLASS_ID,
            method.METHOD_ID,
        )

    def _on_update_secret(self, method: m.ConnectionUpdateSecret) -> None:
        self.send(0, m.ConnectionUpdateSecretOk())

    # -- channel class ------------------------------------------------------------------

    def _open_channel(self, number: int) -> None:
        conn = self.connection
        assert conn is not None
        sink = ChannelSink(self, number)
        sink.broker_channel = conn.open_channel(number=number, sink=sink)
        self.channels[number] = sink
        self.send(number, m.ChannelOpenOk())

    def _build_handlers(self) -> dict[type, Callable[[ChannelSink, Any], None]]:
        return {
            m.ChannelClose: self._on_channel_close,
            m.ChannelCloseOk: self._on_channel_close_ok,
            m.ChannelFlow: self._on_channel_flow,
            m.ChannelFlowOk: self._on_ignore_channel,
            m.ExchangeDeclare: self._on_exchange_declare,
            m.ExchangeDelete: self._on_exchange_delete,
            m.ExchangeBind: self._on_exchange_bind,
            m.ExchangeUnbind: self._on_exchange_unbind,
            m.QueueDeclare: self._on_queue_declare,
            m.QueueBind: self._on_queue_bind,
            m.QueueUnbind: self._on_queue_unbind,
            m.QueuePurge: self._on_queue_purge,
            m.QueueDelete: self._on_queue_delete,
            m.BasicQos: self._on_basic_qos,
            m.BasicConsume: self._on_basic_consume,
            m.BasicCancel: self._on_basic_cancel,
            m.BasicGet: self._on_basic_get,
            m.BasicAck: self._on_basic_ack,
            m.BasicNack: self._on_basic_nack,
            m.BasicReject: self._on_basic_reject,
            m.BasicRecover: self._on_basic_recover,
            m.BasicRecoverAsync: self._on_basic_recover_async,
            m.ConfirmSelect: self._on_confirm_select,
            m.TxSelect: self._on_tx_select,
            m.TxCommit: self._on_tx_commit,
            m.TxRollback: self._on_tx_rollback,
        }

    @staticmethod
    def _channel(sink: ChannelSink) -> BrokerChannel:
        channel = sink.broker_channel
        assert channel is not None
        return channel

    def _on_ignore_channel(self, sink: ChannelSink, method: m.Method) -> None:
        pass

    def _on_channel_close(self, sink: ChannelSink, method: m.ChannelClose) -> None:
        del self.channels[sink.number]
        sink.closing = True
        channel = sink.broker_channel
        sink.broker_channel = None
        if channel is not None:
            channel.close()
        self.send(sink.number, m.ChannelCloseOk())

    def _on_channel_close_ok(self, sink: ChannelSink, method: m.ChannelCloseOk) -> None:
        # Only valid after we sent channel.close (handled in _handle_method); otherwise
        # RabbitMQ answers 503 "unimplemented method".
        raise ConnectionError(
            ReplyCode.COMMAND_INVALID,
            "unimplemented method",
            method.CLASS_ID,
            method.METHOD_ID,
        )

    def _on_channel_flow(self, sink: ChannelSink, method: m.ChannelFlow) -> None:
        if not method.active:
            # RabbitMQ does not let clients stop deliveries with channel.flow.
            raise ConnectionError(
                ReplyCode.NOT_IMPLEMENTED,
                "active=false",
                method.CLASS_ID,
                method.METHOD_ID,
            )
        self._channel(sink).flow(method.active)
        self.send(sink.number, m.ChannelFlowOk(method.active))

    # -- exchange / queue ---------------------------------------------------------------

    def _on_exchange_declare(self, sink: ChannelSink, method: m.ExchangeDeclare) -> None:
        if not method.exchange:
            # RabbitMQ refuses even a passive declare of the default exchange over AMQP
            # (the broker core allows the passive one for its other callers).
            raise ChannelError(
                ReplyCode.ACCESS_REFUSED, "operation not permitted on the default exchange"
            )
        self._channel(sink).declare_exchange(
            method.exchange,
            method.type,
            passive=method.passive,
            durable=method.durable,
            auto_delete=method.auto_delete,
            internal=method.internal,
            arguments=method.arguments,
        )
        if not method.no_wait:
            self.send(sink.number, m.ExchangeDeclareOk())

    def _on_exchange_delete(self, sink: ChannelSink, method: m.ExchangeDelete) -> None:
        self._channel(sink).delete_exchange(method.exchange, if_unused=method.if_unused)
        if not method.no_wait:
            self.send(sink.number, m.ExchangeDeleteOk())

    def _on_exchange_bind(self, sink: ChannelSink, method: m.ExchangeBind) -> None:
        self._channel(sink).bind_exchange(
            method.destination, method.source, method.routing_key, method.arguments
        )
        if not method.no_wait:
            self.send(sink.number, m.ExchangeBindOk())

    def _on_exchange_unbind(self, sink: ChannelSink, method: m.ExchangeUnbind) -> None:
        self._channel(sink).unbind_exchange(
            method.destination, method.source, method.routing_key, method.arguments
        )
        if not method.no_wait:
            self.send(sink.number, m.ExchangeUnbindOk())

    def _on_queue_declare(self, sink: ChannelSink, method: m.QueueDeclare) -> None:
        name = method.queue
        if name.startswith(DIRECT_REPLY_TO) and (
            name == DIRECT_REPLY_TO or name.startswith(DIRECT_REPLY_PREFIX)
        ):
            # RabbitMQ: the pseudo-queue (clients probe for the feature this way) and a
            # live reply address "exist" for anyone, with 0 messages and 1 consumer.
            conn = self.connection
            if name != DIRECT_REPLY_TO and (conn is None or name not in conn.vhost.queues):
                raise ChannelError(
                    ReplyCode.NOT_FOUND, f"no queue '{name}' in vhost '{self.vhost}'"
                )
            if not method.no_wait:
                self.send(sink.number, m.QueueDeclareOk(name, 0, 1))
            return
        ok = self._channel(sink).declare_queue(
            method.queue,
            passive=method.passive,
            durable=method.durable,
            exclusive=method.exclusive,
            auto_delete=method.auto_delete,
            arguments=method.arguments,
        )
        if not method.no_wait:
            self.send(sink.number, m.QueueDeclareOk(ok.queue, ok.message_count, ok.consumer_count))

    def _on_queue_bind(self, sink: ChannelSink, method: m.QueueBind) -> None:
        self._channel(sink).bind_queue(
            method.queue, method.exchange, method.routing_key, method.arguments
        )
        if not method.no_wait:
            self.send(sink.number, m.QueueBindOk())

    def _on_queue_unbind(self, sink: ChannelSink, method: m.QueueUnbind) -> None:
        self._channel(sink).unbind_queue(
            method.queue, method.exchange, method.routing_key, method.arguments
        )
        self.send(sink.number, m.QueueUnbindOk())

    def _on_queue_purge(self, sink: ChannelSink, method: m.QueuePurge) -> None:
        count = self._channel(sink).purge_queue(method.queue)
        if not method.no_wait:
            self.send(sink.number, m.QueuePurgeOk(count))

    def _on_queue_delete(self, sink: ChannelSink, method: m.QueueDelete) -> None:
        # RabbitMQ notifies the queue's consumers (basic.cancel) only after delete-ok:
        # py-amqp raises ConsumerCancelled if the cancel arrives while it awaits the -ok.
        mark = len(self.outbox.buffer)
        count = self._channel(sink).delete_queue(
            method.queue, if_unused=method.if_unused, if_empty=method.if_empty
        )
        if not method.no_wait:
            self._reply_before_deliveries(mark, sink.number, m.QueueDeleteOk(count))

    # -- basic --------------------------------------------------------------------------

    def _reply_before_deliveries(self, mark: int, channel: int, method: m.Method) -> None:
        """Insert a reply at ``mark``: deliveries the operation caused must follow its -ok."""
        frame = self.proto.send_method(channel, method)
        buffer = self.outbox.buffer
        if mark == len(buffer):
            buffer += frame
        else:
            buffer[mark:mark] = frame

    def _on_basic_qos(self, sink: ChannelSink, method: m.BasicQos) -> None:
        mark = len(self.outbox.buffer)
        self._channel(sink).qos(
            method.prefetch_count, prefetch_size=method.prefetch_size, global_=method.global_
        )
        self._reply_before_deliveries(mark, sink.number, m.BasicQosOk())

    def _on_basic_consume(self, sink: ChannelSink, method: m.BasicConsume) -> None:
        number = sink.number

        def registered(tag: str) -> None:
            # Called before the first delivery, which must follow consume-ok.
            self.send(number, m.BasicConsumeOk(tag))

        if method.queue == DIRECT_REPLY_TO:
            self._consume_direct_reply(sink, method, None if method.no_wait else registered)
            return
        self._channel(sink).consume(
            method.queue,
            method.consumer_tag,
            no_ack=method.no_ack,
            exclusive=method.exclusive,
            arguments=method.arguments,
            on_registered=None if method.no_wait else registered,
        )

    def _consume_direct_reply(
        self,
        sink: ChannelSink,
        method: m.BasicConsume,
        registered: Callable[[str], None] | None,
    ) -> None:
        if not method.no_ack:
            raise ChannelError(ReplyCode.PRECONDITION_FAILED, "reply consumer cannot acknowledge")
        conn = self.connection
        assert conn is not None
        vhost = conn.vhost
        if sink.reply_queue is not None and sink.reply_queue in vhost.queues:
            raise ChannelError(ReplyCode.PRECONDITION_FAILED, "reply consumer already set")
        name = f"{DIRECT_REPLY_PREFIX}{secrets.token_urlsafe(18)}"
        vhost.declare_queue(name, exclusive=True, auto_delete=True, owner=conn, server_named=True)
        try:
            self._channel(sink).consume(
                name, method.consumer_tag, no_ack=True, on_registered=registered
            )
        except Exception:
            queue = vhost.queues.get(name)
            if queue is not None:
                vhost.remove_queue(queue)
            raise
        sink.reply_queue = name

    def _on_basic_cancel(self, sink: ChannelSink, method: m.BasicCancel) -> None:
        self._channel(sink).cancel(method.consumer_tag)
        if not method.no_wait:
            self.send(sink.number, m.BasicCancelOk(method.consumer_tag))

    def _on_basic_get(self, sink: ChannelSink, method: m.BasicGet) -> None:
        result = self._channel(sink).get(method.queue, no_ack=method.no_ack)
        if result is None:
            self.send(sink.number, m.BasicGetEmpty())
            return
        self.outbox.buffer += self.proto.send_content(
            sink.number,
            m.BasicGetOk(
                result.delivery_tag,
                result.redelivered,
                result.exchange,
                result.routing_key,
                result.message_count,
            ),
            result.message,
        )

    def _on_basic_ack(self, sink: ChannelSink, method: m.BasicAck) -> None:
        self._channel(sink).ack(method.delivery_tag, multiple=method.multiple)

    def _on_basic_nack(self, sink: ChannelSink, method: m.BasicNack) -> None:
        self._channel(sink).nack(
            method.delivery_tag, multiple=method.multiple, requeue=method.requeue
        )

    def _on_basic_reject(self, sink: ChannelSink, method: m.BasicReject) -> None:
        self._channel(sink).reject(method.delivery_tag, requeue=method.requeue)

    def _on_basic_recover(self, sink: ChannelSink, method: m.BasicRecover) -> None:
        mark = len(self.outbox.buffer)
        self._channel(sink).recover(method.requeue)
        self._reply_before_deliveries(mark, sink.number, m.BasicRecoverOk())

    def _on_basic_recover_async(self, sink: ChannelSink, method: m.BasicRecoverAsync) -> None:
        self._channel(sink).recover(method.requeue)

    def _handle_publish(self, event: events.Content) -> None:
        channel = event.channel
        if self.closing:
            return
        sink = self.channels.get(channel)
        if sink is None:
            raise ConnectionError(
                ReplyCode.CHANNEL_ERROR,
                "expected 'channel.open'",
                m.BasicPublish.CLASS_ID,
                m.BasicPublish.METHOD_ID,
            )
        if sink.closing:
            return
        method = cast("m.BasicPublish", event.method)
        if method.immediate:
            raise ConnectionError(
                ReplyCode.NOT_IMPLEMENTED, "immediate=true", method.CLASS_ID, method.METHOD_ID
            )
        self.publishing = True
        seq = 0
        if sink.confirm:
            sink.published += 1
            seq = sink.published
            if not sink.queued:
                sink.queued = True
                self._confirming.append(sink)
        properties = event.properties
        raw_properties: bytes | None = event.raw_properties
        if properties.reply_to == DIRECT_REPLY_TO:
            reply_queue = sink.reply_queue
            conn = self.connection
            if reply_queue is None or conn is None or reply_queue not in conn.vhost.queues:
                self._close_channel(
                    sink,
                    ChannelError(
                        ReplyCode.PRECONDITION_FAILED, "fast reply consumer does not exist"
                    ),
                    method,
                )
                return
            properties = attrs.evolve(properties, reply_to=reply_queue)
            raw_properties = None  # re-encoded with the new reply_to
        message = Message(
            method.exchange,
            method.routing_key,
            properties,
            event.body,
            raw_properties,
        )
        try:
            result = self._channel(sink).publish(
                method.exchange, method.routing_key, message, mandatory=method.mandatory
            )
        except ChannelError as exc:
            self._close_channel(sink, exc, method)
            return
        if sink.tx:
            sink.tx_publishes.append((method.mandatory, message))
        elif method.mandatory and not result.routed:
            self._return_unroutable(channel, message)
        if seq:
            if result.rejected:
                sink.nacks.append(seq)
            if result.durable_write:
                self.sync_pending = True

    def _return_unroutable(self, channel: int, message: Message) -> None:
        self.outbox.buffer += self.proto.send_content(
            channel,
            m.BasicReturn(ReplyCode.NO_ROUTE, "NO_ROUTE", message.exchange, message.routing_key),
            message,
        )

    def _on_confirm_select(self, sink: ChannelSink, method: m.ConfirmSelect) -> None:
        if sink.tx:
            raise ChannelError(
                ReplyCode.PRECONDITION_FAILED, "cannot switch from tx to confirm mode"
            )
        if not sink.confirm:
            self._channel(sink).confirm_select()
            sink.confirm = True
        if not method.nowait:
            self.send(sink.number, m.ConfirmSelectOk())

    def _on_tx_select(self, sink: ChannelSink, method: m.TxSelect) -> None:
        if sink.confirm:
            raise ChannelError(
                ReplyCode.PRECONDITION_FAILED, "cannot switch from confirm to tx mode"
            )
        self._channel(sink).tx_select()
        sink.tx = True
        self.send(sink.number, m.TxSelectOk())

    def _on_tx_commit(self, sink: ChannelSink, method: m.TxCommit) -> None:
        if not sink.tx:
            raise ChannelError(ReplyCode.PRECONDITION_FAILED, "channel is not transactional")
        results = self._channel(sink).tx_commit()
        publishes = sink.tx_publishes
        sink.tx_publishes = []
        durable = False
        for (mandatory, message), result in zip(publishes, results, strict=False):
            if mandatory and not result.routed:
                self._return_unroutable(sink.number, message)
            durable = durable or result.durable_write
        if durable:
            # Like a confirm: commit-ok only once the store has synced (end_batch).
            self.sync_pending = True
            self._tx_commits.append(sink)
        else:
            self.send(sink.number, m.TxCommitOk())

    def _on_tx_rollback(self, sink: ChannelSink, method: m.TxRollback) -> None:
        if not sink.tx:
            raise ChannelError(ReplyCode.PRECONDITION_FAILED, "channel is not transactional")
        self._channel(sink).tx_rollback()
        sink.tx_publishes.clear()
        self.send(sink.number, m.TxRollbackOk())
