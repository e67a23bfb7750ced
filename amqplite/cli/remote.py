"""Plan and apply definitions against a running broker, over AMQP or the HTTP API.

CLI layer.  Both ways end in the definitions model's one pure
:func:`~amqplite.broker.definitions.plan` of *what the broker has* against *what the file
wants*; they differ in how they learn what the broker has:

* **over the HTTP API** (``--api``): ``GET /api/definitions`` is decoded by the one
  RabbitMQ-JSON codec into definitions, which show every argument and binding; the
  overview says which product and version answers.  Applying ``POST``s the items the
  plan creates or updates, as definitions JSON.
* **over AMQP** (``--url``, any AMQP 0-9-1 broker, RabbitMQ included).  AMQP cannot *read*
  a queue's or exchange's arguments, nor list bindings, so each exchange and queue is
  probed on a throwaway channel: a passive declare answers 404 (absent); when it exists,
  an active redeclare with the file's flags and arguments either succeeds (it changes
  nothing: the broker holds an equivalent one) or the broker refuses it with 406,
  naming the inequivalent argument (a conflict, in the broker's own words).  Bindings
  are *ensure* (``queue.bind`` is idempotent), vhosts must already exist (AMQP cannot
  create them: 530), users are not managed.  The product and version come from the
  server properties of ``connection.start``.

Either way the plan predicts what a RabbitMQ would refuse (``rabbitmq_rules``), and
apply changes nothing unless the whole plan is free of conflicts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import attrs

from amqplite.broker.definitions import (
    BindingSpec,
    Definitions,
    ExchangeSpec,
    PermissionSpec,
    Plan,
    PlanItem,
    QueueSpec,
    Target,
    TopicPermissionSpec,
    UserSpec,
    VHostSpec,
    plan,
    rabbit_json,
)
from amqplite.broker.definitions.apply import order
from amqplite.cli.errors import CommandError
from amqplite.client import (
    AmqpUrl,
    ChannelClosed,
    ClientError,
    Connection,
    ConnectionClosed,
    connect,
)
from amqplite.client.http import ApiClient

Progress = Callable[[int, int], None]


def _noop(done: int, total: int) -> None:
    pass


class ApplyRefused(CommandError):
    """Apply found conflicts and changed nothing; ``plan`` holds them."""

    def __init__(self, p: Plan) -> None:
        self.plan = p
        n = len(p.conflicts)
        super().__init__(f"{n} conflict{'' if n == 1 else 's'}; nothing applied")


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value or "")


# -- over AMQP ----------------------------------------------------------------------------


def _probe(conn: Connection, kind: str, spec: ExchangeSpec | QueueSpec) -> str | None:
    """None: absent; "": the broker holds an equivalent one; else the broker's refusal."""
    ch = conn.channel()
    try:
        if kind == "exchange":
            ch.exchange_declare(spec.name, "direct", passive=True)
        else:
            ch.queue_declare(spec.name, passive=True)
    except ChannelClosed as exc:
        return None if exc.reply_code == 404 else exc.reply_text
    try:
        _declare(ch, spec)
    except ChannelClosed as exc:
        return exc.reply_text
    ch.close()
    return ""


def _exists(conn: Connection, kind: str, name: str) -> bool:
    ch = conn.channel()
    try:
        if kind == "exchange":
            ch.exchange_declare(name, "direct", passive=True)
        else:
            ch.queue_declare(name, passive=True)
    except ChannelClosed:
        return False
    ch.close()
    return True


@attrs.define
class _Probe:
    refused: dict[tuple[str, str, str], str] = attrs.field(factory=dict)
    vhosts: list[VHostSpec] = attrs.field(factory=list)
    server: dict[str, Any] = attrs.field(factory=dict)
    done: int = 0


def _probe_vhost(conn: Connection, v: VHostSpec, wanted: Definitions, state: _Probe,
                 total: int, progress: Progress) -> None:  # fmt: skip
    state.server = dict(conn.server_properties)
    found: dict[str, list[Any]] = {"exchange": [], "queue": []}
    specs: list[tuple[str, ExchangeSpec | QueueSpec]] = [
        *(("exchange", e) for e in v.exchanges),
        *(("queue", q) for q in v.queues),
    ]
    for kind, spec in specs:
        seen = _probe(conn, kind, spec)
        if seen == "":
            found[kind].append(spec)
        elif seen is not None:
            state.refused[(kind, v.name, spec.name)] = seen
        state.done += 1
        progress(state.done, total)
    for ref in wanted.requires:
        if ref.vhost == v.name and _exists(conn, ref.kind, ref.name):
            stand_in = ExchangeSpec(ref.name, "") if ref.kind == "exchange" else QueueSpec(ref.name)
            found[ref.kind].append(stand_in)
    state.vhosts.append(VHostSpec(v.name, tuple(found["exchange"]), tuple(found["queue"])))


