"""Virtual hosts: the exchanges, queues and bindings of one namespace, and routing (broker layer).

The methods here apply RabbitMQ's declare / delete / bind / unbind rules without any
permission check; :class:`~amqplite.broker.channel.Channel` checks permissions and passes
its connection as ``owner`` for exclusivity.  Callers with no connection (the YAML
loader, the HTTP API) leave ``owner`` as ``None`` and are treated as administrators.

Routing: an exchange's router yields queues and exchanges; exchange-to-exchange bindings
are followed with a visited set (so loops end and a queue reachable by two paths gets
the message once), and an exchange that routes nowhere hands the message to its
``alternate-exchange``.  ``CC``/``BCC`` headers add routing keys; ``BCC`` is stripped
before enqueueing.  ``route_recorded`` is the same walk recording each exchange it
visits into a :class:`~amqplite.broker.routing.RouteWalk` (``amqplite route`` renders it).

Persistence (RabbitMQ's rules): durable exchanges and queues, and bindings whose source
and destination are both durable, are written as store records (through the broker)
before they take effect, and deleted with them.  A persistent message routed to durable
queues is appended to the store once, here where routing happens, with all its durable
queues; each queue entry keeps the ref.  A failed append refuses the publish (it is
nacked, never confirmed).
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Collection
from typing import TYPE_CHECKING

import attrs

from amqplite.broker import limits
from amqplite.broker.arguments import (
    EQUIVALENT_EXCHANGE_ARGS,
    EQUIVALENT_QUEUE_ARGS,
    assert_equivalent_args,
    flag,
    inequivalent,
    parse_queue_args,
)
from amqplite.broker.dead_letter import REJECTED, dead_lettered_copy, is_cycle
from amqplite.broker.exchange import Binding, Exchange
from amqplite.broker.exchanges import ROUTERS, DefaultRouter
from amqplite.broker.queue import Queue
from amqplite.broker.results import ROUTED_STREAM, DeclareOk, PublishResult
from amqplite.broker.routing import RouteWalk, routing_keys
from amqplite.broker.stream_args import (
    EQUIVALENT_STREAM_ARGS,
    SERVER_NAMED,
    parse_stream_args,
)
from amqplite.broker.stream_queue import StreamQueue, is_stream, is_stream_declaration
from amqplite.errors import (
    ChannelError,
    access_refused,
    command_invalid,
    not_found,
    precondition_failed,
    resource_locked,
)
from amqplite.message import FieldTable, Message

if TYPE_CHECKING:
    from amqplite.broker.broker import Broker, BrokerConnection
    from amqplite.store import MessageRef

log = logging.getLogger(__name__)

PREDECLARED = (
    ("", "direct"),
    ("amq.direct", "direct"),
    ("amq.fanout", "fanout"),
    ("amq.topic", "topic"),
    ("amq.headers", "headers"),
    ("amq.match", "headers"),
)

UNROUTED = PublishResult(routed=False, queues=0)
_ROUTED = [PublishResult(routed=True, queues=n) for n in range(16)]
_ROUTED_DURABLE = [PublishResult(routed=True, queues=n, durable_write=True) for n in range(16)]
#: The store could not write the message: nobody got it, the publisher gets a nack.
STORE_FAILED = PublishResult(routed=True, queues=0, rejected=True)
_NO_ARGS: FieldTable = {}


def binding_record_key(vhost: str, binding: Binding) -> tuple[str, ...]:
    """The store key of a durable binding (arguments by a stable digest)."""
    digest = ""
    if binding.arguments:
        text = repr(binding.arguments_key).encode()
        digest = hashlib.sha1(text, usedforsecurity=False).hexdigest()[:20]
    return (
        vhost,
        binding.source,
        binding.destination_type,
        binding.destination,
        binding.routing_key,
        digest,
    )


def generate_name(prefix: str) -> str:
    """``prefix`` + 22 URL-safe base64 characters, like RabbitMQ's amq.gen-/amq.ctag- names."""
    return prefix + secrets.token_urlsafe(16)


