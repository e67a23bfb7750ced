"""Dead-letter inspection and replay: select, describe, summarise and move dead letters.

Layer: ``amqplite/http`` (pure: no I/O, no clock; the HTTP handlers and the CLI drive it).

A dead letter carries its history in the ``x-death`` header, a list of tables with the
most recent death first (RabbitMQ's order): ``reason``, ``queue``, ``exchange``,
``routing-keys``, ``count``, ``time``.  The *origin* of a dead letter is that first entry:
the queue that dead-lettered it, and the exchange and routing keys the message had been
published with before it got there, i.e. where a replay sends it back to.

Replay is safe by construction: each message is published to its destination first and
removed from the dead-letter queue only when the publish routed it (and, for durable
writes, after the caller's ``sync``).  A crash in between can leave a duplicate, never a
loss; the duplicate is visible because every replayed copy carries an incremented
``x-replayed`` header.  Messages that do not route stay in the DLQ and are reported.
"""

from __future__ import annotations

import datetime
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol

import attrs

from amqplite.http.jsonout import jsonable
from amqplite.http.payloads import encode_payload, properties_to_json
from amqplite.http.request import bad_request
from amqplite.message import Message

REPLAYED_HEADER = "x-replayed"
DEFAULT_LIMIT = 100
MAX_LIMIT = 100_000


class Entry(Protocol):
    """What a queue's ``browse()`` yields (only the message is needed here)."""

    @property
    def message(self) -> Message: ...


@attrs.frozen(slots=True)
class Origin:
    """Where a dead letter came from: its first (most recent) ``x-death`` entry."""

    reason: str | None
    queue: str | None
    exchange: str | None
    routing_keys: tuple[str, ...]
    time: float | None


def x_death(message: Message) -> list[dict[str, Any]]:
    deaths = message.headers.get("x-death")
    if not isinstance(deaths, list):
        return []
    return [d for d in deaths if isinstance(d, dict)]


def _seconds(value: Any) -> float | None:
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.UTC)
        return float(value.timestamp())
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def _text(value: Any) -> str | None:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value if isinstance(value, str) else None


def origin(message: Message) -> Origin | None:
    deaths = x_death(message)
    if not deaths:
        return None
    first = deaths[0]
    keys = first.get("routing-keys")
    routing_keys = (
        tuple(k for k in (_text(k) for k in keys) if k is not None)
        if isinstance(keys, list)
        else ()
    )
    return Origin(
        reason=_text(first.get("reason")),
        queue=_text(first.get("queue")),
        exchange=_text(first.get("exchange")),
        routing_keys=routing_keys,
        time=_seconds(first.get("time")),
    )


def replay_count(message: Message) -> int:
    value = message.headers.get(REPLAYED_HEADER)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


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


def _int(value: Any, name: str, default: int | None, maximum: int = MAX_LIMIT) -> int | None:
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise bad_request(f"{name} must be an integer") from None
    if isinstance(value, bool) or number < 0 or number > maximum:
        raise bad_request(f"{name} must be between 0 and {maximum}")
    return number


