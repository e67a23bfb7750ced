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

Persistence (when the broker has a store): a persistent message routed to durable queues
is appended to the store once by the vhost, and each queue entry keeps the returned
``ref``; every way out of the queue (ack, no-ack delivery, dead-letter, drop, purge,
expiry, selective removal, queue deletion) goes through :meth:`Queue.leave`, which
removes the ref from the store.  Lazy bodies: once a queue holds more than
``broker.lazy_queue_bytes`` of ready messages (or always, for ``x-queue-mode: lazy``), a
stored entry's body is dropped from memory (``entry.message is LAZY``) and read back from
the store when it is delivered.  A lazy entry then costs its :class:`QueueEntry` with its
ints plus a deque slot -- about 280 bytes measured (tests/durability/
test_lazy_queue_memory.py), whatever the body size; priority queues keep their bodies.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Collection, Iterator
from typing import TYPE_CHECKING, Any, cast

import attrs

from amqplite.broker.arguments import QueueArgs
from amqplite.broker.consumer import BATCH, Consumer
from amqplite.broker.dead_letter import DELIVERY_LIMIT, EXPIRED, MAXLEN
from amqplite.errors import access_refused
from amqplite.message import EMPTY_PROPERTIES, FieldTable, Message

if TYPE_CHECKING:
    from amqplite.broker.broker import BrokerConnection
    from amqplite.broker.exchange import Binding
    from amqplite.broker.vhost import VHost
    from amqplite.store import MessageRef, Store

log = logging.getLogger(__name__)

#: Bodies in one dispatch batch at most (see ``Consumer.credit``): past them the queue
#: asks the consumer again, and so whether its sink is still writable.
BATCH_BYTES = 128 * 1024

#: Stands in for the body of a lazy entry (kept on disk; read back on delivery).
LAZY = Message("", "", EMPTY_PROPERTIES, b"", id=0)


class QueueEntry:
    """One message in one queue.

    ``ref`` is the store's reference while the store holds the message for this queue
    (None for transient messages, non-durable queues, or once removed); ``mid`` is the
    message's id, kept here because a lazy entry (``message is LAZY``) has no message.
    """

    __slots__ = ("deliveries", "expires_at", "message", "mid", "redelivered", "ref", "seq", "size")

    def __init__(
        self,
        message: Message,
        seq: int,
        expires_at: float | None,
        ref: MessageRef | None = None,
    ) -> None:
        self.message = message
        self.seq = seq
        self.expires_at = expires_at
        self.redelivered = False
        self.deliveries = 0  # times returned to the queue (quorum-style delivery count)
        self.size = len(message.body)
        self.ref = ref
        self.mid = message.id

    def __repr__(self) -> str:
        return f"<QueueEntry seq={self.seq} id={self.mid}>"


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
    """The per-message TTL in ms from the ``expiration`` property, or None if invalid.

    As RabbitMQ (Erlang's ``string:to_integer``): decimal digits with an optional sign;
    negative values are invalid.
    """
    if value.isdigit() and value.isascii():
        return int(value)
    digits = value[1:]
    if value[:1] in ("+", "-") and digits.isdigit() and digits.isascii():
        ttl = int(value)
        return ttl if ttl >= 0 else None
    return None


