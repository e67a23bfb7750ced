"""Dead-letter requests and replies of the management API: parse filters, render results.

Layer: ``amqplite/http``.  Everything about dead letters themselves (x-death, origin,
selection, summary, replay) lives in the broker (:mod:`amqplite.broker.dead_letter`,
:mod:`amqplite.broker.replay`); this module only turns query strings and JSON bodies
into a :class:`~amqplite.broker.replay.Selection` / :class:`~amqplite.broker.replay.Target`
(a 400 for anything malformed) and the core's values into JSON.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from amqplite.broker.dead_letter import death_count, origin, x_death
from amqplite.broker.replay import (
    ReplayReport,
    Selection,
    Summary,
    Target,
    field_text,
    replay_count,
)
from amqplite.http.jsonout import jsonable
from amqplite.http.payloads import encode_payload, properties_to_json
from amqplite.http.request import bad_request
from amqplite.message import Message

DEFAULT_LIMIT = 100
MAX_LIMIT = 100_000


def parse_time(value: Any, name: str) -> float | None:
    """``since``/``until``: epoch seconds (number or digits) or an ISO 8601 date-time."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
        try:
            parsed = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            pass
        else:
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=datetime.UTC)
            return parsed.timestamp()
    raise bad_request(f"{name} must be epoch seconds or an ISO 8601 time")


def parse_int(value: Any, name: str, default: int | None, maximum: int = MAX_LIMIT) -> int | None:
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise bad_request(f"{name} must be an integer") from None
    if isinstance(value, bool) or number < 0 or number > maximum:
        raise bad_request(f"{name} must be between 0 and {maximum}")
    return number


def selection_from_query(
    pairs: Iterable[tuple[str, str]], *, default_limit: int | None
) -> Selection:
    fields: dict[str, Any] = {}
    headers: list[tuple[str, str]] = []
    ids: list[str] = []
    for key, value in pairs:
        if key.startswith("header."):
            headers.append((key[7:], value))
        elif key == "id":
            ids.extend(v for v in value.split(",") if v)
        else:
            fields[key] = value
    return _build(fields, headers, ids or None, default_limit)


def selection_from_json(body: Mapping[str, Any], *, default_limit: int | None) -> Selection:
    header_map = body.get("headers") or {}
    if not isinstance(header_map, dict):
        raise bad_request("headers must be an object")
    headers = [(str(k), field_text(jsonable(v))) for k, v in header_map.items()]
    raw_ids = body.get("ids")
    if raw_ids is not None and not isinstance(raw_ids, list):
        raise bad_request("ids must be a list")
    return _build(dict(body), headers, raw_ids, default_limit)


def _build(
    fields: Mapping[str, Any],
    headers: list[tuple[str, str]],
    raw_ids: Sequence[Any] | None,
    default_limit: int | None,
) -> Selection:
    def text(name: str) -> str | None:
        value = fields.get(name)
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            raise bad_request(f"{name} must be a string")
        return value

    ids: frozenset[int] | None = None
    if raw_ids is not None:
        try:
            ids = frozenset(int(i) for i in raw_ids)
        except (TypeError, ValueError):
            raise bad_request("ids must be integers") from None
    return Selection(
        reason=text("reason"),
        queue=text("origin_queue") or text("queue"),
        exchange=text("origin_exchange") or text("exchange"),
        routing_key=text("origin_routing_key") or text("routing_key"),
        headers=tuple(headers),
        since=parse_time(fields.get("since"), "since"),
        until=parse_time(fields.get("until"), "until"),
        ids=ids,
        limit=parse_int(fields.get("limit"), "limit", default_limit),
        offset=parse_int(fields.get("offset"), "offset", 0) or 0,
    )


#: Replay body fields that name the destination, not the selection.
TARGET_FIELDS = ("to_queue", "to_exchange", "to_routing_key", "exchange", "routing_key")


def target_from_json(body: Mapping[str, Any]) -> Target:
    """The replay destination: ``to_queue``, or ``to_exchange`` / ``to_routing_key``
    (``exchange`` / ``routing_key`` are older spellings of those two); none: the queue
    named in each message's x-death.  ``amq.default`` means the default exchange."""
    values: dict[str, str | None] = {}
    for name in TARGET_FIELDS:
        value = body.get(name)
        if value is not None and not isinstance(value, str):
            raise bad_request(f"{name} must be a string")
        values[name] = value
    exchange = values["to_exchange"] if values["to_exchange"] is not None else values["exchange"]
    key = (
        values["to_routing_key"] if values["to_routing_key"] is not None else values["routing_key"]
    )
    queue = values["to_queue"]
    if queue is not None and (exchange is not None or key is not None):
        raise bad_request("to_queue cannot be combined with an exchange or routing key")
    if exchange == "amq.default":
        exchange = ""
    return Target(queue=queue, exchange=exchange, routing_key=key)


def describe(
    position: int, message: Message, truncate: int | None, encoding: str = "auto"
) -> dict[str, Any]:
    """One browsed message as JSON: RabbitMQ's ``/get`` fields plus ``id``, ``position``,
    ``x_death`` (the entries), ``origin`` (the latest entry, read by the broker), ``deaths``
    (over every x-death entry) and ``replayed``."""
    deaths = x_death(message)
    where = origin(message)
    out: dict[str, Any] = {
        "id": message.id,
        "position": position,
        "exchange": message.exchange,
        "routing_key": message.routing_key,
        "properties": properties_to_json(message.properties),
        "x_death": jsonable(deaths),
        # The broker's reading of x-death, so no client parses it again.
        "origin": None
        if where is None
        else {
            "reason": where.reason,
            "queue": where.queue,
            "exchange": where.exchange,
            "routing_keys": list(where.routing_keys),
            "time": where.time,
        },
        "deaths": death_count(deaths),
        "replayed": replay_count(message),
    }
    out.update(encode_payload(message.body, encoding, truncate))
    return out


def summary_json(summary: Summary) -> dict[str, Any]:
    return {
        "total": summary.total,
        "by_reason": [{"reason": r, "count": c} for r, c in summary.by_reason],
        "by_origin": [{"queue": q, "exchange": x, "count": c} for (q, x), c in summary.by_origin],
        "oldest": summary.oldest,
        "newest": summary.newest,
    }


def report_json(report: ReplayReport) -> dict[str, Any]:
    out: dict[str, Any] = {
        "dry_run": report.dry_run,
        "selected": report.selected,
        "replayed": report.replayed,
        "unroutable": report.unroutable,
        "skipped": report.skipped,
        "failed": report.failed,
        "errors": [{"id": i, "reason": r} for i, r in report.errors],
        "destinations": [
            {"exchange": x, "routing_key": k, "count": c}
            for (x, k), c in report.destinations.most_common()
        ],
    }
    if report.dry_run:
        out["queues"] = [{"queue": q, "count": c} for q, c in report.queues.most_common()]
    return out
