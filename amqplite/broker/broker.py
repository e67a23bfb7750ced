"""The broker: virtual hosts, users, connections and the core's timers (broker layer).

Synchronous and deterministic: no I/O, and the only time it knows is what ``clock()``
returns.  The server owns the event loop and calls :meth:`Broker.tick` when
:meth:`Broker.next_deadline` passes.

With a ``store`` (see :mod:`amqplite.store`), durable vhosts, exchanges, queues, bindings,
users and permissions are written as store records when they are created and deleted,
and persistent messages in durable queues are stored; call :meth:`Broker.recover` once,
before anything else, to rebuild the broker from what the store holds.
"""

from __future__ import annotations

import gc
import heapq
import itertools
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

import attrs

from amqplite.broker import limits
from amqplite.broker.auth import User, UserDB
from amqplite.broker.channel import Channel
from amqplite.broker.queue import BrokerStats, Queue
from amqplite.broker.results import DeliverySink
from amqplite.broker.vhost import VHost
from amqplite.errors import ReplyCode, channel_error, internal_error, not_allowed

if TYPE_CHECKING:
    from amqplite.broker.recovery import RecoveryReport
    from amqplite.broker.stream_queue import StreamWire
    from amqplite.store import Store, StoreWriteError

log = logging.getLogger(__name__)

#: RabbitMQ's default ``consumer_timeout``: 30 minutes.
DEFAULT_CONSUMER_TIMEOUT = 1800.0
#: Ready bytes per queue above which stored message bodies are kept on disk only.
DEFAULT_LAZY_QUEUE_BYTES = 16 << 20
#: Stale deadline-heap entries tolerated before the heap is rebuilt without them.
STALE_COMPACT_AT = 1024
#: A store this small is recovered with all bodies read in one pass (faster first
#: deliveries); a larger one keeps every body on disk until delivery, and recovery reads
#: only each message's queues, properties and size (1M small messages: ~5 s of CPU instead
#: of ~24 s; see docs/performance.md).
RECOVER_BODIES_BELOW = 16 << 20
#: After recovering at least this many messages the broker freezes what it made
#: (``gc.freeze``), so no later collection traverses a queue entry per stored message.
FREEZE_AFTER_MESSAGES = 50_000


@attrs.frozen
class ConnectionInfo:
    """What the server knows about a client connection, for inspection."""

    name: str = ""
    client_properties: dict[str, Any] = attrs.field(factory=dict)
    #: The SASL mechanism the client logged in with (PLAIN, AMQPLAIN, EXTERNAL).
    auth_mechanism: str = "PLAIN"
    #: The TLS version ("TLSv1.3") of a TLS connection, None for plain TCP.
    tls_protocol: str | None = None
    #: A verified client certificate's subject (RFC 4514), if one was sent.
    peer_cert_subject: str | None = None


class BrokerConnection:
    """A client connection as the core sees it: a user, a vhost, channels, exclusive queues."""

    __slots__ = (
        "broker",
        "channels",
        "closed",
        "closer",
        "connected_at",
        "counted",
        "exclusive_queues",
        "id",
        "info",
        "user",
        "vhost",
    )

    def __init__(
        self,
        broker: Broker,
        id: int,
        vhost: VHost,
        user: User | None,
        info: ConnectionInfo,
        counted: bool = True,
    ) -> None:
        self.broker = broker
        self.id = id
        self.vhost = vhost
        self.user = user
        self.info = info
        #: A client connection (counts against connection limits); internal ones do not.
        self.counted = counted
        self.connected_at = broker.clock()
        self.channels: dict[int, Channel] = {}
        self.exclusive_queues: dict[Queue, None] = {}
        self.closed = False
        #: Set by the server: closes the client connection with (reply code, text) when
        #: the broker ends it (user or vhost deleted).  None: just close the core side.
        self.closer: Callable[[int, str], None] | None = None

    def __repr__(self) -> str:
        return f"<BrokerConnection {self.id} {self.info.name!r}>"

    def open_channel(self, number: int, sink: DeliverySink) -> Channel:
        if number in self.channels:
            raise channel_error(f"channel {number} is already open")
        user = self.user
        if user is not None and "max-channels" in user.limits:
            count = sum(len(c.channels) for c in self.broker.connections_of(user))
            limit = limits.reached(user.limits, "max-channels", count)
            if limit is not None:
                raise limits.user_channels_reached(user.name, limit)
        channel = Channel(self, number, sink)
        self.channels[number] = channel
        return channel

    def close(self) -> None:
        """Close every channel and delete this connection's exclusive queues."""
        if self.closed:
            return
        self.closed = True
        for channel in list(self.channels.values()):
            channel.close()
        for q in list(self.exclusive_queues):
            self.vhost.remove_queue(q)
        self.exclusive_queues.clear()
        self.broker.connections.pop(self.id, None)

    def force_close(self, reply_code: int, reply_text: str) -> None:
        """End this connection from the broker's side (the client hears ``reply_text``)."""
        closer = self.closer
        if closer is not None:
            closer(reply_code, reply_text)
        self.close()


