"""Dead-letter queues as a workflow: select, summarise and replay dead letters (broker layer).

Beside the x-death writer and reader (:mod:`amqplite.broker.dead_letter`), this module
holds what the HTTP API, the dashboard and the CLI do with dead letters, so they only
parse requests and render results:

* :class:`Selection` -- which dead letters an operation applies to (origin, reason,
  headers, death time, ids, offset/limit), matched against :func:`dead_letter.origin`;
* :func:`summarise` -- counts by reason and by origin;
* :class:`Target` / :func:`destination` -- where a replay sends a message.  By default
  that is the queue named in its x-death (published through the default exchange, so
  no sibling queue bound to the origin exchange gets a duplicate); an explicit exchange
  (with the origin routing keys, or an explicit key) or another queue can be chosen;
* :class:`Replay` -- the one replay loop, in batches.

Replay is safe by construction: each message is published to its destination first and
removed from the dead-letter queue only when the publish routed it and, for durable
writes, after the caller made the store durable.  A crash in between can leave a
duplicate, never a loss; the duplicate is visible because every replayed copy carries an
incremented ``x-replayed`` header.  Messages that do not route stay in the DLQ and are
reported.  The core never waits: :meth:`Replay.run` is a generator that stops at each
point where the caller must wait (``SYNC``: make the store durable; ``PAUSE``: let the
rest of the server run, or rate-limit) and is resumed when that is done.
"""

from __future__ import annotations

import base64
import datetime
import decimal
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Literal

import attrs

from amqplite.broker.dead_letter import origin
from amqplite.errors import AMQPError
from amqplite.message import Message

if TYPE_CHECKING:
    from amqplite.broker.channel import Channel
    from amqplite.broker.queue import Queue, QueueEntry

REPLAYED_HEADER = "x-replayed"
MAX_ERRORS = 100

#: What :meth:`Replay.run` asks of its caller before it goes on.
Step = Literal["sync", "pause"]
SYNC: Step = "sync"
PAUSE: Step = "pause"


def replay_count(message: Message) -> int:
    """How many times ``message`` was replayed before (its ``x-replayed`` header)."""
    value = message.headers.get(REPLAYED_HEADER)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def field_text(value: Any) -> str:
    """A header value as text, for comparing with a filter (as the HTTP API shows it)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
        try:
            return raw.decode()
        except UnicodeDecodeError:
            return base64.b64encode(raw).decode()
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.UTC)
        return str(int(value.timestamp()))
    if isinstance(value, decimal.Decimal):
        return str(float(value))
    return str(value)


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
    ids: frozenset[int] | None = None  # Message.id values (the "id" of a browsed message)
    limit: int | None = None
    offset: int = 0

    @property
    def filtered(self) -> bool:
        """Whether anything narrows the selection (else it is every message in the queue)."""
        return bool(
            self.headers
            or self.ids is not None
            or any(
                v is not None
                for v in (
                    self.reason,
                    self.queue,
                    self.exchange,
                    self.routing_key,
                    self.since,
                    self.until,
                )
            )
        )

    def matches(self, message: Message) -> bool:
        if self.ids is not None and message.id not in self.ids:
            return False
        if self.headers:
            present = message.headers
            for name, want in self.headers:
                if name not in present or field_text(present[name]) != want:
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

    def select(self, entries: Iterable[QueueEntry]) -> list[tuple[int, QueueEntry]]:
        """``(position, entry)`` of the matching entries, in queue order, after offset/limit."""
        out: list[tuple[int, QueueEntry]] = []
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


@attrs.frozen(slots=True)
class Summary:
    """Counts of the selected dead letters, most common first."""

    total: int
    by_reason: tuple[tuple[str, int], ...]
    by_origin: tuple[tuple[tuple[str, str], int], ...]  # ((queue, exchange), count)
    oldest: float | None
    newest: float | None


def summarise(entries: Iterable[QueueEntry], selection: Selection) -> Summary:
    """Counts of the matching dead letters by reason and origin (offset/limit ignored)."""
    by_reason: Counter[str] = Counter()
    by_origin: Counter[tuple[str, str]] = Counter()
    total = 0
    times: list[float] = []
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
            times.append(where.time)
    return Summary(
        total=total,
        by_reason=tuple(by_reason.most_common()),
        by_origin=tuple(by_origin.most_common()),
        oldest=min(times) if times else None,
        newest=max(times) if times else None,
    )


@attrs.frozen(slots=True)
class Target:
    """Where a replay sends messages.

    Nothing set: the queue named in each message's x-death.  ``queue``: that queue.
    ``exchange`` (and/or ``routing_key``): that exchange (default: the origin exchange)
    with that key (default: the origin routing keys, the first as key, the rest as CC).
    """

    queue: str | None = None
    exchange: str | None = None
    routing_key: str | None = None

    @property
    def to_exchange(self) -> bool:
        return self.exchange is not None or self.routing_key is not None


@attrs.frozen(slots=True)
class Destination:
    """One message's replay destination: an exchange and routing keys (a queue is reached
    through the default exchange, as RabbitMQ's "move messages" does)."""

    exchange: str
    routing_key: str
    cc: tuple[str, ...] = ()