class VHost:
    """One virtual host."""

    __slots__ = ("broker", "exchanges", "limits", "name", "queues", "streams")

    def __init__(self, broker: Broker, name: str) -> None:
        self.broker = broker
        self.name = name
        #: ``max-connections`` / ``max-queues`` (see :mod:`amqplite.broker.limits`).
        self.limits: dict[str, int] = {}
        self.exchanges: dict[str, Exchange] = {}
        self.queues: dict[str, Queue] = {}
        #: How many of ``queues`` are streams (publishes check for them only when > 0).
        self.streams = 0
        for xname, xtype in PREDECLARED:
            router = DefaultRouter(self.queues) if xname == "" else ROUTERS[xtype]()
            self.exchanges[xname] = Exchange(
                xname, xtype, router, durable=True, auto_delete=False, internal=False, arguments={}
            )

    def __repr__(self) -> str:
        return f"<VHost {self.name!r}>"

    # -- lookups -------------------------------------------------------------------------

    def exchange(self, name: str) -> Exchange:
        x = self.exchanges.get(name)
        if x is None:
            raise not_found(f"no exchange '{name}' in vhost '{self.name}'")
        return x

    def queue(self, name: str, owner: BrokerConnection | None = None) -> Queue:
        """The queue ``name``: 404 if missing, 405 if exclusive to another connection."""
        q = self.queues.get(name)
        if q is None:
            raise not_found(f"no queue '{name}' in vhost '{self.name}'")
        if owner is not None and q.owner is not None and q.owner is not owner:
            raise self._locked(name)
        return q

    def _locked(self, name: str) -> ChannelError:
        return resource_locked(
            f"cannot obtain exclusive access to locked queue '{name}' in vhost '{self.name}'. "
            "It could be originally declared on another connection or the exclusive property "
            "value does not match that of the original declaration."
        )

    def bindings(self) -> list[Binding]:
        """Every explicit binding (the default exchange's implicit ones are not listed)."""
        return [b for x in self.exchanges.values() for b in x.bindings]

    # -- exchanges -----------------------------------------------------------------------

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
    ) -> Exchange:
        if passive:
            return self.exchange(name)
        if type not in ROUTERS:
            # RabbitMQ says "invalid" for names that are Erlang atoms it knows ('' among
            # them) and "unknown" for the rest.
            raise command_invalid(f"{'invalid' if not type else 'unknown'} exchange type '{type}'")
        if name == "":
            raise access_refused("operation not permitted on the default exchange")
        x = self.exchanges.get(name)
        if x is None:
            if name.startswith("amq."):
                raise access_refused(f"exchange name '{name}' contains reserved prefix 'amq.*'")
            alternate = arguments.get("alternate-exchange")
            if alternate is not None and not isinstance(alternate, str | bytes):
                raise precondition_failed(
                    f"invalid arg 'alternate-exchange' for exchange '{name}' in vhost '{self.name}': "
                    f"{{unacceptable_type,{alternate!r}}}"
                )
            x = Exchange(
                name,
                type,
                ROUTERS[type](),
                durable=durable,
                auto_delete=auto_delete,
                internal=internal,
                arguments=arguments,
            )
            if durable:
                self.broker.put_record(
                    "exchange",
                    (self.name, name),
                    {
                        "type": type,
                        "auto_delete": auto_delete,
                        "internal": internal,
                        "arguments": x.arguments,
                    },
                )
            self.exchanges[name] = x
            return x
        if x.type != type:
            raise inequivalent("exchange", name, self.name, "type", type, x.type)
        for arg, got, have in (
            ("durable", durable, x.durable),
            ("auto_delete", auto_delete, x.auto_delete),
            ("internal", internal, x.internal),
        ):
            if got != have:
                raise inequivalent("exchange", name, self.name, arg, flag(got), flag(have))
        assert_equivalent_args(
            "exchange", name, self.name, x.arguments, arguments, EQUIVALENT_EXCHANGE_ARGS
        )
        return x

    def delete_exchange(self, name: str, *, if_unused: bool = False) -> None:
        if name == "":
            raise access_refused("operation not permitted on the default exchange")
        if name.startswith("amq."):
            raise access_refused(
                f"deletion of system exchange '{name}' in vhost '{self.name}' not allowed"
            )
        x = self.exchanges.get(name)
        if x is None:
            return  # deleting what is not there succeeds, as in RabbitMQ
        if if_unused and x.bindings:
            raise precondition_failed(f"exchange '{name}' in vhost '{self.name}' in use")
        self.remove_exchange(x)

    def remove_exchange(self, x: Exchange) -> None:
        if x.deleted:
            return
        if x.durable:
            self.broker.delete_record("exchange", (self.name, x.name))
        x.deleted = True
        del self.exchanges[x.name]
        for binding in list(x.bindings):
            self._remove_binding(binding, x, self._destination(binding), auto_delete=False)
        for binding in list(x.incoming):
            source = self.exchanges.get(binding.source)
            if source is not None:
                self._remove_binding(binding, source, x)

    # -- bindings ------------------------------------------------------------------------

    def bind_queue(
        self,
        queue: str,
        exchange: str,
        routing_key: str,
        arguments: FieldTable = _NO_ARGS,
        *,
        owner: BrokerConnection | None = None,
    ) -> Binding:
        if exchange == "":  # checked first, as RabbitMQ does
            raise access_refused("operation not permitted on the default exchange")
        x = self.exchange(exchange)
        q = self.queue(queue, owner)
        x.router.validate_binding(routing_key, arguments)
        binding = Binding.make(x.name, q.name, "queue", routing_key, arguments)
        if binding not in x.bindings:
            if x.durable and (q.persistent or self._stored_stream(q)):
                self._put_binding(binding)
            x.router.bind(routing_key, binding.arguments, q)
            x.bindings[binding] = None
            q.bindings[binding] = None
        return binding

    def unbind_queue(
        self,
        queue: str,
        exchange: str,
        routing_key: str,
        arguments: FieldTable = _NO_ARGS,
        *,
        owner: BrokerConnection | None = None,
    ) -> None:
        if exchange == "":  # checked first, as RabbitMQ does
            raise access_refused("operation not permitted on the default exchange")
        x = self.exchange(exchange)
        q = self.queue(queue, owner)
        binding = Binding.make(x.name, q.name, "queue", routing_key, arguments)
        if binding in x.bindings:
            self._remove_binding(binding, x, q)

    def bind_exchange(
        self, destination: str, source: str, routing_key: str, arguments: FieldTable = _NO_ARGS
    ) -> Binding:
        src = self.exchange(source)
        dst = self.exchange(destination)
        if src.name == "" or dst.name == "":
            raise access_refused("operation not permitted on the default exchange")
        src.router.validate_binding(routing_key, arguments)
        binding = Binding.make(src.name, dst.name, "exchange", routing_key, arguments)
        if binding not in src.bindings:
            if src.durable and dst.durable:
                self._put_binding(binding)
            src.router.bind(routing_key, binding.arguments, dst)
            src.bindings[binding] = None
            src.e2e_bindings += 1
            dst.incoming[binding] = None
        return binding

    def unbind_exchange(
        self, destination: str, source: str, routing_key: str, arguments: FieldTable = _NO_ARGS
    ) -> None:
        src = self.exchange(source)
        dst = self.exchange(destination)
        if src.name == "" or dst.name == "":
            raise access_refused("operation not permitted on the default exchange")
        binding = Binding.make(src.name, dst.name, "exchange", routing_key, arguments)
        if binding in src.bindings:
            self._remove_binding(binding, src, dst)

    def _put_binding(self, binding: Binding) -> None:
        self.broker.put_record(
            "binding", binding_record_key(self.name, binding), {"arguments": binding.arguments}
        )

    def _remove_binding(
        self,
        binding: Binding,
        source: Exchange,
        dest: Queue | Exchange | None,
        *,
        auto_delete: bool = True,
    ) -> None:
        if source.durable and (
            dest is None
            or (
                dest.durable
                if isinstance(dest, Exchange)
                else dest.persistent or self._stored_stream(dest)
            )
        ):
            self.broker.delete_record("binding", binding_record_key(self.name, binding))
        if dest is not None:
            source.router.unbind(binding.routing_key, binding.arguments, dest)
            if not isinstance(dest, Exchange):  # a queue or a stream
                dest.bindings.pop(binding, None)
            else:
                dest.incoming.pop(binding, None)
                source.e2e_bindings -= 1
        source.bindings.pop(binding, None)
        if auto_delete and source.auto_delete and not source.bindings and not source.deleted:
            self.remove_exchange(source)

    def _destination(self, binding: Binding) -> Queue | Exchange | None:
        if binding.destination_type == "queue":
            return self.queues.get(binding.destination)
        return self.exchanges.get(binding.destination)

    # -- queues --------------------------------------------------------------------------

    def declare_queue(
        self,
        name: str,
        *,
        passive: bool = False,
        durable: bool = False,
        exclusive: bool = False,
        auto_delete: bool = False,
        arguments: FieldTable = _NO_ARGS,
        owner: BrokerConnection | None = None,
        server_named: bool = False,
    ) -> DeclareOk:
        """queue.declare; ``server_named`` marks an ``amq.gen-`` name the caller generated."""
        now = self.broker.clock()
        if passive:
            found = self.queue(name, owner)
            found.last_used = now
            return DeclareOk(found.name, found.message_count, found.consumer_count)
        declared_name = name
        if name == "":
            name = generate_name("amq.gen-")
        elif name.startswith("amq.") and not server_named:
            raise access_refused(f"queue name '{name}' contains reserved prefix 'amq.*'")
        q = self.queues.get(name)
        if q is not None:
            self._check_redeclare(q, durable, exclusive, auto_delete, arguments, owner)
            q.last_used = now
            return DeclareOk(q.name, q.message_count, q.consumer_count)
        if "max-queues" in self.limits and not self.broker.loading:
            limit = limits.reached(self.limits, "max-queues", len(self.queues))
            if limit is not None:
                raise limits.queues_reached(name, self.name, limit)
        if is_stream_declaration(arguments):
            # A channel names a server-named queue before it gets here; recovery re-declares
            # existing names with server_named=True too (while the broker is loading).
            generated = server_named and not self.broker.loading
            return self._declare_stream(
                name, declared_name == "" or generated, durable, exclusive, auto_delete, arguments
            )
        self._add_queue(name, durable, exclusive, auto_delete, arguments, owner)
        return DeclareOk(name, 0, 0)

    def _check_redeclare(
        self,
        q: Queue,
        durable: bool,
        exclusive: bool,
        auto_delete: bool,
        arguments: FieldTable,
        owner: BrokerConnection | None,
    ) -> None:
        """A declare of an existing queue must match it (RabbitMQ's 405 and 406 texts)."""
        name = q.name
        if owner is not None and q.owner is not (owner if exclusive else None):
            raise self._locked(name)
        for arg, got, have in (
            ("durable", durable, q.durable),
            ("auto_delete", auto_delete, q.auto_delete),
        ):
            if got != have:
                raise inequivalent("queue", name, self.name, arg, flag(got), flag(have))
        assert_equivalent_args(
            "queue",
            name,
            self.name,
            q.arguments,
            arguments,
            EQUIVALENT_STREAM_ARGS if is_stream(q) else EQUIVALENT_QUEUE_ARGS,
        )

    def _add_queue(
        self,
        name: str,
        durable: bool,
        exclusive: bool,
        auto_delete: bool,
        arguments: FieldTable,
        owner: BrokerConnection | None,
    ) -> None:
        """A new classic or quorum queue, recorded in the store when it persists."""
        args = parse_queue_args(arguments, name, self.name)
        if args.queue_type == "quorum":
            for bad, prop in (
                # RabbitMQ's order (rabbit_quorum_queue:declare).
                (auto_delete, "auto-delete"),
                (exclusive, "exclusive-owner"),
                (not durable, "non-durable"),
            ):
                if bad:
                    raise precondition_failed(
                        f"invalid property '{prop}' for queue '{name}' in vhost '{self.name}'"
                    )
        q = Queue(
            self,
            name,
            durable=durable,
            exclusive=exclusive and owner is not None,
            auto_delete=auto_delete,
            arguments=arguments,
            args=args,
            owner=owner if exclusive else None,
            dead_letter=self._dead_letter,
        )
        if q.persistent:
            self.broker.put_record(
                "queue",
                (self.name, name),
                {"auto_delete": auto_delete, "arguments": q.arguments},
            )
        self.queues[name] = q
        if q.owner is not None:
            q.owner.exclusive_queues[q] = None
        if args.expires is not None:
            self.broker.watch_queue(q)

    def _stored_stream(self, q: object) -> bool:
        """A stream on a broker with a store (its bindings are durable like it)."""
        return self.broker.store is not None and is_stream(q)

    def _declare_stream(
        self,
        name: str,
        server_named: bool,
        durable: bool,
        exclusive: bool,
        auto_delete: bool,
        arguments: FieldTable,
    ) -> DeclareOk:
        """A new stream queue (see :mod:`amqplite.broker.stream_queue`)."""
        if server_named:
            raise precondition_failed(SERVER_NAMED)
        args = parse_stream_args(
            arguments,
            name,
            self.name,
            durable=durable,
            exclusive=exclusive,
            auto_delete=auto_delete,
        )
        if self.broker.store is not None:
            self.broker.put_record(
                "queue", (self.name, name), {"auto_delete": False, "arguments": dict(arguments)}
            )
        q = StreamQueue(self, name, arguments, args)
        self.queues[name] = q  # type: ignore[assignment]
        self.streams += 1
        self.broker.watch_queue(q)  # type: ignore[arg-type]
        return DeclareOk(name, q.message_count, 0)

    def delete_queue(
        self,
        name: str,
        *,
        if_unused: bool = False,
        if_empty: bool = False,
        owner: BrokerConnection | None = None,
    ) -> int:
        q = self.queues.get(name)
        if q is None:
            return 0  # as RabbitMQ: deleting a missing queue succeeds with count 0
        self.queue(name, owner)
        if if_unused and q.consumers:
            raise precondition_failed(f"queue '{name}' in vhost '{self.name}' in use")
        if if_empty and q.message_count:
            raise precondition_failed(f"queue '{name}' in vhost '{self.name}' not empty")
        return self.remove_queue(q)

    def purge_queue(self, name: str, *, owner: BrokerConnection | None = None) -> int:
        return self.queue(name, owner).purge()

    def remove_queue(self, q: Queue) -> int:
        """Delete ``q`` now: unbind it, cancel its consumers (server-side cancel), drop its messages."""
        if q.deleted:
            return 0
        count = q.message_count
        stream = is_stream(q)
        if q.persistent or (stream and self.broker.store is not None):
            self.broker.delete_record("queue", (self.name, q.name))
        if stream:
            self.streams -= 1
        q.deleted = True
        del self.queues[q.name]
        self.broker.unschedule(q)
        for binding in list(q.bindings):
            source = self.exchanges.get(binding.source)
            if source is not None:
                self._remove_binding(binding, source, q)
        for consumer in q.drop_consumers():
            consumer.channel.consumer_gone(consumer)
        q.purge()
        if q.owner is not None:
            q.owner.exclusive_queues.pop(q, None)
        return count

    # -- routing -------------------------------------------------------------------------

    def route(self, x: Exchange, message: Message) -> Collection[Queue]:
        """The queues ``message`` goes to from exchange ``x`` (each once)."""
        headers = message.properties.headers
        if headers and ("CC" in headers or "BCC" in headers):
            keys = routing_keys(message.routing_key, headers)
        elif not x.e2e_bindings and x.alternate is None:
            return x.router.route(message.routing_key, headers)
        else:
            keys = [message.routing_key]
        return self._walk(x, keys, headers, None)

    def route_recorded(self, x: Exchange, message: Message, walk: RouteWalk) -> Collection[Queue]:
        """:meth:`route`, recording every exchange the walk visits into ``walk`` (for
        ``amqplite route``); ``route`` itself never pays for recording."""
        headers = message.properties.headers
        return self._walk(x, routing_keys(message.routing_key, headers), headers, walk)

    def _walk(
        self, x: Exchange, keys: list[str], headers: FieldTable | None, walk: RouteWalk | None
    ) -> Collection[Queue]:
        """Follow exchange-to-exchange bindings and alternate exchanges from ``x``."""
        queues: dict[Queue, None] = {}
        seen = {x}
        work = [x]
        exchanges = self.exchanges
        while work:
            ex = work.pop()
            router = ex.router
            found = False
            for key in keys:
                for dest in router.route(key, headers):
                    found = True
                    if type(dest) is not Exchange:
                        queues[dest] = None
                    elif dest not in seen:
                        seen.add(dest)
                        work.append(dest)
                        if walk is not None:
                            walk.via[dest] = f"binding from '{ex.name}'"
            alternate = None
            if not found and ex.alternate is not None:
                alternate = exchanges.get(ex.alternate)
                if alternate is not None and alternate not in seen:
                    seen.add(alternate)
                    work.append(alternate)
                    if walk is not None:
                        walk.via[alternate] = f"alternate of '{ex.name}'"
                else:
                    alternate = None
            if walk is not None:
                walk.visited(self, ex, keys, headers, found, alternate)
        return queues

    def publish(self, x: Exchange, message: Message) -> PublishResult:
        """Route and enqueue ``message`` (already checked for permissions and validity)."""
        x.stats.publish_in += 1
        broker = self.broker
        broker.stats.published += 1
        props = message.properties
        headers = props.headers
        if headers or x.e2e_bindings or x.alternate is not None:
            queues = self.route(x, message)
        else:  # route()'s common case, without the call: one exchange, no CC/BCC
            queues = x.router.route(message.routing_key, headers)
        if not queues:
            x.stats.unroutable += 1
            return UNROUTED
        x.stats.publish_out += 1
        if headers and "BCC" in headers:
            headers = dict(headers)
            del headers["BCC"]
            message = Message(
                exchange=message.exchange,
                routing_key=message.routing_key,
                properties=attrs.evolve(message.properties, headers=headers),
                body=message.body,
            )
        now = broker.clock()
        ref: MessageRef | None = None
        if broker.store is not None and props.delivery_mode == 2:  # message.persistent
            ref = self._store_message(message, queues, now)
            if ref == -1:
                return STORE_FAILED
        accepted = 0
        rejected = False
        # A snapshot: a sink may react to a delivery by closing things that change bindings.
        for q in tuple(queues):
            # Nothing stored: _enqueue would only call q.publish (saves a call per queue).
            if q.publish(message, now) if ref is None else self._enqueue(q, message, now, ref):
                accepted += 1
            else:
                rejected = True
        if self.streams and ref is None and any(is_stream(q) for q in queues):
            # A stream message is confirmed once its chunk is fsynced, like a stored one.
            ref = 0
            if accepted == 1 and len(queues) == 1 and not (headers and "BCC" in headers):
                return ROUTED_STREAM  # publishes repeating it may follow: publish_repeated
        if rejected:
            return PublishResult(
                routed=True, queues=accepted, rejected=True, durable_write=ref is not None
            )
        if ref is not None:
            return (
                _ROUTED_DURABLE[accepted]
                if accepted < 16
                else PublishResult(routed=True, queues=accepted, durable_write=True)
            )
        return _ROUTED[accepted] if accepted < 16 else PublishResult(routed=True, queues=accepted)

    def publish_repeated(self, x: Exchange, message: Message, bodies: list[bytes]) -> list[int]:
        """Publishes that repeat ``message`` but for their bodies, right after :meth:`publish`
        sent it to one stream queue (``ROUTED_STREAM``): the same route, so the stream
        appends them at once.  The indices of those it refused (disk full: nack them)."""
        n = len(bodies)
        x.stats.publish_in += n
        self.broker.stats.published += n
        queues = self.route(x, message)
        if len(queues) != 1:  # cannot happen: nothing ran since the route was taken
            return list(range(n))
        x.stats.publish_out += n
        (q,) = queues
        if not is_stream(q):
            return list(range(n))
        stream: StreamQueue = q  # type: ignore[assignment]
        return stream.publish_repeated(message, bodies, self.broker.clock())

    def _store_message(self, message: Message, queues: Collection[Queue], now: float) -> int | None:
        """Append ``message`` once for its durable queues: its ref, None, or -1 if it failed."""
        durable = [q.key for q in queues if q.persistent]
        if not durable:
            return None
        store = self.broker.store
        assert store is not None
        from amqplite.store import StoreWriteError

        try:
            return store.append(message, durable, now)
        except StoreWriteError as exc:
            self.broker.store_write_failed(exc)
            return -1

    def _enqueue(self, q: Queue, message: Message, now: float, ref: MessageRef | None) -> bool:
        """``q.publish`` with the store ref for durable queues; a refused stored copy is removed."""
        if ref is None or not q.persistent:
            return q.publish(message, now)
        if q.deleted:  # deleted by a sink reacting to an earlier delivery of this publish
            self._unstore(q, ref)
            return True
        if q.publish(message, now, ref):
            return True
        self._unstore(q, ref)
        return False

    def _unstore(self, q: Queue, ref: MessageRef) -> None:
        """The store forgets the stored copy of a message ``q`` did not take."""
        store = self.broker.store
        assert store is not None  # a ref exists only with a store
        store.remove(q.key, ref)

    def _dead_letter(self, queue: Queue, message: Message, reason: str) -> bool:
        """Republish a dead message to ``queue``'s DLX; False if it was dropped instead."""
        dlx_name = queue.args.dead_letter_exchange
        if dlx_name is None:
            return False
        dlx = self.exchanges.get(dlx_name)
        if dlx is None:
            return False
        now = self.broker.clock()
        copy = dead_lettered_copy(
            message, queue.name, reason, now, dlx_name, queue.args.dead_letter_routing_key
        )
        dlx.stats.publish_in += 1
        targets = self.route(dlx, copy)
        if targets:
            dlx.stats.publish_out += 1
        headers = copy.properties.headers or {}
        live: list[Queue] = []
        for target in list(targets):
            if reason != REJECTED and is_cycle(target.name, headers):
                target.stats.dropped["cycle"] = target.stats.dropped.get("cycle", 0) + 1
                continue
            live.append(target)
        ref: MessageRef | None = None
        if live and copy.persistent and self.broker.store is not None:
            ref = self._store_message(copy, live, now)
            if ref == -1:
                # Keep the dead letter in memory rather than lose it now.
                log.error("dead letter from queue '%s' kept in memory only", queue.name)
                ref = None
        for target in live:
            self._enqueue(target, copy, now, ref)
        return True
