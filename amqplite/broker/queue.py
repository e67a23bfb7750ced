"""Queues: ready messages, consumers, dispatch, TTL, length limits, dead-letter triggers (broker layer).

A queue holds :class:`QueueEntry` objects: the shared :class:`Message` plus the little
per-queue state RabbitMQ keeps (position, expiry, redelivered flag, return count).
Ready entries sit in one deque (or one per priority for ``x-max-priority`` queues);
delivered-but-unacked entries are owned by the channel that received them and come back
through :meth:`Queue.requeue` or leave through :meth:`Queue.settle` /
:meth:`Queue.dead_letter`.  Requeued entries go back to their original position (the
sequence number decides), as RabbitMQ does.

Dispatch is synchronous: whenever something may allow a delivery (a publish, an ack
freeing credit, a new consumer, a resumed sink) the caller runs :meth:`dispatch`, which
hands ready entries to consumers round-robin, highest ``x-priority`` level first,
skipping consumers without credit or whose sink is not writable.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Collection, Iterator
from typing import TYPE_CHECKING, Any

import attrs

from amqplite.broker.arguments import QueueArgs
from amqplite.broker.consumer import Consumer
from amqplite.broker.dead_letter import DELIVERY_LIMIT, EXPIRED, MAXLEN
from amqplite.errors import access_refused
from amqplite.message import FieldTable, Message

if TYPE_CHECKING:
    from amqplite.broker.broker import BrokerConnection
    from amqplite.broker.exchange import Binding
    from amqplite.broker.vhost import VHost


class QueueEntry:
    """One message in one queue."""

    __slots__ = ("deliveries", "expires_at", "message", "redelivered", "seq", "size")

    def __init__(self, message: Message, seq: int, expires_at: float | None) -> None:
        self.message = message
        self.seq = seq
        self.expires_at = expires_at
        self.redelivered = False
        self.deliveries = 0  # times returned to the queue (quorum-style delivery count)
        self.size = len(message.body)

    def __repr__(self) -> str:
        return f"<QueueEntry seq={self.seq} id={self.message.id}>"


class QueueStats:
    """Monotonic counters for the HTTP API; plain integer increments on the hot path.

    Deliveries are split the way RabbitMQ's ``message_stats`` are: ``deliver`` (to a
    consumer, manual ack), ``deliver_no_ack``, ``get`` (basic.get, manual ack) and
    ``get_no_ack``; ``deliver_get`` / ``delivered`` are their sum.
    """

    __slots__ = (
        "acked",
        "dead_lettered",
        "deliver",
        "deliver_no_ack",
        "dropped",
        "get",
        "get_no_ack",
        "published",
        "redelivered",
        "rejected_publishes",
    )

    def __init__(self) -> None:
        self.published = 0
        self.deliver = 0
        self.deliver_no_ack = 0
        self.get = 0
        self.get_no_ack = 0
        self.redelivered = 0
        self.acked = 0
        self.rejected_publishes = 0
        self.dead_lettered: dict[str, int] = {}  # by reason, republished to a DLX
        self.dropped: dict[str, int] = {}  # by reason, no DLX (or a dead-letter cycle)

    @property
    def deliver_get(self) -> int:
        """Every delivery and basic.get, acked or not (RabbitMQ's ``deliver_get``)."""
        return self.deliver + self.deliver_no_ack + self.get + self.get_no_ack

    @property
    def delivered(self) -> int:
        """The same sum as :attr:`deliver_get` (the name the HTTP layer used first)."""
        return self.deliver + self.deliver_no_ack + self.get + self.get_no_ack

    def as_dict(self) -> dict[str, Any]:
        out = {name: getattr(self, name) for name in self.__slots__}
        out["deliver_get"] = out["delivered"] = self.deliver_get
        return out


class BrokerStats:
    """Broker-wide totals, each message counted once however many queues it reached.

    ``published``: publishes accepted from clients (dead-letter republishes excluded);
    ``delivered``: deliveries and basic.get results; ``acked``: acknowledgements;
    ``returned``: unroutable mandatory publishes (basic.return); ``dropped_unroutable``:
    unroutable publishes without ``mandatory``.
    """

    __slots__ = ("acked", "delivered", "dropped_unroutable", "published", "returned")

    def __init__(self) -> None:
        self.published = 0
        self.delivered = 0
        self.acked = 0
        self.returned = 0
        self.dropped_unroutable = 0

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__slots__}


def parse_expiration(value: str) -> int | None:
    """The per-message TTL in ms from the ``expiration`` property, or None if invalid."""
    if not value.isdigit() or not value.isascii():
        return None
    return int(value)


