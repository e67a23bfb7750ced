"""``amqplite dlq list | show | replay | purge``: dead letters through the HTTP API.

CLI layer, thin over amqplite's dead-letter endpoints (the broker's ``broker/replay.py``
behind ``http/deadletters.py``); it parses arguments and renders replies, nothing more:
``GET /api/queues/{vhost}/{q}/messages`` (browse without consuming) and ``.../summary``,
``POST .../replay`` and ``POST .../messages/delete``.  The same filters everywhere:
``--reason --origin-queue --origin-exchange --routing-key --header k=v --since --until``.

A replay is one request: the broker runs it in batches (``REPLAY_CHUNK`` messages each)
and streams one progress line per batch, shown on stderr for large replays.  By default
each message goes back to the queue it died in (``--to-queue`` semantics);
``--to-exchange`` republishes through an exchange instead, as an explicit choice.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import urllib.parse
from typing import Any

from amqplite.cli.errors import CommandError
from amqplite.cli.support import add_api, add_command, api_client, guarded, print_json, table, typed
from amqplite.client.http import ApiClient, quote

REPLAY_CHUNK = 500
_FILTERS = ("reason", "origin_queue", "origin_exchange", "routing_key", "since", "until")


def register(sub: Any) -> None:
    dlq = add_command(
        sub,
        "dlq",
        help="inspect, replay and purge dead letters",
        description="Browse a dead-letter queue without consuming it, replay dead letters to "
        "where they came from, or delete them, selected by filters.",
    )
    actions = dlq.add_subparsers(dest="dlq_command", metavar="ACTION")
    dlq.set_defaults(func=lambda _args: _help(dlq))

    ls = actions.add_parser("list", help="one line per dead letter, and counts by reason")
    _common(ls)
    ls.add_argument("--limit", type=int, default=100, metavar="N", help="at most N (default 100)")
    ls.set_defaults(func=guarded(_cmd_list))

    show = actions.add_parser("show", help="dead letters in full: headers, x-death, body")
    _common(show)
    show.add_argument("--limit", type=int, default=10, metavar="N", help="at most N (default 10)")
    show.add_argument("--id", action="append", metavar="ID", help="only this message id (repeat)")
    show.set_defaults(func=guarded(_cmd_show))

    replay = actions.add_parser(
        "replay", help="send dead letters back to the queue they died in (or elsewhere)"
    )
    _common(replay)
    replay.add_argument("--limit", type=int, metavar="N", help="replay at most N")
    replay.add_argument("--rate", type=float, metavar="N", help="at most N messages per second")
    replay.add_argument(
        "--dry-run", action="store_true", help="show what would happen and which queues it reaches"
    )
    to = replay.add_mutually_exclusive_group()
    to.add_argument(
        "--to-queue",
        metavar="Q",
        help="send to this queue (default: the queue each message died in, from x-death)",
    )
    to.add_argument(
        "--to-exchange",
        metavar="X",
        help="publish to this exchange instead (every queue bound there may get a copy)",
    )
    replay.add_argument(
        "--to-routing-key", metavar="K", help="with this routing key (default: the original keys)"
    )
    replay.set_defaults(func=guarded(_cmd_replay))

    purge = actions.add_parser("purge", help="delete the selected dead letters")
    _common(purge)
    purge.add_argument("--limit", type=int, metavar="N", help="delete at most N")
    purge.add_argument("--dry-run", action="store_true", help="only count them")
    purge.add_argument(
        "--all", action="store_true", help="allow deleting without any filter (everything)"
    )
    purge.set_defaults(func=guarded(_cmd_purge))


def _help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("queue", metavar="QUEUE", help="the dead-letter queue")
    p.add_argument("--vhost", default="/", metavar="V", help="vhost (default /)")
    p.add_argument("--reason", help="x-death reason: rejected, expired, maxlen, delivery_limit")
    p.add_argument("--origin-queue", metavar="Q", help="the queue that dead-lettered it")
    p.add_argument("--origin-exchange", metavar="X", help="the exchange it was published to")
    p.add_argument(
        "--routing-key",
        "--origin-routing-key",
        dest="routing_key",
        metavar="K",
        help="one of its original routing keys",
    )
    p.add_argument("--header", action="append", metavar="K=V", help="header equals (repeat)")
    p.add_argument("--since", metavar="TIME", help="died at or after (epoch or ISO 8601)")
    p.add_argument("--until", metavar="TIME", help="died before (epoch or ISO 8601)")
    add_api(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")


def _headers(args: argparse.Namespace) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in args.header or ():
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise CommandError(f"--header must look like key=value, got {pair!r}")
        out[key] = value
    return out


def _filters(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in _FILTERS:
        value = getattr(args, name)
        if value is not None:
            out["origin_routing_key" if name == "routing_key" else name] = value
    headers = _headers(args)
    if headers:
        out["headers"] = headers
    return out


def _query(filters: dict[str, Any], **extra: Any) -> str:
    pairs: list[tuple[str, str]] = []
    for key, value in filters.items():
        if key == "headers":
            pairs.extend((f"header.{k}", v) for k, v in value.items())
        else:
            pairs.append((key, str(value)))
    pairs.extend((k, str(v)) for k, v in extra.items() if v is not None)
    return "?" + urllib.parse.urlencode(pairs) if pairs else ""


def _base(args: argparse.Namespace) -> str:
    return f"/api/queues/{quote(args.vhost)}/{quote(args.queue)}"


def _browse(api: ApiClient, args: argparse.Namespace, **extra: Any) -> list[dict[str, Any]]:
    result = api.get(_base(args) + "/messages" + _query(_filters(args), **extra))
    if not isinstance(result, list):
        raise CommandError("unexpected reply from the dead-letter API (not a list)")
    return result


def _when(seconds: Any) -> str:
    if not isinstance(seconds, int | float):
        return ""
    return datetime.datetime.fromtimestamp(seconds, datetime.UTC).strftime("%Y-%m-%d %H:%M:%S")


def _death_time(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return datetime.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return None
    return None


def _first_death(m: dict[str, Any]) -> dict[str, Any]:
    deaths = m.get("x_death") or []
    return deaths[0] if deaths and isinstance(deaths[0], dict) else {}


def _preview(m: dict[str, Any], width: int = 40) -> str:
    if m.get("payload_encoding") != "string":
        return f"<{m.get('payload_bytes', '?')} bytes binary>"
    text = str(m.get("payload", "")).replace("\n", "\\n")
    return text if len(text) <= width else text[: width - 1] + "…"


def _cmd_list(args: argparse.Namespace) -> int:
    api = api_client(args)
    messages = _browse(api, args, limit=args.limit, truncate=200)
    summary = api.get(_base(args) + "/messages/summary" + _query(_filters(args)))
    if args.json:
        print_json({"messages": messages, "summary": summary})
        return 0
    rows = []
    for m in messages:
        d = _first_death(m)
        keys = d.get("routing-keys") or []
        rows.append(
            (
                m.get("id"),
                d.get("reason", ""),
                d.get("queue", ""),
                d.get("exchange", ""),
                ",".join(map(str, keys)) if isinstance(keys, list) else str(keys),
                _when(_death_time(d.get("time"))),
                m.get("deaths", ""),  # over every x-death entry, counted by the broker
                m.get("replayed", 0),
                _preview(m),
            )
        )
    print(
        table(
            rows,
            (
                "ID",
                "REASON",
                "ORIGIN QUEUE",
                "EXCHANGE",
                "ROUTING KEYS",
                "DIED (UTC)",
                "DEATHS",
                "REPLAYED",
                "BODY",
            ),
        )
    )
    if isinstance(summary, dict):
        total = summary.get("total", 0)
        reasons = ", ".join(f"{r['reason']} {r['count']}" for r in summary.get("by_reason", []))
        shown = f" (showing {len(messages)})" if len(messages) < total else ""
        print(
            f"{total} dead letter{'' if total == 1 else 's'}{shown}"
            + (f": {reasons}" if reasons else "")
        )
    return 0


def _cmd_show(args: argparse.Namespace) -> int:
    api = api_client(args)
    extra: dict[str, Any] = {"limit": args.limit}
    if args.id:
        extra["id"] = ",".join(args.id)
    messages = _browse(api, args, **extra)
    if args.json:
        print_json(messages)
        return 0
    if not messages:
        print("no matching dead letters", file=sys.stderr)
    for m in messages:
        print(f"--- message id {m.get('id')} (position {m.get('position')})")
        print(
            f"arrived via exchange '{m.get('exchange')}' with routing key '{m.get('routing_key')}'"
        )
        props = m.get("properties") or {}
        headers = {k: v for k, v in (props.get("headers") or {}).items() if k != "x-death"}
        other = {k: v for k, v in props.items() if k != "headers"}
        if other:
            print("properties: " + " ".join(f"{k}={v}" for k, v in other.items()))
        if headers:
            print("headers: " + json.dumps(headers, default=str))
        for i, d in enumerate(m.get("x_death") or []):
            keys = ",".join(map(str, d.get("routing-keys") or []))
            print(
                f"x-death[{i}]: {d.get('reason')} in queue '{d.get('queue')}' "
                f"(exchange '{d.get('exchange')}', keys {keys}) x{d.get('count')} "
                f"at {_when(_death_time(d.get('time')))}"
            )
        if m.get("replayed"):
            print(f"replayed {m['replayed']} time(s) before")
        print(f"body ({m.get('payload_bytes')} bytes, {m.get('payload_encoding')}):")
        print(m.get("payload", ""))
    return 0


def _cmd_replay(args: argparse.Namespace) -> int:
    api = api_client(args)
    body: dict[str, Any] = _filters(args)
    if args.to_queue is not None and args.to_routing_key is not None:
        raise CommandError("--to-routing-key goes with --to-exchange, not --to-queue")
    for name in ("rate", "limit", "to_queue", "to_exchange", "to_routing_key"):
        value = getattr(args, name)
        if value is not None:
            body[name] = value
    url = _base(args) + "/replay"
    if args.dry_run:
        return _print_replay(api.post(url, {**body, "dry_run": True}), args, dry_run=True)
    # One request; the broker replays in batches and streams a progress line after each.
    report: Any = None
    shown = 0
    for line in api.post_lines(url, {**body, "progress": True, "batch": REPLAY_CHUNK}):
        progress = line.get("progress") if isinstance(line, dict) else None
        if not isinstance(progress, dict):
            report = line
            continue
        done, total = int(progress.get("selected", 0)), int(progress.get("total", 0))
        # Rate-limited replays report small batches: show about one line per chunk.
        if (
            total > REPLAY_CHUNK
            and done > shown
            and (done - shown >= REPLAY_CHUNK or done == total)
        ):
            shown = done
            print(f"amqplite: replay {done}/{total}", file=sys.stderr, flush=True)
    return _print_replay(report, args, dry_run=False)


def _print_replay(report: Any, args: argparse.Namespace, *, dry_run: bool) -> int:
    if not isinstance(report, dict):
        raise CommandError("unexpected reply from the replay API")
    if args.json:
        print_json(report)
    else:
        verb = "would replay" if dry_run else "replayed"
        print(
            f"{verb} {report.get('replayed', 0)} of {report.get('selected', 0)} selected "
            f"(unroutable {report.get('unroutable', 0)}, failed {report.get('failed', 0)}, "
            f"skipped {report.get('skipped', 0)})"
        )
        for d in report.get("destinations", []):
            if d["exchange"] == "":
                where = f"queue '{d['routing_key']}' (through the default exchange)"
            else:
                where = f"exchange '{d['exchange']}' routing key '{d['routing_key']}'"
            print(f"  {d['count']:>6} -> {where}")
        for q in report.get("queues", []):
            print(f"  {q['count']:>6} would reach queue '{q['queue']}'")
        for e in report.get("errors", [])[:10]:
            print(f"  kept: {json.dumps(e, default=str)}")
    kept = int(report.get("unroutable", 0)) + int(report.get("failed", 0))
    if kept and not dry_run:
        print(
            f"amqplite: error: {kept} message(s) stayed in the queue (unroutable or refused)",
            file=sys.stderr,
        )
        return 1
    return 0


def _cmd_purge(args: argparse.Namespace) -> int:
    api = api_client(args)
    filters = _filters(args)
    if not filters and not args.all:
        raise CommandError("purge without a filter deletes every message: add --all to confirm")
    if args.dry_run:
        summary = api.get(_base(args) + "/messages/summary" + _query(filters))
        total = summary.get("total", 0) if isinstance(summary, dict) else 0
        if args.limit is not None:
            total = min(total, args.limit)
        if args.json:
            print_json({"dry_run": True, "deleted": 0, "selected": total})
        else:
            print(f"would delete {total} message{'' if total == 1 else 's'}")
        return 0
    body = dict(filters)
    if args.all:
        body["all"] = True  # the server, too, deletes nothing unfiltered without it
    if args.limit is not None:
        body["limit"] = args.limit
    result = api.post(_base(args) + "/messages/delete", body)
    deleted = result.get("deleted", 0) if isinstance(result, dict) else 0
    if args.json:
        print_json({"dry_run": False, "deleted": deleted})
    else:
        print(f"deleted {deleted} message{'' if deleted == 1 else 's'}")
    return 0


__all__ = ["register", "typed"]
