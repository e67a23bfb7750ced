"""Plan and apply a topology file against a running broker, over AMQP or the HTTP API.

CLI layer.  Two ways in, because they can see different things:

* **over AMQP** (``--url``, works with any AMQP 0-9-1 broker, RabbitMQ included).  AMQP
  cannot *read* a queue's or exchange's arguments, nor list bindings, so each exchange and
  queue is probed on a throwaway channel: a passive declare answers 404 → *create*; when
  it exists, an active redeclare with the file's flags and arguments either succeeds (it
  changes nothing: *unchanged*) or the broker refuses it with 406 PRECONDITION_FAILED,
  naming the inequivalent argument → *conflict*.  So the plan shows create /
  unchanged / conflict, and conflicts are exactly what the broker itself enforces (RabbitMQ
  ignores some arguments on redeclare; those cannot be seen this way).  Bindings are
  *ensure* (``queue.bind`` is idempotent), vhosts must already exist (AMQP cannot
  create them: 530), and users are skipped (AMQP cannot manage them).
* **over the HTTP API** (``--api``): ``GET /api/definitions`` is loaded into an in-memory
  broker and compared with :func:`amqplite.topology.plan`, which sees every argument and
  binding; applying ``POST``s the file as definitions JSON.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

import attrs

from amqplite.broker import Broker
from amqplite.client import (
    AmqpUrl,
    ChannelClosed,
    ClientError,
    Connection,
    ConnectionClosed,
    connect,
)
from amqplite.ops.api import ApiClient
from amqplite.ops.errors import OpsError
from amqplite.topology import Config, Plan, PlanItem, plan
from amqplite.topology import apply as apply_local
from amqplite.topology.apply import Action
from amqplite.topology.definitions import config_to_definitions, definitions_to_config
from amqplite.topology.model import BindingSpec, ExchangeSpec, QueueSpec, VHostSpec
from amqplite.topology.nodes import join

Progress = Callable[[int, int], None]


@attrs.frozen
class RemotePlan:
    plan: Plan
    #: Things the plan could not cover (users over AMQP, dropped definitions...).
    notes: tuple[str, ...] = ()


def _noop(done: int, total: int) -> None:
    pass


# -- over AMQP ----------------------------------------------------------------------------


def _path(config: Config, vhost: str, kind: str, name: str) -> str:
    prefix = "" if vhost == config.server.default_vhost else join("vhosts", vhost)
    return join(join(prefix, kind) if prefix else kind, name)


def _bindings_path(config: Config, vhost: str, i: int) -> str:
    prefix = "" if vhost == config.server.default_vhost else join("vhosts", vhost)
    return f"{join(prefix, 'bindings') if prefix else 'bindings'}[{i}]"


def _probe_exchange(conn: Connection, e: ExchangeSpec) -> tuple[Action, str]:
    ch = conn.channel()
    try:
        ch.exchange_declare(e.name, e.type, passive=True)
    except ChannelClosed as exc:
        return ("create", "") if exc.reply_code == 404 else ("conflict", exc.reply_text)
    try:
        ch.exchange_declare(
            e.name,
            e.type,
            durable=e.durable,
            auto_delete=e.auto_delete,
            internal=e.internal,
            arguments=dict(e.arguments),
        )
    except ChannelClosed as exc:
        return "conflict", exc.reply_text
    ch.close()
    return "unchanged", ""


def _probe_queue(conn: Connection, q: QueueSpec) -> tuple[Action, str]:
    ch = conn.channel()
    try:
        ch.queue_declare(q.name, passive=True)
    except ChannelClosed as exc:
        return ("create", "") if exc.reply_code == 404 else ("conflict", exc.reply_text)
    try:
        ch.queue_declare(
            q.name, durable=q.durable, auto_delete=q.auto_delete, arguments=dict(q.arguments)
        )
    except ChannelClosed as exc:
        return "conflict", exc.reply_text
    ch.close()
    return "unchanged", ""


def _has_topology(v: VHostSpec) -> bool:
    return bool(v.exchanges or v.queues or v.bindings)


def _connect_vhost(url: AmqpUrl, vhost: str) -> Connection:
    return connect(url.with_vhost(vhost))


def plan_over_amqp(config: Config, url: AmqpUrl, progress: Progress = _noop) -> RemotePlan:
    """What applying ``config`` over AMQP would do (declares nothing new)."""
    items: list[PlanItem] = []
    notes: list[str] = []
    total = sum(len(v.exchanges) + len(v.queues) + len(v.bindings) for v in config.vhosts)
    done = 0
    for v in config.vhosts:
        if not _has_topology(v):
            continue
        try:
            conn = _connect_vhost(url, v.name)
        except ConnectionClosed as exc:
            if exc.reply_code != 530:
                raise
            detail = (
                f"cannot open vhost '{v.name}' ({exc.reply_text}); AMQP cannot create vhosts: "
                "create it first (rabbitmqctl add_vhost, or apply with --api)"
            )
            items.append(PlanItem("conflict", "vhost", v.name, v.name, v.position, "", detail, v))
            continue
        with conn:
            items.append(PlanItem("unchanged", "vhost", v.name, v.name, v.position, spec=v))
            created: set[tuple[str, str]] = set()
            for e in v.exchanges:
                action, detail = _probe_exchange(conn, e)
                if action == "create":
                    created.add(("exchange", e.name))
                path = _path(config, v.name, "exchanges", e.name)
                items.append(
                    PlanItem(action, "exchange", v.name, e.name, e.position, path, detail, e)
                )
                done += 1
                progress(done, total)
            for q in v.queues:
                action, detail = _probe_queue(conn, q)
                if action == "create":
                    created.add(("queue", q.name))
                path = _path(config, v.name, "queues", q.name)
                items.append(PlanItem(action, "queue", v.name, q.name, q.position, path, detail, q))
                done += 1
                progress(done, total)
            for i, b in enumerate(v.bindings):
                new = ("exchange", b.source) in created or (
                    b.destination_type,
                    b.destination,
                ) in created
                items.append(
                    PlanItem(
                        "create" if new else "ensure",
                        "binding",
                        v.name,
                        _binding_name(b),
                        b.position,
                        _bindings_path(config, v.name, i),
                        "" if new else "AMQP cannot list bindings; binding again is harmless",
                        b,
                    )
                )
                done += 1
                progress(done, total)
    if config.users:
        notes.append(
            f"{len(config.users)} user(s) not checked: AMQP cannot manage users "
            "(use --api, or rabbitmqctl)"
        )
    return RemotePlan(Plan(tuple(items)), tuple(notes))


def _binding_name(b: BindingSpec) -> str:
    args = f", {dict(b.arguments)}" if b.arguments else ""
    return f"{b.source} -> {b.destination_type} {b.destination} ({b.routing_key!r}{args})"


def apply_over_amqp(
    config: Config, url: AmqpUrl, progress: Progress = _noop
) -> tuple[RemotePlan, int]:
    """Plan, refuse on any conflict (:class:`OpsError`), then declare and bind.

    Returns the plan and how many operations were sent.  Nothing is undone if the broker
    refuses something half-way (other clients may already use what was created); the
    error names the item, and applying again after fixing it finishes the job.
    """
    remote = plan_over_amqp(config, url)
    conflicts = remote.plan.conflicts
    if conflicts:
        raise ApplyRefused(remote)
    todo = [i for i in remote.plan.items if i.action in ("create", "ensure")]
    by_vhost: dict[str, list[PlanItem]] = {}
    for item in todo:
        by_vhost.setdefault(item.vhost, []).append(item)
    done = 0
    for vhost, vitems in by_vhost.items():
        with _connect_vhost(url, vhost) as conn, conn.channel() as ch:
            # Exchanges without arguments first, so an alternate exchange exists before its users.
            vitems.sort(key=_apply_order)
            for item in vitems:
                try:
                    _declare(ch, item.spec)
                except ChannelClosed as exc:
                    raise OpsError(
                        f"{item.position.file}:{item.position.line}: the broker refused "
                        f"{item.kind} {item.name}: {exc.reply_text} ({done} change(s) applied before)"
                    ) from None
                done += 1
                progress(done, len(todo))
    return remote, done


_ORDER = {"exchange": 0, "queue": 2, "binding": 3}


def _apply_order(item: PlanItem) -> int:
    bump = 1 if isinstance(item.spec, ExchangeSpec) and item.spec.arguments else 0
    return _ORDER.get(item.kind, 9) + bump


def _declare(ch: Any, spec: object) -> None:
    if isinstance(spec, ExchangeSpec):
        ch.exchange_declare(
            spec.name,
            spec.type,
            durable=spec.durable,
            auto_delete=spec.auto_delete,
            internal=spec.internal,
            arguments=dict(spec.arguments),
        )
    elif isinstance(spec, QueueSpec):
        ch.queue_declare(
            spec.name,
            durable=spec.durable,
            auto_delete=spec.auto_delete,
            arguments=dict(spec.arguments),
        )
    elif isinstance(spec, BindingSpec):
        if spec.destination_type == "exchange":
            ch.exchange_bind(spec.destination, spec.source, spec.routing_key, dict(spec.arguments))
        else:
            ch.queue_bind(spec.destination, spec.source, spec.routing_key, dict(spec.arguments))


class ApplyRefused(OpsError):
    """Apply found conflicts and changed nothing; ``plan`` holds them."""

    def __init__(self, remote: RemotePlan) -> None:
        self.remote = remote
        n = len(remote.plan.conflicts)
        super().__init__(f"{n} conflict{'' if n == 1 else 's'}; nothing applied")


# -- over the HTTP API --------------------------------------------------------------------


def fetch_definitions(api: ApiClient) -> dict[str, Any]:
    defs = api.get("/api/definitions")
    if not isinstance(defs, dict):
        raise OpsError(f"{api}: /api/definitions did not return a JSON object")
    return defs


def broker_from_definitions(
    defs: dict[str, Any], *, source: str = "<definitions>"
) -> tuple[Broker, list[str]]:
    """An in-memory broker holding ``defs``' topology (for plan and route), and warnings."""
    config, warnings = definitions_to_config(defs, source=source)
    broker = Broker(clock=time.time)
    quiet = logging.getLogger("amqplite.topology.apply")
    level = quiet.level
    quiet.setLevel(logging.WARNING)  # its "applied ..." line would read as if we changed a broker
    try:
        apply_local(config, broker)
    finally:
        quiet.setLevel(level)
    return broker, warnings