@attrs.frozen(slots=True)
class Selection:
    """Which dead letters an operation applies to; every given criterion must match."""

    reason: str | None = None
    queue: str | None = None  # origin queue
    exchange: str | None = None  # origin exchange
    routing_key: str | None = None  # one of the origin routing keys
    headers: tuple[tuple[str, str], ...] = ()  # header name -> value, compared as text
    since: float | None = None  # death time bounds, epoch seconds, inclusive
    until: float | None = None
    ids: frozenset[int] | None = None  # Message.id values (the "id" field of a browsed message)
    limit: int | None = None
    offset: int = 0

    @classmethod
    def from_query(
        cls, pairs: Iterable[tuple[str, str]], *, default_limit: int | None
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
        return cls._build(fields, headers, ids or None, default_limit)

    @classmethod
    def from_json(cls, body: Mapping[str, Any], *, default_limit: int | None) -> Selection:
        header_map = body.get("headers") or {}
        if not isinstance(header_map, dict):
            raise bad_request("headers must be an object")
        headers = [(str(k), _as_text(v)) for k, v in header_map.items()]
        raw_ids = body.get("ids")
        if raw_ids is not None and not isinstance(raw_ids, list):
            raise bad_request("ids must be a list")
        return cls._build(dict(body), headers, raw_ids, default_limit)

    @classmethod
    def _build(
        cls,
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
        return cls(
            reason=text("reason"),
            queue=text("origin_queue") or text("queue"),
            exchange=text("origin_exchange") or text("exchange"),
            routing_key=text("origin_routing_key") or text("routing_key"),
            headers=tuple(headers),
            since=parse_time(fields.get("since"), "since"),
            until=parse_time(fields.get("until"), "until"),
            ids=ids,
            limit=_int(fields.get("limit"), "limit", default_limit),
            offset=_int(fields.get("offset"), "offset", 0) or 0,
        )

    def matches(self, message: Message) -> bool:
        if self.ids is not None and message.id not in self.ids:
            return False
        if self.headers:
            present = message.headers
            for name, want in self.headers:
                if name not in present or _as_text(present[name]) != want:
                    return False
        if (
            self.reason is None
            and self.queue is None
            and self.exchange is None
            and self.routing_key is None
            and self.since is None
            and self.until is None
        ):
            return True
        where = origin(message)
        if where is None:
            return False
        if self.reason is not None and where.reason != self.reason:
            return False
        if self.queue is not None and where.queue != self.queue:
            return False
        if self.exchange is not None and where.exchange != self.exchange:
            return False
        if self.routing_key is not None and self.routing_key not in where.routing_keys:
            return False
        if self.since is not None and (where.time is None or where.time < self.since):
            return False
        return not (self.until is not None and (where.time is None or where.time > self.until))

    def select(self, entries: Iterable[Entry]) -> list[tuple[int, Entry]]:
        """``(position, entry)`` of the matching entries, in queue order, after offset/limit."""
        out: list[tuple[int, Entry]] = []
        skipped = 0
        for position, entry in enumerate(entries):
            if not self.matches(entry.message):
                continue
            if skipped < self.offset:
                skipped += 1
                continue
            if self.limit is not None and len(out) >= self.limit:
                break
            out.append((position, entry))
        return out


def _as_text(value: Any) -> str:
    value = jsonable(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else str(value)


def describe(
    position: int, message: Message, truncate: int | None, encoding: str = "auto"
) -> dict[str, Any]:
    """One browsed message as JSON: RabbitMQ's ``/get`` fields plus ``id``, ``position``,
    ``x_death`` (parsed) and ``replayed``."""
    out: dict[str, Any] = {
        "id": message.id,
        "position": position,
        "exchange": message.exchange,
        "routing_key": message.routing_key,
        "properties": properties_to_json(message.properties),
        "x_death": jsonable(x_death(message)),
        "replayed": replay_count(message),
    }
    out.update(encode_payload(message.body, encoding, truncate))
    return out


def summarise(entries: Iterable[Entry], selection: Selection) -> dict[str, Any]:
    """Counts of the matching dead letters by reason and by origin (queue, exchange)."""
    by_reason: Counter[str] = Counter()
    by_origin: Counter[tuple[str, str]] = Counter()
    total = 0
    oldest: float | None = None
    newest: float | None = None
    unlimited = attrs.evolve(selection, limit=None, offset=0)
    for _, entry in unlimited.select(entries):
        total += 1
        where = origin(entry.message)
        if where is None:
            by_reason["none"] += 1
            continue
        by_reason[where.reason or "unknown"] += 1
        by_origin[(where.queue or "", where.exchange or "")] += 1
        if where.time is not None:
            oldest = where.time if oldest is None else min(oldest, where.time)
            newest = where.time if newest is None else max(newest, where.time)
    return {
        "total": total,
        "by_reason": [{"reason": r, "count": c} for r, c in by_reason.most_common()],
        "by_origin": [
            {"queue": q, "exchange": x, "count": c} for (q, x), c in by_origin.most_common()
        ],
        "oldest": oldest,
        "newest": newest,
    }


@attrs.frozen(slots=True)
class Destination:
    exchange: str
    routing_key: str
    cc: tuple[str, ...] = ()


def destination(
    message: Message, exchange: str | None = None, routing_key: str | None = None
) -> Destination | None:
    """Where ``message`` goes on replay: the overrides, else its origin; ``None`` if unknown."""
    where = origin(message)
    if exchange is None:
        if where is None or where.exchange is None:
            return None
        exchange = where.exchange
    if routing_key is not None:
        return Destination(exchange, routing_key)
    if where is None or not where.routing_keys:
        return None
    first, *rest = where.routing_keys
    return Destination(exchange, first, tuple(rest))


def replayed_copy(message: Message, dest: Destination) -> Message:
    """A new message for ``dest`` with ``x-replayed`` incremented (x-death kept as history)."""
    headers = dict(message.headers)
    headers[REPLAYED_HEADER] = replay_count(message) + 1
    if dest.cc:
        headers["CC"] = list(dest.cc)
    else:
        headers.pop("CC", None)
    properties = attrs.evolve(message.properties, headers=headers)
    return Message(dest.exchange, dest.routing_key, properties, message.body)


@attrs.define(slots=True, eq=False)
class ReplayReport:
    """What a replay did (or, with ``dry_run``, would do)."""

    dry_run: bool
    selected: int = 0
    replayed: int = 0
    unroutable: int = 0  # published but routed nowhere: kept in the DLQ
    skipped: int = 0  # no x-death origin and no override: kept
    failed: int = 0  # the destination refused it (missing exchange, reject-publish...): kept
    errors: list[dict[str, Any]] = attrs.Factory(list)
    destinations: Counter[tuple[str, str]] = attrs.Factory(Counter)

    def to_json(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "selected": self.selected,
            "replayed": self.replayed,
            "unroutable": self.unroutable,
            "skipped": self.skipped,
            "failed": self.failed,
            "errors": self.errors[:100],
            "destinations": [
                {"exchange": x, "routing_key": k, "count": c}
                for (x, k), c in self.destinations.most_common()
            ],
        }


#: ``publish(message) -> (routed, error)``: route ``message`` at ``message.exchange``.
#: ``routed`` is True only if at least one queue accepted it; ``error`` is a reason text
#: when the destination refused it outright.
Publish = Callable[[Message], tuple[bool, str | None]]


def replay_batch(
    messages: Sequence[Message],
    publish: Publish,
    report: ReplayReport,
    *,
    exchange: str | None = None,
    routing_key: str | None = None,
) -> list[Message]:
    """Replay ``messages``; returns the originals that were routed (for the caller to remove
    from the DLQ once the publishes are durable).  ``report`` is updated in place."""
    done: list[Message] = []
    for message in messages:
        report.selected += 1
        dest = destination(message, exchange, routing_key)
        if dest is None:
            report.skipped += 1
            continue
        if report.dry_run:
            report.replayed += 1
            report.destinations[(dest.exchange, dest.routing_key)] += 1
            continue
        routed, error = publish(replayed_copy(message, dest))
        if error is not None:
            report.failed += 1
            if len(report.errors) < 100:
                report.errors.append({"id": message.id, "reason": error})
        elif not routed:
            report.unroutable += 1
        else:
            report.replayed += 1
            report.destinations[(dest.exchange, dest.routing_key)] += 1
            done.append(message)
    return done
