"""A channel of the blocking AMQP client: declares, binds, publish with confirms, get, consume.

Client layer.  Each call is synchronous: it sends its method and pumps the connection
until the reply arrives (see :mod:`amqplite.client.connection`).  When the broker closes
the channel (404 missing entity, 406 inequivalent arguments, ...) the call raises
:class:`~amqplite.client.errors.ChannelClosed` and the channel is gone; open another one.
That is how a passive declare answers "does it exist?": 404 closes the probing channel.
"""

from __future__ import annotations

import collections
import struct
import time
from typing import TYPE_CHECKING, Any, TypeVar

import attrs

from amqplite.client.errors import ChannelClosed, ClientError, DeadlineReached
from amqplite.message import BasicProperties
from amqplite.protocol import methods
from amqplite.protocol.frames import encode_content
from amqplite.protocol.properties import decode_properties

if TYPE_CHECKING:
    from amqplite.client.connection import Connection

M = TypeVar("M", bound=methods.Method)
_HEADER = struct.Struct(">HHQ")


@attrs.frozen
class Delivery:
    """A message received by ``basic.get`` or a consumer."""

    delivery_tag: int
    redelivered: bool
    exchange: str
    routing_key: str
    properties: BasicProperties
    body: bytes
    consumer_tag: str | None = None
    #: For ``basic.get``: messages left in the queue after this one.
    message_count: int | None = None


@attrs.frozen
class Returned:
    """A mandatory message the broker could not route (``basic.return``)."""

    reply_code: int
    reply_text: str
    exchange: str
    routing_key: str
    properties: BasicProperties
    body: bytes


@attrs.frozen
class DeclareOk:
    queue: str
    message_count: int
    consumer_count: int


@attrs.frozen
class ConfirmReport:
    """What :meth:`Channel.wait_for_confirms` saw since the previous call."""

    acked: int
    nacked: tuple[int, ...]
    returned: tuple[Returned, ...]

    @property
    def ok(self) -> bool:
        return not self.nacked and not self.returned


