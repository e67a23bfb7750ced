"""Apply a :class:`~.plan.Plan` to a broker, all or nothing (broker core, pure).

A plan with conflicts is refused whole (:class:`PlanRefused`) before anything changes.
Otherwise vhosts, exchanges (those without an alternate exchange first, so an AE exists
before its users), queues, bindings, users and permissions are created or updated in
that order; if the broker still refuses something half-way, every change this call made
is undone and :class:`ApplyFailed` names the item.  Applying the same definitions twice
changes nothing the second time.

Recovery uses the same applier with ``on_refused``: names the broker generated
(``amq.gen-...``) are allowed, and an item the broker refuses is handed to the callback
(which forgets its record) and skipped, because one damaged record must not cost the
rest of the store.  (``route --api`` does the same to walk a copy of another broker
that holds something amqplite cannot, such as a stream queue.)
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

import attrs

from amqplite.broker.definitions.model import (
    BindingSpec,
    ExchangeSpec,
    PermissionSpec,
    QueueSpec,
    TopicPermissionSpec,
    UserSpec,
    VHostSpec,
)
from amqplite.broker.definitions.plan import Plan, PlanItem

if TYPE_CHECKING:
    from amqplite.broker.broker import Broker

log = logging.getLogger(__name__)

Undo = list[Callable[[], object]]
OnRefused = Callable[[PlanItem, Exception], None]


class PlanRefused(Exception):
    """The plan has conflicts; nothing was applied.  ``plan.conflicts`` lists them."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        n = len(plan.conflicts)
        super().__init__(f"{n} conflict{'' if n == 1 else 's'}; nothing applied")


class ApplyFailed(Exception):
    """The broker refused ``item`` half-way; everything applied before it was undone."""

    def __init__(self, item: PlanItem, cause: Exception) -> None:
        self.item = item
        self.cause = cause
        super().__init__(f"the broker refused {item.kind} {item.name}: {cause}")


@attrs.frozen
class ApplyReport:
    created: int
    updated: int
    unchanged: int
    items: tuple[PlanItem, ...]

    def summary(self) -> str:
        return f"{self.created} created, {self.updated} updated, {self.unchanged} unchanged"


_ORDER: Mapping[str, int] = {
    "vhost": 0,
    "exchange": 10,
    "queue": 20,
    "binding": 30,
    "user": 40,
    "permission": 50,
    "topic_permission": 60,
}


def order(item: PlanItem) -> int:
    """Apply order: an item's dependencies come first (AMQP appliers use it too)."""
    spec = item.spec
    with_ae = isinstance(spec, ExchangeSpec) and bool(spec.arguments)
    return _ORDER[item.kind] + (1 if with_ae else 0)


def apply(broker: Broker, plan: Plan, *, on_refused: OnRefused | None = None) -> ApplyReport:
    """Make ``broker`` hold what ``plan`` creates and updates, or change nothing at all."""
    if plan.conflicts:
        raise PlanRefused(plan)
    undo: Undo = []
    todo = sorted((i for i in plan.items if i.action in ("create", "update", "ensure")), key=order)
    for item in todo:
        try:
            _do(broker, item, undo, on_refused is not None)
        except Exception as exc:
            if on_refused is not None:
                on_refused(item, exc)
                continue
            log.warning("apply failed at %s, undoing %d change(s)", item, len(undo))
            for step in reversed(undo):
                try:
                    step()
                except Exception:  # undo is best effort; the original error matters more
                    log.exception("could not undo a definitions change")
            raise ApplyFailed(item, exc) from exc
    return ApplyReport(
        created=len(plan.creates), updated=len(plan.updates), unchanged=len(plan.unchanged),
        items=plan.items,
    )  # fmt: skip


