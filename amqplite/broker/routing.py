"""Routing keys of a publish and recorded routing walks (broker layer).

:func:`routing_keys` is the one place that reads ``CC``/``BCC``: the routing key plus
the keys those headers add (the vhost's router, the x-death writer and route traces all
call it).

:class:`RouteWalk` is what :meth:`amqplite.broker.VHost.route_recorded` fills in (the
same walk as ``VHost.route``, with a recorder): the exchanges the walk visited, in the order it visited them, how it got to each
(published, an exchange-to-exchange binding, an alternate exchange) and what each
exchange's router returned.  The walk is the router's own; nothing here routes a second
time except to say *which* bindings matched, which a router does not tell (one
destination can be bound by several bindings): for each destination the router reached,
each binding to it is tested on its own by a one-binding router of the exchange's type
(:func:`binding_matches`).  ``VHost.route`` passes no recorder and keeps its
single-exchange fast path untouched, so explanations cost the publish path nothing.

:func:`trace` is the entry point for ``amqplite route`` and dead-letter replay dry runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs

from amqplite.broker.exchange import Binding, Exchange
from amqplite.broker.exchanges import ROUTERS
from amqplite.message import BasicProperties, FieldTable, Message

if TYPE_CHECKING:
    from amqplite.broker.vhost import VHost

_HIT = object()

PUBLISHED = "published"


def routing_keys(routing_key: str, headers: FieldTable | None) -> list[str]:
    """``routing_key`` plus the keys of the ``CC`` and ``BCC`` headers (RabbitMQ's sender-
    selected distribution); non-text entries are ignored."""
    keys = [routing_key]
    if headers:
        for name in ("CC", "BCC"):
            extra = headers.get(name)
            if isinstance(extra, list):
                keys.extend(
                    k.decode("utf-8", "replace") if isinstance(k, bytes) else k
                    for k in extra
                    if isinstance(k, str | bytes)
                )
    return keys


@attrs.frozen
class Hop:
    """One exchange the walk visited."""

    exchange: str
    type: str
    #: How the walk got here: "published", "binding from 'X'", "alternate of 'X'".
    via: str
    matched: tuple[Binding, ...] = ()
    #: Bindings of this exchange that did not match.
    unmatched: int = 0
    #: Queues this exchange's router returned (the default exchange: by queue name).
    queues: tuple[str, ...] = ()
    #: The exchange's alternate-exchange argument, and what became of it when nothing
    #: matched: "taken", "missing" (no such exchange) or "visited" (already on the walk).
    alternate: str | None = None
    alternate_outcome: str | None = None


@attrs.frozen
class RouteTrace:
    """A recorded walk: the hops in visiting order and the queues the message reaches."""

    exchange: str
    routing_keys: tuple[str, ...]
    headers: Mapping[str, Any]
    hops: tuple[Hop, ...]
    queues: tuple[str, ...]  # sorted
    internal: bool = False  # the start exchange is internal: clients cannot publish to it

    @property
    def routed(self) -> bool:
        return bool(self.queues)


class RouteWalk:
    """Filled in by ``VHost.route_recorded(x, message, walk)`` as it walks (module doc)."""

    __slots__ = ("hops", "via")

    def __init__(self) -> None:
        self.hops: list[Hop] = []
        #: How each exchange other than the first was reached, set where the walk adds it.
        self.via: dict[Exchange, str] = {}

    def visited(
        self,
        vhost: VHost,
        ex: Exchange,
        keys: list[str],
        headers: FieldTable | None,
        found: bool,
        handed_to: Exchange | None,
    ) -> None:
        """``ex`` was routed (``found``: its router returned something); ``handed_to`` is
        the alternate exchange the walk moved on to, if it did."""
        # Entities hash by identity: a dict keeps the router's order without repeats.
        reached = {d: None for key in keys for d in ex.router.route(key, headers)}
        queues = tuple(d.name for d in reached if not isinstance(d, Exchange))
        matched = tuple(
            b
            for b in ex.bindings
            if _destination(vhost, b) in reached
            and binding_matches(ex, b, tuple(keys), dict(headers or {}))
        )
        outcome = None
        if not found and ex.alternate is not None:
            if handed_to is not None:
                outcome = "taken"
            elif ex.alternate not in vhost.exchanges:
                outcome = "missing"
            else:
                outcome = "visited"
        self.hops.append(
            Hop(
                exchange=ex.name,
                type=ex.type,
                via=self.via.get(ex, PUBLISHED),
                matched=matched,
                unmatched=len(ex.bindings) - len(matched),
                queues=queues,
                alternate=ex.alternate,
                alternate_outcome=outcome,
            )
        )


def _destination(vhost: VHost, binding: Binding) -> object:
    if binding.destination_type == "queue":
        return vhost.queues.get(binding.destination)
    return vhost.exchanges.get(binding.destination)


def binding_matches(
    exchange: Exchange, binding: Binding, keys: tuple[str, ...], headers: dict[str, Any]
) -> bool:
    """Whether ``binding`` of ``exchange`` matches any of ``keys`` / ``headers``, asked of a
    router of the exchange's type that holds this one binding."""
    router = ROUTERS[exchange.type]()
    router.bind(binding.routing_key, dict(binding.arguments), _HIT)
    return any(_HIT in router.route(key, headers) for key in keys)


def trace(
    vhost: VHost, exchange: Exchange, routing_key: str, headers: Mapping[str, Any] | None = None
) -> RouteTrace:
    """Route a message published to ``exchange`` with ``routing_key`` and ``headers`` the
    way the broker does, without enqueueing it, and return the recorded walk."""
    hdrs = dict(headers or {})
    message = Message(exchange.name, routing_key, BasicProperties(headers=hdrs or None), b"")
    return trace_message(vhost, exchange, message)


def trace_message(vhost: VHost, exchange: Exchange, message: Message) -> RouteTrace:
    """:func:`trace` for a whole message (its routing key and headers)."""
    walk = RouteWalk()
    queues = vhost.route_recorded(exchange, message, walk)
    headers = dict(message.properties.headers or {})
    return RouteTrace(
        exchange=exchange.name,
        routing_keys=tuple(routing_keys(message.routing_key, headers)),
        headers=headers,
        hops=tuple(walk.hops),
        queues=tuple(sorted(q.name for q in queues)),
        internal=exchange.internal,
    )