def probe_over_amqp(
    wanted: Definitions, url: AmqpUrl, progress: Progress = _noop
) -> tuple[Definitions, Target]:
    """What the broker at ``url`` holds of ``wanted`` (as far as AMQP can tell), and who it is."""
    state = _Probe()
    total = sum(len(v.exchanges) + len(v.queues) for v in wanted.vhosts)
    for v in wanted.vhosts:
        if not (v.exchanges or v.queues or v.bindings):
            continue
        try:
            conn = connect(url.with_vhost(v.name))
        except ConnectionClosed as exc:
            if exc.reply_code != 530:
                raise
            state.refused[("vhost", v.name, v.name)] = exc.reply_text
            continue
        with conn:
            _probe_vhost(conn, v, wanted, state, total, progress)
    target = Target(
        product=_text(state.server.get("product")) or "AMQP broker",
        version=_text(state.server.get("version")),
        reads_bindings=False,
        manages_vhosts=False,
        manages_users=False,
        refused=state.refused,
    )
    return Definitions(tuple(state.vhosts)), target


def plan_over_amqp(wanted: Definitions, url: AmqpUrl, progress: Progress = _noop) -> Plan:
    """What applying ``wanted`` over AMQP would do (declares nothing new)."""
    current, target = probe_over_amqp(wanted, url, progress)
    return plan(current, wanted, target)


def apply_over_amqp(
    wanted: Definitions, url: AmqpUrl, progress: Progress = _noop
) -> tuple[Plan, int]:
    """Plan, refuse on any conflict (:class:`ApplyRefused`), then declare and bind.

    Returns the plan and how many operations were sent.  If the broker still refuses
    something half-way, what this apply created is deleted again (when still unused) and
    the error names the item.
    """
    p = plan_over_amqp(wanted, url)
    if p.conflicts:
        raise ApplyRefused(p)
    todo = [i for i in p.items if i.action in ("create", "ensure") and i.kind != "vhost"]
    by_vhost: dict[str, list[PlanItem]] = {}
    for item in todo:
        by_vhost.setdefault(item.vhost, []).append(item)
    done = 0
    for vhost, vitems in by_vhost.items():
        with connect(url.with_vhost(vhost)) as conn, conn.channel() as ch:
            created: list[PlanItem] = []
            for item in sorted(vitems, key=order):
                try:
                    _declare(ch, item.spec)
                except ChannelClosed as exc:
                    undone = _undo(conn, created)
                    raise CommandError(
                        f"{item.position.file}:{item.position.line}: the broker refused "
                        f"{item.kind} {item.name}: {exc.reply_text} ({done} change(s) applied "
                        f"before{', ' + undone if undone else ''})"
                    ) from None
                if item.action == "create":
                    created.append(item)
                done += 1
                progress(done, len(todo))
    return p, done


def _undo(conn: Connection, created: list[PlanItem]) -> str:
    """Delete what this apply created in the vhost (if still unused); says how much."""
    n = 0
    for item in reversed(created):
        spec = item.spec
        try:
            with conn.channel() as ch:
                if isinstance(spec, QueueSpec):
                    ch.queue_delete(spec.name, if_unused=True, if_empty=True)
                elif isinstance(spec, ExchangeSpec):
                    ch.exchange_delete(spec.name, if_unused=False)
                else:
                    continue
            n += 1
        except ClientError:
            continue
    return f"{n} of them undone" if n else ""


def _declare(ch: Any, spec: object) -> None:
    if isinstance(spec, ExchangeSpec):
        ch.exchange_declare(
            spec.name, spec.type, durable=spec.durable, auto_delete=spec.auto_delete,
            internal=spec.internal, arguments=dict(spec.arguments),
        )  # fmt: skip
    elif isinstance(spec, QueueSpec):
        ch.queue_declare(
            spec.name, durable=spec.durable, auto_delete=spec.auto_delete,
            arguments=dict(spec.arguments),
        )  # fmt: skip
    elif isinstance(spec, BindingSpec):
        args = dict(spec.arguments)
        if spec.destination_type == "exchange":
            ch.exchange_bind(spec.destination, spec.source, spec.routing_key, args)
        else:
            ch.queue_bind(spec.destination, spec.source, spec.routing_key, args)


