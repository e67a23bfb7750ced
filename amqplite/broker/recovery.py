"""Rebuilding a broker from its store at startup (broker layer).

Order matters: vhosts, then exchanges, queues, bindings (their ends must exist), users
and permissions, then the queued messages, each queue refilled in store order.  Records
that no longer make sense (a binding whose queue is gone, messages of a queue that has
no record) are discarded and deleted from the store, and counted in the report so the
server can log what it dropped.

Messages come back with ``redelivered`` and their delivery count as the store reports
them.  TTLs run from the enqueue time the store kept, so a message whose TTL passed while
the broker was down is expired (dead-lettered or dropped) at the first :meth:`tick` --
which recovery runs once at the end -- and never delivered.  Bodies: a large store is
recovered without bodies and each message read back once (to learn its expiry, priority
and size); either way a body is kept in memory only while its queue is under its lazy
threshold, so a long queue never holds all its bodies.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import attrs

from amqplite.broker.queue import QueueEntry
from amqplite.errors import AMQPError
from amqplite.store import StoreError

if TYPE_CHECKING:
    from amqplite.broker.broker import Broker
    from amqplite.store import RecoveredState

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
    by_kind: dict[str, list[tuple[tuple[str, ...], Any]]] = {}
    for (kind, key), value in state.records.items():
        by_kind.setdefault(kind, []).append((key, value))
    broker._loading = True
    try:
        _restore_topology(broker, by_kind, report)
    finally:
        broker._loading = False
    _restore_messages(broker, state, report)
    # TTLs that ran out while the broker was down: expire (dead-letter) them now.
    broker.tick()
    return report


def _forget(
    broker: Broker, kind: str, key: tuple[str, ...], why: str, report: RecoveryReport
) -> None:
    log.warning("recovery: discarding %s %r: %s", kind, key, why)
    report.discarded_records += 1
    broker._loading = False
    try:
        broker.delete_record(kind, key)
    finally:
        broker._loading = True


def _restore_topology(
    broker: Broker, by_kind: dict[str, list[tuple[tuple[str, ...], Any]]], report: RecoveryReport
) -> None:
    for (name,), value in sorted(by_kind.get("vhost", []), key=_first):
        broker.add_vhost(name, limits=(value or {}).get("limits") or None)
        report.vhosts += 1
    for key, value in sorted(by_kind.get("exchange", []), key=_first):
        vhost_name, name = key
        vhost = broker.vhosts.get(vhost_name)
        if vhost is None:
            _forget(broker, "exchange", key, "its vhost is gone", report)
            continue
        try:
            vhost.declare_exchange(
                name,
                value["type"],
                durable=True,
                auto_delete=bool(value.get("auto_delete")),
                internal=bool(value.get("internal")),
                arguments=value.get("arguments") or {},
            )
        except (AMQPError, KeyError, TypeError) as exc:
            _forget(broker, "exchange", key, str(exc), report)
            continue
        report.exchanges += 1
    for key, value in sorted(by_kind.get("queue", []), key=_first):
        vhost_name, name = key
        vhost = broker.vhosts.get(vhost_name)
        if vhost is None:
            _forget(broker, "queue", key, "its vhost is gone", report)
            continue
        try:
            vhost.declare_queue(
                name,
                durable=True,
                auto_delete=bool(value.get("auto_delete")),
                arguments=value.get("arguments") or {},
                server_named=True,
            )
        except (AMQPError, KeyError, TypeError) as exc:
            _forget(broker, "queue", key, str(exc), report)
            continue
        report.queues += 1
    for key, value in sorted(by_kind.get("binding", []), key=_first):
        vhost_name, source, dest_type, dest, routing_key, _digest = key
        vhost = broker.vhosts.get(vhost_name)
        arguments = (value or {}).get("arguments") or {}
        try:
            if vhost is None:
                raise KeyError("its vhost is gone")
            if dest_type == "queue":
                vhost.bind_queue(dest, source, routing_key, arguments)
            else:
                vhost.bind_exchange(dest, source, routing_key, arguments)
        except (AMQPError, KeyError, TypeError) as exc:
            _forget(broker, "binding", key, str(exc), report)
            continue
        report.bindings += 1
    users = broker.users
    for (name,), value in sorted(by_kind.get("user", []), key=_first):
        users.add_user(
            name, value["password_hash"], value.get("tags") or (), value.get("limits") or None
        )
        report.users += 1
    for key, value in sorted(by_kind.get("permission", []), key=_first):
        user, vhost_name = key
        if user not in users:
            _forget(broker, "permission", key, "its user is gone", report)
            continue
        users.set_permissions(user, vhost_name, value["configure"], value["write"], value["read"])
        report.permissions += 1
    for key, value in sorted(by_kind.get("topic_permission", []), key=_first):
        user, vhost_name, exchange = key
        if user not in users:
            _forget(broker, "topic_permission", key, "its user is gone", report)
            continue
        users.set_topic_permissions(user, vhost_name, exchange, value["write"], value["read"])
        report.permissions += 1


def _restore_messages(broker: Broker, state: RecoveredState, report: RecoveryReport) -> None:
    store = broker.store
    assert store is not None
    now = broker.clock()
    for (vhost_name, queue_name), recovered in state.queues.items():
        vhost = broker.vhosts.get(vhost_name)
        q = vhost.queues.get(queue_name) if vhost is not None else None
        if q is None or not q._persist:
            log.warning(
                "recovery: discarding %d message(s) of unknown queue '%s' in vhost '%s'",
                len(recovered),
                queue_name,
                vhost_name,
            )
            store.remove_many((vhost_name, queue_name), [m.ref for m in recovered])
            report.discarded_messages += len(recovered)
            continue
        for item in recovered:
            try:
                message = item.message or store.read_message(item.ref)
            except StoreError as exc:
                log.warning("recovery: discarding an unreadable message: %s", exc)
                store.remove(q.key, item.ref)
                report.discarded_messages += 1
                continue
            enqueued_at = item.timestamp if item.timestamp is not None else now
            entry = QueueEntry(message, 0, q.message_expiry(message, enqueued_at), item.ref)
            entry.redelivered = item.redelivered
            entry.deliveries = item.delivery_count
            q.restore(entry)
            report.messages += 1


def _first(item: tuple[tuple[str, ...], Any]) -> tuple[str, ...]:
    return item[0]