def plan_over_api(config: Config, api: ApiClient) -> RemotePlan:
    broker, warnings = broker_from_definitions(fetch_definitions(api), source=f"{api}")
    notes = [f"reading the broker: {w}" for w in warnings]
    return RemotePlan(plan(config, broker), tuple(notes))


def is_amqplite(api: ApiClient) -> bool:
    overview = api.get("/api/overview")
    return isinstance(overview, dict) and overview.get("product_name") == "amqplite"


def apply_over_api(config: Config, api: ApiClient) -> RemotePlan:
    """Plan, refuse on conflicts, then ``POST /api/definitions`` with the file's definitions."""
    remote = plan_over_api(config, api)
    if remote.plan.conflicts:
        raise ApplyRefused(remote)
    defs = config_to_definitions(config)
    notes = list(remote.notes)
    if not is_amqplite(api):
        # RabbitMQ cannot use our scrypt hashes; leave those users out rather than fail.
        keep = [u for u in defs["users"] if u["hashing_algorithm"] != "amqplite_scrypt"]
        dropped = {u["name"] for u in defs["users"]} - {u["name"] for u in keep}
        if dropped:
            notes.append(
                f"user(s) {', '.join(sorted(dropped))} not sent: their amqplite (scrypt) password "
                "hashes mean nothing to RabbitMQ; create them with rabbitmqctl add_user"
            )
            defs["users"] = keep
            defs["permissions"] = [p for p in defs["permissions"] if p["user"] not in dropped]
    api.post("/api/definitions", defs)
    return RemotePlan(remote.plan, tuple(notes))


def describe_client_error(exc: ClientError, url: AmqpUrl) -> str:
    """One line for a failed AMQP step (the broker's own reply text when it closed on us)."""
    if isinstance(exc, ConnectionClosed):
        return f"{url}: {exc.reply_text}"
    return str(exc)


def items_by_action(items: Iterable[PlanItem], action: str) -> list[PlanItem]:
    return [i for i in items if i.action == action]