# -- over the HTTP API --------------------------------------------------------------------


def fetch_definitions(api: ApiClient) -> dict[str, Any]:
    defs = api.get("/api/definitions")
    if not isinstance(defs, dict):
        raise CommandError(f"{api}: /api/definitions did not return a JSON object")
    return defs


def api_target(api: ApiClient, *, force: bool = False) -> Target:
    """Who answers at ``api`` (from ``/api/overview``), applying as the API's user."""
    overview = api.get("/api/overview")
    overview = overview if isinstance(overview, dict) else {}
    return Target(
        product=str(overview.get("product_name") or "RabbitMQ"),
        version=str(overview.get("product_version") or overview.get("rabbitmq_version") or ""),
        caller=api.user,
        force=force,
    )


def read_over_api(api: ApiClient, *, force: bool = False) -> tuple[Definitions, Target, list[str]]:
    """The broker's definitions, who it is, and notes on what the codec left out."""
    target = api_target(api, force=force)
    current, warnings = rabbit_json.decode(fetch_definitions(api))
    return current, target, [f"reading the broker: {w}" for w in warnings]


def plan_over_api(wanted: Definitions, api: ApiClient, *, force: bool = False) -> Plan:
    current, target, notes = read_over_api(api, force=force)
    p = plan(current, wanted, target)
    return attrs.evolve(p, notes=(*notes, *p.notes))


def apply_over_api(wanted: Definitions, api: ApiClient, *, force: bool = False) -> Plan:
    """Plan, refuse on conflicts, then ``POST /api/definitions`` with what the plan changes."""
    current, target, notes = read_over_api(api, force=force)
    p = plan(current, wanted, target)
    p = attrs.evolve(p, notes=(*notes, *p.notes))
    if p.conflicts:
        raise ApplyRefused(p)
    changes, dropped = _changes(p, current, rabbitmq=target.is_rabbitmq)
    if dropped:
        p = attrs.evolve(p, notes=(*p.notes, dropped))
    api.post("/api/definitions", rabbit_json.encode(changes))
    return p


def _changes(p: Plan, current: Definitions, *, rabbitmq: bool) -> tuple[Definitions, str]:
    """The definitions to POST: what the plan creates or updates, users in a form the
    target can use (a RabbitMQ cannot check our scrypt hashes)."""
    todo = [i for i in p.items if i.action in ("create", "update")]
    names = {i.vhost: None for i in todo if i.kind in ("vhost", "exchange", "queue", "binding")}
    vhosts = []
    for v in names:
        specs = [i.spec for i in todo if i.vhost == v]
        limits = next((s.limits for s in specs if isinstance(s, VHostSpec)), None)
        vhosts.append(
            VHostSpec(
                v,
                tuple(s for s in specs if isinstance(s, ExchangeSpec)),
                tuple(s for s in specs if isinstance(s, QueueSpec)),
                tuple(s for s in specs if isinstance(s, BindingSpec)),
                limits=limits,
            )
        )
    users, dropped = _users_to_send(todo, current, rabbitmq)
    permissions = tuple(
        i.spec for i in todo if isinstance(i.spec, PermissionSpec) and i.spec.user not in dropped
    )
    topic = tuple(
        i.spec
        for i in todo
        if isinstance(i.spec, TopicPermissionSpec) and i.spec.user not in dropped
    )
    note = (
        f"user(s) {', '.join(sorted(dropped))} not sent: their amqplite (scrypt) password "
        "hashes mean nothing to RabbitMQ; give a plain 'password:' in the file, or create "
        "them with rabbitmqctl add_user"
        if dropped
        else ""
    )
    return Definitions(tuple(vhosts), users, permissions, topic), note


def _users_to_send(
    todo: Iterable[PlanItem], current: Definitions, rabbitmq: bool
) -> tuple[tuple[UserSpec, ...], set[str]]:
    users: list[UserSpec] = []
    dropped: set[str] = set()
    for item in todo:
        u = item.spec
        if not isinstance(u, UserSpec):
            continue
        existing = current.user(u.name)
        if existing is not None and "password" not in item.changes:
            users.append(attrs.evolve(u, password_hash=existing.password_hash))
        elif rabbitmq and u.password is not None:
            users.append(
                attrs.evolve(u, password_hash=u.password.hashed(rabbit_json.rabbit_sha256))
            )
        elif rabbitmq and not u.password_hash.startswith("rabbit"):
            dropped.add(u.name)
        else:
            users.append(u)
    return tuple(users), dropped
