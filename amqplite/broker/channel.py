"""Channels: the per-channel half of the broker core (broker layer).

A channel numbers deliveries (``get`` and ``deliver`` share one counter starting at 1),
tracks unacked deliveries, enforces prefetch (per consumer, and channel-wide with
``global_``), settles acks / nacks / rejects, buffers publishes and settlements in
transactions, and checks the user's permissions before each topology operation.  It
also returns all unacked deliveries to their queues when it closes.
"""

from __future__ import annotations

import logging
import re
from bisect import bisect_right
from collections import Counter
from collections.abc import Callable
from itertools import islice
from typing import TYPE_CHECKING, Any

from amqplite.broker.arguments import wire_type
from amqplite.broker.consumer import Consumer
from amqplite.broker.dead_letter import REJECTED
from amqplite.broker.queue import Queue, QueueEntry, parse_expiration
from amqplite.broker.results import (
    TX_BUFFERED,
    DeclareOk,
    DeliverySink,
    GetResult,
    PublishResult,
)
from amqplite.broker.routing import routing_keys
from amqplite.broker.vhost import generate_name
from amqplite.errors import (
    ReplyCode,
    access_refused,
    not_allowed,
    not_found,
    not_implemented,
    precondition_failed,
)
from amqplite.message import FieldTable, Message, MessageRun

if TYPE_CHECKING:
    from amqplite.broker.auth import User
    from amqplite.broker.broker import BrokerConnection

log = logging.getLogger(__name__)

_NO_ARGS: FieldTable = {}
_LEADING_INTEGER = re.compile(r"[+-]?[0-9]+")


class Delivery:
    """One unacked delivery held by a channel.

    ``at`` is when it was delivered, recorded only if its queue has a consumer timeout.
    """

    __slots__ = ("at", "consumer", "entry", "queue", "tag")

    def __init__(
        self,
        tag: int,
        queue: Queue,
        entry: QueueEntry,
        consumer: Consumer | None,
        at: float | None,
    ) -> None:
        self.tag = tag
        self.queue = queue
        self.entry = entry
        self.consumer = consumer
        self.at = at