def destination(message: Message, target: Target) -> Destination | None:
    """Where ``message`` goes for ``target``; None if it has no origin to go back to."""
    if target.queue is not None:
        return Destination("", target.queue)
    where = origin(message)
    if not target.to_exchange:
        if where is None or not where.queue:
            return None
        return Destination("", where.queue)
    exchange = target.exchange
    if exchange is None:
        if where is None or where.exchange is None:
            return None
        exchange = where.exchange
    if target.routing_key is not None:
        return Destination(exchange, target.routing_key)
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
    total: int = 0  # messages the selection chose
    selected: int = 0  # of those, how many were tried so far
    replayed: int = 0
    unroutable: int = 0  # published but routed nowhere: kept in the DLQ
    skipped: int = 0  # no x-death origin and no explicit destination: kept
    failed: int = 0  # the destination refused it (missing exchange, reject-publish...): kept
    errors: list[tuple[int, str]] = attrs.Factory(list)  # (message id, reason)
    destinations: Counter[tuple[str, str]] = attrs.Factory(Counter)  # (exchange, key)
    #: Queues the replayed copies reach, by the broker's router (dry runs only).
    queues: Counter[str] = attrs.Factory(Counter)

    def error(self, message: Message, reason: str) -> None:
        self.failed += 1
        if len(self.errors) < MAX_ERRORS:
            self.errors.append((message.id, reason))


def queue_mark(queue: Queue) -> tuple[int, ...]:
    """Changes whenever a ready message may have left or joined ``queue`` without us."""
    stats = queue.stats
    return (
        queue.message_count,
        stats.delivered,
        stats.published,
        sum(stats.dead_lettered.values()),
        sum(stats.dropped.values()),
    )


class Replay:
    """One replay of the dead letters of ``queue`` that ``selection`` chooses (chosen now)."""

    def __init__(
        self,
        queue: Queue,
        selection: Selection,
        target: Target = Target(),
        *,
        dry_run: bool = False,
    ) -> None:
        self.queue = queue
        self.target = target
        self.messages = [entry.message for _, entry in selection.select(list(queue.browse()))]
        self.report = ReplayReport(dry_run=dry_run, total=len(self.messages))

    def run(self, channel: Channel, batch: int) -> Iterator[Step]:
        """Replay ``batch`` messages at a time through ``channel``; yields ``SYNC`` after a
        batch that wrote to the store (resume once it is durable: only then are the
        originals removed) and ``PAUSE`` between batches (resume when the rest of the
        server may have run).

        The channel is the caller's: the HTTP API opens one acting as its user, so write
        permissions and internal exchanges are checked as for any publish.
        """
        queue = self.queue
        mark: tuple[int, ...] | None = None
        present: set[int] | None = None
        for start in range(0, len(self.messages), batch):
            chunk = self.messages[start : start + batch]
            if mark is not None and mark != queue_mark(queue):
                # The DLQ changed while we paused (a consumer, a purge, expiry...): replay
                # only what is still there, or we would duplicate what someone else took.
                if queue.deleted:
                    break
                present = {entry.message.id for entry in queue.browse()}
            if present is not None:
                chunk = [m for m in chunk if m.id in present]
            done, durable = self._batch(channel, chunk)
            if durable:
                yield SYNC
            queue.remove_messages({m.id for m in done})
            if start + batch >= len(self.messages):
                break
            mark = queue_mark(queue)
            yield PAUSE

    def _batch(self, channel: Channel, messages: Sequence[Message]) -> tuple[list[Message], bool]:
        """Publish (or, dry, route) ``messages``: the originals that were routed, and
        whether any publish wrote to the store."""
        report = self.report
        done: list[Message] = []
        durable = False
        for message in messages:
            report.selected += 1
            dest = destination(message, self.target)
            if dest is None:
                report.skipped += 1
                continue
            copy = replayed_copy(message, dest)
            if report.dry_run:
                self._dry(message, copy, dest)
                continue
            try:
                result = channel.publish(dest.exchange, dest.routing_key, copy)
            except AMQPError as exc:
                report.error(message, exc.reply_text)
                continue
            durable = durable or result.durable_write
            if result.rejected:
                report.error(message, "rejected by the destination queue (x-overflow)")
            elif not result.routed:
                report.unroutable += 1
            else:
                report.replayed += 1
                report.destinations[(dest.exchange, dest.routing_key)] += 1
                done.append(message)
        return done, durable

    def _dry(self, message: Message, copy: Message, dest: Destination) -> None:
        """Route ``copy`` with the broker's router, enqueueing nothing."""
        report = self.report
        vhost = self.queue.vhost
        exchange = vhost.exchanges.get(dest.exchange)
        if exchange is None:
            report.error(message, f"no exchange '{dest.exchange}' in vhost '{vhost.name}'")
            return
        queues = vhost.route(exchange, copy)
        if not queues:
            report.unroutable += 1
            return
        report.replayed += 1
        report.destinations[(dest.exchange, dest.routing_key)] += 1
        for q in queues:
            report.queues[q.name] += 1
