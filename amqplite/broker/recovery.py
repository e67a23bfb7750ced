"""Rebuilding a broker from its store at startup (broker layer).

The topology is the definitions model's job: the store's records are read as
definitions (:mod:`amqplite.broker.definitions.records`), planned against the empty
broker and applied by the one applier, in its order -- vhosts, exchanges, queues,
bindings (their ends must exist), users and permissions; then the queued messages, each queue refilled in store order.  Records
that no longer make sense (a binding whose queue is gone, messages of a queue that has
no record) are discarded and deleted from the store, and counted in the report so the
server can log what it dropped.

Messages come back with ``redelivered`` and their delivery count as the store reports
them.  TTLs run from the enqueue time the store kept, so a message whose TTL passed while
the broker was down is expired (dead-lettered or dropped) at the first :meth:`tick` --
which recovery runs once at the end -- and never delivered.  Bodies: a large store is
recovered without bodies: the store says each message's size and properties (enough for
expiry and queue lengths) and the queue gets a lazy entry, read back on delivery; only
priority queues read their messages whole (they need each one's priority).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import attrs

from amqplite.broker.definitions import PlanItem, apply, plan, snapshot
from amqplite.broker.definitions.records import RecordKey, from_records
from amqplite.broker.queue import LAZY, QueueEntry
from amqplite.message import Message, reserve_message_ids
from amqplite.store import StoreError

if TYPE_CHECKING:
    from amqplite.broker.broker import Broker
    from amqplite.broker.queue import Queue
    from amqplite.store import RecoveredMessage, RecoveredState

log = logging.getLogger(__name__)


@attrs.define
class RecoveryReport:
    """What recovery rebuilt and what it threw away."""

    vhosts: int = 0
    exchanges: int = 0
    queues: int = 0
    bindings: int = 0
    users: int = 0
    permissions: int = 0
    messages: int = 0
    #: Records or messages that could not be restored (dangling, unreadable, invalid).
    discarded_records: int = 0
    discarded_messages: int = 0
    #: Damaged regions the store skipped, and their bytes.
    damaged_regions: int = 0
    damaged_bytes: int = 0
    clean_shutdown: bool = True
    #: The records discarded, as (kind, key).
    forgotten: list[tuple[str, tuple[str, ...]]] = attrs.field(factory=list, repr=False)

    def summary(self) -> str:
        text = (
            f"recovered {self.vhosts} vhost(s), {self.exchanges} exchange(s), "
            f"{self.queues} queue(s), {self.bindings} binding(s), {self.users} user(s), "
            f"{self.permissions} permission(s), {self.messages} message(s)"
        )
        if not self.clean_shutdown:
            text += " after an unclean shutdown"
        return text

    def discarded(self) -> str | None:
        """A line about what was thrown away, or None if nothing was."""
        if not (self.discarded_records or self.discarded_messages or self.damaged_regions):
            return None
        return (
            f"discarded {self.discarded_records} record(s) and {self.discarded_messages} "
            f"message(s); the store skipped {self.damaged_regions} damaged region(s) "
            f"({self.damaged_bytes} bytes)"
        )


def recover_broker(broker: Broker, state: RecoveredState) -> RecoveryReport:
    """Rebuild ``broker`` (fresh, with ``broker.store`` set) from ``state``."""
    report = RecoveryReport(
        damaged_regions=state.discarded_records,
        damaged_bytes=state.discarded_bytes,
        clean_shutdown=state.clean_shutdown,
    )
    broker.loading = True
    try:
        _restore_topology(broker, state.records.items(), report)
    finally:
        broker.loading = False
    _restore_messages(broker, state, report)
    # TTLs that ran out while the broker was down: expire (dead-letter) them now.
    broker.tick()
    return report


def _forget(
    broker: Broker, kind: str, key: tuple[str, ...], why: str, report: RecoveryReport
) -> None:
    log.warning("recovery: discarding %s %r: %s", kind, key, why)
    report.discarded_records += 1
    report.forgotten.append((kind, key))
    broker.loading = False
    try:
        broker.delete_record(kind, key)
    finally:
        broker.loading = True


def _restore_topology(
    broker: Broker, records: Iterable[tuple[RecordKey, Any]], report: RecoveryReport
) -> None:
    """Plan the records' definitions against the (empty) broker and apply them.

    One applier for everything (:func:`~amqplite.broker.definitions.apply`); with
    ``on_refused`` a record the broker refuses is forgotten instead of undoing the rest.
    """
    read = from_records(records)
    for (kind, key), why in read.unusable:
        _forget(broker, kind, key, why, report)

    def refused(item: PlanItem, exc: Exception) -> None:
        record = read.keys.get((item.kind, item.vhost, item.name))
        if record is not None:
            _forget(broker, record[0], record[1], str(exc), report)

    result = apply(broker, plan(snapshot(broker), read.definitions), on_refused=refused)
    forgotten = {(k, key) for k, key in report.forgotten}
    for item in result.items:
        record = read.keys.get((item.kind, item.vhost, item.name))
        if item.action == "create" and record not in forgotten:
            setattr(report, _COUNTER[item.kind], getattr(report, _COUNTER[item.kind]) + 1)


_COUNTER = {
    "vhost": "vhosts",
    "exchange": "exchanges",
    "queue": "queues",
    "binding": "bindings",
    "user": "users",
    "permission": "permissions",
    "topic_permission": "permissions",
}


def _restore_messages(broker: Broker, state: RecoveredState, report: RecoveryReport) -> None:
    store = broker.store
    assert store is not None
    now = broker.clock()
    for (vhost_name, queue_name), recovered in state.queues.items():
        vhost = broker.vhosts.get(vhost_name)
        q = vhost.queues.get(queue_name) if vhost is not None else None
        if q is None or not q.persistent:
            log.warning(
                "recovery: discarding %d message(s) of unknown queue '%s' in vhost '%s'",
                len(recovered),
                queue_name,
                vhost_name,
            )
            store.remove_many((vhost_name, queue_name), [m.ref for m in recovered])
            report.discarded_messages += len(recovered)
            continue
        report.messages += _refill(q, recovered, now, report)


def _refill(q: Queue, recovered: list[RecoveredMessage], now: float, report: RecoveryReport) -> int:
    """Append ``recovered`` to ``q`` in order; returns how many were restored.

    A message the store described without its body (size and properties) goes in as a lazy
    entry, read back on delivery: a million of them cost a queue entry each, not a decoded
    message.  Priority queues need each message's priority, so they read the rest whole.
    """
    ttl = q.args.message_ttl
    by_priority = q.args.max_priority is not None
    entries: list[QueueEntry] = []
    append = entries.append
    for item, mid in zip(recovered, reserve_message_ids(len(recovered)), strict=True):
        properties = item.properties
        if item.message is None and properties is not None and not by_priority:
            expires_at = None
            if ttl is not None or properties.expiration is not None:
                enqueued_at = item.timestamp if item.timestamp is not None else now
                expires_at = q.message_expiry(Message("", "", properties, b""), enqueued_at)
            entry = QueueEntry(LAZY, 0, expires_at, item.ref)
            entry.size = item.size
            entry.mid = mid
        else:
            whole = _whole_entry(q, item, now, report)
            if whole is None:
                continue
            entry = whole
        entry.redelivered = item.redelivered
        entry.deliveries = item.delivery_count
        append(entry)
    q.restore(entries)
    return len(entries)


def _whole_entry(
    q: Queue, item: RecoveredMessage, now: float, report: RecoveryReport
) -> QueueEntry | None:
    """A queue entry holding ``item``'s message (read from the store if it came without
    it), or None when the store cannot read it back (then it is discarded)."""
    store = q.vhost.broker.store
    assert store is not None
    message = item.message
    if message is None:
        try:
            message = store.read_message(item.ref)
        except StoreError as exc:
            log.warning("recovery: discarding an unreadable message: %s", exc)
            store.remove(q.key, item.ref)
            report.discarded_messages += 1
            return None
    enqueued_at = item.timestamp if item.timestamp is not None else now
    return QueueEntry(message, 0, q.message_expiry(message, enqueued_at), item.ref)