class Channel:
    """One AMQP channel of a :class:`~amqplite.broker.broker.BrokerConnection`."""

    __slots__ = (
        "_broker",
        "_bstats",
        "_clock",
        "_last_queue",
        "_next_tag",
        "_runs",
        "_timeout",
        "_tx",
        "_write_epoch",
        "_write_ok",
        "active",
        "closed",
        "confirm",
        "connection",
        "consumer_unacked",
        "consumers",
        "due",
        "due_seq",
        "flow_active",
        "global_prefetch",
        "number",
        "prefetch",
        "sink",
        "unacked",
        "user",
        "vhost",
    )

    def __init__(self, connection: BrokerConnection, number: int, sink: DeliverySink) -> None:
        self.connection = connection
        self.number = number
        self.sink = sink
        self.vhost = connection.vhost
        self.user: User | None = connection.user
        self.unacked: dict[int, Delivery] = {}
        self.consumers: dict[str, Consumer] = {}
        self.prefetch = 0  # for consumers created from now on
        self.global_prefetch = 0  # shared by all consumers of the channel
        self.consumer_unacked = 0
        self.active = True  # False once closed or while channel.flow is off
        self.flow_active = True
        self.closed = False
        self.confirm = False
        self._next_tag = 1
        #: Whether a stream run was ever delivered here: then a settle of many
        #: deliveries counts the ones a run's tags share before settling them.
        self._runs = False
        self._tx: list[tuple[Any, ...]] | None = None
        self._last_queue = ""
        self._write_ok: dict[str, bool] = {}
        self._write_epoch = self.user.epoch if self.user is not None else 0
        broker = connection.broker
        self._clock = broker.clock
        self._bstats = broker.stats
        self._broker = broker
        # Deadline heap bookkeeping (see Broker.schedule): this channel's live entry.
        self.due: float | None = None
        self.due_seq = 0
        # The consumer timeout of the timed deliveries so far; a different one makes the
        # channel "mixed" (an ack could then move its deadline earlier).
        self._timeout: float | None = None

    def __repr__(self) -> str:
        return f"<Channel {self.number} of {self.connection!r}>"

    # -- permissions ---------------------------------------------------------------------

    def _check(self, permission: str, kind: str, name: str) -> None:
        user = self.user
        if user is not None and not user.can(self.vhost.name, permission, name):
            raise access_refused(
                f"access to {kind} '{name or 'amq.default'}' in vhost '{self.vhost.name}' "
                f"refused for user '{user.name}'"
            )

    def _check_visible(self, kind: str, name: str) -> None:
        """A passive declare: refused unless some permission covers ``name``, so that
        users cannot probe for resources they have no rights on."""
        user = self.user
        if user is not None and not user.can_see(self.vhost.name, name):
            raise access_refused(
                f"access to {kind} '{name}' in vhost '{self.vhost.name}' "
                f"refused for user '{user.name}'"
            )

    def _check_topic(self, permission: str, exchange: str, routing_key: str) -> None:
        user = self.user
        if user is not None and not user.can_topic(
            self.vhost.name, exchange, permission, routing_key
        ):
            raise access_refused(
                f"{permission} access to topic '{routing_key}' in exchange '{exchange}' in "
                f"vhost '{self.vhost.name}' refused for user '{user.name}'"
            )

    def _check_bind_topic(self, source: str, routing_key: str) -> None:
        user = self.user
        if user is None or not user.topic_permissions:
            return
        x = self.vhost.exchanges.get(source)
        if x is not None and x.type == "topic":
            self._check_topic("read", source, routing_key)

    def _check_routes_to(self, kind: str, name: str, target: object) -> None:
        """Read on ``name`` and write on exchange ``target`` (an AE or a DLX argument)."""
        if isinstance(target, bytes):
            target = target.decode("utf-8", "replace")
        if not isinstance(target, str):
            return  # a bad type: the declaration itself refuses it with 406
        self._check("read", kind, name)
        self._check("write", "exchange", target)

    def _queue_name(self, name: str) -> str:
        # RabbitMQ's shortcut: an empty queue name means the last queue declared on the channel.
        if name:
            return name
        if not self._last_queue:
            raise not_found("no previously declared queue")
        return self._last_queue

    # -- topology ------------------------------------------------------------------------

    def declare_exchange(
        self,
        name: str,
        type: str,
        *,
        passive: bool = False,
        durable: bool = False,
        auto_delete: bool = False,
        internal: bool = False,
        arguments: FieldTable = _NO_ARGS,
    ) -> None:
        if passive:
            self._check_visible("exchange", name)
        else:
            self._check("configure", "exchange", name)
            alternate = arguments.get("alternate-exchange") if arguments else None
            if alternate is not None and self.user is not None and name not in self.vhost.exchanges:
                # RabbitMQ, on creating an exchange with an alternate exchange: read on the
                # new exchange and write on the AE (messages will be published to it).
                self._check_routes_to("exchange", name, alternate)
        self.vhost.declare_exchange(
            name,
            type,
            passive=passive,
            durable=durable,
            auto_delete=auto_delete,
            internal=internal,
            arguments=arguments,
        )

    def delete_exchange(self, name: str, *, if_unused: bool = False) -> None:
        self._check("configure", "exchange", name)
        self.vhost.delete_exchange(name, if_unused=if_unused)

    def bind_exchange(
        self, destination: str, source: str, routing_key: str, arguments: FieldTable = _NO_ARGS
    ) -> None:
        self._check("write", "exchange", destination)
        self._check("read", "exchange", source)
        self._check_bind_topic(source, routing_key)
        self.vhost.bind_exchange(destination, source, routing_key, arguments)

    def unbind_exchange(
        self, destination: str, source: str, routing_key: str, arguments: FieldTable = _NO_ARGS
    ) -> None:
        self._check("write", "exchange", destination)
        self._check("read", "exchange", source)
        self._check_bind_topic(source, routing_key)
        vhost = self.vhost
        if "" not in (source, destination) and (
            source not in vhost.exchanges or destination not in vhost.exchanges
        ):
            return  # RabbitMQ (3.10): unbinding what does not exist is a no-op, not a 404
        vhost.unbind_exchange(destination, source, routing_key, arguments)

    def declare_queue(
        self,
        name: str,
        *,
        passive: bool = False,
        durable: bool = False,
        exclusive: bool = False,
        auto_delete: bool = False,
        arguments: FieldTable = _NO_ARGS,
    ) -> DeclareOk:
        if passive:
            # No "last declared queue" shortcut here: RabbitMQ answers 404 for ''.
            self._check_visible("queue", name)
            ok = self.vhost.declare_queue(name, passive=True, owner=self.connection)
        else:
            server_named = not name
            if server_named:
                name = generate_name("amq.gen-")
            self._check("configure", "queue", name)
            dlx = arguments.get("x-dead-letter-exchange") if arguments else None
            if dlx is not None and self.user is not None and name not in self.vhost.queues:
                # RabbitMQ, on creating a queue with a DLX: read on the queue and write on
                # the DLX, as the declaring user (dead letters are published without a user).
                self._check_routes_to("queue", name, dlx)
            ok = self.vhost.declare_queue(
                name,
                # As RabbitMQ: an exclusive queue is never durable, whatever the flag says
                # (so redeclaring it with either durable value is equivalent).
                durable=durable and not exclusive,
                exclusive=exclusive,
                auto_delete=auto_delete,
                arguments=arguments,
                owner=self.connection,
                server_named=server_named,
            )
        self._last_queue = ok.queue
        return ok

    def bind_queue(
        self, queue: str, exchange: str, routing_key: str, arguments: FieldTable = _NO_ARGS
    ) -> None:
        queue = self._queue_name(queue)
        self._check("write", "queue", queue)
        self._check("read", "exchange", exchange)
        self._check_bind_topic(exchange, routing_key)
        self.vhost.bind_queue(queue, exchange, routing_key, arguments, owner=self.connection)

    def unbind_queue(
        self, queue: str, exchange: str, routing_key: str, arguments: FieldTable = _NO_ARGS
    ) -> None:
        queue = self._queue_name(queue)
        self._check("write", "queue", queue)
        self._check("read", "exchange", exchange)
        self._check_bind_topic(exchange, routing_key)
        vhost = self.vhost
        if exchange and (exchange not in vhost.exchanges or queue not in vhost.queues):
            return  # RabbitMQ (3.10): unbinding what does not exist is a no-op, not a 404
        vhost.unbind_queue(queue, exchange, routing_key, arguments, owner=self.connection)

    def purge_queue(self, queue: str) -> int:
        queue = self._queue_name(queue)
        self._check("read", "queue", queue)
        return self.vhost.purge_queue(queue, owner=self.connection)

    def delete_queue(self, queue: str, *, if_unused: bool = False, if_empty: bool = False) -> int:
        queue = self._queue_name(queue)
        self._check("configure", "queue", queue)
        return self.vhost.delete_queue(
            queue, if_unused=if_unused, if_empty=if_empty, owner=self.connection
        )

    # -- publishing ----------------------------------------------------------------------

    def publish(
        self, exchange: str, routing_key: str, message: Message, *, mandatory: bool = False
    ) -> PublishResult:
        """Route ``message`` (whose exchange / routing_key should be these) to its queues."""
        vhost = self.vhost
        x = vhost.exchanges.get(exchange)
        if x is None:
            raise not_found(f"no exchange '{exchange}' in vhost '{vhost.name}'")
        user = self.user
        if user is not None:
            if user.epoch != self._write_epoch:
                # A permission changed since the cache was filled: it applies from now on.
                self._write_ok.clear()
                self._write_epoch = user.epoch
            allowed = self._write_ok.get(exchange)
            if allowed is None:
                allowed = self._write_ok[exchange] = user.can(vhost.name, "write", exchange)
            if not allowed:
                self._check("write", "exchange", exchange)
            if user.topic_permissions and x.type == "topic":
                self._check_publish_topic(exchange, routing_key, message)
        if x.internal:
            raise access_refused(
                f"cannot publish to internal exchange '{exchange}' in vhost '{vhost.name}'"
            )
        props = message.properties
        if props.expiration is not None and parse_expiration(props.expiration) is None:
            raise precondition_failed(
                f"invalid expiration '{props.expiration}': {_expiration_error(props.expiration)}"
            )
        if props.user_id is not None and user is not None and props.user_id != user.name:
            raise precondition_failed(
                f"user_id property set to '{props.user_id}' but authenticated user was '{user.name}'"
            )
        if message.routing_key != routing_key or message.exchange != exchange:
            message = Message(exchange, routing_key, props, message.body, message.raw_properties)
        if self._tx is not None:
            self._tx.append(("publish", x, message, mandatory))
            return TX_BUFFERED
        result = vhost.publish(x, message)
        if not result.routed:
            self._unroutable(mandatory)
        return result

    def publish_repeated(self, message: Message, bodies: list[bytes]) -> list[int]:
        """Publishes repeating ``message`` (same exchange, routing key and properties) with
        these bodies, right after :meth:`publish` returned ``ROUTED_STREAM`` for it: its
        checks hold for them too, and the stream appends them at once.  The indices of
        those refused (disk full: nack them)."""
        return self.vhost.publish_repeated(self.vhost.exchanges[message.exchange], message, bodies)

    def _check_publish_topic(self, exchange: str, routing_key: str, message: Message) -> None:
        """Topic write permission for the routing key and every ``CC``/``BCC`` key."""
        for key in routing_keys(routing_key, message.properties.headers):
            self._check_topic("write", exchange, key)

    def _unroutable(self, mandatory: bool) -> None:
        if mandatory:
            self._bstats.returned += 1
        else:
            self._bstats.dropped_unroutable += 1

    # -- consuming -----------------------------------------------------------------------

    def consume(
        self,
        queue: str,
        consumer_tag: str = "",
        *,
        no_ack: bool = False,
        exclusive: bool = False,
        arguments: FieldTable = _NO_ARGS,
        on_registered: Callable[[str], None] | None = None,
    ) -> str:
        """Start a consumer and return its tag.

        ``on_registered(tag)`` runs after the consumer exists but before the first
        delivery, so the session can send basic.consume-ok ahead of the deliveries.
        """
        queue = self._queue_name(queue)
        self._check("read", "queue", queue)
        q = self.vhost.queue(queue, self.connection)
        if not consumer_tag:
            consumer_tag = generate_name("amq.ctag-")
        elif consumer_tag in self.consumers:
            raise not_allowed(f"attempt to reuse consumer tag '{consumer_tag}'")
        priority = arguments.get("x-priority", 0) if arguments else 0
        if isinstance(priority, bool) or not isinstance(priority, int):
            raise precondition_failed(
                f"invalid arg 'x-priority' for queue '{queue}' in vhost '{self.vhost.name}': "
                f'"expected integer, got {wire_type(priority)}"'
            )
        consumer = Consumer(
            consumer_tag,
            self,
            q,
            no_ack=no_ack,
            exclusive=exclusive,
            prefetch=self.prefetch,
            priority=priority,
            arguments=dict(arguments) if arguments else {},
            seq=0,
            deliver=self._deliver,
            deliver_many=self._deliver_many,
        )
        q.add_consumer(consumer)
        self.consumers[consumer_tag] = consumer
        if on_registered is not None:
            on_registered(consumer_tag)
        q.dispatch()
        return consumer_tag

    def cancel(self, consumer_tag: str) -> bool:
        """Cancel a consumer; its unacked deliveries stay with the channel.  False if unknown."""
        consumer = self.consumers.pop(consumer_tag, None)
        if consumer is None:
            return False
        q = consumer.queue
        if q.remove_consumer(consumer) and not q.deleted:
            self.vhost.remove_queue(q)
        else:
            q.dispatch()  # a single-active-consumer queue may have a new active consumer
        return True

    def consumer_gone(self, consumer: Consumer) -> None:
        """The consumer's queue was deleted: forget it and tell the client."""
        if self.consumers.pop(consumer.tag, None) is not None and not self.closed:
            self.sink.cancel_consumer(consumer.tag)

    def qos(self, prefetch_count: int, *, prefetch_size: int = 0, global_: bool = False) -> None:
        if prefetch_size:
            raise not_implemented(f"prefetch_size!=0 ({prefetch_size})")
        if global_:
            self.global_prefetch = prefetch_count
        else:
            self.prefetch = prefetch_count
            # RabbitMQ (rabbit_channel, basic.qos global=false) also lifts the channel-wide
            # limit: "ensures that if default was set, it's overridden".
            self.global_prefetch = 0
        self._dispatch_all()

    def _deliver(self, consumer: Consumer, queue: Queue, entry: QueueEntry) -> None:
        """Called by the queue: hand ``entry`` to ``consumer`` through the sink."""
        tag = self._next_tag
        self._next_tag = tag + 1
        stats = queue.stats
        self._bstats.delivered += 1
        if entry.redelivered:
            stats.redelivered += 1
        if consumer.no_ack:
            stats.deliver_no_ack += 1
            queue.leave(entry)
        else:
            stats.deliver += 1
            at = None
            timeout = queue.consumer_timeout
            if timeout is not None:
                at = self._clock()
                if timeout != self._timeout:
                    self._new_timeout(timeout)
                due = self.due
                if due is None or at + timeout < due:
                    self._broker.schedule(self, at + timeout)
            self.unacked[tag] = Delivery(tag, queue, entry, consumer, at)
            if entry.ref is not None:  # so that a crash now brings it back redelivered
                queue.mark_delivered(entry)
            consumer.unacked += 1
            self.consumer_unacked += 1
            queue.unacked_count += 1
        message = queue.delivery_message(entry) if queue.counts_deliveries else entry.message
        self.sink.deliver(
            consumer.tag, tag, entry.redelivered, message.exchange, message.routing_key, message
        )

    def _deliver_many(self, consumer: Consumer, queue: Queue, entries: list[QueueEntry]) -> None:
        """Called by the queue: :meth:`_deliver` for each of ``entries``, in order, with
        the bookkeeping they share (counters, the consumer timeout's clock) done once."""
        if consumer.no_ack or queue.counts_deliveries or len(entries) == 1:
            for entry in entries:
                self._deliver(consumer, queue, entry)
            return
        count = len(entries)
        first = tag = self._next_tag
        self._next_tag = tag + count
        self._bstats.delivered += count
        stats = queue.stats
        stats.deliver += count
        at = None
        timeout = queue.consumer_timeout
        if timeout is not None:
            at = self._clock()
            if timeout != self._timeout:
                self._new_timeout(timeout)
            due = self.due
            if due is None or at + timeout < due:
                self._broker.schedule(self, at + timeout)
        unacked = self.unacked
        for entry in entries:
            unacked[tag] = Delivery(tag, queue, entry, consumer, at)
            tag += 1
            if entry.redelivered:
                stats.redelivered += 1
            if entry.ref is not None:  # so that a crash now brings it back redelivered
                queue.mark_delivered(entry)
        consumer.unacked += count
        self.consumer_unacked += count
        queue.unacked_count += count
        self.sink.deliver_many(consumer.tag, first, entries)

    def deliver_batch(
        self,
        consumer: Consumer,
        queue: Queue,
        messages: MessageRun,
        entries: Any,
    ) -> int:
        """Called by a stream queue: hand ``messages`` (none redelivered, manual ack, no
        consumer timeout) to ``consumer`` in one go while its connection takes them; how
        many went.  ``entries`` is one entry per message, or one entry that stands for
        every message of the run (its queue needs nothing per message to settle them):
        then one :class:`Delivery` is shared by all their tags."""
        tag = self._next_tag
        sent = self.sink.deliver_batch(consumer.tag, tag, messages)
        self._next_tag = tag + sent
        self._bstats.delivered += sent
        queue.stats.deliver += sent
        consumer.unacked += sent
        self.consumer_unacked += sent
        queue.unacked_count += sent
        unacked = self.unacked
        if type(entries) is list:
            for i in range(sent):
                unacked[tag + i] = Delivery(tag + i, queue, entries[i], consumer, None)
        else:
            delivery = Delivery(tag, queue, entries, consumer, None)
            unacked.update(dict.fromkeys(range(tag, tag + sent), delivery))
            self._runs = True
        return sent

    def get(self, queue: str, *, no_ack: bool = False) -> GetResult | None:
        queue = self._queue_name(queue)
        self._check("read", "queue", queue)
        q = self.vhost.queue(queue, self.connection)
        entry = q.get()
        if entry is None:
            return None
        tag = self._next_tag
        self._next_tag = tag + 1
        stats = q.stats
        self._bstats.delivered += 1
        if entry.redelivered:
            stats.redelivered += 1
        if no_ack:
            stats.get_no_ack += 1
            q.leave(entry)
        else:
            stats.get += 1
            at = None
            timeout = q.consumer_timeout
            if timeout is not None:
                at = self._clock()
                if timeout != self._timeout:
                    self._new_timeout(timeout)
                self._broker.schedule(self, at + timeout)
            self.unacked[tag] = Delivery(tag, q, entry, None, at)
            if entry.ref is not None:
                q.mark_delivered(entry)
            q.unacked_count += 1
        message = q.delivery_message(entry)
        return GetResult(
            tag, entry.redelivered, message.exchange, message.routing_key, message, q.message_count
        )

    # -- settling ------------------------------------------------------------------------

    def _unknown(self, tag: int) -> Exception:
        return precondition_failed(f"unknown delivery tag {tag}")

    def _take(self, tag: int, multiple: bool) -> list[Delivery]:
        unacked = self.unacked
        if not multiple:
            delivery = unacked.pop(tag, None)
            if delivery is None:
                raise self._unknown(tag)
            return [delivery]
        if tag == 0:
            taken = list(unacked.values())
            unacked.clear()
            return taken
        return list(map(unacked.pop, self._tags_upto(tag)))

    def _tags_upto(self, tag: int) -> list[int]:
        """The unacked tags a multiple settle of ``tag`` covers (404-style error if unknown)."""
        unacked = self.unacked
        if tag not in unacked:
            raise self._unknown(tag)
        # Insertion order is tag order, and tags are distinct integers: the ones up to
        # ``tag`` are among the first ``tag - first + 1`` (all of them, without gaps).
        tags = list(islice(unacked, tag - next(iter(unacked)) + 1))
        if tags[-1] != tag:
            del tags[bisect_right(tags, tag) :]
        return tags

    def _take_tagged(self, tag: int, multiple: bool) -> list[tuple[int, Delivery]]:
        """:meth:`_take` with each delivery's tag, for a transaction to keep (a stream
        run's deliveries share one :class:`Delivery`, so its ``tag`` is not theirs)."""
        unacked = self.unacked
        if not multiple:
            if tag not in unacked:
                raise self._unknown(tag)
            tags = [tag]
        elif tag == 0:
            tags = list(unacked)
        else:
            tags = self._tags_upto(tag)
        return [(t, unacked.pop(t)) for t in tags]

    def ack(self, delivery_tag: int, *, multiple: bool = False) -> None:
        unacked = self.unacked
        if not multiple and self._tx is None:
            # The hot path: one ack, one delivery.
            delivery = unacked.pop(delivery_tag, None)
            if delivery is None:
                raise self._unknown(delivery_tag)
            q = delivery.queue
            q.unacked_count -= 1
            q.settle(delivery.entry)
            consumer = delivery.consumer
            if consumer is not None:
                consumer.unacked -= 1
                self.consumer_unacked -= 1
                if self.global_prefetch:
                    self._dispatch_all()
                elif q.message_count:
                    q.dispatch()
            return
        if self._tx is not None:
            self._tx.append(("ack", self._take_tagged(delivery_tag, multiple)))
        else:
            self._settle(self._take(delivery_tag, multiple))

    def ack_tags(self, tags: list[int]) -> None:
        """Acknowledge each of ``tags`` (``multiple`` false), in order: a run of basic.ack
        frames from one receive buffer.  The deliveries of one queue settle in one call,
        and the queue dispatches once after them, so the messages the freed credit lets
        through go out as one batch.  An unknown tag fails (406) after the acks before it
        took effect, as one basic.ack after another would."""
        if self._tx is not None or len(tags) == 1:
            for tag in tags:  # (one ack: the single-ack path is the shorter one)
                self.ack(tag)
            return
        pop = self.unacked.pop
        queue: Any = None  # the queue of the deliveries in ``entries``
        entries: list[QueueEntry] = []
        held = 0  # deliveries that held a consumer's credit
        bad = None
        for tag in tags:
            delivery = pop(tag, None)
            if delivery is None:
                bad = tag
                break
            if delivery.queue is not queue:
                if entries:
                    self._settle_entries(queue, entries)
                    entries = []
                queue = delivery.queue
            entries.append(delivery.entry)
            consumer = delivery.consumer
            if consumer is not None:
                consumer.unacked -= 1
                held += 1
        if held:
            self.consumer_unacked -= held
        if entries:
            self._settle_entries(queue, entries)
        if held and self.global_prefetch:
            self._dispatch_all()
        if bad is not None:
            raise self._unknown(bad)

    def _settle_entries(self, queue: Queue, entries: list[QueueEntry]) -> None:
        queue.unacked_count -= len(entries)
        queue.settle_many(entries)
        if queue.message_count and not self.global_prefetch:
            queue.dispatch()

    def nack(self, delivery_tag: int, *, multiple: bool = False, requeue: bool = True) -> None:
        if self._tx is not None:
            self._tx.append(("nack", self._take_tagged(delivery_tag, multiple), requeue))
        else:
            self._return(self._take(delivery_tag, multiple), requeue)

    def reject(self, delivery_tag: int, *, requeue: bool = True) -> None:
        self.nack(delivery_tag, requeue=requeue)

    def _release(self, deliveries: list[Delivery]) -> set[Queue]:
        """Free the credit the deliveries held; the queues that may now dispatch more."""
        if self._runs and len(deliveries) > 1:
            return self._release_counted(Counter(deliveries))
        queues: set[Queue] = set()
        for delivery in deliveries:
            delivery.queue.unacked_count -= 1
            consumer = delivery.consumer
            if consumer is not None:
                consumer.unacked -= 1
                self.consumer_unacked -= 1
                queues.add(delivery.queue)
        return queues

    def _release_counted(self, counts: dict[Delivery, int]) -> set[Queue]:
        """:meth:`_release` of ``count`` deliveries each (a stream run's tags share one
        Delivery)."""
        queues: set[Queue] = set()
        for delivery, count in counts.items():
            delivery.queue.unacked_count -= count
            consumer = delivery.consumer
            if consumer is not None:
                consumer.unacked -= count
                self.consumer_unacked -= count
                queues.add(delivery.queue)
        return queues

    def _settle(self, deliveries: list[Delivery]) -> None:
        if self._runs and len(deliveries) > 1:
            # A stream run's tags share one Delivery: settled once, with their count.
            counts = Counter(deliveries)
            queues = self._release_counted(counts)
            for delivery, count in counts.items():
                if count == 1:
                    delivery.queue.settle(delivery.entry)
                else:
                    run_queue: Any = delivery.queue
                    run_queue.settle_run(delivery.entry, count)
        else:
            queues = self._release(deliveries)
            for delivery in deliveries:
                delivery.queue.settle(delivery.entry)
        self._redispatch(queues)

    def _return(self, deliveries: list[Delivery], requeue: bool) -> None:
        queues = self._release(deliveries)
        if requeue:
            by_queue: dict[Queue, list[QueueEntry]] = {}
            for delivery in deliveries:
                by_queue.setdefault(delivery.queue, []).append(delivery.entry)
            for q, entries in by_queue.items():
                q.requeue(entries)
        else:
            for delivery in deliveries:
                if not delivery.queue.deleted:
                    delivery.queue.reject(delivery.entry, REJECTED)
                else:
                    delivery.queue.leave(delivery.entry)
        self._redispatch(queues)

    def _redispatch(self, queues: set[Queue]) -> None:
        if self.global_prefetch:
            self._dispatch_all()
        else:
            for q in queues:
                q.dispatch()

    def _dispatch_all(self) -> None:
        for q in {c.queue for c in self.consumers.values()}:
            q.dispatch()

    def recover(self, requeue: bool = True) -> None:
        if not requeue:
            raise not_implemented("requeue=false")
        taken = list(self.unacked.values())
        self.unacked.clear()
        self._return(taken, True)

    # -- flow, transactions, confirms ----------------------------------------------------

    def flow(self, active: bool) -> None:
        self.flow_active = active
        self.active = active and not self.closed
        if self.active:
            self._dispatch_all()

    def resume(self) -> None:
        """The sink is writable again: dispatch to this channel's consumers."""
        self._dispatch_all()

    def tx_select(self) -> None:
        if self.confirm:
            raise precondition_failed("cannot switch from confirm to tx mode")
        if self._tx is None:
            self._tx = []

    def tx_commit(self) -> list[PublishResult]:
        """Apply buffered publishes and settlements in order; the publishes' results."""
        if self._tx is None:
            raise precondition_failed("channel is not transactional")
        ops, self._tx = self._tx, []
        results: list[PublishResult] = []
        for op in ops:
            if op[0] == "publish":
                result = self.vhost.publish(op[1], op[2])
                if not result.routed:
                    self._unroutable(op[3])
                results.append(result)
            elif op[0] == "ack":
                self._settle([d for _tag, d in op[1]])
            else:
                self._return([d for _tag, d in op[1]], op[2])
        return results

    def tx_rollback(self) -> None:
        """Drop buffered publishes; buffered acks/nacks are undone (deliveries unacked again)."""
        if self._tx is None:
            raise precondition_failed("channel is not transactional")
        ops, self._tx = self._tx, []
        restored = [pair for op in ops if op[0] != "publish" for pair in op[1]]
        if restored:
            merged = list(self.unacked.items()) + restored
            merged.sort(key=_by_tag)
            self.unacked = dict(merged)
            # Restored deliveries are older: the deadline may now be earlier.
            at = self.timeout_deadline()
            if at is not None:
                self._broker.schedule(self, at)

    def confirm_select(self) -> None:
        if self._tx is not None:
            raise precondition_failed("cannot switch from tx to confirm mode")
        self.confirm = True

    # -- consumer timeout ------------------------------------------------------------------

    def _new_timeout(self, timeout: float) -> None:
        if self._timeout is not None:
            self._broker.channel_mixed_timeouts(self)
        self._timeout = timeout

    def _oldest_timed(self) -> Delivery | None:
        # As RabbitMQ: only the oldest unacked delivery (with a timeout) is looked at.
        for delivery in self.unacked.values():
            if delivery.at is not None:
                return delivery
        return None

    def timeout_deadline(self) -> float | None:
        """When the oldest unacked delivery times out (None: nothing can time out)."""
        if self.closed:
            return None
        delivery = self._oldest_timed()
        if delivery is None:
            return None
        timeout = delivery.queue.consumer_timeout
        if timeout is None or delivery.at is None:
            return None
        return delivery.at + timeout

    def consumer_timed_out(self) -> None:
        """Close this channel with 406 because a delivery stayed unacked too long.

        The core releases the deliveries (requeued, redelivered) as a channel close does,
        then asks the sink to send channel.close (``close_channel``, optional).
        """
        delivery = self._oldest_timed()
        timeout = delivery.queue.consumer_timeout if delivery is not None else None
        ms = round(timeout * 1000) if timeout is not None else 0
        text = (
            f"delivery acknowledgement on channel {self.number} timed out. Timeout value "
            f"used: {ms} ms. This timeout value can be configured, see consumers doc guide "
            "to learn more"
        )
        log.warning("consumer timeout on %r: %s", self, text)
        self.close()
        close_channel = getattr(self.sink, "close_channel", None)
        if close_channel is not None:
            close_channel(int(ReplyCode.PRECONDITION_FAILED), text)
        else:
            log.warning("sink of %r cannot close its channel; deliveries were released", self)

    # -- closing -------------------------------------------------------------------------

    def close(self) -> None:
        """Cancel consumers, return unacked deliveries to their queues (redelivered)."""
        if self.closed:
            return
        self.closed = True
        self.active = False
        consumers = list(self.consumers.values())
        self.consumers.clear()
        for consumer in consumers:
            q = consumer.queue
            if q.remove_consumer(consumer) and not q.deleted:
                self.vhost.remove_queue(q)
        if self._tx:
            self.tx_rollback()  # uncommitted acks are undone: those messages go back too
        self._tx = None
        taken = list(self.unacked.values())
        self.unacked.clear()
        if taken:
            self._return(taken, True)
        for consumer in consumers:
            consumer.queue.dispatch()  # other consumers may now get what this one held
        self.connection.channels.pop(self.number, None)
        self._broker.unschedule(self)  # so the deadline heap does not keep it alive


def _expiration_error(value: str) -> str:
    """Why RabbitMQ refuses an ``expiration`` (the detail of its 406 text)."""
    match = _LEADING_INTEGER.match(value)
    if match is None:
        return "no_integer"
    if match.end() < len(value):
        return f'{{leftover_string,"{value[match.end() :]}"}}'
    return f"{{value_negative,{int(match.group())}}}"


def _by_tag(pair: tuple[int, Delivery]) -> int:
    return pair[0]
