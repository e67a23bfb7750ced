"""The Session: one client connection's protocol machine driven into the broker (server layer, session package).

The connection task (:mod:`amqplite.server.connection`) hands :meth:`Session.data_received`
each receive buffer; the session pulls every event out of its
:class:`~amqplite.protocol.ServerConnection`, handles it synchronously by calling the
broker, and encodes the replies into the connection's
:class:`~amqplite.server.outbox.Outbox`.

Who owns what.  The protocol machine (``proto``) owns the connection and channel states:
whether the handshake is done, whether a connection.close or channel.close is in flight,
the negotiated frame_max and heartbeat, which channels are open.  It passes on only the
events that are valid in those states, so the session reads them (``closing``,
``handshaking``, ``heartbeat``) and never keeps a copy or checks them again.  The session
owns what the protocol cannot know: the login, the broker connection, one
:class:`~amqplite.server.session.channel.SessionChannel` per *open* channel, and the
confirms to send.  The broker channel owns the channel's modes (confirm, tx).

Error model (RabbitMQ's): a :class:`~amqplite.errors.ChannelError` closes the channel
(the protocol then drops its frames until channel.close-ok); a
:class:`~amqplite.errors.AMQPConnectionError` closes the connection; anything else is a bug,
logged and answered with 541 INTERNAL_ERROR, and never escapes to other connections.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from amqplite.errors import AMQPConnectionError, AMQPError, ChannelError, ReplyCode
from amqplite.protocol import NEED_DATA, ServerConnection, events
from amqplite.protocol import methods as m
from amqplite.protocol.frames import HEARTBEAT_FRAME
from amqplite.protocol.properties import StreamWire
from amqplite.server import auth
from amqplite.server.session import basic, handshake, modes, sasl
from amqplite.server.session.channel import SessionChannel
from amqplite.server.session.dispatch import CHANNEL_METHODS, CONNECTION_METHODS

if TYPE_CHECKING:
    from amqplite.broker.broker import Broker, BrokerConnection
    from amqplite.server.outbox import FlushQueue, Outbox
    from amqplite.server.tls import PeerCertificate
    from amqplite.settings import ServerSettings

log = logging.getLogger(__name__)

SHUTDOWN_TEXT = "broker forced connection closure with reason 'shutdown'"


def _error_ids(exc: AMQPError, method: m.Method | None) -> tuple[int, int]:
    if (exc.class_id or exc.method_id) or method is None:
        return exc.class_id, exc.method_id
    return method.CLASS_ID, method.METHOD_ID


STREAM_WIRE = StreamWire()
#: Names basic.ack (class 60, method 80) in the channel.close of a failed ack run.
_BASIC_ACK = m.BasicAck(0)


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
        tls: str | None = None,
        peer_cert: PeerCertificate | None = None,
    ) -> None:
        self.broker = broker
        if broker.stream_wire is None:
            # The core never imports the protocol: the session, which joins the two,
            # lends it the wire-format help its stream queues use.
            broker.stream_wire = STREAM_WIRE
        self.settings = settings
        self.outbox = outbox
        self.flushes = flushes
        self.peer = peer
        self.name = name
        #: The TLS version over TLS (None: plain TCP), and a verified client certificate
        #: (EXTERNAL is offered only with one).
        self.tls = tls
        self.peer_cert = peer_cert
        #: The SASL mechanism of the accepted login.
        self.auth_mechanism = ""
        self.proto = ServerConnection(
            frame_max=settings.frame_max,
            channel_max=settings.channel_max,
            heartbeat=settings.heartbeat,
            max_message_size=settings.max_message_size,
        )
        #: The broker's side of this connection, from connection.open until it closes.
        self.connection: BrokerConnection | None = None
        #: The open channels (a closing one is the protocol's business until close-ok).
        self.channels: dict[int, SessionChannel] = {}
        self.client_properties: dict[str, Any] = {}
        self.client_capabilities: dict[str, Any] = {}
        self.user: str | None = None
        self.vhost: str | None = None
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
        #: Channels with confirms to emit at the end of this batch.
        self.confirming: list[SessionChannel] = []
        #: Channels whose tx.commit-ok waits for the batch's store sync (durable publishes).
        self.tx_commits: list[SessionChannel] = []
        #: The resource alarm in force (connection.blocked reason), None when clear.
        self.blocked_reason: str | None = None
        #: How the broker closes this connection (user deleted...); set by the connection
        #: task so that the close is written out and close-ok awaited.
        self.on_forced_close: Callable[[int, str], None] | None = None

    # -- states the protocol keeps ------------------------------------------------------

    @property
    def closing(self) -> bool:
        """A connection.close is in flight: wait for its close-ok, discard the rest."""
        return self.proto.closing

    @property
    def handshaking(self) -> bool:
        """connection.open has not passed yet (the connection task times this)."""
        return self.proto.handshaking

    @property
    def heartbeat(self) -> int:
        """Negotiated heartbeat interval in seconds (0: off, or not yet tuned)."""
        return self.proto.heartbeat

    # -- entry points used by the connection task ---------------------------------------

    def data_received(self, data: bytes | bytearray) -> None:
        """Handle every complete event in ``data``; never raises.

        Stops early while a login is being checked (``auth_pending``): the connection
        task awaits :meth:`check_login`, which runs the check off the loop and goes on.
        """
        if self.finished:
            return
        try:
            self.proto.receive_data(data)
        except AMQPConnectionError as exc:
            self._protocol_failure(exc)
            return
        broker = self.broker
        broker.begin_batch()
        try:
            self._process_events()
        finally:
            broker.end_batch()

    def body_received(self, size: int) -> None:
        """``size`` bytes arrived straight into the parts ``proto.next_read`` gave."""
        if self.finished:
            return
        proto = self.proto
        try:
            rest = proto.body_received(size)
            if rest:  # the frames were not the ones assumed: parsed as ordinary input
                proto.receive_data(rest)
        except AMQPConnectionError as exc:
            self._protocol_failure(exc)
            return
        self._process_events()

    def _process_events(self) -> None:
        next_event = self.proto.next_event
        channels = self.channels
        publish = basic.publish
        Content = events.Content
        while not self.finished and self.auth_pending is None:
            try:
                event = next_event()
            except AMQPConnectionError as exc:
                self._protocol_failure(exc)
                return
            except ChannelError as exc:
                # A content header over max_message_size (406); the protocol has already
                # marked that channel as closing.
                self._channel_error_from_protocol(exc)
                continue
            except Exception:
                log.exception("connection %s: protocol failure", self.name)
                self._protocol_failure(
                    AMQPConnectionError(ReplyCode.INTERNAL_ERROR, "INTERNAL_ERROR")
                )
                return
            if event is NEED_DATA:
                return
            try:
                if type(event) is Content:
                    # The common case, without _handle_event: a publish on an open channel
                    # (the protocol passes content only for those).
                    channel, method, message = event
                    ch = channels[channel]
                    try:
                        publish(self, ch, method, message)
                    except ChannelError as exc:
                        self._channel_failed(ch, exc, method)
                else:
                    self._handle_event(event)
            except AMQPConnectionError as exc:
                self._close_connection(exc, getattr(event, "method", None))
            except Exception:
                log.exception("connection %s: error handling %r", self.name, event)
                self._close_connection(
                    AMQPConnectionError(ReplyCode.INTERNAL_ERROR, "INTERNAL_ERROR"), None
                )

    async def check_login(self) -> None:
        """Run the pending password check (in a worker thread) and go on with the events."""
        pending = self.auth_pending
        if pending is None:
            return
        mechanism, name, password = pending
        if mechanism == sasl.EXTERNAL:
            # The certificate was verified in the TLS handshake: the user must only exist
            # (RabbitMQ's rabbit_auth_mechanism_ssl).
            user = self.broker.users.get(name)
        else:
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
            self._close_connection(handshake.login_refused(mechanism), None)
        else:
            self.user = name
            self.auth_mechanism = mechanism
            self.send(0, self.proto.tune_method())
        self._process_events()

    def eof_received(self) -> None:
        self.finished = True

    def end_batch(self) -> None:
        """Emit the confirms the last receive buffer earned, now (no sync to wait for)."""
        earned = modes.take_confirms(self)
        if earned is not None:
            modes.emit_confirms(self, earned)

    def take_confirms(self) -> modes.Earned | None:
        """The confirms (and tx.commit-oks) the last receive buffer earned, if any."""
        return modes.take_confirms(self)

    def emit_confirms(self, earned: modes.Earned) -> None:
        modes.emit_confirms(self, earned)

    def send_heartbeat(self) -> None:
        self.outbox.buffer += HEARTBEAT_FRAME

    def resume(self) -> None:
        """The outbox drained below its low-water mark: let paused consumers go on."""
        for ch in list(self.channels.values()):
            ch.broker.resume()
        # Resuming can also hand messages to other connections' consumers.
        self.flushes.wake_dirty()

    def force_close(self, reply_code: int, reply_text: str) -> None:
        """Close from our side (shutdown): connection.close, then wait for close-ok."""
        if self.closing or self.finished:
            return
        if self.handshaking:
            # Nobody is logged in yet: just hang up.
            self.finished = True
            return
        self._close_connection(AMQPConnectionError(reply_code, reply_text), None)

    def notify_blocked(self, reason: str | None) -> None:
        # Remembered so a client that logs in during the alarm hears of it after open-ok.
        self.blocked_reason = reason
        if self.connection is None or self.closing:
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
        self.release_broker_connection()
        if self.vhost is not None:
            log.info(
                "closing AMQP connection %s (user '%s', vhost '%s')",
                self.name,
                self.user,
                self.vhost,
            )
            self.vhost = None

    # -- used by the handlers -----------------------------------------------------------

    def send(self, channel: int, method: m.Method) -> None:
        self.outbox.buffer += self.proto.send_method(channel, method)

    def reply_before_deliveries(self, mark: int, channel: int, method: m.Method) -> None:
        """Insert a reply at ``mark``: deliveries the operation caused must follow its -ok."""
        self.outbox.insert(mark, self.proto.send_method(channel, method))

    def release_broker_connection(self) -> None:
        conn = self.connection
        self.connection = None
        self.channels.clear()
        if conn is not None:
            conn.close()

    def close_channel(self, ch: SessionChannel, exc: ChannelError, method: m.Method | None) -> None:
        """A soft error: channel.close to the client; the protocol discards the channel's
        frames until close-ok, and the broker channel releases what it held."""
        class_id, method_id = _error_ids(exc, method)
        log.debug("connection %s channel %d: %s", self.name, ch.number, exc.reply_text)
        del self.channels[ch.number]
        self.send(ch.number, m.ChannelClose(exc.reply_code, exc.reply_text, class_id, method_id))
        ch.broker.close()

    # -- errors -------------------------------------------------------------------------

    def _protocol_failure(self, exc: AMQPConnectionError) -> None:
        """The protocol layer refused the input: connection.close with its code.

        After a framing error (501) the byte stream is out of sync and no close-ok could
        be found in it, so we hang up once the close is written, as RabbitMQ does;
        otherwise we wait for close-ok like for any other hard error."""
        self._close_connection(exc, None)
        if exc.reply_code in (ReplyCode.FRAME_ERROR, ReplyCode.INTERNAL_ERROR):
            self.finished = self.abandoned = True

    def _channel_error_from_protocol(self, exc: ChannelError) -> None:
        for number, ch in self.channels.items():
            if not self.proto.channel_is_open(number):
                self.close_channel(ch, exc, None)
                return
        log.warning("connection %s: %s on an unknown channel", self.name, exc.reply_text)

    def _close_connection(self, exc: AMQPError, method: m.Method | None) -> None:
        """A hard error: connection.close to the client, discard until close-ok."""
        if self.closing:
            return
        class_id, method_id = _error_ids(exc, method)
        log.warning("connection %s: closing: %s", self.name, exc.reply_text)
        self.send(0, m.ConnectionClose(exc.reply_code, exc.reply_text, class_id, method_id))
        self.release_broker_connection()

    # -- event dispatch -----------------------------------------------------------------

    def _handle_event(self, event: object) -> None:
        kind = type(event)
        if kind is events.Acks:
            # A run of single basic.acks (the consumer's hot path): the protocol passes
            # them only on channels open on both sides.
            acks: events.Acks = event  # type: ignore[assignment]
            acking = self.channels.get(acks.channel)
            if acking is not None:
                try:
                    acking.broker.ack_tags(acks.tags)
                except ChannelError as exc:
                    self._channel_failed(acking, exc, _BASIC_ACK)
        elif kind is events.Method:
            method = event.method  # type: ignore[attr-defined]
            ch = self.channels.get(event.channel)  # type: ignore[attr-defined]
            if ch is None:
                self._method_without_channel(event.channel, method)  # type: ignore[attr-defined]
                return
            # The common case: a method on an open channel.
            handler = CHANNEL_METHODS.get(type(method))
            if handler is None:
                # A server-to-client method (get-ok, commit-ok...): RabbitMQ's wording.
                raise AMQPConnectionError(
                    ReplyCode.COMMAND_INVALID,
                    "unimplemented method",
                    method.CLASS_ID,
                    method.METHOD_ID,
                )
            try:
                handler(self, ch, method)
            except ChannelError as exc:
                self._channel_failed(ch, exc, method)
        elif kind is events.Heartbeat:
            pass
        elif kind is events.ProtocolHeader:
            self.send(0, handshake.start_method(self))
        elif kind is events.ProtocolHeaderMismatch:
            # Our header back, then hang up (no connection.close), as the spec says.
            mismatch: events.ProtocolHeaderMismatch = event  # type: ignore[assignment]
            if mismatch.received[:1] == b"\x16":  # a TLS record: a ClientHello
                log.warning(
                    "connection %s: a TLS client on the plain AMQP port (use the TLS port); "
                    "answered with the AMQP protocol header and closed",
                    self.name,
                )
            else:
                log.warning("connection %s: bad protocol header %r", self.name, mismatch.received)
            self.outbox.buffer += mismatch.reply
            self.finished = self.abandoned = True
        elif kind is events.EOF:
            self.finished = True

    def _method_without_channel(self, channel: int, method: m.Method) -> None:
        """Channel 0, a channel.open, or the close / close-ok of a channel being closed:
        all the protocol passes for a channel the session does not hold open."""
        if not channel:
            CONNECTION_METHODS[type(method)](self, method)
        elif type(method) is m.ChannelOpen:
            self._open_channel(channel)
        elif type(method) is m.ChannelClose:
            # Crossing our channel.close; a close-ok only frees the number in the protocol.
            self.send(channel, m.ChannelCloseOk())

    def _channel_failed(self, ch: SessionChannel, exc: ChannelError, method: m.Method) -> None:
        if ch.is_open:  # the handler may have closed it already
            self.close_channel(ch, exc, method)

    def _open_channel(self, number: int) -> None:
        conn = self.connection
        assert conn is not None  # the protocol passes channel methods only when open
        ch = SessionChannel(self, number)
        ch.broker = conn.open_channel(number=number, sink=ch)
        self.channels[number] = ch
        self.send(number, m.ChannelOpenOk())
