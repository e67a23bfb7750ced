"""``amqplite queues | exchanges | bindings | connections | route``: what a broker holds.

CLI layer.  The listings show what a running broker holds, through its management HTTP
API (amqplite's or RabbitMQ's), as a table or ``--json``; ``route`` explains where a
message would go (the rendering is in :mod:`amqplite.cli.route`).
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from amqplite.broker import Broker
from amqplite.broker.definitions import Definitions, PlanItem, plan, rabbit_json
from amqplite.broker.definitions import apply as apply_definitions
from amqplite.cli.errors import CommandError
from amqplite.cli.remote import fetch_definitions
from amqplite.cli.route import render, trace, trace_json
from amqplite.cli.support import (
    add_api,
    add_command,
    api_client,
    guarded,
    key_values,
    print_json,
    table,
    warn,
)
from amqplite.client.http import quote
from amqplite.topology import apply, load_config


def register(sub: Any) -> None:
    for name, text in (
        ("queues", "list queues with message and consumer counts"),
        ("exchanges", "list exchanges"),
        ("bindings", "list bindings"),
        ("connections", "list client connections"),
    ):
        p = add_command(sub, name, help=text, description=f"{text} (via the HTTP API)")
        add_api(p)
        if name != "connections":
            p.add_argument("--vhost", metavar="V", help="only this vhost")
        p.add_argument("--json", action="store_true", help="the API's JSON, unchanged")
        p.set_defaults(func=guarded(_lister(name)))

    route = add_command(
        sub,
        "route",
        help="explain where a message would go, without publishing it",
        description="Trace a message through the topology: matched bindings, "
        "exchange-to-exchange hops, alternate exchanges.  The topology comes from a running "
        "broker's /api/definitions (--api, the default) or from a YAML file (--config).",
    )
    route.add_argument("exchange", metavar="EXCHANGE", help="'' for the default exchange")
    route.add_argument("routing_key", metavar="ROUTING_KEY")
    route.add_argument("--header", action="append", metavar="K=V", help="a header (repeat)")
    route.add_argument("--vhost", default=None, metavar="V", help="vhost (default /)")
    source = route.add_mutually_exclusive_group()
    source.add_argument("--config", metavar="FILE", help="read the topology from this YAML file")
    source.add_argument("--api", metavar="URL", help="read it from this management API")
    route.add_argument("--json", action="store_true", help="machine-readable output")
    route.set_defaults(func=guarded(_cmd_route))


# -- listings -----------------------------------------------------------------------------


def _flags(item: dict[str, Any]) -> str:
    out = []
    if item.get("durable"):
        out.append("D")
    if item.get("auto_delete"):
        out.append("AD")
    if item.get("exclusive"):
        out.append("Excl")
    if item.get("internal"):
        out.append("I")
    return " ".join(out)


def _rate(item: dict[str, Any], name: str) -> float | None:
    stats = item.get("message_stats") or {}
    details = stats.get(f"{name}_details") if isinstance(stats, dict) else None
    rate = details.get("rate") if isinstance(details, dict) else None
    return float(rate) if isinstance(rate, int | float) else None


def _rows(kind: str, items: list[dict[str, Any]]) -> tuple[list[tuple[Any, ...]], tuple[str, ...]]:
    if kind == "queues":
        return [
            (
                q.get("vhost"),
                q.get("name"),
                q.get("type", "classic"),
                _flags(q),
                q.get("messages", 0),
                q.get("messages_ready", 0),
                q.get("messages_unacknowledged", 0),
                q.get("consumers", 0),
                _rate(q, "publish"),
                _rate(q, "deliver_get"),
                q.get("arguments") or {},
            )
            for q in items
        ], (
            "VHOST",
            "NAME",
            "TYPE",
            "FLAGS",
            "MESSAGES",
            "READY",
            "UNACKED",
            "CONSUMERS",
            "IN/S",
            "OUT/S",
            "ARGUMENTS",
        )
    if kind == "exchanges":
        return [
            (
                x.get("vhost"),
                x.get("name") or "(default)",
                x.get("type"),
                _flags(x),
                _rate(x, "publish_in"),
                x.get("arguments") or {},
            )
            for x in items
        ], ("VHOST", "NAME", "TYPE", "FLAGS", "IN/S", "ARGUMENTS")
    if kind == "bindings":
        return [
            (
                b.get("vhost"),
                b.get("source") or "(default)",
                b.get("destination_type"),
                b.get("destination"),
                b.get("routing_key"),
                b.get("arguments") or {},
            )
            for b in items
        ], ("VHOST", "SOURCE", "KIND", "DESTINATION", "ROUTING KEY", "ARGUMENTS")
    return [
        (
            c.get("name"),
            c.get("user"),
            c.get("vhost"),
            c.get("channels", 0),
            c.get("state", ""),
            ((c.get("client_properties") or {}).get("product") or ""),
        )
        for c in items
    ], ("NAME", "USER", "VHOST", "CHANNELS", "STATE", "CLIENT")


def _lister(kind: str) -> Any:
    def run(args: argparse.Namespace) -> int:
        api = api_client(args)
        vhost = getattr(args, "vhost", None)
        path = f"/api/{kind}" + (f"/{quote(vhost)}" if vhost else "")
        items = api.get(path)
        if isinstance(items, dict) and "items" in items:  # a paginated reply
            items = items["items"]
        if not isinstance(items, list):
            raise CommandError(f"unexpected reply from {path}")
        if args.json:
            print_json(items)
            return 0
        rows, headers = _rows(kind, items)
        print(table(rows, headers))
        return 0

    return run


# -- route --------------------------------------------------------------------------------


def _load_broker(args: argparse.Namespace) -> tuple[Broker, str]:
    if args.config:
        config = load_config(args.config)
        broker = Broker(clock=time.time)
        apply(config, broker)
        return broker, config.server.default_vhost
    # Routing needs a broker to walk: build one in memory from the definitions.
    defs, _ = rabbit_json.decode(fetch_definitions(api_client(args)))
    broker = Broker(clock=time.time)

    def skipped(item: PlanItem, exc: Exception) -> None:
        warn(f"not in the routing copy: {item.kind} {item.name}: {exc}")

    apply_definitions(broker, plan(Definitions(), defs), on_refused=skipped)
    return broker, "/"


def _cmd_route(args: argparse.Namespace) -> int:
    broker, default_vhost = _load_broker(args)
    name = args.vhost or default_vhost
    vhost = broker.vhosts.get(name)
    if vhost is None:
        raise CommandError(f"no vhost '{name}'")
    headers = key_values(args.header, "--header")
    t = trace(vhost, args.exchange, args.routing_key, headers)
    if args.json:
        print_json(trace_json(t))
    else:
        print(render(t))
    return 0