def _do(broker: Broker, item: PlanItem, undo: Undo, lenient: bool) -> None:
    spec = item.spec
    if isinstance(spec, VHostSpec):
        _vhost(broker, item, spec, undo)
    elif isinstance(spec, ExchangeSpec):
        vhost = broker.get_vhost(item.vhost)
        vhost.declare_exchange(
            spec.name, spec.type, durable=spec.durable, auto_delete=spec.auto_delete,
            internal=spec.internal, arguments=dict(spec.arguments),
        )  # fmt: skip
        undo.append(lambda: vhost.delete_exchange(spec.name))
    elif isinstance(spec, QueueSpec):
        vhost = broker.get_vhost(item.vhost)
        vhost.declare_queue(
            spec.name, durable=spec.durable, auto_delete=spec.auto_delete,
            arguments=dict(spec.arguments),
            # Only a name the broker generated (amq.gen-...) is "server-named": a stream with
            # an ordinary name must not be refused as one in a lenient (recovery, routing) copy.
            server_named=lenient and spec.name.startswith("amq."),
        )  # fmt: skip
        undo.append(lambda: vhost.delete_queue(spec.name))
    elif isinstance(spec, BindingSpec):
        _bind(broker, item.vhost, spec, undo)
    elif isinstance(spec, UserSpec):
        _user(broker, item, spec, undo)
    elif isinstance(spec, PermissionSpec):
        _permission(broker, spec, undo)
    elif isinstance(spec, TopicPermissionSpec):
        _topic_permission(broker, spec, undo)
    else:
        raise AssertionError(f"nothing to apply for {item!r}")


def _vhost(broker: Broker, item: PlanItem, spec: VHostSpec, undo: Undo) -> None:
    limits = dict(spec.limits) if spec.limits is not None else None
    before = broker.vhosts.get(spec.name)
    if before is None:
        broker.add_vhost(spec.name, limits=limits)
        undo.append(lambda: broker.delete_vhost(spec.name))
        return
    old = dict(before.limits)
    broker.add_vhost(spec.name, limits=limits)
    undo.append(lambda: broker.add_vhost(spec.name, limits=old))


def _bind(broker: Broker, vhost_name: str, spec: BindingSpec, undo: Undo) -> None:
    vhost = broker.get_vhost(vhost_name)
    args = dict(spec.arguments)
    src, dst, key = spec.source, spec.destination, spec.routing_key
    if spec.destination_type == "exchange":
        vhost.bind_exchange(dst, src, key, args)
        undo.append(lambda: vhost.unbind_exchange(dst, src, key, args))
    else:
        vhost.bind_queue(dst, src, key, args)
        undo.append(lambda: vhost.unbind_queue(dst, src, key, args))


def _user(broker: Broker, item: PlanItem, spec: UserSpec, undo: Undo) -> None:
    users = broker.users
    before = users.get(spec.name)
    limits = dict(spec.limits) if spec.limits is not None else None
    if before is None:
        users.add_user(spec.name, spec.password_hash, spec.tags, limits)
        undo.append(lambda: users.delete_user(spec.name))
        return
    old_hash, old_tags, old_limits = before.password_hash, before.tags, dict(before.limits)
    # A plain password that the stored hash already holds keeps that hash: re-salting it
    # on every apply would rewrite the user record for nothing.
    new_hash = spec.password_hash if "password" in item.changes else old_hash
    users.add_user(spec.name, new_hash, spec.tags, limits)
    undo.append(lambda: users.add_user(spec.name, old_hash, old_tags, old_limits))


def _permission(broker: Broker, spec: PermissionSpec, undo: Undo) -> None:
    users = broker.users
    if spec.user not in users:
        raise KeyError(f"permissions for unknown user '{spec.user}'")
    if spec.vhost not in broker.vhosts:
        raise KeyError(f"permissions on unknown vhost '{spec.vhost}'")
    old = users.users[spec.user].permissions.get(spec.vhost)
    users.set_permissions(spec.user, spec.vhost, spec.configure, spec.write, spec.read)
    if old is None:
        undo.append(lambda: users.clear_permissions(spec.user, spec.vhost))
    else:
        undo.append(
            lambda: users.set_permissions(spec.user, spec.vhost, old.configure, old.write, old.read)
        )


def _topic_permission(broker: Broker, spec: TopicPermissionSpec, undo: Undo) -> None:
    users = broker.users
    if spec.user not in users:
        raise KeyError(f"topic permissions for unknown user '{spec.user}'")
    user, vhost, exchange = spec.user, spec.vhost, spec.exchange
    old = users.users[user].topic_permissions.get(vhost, {}).get(exchange)
    users.set_topic_permissions(user, vhost, exchange, spec.write, spec.read)
    if old is None:
        undo.append(lambda: users.clear_topic_permissions(user, vhost, exchange))
    else:
        undo.append(lambda: users.set_topic_permissions(user, vhost, exchange, old.write, old.read))
