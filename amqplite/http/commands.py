"""CLI commands over the management HTTP API: listings, publish/get, dead-letter tools.

Layer: CLI (registered by :mod:`amqplite.cli`).  Every command is one or a few HTTP calls
to a running broker's management API (``--api``, default ``http://127.0.0.1:15672``), so
it works the same against a local or remote amqplite.  Human tables by default, ``--json``
for the raw API answer; errors print one line and exit 1.

Commands: ``queues``, ``exchanges``, ``bindings``, ``connections``, ``publish``, ``get``,
``dlq list | show | replay | purge``.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote, urlencode

DEFAULT_API = "http://127.0.0.1:15672"


class CommandError(Exception):
    pass


class Api:
    def __init__(self, base: str, user: str, password: str, timeout: float = 300.0) -> None:
        self.base = base.rstrip("/")
        self.auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        self.timeout = timeout

    def call(self, method: str, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base + path, data=data, method=method)
        request.add_header("Authorization", self.auth)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            try:
                reason = json.loads(exc.read()).get("reason", "")
            except ValueError:
                reason = ""
            raise CommandError(f"{exc.code} {exc.reason}: {reason}".rstrip(": ")) from None
        except (urllib.error.URLError, OSError) as exc:
            raise CommandError(f"cannot reach {self.base}: {getattr(exc, 'reason', exc)}") from None
        return json.loads(raw) if raw else None


def _seg(name: str) -> str:
    return quote(name, safe="")


def _table(rows: Sequence[Sequence[Any]], header: Sequence[str]) -> str:
    cells = [list(map(str, header))] + [
        [("" if c is None else str(c)) for c in row] for row in rows
    ]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells
    )


def _emit(
    args: argparse.Namespace, data: Any, rows: Sequence[Sequence[Any]], header: Sequence[str]
) -> None:
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        print(_table(rows, header))


def _api(args: argparse.Namespace) -> Api:
    return Api(args.api, args.user, args.password)


def _queues(args: argparse.Namespace) -> int:
    data = _api(args).call("GET", f"/api/queues/{_seg(args.vhost)}")
    rows = [
        (q["name"], q["messages_ready"], q["messages_unacknowledged"], q["consumers"]) for q in data
    ]
    _emit(args, data, rows, ("name", "ready", "unacked", "consumers"))
    return 0


def _exchanges(args: argparse.Namespace) -> int:
    data = _api(args).call("GET", f"/api/exchanges/{_seg(args.vhost)}")
    rows = [(x["name"] or "(default)", x["type"], x["durable"], x["internal"]) for x in data]
    _emit(args, data, rows, ("name", "type", "durable", "internal"))
    return 0


def _bindings(args: argparse.Namespace) -> int:
    data = _api(args).call("GET", f"/api/bindings/{_seg(args.vhost)}")
    rows = [
        (b["source"] or "(default)", b["routing_key"], b["destination_type"], b["destination"])
        for b in data
    ]
    _emit(args, data, rows, ("source", "routing_key", "type", "destination"))
    return 0


def _connections(args: argparse.Namespace) -> int:
    data = _api(args).call("GET", "/api/connections")
    rows = [(c["name"], c["user"], c["vhost"], c["channels"]) for c in data]
    _emit(args, data, rows, ("name", "user", "vhost", "channels"))
    return 0


def _publish(args: argparse.Namespace) -> int:
    payload = args.body if args.body is not None else sys.stdin.buffer.read().decode("utf-8")
    headers = dict(_pair(h) for h in args.header)
    props: dict[str, Any] = {"headers": headers} if headers else {}
    if args.persistent:
        props["delivery_mode"] = 2
    body = {
        "routing_key": args.routing_key,
        "payload": payload,
        "payload_encoding": "string",
        "properties": props,
    }
    exchange = args.exchange or "amq.default"
    data = _api(args).call(
        "POST", f"/api/exchanges/{_seg(args.vhost)}/{_seg(exchange)}/publish", body
    )
    if args.json:
        print(json.dumps(data))
    else:
        print("routed" if data["routed"] else "not routed")
    return 0 if data["routed"] else 1


def _get(args: argparse.Namespace) -> int:
    ackmode = "ack_requeue_false" if args.ack else "ack_requeue_true"
    body = {"count": args.count, "ackmode": ackmode, "encoding": "auto"}
    data = _api(args).call("POST", f"/api/queues/{_seg(args.vhost)}/{_seg(args.queue)}/get", body)
    rows = [
        (m["exchange"] or "(default)", m["routing_key"], m["redelivered"], m["payload"])
        for m in data
    ]
    _emit(args, data, rows, ("exchange", "routing_key", "redelivered", "payload"))
    return 0


def _pair(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep:
        raise CommandError(f"expected NAME=VALUE, got {text!r}")
    return name, value


def _filters(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in (
        "reason",
        "origin_queue",
        "origin_exchange",
        "origin_routing_key",
        "since",
        "until",
    ):
        value = getattr(args, key, None)
        if value is not None:
            out[key] = value
    headers = dict(_pair(h) for h in getattr(args, "header", []) or [])
    if headers:
        out["headers"] = headers
    return out


def _query(args: argparse.Namespace, extra: dict[str, Any]) -> str:
    filters = _filters(args)
    pairs = [(k, v) for k, v in filters.items() if k != "headers"]
    pairs += [(f"header.{k}", v) for k, v in filters.get("headers", {}).items()]
    pairs += [(k, v) for k, v in extra.items() if v is not None]
    return urlencode(pairs)


def _dlq_path(args: argparse.Namespace) -> str:
    return f"/api/queues/{_seg(args.vhost)}/{_seg(args.queue)}"


def _dlq_list(args: argparse.Namespace) -> int:
    data = _api(args).call("GET", f"{_dlq_path(args)}/messages/summary?{_query(args, {})}")
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    print(f"{data['total']} dead letter(s)")
    print(_table([(r["reason"], r["count"]) for r in data["by_reason"]], ("reason", "count")))
    print()
    rows = [(r["queue"], r["exchange"] or "(default)", r["count"]) for r in data["by_origin"]]
    print(_table(rows, ("origin queue", "origin exchange", "count")))
    return 0


def _dlq_show(args: argparse.Namespace) -> int:
    query = _query(args, {"limit": args.limit, "offset": args.offset, "truncate": args.truncate})
    data = _api(args).call("GET", f"{_dlq_path(args)}/messages?{query}")
    rows = []
    for m in data:
        death = (m.get("x_death") or [{}])[0]
        keys = ",".join(death.get("routing-keys", []))
        rows.append(
            (
                m["id"],
                death.get("reason"),
                death.get("queue"),
                death.get("exchange"),
                keys,
                m["replayed"],
                m["payload"],
            )
        )
    _emit(args, data, rows, ("id", "reason", "queue", "exchange", "keys", "replayed", "payload"))
    return 0


def _dlq_replay(args: argparse.Namespace) -> int:
    api = _api(args)
    body: dict[str, Any] = _filters(args)
    body["dry_run"] = args.dry_run
    if args.rate is not None:
        body["rate"] = args.rate
    if args.to_exchange is not None:
        body["exchange"] = args.to_exchange
    if args.to_routing_key is not None:
        body["routing_key"] = args.to_routing_key
    # In rounds of --batch so a long replay shows progress; a round that moves nothing ends it
    # (what is left is unroutable or has no origin).  Never more than matched at the start,
    # so messages that die again straight back into this queue are not replayed in a loop.
    summary = api.call("GET", f"{_dlq_path(args)}/messages/summary?{_query(args, {})}")
    remaining = summary["total"] if args.limit is None else min(args.limit, summary["total"])
    totals = {"selected": 0, "replayed": 0, "unroutable": 0, "skipped": 0, "failed": 0}
    last: dict[str, Any] = {}
    while remaining > 0:
        size = min(args.batch, remaining)
        last = api.call("POST", f"{_dlq_path(args)}/replay", {**body, "limit": size})
        totals["replayed"] += last["replayed"]
        totals["selected"] += last["replayed"]
        remaining -= last["replayed"]
        if not args.json:
            print(f"replayed {totals['replayed']} ...", file=sys.stderr)
        if args.dry_run or last["replayed"] == 0 or last["selected"] < size:
            break
    for key in ("unroutable", "skipped", "failed"):
        totals[key] = last.get(key, 0)
    totals["selected"] += totals["unroutable"] + totals["skipped"] + totals["failed"]
    result = {**totals, "dry_run": args.dry_run, "errors": last.get("errors", [])}
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        verb = "would replay" if args.dry_run else "replayed"
        print(
            f"{verb} {totals['replayed']} of {totals['selected']}; kept: {totals['unroutable']} unroutable, "
            f"{totals['skipped']} without origin, {totals['failed']} refused"
        )
        for error in result["errors"][:5]:
            print(f"  message {error['id']}: {error['reason']}")
    return 0 if totals["unroutable"] + totals["failed"] == 0 else 1


def _dlq_purge(args: argparse.Namespace) -> int:
    data = _api(args).call("POST", f"{_dlq_path(args)}/messages/delete", _filters(args))
    print(json.dumps(data) if args.json else f"deleted {data['deleted']}")
    return 0


def _run(func: Any) -> Any:
    def wrapper(args: argparse.Namespace) -> int:
        try:
            code: int = func(args)
        except CommandError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        return code

    return wrapper


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--api",
        default=os.environ.get("AMQPLITE_API", DEFAULT_API),
        help=f"management URL (default {DEFAULT_API})",
    )
    parser.add_argument("--user", default=os.environ.get("AMQPLITE_USER", "guest"))
    parser.add_argument("--password", default=os.environ.get("AMQPLITE_PASSWORD", "guest"))
    parser.add_argument("--vhost", default="/")
    parser.add_argument("--json", action="store_true", help="print the API's JSON")


def _dlq_filters(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("queue", help="the dead-letter queue")
    parser.add_argument("--reason", help="rejected | expired | maxlen | delivery_limit")
    parser.add_argument("--origin-queue", dest="origin_queue")
    parser.add_argument("--origin-exchange", dest="origin_exchange")
    parser.add_argument("--origin-routing-key", dest="origin_routing_key")
    parser.add_argument("--header", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--since", help="epoch seconds or ISO 8601")
    parser.add_argument("--until", help="epoch seconds or ISO 8601")


def register(subparsers: Any) -> None:
    def add(name: str, help_text: str, func: Any) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = subparsers.add_parser(name, help=help_text)
        _common(parser)
        parser.set_defaults(func=_run(func))
        return parser

    add("queues", "list queues (HTTP API)", _queues)
    add("exchanges", "list exchanges (HTTP API)", _exchanges)
    add("bindings", "list bindings (HTTP API)", _bindings)
    add("connections", "list client connections (HTTP API)", _connections)
    publish = add("publish", "publish a message (body from the argument or stdin)", _publish)
    publish.add_argument("exchange", help='exchange ("" for the default exchange)')
    publish.add_argument("routing_key")
    publish.add_argument("body", nargs="?")
    publish.add_argument("--header", action="append", default=[], metavar="NAME=VALUE")
    publish.add_argument("--persistent", action="store_true")
    get = add("get", "fetch messages from a queue (requeued unless --ack)", _get)
    get.add_argument("queue")
    get.add_argument("--count", type=int, default=1)
    get.add_argument("--ack", action="store_true", help="remove the fetched messages")

    dlq: argparse.ArgumentParser = subparsers.add_parser(
        "dlq", help="inspect and replay dead letters"
    )
    sub = dlq.add_subparsers(dest="dlq_command", metavar="ACTION", required=True)

    def add_dlq(name: str, help_text: str, func: Any) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = sub.add_parser(name, help=help_text)
        _common(parser)
        _dlq_filters(parser)
        parser.set_defaults(func=_run(func))
        return parser

    add_dlq("list", "count dead letters by reason and origin", _dlq_list)
    show = add_dlq("show", "show dead letters without consuming them", _dlq_show)
    show.add_argument("--limit", type=int, default=20)
    show.add_argument("--offset", type=int, default=0)
    show.add_argument("--truncate", type=int, default=80, help="body preview bytes")
    replay = add_dlq("replay", "move dead letters back to where they came from", _dlq_replay)
    replay.add_argument("--dry-run", action="store_true")
    replay.add_argument("--limit", type=int, help="replay at most N messages")
    replay.add_argument("--rate", type=float, help="messages per second")
    replay.add_argument(
        "--batch", type=int, default=1000, help="messages per request (progress step)"
    )
    replay.add_argument("--to-exchange", help="replay to this exchange instead of the origin")
    replay.add_argument(
        "--to-routing-key", help="replay with this routing key instead of the origin's"
    )
    add_dlq("purge", "delete the selected dead letters", _dlq_purge)
