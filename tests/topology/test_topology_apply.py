"""Applying a topology to a real broker: creates everything, idempotent, all-or-nothing."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from amqplite.broker import Broker, VHost
from amqplite.topology import ApplyConflict, Config, apply, load_config, plan

Load = Callable[[str], Config]

TOPOLOGY = """
users:
  app:
    password: app-pass
    tags: [monitoring]
    permissions:
      /: {configure: "", write: ".*", read: ".*"}
      /b: {configure: ".*", write: ".*", read: ".*"}
exchanges:
  orders: {type: topic, alternate_exchange: unrouted}
  unrouted: {type: fanout, internal: true}
  audit: {type: fanout, durable: false}
  dlx: {type: direct}
queues:
  orders.created:
    arguments:
      max_length: 1000
      dead_letter_exchange: dlx
  orders.dead: {arguments: {message_ttl: 1d}}
  everything: {auto_delete: true}
bindings:
  - {source: orders, destination: orders.created, routing_key: "order.*.created"}
  - {source: orders, destination: audit, destination_type: exchange, routing_key: "#"}
  - {source: audit, destination: everything}
  - {source: dlx, destination: orders.dead, routing_key: orders.created}
vhosts:
  /b:
    queues: {work: {}}
    bindings: [{source: amq.direct, destination: work, routing_key: work}]
