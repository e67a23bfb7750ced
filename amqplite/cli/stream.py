"""``amqplite stream info | tail | replay``: stream queues from the command line (CLI layer).

Everything here speaks plain AMQP 0-9-1 through the blocking client (:mod:`amqplite.client`)
and, for ``info``, the management HTTP API, so it works the same against amqplite and
RabbitMQ.  A stream is read with a consumer (prefetch, manual acks, the ``x-stream-offset``
consumer argument) and every delivery says where it is by its ``x-stream-offset`` header.

Where a window of history starts and ends is found by *probing*: a short-lived consumer
attached at a time (``x-stream-offset`` = a timestamp or an interval such as ``"1h"``) gets
the first message stored at or after it, and its offset is the boundary.  A probe that gets
nothing within :data:`PROBE_WAIT` seconds means "nothing that late".  amqplite seeks to the
exact message; RabbitMQ to the start of a chunk, so against RabbitMQ a boundary may move a
little earlier.  ``info`` prefers the HTTP API's offsets and timestamps (amqplite serves them)
and falls back to probes.
"""

from __future__ import annotations

import argparse
import datetime
import json
import re
import sys
import time
from typing import Any

import attrs

from amqplite.cli.errors import CommandError
from amqplite.cli.messaging import delivery_json
from amqplite.cli.support import (
    add_api,
    add_command,
    add_url,
    amqp_url,
    api_client,
    guarded,
    print_json,
)
from amqplite.client import ApiError, Channel, ClientError, Connection, Delivery, connect
from amqplite.client.http import quote
from amqplite.message import BasicProperties, Long

#: Seconds a probe consumer waits for its first delivery before deciding there is none.
PROBE_WAIT = 1.0
#: Prefetch of the reading consumer (streams refuse a consumer without one).
DEFAULT_PREFETCH = 1000
# RabbitMQ's interval syntax for x-max-age and x-stream-offset: digits and one unit.
_INTERVAL = re.compile(r"^(\d+)([YMDhms])$")
_UNIT_SECONDS = {"Y": 365 * 86400, "M": 30 * 86400, "D": 86400, "h": 3600, "m": 60, "s": 1}
OffsetArg = str | Long | datetime.datetime | float


def register(sub: Any) -> None:
    stream = add_command(
        sub,
        "stream",
        help="stream queues: info, tail, replay",
        description="Read stream queues (x-queue-type: stream) over AMQP 0-9-1.",
    )
    verbs = stream.add_subparsers(dest="stream_command", metavar="VERB", required=True)
    _register_info(verbs)
    _register_tail(verbs)
    _register_replay(verbs)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("queue", metavar="QUEUE", help="the stream queue")
    add_url(parser)
    parser.add_argument("--vhost", metavar="V", help="vhost (default: the URL's)")


_FROM_HELP = (
    "where to start: first, last, next, an offset N, an interval back from now "
    "(30s, 15m, 2h, 7D, 1M, 1Y) or an ISO 8601 time (UTC unless it has an offset)"
)


def _register_info(verbs: Any) -> None:
    p = add_command(
        verbs,
        "info",
        help="first/last offset and timestamp, messages, segments, bytes",
        description="Show a stream's extent.  Offsets and timestamps come from the HTTP API "
        "when it serves them (amqplite), else from short AMQP probes (RabbitMQ).",
    )
    _common(p)
    add_api(p)
    p.add_argument("--no-api", action="store_true", help="AMQP only, skip the HTTP API")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=guarded(_cmd_info))


def _register_tail(verbs: Any) -> None:
    p = add_command(
        verbs,
        "tail",
        help="follow a stream from any offset or time, like tail -f",
        description="Print messages from --from on, then keep following new ones "
        "(until --count messages, --timeout seconds of silence, or ^C).",
    )
    _common(p)
    p.add_argument("--from", dest="start", default="next", metavar="WHERE", help=_FROM_HELP)
    p.add_argument("--count", type=int, metavar="N", help="stop after N messages")
    p.add_argument(
        "--timeout", type=float, metavar="SECONDS", help="stop when nothing arrives for this long"
    )
    p.add_argument("--prefetch", type=int, default=DEFAULT_PREFETCH, help="consumer prefetch")
    p.add_argument("--json", action="store_true", help="one JSON object per message")
    p.set_defaults(func=guarded(_cmd_tail))