class Queue:
    """A queue entity (slotted: looked at for every message)."""

    __slots__ = (
        "__weakref__",
        "_broker",
        "_bstats",
        "_busy",
        "_clock",
        "_consumer_seq",
        "_dead_letter_to",
        "_lazy_bytes",
        "_levels",
        "_limited",
        "_only",
        "_ready",
        "_ready0",
        "_seq",
        "_store",
        "args",
        "arguments",
        "auto_delete",
        "bindings",
        "consumer_timeout",
        "consumers",
        "counts_deliveries",
        "deleted",
        "due",
        "due_seq",
        "durable",
        "exclusive",
        "had_consumer",
        "key",
        "last_used",
        "message_bytes",
        "message_count",
        "name",
        "owner",
        "persistent",
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
        dead_letter: Callable[[Queue, Message, str], bool],
    ) -> None:
        self.vhost = vhost
        #: Republishes a dead message to this queue's DLX (the vhost's routing); False
        #: when it was dropped instead (no DLX, or a dead-letter cycle).
        self._dead_letter_to = dead_letter
        self.name = name
        #: How the store names this queue.
        self.key = (vhost.name, name)
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
        self._broker = broker
        self._clock = broker.clock
        self._bstats = broker.stats
        #: Seconds a manual-ack delivery may stay unacked before its channel is closed.
        self.consumer_timeout: float | None = (
            args.consumer_timeout / 1000.0
            if args.consumer_timeout is not None
            else broker.consumer_timeout
        )
        self.last_used = self._clock()
        # The deadline of this queue's live entry in the broker's deadline heap (None: no
        # entry) and that entry's sequence number; see Broker.schedule.
        self.due: float | None = None
        self.due_seq = 0
        levels = (args.max_priority or 0) + 1
        self._ready: list[deque[QueueEntry]] = [deque() for _ in range(levels)]
        self._ready0 = self._ready[0]
        self._levels: list[deque[Consumer]] = []
        #: The consumer when there is exactly one to pick from (no round robin to keep):
        #: publish and dispatch then check its credit without calling _pick().
        self._only: Consumer | None = None
        self._seq = 0
        self._consumer_seq = 0
        self._busy = False
        self._limited = args.max_length is not None or args.max_length_bytes is not None
        # 2: quorum queues (RabbitMQ adds x-delivery-count from the first delivery, as 0);
        # 1: a classic queue with a delivery limit (the header only once returned); 0: none.
        self.counts_deliveries = (
            2 if args.queue_type == "quorum" else int(args.delivery_limit is not None)
        )
        # Persistent messages in durable queues are stored (exclusive queues die with
        # their connection, so they are never recovered and never stored, as in RabbitMQ).
        self.persistent = self.durable and not self.exclusive and broker.store is not None
        self._store = cast("Store", broker.store)
        #: Ready bytes above which stored bodies stay on disk (lazy); priority queues never.
        self._lazy_bytes = (
            (0 if args.lazy else broker.lazy_queue_bytes) if args.max_priority is None else None
        )

    def __repr__(self) -> str:
        return f"<Queue {self.name!r} in {self.vhost.name!r}>"

    # -- inspection --------------------------------------------------------------------

    @property
    def consumer_count(self) -> int:
        return len(self.consumers)

    def browse(self) -> Iterator[QueueEntry]:
        """Ready entries in delivery order, without side effects.

        A lazy entry is yielded as a copy holding its message read back from the store
        (same ``seq``, message id and flags), so callers always see a body.
        """
        for ready in reversed(self._ready):
            for entry in ready:
                if entry.message is not LAZY:
                    yield entry
                    continue
                message = self._load(entry)
                if message is None:
                    continue
                copy = QueueEntry(message, entry.seq, entry.expires_at, entry.ref)
                copy.redelivered = entry.redelivered
                copy.deliveries = entry.deliveries
                yield copy

    # -- publishing --------------------------------------------------------------------

    def publish(self, message: Message, now: float, ref: MessageRef | None = None) -> bool:
        """Enqueue (or deliver at once); False if refused by ``x-overflow`` reject-publish*.

        ``ref``: the store holds the message for this queue (the vhost appended it).  When
        the publish is refused the caller removes it from the store again.
        """
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
        entry = QueueEntry(message, self._seq, expires_at, ref)
        self.stats.published += 1
        if not self.message_count and self._levels and not self._busy:
            only = self._only  # one consumer: check its credit without calling _pick()
            consumer = self._pick() if only is None else (only if only.can_take() else None)
            if consumer is not None:
                consumer.deliver(consumer, self, entry)
                return True
        if expires_at is not None and expires_at <= now:
            # TTL 0 (or already past): it could not be delivered at once, so it expires now.
            self._expire(entry)
            return True
        if args.max_priority is None:
            lazy = self._lazy_bytes
            if ref is not None and lazy is not None and self.message_bytes >= lazy:
                entry.message = LAZY  # the body stays on disk until delivery
            self._ready0.append(entry)
        else:
            self._ready[self._priority_of(message)].append(entry)
        self.message_count += 1
        self.message_bytes += entry.size
        if expires_at is not None:
            due = self.due
            if due is None or expires_at < due:
                self.vhost.broker.schedule(self, expires_at)
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
            self._discard(self._pop_head(), MAXLEN)

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
        """The next ready entry, expiring dead heads on the way (RabbitMQ's lazy TTL).

        A lazy entry gets its body back from the store here; one that cannot be read
        (damaged on disk) is dropped and logged, never delivered.
        """
        while self.message_count:
            # _pop_head() inlined: one delivery, one call less.
            ready = self._ready0 if len(self._ready) == 1 else self._head_deque()
            entry = ready.popleft()
            self.message_count -= 1
            self.message_bytes -= entry.size
            if entry.expires_at is not None and entry.expires_at <= self._clock():
                self._expire(entry)
                continue
            if entry.message is LAZY:
                message = self._load(entry)
                if message is None:
                    self.leave(entry)
                    self._count_dropped("unreadable")
                    continue
                entry.message = message
            return entry
        return None

    def _pop_many(self, n: int) -> list[QueueEntry]:
        """Up to ``n`` next live entries (:meth:`_pop_live` for each), fewer once they
        hold ``BATCH_BYTES`` of bodies (the sink was asked whether it is writable once)."""
        taken: list[QueueEntry] = []
        append = taken.append
        single = len(self._ready) == 1
        ready = self._ready0
        popleft = ready.popleft
        clock = self._clock
        size = 0
        while self.message_count:
            entry = popleft() if single else self._head_deque().popleft()
            self.message_count -= 1
            self.message_bytes -= entry.size
            if entry.expires_at is not None and entry.expires_at <= clock():
                self._expire(entry)
                continue
            if entry.message is LAZY:
                message = self._load(entry)
                if message is None:
                    self.leave(entry)
                    self._count_dropped("unreadable")
                    continue
                entry.message = message
            append(entry)
            size += entry.size
            n -= 1
            if not n or size >= BATCH_BYTES:
                break
        return taken

    def _load(self, entry: QueueEntry) -> Message | None:
        """A lazy entry's message, read back from the store (None if it cannot be)."""
        from amqplite.store import StoreError

        ref = entry.ref
        if ref is None:
            return None
        try:
            message = self._store.read_message(ref)
        except StoreError as exc:
            log.error(
                "queue '%s' in vhost '%s': dropping an unreadable message: %s",
                self.name,
                self.vhost.name,
                exc,
            )
            return None
        message.id = entry.mid
        return message

    def _reinsert(self, entry: QueueEntry) -> None:
        if len(self._ready) == 1:
            ready = self._ready0
            lazy = self._lazy_bytes
            if entry.ref is not None and lazy is not None and self.message_bytes >= lazy:
                entry.message = LAZY
        else:
            ready = self._ready[self._priority_of(entry.message)]
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
        at = entry.expires_at
        if at is not None:
            self.vhost.broker.schedule(self, at)

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
                self.vhost.broker.schedule(self, self.last_used + self.args.expires / 1000.0)
        return self.auto_delete and not self.consumers

    def drop_consumers(self) -> list[Consumer]:
        """The queue is being deleted: detach every consumer and return them."""
        consumers = self.consumers
        self.consumers = []
        self._levels = []
        self._only = None
        return consumers

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
        levels = self._levels
        self._only = levels[0][0] if len(levels) == 1 and len(levels[0]) == 1 else None

    @property
    def active_consumer(self) -> Consumer | None:
        """For single-active-consumer queues: the consumer receiving messages."""
        return self.consumers[0] if self.consumers and self.args.single_active_consumer else None

    def _pick(self) -> Consumer | None:
        only = self._only
        if only is not None:  # one consumer: nothing to rotate
            return only if only.can_take() else None
        for level in self._levels:
            for _ in range(len(level)):
                consumer = level[0]
                level.rotate(-1)
                if consumer.can_take():
                    return consumer
        return None

    def dispatch(self) -> None:
        """Deliver ready entries while some consumer has credit (at the end of the server's
        input batch when one is being handled: see ``Broker.begin_batch``)."""
        if self._busy or not self._levels or self.deleted:
            return
        broker = self._broker
        if broker.batching:
            # A buffer of acks frees credit ack by ack, and with a backlog every publish
            # asks: dispatching once, at the end, delivers what they allow as one batch.
            broker.defer_dispatch(self)
            return
        self._busy = True
        try:
            levels = self._levels
            only = self._only
            if only is not None:
                # One consumer (the common case): no round-robin to keep, so it gets
                # batches, as many entries as its credit allows each; stop if a delivery
                # changed the consumers (rebuilt levels) or deleted the queue.
                credit = only.credit
                while self.message_count:
                    n = credit()
                    if not n:
                        return
                    if n == 1:  # (prefetch 1: the single-entry path is the shorter one)
                        entry = self._pop_live()
                        if entry is None:
                            return
                        only.deliver(only, self, entry)
                        taken = 1
                    else:
                        entries = self._pop_many(n)
                        if not entries:
                            return
                        only.deliver_many(only, self, entries)
                        taken = len(entries)
                    if self._levels is not levels or self.deleted:
                        break
                    if taken == n < BATCH:
                        return  # it took all the credit it had: no need to ask again
                else:
                    return
            while self.message_count:
                consumer = self._pick()
                if consumer is None:
                    break
                entry = self._pop_live()
                if entry is None:
                    break
                consumer.deliver(consumer, self, entry)
        finally:
            self._busy = False

    def delivery_message(self, entry: QueueEntry) -> Message:
        """The message as delivered: quorum-style queues add ``x-delivery-count`` on returns."""
        message = entry.message
        if self.counts_deliveries and (entry.deliveries or self.counts_deliveries == 2):
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
        if entry.ref is not None:  # else leave() has nothing to do: save the call
            self.leave(entry)

    def settle_many(self, entries: list[QueueEntry]) -> None:
        """:meth:`settle` for each of ``entries`` (a run of acks), counted at once."""
        count = len(entries)
        self.stats.acked += count
        self._bstats.acked += count
        if self.persistent:  # only a stored queue's entries have refs
            for entry in entries:
                if entry.ref is not None:
                    self.leave(entry)

    def leave(self, entry: QueueEntry) -> None:
        """The entry leaves this queue for good: the store forgets it for this queue."""
        ref = entry.ref
        if ref is not None:
            entry.ref = None
            self._store.remove(self.key, ref)

    def mark_delivered(self, entry: QueueEntry) -> None:
        """A stored entry went to a consumer: a crash from now on brings it back redelivered."""
        ref = entry.ref
        if ref is not None:
            self._store.mark_delivered(self.key, ref)

    def _discard(self, entry: QueueEntry, reason: str) -> None:
        """The entry leaves for good and is dead-lettered (or dropped) with ``reason``."""
        message: Message | None = entry.message
        if message is LAZY:
            # Read the body back only if a DLX will republish it; before leave(), which
            # may let the store delete the segment holding it.
            message = self._load(entry) if self.args.dead_letter_exchange is not None else None
        self.leave(entry)
        if message is None:
            self._count_dropped(reason)
        else:
            self.dead_letter(message, reason)

    def _count_dropped(self, reason: str) -> None:
        dropped = self.stats.dropped
        dropped[reason] = dropped.get(reason, 0) + 1

    def requeue(self, entries: list[QueueEntry]) -> None:
        """Return unacked entries to their original positions, marked redelivered."""
        if self.deleted:
            for entry in entries:
                self.leave(entry)
            return
        limit = self.args.delivery_limit
        for entry in sorted(entries, key=_by_seq, reverse=True):
            entry.redelivered = True
            entry.deliveries += 1
            if limit is not None and entry.deliveries > limit:
                self._discard(entry, DELIVERY_LIMIT)
            else:
                self._reinsert(entry)
        self.dispatch()

    def reject(self, entry: QueueEntry, reason: str) -> None:
        """A consumer rejected the entry without requeue: dead-letter it (or drop it)."""
        self._discard(entry, reason)

    def _expire(self, entry: QueueEntry) -> None:
        self._discard(entry, EXPIRED)

    def dead_letter(self, message: Message, reason: str) -> None:
        if self._dead_letter_to(self, message, reason):
            counts = self.stats.dead_lettered
        else:
            counts = self.stats.dropped
        counts[reason] = counts.get(reason, 0) + 1

    def purge(self) -> int:
        """Drop all ready entries (unacked ones stay with their channels)."""
        count = self.message_count
        for ready in self._ready:
            if self.persistent:
                refs = [entry.ref for entry in ready if entry.ref is not None]
                if refs:
                    self._store.remove_many(self.key, refs)
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
                if entry.mid in ids:
                    self.leave(entry)
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

    # -- recovery -----------------------------------------------------------------------

    def restore(self, entries: list[QueueEntry]) -> None:
        """Append recovered entries at the tail, in order (recovery refills each queue in
        store order, all of its entries in one call: a million entries cost one loop)."""
        seq = self._seq
        total = self.message_bytes
        lazy = self._lazy_bytes
        schedule = self.vhost.broker.schedule
        single = len(self._ready) == 1
        for entry in entries:
            seq += 1
            entry.seq = seq
            if single and lazy is not None and total >= lazy:
                entry.message = LAZY
            total += entry.size
            at = entry.expires_at
            if at is not None:
                schedule(self, at)
        if single:
            self._ready0.extend(entries)
        else:
            for entry in entries:
                self._ready[self._priority_of(entry.message)].append(entry)
        self._seq = seq
        self.message_count += len(entries)
        self.message_bytes = total

    def message_expiry(self, message: Message, enqueued_at: float) -> float | None:
        """When ``message``, enqueued at ``enqueued_at``, expires here (None: never)."""
        ms = self.args.message_ttl
        expiration = message.properties.expiration
        if expiration is not None:
            per_message = parse_expiration(expiration)
            if per_message is not None and (ms is None or per_message < ms):
                ms = per_message
        return None if ms is None else enqueued_at + ms / 1000.0


def _by_seq(entry: QueueEntry) -> int:
    return entry.seq
