"""Compare two sets of definitions: what applying ``wanted`` over ``current`` would do.

Broker core, pure (no broker object: ``current`` is a :func:`~.snapshot.snapshot`, a
decoded RabbitMQ export, or what an AMQP probe saw).  Each thing ``wanted`` declares gets
one :class:`PlanItem`: *create*, *unchanged*, *update* (users and permissions: the only
things that change in place), *conflict* (an exchange or queue that exists with other
flags or arguments, which RabbitMQ refuses with 406 "inequivalent arg"; a name used but
declared nowhere; something the :class:`Target` would refuse) or *ensure* (a binding on a
target that cannot list bindings: binding again is harmless).

The :class:`Target` says what the broker on the other end can do: whether it can list
bindings and manage vhosts and users (AMQP cannot), which product and version it is (a
RabbitMQ refuses some arguments that amqplite accepts: see :mod:`.rabbitmq_rules`), which
user is applying (a plan never silently removes that user's own management access), and
which entities the broker itself already refused when probed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Literal

import attrs

from amqplite.broker.arguments import EQUIVALENT_EXCHANGE_ARGS, EQUIVALENT_QUEUE_ARGS
from amqplite.broker.definitions import rabbitmq_rules
from amqplite.broker.definitions.model import (
    PREDECLARED_EXCHANGES,
    BindingSpec,
    Definitions,
    ExchangeSpec,
    PermissionSpec,
    Position,
    QueueSpec,
    Reference,
    TopicPermissionSpec,
    UserSpec,
    VHostSpec,
)
from amqplite.broker.stream_args import EQUIVALENT_STREAM_ARGS

Action = Literal["create", "unchanged", "update", "conflict", "ensure"]
Kind = Literal["vhost", "exchange", "queue", "binding", "user", "permission", "topic_permission"]
Spec = (
    VHostSpec
    | ExchangeSpec
    | QueueSpec
    | BindingSpec
    | UserSpec
    | PermissionSpec
    | TopicPermissionSpec
    | Reference
)

#: Tags that open the management API (RabbitMQ's rule); "administrator" also opens
#: definitions and users, which ``topology apply --api`` needs.
MANAGEMENT_TAGS = frozenset({"administrator", "monitoring", "management"})


@attrs.frozen
class Target:
    """The broker a plan is for: what it can do, what it refuses, who is applying."""

    product: str = "amqplite"
    version: str = ""
    reads_bindings: bool = True
    manages_vhosts: bool = True
    manages_users: bool = True
    #: The user applying the plan (the API login); None: nobody in particular (startup).
    caller: str | None = None
    #: Apply even a change that removes the caller's own management access.
    force: bool = False
    #: ``(kind, vhost, name) -> reply text`` for entities the broker refused when probed.
    refused: Mapping[tuple[str, str, str], str] = attrs.field(factory=dict)

    @property
    def is_rabbitmq(self) -> bool:
        return self.product.lower() == "rabbitmq"


AMQPLITE = Target()


@attrs.frozen
class PlanItem:
    """One thing the definitions declare and what applying them would do."""

    action: Action
    kind: Kind
    vhost: str
    name: str
    position: Position
    path: str = ""
    #: For conflicts: what differs; for updates: what changes.
    detail: str = ""
    spec: Spec | None = attrs.field(default=None, eq=False, repr=False)
    #: For user and vhost updates: which of "password", "tags" and "limits" change.
    changes: tuple[str, ...] = attrs.field(default=(), eq=False)

    def __str__(self) -> str:
        where = f" in vhost '{self.vhost}'" if self.kind not in ("vhost", "user") else ""
        text = f"{self.action:<9} {self.kind} {self.name}{where}"
        return f"{text}: {self.detail}" if self.detail else text


@attrs.frozen
class Plan:
    items: tuple[PlanItem, ...]
    #: Things the plan could not cover (users over AMQP, what a decoder dropped...).
    notes: tuple[str, ...] = ()

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

    @property
    def ensures(self) -> tuple[PlanItem, ...]:
        return self._with("ensure")

    def summary(self) -> str:
        return (
            f"{len(self.creates)} to create, {len(self.updates)} to update, "
            f"{len(self.unchanged)} unchanged, {len(self.conflicts)} conflicting"
        )


def plan(current: Definitions, wanted: Definitions, target: Target = AMQPLITE) -> Plan:
    """What applying ``wanted`` to a broker holding ``current`` would do; changes nothing."""
    items: list[PlanItem] = []
    notes: list[str] = []
    for v in wanted.vhosts:
        items.extend(_plan_vhost(v, current.vhost(v.name), target))
    items.extend(_plan_references(current, wanted))
    if target.manages_users:
        for u in wanted.users:
            items.append(_plan_user(u, current.user(u.name), target))
        have = {(p.user, p.vhost): p for p in current.permissions}
        for p in wanted.permissions:
            items.append(_plan_permission(p, have.get((p.user, p.vhost))))
        topic = {(t.user, t.vhost, t.exchange): t for t in current.topic_permissions}
        for t in wanted.topic_permissions:
            items.append(_plan_topic_permission(t, topic.get((t.user, t.vhost, t.exchange))))
    elif wanted.users or wanted.permissions or wanted.topic_permissions:
        notes.append(
            f"{len(wanted.users)} user(s) not checked: AMQP cannot manage users "
            "(use --api, or rabbitmqctl)"
        )
    return Plan(tuple(items), tuple(notes))


def _item(
    action: Action, kind: Kind, vhost: str, name: str, spec: Any, detail: str = ""
) -> PlanItem:
    return PlanItem(action, kind, vhost, name, spec.position, spec.path, detail, spec)


def _plan_vhost(v: VHostSpec, current: VHostSpec | None, target: Target) -> Iterator[PlanItem]:
    refused = target.refused.get(("vhost", v.name, v.name))
    if not target.manages_vhosts:
        if not (v.exchanges or v.queues or v.bindings):
            return
        if current is None:
            detail = (
                f"cannot open vhost '{v.name}' ({refused}); AMQP cannot create vhosts: "
                "create it first (rabbitmqctl add_vhost, or apply with --api)"
            )
            yield PlanItem("conflict", "vhost", v.name, v.name, v.position, "", detail, v)
            return
    yield _plan_vhost_item(v, current)
    exchanges = {e.name: e for e in current.exchanges} if current is not None else {}
    queues = {q.name: q for q in current.queues} if current is not None else {}
    created: set[tuple[str, str]] = set()
    for e in v.exchanges:
        item = _plan_exchange(v.name, e, exchanges.get(e.name), target)
        if item.action == "create":
            created.add(("exchange", e.name))
        yield item
    for q in v.queues:
        item = _plan_queue(v.name, q, queues.get(q.name), target)
        if item.action == "create":
            created.add(("queue", q.name))
        yield item
    have = {_binding_key(b) for b in current.bindings} if current is not None else set()
    for b in v.bindings:
        if _binding_key(b) in have:
            action: Action = "unchanged"
        elif target.reads_bindings or created & {
            ("exchange", b.source),
            (b.destination_type, b.destination),
        }:
            action = "create"
        else:
            yield _item("ensure", "binding", v.name, b.describe(), b,
                        "AMQP cannot list bindings; binding again is harmless")  # fmt: skip
            continue
        yield _item(action, "binding", v.name, b.describe(), b)


def _plan_vhost_item(v: VHostSpec, current: VHostSpec | None) -> PlanItem:
    if current is None:
        return _item("create", "vhost", v.name, v.name, v)
    if v.limits is not None and dict(v.limits) != dict(current.limits or {}):
        item = _item("update", "vhost", v.name, v.name, v, "sets limits")
        return attrs.evolve(item, changes=("limits",))
    return _item("unchanged", "vhost", v.name, v.name, v)


def _refused(target: Target, kind: str, vhost: str, name: str) -> str | None:
    return target.refused.get((kind, vhost, name))


def _plan_exchange(
    vhost: str, e: ExchangeSpec, existing: ExchangeSpec | None, target: Target
) -> PlanItem:
    refused = _refused(target, "exchange", vhost, e.name)
    if refused is not None:
        return _item("conflict", "exchange", vhost, e.name, e, refused)
    if existing is None:
        why = rabbitmq_rules.exchange_refusal(target, e) if target.is_rabbitmq else None
        if why is not None:
            return _item("conflict", "exchange", vhost, e.name, e, why)
        return _item("create", "exchange", vhost, e.name, e)
    diff = _exchange_differences(existing, e)
    if not diff:
        return _item("unchanged", "exchange", vhost, e.name, e)
    detail = (
        f"exchange '{e.name}' in vhost '{vhost}' already exists with "
        + "; ".join(diff)
        + " (delete it first, or change the file)"
    )
    return _item("conflict", "exchange", vhost, e.name, e, detail)


def _exchange_differences(existing: ExchangeSpec, e: ExchangeSpec) -> list[str]:
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


def _plan_queue(vhost: str, q: QueueSpec, existing: QueueSpec | None, target: Target) -> PlanItem:
    refused = _refused(target, "queue", vhost, q.name)
    if refused is not None:
        return _item("conflict", "queue", vhost, q.name, q, refused)
    if existing is None:
        why = rabbitmq_rules.queue_refusal(target, q) if target.is_rabbitmq else None
        if why is not None:
            key, text = why
            pos = q.argument_positions.get(key, q.position) if key else q.position
            path = q.argument_paths.get(key, q.path) if key else q.path
            return PlanItem("conflict", "queue", vhost, q.name, pos, path, text, q)
        return _item("create", "queue", vhost, q.name, q)
    where = f"queue '{q.name}' in vhost '{vhost}' already exists"
    fix = "queue flags and arguments cannot change; delete the queue first, or change the file"
    if existing.exclusive:
        detail = f"{where} as an exclusive queue of a client connection"
        return _item("conflict", "queue", vhost, q.name, q, detail)
    for flag, have, wanted in (
        ("durable", existing.durable, q.durable),
        ("auto_delete", existing.auto_delete, q.auto_delete),
    ):
        if not _same_value(have, wanted):
            detail = f"{where} with {flag}={_show(have)}; the file says {_show(wanted)} ({fix})"
            path = f"{q.path}.{flag}" if q.path else ""
            return PlanItem("conflict", "queue", vhost, q.name, q.position, path, detail, q)
    # A stream's retention and segment size must match too (RabbitMQ: inequivalent arg).
    checked = EQUIVALENT_STREAM_ARGS if "stream" in (q.queue_type, existing.queue_type) else ()
    diffs = _differences(
        _norm_queue_args(existing.arguments),
        _norm_queue_args(q.arguments),
        dict.fromkeys((*EQUIVALENT_QUEUE_ARGS, *checked)),
    )
    if not diffs:
        return _item("unchanged", "queue", vhost, q.name, q)
    # Point at the first differing argument in the file (arguments only on the broker last).
    diffs.sort(key=lambda d: _position_key(q.argument_positions.get(d[0])))
    key = diffs[0][0]
    shown = "; ".join(
        f"{k}: existing {_show(h) if h is not None else 'unset'}, "
        f"file {_show(w) if w is not None else 'unset'}"
        for k, h, w in diffs
    )
    detail = f"{where} with other arguments ({shown}); {fix}"
    pos = q.argument_positions.get(key, q.position)
    path = q.argument_paths.get(key, f"{q.path}.arguments.{key}" if q.path else "")
    return PlanItem("conflict", "queue", vhost, q.name, pos, path, detail, q)


def _plan_references(current: Definitions, wanted: Definitions) -> Iterator[PlanItem]:
    for ref in wanted.requires:
        if _declared(current, ref) or _declared(wanted, ref):
            continue
        detail = (
            f"no {ref.kind} '{ref.name}' in vhost '{ref.vhost}': the file does not declare it "
            "and the broker does not have it"
        )
        yield _item("conflict", ref.kind, ref.vhost, ref.name, ref, detail)


def _declared(defs: Definitions, ref: Reference) -> bool:
    if ref.kind == "exchange" and ref.name in PREDECLARED_EXCHANGES:
        return True
    v = defs.vhost(ref.vhost)
    if v is None:
        return False
    names = v.exchanges if ref.kind == "exchange" else v.queues
    return any(x.name == ref.name for x in names)


def _plan_user(u: UserSpec, existing: UserSpec | None, target: Target) -> PlanItem:
    if existing is None:
        return _item("create", "user", "", u.name, u)
    changes = []
    if u.password is not None:
        if not u.password.matches(existing.password_hash):
            changes.append("password")
    elif existing.password_hash != u.password_hash:
        changes.append("password")
    if tuple(existing.tags) != tuple(u.tags):
        changes.append("tags")
    if u.limits is not None and dict(u.limits) != dict(existing.limits or {}):
        changes.append("limits")
    if not changes:
        return _item("unchanged", "user", "", u.name, u)
    detail = f"sets {' and '.join(changes)}"
    lost = _lost_access(existing.tags, u.tags) if u.name == target.caller else None
    if lost is not None:
        warning = (
            f"this removes your own {lost} (you are applying as '{u.name}'): the HTTP API "
            "would answer 401 from then on"
        )
        if not target.force:
            detail = (
                f"{warning}; keep tags {list(existing.tags)} in the file, or apply with --force"
            )
            return _item("conflict", "user", "", u.name, u, detail)
        detail = f"{detail}; forced: {warning}"
    return attrs.evolve(_item("update", "user", "", u.name, u, detail), changes=tuple(changes))


def _lost_access(before: Iterable[str], after: Iterable[str]) -> str | None:
    had, has = set(before), set(after)
    if "administrator" in had and "administrator" not in has:
        return "administrator tag"
    if had & MANAGEMENT_TAGS and not has & MANAGEMENT_TAGS:
        return "management access"
    return None


def _plan_permission(p: PermissionSpec, existing: PermissionSpec | None) -> PlanItem:
    name = f"{p.user}@{p.vhost}"
    if existing is None:
        return _item("create", "permission", p.vhost, name, p)
    same = (existing.configure, existing.write, existing.read) == (p.configure, p.write, p.read)
    return _item("unchanged" if same else "update", "permission", p.vhost, name, p)


def _plan_topic_permission(
    t: TopicPermissionSpec, existing: TopicPermissionSpec | None
) -> PlanItem:
    name = f"{t.user}@{t.vhost} on {t.exchange}"
    if existing is None:
        return _item("create", "topic_permission", t.vhost, name, t)
    same = (existing.write, existing.read) == (t.write, t.read)
    return _item("unchanged" if same else "update", "topic_permission", t.vhost, name, t)


# -- comparing values ----------------------------------------------------------------------


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
    own list), so a plan predicts exactly what a client's redeclare would hit.
    """
    out = []
    for key in checked:
        have, want = current.get(key), wanted.get(key)
        if isinstance(have, bytes):
            have = have.decode("utf-8", "replace")
        if not _same_value(have, want):
            out.append((key, have, want))
    return out


def _position_key(pos: Position | None) -> tuple[int, int]:
    return (pos.line, pos.column) if pos is not None else (2**31, 0)


def _binding_key(b: BindingSpec) -> tuple[str, str, str, str, str]:
    return (
        b.source,
        b.destination_type,
        b.destination,
        b.routing_key,
        _show(sorted(b.arguments.items())),
    )
