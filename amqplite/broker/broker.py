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

import itertools
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import attrs

from amqplite.broker.auth import User, UserDB
from amqplite.broker.channel import Channel
from amqplite.broker.queue import BrokerStats, Queue
from amqplite.broker.results import DeliverySink
from amqplite.broker.vhost import VHost
from amqplite.errors import channel_error, internal_error, not_allowed

if TYPE_CHECKING:
    from amqplite.broker.recovery import RecoveryReport
    from amqplite.store import Store, StoreWriteError

log = logging.getLogger(__name__)

#: RabbitMQ's default ``consumer_timeout``: 30 minutes.
DEFAULT_CONSUMER_TIMEOUT = 1800.0
#: Ready bytes per queue above which stored message bodies are kept on disk only.
DEFAULT_LAZY_QUEUE_BYTES = 16 << 20
#: A store this small is recovered with all bodies read in one pass (faster startup).
RECOVER_BODIES_BELOW = 256 << 20


@attrs.frozen
class ConnectionInfo:
    """What the server knows about a client connection, for inspection."""

    name: str = ""
    client_properties: dict[str, Any] = attrs.field(factory=dict)


class BrokerConnection:
    """A client connection as the core sees it: a user, a vhost, channels, exclusive queues."""

    __slots__ = (
        "broker",
        "channels",
        "closed",
        "connected_at",
        "exclusive_queues",
        "id",
        "info",
        "user",
        "vhost",
    )

    def __init__(
        self, broker: Broker, id: int, vhost: VHost, user: User | None, info: ConnectionInfo
    ) -> None:
        self.broker = broker
        self.id = id
        self.vhost = vhost
        self.user = user
        self.info = info
        self.connected_at = broker.clock()
        self.channels: dict[int, Channel] = {}
        self.exclusive_queues: dict[Queue, None] = {}
        self.closed = False

    def __repr__(self) -> str:
        return f"<BrokerConnection {self.id} {self.info.name!r}>"

    def open_channel(self, number: int, sink: DeliverySink) -> Channel:
        if number in self.channels:
            raise channel_error(f"channel {number} is already open")
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
        #: Store writes that failed since start (publishes nacked, records not written).
        self.store_write_errors = 0
        # True while recover() rebuilds entities: they are in the store already.
        self._loading = False
        self.consumer_timeout = consumer_timeout
        self.stats = BrokerStats()
        self.vhosts: dict[str, VHost] = {}
        self.users = UserDB()
        self.users.records = self
        self.connections: dict[int, BrokerConnection] = {}
        self._ids = itertools.count(1)
        # Queues with x-expires or messages that carry a TTL: the only ones tick() visits.
        self._timed_queues: dict[Queue, None] = {}
        # Channels that had unacked deliveries with a consumer timeout (pruned lazily).
        self._timed_channels: dict[Channel, None] = {}

    def add_vhost(self, name: str) -> VHost:
        """Create vhost ``name`` (or return it if it exists)."""
        vhost = self.vhosts.get(name)
        if vhost is None:
            self.put_record("vhost", (name,), {})
            vhost = self.vhosts[name] = VHost(self, name)
        return vhost

    def delete_vhost(self, name: str) -> None:
        vhost = self.vhosts.pop(name, None)
        if vhost is None:
            return
        for conn in [c for c in self.connections.values() if c.vhost is vhost]:
            conn.close()
        for q in list(vhost.queues.values()):
            vhost.remove_queue(q)
        for x in list(vhost.exchanges.values()):
            if x.durable and not x.name.startswith("amq.") and x.name:
                vhost._remove_exchange(x)
        self.delete_record("vhost", (name,))

    # -- store ---------------------------------------------------------------------------

    def recover(self, *, load_bodies: bool | None = None) -> RecoveryReport:
        """Rebuild vhosts, users, topology and queued messages from the store.

        Call once, right after construction and before anything else touches the broker.
        ``load_bodies`` None: read all bodies in one pass when the store is small (at most
        :data:`RECOVER_BODIES_BELOW` bytes on disk), else one message at a time so that
        long queues never need all their bodies in memory at once.
        """
        from amqplite.broker.recovery import recover_broker

        store = self.store
        if store is None:
            raise ValueError("a broker without a store has nothing to recover")
        if load_bodies is None:
            usage = getattr(store, "disk_usage", None)
            load_bodies = usage is None or usage() <= RECOVER_BODIES_BELOW
        return recover_broker(self, store.recover(load_bodies=load_bodies))

    def put_record(self, kind: str, key: tuple[str, ...], value: object) -> None:
        """Write a topology record (no store, or recovering: nothing to do).

        A failed write raises 541 INTERNAL_ERROR before the caller changes anything, so
        what the broker holds never runs ahead of what it could persist.
        """
        store = self.store
        if store is None or self._loading:
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
        if store is None or self._loading:
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
        self, vhost: str = "/", user: str | None = None, info: ConnectionInfo | None = None
    ) -> BrokerConnection:
        """Attach a connection to ``vhost`` as ``user`` (None: internal, no permission checks).

        530 NOT_ALLOWED if the vhost is missing or the user has no permissions on it.
        """
        vh = self.get_vhost(vhost)
        account: User | None = None
        if user is not None:
            account = self.users.get(user)
            if account is None or not account.can_access_vhost(vhost):
                raise not_allowed(f"access to vhost '{vhost}' refused for user '{user}'")
        conn = BrokerConnection(self, next(self._ids), vh, account, info or ConnectionInfo())
        self.connections[conn.id] = conn
        return conn

    # -- time ----------------------------------------------------------------------------

    def tick(self) -> None:
        """Expire due messages (queue heads), delete queues whose x-expires passed, and
        close channels whose oldest unacked delivery outlived its consumer timeout."""
        now = self.clock()
        if self._timed_channels:
            self._check_consumer_timeouts(now)
        for q in list(self._timed_queues):
            if q.deleted:
                self._timed_queues.pop(q, None)
                continue
            q.expire_due(now)
            deadline = q.expiry_deadline()
            if deadline is not None and deadline <= now:
                q.vhost.remove_queue(q)
            elif not q.message_count and q.args.expires is None:
                self._timed_queues.pop(q, None)

    def _check_consumer_timeouts(self, now: float) -> None:
        for channel in list(self._timed_channels):
            at = channel.timeout_deadline()
            if at is None:
                self._timed_channels.pop(channel, None)
            elif at <= now:
                self._timed_channels.pop(channel, None)
                channel.consumer_timed_out()

    def next_deadline(self) -> float | None:
        """The earliest absolute clock time at which :meth:`tick` has work, or None."""
        best: float | None = None
        if self._timed_channels:
            stale: list[Channel] = []
            for channel in self._timed_channels:
                at = channel.timeout_deadline()
                if at is None:
                    stale.append(channel)
                elif best is None or at < best:
                    best = at
            for channel in stale:
                del self._timed_channels[channel]
        for q in self._timed_queues:
            at = q.next_deadline()
            if at is not None and (best is None or at < best):
                best = at
        return best