def _register_replay(verbs: Any) -> None:
    p = add_command(
        verbs,
        "replay",
        help="republish a window of a stream's history into an exchange",
        description="Republish every message from --from up to (not including) --to into "
        "--to-exchange, with publisher confirms, keeping routing keys, properties and headers "
        "(except x-stream-offset).  Without --to: up to the end of the stream as it was when "
        "the command started.  Progress goes to stderr.",
    )
    _common(p)
    p.add_argument("--from", dest="start", required=True, metavar="WHERE", help=_FROM_HELP)
    p.add_argument(
        "--to", dest="end", metavar="WHEN", help="stop before this offset, interval or time"
    )
    p.add_argument("--to-exchange", required=True, metavar="X", help="'' = default exchange")
    p.add_argument("--routing-key", metavar="K", help="publish with this key instead")
    p.add_argument("--dry-run", action="store_true", help="count the window, publish nothing")
    p.add_argument("--prefetch", type=int, default=DEFAULT_PREFETCH, help="consumer prefetch")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=guarded(_cmd_replay))


# -- where: offsets, intervals, times --------------------------------------------------------


def interval_seconds(text: str) -> int | None:
    """``"2h"`` → 7200 (RabbitMQ's units: Y M D h m s); None if ``text`` is not an interval."""
    m = _INTERVAL.match(text)
    return None if m is None else int(m.group(1)) * _UNIT_SECONDS[m.group(2)]


