"""``amqplite publish | consume | get``: messages over AMQP, printed for people or as JSON lines.

CLI layer over :mod:`amqplite.client`.  ``publish`` uses publisher confirms and the
mandatory flag, so it can say whether the broker routed the message (exit 1 if not).
``get`` and ``consume`` default to putting messages back (``--requeue``), like
RabbitMQ's management UI: looking must not lose anything unless ``--ack`` says so.
With ``--requeue`` a consumer holds every message until it has seen ``--count`` of them
and then rejects them all with requeue, so it never sees the same message twice.
"""

from __future__ import annotations

import argparse
import base64
import datetime
import json
import sys
from typing import Any

import attrs

from amqplite.cli.errors import CommandError
from amqplite.cli.support import add_command, add_url, amqp_url, guarded, key_values, typed
from amqplite.client import Delivery, connect
from amqplite.message import BasicProperties

_PROPERTY_NAMES = tuple(a.name for a in attrs.fields(BasicProperties) if a.name != "headers")
_INT_PROPERTIES = ("delivery_mode", "priority", "timestamp")


def register(sub: Any) -> None:
    publish = add_command(
        sub,
        "publish",
        help="publish one message (body from the argument or stdin)",
        description="Publish a message with publisher confirms; exit 1 if it was not routed.",
    )
    publish.add_argument("exchange", metavar="EXCHANGE", help="'' for the default exchange")
    publish.add_argument("routing_key", metavar="ROUTING_KEY")
    publish.add_argument("body", metavar="BODY", nargs="?", default="-", help="'-' = stdin")
    publish.add_argument("--header", action="append", metavar="K=V", help="a header (repeat)")
    publish.add_argument(
        "--property",
        action="append",
        metavar="K=V",
        help=f"a property: {', '.join(_PROPERTY_NAMES)}",
    )
    publish.add_argument("--persistent", action="store_true", help="delivery_mode=2")
    _vhost_url(publish)
    publish.add_argument("--json", action="store_true", help="machine-readable output")
    publish.set_defaults(func=guarded(_cmd_publish))

    for name, text in (
        ("get", "fetch messages with basic.get (requeued unless --ack)"),
        ("consume", "consume messages and print them (requeued unless --ack)"),
    ):
        p = add_command(sub, name, help=text, description=text)
        p.add_argument("queue", metavar="QUEUE")
        p.add_argument(
            "--count",
            type=int,
            default=1 if name == "get" else None,
            metavar="N",
            help="how many messages (get: default 1; consume: default until --timeout or ^C)",
        )
        mode = p.add_mutually_exclusive_group()
        mode.add_argument("--ack", action="store_true", help="acknowledge: remove them")
        mode.add_argument("--requeue", action="store_true", help="put them back (the default)")
        if name == "consume":
            p.add_argument(
                "--timeout",
                type=float,
                metavar="SECONDS",
                help="stop when no message arrives for this long",
            )
        _vhost_url(p)
        p.add_argument("--json", action="store_true", help="one JSON object per message")
        p.set_defaults(func=guarded(_cmd_get if name == "get" else _cmd_consume))


def _vhost_url(parser: argparse.ArgumentParser) -> None:
    add_url(parser)
    parser.add_argument("--vhost", metavar="V", help="vhost (default: the URL's)")


def _read_body(arg: str) -> bytes:
    if arg != "-":
        return arg.encode("utf-8")
    return sys.stdin.buffer.read()


def properties_from(args: argparse.Namespace) -> BasicProperties:
    values: dict[str, Any] = {}
    for pair in args.property or ():
        key, sep, value = pair.partition("=")
        key = key.replace("-", "_")
        if not sep or key not in _PROPERTY_NAMES:
            raise CommandError(
                f"--property must be K=V with K one of {', '.join(_PROPERTY_NAMES)}; got {pair!r}"
            )
        if key in _INT_PROPERTIES:
            try:
                values[key] = int(value)
            except ValueError:
                raise CommandError(f"--property {key} must be an integer, got {value!r}") from None
        else:
            values[key] = value
    if args.persistent:
        values["delivery_mode"] = 2
    headers = key_values(args.header, "--header")
    return BasicProperties(headers=headers or None, **values)


