"""Explain where a message would go: matched bindings, exchange-to-exchange hops, alternates.

CLI layer (``amqplite route``).  The topology is loaded into an in-memory broker (from a
YAML file or a running broker's ``/api/definitions``) and the route is traced with the
broker's own exchange routers, so the explanation cannot drift from what the broker does:
each binding is tested on its own by a one-binding router of the exchange's type (the
routers' public ``bind`` / ``route``), which tells *which* bindings matched, not only
where the message lands.  The walk mirrors :meth:`amqplite.broker.VHost.route`:
``CC``/``BCC`` headers add routing keys, exchange-to-exchange bindings are followed once
each, and an exchange where nothing matched hands over to its ``alternate-exchange``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from amqplite.broker import Binding, Exchange, VHost
from amqplite.broker.exchanges import ROUTERS
from amqplite.ops.errors import OpsError

_HIT = object()


@attrs.frozen
class Hop:
    """One exchange the message passes through."""

    exchange: str
    type: str
    #: How the message got here: "published", "binding from X", "alternate of X".
    via: str
    matched: tuple[Binding, ...] = ()
    unmatched: int = 0
    #: For the default exchange: the queue named by the routing key, if any.
    default_queue: str | None = None
    note: str = ""


@attrs.frozen
class RouteTrace:
    exchange: str
    routing_keys: tuple[str, ...]
    headers: Mapping[str, Any]
    hops: tuple[Hop, ...]
    queues: tuple[str, ...]
    notes: tuple[str, ...] = ()

    @property
    def routed(self) -> bool:
        return bool(self.queues)

    def to_json(self) -> dict[str, Any]:
        return {
            "exchange": self.exchange,
            "routing_keys": list(self.routing_keys),
            "headers": dict(self.headers),
            "routed": self.routed,
            "queues": list(self.queues),
            "hops": [
                {
                    "exchange": h.exchange,
                    "type": h.type,
                    "via": h.via,
                    "matched": [
                        {
                            "destination": b.destination,
                            "destination_type": b.destination_type,
                            "routing_key": b.routing_key,
                            "arguments": dict(b.arguments),
                        }
                        for b in h.matched
                    ],
                    "unmatched": h.unmatched,
                    "note": h.note,
                }
                for h in self.hops
            ],
            "notes": list(self.notes),
        }


def _keys(routing_key: str, headers: Mapping[str, Any]) -> tuple[str, ...]:
    keys = [routing_key]
    for name in ("CC", "BCC"):
        extra = headers.get(name)
        if isinstance(extra, list):
            keys.extend(
                k.decode() if isinstance(k, bytes) else k
                for k in extra
                if isinstance(k, str | bytes)
            )
    return tuple(keys)


def binding_matches(
    exchange: Exchange, binding: Binding, keys: tuple[str, ...], headers: dict[str, Any]
) -> bool:
    """Whether ``binding`` of ``exchange`` matches any of ``keys`` / ``headers``."""
    router = ROUTERS[exchange.type]()
    router.bind(binding.routing_key, dict(binding.arguments), _HIT)
    return any(_HIT in router.route(key, headers) for key in keys)


def trace(
    vhost: VHost, exchange: str, routing_key: str, headers: Mapping[str, Any] | None = None
) -> RouteTrace:
    """Follow a message published to ``exchange`` with ``routing_key`` and ``headers``."""
    hdrs = dict(headers or {})
    keys = _keys(routing_key, hdrs)
    start = vhost.exchanges.get(exchange)
    if start is None:
        raise OpsError(
            f"no exchange '{exchange}' in vhost '{vhost.name}' (a publish would fail with 404)"
        )
    notes: list[str] = []
    if start.internal:
        notes.append(
            f"exchange '{exchange}' is internal: clients cannot publish to it (403); "
            "showing where a message arriving from another exchange would go"
        )
    hops: list[Hop] = []
    queues: dict[str, None] = {}
    seen = {start.name}
    work: list[tuple[Exchange, str]] = [(start, "published")]
    while work:
        ex, via = work.pop(0)
        if ex.name == "":
            name = routing_key if routing_key in vhost.queues else None
            found = [k for k in keys if k in vhost.queues]
            for q in found:
                queues[q] = None
            note = "" if found else f"no queue named '{routing_key}'"
            hops.append(Hop("", "direct", via, default_queue=name, note=note))
            continue
        matched = tuple(b for b in ex.bindings if binding_matches(ex, b, keys, hdrs))
        note = ""
        for b in matched:
            if b.destination_type == "queue":
                if b.destination in vhost.queues:
                    queues[b.destination] = None
            elif b.destination not in seen:
                dest = vhost.exchanges.get(b.destination)
                if dest is not None:
                    seen.add(dest.name)
                    work.append((dest, f"binding from '{ex.name}'"))
        if not matched and ex.alternate is not None:
            alternate = vhost.exchanges.get(ex.alternate)
            if alternate is None:
                note = f"no binding matched; alternate exchange '{ex.alternate}' does not exist"
            elif alternate.name in seen:
                note = f"no binding matched; alternate exchange '{ex.alternate}' already visited"
            else:
                note = f"no binding matched: handed to alternate exchange '{ex.alternate}'"
                seen.add(alternate.name)
                work.append((alternate, f"alternate of '{ex.name}'"))
        elif not matched:
            note = "no binding matched"
        hops.append(Hop(ex.name, ex.type, via, matched, len(ex.bindings) - len(matched), note=note))
    if "BCC" in hdrs:
        notes.append("the BCC header is removed before the message is enqueued")
    return RouteTrace(exchange, keys, hdrs, tuple(hops), tuple(sorted(queues)), tuple(notes))


def _binding_text(b: Binding) -> str:
    args = f" {dict(b.arguments)}" if b.arguments else ""
    return f"key '{b.routing_key}'{args} -> {b.destination_type} '{b.destination}'"


def render(t: RouteTrace) -> str:
    keys = ", ".join(f"'{k}'" for k in t.routing_keys)
    lines = [f"publish to exchange '{t.exchange}' with routing key {keys}"]
    if t.headers:
        lines.append(f"  headers: {dict(t.headers)}")
    for hop in t.hops:
        if hop.exchange == "":
            target = f"queue '{hop.default_queue}'" if hop.default_queue else "nothing"
            lines.append(
                f"exchange '' (the default exchange, {hop.via}): routes by queue name -> {target}"
            )
            continue
        lines.append(f"exchange '{hop.exchange}' ({hop.type}, {hop.via}):")
        for b in hop.matched:
            lines.append(f"  matched   {_binding_text(b)}")
        if hop.unmatched:
            lines.append(
                f"  ({hop.unmatched} other binding{'' if hop.unmatched == 1 else 's'} did not match)"
            )
        if hop.note:
            lines.append(f"  {hop.note}")
    for note in t.notes:
        lines.append(f"note: {note}")
    if t.queues:
        n = len(t.queues)
        lines.append(f"=> delivered to {n} queue{'' if n == 1 else 's'}: {', '.join(t.queues)}")
    else:
        lines.append("=> unroutable: dropped (or returned to a mandatory publisher)")
    return "\n".join(lines)