class Channel:
    """Open with :meth:`Connection.channel`; ``with`` closes it."""

    def __init__(self, connection: Connection, number: int) -> None:
        self.connection = connection
        self.number = number
        self._closed = False
        self.close_reason: ChannelClosed | None = None
        self._replies: collections.deque[methods.Method | Delivery] = collections.deque()
        self._deliveries: collections.deque[Delivery] = collections.deque()
        self._returns: list[Returned] = []
        # content being assembled: (method, properties, size, parts) and the bytes so far
        self._content: tuple[methods.Method, BasicProperties, int, list[bytes]] | None = None
        self._received = 0
        self._confirming = False
        self._next_seq = 1
        self._unconfirmed: set[int] = set()
        self._acked = 0
        self._nacked: list[int] = []
        self.cancelled_consumers: set[str] = set()
        self._consumers: set[str] = set()

    def __enter__(self) -> Channel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def is_open(self) -> bool:
        return not self._closed

    def connection_closed(self) -> None:
        """The connection went away: nothing more can be sent on this channel."""
        self._closed = True

    # -- request / reply -------------------------------------------------------------------

    def _check(self) -> None:
        if self.close_reason is not None:
            raise self.close_reason
        if self._closed:
            raise ClientError(f"channel {self.number} is closed")

    def call(self, method: methods.Method, reply: type[M]) -> M:
        self._check()
        self.connection.send_method(self.number, method)
        got = self._wait_reply(method.NAME)
        if not isinstance(got, reply):
            raise ClientError(f"expected {reply.NAME} in reply to {method.NAME}, got {got!r}")
        return got

    def _wait_reply(self, what: str) -> methods.Method | Delivery:
        conn = self.connection
        while not self._replies:
            self._check()
            conn.pump(what)
        return self._replies.popleft()

    # -- frames in (called by the connection) ----------------------------------------------

    def on_method(self, method: methods.Method) -> None:
        if method.HAS_CONTENT:
            self._content = (method, BasicProperties(), -1, [])
            return
        if isinstance(method, methods.BasicAck):
            self._confirm(method.delivery_tag, method.multiple, True)
        elif isinstance(method, methods.BasicNack):
            self._confirm(method.delivery_tag, method.multiple, False)
        elif isinstance(method, methods.ChannelClose):
            try:
                self.connection.send_method(self.number, methods.ChannelCloseOk())
            finally:
                self._closed = True
                self.connection.forget_channel(self.number)
                self.close_reason = ChannelClosed(
                    method.reply_code, method.reply_text, method.class_id, method.method_id
                )
        elif isinstance(method, methods.BasicCancel):  # the broker cancelled a consumer
            self.cancelled_consumers.add(method.consumer_tag)
            self._consumers.discard(method.consumer_tag)
        elif isinstance(method, methods.ChannelFlow):
            self.connection.send_method(self.number, methods.ChannelFlowOk(method.active))
        else:
            self._replies.append(method)

    def on_header(self, payload: bytes) -> None:
        if self._content is None:
            raise ClientError("content header without a content method")
        _, _, size = _HEADER.unpack_from(payload, 0)
        props = decode_properties(payload, 12, len(payload))
        self._content = (self._content[0], props, size, [])
        self._received = 0
        if size == 0:
            self._content_done()

    def on_body(self, payload: bytes) -> None:
        if self._content is None or self._content[2] < 0:
            raise ClientError("content body without a header")
        self._content[3].append(payload)
        self._received += len(payload)
        if self._received >= self._content[2]:
            self._content_done()

    def _content_done(self) -> None:
        assert self._content is not None
        method, props, _, parts = self._content
        self._content = None
        body = b"".join(parts)
        if isinstance(method, methods.BasicDeliver):
            self._deliveries.append(
                Delivery(
                    method.delivery_tag,
                    method.redelivered,
                    method.exchange,
                    method.routing_key,
                    props,
                    body,
                    consumer_tag=method.consumer_tag,
                )
            )
        elif isinstance(method, methods.BasicGetOk):
            self._replies.append(
                Delivery(
                    method.delivery_tag,
                    method.redelivered,
                    method.exchange,
                    method.routing_key,
                    props,
                    body,
                    message_count=method.message_count,
                )
            )
        elif isinstance(method, methods.BasicReturn):
            self._returns.append(
                Returned(
                    method.reply_code,
                    method.reply_text,
                    method.exchange,
                    method.routing_key,
                    props,
                    body,
                )
            )

    def _confirm(self, tag: int, multiple: bool, ok: bool) -> None:
        tags = [t for t in self._unconfirmed if t <= tag] if multiple else [tag]
        for t in tags:
            if t in self._unconfirmed:
                self._unconfirmed.discard(t)
                if ok:
                    self._acked += 1
                else:
                    self._nacked.append(t)

    # -- exchanges -------------------------------------------------------------------------

    def exchange_declare(
        self,
        name: str,
        type: str = "direct",
        *,
        passive: bool = False,
        durable: bool = False,
        auto_delete: bool = False,
        internal: bool = False,
        arguments: dict[str, Any] | None = None,
    ) -> None:
        self.call(
            methods.ExchangeDeclare(
                exchange=name,
                type=type,
                passive=passive,
                durable=durable,
                auto_delete=auto_delete,
                internal=internal,
                arguments=dict(arguments or {}),
            ),
            methods.ExchangeDeclareOk,
        )

    def exchange_delete(self, name: str, *, if_unused: bool = False) -> None:
        self.call(
            methods.ExchangeDelete(exchange=name, if_unused=if_unused), methods.ExchangeDeleteOk
        )

    def exchange_bind(
        self,
        destination: str,
        source: str,
        routing_key: str = "",
        arguments: dict[str, Any] | None = None,
    ) -> None:
        self.call(
            methods.ExchangeBind(
                destination=destination,
                source=source,
                routing_key=routing_key,
                arguments=dict(arguments or {}),
            ),
            methods.ExchangeBindOk,
        )

    def exchange_unbind(
        self,
        destination: str,
        source: str,
        routing_key: str = "",
        arguments: dict[str, Any] | None = None,
    ) -> None:
        self.call(
            methods.ExchangeUnbind(
                destination=destination,
                source=source,
                routing_key=routing_key,
                arguments=dict(arguments or {}),
            ),
            methods.ExchangeUnbindOk,
        )

    # -- queues ----------------------------------------------------------------------------

    def queue_declare(
        self,
        name: str = "",
        *,
        passive: bool = False,
        durable: bool = False,
        exclusive: bool = False,
        auto_delete: bool = False,
        arguments: dict[str, Any] | None = None,
    ) -> DeclareOk:
        ok = self.call(
            methods.QueueDeclare(
                queue=name,
                passive=passive,
                durable=durable,
                exclusive=exclusive,
                auto_delete=auto_delete,
                arguments=dict(arguments or {}),
            ),
            methods.QueueDeclareOk,
        )
        return DeclareOk(ok.queue, ok.message_count, ok.consumer_count)

    def queue_bind(
        self,
        queue: str,
        exchange: str,
        routing_key: str = "",
        arguments: dict[str, Any] | None = None,
    ) -> None:
        self.call(
            methods.QueueBind(
                queue=queue,
                exchange=exchange,
                routing_key=routing_key,
                arguments=dict(arguments or {}),
            ),
            methods.QueueBindOk,
        )

    def queue_unbind(
        self,
        queue: str,
        exchange: str,
        routing_key: str = "",
        arguments: dict[str, Any] | None = None,
    ) -> None:
        self.call(
            methods.QueueUnbind(
                queue=queue,
                exchange=exchange,
                routing_key=routing_key,
                arguments=dict(arguments or {}),
            ),
            methods.QueueUnbindOk,
        )

    def queue_purge(self, name: str) -> int:
        return self.call(methods.QueuePurge(queue=name), methods.QueuePurgeOk).message_count

    def queue_delete(self, name: str, *, if_unused: bool = False, if_empty: bool = False) -> int:
        ok = self.call(
            methods.QueueDelete(queue=name, if_unused=if_unused, if_empty=if_empty),
            methods.QueueDeleteOk,
        )
        return ok.message_count

    # -- publishing ------------------------------------------------------------------------

    def confirm_select(self) -> None:
        """Turn on publisher confirms: :meth:`wait_for_confirms` then reports acks/nacks."""
        if not self._confirming:
            self.call(methods.ConfirmSelect(), methods.ConfirmSelectOk)
            self._confirming = True

    def publish(
        self,
        exchange: str,
        routing_key: str,
        body: bytes,
        properties: BasicProperties | None = None,
        *,
        mandatory: bool = False,
    ) -> int:
        """Send one message; returns its confirm sequence number (0 without confirms)."""
        self._check()
        conn = self.connection
        data = encode_content(
            self.number,
            methods.BasicPublish(exchange=exchange, routing_key=routing_key, mandatory=mandatory),
            properties or BasicProperties(),
            body,
            conn.frame_max,
        )
        conn.send_bytes(data)
        if not self._confirming:
            return 0
        seq = self._next_seq
        self._next_seq += 1
        self._unconfirmed.add(seq)
        return seq

    def wait_for_confirms(self, timeout: float | None = None) -> ConfirmReport:
        """Block until every publish so far is confirmed; report acks, nacks and returns.

        A mandatory message that could not be routed is returned *before* its ack, so
        the report is complete once the last ack is in.
        """
        if not self._confirming:
            raise ClientError("wait_for_confirms needs confirm_select() first")
        deadline = None if timeout is None else time.monotonic() + timeout
        while self._unconfirmed:
            self._check()
            try:
                self.connection.pump("publisher confirms", deadline)
            except DeadlineReached:
                raise ClientError(
                    f"{len(self._unconfirmed)} publish(es) not confirmed within {timeout} s"
                ) from None
        report = ConfirmReport(self._acked, tuple(self._nacked), tuple(self._returns))
        self._acked = 0
        self._nacked.clear()
        self._returns.clear()
        return report

    # -- getting and consuming -------------------------------------------------------------

    def basic_get(self, queue: str, *, no_ack: bool = False) -> Delivery | None:
        self._check()
        self.connection.send_method(self.number, methods.BasicGet(queue=queue, no_ack=no_ack))
        got = self._wait_reply("basic.get")
        if isinstance(got, Delivery):
            return got
        if isinstance(got, methods.BasicGetEmpty):
            return None
        raise ClientError(f"unexpected reply to basic.get: {got!r}")

    def basic_qos(self, prefetch_count: int, *, global_: bool = False) -> None:
        self.call(
            methods.BasicQos(prefetch_count=prefetch_count, global_=global_), methods.BasicQosOk
        )

    def basic_consume(
        self,
        queue: str,
        *,
        no_ack: bool = False,
        exclusive: bool = False,
        consumer_tag: str = "",
        arguments: dict[str, Any] | None = None,
    ) -> str:
        ok = self.call(
            methods.BasicConsume(
                queue=queue,
                consumer_tag=consumer_tag,
                no_ack=no_ack,
                exclusive=exclusive,
                arguments=dict(arguments or {}),
            ),
            methods.BasicConsumeOk,
        )
        self._consumers.add(ok.consumer_tag)
        return ok.consumer_tag

    def basic_cancel(self, consumer_tag: str) -> None:
        self.call(methods.BasicCancel(consumer_tag=consumer_tag), methods.BasicCancelOk)
        self._consumers.discard(consumer_tag)

    def next_delivery(self, timeout: float | None = None) -> Delivery | None:
        """The next message for a consumer of this channel, or None after ``timeout`` s.

        Raises :class:`ClientError` when the broker cancelled the channel's last consumer
        (its queue was deleted) and nothing more can arrive.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._deliveries:
            self._check()
            if self.cancelled_consumers and not self._consumers:
                tags = ", ".join(sorted(self.cancelled_consumers))
                raise ClientError(f"the broker cancelled consumer {tags} (queue deleted?)")
            try:
                self.connection.pump("a delivery", deadline)
            except DeadlineReached:
                return None
        return self._deliveries.popleft()

    def basic_ack(self, delivery_tag: int, *, multiple: bool = False) -> None:
        self._check()
        self.connection.send_method(self.number, methods.BasicAck(delivery_tag, multiple))

    def basic_nack(
        self, delivery_tag: int, *, multiple: bool = False, requeue: bool = True
    ) -> None:
        self._check()
        self.connection.send_method(self.number, methods.BasicNack(delivery_tag, multiple, requeue))

    def basic_reject(self, delivery_tag: int, *, requeue: bool = True) -> None:
        self._check()
        self.connection.send_method(self.number, methods.BasicReject(delivery_tag, requeue))

    # -- probing and closing ---------------------------------------------------------------

    def close(self) -> None:
        """Close the channel (unacked messages go back to their queues); never raises."""
        if self._closed:
            return
        try:
            self.call(methods.ChannelClose(200, "Goodbye", 0, 0), methods.ChannelCloseOk)
        except ClientError:
            pass
        finally:
            self._closed = True
            self.connection.forget_channel(self.number)
