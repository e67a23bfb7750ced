"""Explain where a message would go: matched bindings, exchange-to-exchange hops, alternates.

CLI layer (``amqplite route``): parsing and rendering only.  The topology is loaded into an
in-memory broker (from a YAML file or a running broker's ``/api/definitions``) and the
message is routed by that broker's own router, which records its walk
(:mod:`amqplite.broker.routing`): the hops, the bindings that matched, the alternate
exchanges taken.  This module turns that record into text or JSON, so the explanation
cannot drift from the routing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from amqplite.broker import Binding, VHost
from amqplite.broker.routing import Hop, RouteTrace
from amqplite.broker.routing import trace as broker_trace
from amqplite.cli.errors import CommandError


def trace(
    vhost: VHost, exchange: str, routing_key: str, headers: Mapping[str, Any] | None = None
) -> RouteTrace:
    """The broker's recorded walk for a message published to ``exchange``."""
    start = vhost.exchanges.get(exchange)
    if start is None:
        raise CommandError(
            f"no exchange '{exchange}' in vhost '{vhost.name}' (a publish would fail with 404)"
        )
    return broker_trace(vhost, start, routing_key, headers)


def hop_note(hop: Hop, routing_key: str) -> str:
    """What happened at ``hop`` when nothing matched, in words ("" when something did)."""
    if hop.exchange == "":
        return "" if hop.queues else f"no queue named '{routing_key}'"
    if hop.matched:
        return ""
    outcome = hop.alternate_outcome
    if outcome == "taken":
        return f"no binding matched: handed to alternate exchange '{hop.alternate}'"
    if outcome == "missing":
        return f"no binding matched; alternate exchange '{hop.alternate}' does not exist"
    if outcome == "visited":
        return f"no binding matched; alternate exchange '{hop.alternate}' already visited"
    return "no binding matched"


def notes(t: RouteTrace) -> list[str]:
    out: list[str] = []
    if t.internal:
        out.append(
            f"exchange '{t.exchange}' is internal: clients cannot publish to it (403); "
            "showing where a message arriving from another exchange would go"
        )
    if "BCC" in t.headers:
        out.append("the BCC header is removed before the message is enqueued")
    return out


def trace_json(t: RouteTrace) -> dict[str, Any]:
    return {
        "exchange": t.exchange,
        "routing_keys": list(t.routing_keys),
        "headers": dict(t.headers),
        "routed": t.routed,
        "queues": list(t.queues),
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
                "note": hop_note(h, t.routing_keys[0]),
            }
            for h in t.hops
        ],
        "notes": notes(t),
    }


def _binding_text(b: Binding) -> str:
    args = f" {dict(b.arguments)}" if b.arguments else ""
    return f"key '{b.routing_key}'{args} -> {b.destination_type} '{b.destination}'"


def render(t: RouteTrace) -> str:
    keys = ", ".join(f"'{k}'" for k in t.routing_keys)
    lines = [f"publish to exchange '{t.exchange}' with routing key {keys}"]
    if t.headers:
        lines.append(f"  headers: {dict(t.headers)}")
    routing_key = t.routing_keys[0]
    for hop in t.hops:
        if hop.exchange == "":
            target = f"queue '{routing_key}'" if routing_key in hop.queues else "nothing"
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
        note = hop_note(hop, routing_key)
        if note:
            lines.append(f"  {note}")
    for note in notes(t):
        lines.append(f"note: {note}")
    if t.queues:
        n = len(t.queues)
        lines.append(f"=> delivered to {n} queue{'' if n == 1 else 's'}: {', '.join(t.queues)}")
    else:
        lines.append("=> unroutable: dropped (or returned to a mandatory publisher)")
    return "\n".join(lines)