def parse_where(text: str, *, exact_time: bool = False) -> OffsetArg:
    """A ``--from``/``--to`` value as the ``x-stream-offset`` consumer argument.

    ``first``/``last``/``next`` and intervals pass through (the broker resolves an interval
    against its own clock); an offset becomes a ``long``; an ISO time becomes an AMQP
    timestamp (whole seconds, what RabbitMQ accepts) or, with ``exact_time`` (amqplite),
    float seconds with millisecond precision.
    """
    text = text.strip()
    if text in ("first", "last", "next"):
        return text
    if text.isdigit():
        return Long(int(text))
    if interval_seconds(text) is not None:
        return text
    try:
        moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise CommandError(
            f"cannot read {text!r} as a stream position: use first, last, next, an offset, "
            "an interval such as 2h or 7D, or an ISO 8601 time"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    if exact_time:
        return round(moment.timestamp(), 3)
    return moment.astimezone(datetime.UTC).replace(microsecond=0)


def speaks_exact_time(conn: Connection) -> bool:
    """amqplite seeks to the millisecond (float seconds); RabbitMQ takes whole seconds."""
    return conn.server_properties.get("product") == "amqplite"


def offset_of(d: Delivery) -> int:
    value = (d.properties.headers or {}).get("x-stream-offset")
    if not isinstance(value, int):
        raise CommandError(
            "a delivery without an x-stream-offset header: is this queue a stream? "
            "(x-queue-type: stream)"
        )
    return int(value)


# -- reading -----------------------------------------------------------------------------------


def open_reader(conn: Connection, queue: str, start: OffsetArg, prefetch: int) -> Channel:
    """A channel with one consumer on ``queue`` attached at ``start``."""
    if not 1 <= prefetch <= 65535:
        raise CommandError(f"--prefetch must be 1..65535, got {prefetch}")
    ch = conn.channel()
    ch.queue_declare(queue, passive=True)  # 404 with the broker's own text if it is missing
    ch.basic_qos(prefetch)
    ch.basic_consume(queue, arguments={"x-stream-offset": start})
    return ch


def probe(conn: Connection, queue: str, start: OffsetArg) -> int | None:
    """The offset of the first message a consumer at ``start`` gets, or None (none yet)."""
    with open_reader(conn, queue, start, 1) as ch:
        d = ch.next_delivery(PROBE_WAIT)
        return None if d is None else offset_of(d)


def probe_last(conn: Connection, queue: str) -> int | None:
    """The stream's last offset now: read the last chunk until it goes quiet."""
    last: int | None = None
    with open_reader(conn, queue, "last", DEFAULT_PREFETCH) as ch:
        deadline = time.monotonic() + 10 * PROBE_WAIT
        while time.monotonic() < deadline:
            d = ch.next_delivery(PROBE_WAIT if last is None else 0.2)
            if d is None:
                break
            last = offset_of(d)
            ch.basic_ack(d.delivery_tag)
    return last


class Acker:
    """Acks a consumer's deliveries in batches (a stream ack only returns prefetch credit)."""

    def __init__(self, ch: Channel, prefetch: int) -> None:
        self.ch = ch
        self.every = max(1, prefetch // 2)
        self.pending = 0
        self.last_tag = 0

    def add(self, d: Delivery) -> None:
        self.last_tag = d.delivery_tag
        self.pending += 1
        if self.pending >= self.every:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            self.ch.basic_ack(self.last_tag, multiple=True)
            self.pending = 0


# -- info --------------------------------------------------------------------------------------

_INFO_FIELDS = (
    "first_offset",
    "last_offset",
    "first_timestamp",
    "last_timestamp",
    "messages",
    "segments",
    "bytes",
    "consumers",
)


def _from_api(args: argparse.Namespace, vhost: str) -> dict[str, Any] | None:
    if args.no_api:
        return None
    api = api_client(args)
    try:
        item = api.get(f"/api/queues/{quote(vhost)}/{quote(args.queue)}")
    except ApiError as exc:
        if exc.status == 404:
            raise
        print(f"amqplite: warning: {exc}; using AMQP only", file=sys.stderr)
        return None
    return item if isinstance(item, dict) else None


def _cmd_info(args: argparse.Namespace) -> int:
    url = amqp_url(args, args.vhost)
    item = _from_api(args, url.vhost)
    if item is not None and item.get("type") not in (None, "stream"):
        raise CommandError(f"queue '{args.queue}' is a {item.get('type')} queue, not a stream")
    info: dict[str, Any] = {"name": args.queue, "vhost": url.vhost}
    for name in _INFO_FIELDS:
        info[name] = (item or {}).get(name)
    info["arguments"] = (item or {}).get("arguments")
    if info["first_offset"] is None:
        # No offsets from the API (RabbitMQ, or --no-api): probe, and count from the offsets
        # (RabbitMQ's own message count lags behind by up to its stats interval).
        with connect(url) as conn:
            ok = conn.channel().queue_declare(args.queue, passive=True)
            info["consumers"] = ok.consumer_count if item is None else info["consumers"]
            first = info["first_offset"] = probe(conn, args.queue, "first")
            last = info["last_offset"] = probe_last(conn, args.queue)
            info["messages"] = 0 if first is None or last is None else last - first + 1
    if args.json:
        print_json(info)
        return 0
    for key, value in info.items():
        shown = "-" if value is None else value
        if key.endswith("_timestamp") and isinstance(value, int | float):
            moment = datetime.datetime.fromtimestamp(value, datetime.UTC)
            shown = moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        elif isinstance(value, dict):
            shown = json.dumps(value, default=str)
        print(f"{key + ':':<17}{shown}")
    return 0


# -- tail --------------------------------------------------------------------------------------


def render_line(d: Delivery) -> str:
    """One line per message: offset, routing key, body (escaped if not UTF-8 text)."""
    try:
        body = d.body.decode("utf-8")
    except UnicodeDecodeError:
        body = repr(d.body)
    body = body.replace("\n", "\\n")
    return f"{offset_of(d)}\t{d.routing_key}\t{body}"


def _cmd_tail(args: argparse.Namespace) -> int:
    if args.count is not None and args.count < 1:
        raise CommandError("--count must be at least 1")
    url = amqp_url(args, args.vhost)
    seen = 0
    with connect(url) as conn:
        start = parse_where(args.start, exact_time=speaks_exact_time(conn))
        ch = open_reader(conn, args.queue, start, args.prefetch)
        acker = Acker(ch, args.prefetch)
        try:
            while args.count is None or seen < args.count:
                d = ch.next_delivery(args.timeout)
                if d is None:
                    break
                seen += 1
                if args.json:
                    out = delivery_json(d)
                    out["offset"] = offset_of(d)
                    print(json.dumps(out, default=str), flush=True)
                else:
                    print(render_line(d), flush=True)
                acker.add(d)
        except KeyboardInterrupt:
            pass
    print(f"amqplite: {seen} message(s)", file=sys.stderr)
    return 0


# -- replay ------------------------------------------------------------------------------------


@attrs.frozen
class Window:
    """Offsets ``first <= o < end`` of a stream, as found when the replay started."""

    first: int | None
    end: int

    @property
    def size(self) -> int:
        return 0 if self.first is None else max(0, self.end - self.first)


def find_window(conn: Connection, queue: str, start: OffsetArg, stop: OffsetArg | None) -> Window:
    """Resolve ``--from``/``--to`` to offsets by probing (see the module docstring)."""
    last = probe_last(conn, queue)
    if last is None:
        return Window(None, 0)
    end = last + 1
    if stop is not None:
        at = probe(conn, queue, stop)
        end = min(end, at) if at is not None else end
    first = probe(conn, queue, start)
    if first is None or first >= end:
        return Window(None, end)
    return Window(first, end)


def republished(d: Delivery) -> BasicProperties:
    """The delivery's properties minus ``x-stream-offset`` (the target assigns its own)."""
    headers = {k: v for k, v in (d.properties.headers or {}).items() if k != "x-stream-offset"}
    return attrs.evolve(d.properties, headers=headers or None)


def _cmd_replay(args: argparse.Namespace) -> int:
    url = amqp_url(args, args.vhost)
    with connect(url) as conn:
        exact = speaks_exact_time(conn)
        start = parse_where(args.start, exact_time=exact)
        stop = None if args.end is None else parse_where(args.end, exact_time=exact)
        if args.to_exchange:
            with conn.channel() as check:  # 404 before reading anything
                check.exchange_declare(args.to_exchange, passive=True)
        window = find_window(conn, args.queue, start, stop)
        summary: dict[str, Any] = {
            "queue": args.queue,
            "first_offset": window.first,
            "end_offset": window.end,
            "messages": window.size,
            "exchange": args.to_exchange,
            "dry_run": args.dry_run,
        }
        if window.first is not None and not args.dry_run:
            summary["republished"] = _copy(conn, args, window)
    _report(args, summary)
    return 0


def _copy(conn: Connection, args: argparse.Namespace, window: Window) -> int:
    """Read the window and republish it with confirms; returns how many went out."""
    assert window.first is not None
    reader = open_reader(conn, args.queue, Long(window.first), args.prefetch)
    acker = Acker(reader, args.prefetch)
    unroutable = 0
    with conn.channel() as out:
        out.confirm_select()
        done = 0
        batch = 0
        while True:
            d = reader.next_delivery(10 * PROBE_WAIT)
            if d is None:
                raise CommandError(f"the stream stopped delivering after {done} message(s)")
            offset = offset_of(d)
            if offset >= window.end:
                break
            key = d.routing_key if args.routing_key is None else args.routing_key
            out.publish(args.to_exchange, key, d.body, republished(d), mandatory=True)
            done += 1
            batch += 1
            acker.add(d)
            if batch >= args.prefetch // 2 or offset == window.end - 1:
                unroutable += _confirm(out, done)
                batch = 0
                if not args.quiet:
                    print(f"amqplite: replayed {done}/{window.size}", file=sys.stderr, flush=True)
            if offset == window.end - 1:
                break
        unroutable += _confirm(out, done)
    acker.flush()
    reader.close()
    if unroutable:
        print(
            f"amqplite: warning: {unroutable} message(s) matched no binding of "
            f"'{args.to_exchange}' and were dropped",
            file=sys.stderr,
        )
    return done


def _confirm(ch: Channel, done: int) -> int:
    """Wait for the confirms so far; returns how many messages came back unroutable."""
    try:
        report = ch.wait_for_confirms(timeout=60)
    except ClientError as exc:
        raise CommandError(f"after {done} message(s): {exc}") from None
    if report.nacked:
        raise CommandError(f"the broker refused {len(report.nacked)} message(s) (nack) of {done}")
    return len(report.returned)


def _report(args: argparse.Namespace, summary: dict[str, Any]) -> None:
    if args.json:
        print_json(summary)
        return
    where = f"exchange '{args.to_exchange}'"
    if summary["first_offset"] is None:
        print(f"nothing to replay: no message in '{args.queue}' from {args.start!r}")
    elif args.dry_run:
        print(
            f"would republish {summary['messages']} message(s), offsets "
            f"{summary['first_offset']}..{summary['end_offset'] - 1}, to {where}"
        )
    else:
        print(
            f"republished {summary['republished']} message(s), offsets "
            f"{summary['first_offset']}..{summary['end_offset'] - 1}, to {where}"
        )