"""


def new_broker() -> Broker:
    broker = Broker(clock=lambda: 1_000_000.0)
    if "/" not in broker.vhosts:
        broker.add_vhost("/")
    return broker


def binding_keys(vhost: VHost) -> set[tuple[str, str, str, str]]:
    return {(b.source, b.destination_type, b.destination, b.routing_key) for b in vhost.bindings()}


def test_apply_creates_vhosts_exchanges_queues_bindings_and_users(load: Load) -> None:
    broker = new_broker()
    report = apply(load(TOPOLOGY), broker)
    assert report.created == report.items.__len__() - report.unchanged
    root, b = broker.vhosts["/"], broker.vhosts["/b"]
    orders = root.exchanges["orders"]
    assert (orders.type, orders.durable, orders.arguments) == (
        "topic",
        True,
        {"alternate-exchange": "unrouted"},
    )
    assert root.exchanges["unrouted"].internal is True
    assert root.exchanges["audit"].durable is False
    created = root.queues["orders.created"]
    assert created.arguments == {"x-max-length": 1000, "x-dead-letter-exchange": "dlx"}
    assert root.queues["orders.dead"].arguments == {"x-message-ttl": 86_400_000}
    assert root.queues["everything"].auto_delete is True
    assert binding_keys(root) == {
        ("orders", "queue", "orders.created", "order.*.created"),
        ("orders", "exchange", "audit", "#"),
        ("audit", "queue", "everything", ""),
        ("dlx", "queue", "orders.dead", "orders.created"),
    }
    assert ("amq.direct", "queue", "work", "work") in binding_keys(b)
    user = broker.users.authenticate("app", "app-pass")
    assert user is not None and user.tags == ("monitoring",)
    assert user.can("/b", "configure", "anything") and not user.can("/", "configure", "x")


def test_applying_the_same_config_twice_changes_nothing(load: Load) -> None:
    broker = new_broker()
    config = load(TOPOLOGY)
    first = apply(config, broker)
    assert first.created > 0
    second = apply(config, broker)
    assert (second.created, second.updated) == (0, 0)
    assert second.unchanged == len(second.items)


def test_reloading_the_file_creates_nothing_and_keeps_the_password_working(load: Load) -> None:
    broker = new_broker()
    apply(load(TOPOLOGY), broker)
    stored = broker.users.users["app"].password_hash
    report = apply(load(TOPOLOGY), broker)
    assert report.created == 0
    # A plain password is salted afresh at each load, but the plan checks it against the
    # stored hash: the file converges and the user record is not rewritten.
    assert [i for i in report.items if i.action == "update"] == []
    assert broker.users.users["app"].password_hash == stored
    assert broker.users.authenticate("app", "app-pass") is not None


def test_a_changed_plain_password_is_an_update(load: Load) -> None:
    broker = new_broker()
    apply(load(TOPOLOGY), broker)
    report = apply(load(TOPOLOGY.replace("app-pass", "new-pass")), broker)
    assert [(i.kind, i.detail) for i in report.items if i.action == "update"] == [
        ("user", "sets password")
    ]
    assert broker.users.authenticate("app", "new-pass") is not None


def test_conflicting_queue_refuses_the_whole_apply_and_changes_nothing(load: Load) -> None:
    broker = new_broker()
    root = broker.vhosts["/"]
    root.declare_queue("orders.created", durable=True, arguments={"x-max-length": 5})
    before_exchanges = set(root.exchanges)
    with pytest.raises(ApplyConflict) as info:
        apply(load(TOPOLOGY), broker)
    (problem,) = info.value.problems
    assert str(problem).startswith(
        "topology.yaml:16:19: queues.orders.created.arguments.max_length: queue 'orders.created' "
        "in vhost '/' already exists with other arguments (x-max-length: existing 5, file 1000; "
        'x-dead-letter-exchange: existing unset, file "dlx")'
    )
    assert set(root.exchanges) == before_exchanges
    assert set(root.queues) == {"orders.created"}
    assert root.bindings() == []
    assert "/b" not in broker.vhosts
    assert broker.users.get("app") is None


def test_conflicting_exchange_type_is_reported_with_its_line(load: Load) -> None:
    broker = new_broker()
    broker.vhosts["/"].declare_exchange("orders", "direct", durable=True)
    with pytest.raises(ApplyConflict) as info:
        apply(load(TOPOLOGY), broker)
    assert [str(p) for p in info.value.problems] == [
        "topology.yaml:9:3: exchanges.orders: exchange 'orders' in vhost '/' already exists with "
        'type="direct" but the file says "topic"; argument alternate-exchange=null but the file says '
        '"unrouted" (delete it first, or change the file)'
    ]


def test_plan_lists_create_unchanged_and_conflict_without_changing_anything(load: Load) -> None:
    broker = new_broker()
    root = broker.vhosts["/"]
    root.declare_queue("orders.dead", durable=True, arguments={"x-message-ttl": 86_400_000})
    root.declare_queue("everything", durable=False)
    p = plan(load(TOPOLOGY), broker)
    by_name = {(i.kind, i.name): i.action for i in p.items}
    assert by_name[("queue", "orders.dead")] == "unchanged"
    assert by_name[("queue", "everything")] == "conflict"
    assert by_name[("queue", "orders.created")] == "create"
    assert by_name[("vhost", "/")] == "unchanged"
    assert by_name[("vhost", "/b")] == "create"
    assert by_name[("user", "app")] == "create"
    assert "orders.created" not in root.queues
    assert p.summary().endswith("1 conflicting")


def test_queue_held_exclusively_by_a_client_is_a_conflict(load: Load) -> None:
    broker = new_broker()
    conn = broker.open_connection("/")
    broker.vhosts["/"].declare_queue("everything", exclusive=True, owner=conn)
    with pytest.raises(ApplyConflict) as info:
        apply(load(TOPOLOGY), broker)
    assert [str(p) for p in info.value.problems] == [
        "topology.yaml:19:3: queues.everything: queue 'everything' in vhost '/' already exists "
        "as an exclusive queue of a client connection"
    ]
    assert "orders" not in broker.vhosts["/"].exchanges


def test_shipped_config_and_example_topology_apply_cleanly_together() -> None:
    config_dir = Path(__file__).resolve().parents[2] / "config"
    broker = Broker(clock=lambda: 0.0)
    base = apply(load_config(config_dir / "amqplite.yaml"), broker)
    example = apply(load_config(config_dir / "topology.example.yaml"), broker)
    assert base.created == 3  # vhost "/", user guest, guest's permissions on "/"
    assert example.created == 5 + 10 + 10  # exchanges, queues, bindings ("/" already existed)
    assert broker.users.authenticate("guest", "guest") is not None
    again = apply(load_config(config_dir / "topology.example.yaml"), broker)
    assert (again.created, again.updated) == (0, 0)