class Queue:
    """A queue entity (slotted: looked at for every message)."""

    __slots__ = (
        "__weakref__",
        "_bstats",
        "_busy",
        "_clock",
        "_consumer_seq",
        "_count_deliveries",
        "_levels",
        "_limited",
        "_persist",
        "_ready",
        "_ready0",
        "_seq",
        "args",
        "arguments",
        "auto_delete",
        "bindings",
        "consumer_timeout",
        "consumers",
        "deleted",
        "durable",
        "exclusive",
        "had_consumer",
        "last_used",
        "message_bytes",
        "message_count",
        "name",
        "owner",
        "stats",
        "unacked_count",
        "vhost",
    )

    def __init__(
        self,
        vhost: VHost,
        name: str,
        *,
        durable: bool,
        exclusive: bool,
        auto_delete: bool,
        arguments: FieldTable,
        args: QueueArgs,
        owner: BrokerConnection | None,
    ) -> None:
        self.vhost = vhost
        self.name = name
        self.durable = durable or args.queue_type == "quorum"
        self.exclusive = exclusive
        self.auto_delete = auto_delete
        self.arguments = dict(arguments)
        self.args = args
        self.owner = owner
        self.stats = QueueStats()
        self.bindings: dict[Binding, None] = {}
        self.consumers: list[Consumer] = []
        self.deleted = False
        self.had_consumer = False
        self.message_count = 0
        self.message_bytes = 0
        self.unacked_count = 0
        broker = vhost.broker
        self._clock = broker.clock
        self._bstats = broker.stats
        #: Seconds a manual-ack delivery may stay unacked before its channel is closed.
        self.consumer_timeout: float | None = (
            args.consumer_timeout / 1000.0
            if args.consumer_timeout is not None
            else broker.consumer_timeout
        )
        self.last_used = self._clock()
        levels = (args.max_priority or 0) + 1
        self._ready: list[deque[QueueEntry]] = [deque() for _ in range(levels)]
        self._ready0 = self._ready[0]
        self._levels: list[deque[Consumer]] = []
        self._seq = 0
        self._consumer_seq = 0
        self._busy = False
        self._limited = args.max_length is not None or args.max_length_bytes is not None
        self._count_deliveries = args.queue_type == "quorum" or args.delivery_limit is not None
        # Store seam: persistent messages in durable queues would be written here.
        self._persist = self.durable and vhost.broker.store is not None

    def __repr__(self) -> str:
        return f"<Queue {self.name!r} in {self.vhost.name!r}>"

    # -- inspection --------------------------------------------------------------------

    @property
    def consumer_count(self) -> int:
        return len(self.consumers)

    def browse(self) -> Iterator[QueueEntry]:
        """Ready entries in delivery order, without side effects."""
        for ready in reversed(self._ready):
            yield from ready

    # -- publishing --------------------------------------------------------------------

    def publish(self, message: Message, now: float) -> bool:
        """Enqueue (or deliver at once); False if refused by ``x-overflow`` reject-publish*."""
        args = self.args
        if self._limited and args.overflow != "drop-head" and self._would_overflow(message):
            self.stats.rejected_publishes += 1
            if args.overflow == "reject-publish-dlx":
                self.dead_letter(message, MAXLEN)
            return False
        ttl = args.message_ttl
        expiration = message.properties.expiration
        expires_at = None
        if ttl is not None or expiration is not None:
            ms = ttl
            if expiration is not None:
                per_message = parse_expiration(expiration)
                if per_message is not None and (ms is None or per_message < ms):
                    ms = per_message
            if ms is not None:
                expires_at = now + ms / 1000.0
        self._seq += 1
        entry = QueueEntry(message, self._seq, expires_at)
        self.stats.published += 1
        if self._persist and message.persistent:
            self._store_enqueue(entry)
        if not self.message_count and self._levels and not self._busy:
            consumer = self._pick()
            if consumer is not None:
                consumer.channel._deliver(consumer, self, entry)
                return True
        if expires_at is not None and expires_at <= now:
            # TTL 0 (or already past): it could not be delivered at once, so it expires now.
            self._expire(entry)
            return True
        if args.max_priority is None:
            self._ready0.append(entry)
        else:
            self._ready[self._priority_of(message)].append(entry)
        self.message_count += 1
        self.message_bytes += entry.size
        if expires_at is not None:
            self.vhost.broker._timed_queues[self] = None
        if self._levels:
            self.dispatch()
        if self._limited:
            self._drop_over_limit()
        return True

    def _priority_of(self, message: Message) -> int:
        priority = message.properties.priority or 0
        top = len(self._ready) - 1
        return top if priority > top else priority

    def _would_overflow(self, message: Message) -> bool:
        args = self.args
        if args.max_length is not None and self.message_count + 1 > args.max_length:
            return True
        return (
            args.max_length_bytes is not None
            and self.message_bytes + len(message.body) > args.max_length_bytes
        )

    def _drop_over_limit(self) -> None:
        max_length = self.args.max_length
        max_bytes = self.args.max_length_bytes
        while self.message_count and (
            (max_length is not None and self.message_count > max_length)
            or (max_bytes is not None and self.message_bytes > max_bytes)
        ):
            entry = self._pop_head()
            self._leave(entry)
            self.dead_letter(entry.message, MAXLEN)

    # -- ready list --------------------------------------------------------------------

    def _head_deque(self) -> deque[QueueEntry]:
        ready = self._ready
        if len(ready) == 1:
            return self._ready0
        for level in reversed(ready):
            if level:
                return level
        return self._ready0

    def _pop_head(self) -> QueueEntry:
        entry = self._head_deque().popleft()
        self.message_count -= 1
        self.message_bytes -= entry.size
        return entry

    def _pop_live(self) -> QueueEntry | None:
        """The next ready entry, expiring dead heads on the way (RabbitMQ's lazy TTL)."""
        while self.message_count:
            entry = self._pop_head()
            if entry.expires_at is not None and entry.expires_at <= self._clock():
                self._expire(entry)
                continue
            return entry
        return None

    def _reinsert(self, entry: QueueEntry) -> None:
        ready = (
            self._ready0 if len(self._ready) == 1 else self._ready[self._priority_of(entry.message)]
        )
        seq = entry.seq
        if not ready or seq < ready[0].seq:
            ready.appendleft(entry)
        elif seq > ready[-1].seq:
            ready.append(entry)
        else:
            for i, other in enumerate(ready):
                if other.seq > seq:
                    ready.insert(i, entry)
                    break
        self.message_count += 1
        self.message_bytes += entry.size
        if entry.expires_at is not None:
            self.vhost.broker._timed_queues[self] = None

    # -- consumers and dispatch ---------------------------------------------------------

    def add_consumer(self, consumer: Consumer) -> None:
        if any(c.exclusive for c in self.consumers) or (consumer.exclusive and self.consumers):
            raise access_refused(
                f"queue '{self.name}' in vhost '{self.vhost.name}' in exclusive use"
            )
        self._consumer_seq += 1
        consumer.seq = self._consumer_seq
        self.consumers.append(consumer)
        self.had_consumer = True
        self._rebuild_levels()

    def remove_consumer(self, consumer: Consumer) -> bool:
        """Detach ``consumer``; True if the queue should now be auto-deleted."""
        try:
            self.consumers.remove(consumer)
        except ValueError:
            return False
        self._rebuild_levels()
        if not self.consumers:
            self.last_used = self._clock()
            if self.args.expires is not None:
                self.vhost.broker._timed_queues[self] = None
        return self.auto_delete and not self.consumers

    def _rebuild_levels(self) -> None:
        consumers = self.consumers
        if not consumers:
            self._levels = []
        elif self.args.single_active_consumer:
            # The earliest registered consumer is the active one; others wait their turn.
            self._levels = [deque([consumers[0]])]
        else:
            by_priority: dict[int, deque[Consumer]] = {}
            for consumer in consumers:
                by_priority.setdefault(consumer.priority, deque()).append(consumer)
            self._levels = [by_priority[p] for p in sorted(by_priority, reverse=True)]

    @property
    def active_consumer(self) -> Consumer | None:
        """For single-active-consumer queues: the consumer receiving messages."""
        return self.consumers[0] if self.consumers and self.args.single_active_consumer else None

    def _pick(self) -> Consumer | None:
        for level in self._levels:
            for _ in range(len(level)):
                consumer = level[0]
                level.rotate(-1)
                if consumer.can_take():
                    return consumer
        return None

    def dispatch(self) -> None:
        """Deliver ready entries while some consumer has credit."""
        if self._busy or not self._levels or self.deleted:
            return
        self._busy = True
        try:
            while self.message_count:
                consumer = self._pick()
                if consumer is None:
                    break
                entry = self._pop_live()
                if entry is None:
                    break
                consumer.channel._deliver(consumer, self, entry)
        finally:
            self._busy = False

    def delivery_message(self, entry: QueueEntry) -> Message:
        """The message as delivered: quorum-style queues add ``x-delivery-count`` on returns."""
        message = entry.message
        if self._count_deliveries and entry.deliveries:
            props = message.properties
            headers = dict(props.headers) if props.headers else {}
            headers["x-delivery-count"] = entry.deliveries
            return Message(
                exchange=message.exchange,
                routing_key=message.routing_key,
                properties=attrs.evolve(props, headers=headers),
                body=message.body,
                id=message.id,
            )
        return message

    def get(self) -> QueueEntry | None:
        """basic.get: the next live ready entry, if any."""
        self.last_used = self._clock()
        return self._pop_live()

    # -- settling ------------------------------------------------------------------------

    def settle(self, entry: QueueEntry) -> None:
        """The entry was acked (or delivered no-ack): it leaves the queue for good."""
        self.stats.acked += 1
        self._bstats.acked += 1
        self._leave(entry)

    def _leave(self, entry: QueueEntry) -> None:
        if self._persist and entry.message.persistent:
            self._store_remove(entry)

    def requeue(self, entries: list[QueueEntry]) -> None:
        """Return unacked entries to their original positions, marked redelivered."""
        if self.deleted:
            return
        limit = self.args.delivery_limit
        for entry in sorted(entries, key=_by_seq, reverse=True):
            entry.redelivered = True
            entry.deliveries += 1
            if limit is not None and entry.deliveries > limit:
                self._leave(entry)
                self.dead_letter(entry.message, DELIVERY_LIMIT)
            else:
                self._reinsert(entry)
        self.dispatch()

    def reject(self, entry: QueueEntry, reason: str) -> None:
        """A consumer rejected the entry without requeue: dead-letter it (or drop it)."""
        self._leave(entry)
        self.dead_letter(entry.message, reason)

    def _expire(self, entry: QueueEntry) -> None:
        self._leave(entry)
        self.dead_letter(entry.message, EXPIRED)

    def dead_letter(self, message: Message, reason: str) -> None:
        if self.vhost._dead_letter(self, message, reason):
            counts = self.stats.dead_lettered
        else:
            counts = self.stats.dropped
        counts[reason] = counts.get(reason, 0) + 1

    def purge(self) -> int:
        """Drop all ready entries (unacked ones stay with their channels)."""
        count = self.message_count
        for ready in self._ready:
            for entry in ready:
                self._leave(entry)
            ready.clear()
        self.message_count = 0
        self.message_bytes = 0
        return count

    def remove_messages(self, ids: Collection[int]) -> int:
        """Remove the ready entries whose ``message.id`` is in ``ids``; how many were removed.

        Like a selective purge: the rest keep their order, unacked entries stay with their
        channels, and nothing is dead-lettered.  As with purge, x-expires' idle timer is
        not reset (only consumers, declares and basic.get count as use).
        """
        if not ids or not self.message_count:
            return 0
        removed = 0
        removed_bytes = 0
        for ready in self._ready:
            if not ready:
                continue
            keep: list[QueueEntry] = []
            hit = False
            for entry in ready:
                if entry.message.id in ids:
                    self._leave(entry)
                    removed += 1
                    removed_bytes += entry.size
                    hit = True
                else:
                    keep.append(entry)
            if hit:
                ready.clear()
                ready.extend(keep)
        self.message_count -= removed
        self.message_bytes -= removed_bytes
        return removed

    # -- time ----------------------------------------------------------------------------

    def expiry_deadline(self) -> float | None:
        """When x-expires deletes this queue if nothing uses it meanwhile."""
        expires = self.args.expires
        if expires is None or self.consumers:
            return None
        return self.last_used + expires / 1000.0

    def next_deadline(self) -> float | None:
        deadline = self.expiry_deadline()
        for ready in self._ready:
            if ready:
                at = ready[0].expires_at
                if at is not None and (deadline is None or at < deadline):
                    deadline = at
        return deadline

    def expire_due(self, now: float) -> None:
        """Expire ready heads whose TTL has passed (head-of-queue only, as RabbitMQ)."""
        for ready in self._ready:
            while ready:
                at = ready[0].expires_at
                if at is None or at > now:
                    break
                entry = ready.popleft()
                self.message_count -= 1
                self.message_bytes -= entry.size
                self._expire(entry)

    # -- store seam ---------------------------------------------------------------------

    def _store_enqueue(self, entry: QueueEntry) -> None:
        # Seam for amqplite.store: append the message and enqueue it for this queue.
        # Not wired yet (durable_write stays False); the store issue fills this in.
        pass

    def _store_remove(self, entry: QueueEntry) -> None:
        # Seam for amqplite.store: the entry was acked, dead-lettered or dropped.
        pass


def _by_seq(entry: QueueEntry) -> int:
    return entry.seq