def _cmd_publish(args: argparse.Namespace) -> int:
    props = properties_from(args)
    body = _read_body(args.body)
    url = amqp_url(args, args.vhost)
    with connect(url) as conn, conn.channel() as ch:
        ch.confirm_select()
        ch.publish(args.exchange, args.routing_key, body, props, mandatory=True)
        report = ch.wait_for_confirms(timeout=30)
    routed = report.ok
    if args.json:
        print(json.dumps({"routed": routed, "bytes": len(body)}))
    where = f"exchange '{args.exchange}' with routing key '{args.routing_key}'"
    if report.nacked:
        raise CommandError(f"the broker refused the message (nack) at {where}")
    if report.returned:
        r = report.returned[0]
        raise CommandError(f"message not routed: {r.reply_code} {r.reply_text} ({where})")
    if not args.json:
        print(f"published {len(body)} bytes to {where}: routed")
    return 0


def delivery_json(d: Delivery) -> dict[str, Any]:
    props = {
        k: v
        for k, v in attrs.asdict(d.properties, recurse=False).items()
        if v is not None and k != "headers"
    }
    out: dict[str, Any] = {
        "exchange": d.exchange,
        "routing_key": d.routing_key,
        "redelivered": d.redelivered,
        "delivery_tag": d.delivery_tag,
        "properties": props,
        "headers": _jsonable(d.properties.headers or {}),
    }
    try:
        out["payload"] = d.body.decode("utf-8")
        out["payload_encoding"] = "string"
    except UnicodeDecodeError:
        out["payload"] = base64.b64encode(d.body).decode()
        out["payload_encoding"] = "base64"
    out["payload_bytes"] = len(d.body)
    if d.message_count is not None:
        out["message_count"] = d.message_count
    return out


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def render_delivery(n: int, d: Delivery) -> str:
    data = delivery_json(d)
    lines = [
        f"--- message {n}: exchange '{d.exchange}', routing key '{d.routing_key}'"
        + (", redelivered" if d.redelivered else "")
    ]
    if data["properties"]:
        lines.append("properties: " + " ".join(f"{k}={v}" for k, v in data["properties"].items()))
    if data["headers"]:
        lines.append("headers: " + json.dumps(data["headers"], default=str))
    kind = "" if data["payload_encoding"] == "string" else ", base64"
    lines.append(f"body ({len(d.body)} bytes{kind}):")
    lines.append(data["payload"])
    return "\n".join(lines)


def _emit(n: int, d: Delivery, as_json: bool) -> None:
    if as_json:
        print(json.dumps(delivery_json(d), default=str), flush=True)
    else:
        print(render_delivery(n, d), flush=True)


def _cmd_get(args: argparse.Namespace) -> int:
    if args.count < 1:
        raise CommandError("--count must be at least 1")
    url = amqp_url(args, args.vhost)
    got: list[Delivery] = []
    with connect(url) as conn, conn.channel() as ch:
        ch.queue_declare(args.queue, passive=True)
        for _ in range(args.count):
            d = ch.basic_get(args.queue)
            if d is None:
                break
            got.append(d)
            _emit(len(got), d, args.json)
        _settle(ch, got, args.ack)
    if not got:
        print(f"amqplite: queue '{args.queue}' is empty", file=sys.stderr)
    return 0


def _settle(ch: Any, got: list[Delivery], ack: bool) -> None:
    if not got:
        return
    last = max(d.delivery_tag for d in got)
    if ack:
        ch.basic_ack(last, multiple=True)
    else:
        ch.basic_nack(last, multiple=True, requeue=True)


def _cmd_consume(args: argparse.Namespace) -> int:
    if args.count is not None and args.count < 1:
        raise CommandError("--count must be at least 1")
    url = amqp_url(args, args.vhost)
    got: list[Delivery] = []
    with connect(url) as conn, conn.channel() as ch:
        ch.queue_declare(args.queue, passive=True)
        if args.count is not None:
            ch.basic_qos(min(args.count, 65535))
        ch.basic_consume(args.queue)
        try:
            while args.count is None or len(got) < args.count:
                d = ch.next_delivery(args.timeout)
                if d is None:
                    break
                got.append(d)
                _emit(len(got), d, args.json)
                if args.ack:
                    ch.basic_ack(d.delivery_tag)
        except KeyboardInterrupt:
            pass
        if not args.ack:
            _settle(ch, got, False)
    print(f"amqplite: {len(got)} message(s) {'acked' if args.ack else 'requeued'}", file=sys.stderr)
    return 0


__all__ = ["delivery_json", "properties_from", "register", "render_delivery", "typed"]
