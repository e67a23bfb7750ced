"""Plan and apply a loaded :class:`~amqplite.topology.model.Config` to a running broker.

Layer: topology (calls the broker core's ``VHost`` methods; no I/O).  :func:`plan`
compares the file with the broker's current state and lists, per item, whether it would
be created, is already there unchanged, would be updated (users), or conflicts (an
existing exchange or queue declared with other flags/arguments, which RabbitMQ would
refuse with 406 "inequivalent arg").  :func:`apply` is all-or-nothing: it plans first
and refuses the whole file on any conflict, and if the broker still refuses something
half-way it undoes what this apply had created before raising.  Applying the same
file twice creates nothing the second time.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal

import attrs

from amqplite.broker import Binding, Broker, Exchange, Queue, User, VHost
from amqplite.broker.arguments import EQUIVALENT_EXCHANGE_ARGS, EQUIVALENT_QUEUE_ARGS
from amqplite.topology.model import (
    BindingSpec,
    Config,
    ExchangeSpec,
    PermissionSpec,
    QueueSpec,
    UserSpec,
    VHostSpec,
)
from amqplite.topology.nodes import join
from amqplite.topology.problems import ApplyConflict, Position, Problem, TopologyError

log = logging.getLogger(__name__)

# "ensure" is for remote plans over AMQP, which cannot read bindings (bind is idempotent).
Action = Literal["create", "unchanged", "update", "conflict", "ensure"]
Kind = Literal["vhost", "exchange", "queue", "binding", "user", "permission"]


@attrs.frozen
class PlanItem:
    """One thing the file declares and what applying it would do."""

    action: Action
    kind: Kind
    vhost: str
    name: str
    position: Position
    path: str = ""
    #: For conflicts: what differs; for updates: what changes.
    detail: str = ""
    spec: object = attrs.field(default=None, eq=False, repr=False)

    def __str__(self) -> str:
        where = f" in vhost '{self.vhost}'" if self.kind not in ("vhost", "user") else ""
        text = f"{self.action:<9} {self.kind} {self.name}{where}"
        return f"{text}: {self.detail}" if self.detail else text

    def problem(self) -> Problem:
        p = self.position
        return Problem(p.file, p.line, p.column, self.path, self.detail)


@attrs.frozen
class Plan:
    items: tuple[PlanItem, ...]

    def _with(self, action: Action) -> tuple[PlanItem, ...]:
        return tuple(i for i in self.items if i.action == action)

    @property
    def creates(self) -> tuple[PlanItem, ...]:
        return self._with("create")

    @property
    def updates(self) -> tuple[PlanItem, ...]:
        return self._with("update")

    @property
    def unchanged(self) -> tuple[PlanItem, ...]:
        return self._with("unchanged")

    @property
    def conflicts(self) -> tuple[PlanItem, ...]:
        return self._with("conflict")

    def summary(self) -> str:
        return (
            f"{len(self.creates)} to create, {len(self.updates)} to update, "
            f"{len(self.unchanged)} unchanged, {len(self.conflicts)} conflicting"
        )


@attrs.frozen
class ApplyReport:
    created: int
    updated: int
    unchanged: int
    items: tuple[PlanItem, ...]

    def summary(self) -> str:
        return f"{self.created} created, {self.updated} updated, {self.unchanged} unchanged"


# -- reading the broker ------------------------------------------------------------------


def _user_permissions(user: User, vhost: str) -> tuple[str, str, str] | None:
    perm = user.permissions.get(vhost)
    return None if perm is None else (perm.configure, perm.write, perm.read)


def _same_value(a: Any, b: Any) -> bool:
    # 1 == True in Python; on the wire they are different field types.
    return type(a) is type(b) and a == b if isinstance(a, bool) or isinstance(b, bool) else a == b


def _norm_queue_args(args: Mapping[str, Any] | None) -> dict[str, Any]:
    out = dict(args or {})
    if out.get("x-queue-type") in ("classic", b"classic"):
        del out["x-queue-type"]
    return out


def _show(value: Any) -> str:
    return json.dumps(value, default=str)


def _differences(
    current: Mapping[str, Any], wanted: Mapping[str, Any], checked: Iterable[str]
) -> list[tuple[str, Any, Any]]:
    """``(key, current, wanted)`` for each ``checked`` key whose value differs (None = unset).

    Only the arguments RabbitMQ compares on redeclaration are checked (the broker's
    own list), so ``plan`` predicts exactly what a client's redeclare would hit.
    """
    out = []
    for key in checked:
        have, want = current.get(key), wanted.get(key)
        if isinstance(have, bytes):
            have = have.decode("utf-8", "replace")
        if not _same_value(have, want):
            out.append((key, have, want))
    return out


# -- planning ----------------------------------------------------------------------------


def _prefix(config: Config, vhost: str) -> str:
    return "" if vhost == config.server.default_vhost else join("vhosts", vhost)


def plan(config: Config, broker: Broker) -> Plan:
    """Compare ``config`` with ``broker`` without changing anything."""
    items: list[PlanItem] = []
    vhosts = broker.vhosts
    for v in config.vhosts:
        current = vhosts.get(v.name)
        action: Action = "unchanged" if current is not None else "create"
        items.append(PlanItem(action, "vhost", v.name, v.name, v.position, spec=v))
        items.extend(_plan_vhost(config, v, current))
    for u in config.users:
        items.extend(_plan_user(broker, u))
    return Plan(tuple(items))


def _plan_vhost(config: Config, v: VHostSpec, current: VHost | None) -> Iterable[PlanItem]:
    prefix = _prefix(config, v.name)
    exchanges: Mapping[str, Exchange] = current.exchanges if current is not None else {}
    queues: Mapping[str, Queue] = current.queues if current is not None else {}
    for e in v.exchanges:
        path = join(join(prefix, "exchanges") if prefix else "exchanges", e.name)
        existing = exchanges.get(e.name)
        if existing is None:
            yield PlanItem("create", "exchange", v.name, e.name, e.position, path, spec=e)
            continue
        diff = _exchange_differences(existing, e)
        if diff:
            detail = (
                f"exchange '{e.name}' in vhost '{v.name}' already exists with "
                + "; ".join(diff)
                + " (delete it first, or change the file)"
            )
            yield PlanItem("conflict", "exchange", v.name, e.name, e.position, path, detail, e)
        else:
            yield PlanItem("unchanged", "exchange", v.name, e.name, e.position, path, spec=e)
    for q in v.queues:
        yield _plan_queue(v.name, prefix, q, queues.get(q.name))
    existing_bindings = (
        {_binding_key_of(b) for b in current.bindings()} if current is not None else set()
    )
    for i, b in enumerate(v.bindings):
        path = f"{join(prefix, 'bindings') if prefix else 'bindings'}[{i}]"
        name = _binding_name(b)
        action: Action = "unchanged" if _binding_key(b) in existing_bindings else "create"
        yield PlanItem(action, "binding", v.name, name, b.position, path, spec=b)


def _exchange_differences(existing: Exchange, e: ExchangeSpec) -> list[str]:
    diff = []
    for flag, have, wanted in (
        ("type", existing.type, e.type),
        ("durable", existing.durable, e.durable),
        ("auto_delete", existing.auto_delete, e.auto_delete),
        ("internal", existing.internal, e.internal),
    ):
        if not _same_value(have, wanted):
            diff.append(f"{flag}={_show(have)} but the file says {_show(wanted)}")
    for key, have, wanted in _differences(
        existing.arguments, e.arguments, EQUIVALENT_EXCHANGE_ARGS
    ):
        diff.append(f"argument {key}={_show(have)} but the file says {_show(wanted)}")
    return diff


def _plan_queue(vhost: str, prefix: str, q: QueueSpec, existing: Queue | None) -> PlanItem:
    path = join(join(prefix, "queues") if prefix else "queues", q.name)
    if existing is None:
        return PlanItem("create", "queue", vhost, q.name, q.position, path, spec=q)
    where = f"queue '{q.name}' in vhost '{vhost}' already exists"
    fix = "queue flags and arguments cannot change; delete the queue first, or change the file"
    if existing.exclusive or existing.owner is not None:
        detail = f"{where} as an exclusive queue of a client connection"
        return PlanItem("conflict", "queue", vhost, q.name, q.position, path, detail, q)
    for flag, have, wanted in (
        ("durable", existing.durable, q.durable),
        ("auto_delete", existing.auto_delete, q.auto_delete),
    ):
        if not _same_value(have, wanted):
            detail = f"{where} with {flag}={_show(have)}; the file says {_show(wanted)} ({fix})"
            return PlanItem(
                "conflict", "queue", vhost, q.name, q.position, f"{path}.{flag}", detail, q
            )
    current_args = _norm_queue_args(existing.arguments)
    diffs = _differences(current_args, q.arguments, EQUIVALENT_QUEUE_ARGS)
    if not diffs:
        return PlanItem("unchanged", "queue", vhost, q.name, q.position, path, spec=q)
    # Point at the first differing argument in the file (arguments only on the broker last).
    diffs.sort(key=lambda d: _position_key(q.argument_positions.get(d[0])))
    key = diffs[0][0]
    shown = "; ".join(
        f"{k}: existing {_show(h) if h is not None else 'unset'}, file {_show(w) if w is not None else 'unset'}"
        for k, h, w in diffs
    )
    detail = f"{where} with other arguments ({shown}); {fix}"
    pos = q.argument_positions.get(key, q.position)
    arg_path = q.argument_paths.get(key, f"{path}.arguments.{key}")
    return PlanItem("conflict", "queue", vhost, q.name, pos, arg_path, detail, q)


def _position_key(pos: Position | None) -> tuple[int, int]:
    return (pos.line, pos.column) if pos is not None else (2**31, 0)


def _binding_name(b: BindingSpec) -> str:
    arrow = f"{b.source} -> {b.destination_type} {b.destination}"
    return f"{arrow} ({b.routing_key!r}{', ' + _show(dict(b.arguments)) if b.arguments else ''})"


def _binding_key(b: BindingSpec) -> tuple[str, str, str, str, str]:
    return (
        b.source,
        b.destination_type,
        b.destination,
        b.routing_key,
        _show(sorted(b.arguments.items())),
    )


def _binding_key_of(b: Binding) -> tuple[str, str, str, str, str]:
    return (
        b.source,
        b.destination_type,
        b.destination,
        b.routing_key,
        _show(sorted(b.arguments.items())),
    )


def _plan_user(broker: Broker, u: UserSpec) -> Iterable[PlanItem]:
    existing = broker.users.get(u.name)
    if existing is None:
        yield PlanItem("create", "user", "", u.name, u.position, join("users", u.name), spec=u)
    else:
        changes = []
        if existing.password_hash != u.password_hash:
            changes.append("password")
        if existing.tags != u.tags:
            changes.append("tags")
        action: Action = "update" if changes else "unchanged"
        detail = f"sets {' and '.join(changes)}" if changes else ""
        yield PlanItem(action, "user", "", u.name, u.position, join("users", u.name), detail, u)
    for p in u.permissions:
        have = _user_permissions(existing, p.vhost) if existing is not None else None
        wanted = (p.configure, p.write, p.read)
        action = "create" if have is None else ("unchanged" if have == wanted else "update")
        path = join(join(join("users", u.name), "permissions"), p.vhost)
        yield PlanItem(
            action, "permission", p.vhost, f"{u.name}@{p.vhost}", p.position, path, spec=(u, p)
        )


# -- applying ----------------------------------------------------------------------------


def apply(config: Config, broker: Broker) -> ApplyReport:
    """Make ``broker`` hold everything ``config`` declares, or change nothing at all.

    Raises :class:`ApplyConflict` (listing every conflict with file:line) when existing
    entities differ from the file, and :class:`TopologyError` if the broker refused an
    operation half-way (after undoing what this call had created).
    """
    p = plan(config, broker)
    if p.conflicts:
        raise ApplyConflict(item.problem() for item in p.conflicts)
    undo: list[Callable[[], object]] = []
    todo = [i for i in p.items if i.action in ("create", "update")]
    # Exchanges without an alternate exchange first, so an AE exists before its users.
    todo.sort(
        key=lambda i: (
            _ORDER[i.kind] + (1 if isinstance(i.spec, ExchangeSpec) and i.spec.arguments else 0)
        )
    )
    for item in todo:
        try:
            _do(broker, item, undo)
        except Exception as exc:
            log.warning("topology apply failed at %s, undoing %d change(s)", item, len(undo))
            for step in reversed(undo):
                try:
                    step()
                except Exception:  # undo is best effort; the original error matters more
                    log.exception("could not undo a topology change")
            pos = item.position
            raise TopologyError(
                [
                    Problem(
                        pos.file,
                        pos.line,
                        pos.column,
                        item.path,
                        f"the broker refused {item.kind} {item.name}: {exc}",
                    )
                ]
            ) from exc
    log.info("applied %s: %s", config.source, p.summary())
    return ApplyReport(
        created=len(p.creates), updated=len(p.updates), unchanged=len(p.unchanged), items=p.items
    )


_ORDER: Mapping[str, int] = {
    "vhost": 0,
    "exchange": 10,
    "queue": 20,
    "binding": 30,
    "user": 40,
    "permission": 50,
}


def _do(broker: Broker, item: PlanItem, undo: list[Callable[[], object]]) -> None:
    spec = item.spec
    if isinstance(spec, VHostSpec):
        broker.add_vhost(spec.name)
        undo.append(lambda: broker.delete_vhost(spec.name))
        return
    if isinstance(spec, ExchangeSpec):
        vhost = broker.vhosts[item.vhost]
        vhost.declare_exchange(
            spec.name,
            spec.type,
            durable=spec.durable,
            auto_delete=spec.auto_delete,
            internal=spec.internal,
            arguments=dict(spec.arguments),
        )
        undo.append(lambda: vhost.delete_exchange(spec.name))
        return
    if isinstance(spec, QueueSpec):
        vhost = broker.vhosts[item.vhost]
        vhost.declare_queue(
            spec.name,
            durable=spec.durable,
            auto_delete=spec.auto_delete,
            arguments=dict(spec.arguments),
        )
        undo.append(lambda: vhost.delete_queue(spec.name))
        return
    if isinstance(spec, BindingSpec):
        vhost = broker.vhosts[item.vhost]
        args = dict(spec.arguments)
        if spec.destination_type == "exchange":
            vhost.bind_exchange(spec.destination, spec.source, spec.routing_key, args)
            undo.append(
                lambda: vhost.unbind_exchange(spec.destination, spec.source, spec.routing_key, args)
            )
        else:
            vhost.bind_queue(spec.destination, spec.source, spec.routing_key, args)
            undo.append(
                lambda: vhost.unbind_queue(spec.destination, spec.source, spec.routing_key, args)
            )
        return
    if isinstance(spec, UserSpec):
        users = broker.users
        users.add_user(spec.name, spec.password_hash, list(spec.tags))
        if item.action == "create":
            undo.append(lambda: users.delete_user(spec.name))
        return
    if isinstance(spec, tuple):
        user, perm = spec
        assert isinstance(user, UserSpec) and isinstance(perm, PermissionSpec)
        broker.users.set_permissions(user.name, perm.vhost, perm.configure, perm.write, perm.read)
        return
    raise AssertionError(f"unknown plan item {item!r}")