class Broker:
    """The whole core.  ``clock`` returns wall-clock seconds; ``store`` persists (optional).

    ``consumer_timeout`` (seconds, None = off) is how long a manual-ack delivery may stay
    unacked before its channel is closed with 406, as RabbitMQ's ``consumer_timeout``;
    a queue's ``x-consumer-timeout`` argument (ms) overrides it for that queue.
    ``lazy_queue_bytes``: a queue holding more ready bytes than this keeps the bodies of
    further stored messages on disk (read back on delivery).
    """

    def __init__(
        self,
        clock: Callable[[], float],
        store: Store | None = None,
        consumer_timeout: float | None = DEFAULT_CONSUMER_TIMEOUT,
        *,
        lazy_queue_bytes: int = DEFAULT_LAZY_QUEUE_BYTES,
    ) -> None:
        self.clock = clock
        self.store = store
        self.lazy_queue_bytes = lazy_queue_bytes
        #: Called with the error when a store write fails (the server checks the disk).
        self.on_store_write_error: Callable[[StoreWriteError], None] | None = None
        #: Wire-format help for stream queues, lent by the server (the core never imports
        #: the protocol); without it streams keep delivered properties as Python values.
        self.stream_wire: StreamWire | None = None
        #: Set by the server while it handles one receive buffer (see begin_batch).
        self.batching = False
        self._deferred: dict[Any, None] = {}
        #: Store writes that failed since start (publishes nacked, records not written).
        self.store_write_errors = 0
        #: True while recovery rebuilds entities: they are in the store already, so the
        #: broker writes no records for them.
        self.loading = False
        self.consumer_timeout = consumer_timeout
        self.stats = BrokerStats()
        self.vhosts: dict[str, VHost] = {}
        self.users = UserDB()
        self.users.records = self
        self.connections: dict[int, BrokerConnection] = {}
        #: Node-wide cap on client connections (RabbitMQ's ``connection_max``; None: none).
        self.connection_max: int | None = None
        self._ids = itertools.count(1)
        # Deadlines as a heap of (at, seq, kind, queue or channel).  An entry is pushed
        # when an object's deadline appears or moves earlier and is the object's live one
        # while ``obj.due_seq == seq``; deadlines that move later (acks, consumed heads)
        # are found when the entry comes up and pushed back, so both next_deadline() and
        # tick() cost what is due, not what exists.
        self._deadlines: list[tuple[float, int, int, Any]] = []
        self._deadline_seq = itertools.count(1)
        # Entries in the heap that are no object's live entry (see _note_stale).
        self._stale = 0
        # Channels whose unacked deliveries come from queues with different consumer
        # timeouts: an ack there can move the deadline earlier, so these (rare) channels
        # are scanned on every call, as all channels once were.
        self._mixed_channels: dict[Channel, None] = {}
        #: Heap entries and mixed channels looked at by tick() and next_deadline() since
        #: start (observability: it grows with what is due, not with queues or channels).
        self.deadline_checks = 0

    def add_vhost(self, name: str, limits: dict[str, int] | None = None) -> VHost:
        """Create vhost ``name`` (or return it if it exists); set its limits if given."""
        vhost = self.vhosts.get(name)
        if vhost is None or (limits is not None and limits != vhost.limits):
            new_limits = dict(limits) if limits is not None else {}
            self.put_record("vhost", (name,), {"limits": new_limits} if new_limits else {})
            if vhost is None:
                vhost = self.vhosts[name] = VHost(self, name)
            vhost.limits = new_limits
        return vhost

    def delete_vhost(self, name: str) -> None:
        vhost = self.vhosts.pop(name, None)
        if vhost is None:
            return
        for conn in [c for c in self.connections.values() if c.vhost is vhost]:
            conn.force_close(ReplyCode.CONNECTION_FORCED, f"vhost '{name}' is deleted")
        for q in list(vhost.queues.values()):
            vhost.remove_queue(q)
        for x in list(vhost.exchanges.values()):
            if x.durable and not x.name.startswith("amq.") and x.name:
                vhost.remove_exchange(x)
        self.delete_record("vhost", (name,))

    # -- store ---------------------------------------------------------------------------

    def recover(self, *, load_bodies: bool | None = None) -> RecoveryReport:
        """Rebuild vhosts, users, topology and queued messages from the store.

        Call once, right after construction and before anything else touches the broker.
        ``load_bodies`` None: read all bodies in one pass when the store is small (at most
        :data:`RECOVER_BODIES_BELOW` bytes on disk), else leave them on disk (lazy entries,
        read back on delivery) so that long queues never need all their bodies in memory.
        """
        from amqplite.broker.recovery import recover_broker

        store = self.store
        if store is None:
            raise ValueError("a broker without a store has nothing to recover")
        if load_bodies is None:
            usage = getattr(store, "disk_usage", None)
            load_bodies = usage is None or usage() <= RECOVER_BODIES_BELOW
        # Recovery makes a few objects per stored message and frees none of them: with the
        # collector on, a million messages set off collections that traverse everything made
        # so far, again and again (half the time of a large recovery).  Nothing recovery
        # makes is cyclic garbage, so the collector waits until it is done.
        collecting = gc.isenabled()
        gc.disable()
        try:
            report = recover_broker(self, store.recover(load_bodies=load_bodies))
        finally:
            if collecting:
                gc.enable()
        if report.messages >= FREEZE_AFTER_MESSAGES:
            # What recovery made lives long (a queue entry per message): moved out of the
            # collector's generations, no collection traverses it again.  After a million
            # messages the next collections took 0.23-0.39 s each (four of them in the
            # first second), stalling the event loop.  Frozen objects are still freed by
            # reference counting; only cycles among them would never be collected.
            gc.freeze()
        return report

    def put_record(self, kind: str, key: tuple[str, ...], value: object) -> None:
        """Write a topology record (no store, or recovering: nothing to do).

        A failed write raises 541 INTERNAL_ERROR before the caller changes anything, so
        what the broker holds never runs ahead of what it could persist.
        """
        store = self.store
        if store is None or self.loading:
            return
        from amqplite.store import StoreWriteError

        try:
            store.put_record(kind, key, value)
        except StoreWriteError as exc:
            self.store_write_failed(exc)
            raise internal_error(f"INTERNAL_ERROR - cannot write to the store: {exc}") from exc

    def delete_record(self, kind: str, key: tuple[str, ...]) -> None:
        """Delete a topology record; a failed write is logged (the deletion stands)."""
        store = self.store
        if store is None or self.loading:
            return
        from amqplite.store import StoreWriteError

        try:
            store.delete_record(kind, key)
        except StoreWriteError as exc:
            self.store_write_failed(exc)
            log.error("could not delete %s %r from the store: %s", kind, key, exc)

    def store_write_failed(self, exc: StoreWriteError) -> None:
        self.store_write_errors += 1
        log.error("store write failed: %s", exc)
        if self.on_store_write_error is not None:
            self.on_store_write_error(exc)

    def get_vhost(self, name: str) -> VHost:
        vhost = self.vhosts.get(name)
        if vhost is None:
            raise not_allowed(f"vhost {name} not found")
        return vhost

    def open_connection(
        self,
        vhost: str = "/",
        user: str | None = None,
        info: ConnectionInfo | None = None,
        *,
        counted: bool = True,
    ) -> BrokerConnection:
        """Attach a connection to ``vhost`` as ``user`` (None: internal, no permission checks).

        530 NOT_ALLOWED if the vhost is missing, the user has no permissions on it, or a
        connection limit (node, vhost, user) is reached.  ``counted`` False: an internal
        connection (the HTTP API's), which neither counts against limits nor is refused
        by them.
        """
        vh = self.get_vhost(vhost)
        account: User | None = None
        if user is not None:
            account = self.users.get(user)
            if account is None or not account.can_access_vhost(vhost):
                raise not_allowed(f"access to vhost '{vhost}' refused for user '{user}'")
        if counted:
            self._check_connection_limits(vh, account, user)
        conn = BrokerConnection(
            self, next(self._ids), vh, account, info or ConnectionInfo(), counted
        )
        self.connections[conn.id] = conn
        return conn

    def _check_connection_limits(
        self, vhost: VHost, account: User | None, user: str | None
    ) -> None:
        # Counted only when a limit is set, so an unlimited broker pays nothing here.
        if self.connection_max is not None:
            count = sum(1 for c in self.connections.values() if c.counted)
            limit = limits.reached({"max": self.connection_max}, "max", count)
            if limit is not None:
                raise limits.node_connections_reached(limit)
        if "max-connections" in vhost.limits:
            count = sum(1 for c in self.connections.values() if c.counted and c.vhost is vhost)
            limit = limits.reached(vhost.limits, "max-connections", count)
            if limit is not None:
                raise limits.vhost_connections_reached(vhost.name, user or "", limit)
        if account is not None and "max-connections" in account.limits:
            count = sum(1 for c in self.connections_of(account) if c.counted)
            limit = limits.reached(account.limits, "max-connections", count)
            if limit is not None:
                raise limits.user_connections_reached(account.name, limit)

    def connections_of(self, user: User) -> list[BrokerConnection]:
        """The open connections authenticated as ``user``."""
        return [c for c in self.connections.values() if c.user is user]

    def delete_user(self, name: str) -> bool:
        """Delete user ``name`` and close its connections with 320, as RabbitMQ does."""
        user = self.users.get(name)
        if user is None:
            return False
        self.users.delete_user(name)
        for conn in self.connections_of(user):
            conn.force_close(ReplyCode.CONNECTION_FORCED, f"user '{name}' is deleted")
        return True

    # -- input batches -------------------------------------------------------------------

    def begin_batch(self) -> None:
        """The server is about to handle one receive buffer of a connection.

        Until :meth:`end_batch`, queues (classic and stream) collect their dispatches
        instead of running one per ack or publish: a consumer acking each message gets the
        messages its freed credit allows once per buffer, in one pass, rather than once per
        ack (a stream reader in one pass over its chunk).
        """
        self.batching = True

    def defer_dispatch(self, queue: Any) -> None:
        """``queue`` has work for its readers at the end of this batch."""
        self._deferred[queue] = None

    def end_batch(self) -> None:
        """Run the dispatches deferred during the batch."""
        self.batching = False
        deferred = self._deferred
        while deferred:
            queue = next(iter(deferred))
            del deferred[queue]
            queue.dispatch()

    # -- time ----------------------------------------------------------------------------

    def schedule(self, obj: Queue | Channel, at: float) -> None:
        """Note that ``obj`` (a queue or channel) has work at ``at`` (if sooner than known).

        Cheap when ``obj`` already has an entry due no later than ``at``: the entry
        re-checks the object's real deadline when it comes up.
        """
        due = obj.due
        if due is None or at < due:
            seq = next(self._deadline_seq)
            obj.due = at
            obj.due_seq = seq
            heapq.heappush(
                self._deadlines, (at, seq, _CHANNEL if isinstance(obj, Channel) else _QUEUE, obj)
            )
            if due is not None:
                self._note_stale()  # the entry at ``due`` is superseded

    def unschedule(self, obj: Queue | Channel) -> None:
        """``obj`` is gone (deleted queue, closed channel): its entry becomes stale."""
        if obj.due is not None:
            obj.due = None
            obj.due_seq = 0
            self._note_stale()

    def _note_stale(self) -> None:
        # Stale entries keep their objects alive until they come up (a closed channel's
        # entry might wait 30 minutes), so once they are most of a sizeable heap the heap
        # is rebuilt without them: O(1) amortised per stale entry, memory stays bounded.
        self._stale += 1
        heap = self._deadlines
        if self._stale > STALE_COMPACT_AT and 2 * self._stale > len(heap):
            heap[:] = [e for e in heap if e[3].due_seq == e[1]]
            heapq.heapify(heap)
            self._stale = 0

    def watch_queue(self, q: Queue) -> None:
        """Schedule ``q``'s current deadline (x-expires, head TTL), if it has one."""
        if not q.deleted:
            at = q.next_deadline()
            if at is not None:
                self.schedule(q, at)

    def channel_mixed_timeouts(self, channel: Channel) -> None:
        """``channel`` holds deliveries under different consumer timeouts (see __init__)."""
        self._mixed_channels[channel] = None

    @staticmethod
    def _real_deadline(kind: int, obj: Any) -> float | None:
        if kind == _CHANNEL:
            return cast("Channel", obj).timeout_deadline()
        q = cast("Queue", obj)
        return None if q.deleted else q.next_deadline()

    def tick(self) -> None:
        """Expire due messages (queue heads), delete queues whose x-expires passed, and
        close channels whose oldest unacked delivery outlived its consumer timeout."""
        now = self.clock()
        heap = self._deadlines
        later: list[tuple[Any, float]] = []
        examined = 0
        while heap and heap[0][0] <= now:
            _at, seq, kind, obj = heapq.heappop(heap)
            examined += 1
            if obj.due_seq != seq:
                self._stale -= 1
                continue  # superseded by an earlier entry for the same object
            obj.due = None
            obj.due_seq = 0
            if kind == _CHANNEL:
                channel = cast("Channel", obj)
                real = channel.timeout_deadline()
                if real is not None and real <= now:
                    self._mixed_channels.pop(channel, None)
                    channel.consumer_timed_out()
                    continue
            else:
                q = cast("Queue", obj)
                if q.deleted:
                    continue
                q.expire_due(now)
                expiry = q.expiry_deadline()
                if expiry is not None and expiry <= now:
                    q.vhost.remove_queue(q)
                    continue
                real = q.next_deadline()
            if real is not None:
                # Pushed after the loop so that one tick() always ends.
                later.append((obj, real))
        for obj, real in later:
            self.schedule(obj, real)
        if self._mixed_channels:
            for channel in list(self._mixed_channels):
                examined += 1
                at = channel.timeout_deadline()
                if at is None:
                    if channel.closed:
                        self._mixed_channels.pop(channel, None)
                elif at <= now:
                    self._mixed_channels.pop(channel, None)
                    channel.consumer_timed_out()
        self.deadline_checks += examined

    def next_deadline(self) -> float | None:
        """The earliest absolute clock time at which :meth:`tick` has work, or None."""
        heap = self._deadlines
        examined = 0
        # Settle the top: drop superseded entries and move entries whose object's deadline
        # changed, until the top is an object's exact current deadline.
        while heap:
            at, seq, kind, obj = heap[0]
            examined += 1
            if obj.due_seq == seq:
                real = self._real_deadline(kind, obj)
                if real == at:
                    break
                obj.due = None
                obj.due_seq = 0
                heapq.heappop(heap)
                if real is not None:
                    self.schedule(obj, real)
            else:
                heapq.heappop(heap)
                self._stale -= 1
        best: float | None = heap[0][0] if heap else None
        if self._mixed_channels:
            stale: list[Channel] = []
            for channel in self._mixed_channels:
                examined += 1
                due = channel.timeout_deadline()
                if due is None:
                    if channel.closed:
                        stale.append(channel)
                elif best is None or due < best:
                    best = due
            for channel in stale:
                del self._mixed_channels[channel]
        self.deadline_checks += examined
        return best


_QUEUE = 0
_CHANNEL = 1
